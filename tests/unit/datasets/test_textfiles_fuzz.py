"""Fuzz: random and mutated bytes into the CSV/TSV/JSONL readers give records or DatasetError."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasets.errors import DatasetError
from datasets.text import TextClassificationDataset
from datasets.textfiles import read_records

pytestmark = pytest.mark.fuzz

VALID = {
    "csv": b'\xef\xbb\xbflabel,title,description\n1,"a, b","c\nd"\n2,e,"f ""g"""\n1,h,i\\j\n',
    "tsv": b"ham\thello there\nspam\twin \"cash\"\n\nham\tok\n",
    "jsonl": b'{"text": "a", "label": 1}\n{"text": "b", "label": -1}\n\n{"text": "c", "label": 1}\n',
}
PIECES = [b",", b"\t", b'"', b"\n", b"\r\n", b"\\", b"\xef\xbb\xbf", b"\x00", b"\xe9", b"{", b"}",
          b"[", b"]", b":", b"label", b"text", b"1", b"-1", b" ", b"null", b"\xff\xfe"]


def _check(data: bytes, fmt: str, **kwargs: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data.{fmt}"
        path.write_bytes(data)
        try:
            records = read_records(path, format=fmt, **kwargs)  # type: ignore[arg-type]
        except DatasetError:
            return
        assert len(records.texts) == len(records.labels) == len(records.lines) > 0
        assert all(isinstance(t, str) and t.strip() for t in records.texts)
        try:
            ds = TextClassificationDataset.from_records(records)
        except DatasetError:
            return
        assert sorted(set(ds.labels)) == list(range(len(ds.classes or [])))


@given(data=st.binary(max_size=400), fmt=st.sampled_from(sorted(VALID)))
def test_random_bytes(data: bytes, fmt: str) -> None:
    _check(data, fmt)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    fmt = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[fmt])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            data[at:at] = draw(st.sampled_from(PIECES))
        elif action == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        else:
            data[at:at + 1] = bytes([draw(st.integers(0, 255))])
    return bytes(data), fmt


@given(case=mutated(), header=st.sampled_from(["auto", True, False]))
def test_mutated_valid_files(case: tuple[bytes, str], header: object) -> None:
    data, fmt = case
    _check(data, fmt, header=header)


@given(rows=st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=4), max_size=12),
       label=st.sampled_from([0, 1, "label", None]))
def test_structured_csv_text(rows: list[list[str]], label: object) -> None:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    kwargs = {} if label is None else {"label_column": label}
    _check(buf.getvalue().encode("utf-8", "surrogatepass"), "csv", **kwargs)


@given(values=st.lists(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["text", "label", "x"]), inner, max_size=3), max_leaves=8), max_size=6))
def test_jsonl_values_of_any_shape(values: list[object]) -> None:
    lines = "".join(json.dumps(v) + "\n" for v in values)
    _check(lines.encode("utf-8", "surrogatepass"), "jsonl")
