"""What the shard writer reads: any map-style dataset, as shards of encoded records.

:func:`record_source` picks the fastest faithful reading of a dataset:

* a dataset exposing ``.data`` (uint8 array or tensor, one row per sample) and ``.targets``
  (like :class:`datasets.PackedImageDataset`) is read from those arrays directly: raw uint8
  pixels, never the float tensors a ``transform`` such as ``ToFloat`` would produce, and
  whole shards at once as numpy structured arrays (:class:`ArraySource`);
* a variable-size image dataset (:class:`datasets.VariableImageDataset`, what
  ``ImageFolderDataset.pack`` gives a folder of mixed sizes) is read as its stored encoded
  bytes, one ``bytes`` field per image (:class:`EncodedImages`), never as decoded pixels;
* any other dataset is read item by item (``dataset[i]``, or ``__getitems__`` in chunks)
  (:class:`ItemSource`): a ``(input, label)`` tuple becomes fields ``input``/``label``, a dict
  keeps its keys. ``bytes`` stay bytes (encoded images), ``str`` is text, an int is an
  ``int``, a 1-D integer tensor of varying length (``input_ids``) is ``tokens`` (int32), any
  other array is a fixed ``array``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from datasets.channelstats import ChannelStats
from datasets.errors import DataFormatError
from datasets.shardformat import Field, encode_record, record_dtype, shard_header

log = logging.getLogger(__name__)

CHUNK_ITEMS = 256


@dataclass
class Chunk:
    """One shard's worth of records: its header and body bytes and pixels for statistics."""

    start: int
    count: int
    parts: list[bytes]
    pixels: list[np.ndarray] = field(default_factory=list)


