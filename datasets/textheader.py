"""Which CSV/TSV row is a header, and which columns hold the text and the label.

:func:`detect_header` decides ``header="auto"`` from the first row and a sample of the rows
after it (:data:`SAMPLE_ROWS`). Rows equal to the first one are left out of the sample: they
are the same header repeated (two CSV files joined with ``cat``), and the reader skips them.
Rows are compared after dropping a leading byte-order mark and stripping each cell
(:func:`header_key`), so a second header saved by Excel as "CSV UTF-8" (a byte-order mark before
``label,text``) or written as ``label, text`` still counts as a repeat. The first row is decided by the first
of these rules that holds:

1. it holds every column *name* asked for (``text_columns=``/``label_column=`` given as names):
   header; one that lacks a name asked for is still judged by the rules below, so that a missing
   column is reported as missing from the header, not as a headerless file;
2. one of its cells is a conventional column name (:data:`LABEL_NAMES` or :data:`TEXT_NAMES`,
   case-insensitive) that never occurs in that column below it (``label,title,description``,
   ``Class Index,Title,Description``, ``text,label``): header;
3. its label cell occurs among the labels below it: data (the SMS Spam Collection's
   ``ham<TAB>...`` first line, whatever its other columns hold);
4. its cells do not have their columns' type: a column whose sampled cells are all numbers
   (missing values such as ``NA``, ``nan``, ``null``, ``-`` and empty cells left out) has a
   cell above it that is not one (``label`` above ``1``..``4``, ``score`` above ``0.5``),
   or the label column below holds no number and its cell above is one (pandas' ``0,1``);
   or a text column of multi-word texts has a single identifier above it (``tweet_text``):
   header.

Otherwise it is data. How rare the first row's label is below it decides nothing: a headerless
file may well start with its rarest class (the reader warns when that label occurs only once).
The decision and the rule that made it are logged at INFO.
``header=True``/``False`` skips the guess.

:func:`resolve_columns` then picks the columns: the label column is ``label_column=`` (a name
or an index), else the header's cell named like :data:`LABEL_NAMES`, else column 0; the text
is ``text_columns=``, else the header's ``text`` column, else every other column, joined.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from datasets.errors import DataFormatError

log = logging.getLogger(__name__)

#: How many rows after the first one :func:`detect_header` looks at.
SAMPLE_ROWS = 1000
#: Conventional names of a label column (compared case-insensitively).
LABEL_NAMES = ("label", "labels", "class", "class index", "category", "target", "sentiment", "y")
#: Conventional names of a text column (compared case-insensitively).
TEXT_NAMES = ("text", "title", "description", "review", "sentence", "message", "sms", "body",
              "content", "document")
_INT = re.compile(r"[+-]?\d+\Z")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?%?\Z")
_IDENTIFIER = re.compile(r"[^\W\d]\w*\Z")
_SPACE = re.compile(r"\s")
#: Cells read as a missing value, not as text, when :func:`detect_header` compares types.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?"})

Column = str | int


def is_int_text(value: str) -> bool:
    """Whether ``value`` (stripped) is an integer such as ``"3"`` or ``"-1"``.

    Example:
        >>> is_int_text(" -1 "), is_int_text("1.0")
        (True, False)
    """
    return bool(_INT.match(value.strip()))


def _conventional(cell: str) -> bool:
    name = cell.strip().lower()
    return name in LABEL_NAMES or name in TEXT_NAMES


def _label_index(first: list[str], label_column: Column | None) -> int:
    if isinstance(label_column, int):
        return label_column
    for i, cell in enumerate(first):
        if cell.strip().lower() in LABEL_NAMES:
            return i
    return 0


def header_key(row: Sequence[str]) -> list[str]:
    """Return ``row`` as compared with a header: stripped cells, no leading byte-order mark.

    Example:
        >>> header_key(["\\ufefflabel", " text "])
        ['label', 'text']
    """
    cells = [cell.strip() for cell in row]
    if cells:
        cells[0] = cells[0].lstrip("\ufeff").strip()
    return cells


def detect_header(
    first: list[str], sample: Sequence[list[str]], *, wanted: Sequence[str],
    label_column: Column | None = None,
) -> tuple[bool, str]:
    """Return whether ``first`` is a header and the rule (as words) that decided it.

    Args:
        first: the file's first row.
        sample: rows after it (at most :data:`SAMPLE_ROWS` are looked at).
        wanted: column names the caller asked for.
        label_column: the label column asked for (name, index or None).

    Example:
        >>> detect_header(["label", "title"], [["1", "a"], ["2", "b"]], wanted=[])[0]
        True
        >>> detect_header(["ham", "hi"], [["spam", "win"], ["ham", "ok"]], wanted=[])[0]
        False
        >>> detect_header(["spam", "win"], [["ham", "hi"]] * 999, wanted=[])[0]  # rare label
        False
        >>> detect_header(["stars", "tweet_text"], [["pos", "so good"]] * 9, wanted=[])[0]
        True
    """
    key = header_key(first)
    sample = [row for row in sample[:SAMPLE_ROWS] if header_key(row) != key]  # repeated headers
    if wanted and all(name in first for name in wanted):
        return True, f"it names {list(wanted)}"
    for i, cell in enumerate(first):
        below = {row[i] for row in sample if len(row) > i}
        if _conventional(cell) and cell not in below:
            return True, f"cell {cell!r} is a column name"
    col = _label_index(first, label_column)
    if col < len(first) and first[col] in {row[col] for row in sample if len(row) > col}:
        return False, f"its label cell {first[col]!r} occurs among the labels below it"
    return _type_rule(first, sample, col)


def _type_rule(first: list[str], sample: Sequence[list[str]], label: int) -> tuple[bool, str]:
    for i, cell in enumerate(first):
        filled = [row[i] for row in sample if len(row) > i and not _missing(row[i])]
        if not filled or _missing(cell):
            continue
        if all(map(_is_number, filled)) and not _is_number(cell):
            return True, f"{cell!r} is not a number, unlike column {i} below it"
        if i == label and _is_number(cell) and not any(map(_is_number, filled)):
            return True, f"{cell!r} is a number, unlike the labels below it"
        spaced = sum(bool(_SPACE.search(v.strip())) for v in filled)
        if i != label and _IDENTIFIER.match(cell.strip()) and spaced >= 0.9 * len(filled):
            return True, f"{cell!r} is one word, unlike the texts in column {i} below it"
    return False, "its cells have the types of the columns below it"


def _missing(value: str) -> bool:
    return value.strip().lower() in MISSING


def _is_number(value: str) -> bool:
    return bool(_NUMBER.match(value.strip()))


def resolve_columns(
    path: Path, header: list[str] | None, width: int, *,
    text_columns: Sequence[Column] | None, label_column: Column | None,
) -> tuple[list[int], int]:
    """Return the text column indices and the label column index.

    Raises:
        DataFormatError: a named column is not in the header (or there is no header), an
            index is past the row's width, or the label is also a text column.
    """
    if label_column is None:
        label = _label_index(header, None) if header else 0
        if header and header[label].strip().lower() not in LABEL_NAMES and any(
                _conventional(c) for c in header):
            raise DataFormatError(
                f"{path}:1: the header {header!r:.200} has no label column (looked for "
                f"{', '.join(LABEL_NAMES)}); pass label_column= (--label-column) with its name"
            )
    else:
        label = _index(path, header, width, label_column)
    if text_columns is None:
        names = [c.strip().lower() for c in header] if header else []
        texts = [names.index("text")] if "text" in names else [i for i in range(width) if i != label]
    else:
        texts = [_index(path, header, width, c) for c in text_columns]
    if label in texts or not texts:
        raise DataFormatError(
            f"{path}: expected text columns apart from the label column {label} but got text "
            f"columns {texts}; pass text_columns= (--text-column) and label_column= (--label-column) apart"
        )
    return texts, label


def _index(path: Path, header: list[str] | None, width: int, column: Column) -> int:
    if isinstance(column, int):
        if not -width <= column < width:
            raise DataFormatError(
                f"{path}:1: expected column {column} but the rows have {width} columns; pass an "
                f"index below {width}"
            )
        return column % width
    if header is None:
        raise DataFormatError(
            f"{path}:1: expected a header row naming {column!r} but the first row is data; "
            "pass header=True (--header yes) if it is a header, or column indices for a headerless "
            "file"
        )
    if column not in header:
        raise DataFormatError(
            f"{path}:1: no column {column!r} among the header's {header!r:.200}; pass "
            "text_columns=/label_column= (--text-column/--label-column) with names from the header"
        )
    return header.index(column)
