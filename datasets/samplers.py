"""Seeded, resumable, rank-aware samplers.

Every sampler here draws from its own ``torch.Generator`` seeded with ``seed + epoch`` (never
the global RNG), has ``set_epoch`` (call it before each epoch, as with torch's
``DistributedSampler``), ``state_dict``/``load_state_dict`` (resume mid-epoch: what is left of
the epoch after loading equals what is left of an uninterrupted one), and shards across
``num_replicas``/``rank`` — taken from ``torch.distributed`` when it is initialised, else 1/0 —
so that ranks get disjoint positions covering the data and the same number of items/batches
(pytorch#23430 asks for this).

* :class:`BalancedSampler` — class-balanced indices, with or without replacement.
* :class:`BucketBatchSampler` — batches of similar lengths (less padding), batches shuffled.
* :class:`ShardedEvalSampler` — evaluation shards without the duplicated tail of
  ``DistributedSampler`` (pytorch#25162), so metrics count every sample exactly once.

About resuming: ``state_dict()`` records how many items (batches for
:class:`BucketBatchSampler`) this sampler has *yielded*; a ``DataLoader`` prefetches, so pass
the number your loop actually consumed: ``state_dict(consumed=n)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

log = logging.getLogger(__name__)


def _replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """Fill in ``num_replicas``/``rank`` from torch.distributed when initialised, else 1/0."""
    dist = torch.distributed
    active = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if active else 1
    if rank is None:
        rank = dist.get_rank() if active else 0
    if num_replicas < 1:
        raise ValueError(f"num_replicas should be a positive int, but got num_replicas={num_replicas}")
    if not 0 <= rank < num_replicas:
        raise ValueError(
            f"rank should be in [0, {num_replicas - 1}] for num_replicas={num_replicas}, "
            f"but got rank={rank}"
        )
    return num_replicas, rank


class _Resumable:
    """Epoch, seed and position bookkeeping shared by the samplers."""

    seed: int
    epoch: int
    num_replicas: int
    rank: int
    _position: int
    _resume_at: int

    def _init_state(self, seed: int, num_replicas: int | None, rank: int | None) -> None:
        self.seed = int(seed)
        self.epoch = 0
        self.num_replicas, self.rank = _replicas(num_replicas, rank)
        self._position = 0
        self._resume_at = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch: each epoch draws a different, reproducible order."""
        self.epoch = int(epoch)

    def _generator(self) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return g

    def _yield_from(self, items: Sequence[Any]) -> Iterator[Any]:
        start, self._resume_at = self._resume_at, 0
        self._position = start
        for item in items[start:]:
            self._position += 1
            yield item

    def state_dict(self, *, consumed: int | None = None) -> dict[str, int]:
        """Return the epoch, seed and position (items yielded, or ``consumed`` when given)."""
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self._position if consumed is None else int(consumed),
            "num_replicas": self.num_replicas,
            "rank": self.rank,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore :meth:`state_dict` output; the next iteration resumes at its position.

        Raises:
            ValueError: the state was saved with another seed or number of replicas.
        """
        for key in ("seed", "num_replicas"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(
                    f"expected a state saved with {key}={getattr(self, key)} but got "
                    f"{key}={state[key]}; build the sampler with the same settings"
                )
        self.epoch = int(state["epoch"])
        self._resume_at = self._position = int(state["position"])


class BalancedSampler(_Resumable, Sampler[int]):
    """Draw indices so that every class is equally likely, per rank.

    With ``replacement=True`` each draw picks a class uniformly, then a sample of it
    (oversampling small classes); ``num_samples`` defaults to ``len(labels)``. With
    ``replacement=False`` every class contributes the same number of *distinct* samples
    (undersampling, a fresh subset each epoch); ``num_samples`` defaults to, and may not
    exceed, ``num_classes * smallest class``. The ``num_samples`` draws (rounded up to a multiple
    of ``num_replicas``) are dealt round-robin to ranks, so each rank yields
    ``ceil(num_samples / num_replicas)`` indices.

    Args:
        labels: the class of every dataset item (a list or a 1-D tensor, e.g. ``ds.targets``).
        num_samples: draws per epoch over all ranks.
        replacement: draw with replacement (see above).
        seed: the base seed; the epoch's generator is seeded with ``seed + epoch``.
        num_replicas: number of ranks; defaults from torch.distributed, else 1.
        rank: this rank; defaults from torch.distributed, else 0.

    Example:
        >>> s = BalancedSampler([0, 0, 0, 0, 1], num_samples=1000, seed=0)
        >>> sum(i == 4 for i in s) > 400
        True
    """

    def __init__(
        self,
        labels: Sequence[int] | torch.Tensor,
        num_samples: int | None = None,
        replacement: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self.labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        if self.labels.numel() == 0:
            raise ValueError("labels should not be empty, but got 0 labels")
        classes, counts = torch.unique(self.labels, return_counts=True)
        self._by_class = [torch.nonzero(self.labels == c).flatten() for c in classes]
        self.replacement = replacement
        limit = len(classes) * int(counts.min())
        if num_samples is None:
            num_samples = len(self.labels) if replacement else limit
        if num_samples < 1:
            raise ValueError(f"num_samples should be a positive int, but got num_samples={num_samples}")
        if not replacement and num_samples > limit:
            raise ValueError(
                f"num_samples should be at most {limit} without replacement ({len(classes)} "
                f"classes x {int(counts.min())} in the smallest), but got num_samples={num_samples}; "
                "use replacement=True to oversample"
            )
        self.num_samples = num_samples
        self._init_state(seed, num_replicas, rank)
        self._per_rank = -(-num_samples // self.num_replicas)
        weights = (1.0 / counts.double())[torch.searchsorted(classes, self.labels)]
        self._weights = weights

    def __len__(self) -> int:
        return self._per_rank

    def _draws(self) -> list[int]:
        g = self._generator()
        total = self._per_rank * self.num_replicas
        if self.replacement:
            return torch.multinomial(self._weights, total, replacement=True, generator=g).tolist()
        k = len(self._by_class)
        take = [self.num_samples // k + (c < self.num_samples % k) for c in range(k)]
        chosen = torch.cat([
            idx[torch.randperm(len(idx), generator=g)[:n]] for idx, n in zip(self._by_class, take, strict=True)
        ])
        chosen = chosen[torch.randperm(len(chosen), generator=g)]
        # Pad by wrapping so every rank gets the same count, as DistributedSampler does.
        drawn = chosen.tolist()
        return (drawn * -(-total // len(drawn)))[:total]

    def __iter__(self) -> Iterator[int]:
        mine = self._draws()[self.rank :: self.num_replicas]
        return self._yield_from(mine)


class BucketBatchSampler(_Resumable, Sampler[list[int]]):
    """Yield batches of indices whose lengths are similar, in shuffled order.

    Per epoch: shuffle all indices, deal them to ranks (padding by wrapping, or trimming with
    ``drop_last``, to equal counts), then on each rank cut them into pools of
    ``batch_size * pool_batches``, sort each pool by length, cut it into batches and shuffle the
    batches. Every rank yields the same number of batches. With ``shuffle=False`` each rank's
    indices are sorted by length once and batched in that order.

    Args:
        lengths: the length (e.g. token count) of every dataset item.
        batch_size: indices per batch.
        shuffle: shuffle indices and batches each epoch.
        drop_last: drop each rank's final incomplete batch (and trim rather than pad ranks).
        seed: the base seed; the epoch's generator is seeded with ``seed + epoch``.
        num_replicas: number of ranks; defaults from torch.distributed, else 1.
        rank: this rank; defaults from torch.distributed, else 0.
        pool_batches: batches per sorting pool; larger pools pad less and shuffle less.

    Example:
        >>> s = BucketBatchSampler([1, 9, 2, 8], batch_size=2, shuffle=False)
        >>> list(s)
        [[0, 2], [3, 1]]
    """

    def __init__(
        self,
        lengths: Sequence[int] | torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        *,
        pool_batches: int = 100,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive int, but got batch_size={batch_size}")
        if pool_batches < 1:
            raise ValueError(f"pool_batches should be a positive int, but got pool_batches={pool_batches}")
        self.lengths = torch.as_tensor(lengths, dtype=torch.int64).reshape(-1)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.pool_batches = pool_batches
        self._init_state(seed, num_replicas, rank)
        n, r = len(self.lengths), self.num_replicas
        self._per_rank = n // r if drop_last else -(-n // r)
        if self._per_rank == 0 and n:
            raise ValueError(f"got {n} items for num_replicas={r}: every rank needs at least one")

    def __len__(self) -> int:
        if self.drop_last:
            return self._per_rank // self.batch_size
        return -(-self._per_rank // self.batch_size)

    def _batches(self) -> list[list[int]]:
        g = self._generator()
        n, r = len(self.lengths), self.num_replicas
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        total = self._per_rank * r
        if total > n:  # wrap around so every rank gets the same count
            order = torch.cat([order, order.repeat(-(-(total - n) // max(n, 1)))[: total - n]])
        mine = order[:total][self.rank :: r]
        if not self.shuffle:
            mine = mine[torch.argsort(self.lengths[mine], stable=True)]
            return self._cut(mine)
        pool = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for start in range(0, len(mine), pool):
            chunk = mine[start : start + pool]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(self._cut(chunk, keep_partial=True))
        partial = [b for b in batches if len(b) < self.batch_size]
        full = [b for b in batches if len(b) == self.batch_size]
        if not self.drop_last:
            full.extend(partial)
        perm = torch.randperm(len(full), generator=g).tolist()
        return [full[i] for i in perm]

    def _cut(self, indices: torch.Tensor, *, keep_partial: bool | None = None) -> list[list[int]]:
        keep = (not self.drop_last) if keep_partial is None else keep_partial
        flat = indices.tolist()
        out = [flat[i : i + self.batch_size] for i in range(0, len(flat), self.batch_size)]
        if out and len(out[-1]) < self.batch_size and not keep:
            out.pop()
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return self._yield_from(self._batches())


class ShardedEvalSampler(_Resumable, Sampler[int]):
    """Split indices into contiguous, disjoint shards for evaluation: no repeated samples.

    Unlike ``DistributedSampler``, which repeats samples so ranks have equal counts and so
    biases validation metrics (pytorch#25162), shard sizes here differ by at most one. Sum
    correct counts and totals across ranks (``all_reduce``) rather than averaging per-rank
    accuracies. The order is fixed; ``seed``/``set_epoch`` exist for a uniform interface.

    Args:
        dataset_or_len: a sized dataset or its length.
        num_replicas: number of ranks; defaults from torch.distributed, else 1.
        rank: this rank; defaults from torch.distributed, else 0.

    Example:
        >>> [list(ShardedEvalSampler(5, num_replicas=2, rank=r)) for r in (0, 1)]
        [[0, 1, 2], [3, 4]]
    """

    def __init__(
        self, dataset_or_len: Any, num_replicas: int | None = None, rank: int | None = None
    ) -> None:
        n = dataset_or_len if isinstance(dataset_or_len, int) else len(dataset_or_len)
        self._init_state(0, num_replicas, rank)
        base, extra = divmod(n, self.num_replicas)
        self.start = self.rank * base + min(self.rank, extra)
        self.stop = self.start + base + (self.rank < extra)

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[int]:
        return self._yield_from(range(self.start, self.stop))
