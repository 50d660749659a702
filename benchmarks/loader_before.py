"""The ``datasets.DataLoader`` before issue 9, frozen here only as ``bench_epoch.py``'s baseline.

It overrode torch's private ``_index_sampler``/``_get_iterator`` and stepped past its
``__setattr__`` guard; the library no longer does (see ``datasets/loader.py``). Kept so that
the benchmark measures the new loader against the old one in the same run. Its docstring as
it was:

``datasets.DataLoader``: torch's ``DataLoader`` with a batched fast path and clearer errors.

It is a drop-in subclass of :class:`torch.utils.data.DataLoader` (same arguments) that:

- collates an :class:`datasets.images.ImageBatch` (what our image datasets'
  ``__getitems__`` return when no per-sample transform is set) by taking its tensors as they
  are: one indexing operation and one conversion per batch, no per-sample stacking;
- collates anything else with :func:`datasets.collate.default_collate`, and re-raises a
  :class:`~datasets.errors.CollateError` from any ``collate_fn`` with the batch's dataset
  indices added;
- skips a batch that the ``collate_fn`` returned as ``None`` (an all-``None`` batch from
  ``skip_none_collate``) instead of crashing, counting it in :attr:`DataLoader.skipped_batches`;
- with ``num_workers=0`` over our packed datasets, feeds index batches as tensor slices of
  the sampler's permutation (the same indices torch's ``BatchSampler`` would give);
- seeds NumPy in each worker from the worker's torch seed (which torch derives from the
  loader's ``generator``), when no ``worker_init_fn`` is given.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import numpy as np
import torch
import torch.utils.data
from torch.utils.data import Dataset, IterableDataset

from datasets.collate import default_collate
from datasets.errors import CollateError
from datasets.images import ImageBatch, PackedImageDataset

log = logging.getLogger(__name__)

MAX_INDICES_SHOWN = 32


def fast_collate(batch: Any) -> Any:
    """Collate: an :class:`ImageBatch` as its ``(images, targets)``, else ``default_collate``."""
    if isinstance(batch, ImageBatch):
        return batch.as_tuple()
    return default_collate(batch)


def seed_numpy_worker(worker_id: int) -> None:
    """Seed NumPy's global RNG in a worker from the seed torch gave that worker."""
    del worker_id
    np.random.seed(torch.initial_seed() % 2**32)


class _Fetched:
    """What the index-aware wrapper fetches: the dataset's samples and their indices."""

    __slots__ = ("data", "indices")

    def __init__(self, data: Any, indices: Sequence[int]) -> None:
        self.data = data
        self.indices = indices


class _IndexedDataset(Dataset[Any]):
    """Wraps the user's dataset while an iterator runs, so collate knows the batch's indices."""

    def __init__(self, dataset: Dataset[Any]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: Any) -> Any:
        return self.dataset[index]

    def __getitems__(self, indices: Sequence[int]) -> _Fetched:
        getitems = getattr(self.dataset, "__getitems__", None)
        data = getitems(indices) if getitems else [self.dataset[i] for i in indices]
        return _Fetched(data, indices)


class _IndexedCollate:
    """Calls the collate function on fetched data; adds dataset indices to its errors."""

    def __init__(self, collate_fn: Callable[[Any], Any] | None) -> None:
        self.collate_fn = collate_fn

    def __call__(self, fetched: Any) -> Any:
        if not isinstance(fetched, _Fetched):
            return fetched if self.collate_fn is None else self.collate_fn(fetched)
        data = fetched.data
        if self.collate_fn is None:
            if isinstance(data, ImageBatch):
                return data.as_tuple()
            return default_collate(data, indices=[int(i) for i in fetched.indices])
        try:
            return self.collate_fn(data)
        except CollateError as err:
            indices = [int(i) for i in fetched.indices]
            shown = indices[:MAX_INDICES_SHOWN]
            more = f" and {len(indices) - len(shown)} more" if len(indices) > len(shown) else ""
            raise CollateError(f"{err} (batch of dataset indices {shown}{more})") from err


