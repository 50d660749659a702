"""Read a sharded pack from a folder, ``http(s)://`` or ``s3://`` as a map-style dataset.

:class:`StreamingDataset` maps a global sample id to its record, fetching its shard on first
use (see :mod:`datasets.shardcache`); :class:`StreamingSampler` yields the ids this rank visits
this epoch (order and partition: :mod:`datasets.streamorder`). The sampler runs in the main
process, so the ``DataLoader`` returns its order whatever ``num_workers`` is, and a resume
(``state_dict(consumed=n)`` / ``load_state_dict``) is exact with any number of workers or
ranks::

    ds = StreamingDataset("https://host/packs/letters", cache_dir="cache", cache_limit=2 << 30)
    sampler = StreamingSampler(ds)             # ranks from torch.distributed when initialised
    loader = DataLoader(ds, batch_size=256, sampler=sampler, num_workers=2)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for images, labels in loader: ...

A sample is ``(input, label)`` when the records have a ``label`` field and one other field
(``transform`` applies to the input, ``target_transform`` to the label), else the record dict
(``transform`` applies to the dict). Images come back channel-first, as from every other image
dataset: uint8 ``array`` fields written ``[H, W]`` or ``[H, W, C]`` and encoded image ``bytes``
(``decode=False`` keeps the bytes) as uint8 ``[C, H, W]``; with ``transform=None`` an image input
of an ``(input, label)`` pack gets ``ToFloat()`` (``float32`` ``[C, H, W]`` in ``[-1, 1]``), so
batches are ``[B, C, H, W]``. Other ``array`` fields come back as written, ``tokens`` as int64
tensors, ``text`` as ``str``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from datasets.errors import DataFormatError, DatasetNotFoundError, ShardError
from datasets.imagedecode import DecodeOptions, UnreadableImageError, decode_image, sniff_format
from datasets.samplers import _replicas
from datasets.shardcache import ShardCache
from datasets.shardcheck import check_header, check_label, label_count
from datasets.shardformat import (
    INDEX_FILE,
    Field,
    ShardTable,
    decode_record,
    parse_index,
    record_dtype,
)
from datasets.storage import open_store
from datasets.streamorder import EpochOrder, length, rank_positions, remaining_after
from datasets.transforms import ToFloat
from loaders.cache import cache_root
from loaders.retry import RetryPolicy

log = logging.getLogger(__name__)

Transform = Callable[[Any], Any]
_TAKE = 4096
_PLANAR = DecodeOptions(channels_first=True)


class _Shard:
    """One memory-mapped shard file."""

    def __init__(self, path: os.PathLike[str], schema: Sequence[Field],
                 entry: dict[str, Any]) -> None:
        self.buffer = np.memmap(path, dtype=np.uint8, mode="r")
        self.where = os.fspath(path)
        self.offsets = check_header(self.buffer, entry, schema, self.where)  # not the index's word
        self.schema = schema
        dtype = record_dtype(schema)
        first = int(self.offsets[0])
        self.records = None if dtype is None else self.buffer[first:].view(dtype)

    def record(self, i: int) -> dict[str, Any]:
        if self.records is not None:
            row = self.records[i]
            return {f.name: (int(row[f.name]) if f.kind == "int" else row[f.name]) for f in self.schema}
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        try:
            return decode_record(self.schema, self.buffer[lo:hi].data)
        except (ShardError, UnicodeDecodeError) as err:
            raise ShardError(f"{self.where}: record {i} is malformed ({err}); the pack is "
                             "damaged, write it again") from err


class StreamingDataset(Dataset[Any]):
    """A sharded pack (see :mod:`datasets.shardformat`) read on demand from a URL.

    Args:
        url: the pack: a folder, ``file://``, ``http(s)://`` or ``s3://bucket/prefix``.
        cache_dir: the cache home (default :func:`loaders.cache_root`); shards go under
            ``streaming/<index hash>/``.
        cache_limit: bytes of shards kept on disk (``None``: all); at least
            ``block_shards + prefetch + 1`` of the largest shard.
        shuffle: shuffle shards and samples within blocks of shards (see :class:`StreamingSampler`).
        seed: the shuffle seed.
        block_shards: shards whose samples are shuffled together.
        transform: applied to the input (or the record dict, see the module docstring);
            ``None`` gives an image input ``ToFloat()``.
        target_transform: applied to the label.
        prefetch: shards after the current block fetched ahead (0: no background fetch);
            one background thread fetches in reading order, after the shard being waited for.
        endpoint_url: an S3-compatible endpoint for ``s3://``.
        decode: decode encoded image ``bytes`` fields (JPEG, PNG, GIF, BMP, TIFF, WebP) to uint8
            ``[C, H, W]`` with :func:`datasets.imagedecode.decode_image`.
        progress: a tqdm bar per fetched shard.
        retry: timeouts, retries and the stall rule of ``http(s)://`` fetches
            (:class:`loaders.RetryPolicy`; default: its defaults).

    Raises:
        DatasetNotFoundError: no ``index.json`` at ``url``.
        ShardError: the index is malformed; later, a shard fails verification twice.
        DataFormatError: later, a sample's image cannot be decoded (names the sample and shard).
    """

    def __init__(self, url: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None,
                 cache_limit: int | None = None, shuffle: bool = True, seed: int = 0,
                 block_shards: int = 4, transform: Transform | None = None,
                 target_transform: Transform | None = None, prefetch: int = 2,
                 endpoint_url: str | None = None, decode: bool = True, progress: bool = False,
                 retry: RetryPolicy | None = None) -> None:
        if block_shards < 1 or prefetch < 0:
            raise ValueError(f"block_shards should be >= 1 and prefetch >= 0, but got "
                             f"block_shards={block_shards}, prefetch={prefetch}")
        store = open_store(url, endpoint_url=endpoint_url, retry=retry)
        raw = store.read_bytes(INDEX_FILE)
        if raw is None:
            raise DatasetNotFoundError(f"no {INDEX_FILE} at {store.describe(INDEX_FILE)}; write a "
                                       "pack with python -m datasets.shard SOURCE OUT first")
        index = parse_index(raw, store.describe(INDEX_FILE))
        # the shard list as arrays (see ShardTable); the rest of the index stays as parsed
        self.shards = ShardTable(index.pop("shards"))
        self.url, self.index = os.fspath(url), index
        self.schema: list[Field] = self.index["schema"]
        self.counts, self.starts = self.shards.counts, self.shards.starts
        _check_limit(cache_limit, self.shards, block_shards + prefetch + 1)
        folder = cache_root(cache_dir) / "streaming" / hashlib.sha256(raw).hexdigest()[:16]
        del raw, index
        self.cache = ShardCache(store, self.shards, folder, cache_limit=cache_limit,
                                prefetch_threads=min(prefetch, 1), progress=progress)
        self.shuffle, self.seed, self.block_shards, self.prefetch = shuffle, seed, block_shards, prefetch
        self.target_transform, self.decode = target_transform, decode
        self.epoch = 0
        self._open: OrderedDict[int, _Shard] = OrderedDict()
        self._order: EpochOrder | None = None
        names = [f.name for f in self.schema]
        self._pair = "label" in names and len(names) == 2
        self._input = next((n for n in names if n != "label"), "")
        self._images = {f.name for f in self.schema if _is_image(f, decode=decode)}
        self._classes = label_count(self.schema, self.index.get("classes"))
        self.transform: Transform | None = (
            ToFloat() if transform is None and self._pair and self._input in self._images
            else transform)

    def __getstate__(self) -> dict[str, Any]:  # workers (spawn too) reopen shards themselves
        state = dict(self.__dict__)
        state.update(_open=OrderedDict(), _order=None)
        return state

    @property
    def classes(self) -> list[Any] | None:
        """Class names from the index (label ``i`` is ``classes[i]``)."""
        return self.index.get("classes")

    def __len__(self) -> int:
        return int(self.index["count"])

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (for the order that prefetching follows; the sampler calls it)."""
        self.epoch = int(epoch)

    def epoch_order(self, epoch: int) -> EpochOrder:
        """The global visiting order of ``epoch`` (see :mod:`datasets.streamorder`)."""
        if self._order is None or self._order.epoch != epoch:
            self._order = EpochOrder(self.counts, seed=self.seed, epoch=epoch,
                                     shuffle=self.shuffle, block_shards=self.block_shards)
        return self._order

    def _shard(self, k: int) -> _Shard:
        shard = self._open.get(k)
        if shard is not None:
            self._open.move_to_end(k)
            return shard
        upcoming = self._upcoming(k)
        for done in [j for j in self._open if j not in upcoming]:
            del self._open[done]  # unmapped as it is unpinned: no shard is mapped unpinned
        self.cache.keep = set(upcoming)  # pinned (see datasets.shardcache): never evicted
        path = self.cache.path(k)  # first, alone: background fetches would share its bandwidth
        self.cache.prefetch(s for s in upcoming if s != k)
        shard = self._map(k, path)
        self._open[k] = shard
        return shard

    def _map(self, k: int, path: os.PathLike[str]) -> _Shard:
        """Map shard ``k``; one deleted meanwhile (by hand, a cleaner) is fetched once more."""
        try:
            return _Shard(path, self.schema, self.shards.entry(k))
        except FileNotFoundError:
            log.warning("shard %r vanished from the cache %s before it was opened; fetching it "
                        "again", self.shards.name(k), os.fspath(path))
        path = self.cache.path(k)
        try:
            return _Shard(path, self.schema, self.shards.entry(k))
        except FileNotFoundError as err:
            raise ShardError(f"shard {self.shards.name(k)!r} vanished twice from the cache "
                             f"{os.fspath(path)} before it could be opened: something else "
                             "deletes files there; give this pack a cache_dir of its own") from err

    def _upcoming(self, k: int) -> list[int]:
        """Shard ``k``'s block and the next ``prefetch`` shards, in the order they are read."""
        order = self.epoch_order(self.epoch)
        b = order.block_of(k)
        ahead = order.shard_order[b * self.block_shards:(b + 1) * self.block_shards + self.prefetch]
        return [int(s) for s in ahead]

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(f"index should be in [0, {len(self)}), but got {index}")
        k = int(np.searchsorted(self.starts, index, side="right")) - 1
        return self._named(k, index, self._shard(k).record(index - int(self.starts[k])))

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """A batch: records of one shard are read together (one numpy gather when fixed)."""
        ids = np.asarray(indices, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"indices should be in [0, {len(self)}), but got {ids.min()}..{ids.max()}")
        shards = np.searchsorted(self.starts, ids, side="right") - 1
        out: list[Any] = [None] * len(ids)
        for k in dict.fromkeys(shards.tolist()):  # shards in order of first use
            where = np.flatnonzero(shards == k)
            shard = self._shard(k)
            local = ids[where] - int(self.starts[k])
            for pos, record in zip(where.tolist(), self._records(shard, local), strict=True):
                out[pos] = self._named(k, int(ids[pos]), record, converted=shard.records is not None)
        return out

    def _records(self, shard: _Shard, local: np.ndarray) -> list[dict[str, Any]]:
        if shard.records is None:
            return [shard.record(int(i)) for i in local]
        rows = shard.records[local]
        columns: dict[str, list[Any]] = {}
        for f in self.schema:
            column = rows[f.name]
            if f.kind == "int":
                columns[f.name] = column.tolist()
                continue
            if f.name in self._images:  # [N, H, W(, C)] -> [N, C, H, W], one copy per batch
                column = column[:, None] if column.ndim == 3 else column.transpose(0, 3, 1, 2)
            columns[f.name] = list(torch.from_numpy(np.ascontiguousarray(column)).unbind(0))
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]

    def _named(self, k: int, index: int, record: dict[str, Any], *, converted: bool = False) -> Any:
        # a label with no class fails here, naming shard and sample, not as torch's IndexError
        if self._classes is not None and not 0 <= record["label"] < self._classes:
            check_label(record["label"], self._classes, shard=f"{self.shards.name(k)!r} of {self.url}",
                        record=index)
        try:
            return self._sample(record, converted=converted)
        except UnreadableImageError as err:
            raise DataFormatError(
                f"sample {index} ({self.shards.name(k)!r} of {self.url}) has an unreadable image: "
                f"{err.reason}; write the pack again from a good source, or pass decode=False "
                "to get the bytes") from err

    def _sample(self, record: dict[str, Any], *, converted: bool = False) -> Any:
        out = record if converted else {f.name: self._value(f, record[f.name]) for f in self.schema}
        if not self._pair:
            return self.transform(out) if self.transform else out
        x, y = out[self._input], out["label"]
        return (self.transform(x) if self.transform else x,
                self.target_transform(y) if self.target_transform else y)

    def _value(self, f: Field, value: Any) -> Any:
        if f.kind == "array":
            return torch.from_numpy(_channels_first(value) if f.name in self._images
                                    else np.array(value))
        if f.kind == "tokens":
            return torch.from_numpy(value.astype(np.int64))
        if f.kind == "bytes" and self.decode and sniff_format(bytes(value[:12])) is not None:
            # the one decoder (bit depth, alpha, EXIF, bombs), straight to [C, H, W] planes
            pixels, _ = decode_image(bytes(value), _PLANAR)
            return torch.from_numpy(pixels)
        return value

    def __repr__(self) -> str:
        return (f"StreamingDataset({self.url!r}, N={len(self)}, shards={len(self.counts)}, "
                f"fields={[f.name for f in self.schema]})")


