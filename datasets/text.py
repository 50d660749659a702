"""Text classification data: :class:`TextClassificationDataset` and :class:`LabelEncoder`.

Without a vocabulary a dataset yields ``{"text": str, "label": int}``, exactly the classic
``CustomDataset`` of the PyTorch tutorials, so ``DataLoader(ds, batch_size=2)`` gives
``{"text": [str, str], "label": tensor([..])}``. With a :class:`~datasets.vocab.Vocab` it yields
``{"input_ids": LongTensor, "label": int}`` for :func:`datasets.collate.pad_collate`.

Files (CSV, TSV, JSON Lines) are read by :func:`datasets.textfiles.read_records`, which
``TextClassificationDataset.from_file`` calls.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from datasets.errors import DataFormatError
from datasets.jsonfile import save_json
from datasets.textfiles import read_records
from datasets.vocab import Tokenizer, Vocab, tokenize

log = logging.getLogger(__name__)

__all__ = ["LabelEncoder", "TextClassificationDataset", "read_records"]


class LabelEncoder:
    """Map labels (strings or any hashable) to ids ``0..K-1`` in sorted order, and back.

    Args:
        classes: the known classes; they are sorted. Use :meth:`fit` to learn them instead.

    Example:
        >>> enc = LabelEncoder().fit(["spam", "ham", "spam"])
        >>> enc.classes, enc.encode(["spam", "ham"]), enc.decode([0, 1])
        (['ham', 'spam'], [1, 0], ['ham', 'spam'])
    """

    def __init__(self, classes: Iterable[Any] | None = None) -> None:
        self.classes: list[Any] = []
        self._index: dict[Any, int] = {}
        if classes is not None:
            self.fit(classes)

    def fit(self, labels: Iterable[Any]) -> LabelEncoder:
        """Learn the sorted set of distinct ``labels``; return ``self``."""
        self.classes = sorted(set(labels))
        self._index = {c: i for i, c in enumerate(self.classes)}
        return self

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return f"LabelEncoder(classes={self.classes!r})"

    def encode(self, labels: Iterable[Any]) -> list[int]:
        """Map each label to its id.

        Raises:
            ValueError: a label is not one of :attr:`classes`.
        """
        out = []
        for label in labels:
            try:
                out.append(self._index[label])
            except KeyError:
                raise ValueError(
                    f"label should be one of {self.classes!r:.200}, but got {label!r}; "
                    "fit the encoder on the training labels or pass classes=..."
                ) from None
        return out

    def decode(self, ids: Iterable[int]) -> list[Any]:
        """Map each id back to its class."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.classes):
                raise ValueError(f"label id should be in [0, {len(self.classes)}), but got {i}")
            out.append(self.classes[i])
        return out

    def state_dict(self) -> dict[str, Any]:
        """Return ``{"classes": [...]}`` (JSON-serializable for string classes)."""
        return {"classes": list(self.classes)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LabelEncoder:
        """Rebuild an encoder from :meth:`state_dict` output."""
        if not isinstance(state, dict) or "classes" not in state:
            raise DataFormatError(
                f"expected a LabelEncoder state {{'classes': [...]}} but got {state!r:.100}"
            )
        return cls(state["classes"])

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the classes as JSON to ``path`` (atomically, parents created); return the path."""
        return save_json(path, self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelEncoder:
        """Read an encoder written by :meth:`save`.

        Raises:
            DataFormatError: the file is not a saved encoder.
        """
        path = Path(path)
        try:
            return cls.from_state_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, DataFormatError) as err:
            raise DataFormatError(f"{path}: expected a saved LabelEncoder: {err}") from err


class TextClassificationDataset(torch.utils.data.Dataset):
    """Texts with class labels, as a map-style dataset.

    Labels that are all ints are kept as given (``label_encoder`` stays None unless passed);
    any other labels (strings such as ``"ham"``/``"spam"``) are encoded to ids ``0..K-1`` with a
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
        if label_encoder is None and not all(_is_int(y) for y in raw):
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
        text_column: str | int | None = None,
        label_column: str | int | None = None,
        format: str | None = None,
        header: bool | None = None,
        encoding: str = "utf-8",
        tokenizer: Tokenizer | None = None,
        vocab: Vocab | None = None,
        label_encoder: LabelEncoder | None = None,
    ) -> TextClassificationDataset:
        """Read a CSV/TSV/JSONL file with :func:`read_records` and wrap it.

        Example:
            ``TextClassificationDataset.from_file(".../sms-spam/SMSSpamCollection")`` reads the
            headerless ``label<TAB>text`` file as is (classes ``['ham', 'spam']``).
        """
        texts, labels = read_records(
            path, text_column=text_column, label_column=label_column, format=format,
            header=header, encoding=encoding,
        )
        log.info("read %d texts from %s", len(texts), path)
        return cls(texts, labels, tokenizer=tokenizer, vocab=vocab, label_encoder=label_encoder)

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


def _is_int(value: Any) -> bool:
    """Whether a label is already a class id: an int (numpy's too) or an integer 0-d tensor."""
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