def _index_blocks(sampler: Any) -> Iterator[torch.Tensor]:
    """The sampler's indices as int64 tensors: whole permutations for torch's own samplers.

    For ``SequentialSampler`` and ``RandomSampler`` without replacement this draws exactly
    what their ``__iter__`` draws (same generator calls, in the same order: checked against
    torch's loader by the tests) without a Python int per index; any other sampler is read
    in chunks.
    """
    if type(sampler) is torch.utils.data.SequentialSampler:
        yield torch.arange(len(sampler.data_source), dtype=torch.int64)
        return
    if type(sampler) is torch.utils.data.RandomSampler and not sampler.replacement:
        n = len(sampler.data_source)
        generator = sampler.generator
        if generator is None:  # as RandomSampler.__iter__ does
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            generator = torch.Generator()
            generator.manual_seed(seed)
        for _ in range(sampler.num_samples // n):
            yield torch.randperm(n, generator=generator)
        yield torch.randperm(n, generator=generator)[: sampler.num_samples % n]
        return
    indices = iter(sampler)
    while chunk := list(itertools.islice(indices, 16384)):
        yield torch.tensor(chunk, dtype=torch.int64)


class _TensorBatches:
    """Batches of a ``BatchSampler`` as int64 tensor slices.

    Same indices and grouping as the wrapped ``BatchSampler``, but no Python list and no
    conversion per batch. Used only for our packed image datasets in the main process.
    """

    def __init__(self, batch_sampler: torch.utils.data.BatchSampler) -> None:
        self.batch_sampler = batch_sampler

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[torch.Tensor]:
        size = self.batch_sampler.batch_size
        pending = torch.empty(0, dtype=torch.int64)
        for block in _index_blocks(self.batch_sampler.sampler):
            if len(pending):
                block = torch.cat([pending, block])
            full = len(block) // size * size
            for start in range(0, full, size):
                yield block[start : start + size]
            pending = block[full:]
        if len(pending) and not self.batch_sampler.drop_last:
            yield pending


class DataLoader(torch.utils.data.DataLoader):
    """A drop-in :class:`torch.utils.data.DataLoader` with the batched fast path.

    Takes exactly torch's arguments. Image batches are ``(x float32 [B,1,H,W], y int64 [B])``.

    Attributes:
        skipped_batches: batches the ``collate_fn`` returned as ``None``, skipped so far.

    Example:
        >>> from datasets import ImageFolderDataset, DataLoader  # doctest: +SKIP
        >>> loader = DataLoader(ImageFolderDataset("notMNIST_small"), batch_size=256,
        ...                     shuffle=True, generator=torch.Generator().manual_seed(0))
        ... # doctest: +SKIP
        >>> x, y = next(iter(loader))  # doctest: +SKIP
    """

    def __init__(self, dataset: Dataset[Any], *args: Any, **kwargs: Any) -> None:
        if len(args) >= 6:  # collate_fn given positionally, as torch allows
            args = list(args)  # type: ignore[assignment]
            kwargs["collate_fn"] = args.pop(5)  # type: ignore[attr-defined]
        user_collate = kwargs.pop("collate_fn", None)
        if kwargs.get("worker_init_fn") is None and kwargs.get("num_workers", 0):
            kwargs["worker_init_fn"] = seed_numpy_worker
        batched = kwargs.get("batch_size", 1) is not None or kwargs.get("batch_sampler")
        self._wrap = bool(batched) and not isinstance(dataset, IterableDataset)
        if self._wrap:
            collate: Any = _IndexedCollate(user_collate)
        else:
            collate = user_collate
        # collate_fn was taken out of args above, so it is given once.
        super().__init__(dataset, *args, collate_fn=collate, **kwargs)  # type: ignore[misc]
        self.skipped_batches = 0
        self._tensor_batches = (
            self.num_workers == 0
            and isinstance(dataset, PackedImageDataset)
            and dataset.batched
            and type(self.batch_sampler) is torch.utils.data.BatchSampler
        )

    @property
    def _index_sampler(self) -> Any:
        sampler = super()._index_sampler
        if getattr(self, "_tensor_batches", False) and sampler is self.batch_sampler:
            return _TensorBatches(cast(torch.utils.data.BatchSampler, sampler))
        return sampler

    def _get_iterator(self) -> Any:
        if not self._wrap:
            return super()._get_iterator()
        # torch's iterators read loader.dataset when they start (and send it to workers);
        # give them the index-aware wrapper, then restore the public attribute.
        real = self.dataset
        object.__setattr__(self, "dataset", _IndexedDataset(real))
        try:
            return super()._get_iterator()
        finally:
            object.__setattr__(self, "dataset", real)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in super().__iter__():
            if batch is None:
                self.skipped_batches += 1
                log.debug("skipped an empty batch (%d so far)", self.skipped_batches)
                continue
            yield batch