def _as_numpy(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


class ArraySource:
    """Records from aligned arrays (one row per sample), a shard at a time."""

    def __init__(self, arrays: Mapping[str, Any], *, classes: list[Any] | None = None,
                 shuffle_seed: int | None = None) -> None:
        self.arrays = {name: _as_numpy(a) for name, a in arrays.items()}
        lengths = {len(a) for a in self.arrays.values()}
        if len(lengths) != 1:
            raise DataFormatError(f"arrays should have one length, but got {sorted(lengths)}")
        self.count = lengths.pop()
        self.order = write_order(self.count, shuffle_seed)
        self.schema = [
            Field(name, "int") if a.ndim == 1 and a.dtype.kind in "iu" and name in ("label", "target")
            else Field(name, "array", a.dtype.name, tuple(a.shape[1:]))
            for name, a in self.arrays.items()
        ]
        self.classes = classes
        self.extra: dict[str, Any] = {}
        dtype = record_dtype(self.schema)
        assert dtype is not None  # every field above is fixed
        self.dtype = dtype

    def chunks(self, start: int, shard_size_bytes: int) -> Iterator[Chunk]:
        per_shard = max(1, shard_size_bytes // self.dtype.itemsize)
        pixel_field = stats_field(self.schema)
        for lo in range(start, self.count, per_shard):
            hi = min(lo + per_shard, self.count)
            records = np.empty(hi - lo, dtype=self.dtype)
            if self.order is None:
                for name, array in self.arrays.items():
                    records[name] = array[lo:hi]
            else:  # read the rows in ascending order (a memory map reads forward), placed by
                ids = self.order[lo:hi]  # the permutation
                where = np.argsort(ids)
                for name, array in self.arrays.items():
                    records[name][where] = array[ids[where]]
            header = shard_header(hi - lo, np.full(hi - lo, self.dtype.itemsize))
            pixels = [np.ascontiguousarray(records[pixel_field.name])] if pixel_field else []
            yield Chunk(lo, hi - lo, [header, records.tobytes()], pixels)


class ItemSource:
    """Records from ``dataset[i]``, normalized to dicts of fields."""

    def __init__(self, dataset: Any, *, classes: list[Any] | None = None,
                 shuffle_seed: int | None = None) -> None:
        self.dataset = dataset
        self.count = len(dataset)
        if self.count == 0:
            raise DataFormatError("the dataset is empty: nothing to shard")
        self.order = write_order(self.count, shuffle_seed)
        self.schema = infer_schema(_as_record(dataset[0]))
        self.classes = classes if classes is not None else getattr(dataset, "classes", None)
        self.extra: dict[str, Any] = {}

    def _source_ids(self, lo: int, hi: int) -> list[int]:
        return list(range(lo, hi)) if self.order is None else self.order[lo:hi].tolist()

    def _items(self, start: int) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """``(position in the pack, id in the source, record)`` from position ``start`` on."""
        getitems = getattr(self.dataset, "__getitems__", None)
        step = CHUNK_ITEMS if callable(getitems) else 1
        for lo in range(start, self.count, step):
            ids = self._source_ids(lo, min(lo + step, self.count))
            items = getitems(ids) if callable(getitems) else [self.dataset[ids[0]]]
            for i, (source_id, item) in enumerate(zip(ids, items, strict=True), lo):
                yield i, source_id, _as_record(item)

    def chunks(self, start: int, shard_size_bytes: int) -> Iterator[Chunk]:
        pixel_field = stats_field(self.schema)
        chunk, size = Chunk(start, 0, []), 0
        for i, source_id, record in self._items(start):
            encoded = encode_record(self.schema, _checked(self.schema, record, source_id))
            chunk.parts.append(encoded)
            chunk.count += 1
            size += len(encoded)
            if pixel_field:
                chunk.pixels.append(_as_numpy(record[pixel_field.name])[None])
            if size >= shard_size_bytes:
                yield _with_header(chunk)
                chunk, size = Chunk(i + 1, 0, []), 0
        if chunk.count:
            yield _with_header(chunk)


def _with_header(chunk: Chunk) -> Chunk:
    chunk.parts.insert(0, shard_header(chunk.count, [len(p) for p in chunk.parts]))
    return chunk


def _as_record(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, tuple) and len(item) == 2:
        return {"input": item[0], "label": item[1]}
    raise DataFormatError(f"a sample should be a dict or an (input, label) tuple, but got "
                          f"{type(item).__name__}; wrap the dataset to return one")


def infer_schema(record: Mapping[str, Any]) -> list[Field]:
    """Guess each field's kind from the first record (see the module docstring)."""
    schema = []
    for name, value in record.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            schema.append(Field(name, "bytes"))
        elif isinstance(value, str):
            schema.append(Field(name, "text"))
        elif isinstance(value, (int, np.integer)) or (
            isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point()
        ):
            schema.append(Field(name, "int"))
        else:
            array = _as_numpy(value)
            if array.ndim == 1 and array.dtype.kind in "iu" and name != "image":
                schema.append(Field(name, "tokens"))
            else:
                schema.append(Field(name, "array", array.dtype.name, tuple(array.shape)))
    return schema


def _checked(schema: Sequence[Field], record: Mapping[str, Any], index: int) -> Mapping[str, Any]:
    if set(record) != {f.name for f in schema}:
        raise DataFormatError(f"sample {index} has fields {sorted(record)} but the first sample "
                              f"had {[f.name for f in schema]}; every sample needs the same fields")
    for f in schema:
        if f.kind == "array" and tuple(_as_numpy(record[f.name]).shape) != f.shape:
            raise DataFormatError(f"sample {index} field {f.name!r} has shape "
                                  f"{tuple(_as_numpy(record[f.name]).shape)} but the first had "
                                  f"{f.shape}; resize the images to one size first")
    return record


def stats_field(schema: Sequence[Field]) -> Field | None:
    """The uint8 image field channel statistics are computed on ([H, W] or [H, W, C<=4])."""
    for f in schema:
        if f.kind == "array" and f.dtype == "uint8" and (
            len(f.shape) == 2 or (len(f.shape) == 3 and f.shape[-1] <= 4)
        ):
            return f
    return None


def shard_pixel_sums(pixels: Sequence[np.ndarray]) -> dict[str, Any]:
    """Per-channel count, sum and sum of squares of uint8 images ``[n, H, W(, C)]`` (JSON)."""
    stats = ChannelStats()
    if len(pixels) > 1:  # one histogram per shard, not one per sample
        pixels = [np.concatenate(pixels)]
    for block in pixels:
        stats.add(block if block.ndim == 4 else block[..., None])
    return {"n": stats.pixels, "sum": stats.sums.tolist(), "sumsq": stats.squares.tolist()}


def channel_stats(sums: Sequence[Mapping[str, Any]]) -> dict[str, list[float]] | None:
    """Combine :func:`shard_pixel_sums` of every shard into mean and std per channel, in [0, 1]."""
    stats = ChannelStats()
    for s in sums:
        if s:
            stats.add_sums(np.asarray(s["sum"]), np.asarray(s["sumsq"]), s["n"])
    return stats.as_manifest() if stats.pixels else None


class EncodedImages:
    """``{"image": encoded bytes, "label": int}`` records of a variable-size image store."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.labels = store.labels().tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.store.blob(i), "label": self.labels[i]}


def write_order(count: int, shuffle_seed: int | None) -> np.ndarray | None:
    """The source id of each pack position: a permutation from ``shuffle_seed``, or ``None`` (kept).

    A reader shuffles within a few shards only (:mod:`datasets.streamorder`), so a source sorted
    by class (an image folder, most catalogs) must be shuffled once here, or every batch holds
    one or two classes and SGD forgets the earlier ones. int32 ids where they fit: 400 MB at
    100 M samples.
    """
    if shuffle_seed is None:
        return None
    # shuffled in place: the permutation ``Generator.permutation(count)`` gives, without its
    # int64 copy
    order = np.arange(count, dtype=np.int32 if count < 2**31 else np.int64)
    np.random.default_rng(shuffle_seed).shuffle(order)
    return order


def order_sha256(order: np.ndarray) -> str:
    """The sha256 of ``order`` as little-endian int64, hashed a million ids at a time."""
    digest = hashlib.sha256()
    for start in range(0, len(order), 1 << 20):
        digest.update(order[start:start + (1 << 20)].astype("<i8").tobytes())
    return digest.hexdigest()


def record_source(dataset: Any, *, classes: list[Any] | None = None,
                  shuffle_seed: int | None = None) -> ArraySource | ItemSource:
    """Return the source to write ``dataset`` from (see the module docstring), in the order of
    :func:`write_order`."""
    from datasets.imagestore import VariableImages

    store = getattr(dataset, "store", None)
    if isinstance(store, VariableImages):
        classes = classes if classes is not None else getattr(dataset, "classes", None)
        return ItemSource(EncodedImages(store), classes=classes, shuffle_seed=shuffle_seed)
    data, targets = getattr(dataset, "data", None), getattr(dataset, "targets", None)
    classes = classes if classes is not None else getattr(dataset, "classes", None)
    if data is not None and targets is not None:
        array = _as_numpy(data)
        if array.dtype == np.uint8 and len(array) == len(dataset) == len(targets):
            labels = _as_numpy(targets).astype(np.int64)
            return ArraySource({"image": array, "label": labels}, classes=classes,
                               shuffle_seed=shuffle_seed)
    return ItemSource(dataset, classes=classes, shuffle_seed=shuffle_seed)
