"""Text classification data: :class:`TextClassificationDataset`.

Without a vocabulary a dataset yields ``{"text": str, "label": int}``, exactly the classic
``CustomDataset`` of the PyTorch tutorials, so ``DataLoader(ds, batch_size=2)`` gives
``{"text": [str, str], "label": tensor([..])}``. With a :class:`~datasets.vocab.Vocab` it yields
``{"input_ids": LongTensor, "label": int}`` for :func:`datasets.collate.pad_collate`.

Files (CSV, TSV, JSON Lines) are read by :func:`datasets.textfiles.read_records`, which
``TextClassificationDataset.from_file`` calls; labels read from a file always go through one
:class:`~datasets.labels.LabelEncoder` (ids ``0..K-1``, original values kept).
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Sequence
from typing import Any

import torch

from datasets.errors import DataFormatError
from datasets.labels import LabelEncoder
from datasets.textfiles import TextRecords, read_records
from datasets.textheader import Column
from datasets.vocab import Tokenizer, Vocab, tokenize

log = logging.getLogger(__name__)

__all__ = ["LabelEncoder", "TextClassificationDataset", "check_known_labels", "read_records"]


class TextClassificationDataset(torch.utils.data.Dataset):
    """Texts with class labels, as a map-style dataset.

    Labels that are all non-negative ints are kept as given (``label_encoder`` stays None
    unless passed); any other labels (strings such as ``"ham"``/``"spam"``, ``-1``/``1``) are
    encoded to ids ``0..K-1`` with a
    :class:`LabelEncoder` fitted on them, or with ``label_encoder`` when given (pass the
    training set's encoder to a test set).

    Without ``vocab`` an item is ``{"text": str, "label": int}``; with ``vocab`` it is
    ``{"input_ids": torch.int64 tensor, "label": int}`` (texts are tokenized and encoded once,
    into one flat tensor, when the vocabulary is set). Build a vocabulary from the training
    split with :meth:`build_vocab` and assign it to ``.vocab`` (or pass ``vocab=``).

    Args:
        texts: the texts.
        labels: one label per text.
        tokenizer: splits a text into tokens; defaults to :func:`datasets.vocab.tokenize`.
        vocab: maps tokens to ids; without it items carry raw text.
        label_encoder: a fitted encoder for non-int labels.

    Raises:
        ValueError: ``texts`` and ``labels`` differ in length.

    Example:
        >>> ds = TextClassificationDataset(["good film", "bad film"], ["pos", "neg"])
        >>> ds[0], ds.classes
        ({'text': 'good film', 'label': 1}, ['neg', 'pos'])
        >>> ds.vocab = ds.build_vocab()
        >>> ds[1]["input_ids"]
        tensor([3, 2])
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[Any],
        *,
        tokenizer: Tokenizer | None = None,
        vocab: Vocab | None = None,
        label_encoder: LabelEncoder | None = None,
    ) -> None:
        if len(texts) != len(labels):
            raise ValueError(
                f"texts and labels should have the same length, but got {len(texts)} texts "
                f"and {len(labels)} labels"
            )
        self.texts: list[str] = list(texts)
        self.tokenizer: Tokenizer = tokenizer or tokenize
        self.label_encoder = label_encoder
        raw = list(labels)
        if label_encoder is None and not all(_is_int(y) and int(y) >= 0 for y in raw):
            self.label_encoder = LabelEncoder().fit(raw)
        self.labels: list[int] = (
            self.label_encoder.encode(raw) if self.label_encoder else [int(y) for y in raw]
        )
        self._vocab: Vocab | None = None
        self._flat = torch.empty(0, dtype=torch.int64)
        self._offsets = torch.zeros(1, dtype=torch.int64)
        self.vocab = vocab

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        text_columns: Column | Sequence[Column] | None = None,
        label_column: Column | None = None,
        header: bool | str = "auto",
        format: str | None = None,
        encoding: str = "utf-8",
        escapechar: str | None = None,
        tokenizer: Tokenizer | None = None,
        vocab: Vocab | None = None,
        label_encoder: LabelEncoder | None = None,
    ) -> TextClassificationDataset:
        """Read a CSV/TSV/JSONL file with :func:`read_records` and wrap it.

        Labels always go through a :class:`LabelEncoder`: ``label_encoder`` when given (the
        training file's, for a test file), else one fitted on this file.

        Raises:
            DataFormatError: see :func:`read_records`; also a label of the file that
                ``label_encoder`` does not know (a class seen only in this file), named with
                its line.

        Example:
            ``TextClassificationDataset.from_file(".../sms-spam/SMSSpamCollection")`` reads the
            headerless ``label<TAB>text`` file as is (classes ``['ham', 'spam']``).
        """
        records = read_records(
            path, text_columns=text_columns, label_column=label_column, format=format,
            header=header, encoding=encoding, escapechar=escapechar,
        )
        log.info("read %d texts from %s", len(records.texts), path)
        return cls.from_records(records, path=os.fspath(path), tokenizer=tokenizer, vocab=vocab,
                                label_encoder=label_encoder)

    @classmethod
    def from_records(
        cls, records: TextRecords, *, path: str = "<records>", tokenizer: Tokenizer | None = None,
        vocab: Vocab | None = None, label_encoder: LabelEncoder | None = None,
    ) -> TextClassificationDataset:
        """Wrap :class:`~datasets.textfiles.TextRecords`, encoding labels with one encoder."""
        encoder = label_encoder or LabelEncoder().fit(records.labels)
        check_known_labels(encoder, records.labels, records.lines, path)
        return cls(records.texts, records.labels, tokenizer=tokenizer, vocab=vocab,
                   label_encoder=encoder)

    @property
    def vocab(self) -> Vocab | None:
        """The vocabulary; setting it encodes every text once into token ids."""
        return self._vocab

    @vocab.setter
    def vocab(self, vocab: Vocab | None) -> None:
        self._vocab = vocab
        if vocab is None:
            self._flat = torch.empty(0, dtype=torch.int64)
            self._offsets = torch.zeros(1, dtype=torch.int64)
            return
        encoded = [vocab.encode(self.tokenizer(t)) for t in self.texts]
        lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.int64)
        self._offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
        self._flat = torch.tensor([i for ids in encoded for i in ids], dtype=torch.int64)

    @property
    def classes(self) -> list[Any] | None:
        """The sorted class names when labels were encoded, else None."""
        return self.label_encoder.classes if self.label_encoder else None

    @property
    def targets(self) -> torch.Tensor:
        """All labels as an int64 tensor (for :class:`~datasets.samplers.BalancedSampler`)."""
        return torch.tensor(self.labels, dtype=torch.int64)

    def build_vocab(self, *, min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Build a :class:`Vocab` from this dataset's texts with its tokenizer (not assigned)."""
        return Vocab.build(self.texts, tokenizer=self.tokenizer, min_freq=min_freq, max_size=max_size)

    def lengths(self) -> list[int]:
        """Token count of every text (ids when a vocab is set, else tokenizer output)."""
        if self._vocab is not None:
            return (self._offsets[1:] - self._offsets[:-1]).tolist()
        return [len(self.tokenizer(t)) for t in self.texts]

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._vocab is None:
            return {"text": self.texts[index], "label": self.labels[index]}
        index = range(len(self.texts))[index]  # negative indices, IndexError past the end
        start, end = self._offsets[index].item(), self._offsets[index + 1].item()
        return {"input_ids": self._flat[start:end], "label": self.labels[index]}


def check_known_labels(encoder: LabelEncoder, labels: Sequence[Any], lines: Sequence[int],
                       path: str) -> None:
    """Raise :class:`DataFormatError` naming the first label ``encoder`` does not know.

    Example:
        >>> check_known_labels(LabelEncoder(["a"]), ["a", "b"], [1, 2], "test.csv")
        Traceback (most recent call last):
        ...
        datasets.errors.DataFormatError: test.csv:2: class 'b' is not among the training classes ['a']; a class seen only in test cannot be learned: add examples of it to the training data or drop those lines
    """
    known = set(encoder.classes)
    for label, line in zip(labels, lines, strict=True):
        if label not in known:
            raise DataFormatError(
                f"{path}:{line}: class {label!r} is not among the training classes "
                f"{encoder.classes!r:.200}; a class seen only in test cannot be learned: add "
                "examples of it to the training data or drop those lines"
            )


def _is_int(value: Any) -> bool:
    """Whether a label is already a class id: an int (numpy's too) or an integer 0-d tensor."""
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
