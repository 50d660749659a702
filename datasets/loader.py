"""``datasets.DataLoader``: torch's ``DataLoader`` with a batched fast path and clearer errors.

It is a subclass of :class:`torch.utils.data.DataLoader` that only chooses defaults in
``__init__`` and filters what ``__iter__`` yields; everything goes through torch's public
extension points:

- ``batch_sampler``: with ``batch_size`` set and no ``sampler``/``batch_sampler`` given, the
  batches come from an :class:`IndexBatchSampler`: ``range(n)`` or one
  ``torch.randperm(n, generator=generator)`` per epoch, cut into batches. For our packed image
  datasets (``num_workers=0``) the batches are ``int64`` tensor slices of that permutation, so
  no Python int is made per index;
- ``__getitems__``: the dataset fetches a whole batch; our image datasets return an
  :class:`datasets.images.ImageBatch` (one gather and one conversion per batch);
- ``collate_fn``: an ``ImageBatch`` is taken as it is; anything else goes to
  :func:`datasets.collate.default_collate`, and a :class:`~datasets.errors.CollateError` from
  any ``collate_fn`` names the batch's dataset indices (when the loader built the batches);
- ``__iter__`` skips a batch that the ``collate_fn`` returned as ``None`` (an all-``None`` batch
  from ``skip_none_collate``), counting it in :attr:`DataLoader.skipped_batches`;
- ``worker_init_fn``: seeds NumPy in each worker from the worker's torch seed (which torch
  derives from the loader's ``generator``) when none is given.

Workers help or step aside (issue 19). ``num_workers="auto"`` (the default) chooses 0 for a
batched store (a packed dataset whose batch transform runs once per batch in
``__getitems__``, or a ``Subset`` or ``ConcatDataset`` of such) and for datasets it does not know, and
:func:`auto_workers` processes for per-sample decoding (``ImageFolderDataset``,
``VariableImageDataset``, a packed dataset with a per-sample transform). An explicit
``num_workers=N > 0`` on a small batched store (at most :data:`STEP_ASIDE_MAX_BYTES` of pixels)
steps aside: a batch there costs microseconds, while starting N processes costs more than the
whole epoch and every batch then crosses processes (measured 15x slower with 2 workers on
16,000 letters); the batches run in the main process, one INFO line says so (once per process
and kind of store: later loaders, a test loader or one made each epoch, say it at DEBUG), and
``force_workers=True`` insists on the workers. The batches are the same either way.

The batches equal a plain ``torch.utils.data.DataLoader``'s with the same arguments (the tests
check it, with and without a ``generator``). ``loader.batch_size``, ``loader.drop_last`` and
``loader.sampler`` are what torch's loader holds for the same arguments (the batch size, the
``drop_last`` asked for, a ``RandomSampler`` when shuffled), although the batches come from a
``batch_sampler``.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence, Sized
from typing import Any

import numpy as np
import torch
import torch.utils.data
from torch.utils.data import (
    ConcatDataset,
    Dataset,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    get_worker_info,
)

from datasets.collate import default_collate
from datasets.errors import CollateError
from datasets.images import ImageBatch, ImageFolderDataset, PackedImageDataset
from datasets.variable import VariableImageDataset

log = logging.getLogger(__name__)

__all__ = ["DataLoader", "IndexBatchSampler", "STEP_ASIDE_MAX_BYTES", "auto_workers",
           "fast_collate", "seed_numpy_worker"]

MAX_INDICES_SHOWN = 32
STEP_ASIDE_MAX_BYTES = 256 << 20  # a "small" batched store: its epoch costs less than starting workers
MAX_AUTO_WORKERS = 4  # decoding: enough to feed a small model, few enough to start quickly
_WORKER_ONLY_OPTIONS = ("persistent_workers", "prefetch_factor", "multiprocessing_context")
_STEPPED_ASIDE: set[str] = set()  # kinds of store this process has said it steps aside for


def fast_collate(batch: Any) -> Any:
    """Collate: an :class:`ImageBatch` as its ``(images, targets)``, else ``default_collate``."""
    if isinstance(batch, ImageBatch):
        return batch.as_tuple()
    return default_collate(batch)


def seed_numpy_worker(worker_id: int) -> None:
    """Seed NumPy's global RNG in a worker from the seed torch gave that worker."""
    del worker_id
    np.random.seed(torch.initial_seed() % 2**32)


