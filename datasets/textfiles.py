"""Reading labelled texts from CSV, TSV and JSON Lines files: :func:`read_records`.

Choices, each logged when it applies:

- A UTF-8 byte-order mark (Excel's "CSV UTF-8") is dropped: ``encoding="utf-8"`` reads as
  ``utf-8-sig``. Bytes that are not ``encoding`` (latin-1 files) are refused with file:line.
- ``header="auto"``: see :mod:`datasets.textheader` for the rule; ``True``/``False`` forces it.
  A later row equal to the header (two files joined with ``cat``) is skipped, counted in
  ``repeated_headers`` and named in a WARNING.
- CSV follows RFC 4180: quoted fields may hold commas, newlines and doubled quotes ``""``; a
  backslash is an ordinary character (AG News's ``\\`` stay in the text) unless
  ``escapechar="\\\\"``. A quote that never closes, or text after a closing quote, is refused
  with the line where the record starts. Every row must have as many columns as the first.
- TSV has no quoting (the SMS Spam Collection's ``label<TAB>text`` reads as is).
- Several text columns are joined with :data:`SEPARATOR`, which the tokenizer keeps as a
  token, so words of the title and of the description do not run together.
- Blank lines are skipped; a record whose text is empty is skipped and counted (WARNING);
  labels lose surrounding spaces (INFO with the count); labels that are all integers are read
  as ``int`` (so ``1..4`` sort numerically); labels mixing integers and words are refused.
- Fields up to :data:`FIELD_LIMIT_BYTES` are read (a 1 MB line is fine); the ``csv`` module's
  process-wide limit is raised to that once, never lowered.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets.errors import DataFormatError, DatasetNotFoundError
from datasets.textheader import (
    SAMPLE_ROWS,
    Column,
    detect_header,
    header_key,
    is_int_text,
    resolve_columns,
)

log = logging.getLogger(__name__)

SEPARATOR = " | "
FIELD_LIMIT_BYTES = 64 * 1024**2
_FORMATS = ("csv", "tsv", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class TextRecords:
    """What :func:`read_records` read: texts, labels and where each came from.

    Attributes:
        texts: one string per record (text columns joined with :data:`SEPARATOR`).
        labels: one label per record: ``int`` when all labels are integers, else ``str``
            (JSON values as found, for JSON Lines).
        lines: the line each record starts on, for messages.
        header: the header row, or None.
        skipped_empty: records skipped because their text is empty.
        repeated_headers: the lines skipped because they repeat the header (files joined
            with ``cat``).
    """

    texts: list[str] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    header: list[str] | None = None
    skipped_empty: int = 0
    repeated_headers: list[int] = field(default_factory=list)


def guess_format(path: str | os.PathLike[str]) -> str:
    """Return ``"csv"``, ``"tsv"`` or ``"jsonl"`` from the suffix, else from the first line."""
    path = Path(path)
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        first = f.readline(65536)
    if first.lstrip().startswith("{"):
        return "jsonl"
    return "tsv" if "\t" in first else "csv"


def check_encoding(encoding: str) -> str:
    """Return ``encoding`` when Python has a text codec of that name.

    Raises:
        ValueError: no such codec (``LookupError`` before), a binary one like ``base64``, or
            one that reads nothing (``undefined``).

    Example:
        >>> check_encoding("latin-1")
        'latin-1'
    """
    try:  # LookupError for unknown and for bytes-to-bytes codecs (base64) alike
        "a".encode(encoding)  # not b"".decode(): CPython answers empty input without a lookup
    except UnicodeError:
        pass  # a text codec that cannot write "a" still reads text
    except (LookupError, TypeError) as err:
        raise ValueError(f"encoding should be a text codec Python knows, such as 'utf-8', "
                         f"'latin-1' or 'cp1252', but got encoding={encoding!r}") from err
    try:  # the 'undefined' codec refuses every input, even none
        codecs.getincrementaldecoder(encoding)().decode(b"", final=False)
    except (UnicodeError, TypeError) as err:
        raise ValueError(f"encoding should be a text codec Python knows, such as 'utf-8', "
                         f"'latin-1' or 'cp1252', but got encoding={encoding!r}") from err
    return encoding


def read_records(
    path: str | os.PathLike[str],
    *,
    text_columns: Column | Sequence[Column] | None = None,
    label_column: Column | None = None,
    format: str | None = None,
    header: bool | str = "auto",
    encoding: str = "utf-8",
    escapechar: str | None = None,
) -> TextRecords:
    """Read texts and labels from a CSV, TSV or JSON Lines file.

    Args:
        path: the file.
        text_columns: the text column(s), by name or index (JSON keys for JSONL); several are
            joined with :data:`SEPARATOR`. Default: the ``text`` column, else every column but
            the label's (JSONL: ``"text"``).
        label_column: the label column, by name or index. Default: the header's column named
            like :data:`datasets.textheader.LABEL_NAMES`, else column 0 (JSONL: ``"label"``).
        format: ``"csv"``, ``"tsv"`` or ``"jsonl"``; guessed by :func:`guess_format` if None.
        header: ``"auto"`` (see :mod:`datasets.textheader`), ``True`` or ``False``.
        encoding: the file's text encoding (``"utf-8"`` also accepts a byte-order mark).
        escapechar: CSV escape character, e.g. ``"\\\\"`` for ``\\"`` inside quoted fields.

    Returns:
        The :class:`TextRecords`.

    Raises:
        DataFormatError: the file is not a regular file (a FIFO...), not text in
            ``encoding``, a line is malformed, a column is missing, labels mix types, or there
            is no record; the message names the file and the line.
        DatasetNotFoundError: the file does not exist.
        ValueError: a bad ``format``, ``header`` or ``encoding`` (see :func:`check_encoding`).
    """
    path = Path(path)
    if path.is_dir():
        raise DatasetNotFoundError(f"expected a text file at {path} but it is a folder; pass "
                                   "the CSV/TSV/JSONL file inside it")
    if not path.is_file():
        try:
            mode = path.stat().st_mode
        except OSError:
            raise DatasetNotFoundError(f"text file not found: {path}; check the path") from None
        raise DataFormatError(f"{path}: expected a regular text file but it is "
                              f"{file_kind(mode)}; pass a CSV/TSV/JSONL file")
    fmt = format or guess_format(path)
    if fmt not in _FORMATS:
        raise ValueError(f"format should be one of {_FORMATS}, but got format={format!r}")
    if header not in ("auto", True, False):
        raise ValueError(f"header should be 'auto', True or False, but got header={header!r}")
    columns = [text_columns] if isinstance(text_columns, (str, int)) else text_columns
    asked = check_encoding(encoding)
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        if fmt == "jsonl":
            records = _read_jsonl(path, columns or ["text"], label_column or "label", encoding)
        else:
            records = _read_delimited(path, fmt, columns, label_column, header, encoding, escapechar)
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path}:{_bad_line(path, encoding)}: expected {asked} text but byte "
            f"0x{err.object[err.start]:02x} is not {asked}; pass the file's encoding= "
            f"/ --encoding ({_encoding_hint(path)}), or extract it first if it is an archive"
        ) from err
    return _finish(path, records)


def _encoding_hint(path: Path) -> str:
    """Name UTF-16 when the file starts with its byte-order mark, else suggest latin-1."""
    with open(path, "rb") as f:
        start = f.read(2)
    if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "it starts with a UTF-16 byte-order mark: 'utf-16'"
    return "e.g. 'latin-1'"


def _bad_line(path: Path, encoding: str) -> int:
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return lineno
    return 1


def _finish(path: Path, records: TextRecords) -> TextRecords:
    if not records.texts:
        what = "after the header" if records.header else "in it"
        raise DataFormatError(
            f"{path}: expected labelled texts but found no record {what} (blank lines and "
            "empty texts are skipped); check the file"
        )
    if records.skipped_empty:
        log.warning("%s: skipped %d records with an empty text", path, records.skipped_empty)
    if records.repeated_headers:
        lines = records.repeated_headers
        log.warning("%s: skipped %d repeated header line%s (line%s %s), as when files are "
                    "joined with cat", path, len(lines), "s" * (len(lines) > 1),
                    "s" * (len(lines) > 1), ", ".join(map(str, lines[:10])) +
                    (", ..." if len(lines) > 10 else ""))
    records.labels = _normalize_labels(path, records.labels, records.lines)
    distinct, n = len(set(records.labels)), len(records.labels)
    if distinct > 100 and distinct > n / 2:
        raise DataFormatError(
            f"{path}: the label column has {distinct} distinct values in {n} records: it looks "
            "like text or ids, not classes; pass label_column= (--label-column) naming the "
            "label column, and header=True/False (--header yes/no) if the header guess was wrong"
        )
    return records


def _normalize_labels(path: Path, labels: list[Any], lines: list[int]) -> list[Any]:
    """Strip string labels, read all-integer labels as ints, refuse mixed kinds."""
    stripped = 0
    out: list[Any] = []
    for label, lineno in zip(labels, lines, strict=True):
        if isinstance(label, str):
            if label != label.strip():
                stripped += 1
            label = label.strip()
            if not label:
                raise DataFormatError(f"{path}:{lineno}: expected a label but the label is empty; "
                                      "fix the line or remove it")
        elif isinstance(label, bool) or not isinstance(label, int):
            raise DataFormatError(
                f"{path}:{lineno}: expected a string or integer label but got "
                f"{type(label).__name__} {label!r:.40}; fix the line"
            )
        out.append(label)
    if stripped:
        log.info("%s: removed surrounding spaces from %d labels", path, stripped)
    ints = [isinstance(v, int) or is_int_text(v) for v in out]
    if all(ints):
        return [int(v) for v in out]
    if any(ints):
        i, j = ints.index(True), ints.index(False)
        hint = (f"pass header=True (--header yes): line {lines[j]} looks like a header" if j == 0
                else "fix the labels or pass label_column= (--label-column) for the right "
                "column")
        raise DataFormatError(
            f"{path}: labels mix integers ({out[i]!r} at line {lines[i]}) and words "
            f"({out[j]!r} at line {lines[j]}); {hint}"
        )
    return out


def _read_jsonl(path: Path, keys: Sequence[Column], label_key: Column, encoding: str) -> TextRecords:
    records = TextRecords()
    with open(path, encoding=encoding, newline="") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as err:
                reason = f"{err.msg} at column {err.colno}" if isinstance(err, json.JSONDecodeError) \
                    else "nested too deeply"
                raise DataFormatError(
                    f"{path}:{lineno}: expected one JSON object per line but got invalid JSON "
                    f"({reason}): {line.strip()!r:.80}"
                ) from err
            missing = [k for k in (*keys, label_key) if not isinstance(record, dict) or k not in record]
            if missing:
                got = sorted(record) if isinstance(record, dict) else f"a JSON {type(record).__name__}"
                raise DataFormatError(
                    f"{path}:{lineno}: expected an object with keys {[*keys, label_key]} but got "
                    f"{got!r:.120}; pass text_columns=/label_column="
                )
            parts = [_as_text(record[k], path, lineno) for k in keys]
            _add(records, parts, record[label_key], lineno)
    return records


def _add(records: TextRecords, parts: list[str], label: Any, lineno: int) -> None:
    text = SEPARATOR.join(p for p in parts if p.strip())
    if not text.strip():
        records.skipped_empty += 1
        return
    records.texts.append(text)
    records.labels.append(label)
    records.lines.append(lineno)


def _rows(path: Path, f: Any, fmt: str, escapechar: str | None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(start line, row)`` for each non-blank row; csv errors become DataFormatError."""
    if csv.field_size_limit() < FIELD_LIMIT_BYTES:
        csv.field_size_limit(FIELD_LIMIT_BYTES)
    dialect: dict[str, Any] = (
        {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv"
        else {"delimiter": ",", "strict": True, "escapechar": escapechar}
    )
    reader = csv.reader(f, **dialect)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataFormatError(_csv_message(path, start, reader.line_num, str(err))) from err
        if any(cell.strip() for cell in row):
            yield start, row
        start = reader.line_num + 1


def _csv_message(path: Path, start: int, line: int, reason: str) -> str:
    if "unexpected end of data" in reason:
        return (f"{path}:{start}: a quoted field opened on this line is never closed (read to "
                f"line {line}); close or double the quote (\"\"), or fix the line")
    if "expected after" in reason:
        return (f"{path}:{line}: text follows a closing quote ({reason}); double quotes inside "
                "quoted fields (\"\"), or pass escapechar='\\\\' if the file escapes them as \\\"")
    return f"{path}:{start}: the CSV reader failed ({reason}); check that the file is text"


def _read_delimited(
    path: Path, fmt: str, text_columns: Sequence[Column] | None, label_column: Column | None,
    header: bool | str, encoding: str, escapechar: str | None,
) -> TextRecords:
    records = TextRecords()
    with open(path, encoding=encoding, newline="") as f:
        rows = _rows(path, f, fmt, escapechar)
        head: list[tuple[int, list[str]]] = []
        for item in rows:
            head.append(item)
            if len(head) > SAMPLE_ROWS:
                break
        if not head:
            return records
        first = head[0][1]
        if header == "auto":
            wanted = [c for c in (*(text_columns or []), label_column) if isinstance(c, str)]
            is_header, why = detect_header(first, [r for _, r in head[1:]], wanted=wanted,
                                           label_column=label_column)
            log.info("%s: header=auto reads line 1 as %s: %s", path,
                     "a header" if is_header else "data", why)
        else:
            is_header = bool(header)
        records.header = first if is_header else None
        width = len(first)
        texts, label = resolve_columns(path, records.header, width, text_columns=text_columns,
                                       label_column=label_column)
        log.info("%s: text from column(s) %s, label from column %s", path,
                 [_name(records.header, i) for i in texts], _name(records.header, label))
        key = header_key(first) if is_header else None
        for lineno, row in _chain(head[1:] if is_header else head, rows):
            if key is not None and header_key(row) == key:  # files joined with cat
                records.repeated_headers.append(lineno)
                continue
            if len(row) != width:
                raise DataFormatError(
                    f"{path}:{lineno}: expected {width} {fmt.upper()} columns as on line "
                    f"{head[0][0]} but got {len(row)}: {row!r:.120}; fix the line (a stray "
                    "quote joins or splits lines)"
                )
            _add(records, [row[i] for i in texts], row[label], lineno)
    if header == "auto" and not is_header:
        _warn_lone_first_label(path, records)
    return records


def _warn_lone_first_label(path: Path, records: TextRecords) -> None:
    """Warn when line 1, read as data, holds a label no other record has: a header, maybe."""
    if records.lines[:1] == [1] and records.labels.count(records.labels[0]) == 1:
        log.warning("%s: line 1 was read as data, and its label %r occurs nowhere else; pass "
                    "header=True (--header yes) if line 1 is a header", path, records.labels[0])


def _chain(head: list[tuple[int, list[str]]], rest: Iterator[tuple[int, list[str]]]
           ) -> Iterator[tuple[int, list[str]]]:
    yield from head
    yield from rest


def _name(header: list[str] | None, index: int) -> str | int:
    return header[index] if header else index


def _as_text(value: Any, path: Path, lineno: int) -> str:
    if not isinstance(value, str):
        raise DataFormatError(
            f"{path}:{lineno}: expected the text to be a string but got "
            f"{type(value).__name__}: {value!r:.60}"
        )
    return value


def file_kind(mode: int) -> str:
    """Name what an ``os.stat`` mode is, for messages about a file that is not a regular one.

    Example:
        >>> import stat
        >>> file_kind(stat.S_IFIFO)
        'a FIFO (named pipe)'
    """
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISDIR, "a folder"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")
