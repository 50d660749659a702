"""The order of a streamed epoch and how it is split over ranks, with elastic resume.

**Global order.** From ``(seed, epoch)`` alone: the shards are permuted, consecutive shards of
that permutation are grouped into blocks of ``block_shards``, and the samples of each block are
permuted together. Every rank computes the same order without talking to the others, and a
reader needs only one block's shards at a time (plus prefetch), whatever the number of ranks.
Without ``shuffle`` the order is the dataset's.

**Ranks.** The positions still to visit in an epoch are dealt in contiguous spans: with ``M``
positions and ``W`` ranks each rank gets ``ceil(M / W)``; the last spans are padded by
repeating the first positions (at most ``W - 1`` repeats, as ``DistributedSampler`` does), so
every rank yields the same count; with ``M`` divisible by ``W`` each sample is seen once.
Contiguous spans keep each rank on its own blocks: one rank fetches about ``1/W`` of the shards.

**Resume.** A *stage* ``(W, k)`` says that each of ``W`` ranks consumed the first ``k``
positions of its span (ranks step together under DDP). The positions left after a list of
stages are computed exactly (intervals, never the whole order), then dealt again over the
current ranks; so a run may resume with another world size or number of workers and still visit
every remaining sample once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Intervals = list[tuple[int, int]]


class EpochOrder:
    """The sample ids of one epoch in visiting order, computed one block at a time."""

    def __init__(self, counts: Sequence[int] | np.ndarray, *, seed: int, epoch: int, shuffle: bool,
                 block_shards: int) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.total = int(self.counts.sum())
        self.seed, self.epoch, self.shuffle = seed, epoch, shuffle
        shards = len(self.counts)
        self.shard_order = (np.random.default_rng([seed, epoch]).permutation(shards)
                            if shuffle else np.arange(shards))
        self.blocks = [self.shard_order[i:i + block_shards] for i in range(0, shards, block_shards)]
        sizes = [int(self.counts[b].sum()) for b in self.blocks]
        self.block_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._cached: tuple[int, np.ndarray] | None = None

    def block_of(self, shard: int) -> int:
        """The block number holding ``shard`` in this epoch."""
        position = int(np.flatnonzero(self.shard_order == shard)[0])
        return position // len(self.blocks[0])

    def _block(self, b: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != b:
            ids = np.concatenate([np.arange(self.starts[s], self.starts[s] + self.counts[s])
                                  for s in self.blocks[b]])
            if self.shuffle:
                np.random.default_rng([self.seed, self.epoch, b + 1]).shuffle(ids)
            self._cached = (b, ids)
        return self._cached[1]

    def take(self, lo: int, hi: int) -> np.ndarray:
        """The sample ids at positions ``[lo, hi)`` of the epoch."""
        if not self.shuffle:
            return np.arange(lo, hi, dtype=np.int64)
        parts = []
        b = int(np.searchsorted(self.block_starts, lo, side="right")) - 1
        while lo < hi:
            begin, end = self.block_starts[b], self.block_starts[b + 1]
            stop = min(hi, int(end))
            parts.append(self._block(b)[lo - begin:stop - begin])
            lo, b = stop, b + 1
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def length(intervals: Intervals) -> int:
    return sum(hi - lo for lo, hi in intervals)


def select(intervals: Intervals, a: int, b: int) -> Intervals:
    """Map positions ``[a, b)`` of the concatenated intervals back to global intervals."""
    out: Intervals = []
    offset = 0
    for lo, hi in intervals:
        n = hi - lo
        s, e = max(a - offset, 0), min(b - offset, n)
        if s < e:
            out.append((lo + s, lo + e))
        offset += n
        if offset >= b:
            break
    return out


def span(remaining: int, world_size: int, rank: int) -> tuple[int, int]:
    """This rank's ``[start, end)`` in the remaining positions; ``end`` may pass ``remaining``."""
    per_rank = -(-remaining // world_size)
    return rank * per_rank, (rank + 1) * per_rank


def remaining_after(total: int, stages: Sequence[Sequence[int]]) -> Intervals:
    """The global positions not yet consumed after ``stages`` of ``(world_size, consumed)``."""
    intervals: Intervals = [(0, total)] if total else []
    for world_size, consumed in stages:
        m = length(intervals)
        keep: Intervals = []
        cursor = 0
        for rank in range(world_size):
            start, end = span(m, world_size, rank)
            done = min(start + min(consumed, end - start), m)
            if start >= m:
                break
            keep += select(intervals, cursor, start)
            cursor = max(cursor, done)
        keep += select(intervals, cursor, m)
        intervals = _merge(keep)
    return intervals


def rank_positions(intervals: Intervals, world_size: int, rank: int) -> Intervals:
    """The global positions this rank visits, padded by wrapping to the first ones."""
    m = length(intervals)
    if m == 0:
        return []
    start, end = span(m, world_size, rank)
    out = select(intervals, start, min(end, m))
    pad_from = max(start, m)
    while pad_from < end:  # wrap (more than once only when m < world_size)
        a = (pad_from - m) % m
        b = min(m, a + end - pad_from)
        out += select(intervals, a, b)
        pad_from += b - a
    return out


def _merge(intervals: Intervals) -> Intervals:
    out: Intervals = []
    for lo, hi in intervals:
        if hi <= lo:
            continue
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out