class IndexBatchSampler(Sampler[Any]):
    """Batches of ``range(num_items)``, in order or one random permutation per epoch.

    Shuffled, each epoch draws ``torch.randperm(num_items, generator=generator)``; without a
    generator it first seeds a fresh one with one draw from torch's global RNG (so
    ``torch.manual_seed`` fixes the order). These are the batches, epoch after epoch, that
    torch's ``BatchSampler(RandomSampler(..., generator=generator), batch_size, drop_last)``
    yields (a test compares them), as tensors or lists, without a Python int per index.

    Args:
        num_items: the dataset's length.
        batch_size: items per batch.
        shuffle: a new random order every epoch.
        drop_last: drop the last batch when it is short.
        generator: the source of the permutations.
        tensors: yield ``int64`` tensors (views of one permutation) instead of lists of ints.

    Example:
        >>> [b.tolist() for b in IndexBatchSampler(5, 2, tensors=True)]
        [[0, 1], [2, 3], [4]]
        >>> list(IndexBatchSampler(5, 2, drop_last=True))
        [[0, 1], [2, 3]]
    """

    def __init__(self, num_items: int, batch_size: int, *, shuffle: bool = False,
                 drop_last: bool = False, generator: torch.Generator | None = None,
                 tensors: bool = False) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive int, but got batch_size={batch_size!r}")
        self.num_items = num_items
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.tensors = tensors
        self.yielded: deque[Any] = deque()  # batches not yet delivered by the loader
        self.sampler: Sampler[Any] | None = None  # the loader sets torch's equivalent sampler
        self._epoch_generator: torch.Generator | None = None

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_items // self.batch_size
        return -(-self.num_items // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        batches: Sequence[Any] = order.split(self.batch_size)
        if self.drop_last and self.num_items % self.batch_size:
            batches = batches[:-1]
        for batch in batches:
            batch = batch if self.tensors else batch.tolist()
            self.yielded.append(batch)
            yield batch
        if self.shuffle:
            # torch's RandomSampler draws one more permutation at the end of an epoch (its
            # empty ``num_samples % n`` tail); drawing it too keeps a shared generator in step
            # with torch's loader epoch after epoch.
            torch.randperm(self.num_items, generator=self._epoch_generator)

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.num_items, dtype=torch.int64)
        generator = self.generator
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        self._epoch_generator = generator
        return torch.randperm(self.num_items, generator=generator)


def _parts(dataset: Any) -> list[Any]:
    """The datasets that hold ``dataset``'s items: through ``Subset`` and ``ConcatDataset``."""
    while isinstance(dataset, Subset):  # torch's Subset passes __getitems__ on, batched
        dataset = dataset.dataset
    if isinstance(dataset, ConcatDataset):
        return [part for inner in dataset.datasets for part in _parts(inner)]
    return [dataset]


def _kind(dataset: Any) -> str:
    names = sorted({type(part).__name__ for part in _parts(dataset)})
    return names[0] if len(names) == 1 else "+".join(names)


def _batched_store(dataset: Any) -> bool:
    parts = _parts(dataset)
    return all(isinstance(part, PackedImageDataset) and part.batched for part in parts)


def _decodes_per_sample(dataset: Any) -> bool:
    return all(isinstance(part, ImageFolderDataset | VariableImageDataset)
               or (isinstance(part, PackedImageDataset) and not part.batched)
               for part in _parts(dataset))


def auto_workers(dataset: Any) -> int:
    """Return the worker processes ``num_workers="auto"`` gives ``dataset``.

    0 for a batched store (a batch is one gather and one conversion in the main process) and
    for datasets not known to decode; for per-sample decoding (``ImageFolderDataset``,
    ``VariableImageDataset``, a packed dataset with a per-sample transform) one per CPU this
    process may use, at most :data:`MAX_AUTO_WORKERS` (0 with a single CPU). A ``Subset`` or
    ``ConcatDataset`` counts as the datasets inside it when they are all of one kind.
    """
    if not _decodes_per_sample(dataset):
        return 0
    cpus = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1)
    return min(MAX_AUTO_WORKERS, cpus) if cpus > 1 else 0


