"""Text classification data: :class:`TextClassificationDataset`, :class:`LabelEncoder`, file readers.

Without a vocabulary a dataset yields ``{"text": str, "label": int}``, exactly the classic
``CustomDataset`` of the PyTorch tutorials, so ``DataLoader(ds, batch_size=2)`` gives
``{"text": [str, str], "label": tensor([..])}``. With a :class:`~datasets.vocab.Vocab` it yields
``{"input_ids": LongTensor, "label": int}`` for :func:`datasets.collate.pad_collate`.

Files: CSV (with a header), TSV (with or without a header: the SMS Spam Collection's
``label<TAB>text`` works as is) and JSON Lines; columns by name or by index.
"""

from __future__ import annotations

import csv
import json
import logging
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from datasets.errors import DataFormatError, DatasetNotFoundError
from datasets.vocab import Tokenizer, Vocab, tokenize

log = logging.getLogger(__name__)

_FORMATS = ("csv", "tsv", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


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
        """Write the classes as JSON to ``path`` and return the path."""
        path = Path(path)
        path.write_text(json.dumps(self.state_dict(), ensure_ascii=False), encoding="utf-8")
        return path

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


def guess_format(path: str | os.PathLike[str]) -> str:
    """Return ``"csv"``, ``"tsv"`` or ``"jsonl"`` from the suffix, else from the first line."""
    path = Path(path)
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if first.lstrip().startswith("{"):
        return "jsonl"
    return "tsv" if "\t" in first else "csv"


def read_records(
    path: str | os.PathLike[str],
    *,
    text_column: str | int | None = None,
    label_column: str | int | None = None,
    format: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
) -> tuple[list[str], list[str]]:
    """Read texts and labels from a CSV, TSV or JSON Lines file.

    Columns default to ``"text"``/``"label"`` when the file has a header (or for JSONL), and to
    ``label_column=0, text_column=1`` for a headerless two-column file (``label<TAB>text``, as
    the SMS Spam Collection). ``header=None`` detects a header: the first row holds the column
    names asked for (or ``text`` and ``label``). Blank lines are skipped. TSV has no quoting:
    quotes are ordinary characters, as in the SMS Spam Collection.

    Args:
        path: the file.
        text_column: the text's column name (or index for CSV/TSV) / JSON key.
        label_column: the label's column name (or index) / JSON key.
        format: ``"csv"``, ``"tsv"`` or ``"jsonl"``; guessed by :func:`guess_format` if None.
        header: whether the first CSV/TSV row is a header; detected if None.
        encoding: the file's text encoding.

    Returns:
        ``(texts, labels)``, labels as the strings (or JSON values) found.

    Raises:
        DataFormatError: a row lacks a column, a line is not JSON, a column name is unknown;
            the message names the file and the line.
        DatasetNotFoundError: the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"text file not found: {path}; check the path")
    fmt = format or guess_format(path)
    if fmt not in _FORMATS:
        raise ValueError(f"format should be one of {_FORMATS}, but got format={format!r}")
    if fmt == "jsonl":
        return _read_jsonl(path, text_column or "text", label_column or "label", encoding)
    return _read_delimited(path, fmt, text_column, label_column, header, encoding)


def _read_jsonl(
    path: Path, text_key: str | int, label_key: str | int, encoding: str
) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with open(path, encoding=encoding, newline="") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    f"{path}:{lineno}: expected one JSON object per line but got invalid JSON "
                    f"({err.msg} at column {err.colno}): {line.strip()!r:.80}"
                ) from err
            if not isinstance(record, dict) or text_key not in record or label_key not in record:
                got = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise DataFormatError(
                    f"{path}:{lineno}: expected an object with keys {text_key!r} and "
                    f"{label_key!r} but got {got}; pass text_column=/label_column="
                )
            texts.append(_as_text(record[text_key], path, lineno))
            labels.append(record[label_key])
    return texts, labels


def _read_delimited(
    path: Path,
    fmt: str,
    text_column: str | int | None,
    label_column: str | int | None,
    header: bool | None,
    encoding: str,
) -> tuple[list[str], list[str]]:
    dialect: dict[str, Any] = (
        {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}
    )
    texts, labels = [], []
    with open(path, encoding=encoding, newline="") as f:
        rows = ((n, row) for n, row in enumerate(csv.reader(f, **dialect), 1) if row)
        first = next(rows, None)
        if first is None:
            return texts, labels
        names = (text_column, label_column)
        if header is None:
            wanted = [c for c in names if isinstance(c, str)] or ["text", "label"]
            header = all(c in first[1] for c in wanted)
        if header:
            t_idx, l_idx = _column_indices(path, first[1], text_column, label_column)
        else:
            if isinstance(text_column, str) or isinstance(label_column, str):
                raise DataFormatError(
                    f"{path}:{first[0]}: expected a header row naming {text_column!r} and "
                    f"{label_column!r} but got {first[1]!r:.120}; pass header=False with column "
                    "indices (text_column=1, label_column=0) for a headerless file"
                )
            t_idx = 1 if text_column is None else text_column
            l_idx = 0 if label_column is None else label_column
            rows = iter([first, *rows])
        width = max(t_idx, l_idx) + 1
        for lineno, row in rows:
            if len(row) < width:
                raise DataFormatError(
                    f"{path}:{lineno}: expected at least {width} {fmt.upper()} columns (text in "
                    f"column {t_idx}, label in column {l_idx}) but got {len(row)}: "
                    f"{row!r:.120}; fix the line or the column settings"
                )
            texts.append(row[t_idx])
            labels.append(row[l_idx])
    return texts, labels


def _column_indices(
    path: Path, names: list[str], text_column: str | int | None, label_column: str | int | None
) -> tuple[int, int]:
    out = []
    for column, default in ((text_column, "text"), (label_column, "label")):
        column = default if column is None else column
        if isinstance(column, int):
            out.append(column)
        elif column in names:
            out.append(names.index(column))
        else:
            raise DataFormatError(
                f"{path}:1: expected a column named {column!r} in the header but got {names!r:.200}; "
                "pass text_column=/label_column= with a name from the header"
            )
    return out[0], out[1]


def _as_text(value: Any, path: Path, lineno: int) -> str:
    if not isinstance(value, str):
        raise DataFormatError(
            f"{path}:{lineno}: expected the text to be a string but got "
            f"{type(value).__name__}: {value!r:.60}"
        )
    return value


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