def _is_image(f: Field, *, decode: bool) -> bool:
    """A uint8 ``[H, W]`` or ``[H, W, C]`` (C = 1, 3, 4) array, or (decoded) encoded bytes."""
    if f.kind == "bytes":
        return decode
    shape = tuple(f.shape)
    return (f.kind == "array" and f.dtype == "uint8"
            and (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))))


def _channels_first(hwc: np.ndarray) -> np.ndarray:
    """A ``[C, H, W]`` copy of an ``[H, W]`` or ``[H, W, C]`` array (numpy: torch's permuted
    uint8 copy took 0.7-9 ms for 500x375x3 here, numpy's 0.4 ms)."""
    # Always a copy: the source is the read-only shard mapping (ascontiguousarray would return
    # a view of it for C = 1, which is already contiguous as [1, H, W]).
    return np.array(hwc[None]) if hwc.ndim == 2 else hwc.transpose(2, 0, 1).copy()


def _check_limit(cache_limit: int | None, shards: ShardTable, needed: int) -> None:
    if cache_limit is None:
        return
    largest = int(shards.size_bytes.max(initial=0))
    floor = largest * min(needed, len(shards))
    if cache_limit < floor:
        raise ValueError(
            f"cache_limit should be at least {floor:,} bytes ({min(needed, len(shards))} shards of "
            f"up to {largest:,} bytes: a block, the prefetch and one more), but got "
            f"cache_limit={cache_limit:,}; raise it or lower block_shards/prefetch")