def _store_bytes(dataset: Any) -> int:
    """The pixels an epoch reads: the rows of the packed stores that ``dataset`` shows."""
    row = max(int(np.prod(part.packed.shape[1:])) for part in _parts(dataset))
    return len(dataset) * row


def _choose_workers(dataset: Any, num_workers: int | str, *, force_workers: bool,
                    options: dict[str, Any]) -> int:
    """Resolve ``"auto"``, and step aside from workers on a small batched store."""
    if num_workers == "auto":
        chosen = auto_workers(dataset)
        log.debug("num_workers='auto' chose %d for %s", chosen, _kind(dataset))
    elif isinstance(num_workers, int) and not isinstance(num_workers, bool) and num_workers >= 0:
        chosen = num_workers
    else:
        raise ValueError(f"num_workers should be a non-negative int or 'auto', but got "
                         f"num_workers={num_workers!r}")
    if (chosen and num_workers != "auto" and not force_workers and _batched_store(dataset)
            and _store_bytes(dataset) <= STEP_ASIDE_MAX_BYTES):
        kind = _kind(dataset)
        level = logging.DEBUG if kind in _STEPPED_ASIDE else logging.INFO  # once per process
        _STEPPED_ASIDE.add(kind)
        log.log(level, "num_workers=%d steps aside: %s is a small packed store (%.1f MiB) "
                "batched in __getitems__, where a batch costs microseconds and starting worker "
                "processes costs more than the epoch; its batches run in the main process "
                "(force_workers=True / --force-workers to use workers)",
                chosen, kind, _store_bytes(dataset) / 2**20)
        chosen = 0
    if not chosen and num_workers != 0:  # we chose no workers: torch refuses these then
        for name in _WORKER_ONLY_OPTIONS:
            options.pop(name, None)
    return chosen


def _takes_tensor_batches(dataset: Any, num_workers: int) -> bool:
    # Tensors travel to worker processes through shared memory, lists are cheaper there.
    return num_workers == 0 and isinstance(dataset, PackedImageDataset) and dataset.batched


class _Collate:
    """The loader's ``collate_fn``: ImageBatch as it is; errors that name dataset indices."""

    def __init__(self, collate_fn: Callable[[Any], Any] | None,
                 batches: IndexBatchSampler | None) -> None:
        self.collate_fn = collate_fn
        self.batches = batches

    def __call__(self, data: Any) -> Any:
        if self.collate_fn is None and isinstance(data, ImageBatch):
            return data.as_tuple()
        indices = self._indices()
        try:
            if self.collate_fn is None:
                return default_collate(data, indices=indices)
            return self.collate_fn(data)
        except CollateError as err:
            if indices is None or self.collate_fn is None:
                err.indices = indices  # type: ignore[attr-defined]
                raise
            raise _with_indices(err, indices) from err

    def _indices(self) -> list[int] | None:
        # In the main process the batch being fetched is the last one the sampler yielded; a
        # worker holds a stale copy of the sampler, and the main process names them instead.
        if self.batches is None or not self.batches.yielded or get_worker_info() is not None:
            return None
        return [int(i) for i in self.batches.yielded[-1]]

    def __getstate__(self) -> dict[str, Any]:
        return {"collate_fn": self.collate_fn, "batches": None}  # workers: no sampler copy


def _with_indices(err: CollateError, indices: Sequence[int]) -> CollateError:
    shown = [int(i) for i in indices[:MAX_INDICES_SHOWN]]
    more = f" and {len(indices) - len(shown)} more" if len(indices) > len(shown) else ""
    named = CollateError(f"{err} (batch of dataset indices {shown}{more})")
    named.indices = list(indices)  # type: ignore[attr-defined]
    return named


