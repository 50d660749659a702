"""Fuzz: random and mutated IDX files give a dataset or a DatasetError, never another exception."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasets import DatasetError, IDXDataset
from datasets.idx import read_idx_labels

IMAGES = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
LABELS = np.array([0, 1, 2], dtype=np.uint8)


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


def _load(images: bytes, labels: bytes, *, gz: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="idx-fuzz-") as temp:
        folder = Path(temp)
        suffix = ".gz" if gz else ""
        paths = folder / f"images-idx3-ubyte{suffix}", folder / f"labels-idx1-ubyte{suffix}"
        for path, data in zip(paths, (images, labels), strict=True):
            path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
        try:
            ds = IDXDataset(*paths, cache_dir=folder / "cache")
        except DatasetError:
            return
        assert len(ds) >= 1 and ds.data.shape[0] == len(ds.targets)


# half the edits hit the 16-byte header, where the hostile dimensions live
edits = st.lists(st.tuples(st.integers(0, 15) | st.integers(0, 200), st.integers(0, 255)),
                 max_size=6)
cuts = st.none() | st.integers(0, 90)


@pytest.mark.fuzz
@given(edits=edits, cut=cuts, label_edits=edits, gz=st.booleans())
def test_mutated_idx_files_load_or_raise_a_dataset_error(
        edits: list[tuple[int, int]], cut: int | None, label_edits: list[tuple[int, int]],
        gz: bool) -> None:
    _load(_mutate(_idx(IMAGES), edits, cut), _mutate(_idx(LABELS), label_edits, None), gz=gz)


@pytest.mark.fuzz
@given(images=st.binary(max_size=120), labels=st.binary(max_size=40), gz=st.booleans())
def test_random_bytes_load_or_raise_a_dataset_error(images: bytes, labels: bytes,
                                                    gz: bool) -> None:
    _load(images, labels, gz=gz)


@pytest.mark.fuzz
@given(data=st.binary(max_size=64))
def test_random_gz_label_files_read_or_raise_a_dataset_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="idx-fuzz-") as temp:
        path = Path(temp) / "labels-idx1-ubyte.gz"
        path.write_bytes(data)  # not even gzip, mostly
        try:
            labels = read_idx_labels(path)
        except DatasetError:
            return
        assert labels.dtype == np.int64
