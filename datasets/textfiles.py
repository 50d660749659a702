"""Reading labelled texts from CSV, TSV and JSON Lines files: :func:`read_records`.

CSV needs a header; TSV works with or without one (the SMS Spam Collection's headerless
``label<TAB>text`` reads as is); JSON Lines takes one object per line. Columns are chosen by
name or by index, and every malformed line is reported with the file and the line number.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets.errors import DataFormatError, DatasetNotFoundError

log = logging.getLogger(__name__)

_FORMATS = ("csv", "tsv", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


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
) -> tuple[list[str], list[Any]]:
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
            Also for a file that is not text in ``encoding`` (a binary or archive).
        DatasetNotFoundError: the file does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise DatasetNotFoundError(f"expected a text file at {path} but it is a folder; pass "
                                   "the CSV/TSV/JSONL file inside it")
    if not path.is_file():
        raise DatasetNotFoundError(f"text file not found: {path}; check the path")
    fmt = format or guess_format(path)
    if fmt not in _FORMATS:
        raise ValueError(f"format should be one of {_FORMATS}, but got format={format!r}")
    try:
        if fmt == "jsonl":
            return _read_jsonl(path, text_column or "text", label_column or "label", encoding)
        return _read_delimited(path, fmt, text_column, label_column, header, encoding)
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path}: expected a {encoding} text file (CSV, TSV or JSON Lines) but byte "
            f"{err.start} is 0x{err.object[err.start]:02x}, not {encoding}; pass the file's "
            "encoding= (e.g. 'latin-1'), or extract it first if it is an archive"
        ) from err
    except csv.Error as err:
        raise DataFormatError(
            f"{path}: expected a {fmt.upper()} text file but the reader failed: {err}; check "
            "that the file is text and pass format= if the guess was wrong"
        ) from err


def _read_jsonl(
    path: Path, text_key: str | int, label_key: str | int, encoding: str
) -> tuple[list[str], list[Any]]:
    texts: list[str] = []
    labels: list[Any] = []
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
) -> tuple[list[str], list[Any]]:
    dialect: dict[str, Any] = (
        {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}
    )
    texts: list[str] = []
    labels: list[Any] = []
    with open(path, encoding=encoding, newline="") as f:
        rows: Iterator[tuple[int, list[str]]] = (
            (n, row) for n, row in enumerate(csv.reader(f, **dialect), 1) if row
        )
        first = next(rows, None)
        if first is None:
            return texts, labels
        t_idx, l_idx, is_header = _header_columns(path, first, text_column, label_column, header)
        if not is_header:
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


def _header_columns(
    path: Path,
    first: tuple[int, list[str]],
    text_column: str | int | None,
    label_column: str | int | None,
    header: bool | None,
) -> tuple[int, int, bool]:
    """Return the text and label column indices and whether the first row is a header."""
    lineno, row = first
    if header is None:
        wanted = [c for c in (text_column, label_column) if isinstance(c, str)] or ["text", "label"]
        header = all(c in row for c in wanted)
    if header:
        return (*_column_indices(path, row, text_column, label_column), True)
    if isinstance(text_column, str) or isinstance(label_column, str):
        raise DataFormatError(
            f"{path}:{lineno}: expected a header row naming {text_column!r} and "
            f"{label_column!r} but got {row!r:.120}; pass header=False with column "
            "indices (text_column=1, label_column=0) for a headerless file"
        )
    t_idx = 1 if text_column is None else text_column
    l_idx = 0 if label_column is None else label_column
    return t_idx, l_idx, False


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