class DataLoader(torch.utils.data.DataLoader):
    """A :class:`torch.utils.data.DataLoader` with the batched fast path.

    Takes torch's arguments, those after ``drop_last`` by keyword only (see the module
    docstring for the defaults it chooses), and:

    Args:
        num_workers: worker processes, or ``"auto"`` (the default: 0 for a batched store,
            :func:`auto_workers` for per-sample decoding). A count above 0 on a small batched
            store steps aside to 0 (one INFO log line) unless ``force_workers``.
        force_workers: use ``num_workers`` processes even where they step aside.

    Attributes:
        num_workers: the worker processes used (``"auto"`` resolved, after any step aside).
        batch_size: the batch size (``None`` without automatic batching, as in torch).
        skipped_batches: batches the ``collate_fn`` returned as ``None``, skipped so far.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.arange(10.0), torch.arange(10))
        >>> loader = DataLoader(ds, batch_size=4, shuffle=True,
        ...                     generator=torch.Generator().manual_seed(0))
        >>> [len(y) for _, y in loader]
        [4, 4, 2]
    """

    def __init__(self, dataset: Dataset[Any], batch_size: int | None = 1,
                 shuffle: bool | None = None, sampler: Any = None, batch_sampler: Any = None,
                 num_workers: int | str = "auto",
                 collate_fn: Callable[[Any], Any] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, *,
                 generator: torch.Generator | None = None, force_workers: bool = False,
                 **kwargs: Any) -> None:
        num_workers = _choose_workers(dataset, num_workers, force_workers=force_workers,
                                      options=kwargs)
        if kwargs.get("worker_init_fn") is None and num_workers:
            kwargs["worker_init_fn"] = seed_numpy_worker
        batches = None
        if (batch_size is not None and sampler is None and batch_sampler is None
                and not isinstance(dataset, IterableDataset) and isinstance(dataset, Sized)):
            batches = IndexBatchSampler(len(dataset), batch_size, shuffle=bool(shuffle),
                                        drop_last=drop_last, generator=generator,
                                        tensors=_takes_tensor_batches(dataset, num_workers))
            batches.sampler = (RandomSampler(dataset, generator=generator) if shuffle
                               else SequentialSampler(dataset))
            batch_sampler, batch_size, shuffle, drop_last = batches, 1, None, False
        self._index_batches = batches  # before torch's __init__, which sets these attributes
        if not isinstance(dataset, IterableDataset) and (batch_size is not None or batch_sampler):
            collate_fn = _Collate(collate_fn, batches)
        super().__init__(dataset, batch_size, shuffle, sampler, batch_sampler, num_workers,
                         collate_fn, pin_memory, drop_last, generator=generator,
                         **kwargs)
        # Batches arrive in the sampler's order (so a failed one can be named) unless
        # in_order=False.
        self._batches = batches if kwargs.get("in_order", True) else None
        self.skipped_batches = 0

    @property
    def batch_size(self) -> int | None:
        """The batch size; torch leaves ``None`` here when a ``batch_sampler`` makes batches."""
        if self._index_batches is not None:
            return self._index_batches.batch_size
        return self._torch_batch_size

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        # torch's __init__ assigns it (and its __setattr__ refuses it after __init__)
        self._torch_batch_size = value

    @property
    def drop_last(self) -> bool:
        """Whether a short last batch is dropped, as asked (torch's value for these args)."""
        if self._index_batches is not None:
            return self._index_batches.drop_last
        return self._torch_drop_last

    @drop_last.setter
    def drop_last(self, value: bool) -> None:
        self._torch_drop_last = value

    @property
    def sampler(self) -> Any:
        """torch's sampler for these arguments: a ``RandomSampler`` when shuffled.

        With our batches it describes the order (``RandomSampler`` on the loader's
        ``generator`` or ``SequentialSampler``), as torch's loader would hold, so that code
        which reads ``loader.sampler`` (Lightning, Accelerate) sees the shuffle; the
        :class:`IndexBatchSampler` draws the permutations itself.
        """
        if self._index_batches is not None:
            return self._index_batches.sampler
        return self._torch_sampler

    @sampler.setter
    def sampler(self, value: Any) -> None:
        self._torch_sampler = value

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        pending = self._batches.yielded if self._batches is not None else None
        if pending is not None:
            pending.clear()  # what an abandoned epoch left
        batches = super().__iter__()
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except CollateError as err:
                fetched = pending.popleft() if pending else None
                if fetched is None or getattr(err, "indices", None) is not None:
                    raise
                raise _with_indices(err, [int(i) for i in fetched]) from err
            if pending:
                pending.popleft()
            if batch is None:
                self.skipped_batches += 1
                log.debug("skipped an empty batch (%d so far)", self.skipped_batches)
                continue
            yield batch
