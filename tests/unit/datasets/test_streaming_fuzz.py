"""Fuzz: a hostile index.json or shard header gives a ShardError/DataFormatError or a correct
read, never another exception, a hang or an allocation larger than the file (issue 16)."""

from __future__ import annotations

import hashlib
import json
import signal
import tempfile
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from datasets import DataFormatError, ShardError, StreamingDataset, verify_shards, write_shards
from datasets.shardformat import FORMAT, VERSION, ShardTable, parse_index
from tests.unit.datasets.shard_factory import digits

EXPECTED = (ShardError, DataFormatError)
_PEAK_BYTES = 32 << 20  # the packs here are a few KB: anything near this is a count believed
_EXAMPLE_S = 30.0  # an example takes milliseconds; this only catches a hang




class Notes:
    classes = ["x", "y", "z"]

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"text": "é" * (i % 5), "ids": torch.arange(i % 4 + 1), "label": i % 3}


def _build() -> dict[str, tuple[dict[str, Any], list[bytes]]]:
    packs = {}
    with tempfile.TemporaryDirectory() as temp:
        for name, source, size in (("fixed", digits(12), 24 * 6), ("variable", Notes(), 120)):
            folder = Path(temp) / name
            write_shards(source, folder, shard_size_bytes=size, shuffle=False)
            index = json.loads((folder / "index.json").read_text())
            packs[name] = (index, [(folder / s["name"]).read_bytes() for s in index["shards"]])
    return packs


PACKS = _build()

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _too_slow(signum: int, frame: Any) -> None:
    raise TimeoutError(f"one fuzz example ran past {_EXAMPLE_S} s: a hang, or a count believed")


@contextmanager
def _bounded_memory() -> Iterator[None]:
    """Each example: peak memory under ``_PEAK_BYTES`` and time under ``_EXAMPLE_S`` (the
    profile has no deadline: this machine is shared, so only a hang should fail)."""
    timed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _too_slow)
        signal.setitimer(signal.ITIMER_REAL, _EXAMPLE_S)
    tracemalloc.start()
    try:
        yield
        assert tracemalloc.get_traced_memory()[1] < _PEAK_BYTES
    finally:
        tracemalloc.stop()
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# arbitrary JSON, and arbitrary JSON under the keys of an index of the right format
INDEXES = JSON | st.fixed_dictionaries(
    {"format": st.just(FORMAT), "version": st.just(VERSION)},
    optional={"schema": JSON, "shards": JSON, "count": JSON, "classes": JSON})


@pytest.mark.fuzz
@given(document=INDEXES)
def test_arbitrary_json_is_an_index_or_a_shard_error(document: Any) -> None:
    with _bounded_memory():
        try:
            index = parse_index(json.dumps(document), "fuzz/index.json")
            ShardTable(index["shards"])
        except EXPECTED:
            return


# a place in the index and a value for it
PLACES = st.sampled_from(["count", "classes", "schema", "shards", "format", "version",
                          "schema.0", "schema.0.kind", "schema.0.shape", "schema.0.dtype",
                          "schema.0.name", "shards.0", "shards.0.name", "shards.0.count",
                          "shards.0.start", "shards.0.size_bytes", "shards.0.sha256",
                          "shards.1.count"])


def _set(index: dict[str, Any], place: str, value: Any) -> None:
    *path, last = place.split(".")
    node: Any = index
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@contextmanager
def _served(index: dict[str, Any], shards: list[bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="stream-fuzz-") as temp:
        folder = Path(temp) / "pack"
        folder.mkdir()
        for entry, data in zip(index["shards"], shards, strict=True):
            (folder / entry["name"]).write_bytes(data)
        (folder / "index.json").write_text(json.dumps(index))
        yield folder


def _read_everything(folder: Path) -> None:
    """Read every sample and verify the pack; a read that succeeds must be a correct one."""
    try:
        ds = StreamingDataset(folder, cache_dir=folder.parent / "cache", prefetch=0,
                              shuffle=False, transform=lambda x: x)
        labels = [ds[i][1] if isinstance(ds[i], tuple) else ds[i]["label"] for i in range(len(ds))]
    except EXPECTED:
        labels = None
    if labels is not None:
        assert len(labels) == int(json.loads((folder / "index.json").read_text())["count"])
        assert all(0 <= y < len(ds.classes or [None] * (max(labels) + 1)) for y in labels)
    try:
        verify_shards(folder)
    except EXPECTED:
        return


@pytest.mark.fuzz
@given(kind=st.sampled_from(["fixed", "variable"]), place=PLACES, value=JSON)
def test_a_changed_index_entry_reads_or_raises_a_shard_error(kind: str, place: str, value: Any) -> None:
    index, shards = PACKS[kind]
    index = json.loads(json.dumps(index))
    _set(index, place, value)
    names = index.get("shards")
    if not (isinstance(names, list) and len(names) == len(shards) and all(
            isinstance(s, dict) and isinstance(s.get("name"), str) and s["name"].startswith("shard-")
            for s in names)):
        with _bounded_memory():
            try:
                parse_index(json.dumps(index), "fuzz/index.json")
            except EXPECTED:
                pass
        return
    with _served(index, shards) as folder, _bounded_memory():
        _read_everything(folder)


# mostly header bytes (the magic, the count and the offsets: 16 + 8 * (count + 1) bytes), and
# anywhere in the records (lengths of variable fields, labels)
EDITS = st.lists(st.tuples(st.integers(0, 80) | st.integers(0, 10**6), st.integers(0, 255)),
                 min_size=1, max_size=6)


@pytest.mark.fuzz
@given(kind=st.sampled_from(["fixed", "variable"]), edits=EDITS, shard=st.integers(0, 1),
       count=st.none() | st.integers(0, 2**64 - 1))
def test_hostile_shard_headers_read_or_raise_a_shard_error(
        kind: str, edits: list[tuple[int, int]], shard: int, count: int | None) -> None:
    # the index is made to match the hostile shard's hash and size, as a hostile server would
    index, shards = PACKS[kind]
    index, shards = json.loads(json.dumps(index)), list(shards)
    data = bytearray(shards[shard])
    if count is not None:
        data[8:16] = count.to_bytes(8, "little")
    for position, value in edits:
        data[position % len(data)] = value
    shards[shard] = bytes(data)
    index["shards"][shard].update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    with _served(index, shards) as folder, _bounded_memory():
        _read_everything(folder)