class StreamingSampler(Sampler[int]):
    """The sample ids one rank visits in an epoch of a :class:`StreamingDataset`.

    Args:
        dataset: the streamed dataset (its ``seed``, ``shuffle`` and ``block_shards`` decide
            the order).
        num_replicas: number of ranks; defaults from torch.distributed, else 1.
        rank: this rank; defaults from torch.distributed, else 0.

    Each rank yields ``ceil(remaining / num_replicas)`` ids; see :mod:`datasets.streamorder`
    for the order, the padding rule and how a resume with other ranks stays exact.
    """

    def __init__(self, dataset: StreamingDataset, *, num_replicas: int | None = None,
                 rank: int | None = None) -> None:
        self.dataset = dataset
        self.num_replicas, self.rank = _replicas(num_replicas, rank)
        self.epoch = 0
        self.stages: list[list[int]] = []
        self._position = 0

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` (a loaded mid-epoch state for the same epoch is kept)."""
        if int(epoch) != self.epoch:
            self.stages = []
        self.epoch = int(epoch)
        self.dataset.set_epoch(self.epoch)

    def _positions(self) -> list[tuple[int, int]]:
        remaining = remaining_after(len(self.dataset), self.stages)
        return rank_positions(remaining, self.num_replicas, self.rank)

    def __len__(self) -> int:
        return length(self._positions())

    def __iter__(self) -> Iterator[int]:
        self.dataset.set_epoch(self.epoch)
        order = self.dataset.epoch_order(self.epoch)
        self._position = 0
        for lo, hi in self._positions():
            for start in range(lo, hi, _TAKE):
                for i in order.take(start, min(hi, start + _TAKE)).tolist():
                    self._position += 1
                    yield i

    def state_dict(self, *, consumed: int | None = None) -> dict[str, Any]:
        """Return where this epoch stands: ids yielded by each rank (or ``consumed`` when given).

        Pass the number of samples your loop consumed on this rank since the epoch (or the
        last load) started: a ``DataLoader`` prefetches, so the sampler has yielded more. Under
        DDP every rank consumes the same number, so rank 0's state describes all ranks.
        """
        done = self._position if consumed is None else int(consumed)
        return {"seed": self.dataset.seed, "shuffle": self.dataset.shuffle,
                "num_samples": len(self.dataset), "epoch": self.epoch,
                "stages": [*self.stages, [self.num_replicas, done]]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` output, with any number of ranks or workers.

        Raises:
            ValueError: the state is of another dataset size, seed or shuffle setting.
        """
        for key, mine in (("seed", self.dataset.seed), ("shuffle", self.dataset.shuffle),
                          ("num_samples", len(self.dataset))):
            if state[key] != mine:
                raise ValueError(f"expected a state saved with {key}={mine!r} but got "
                                 f"{key}={state[key]!r}; open the same pack with the same seed")
        self.epoch = int(state["epoch"])
        self.stages = [[int(w), int(k)] for w, k in state["stages"]]
        self._position = 0
        self.dataset.set_epoch(self.epoch)
