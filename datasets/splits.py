"""Exact duplicates within and across splits, and leak-free random splits.

notMNIST has many byte-identical images, also across the classic train/test split, so a
model can be "tested" on images it was trained on. :func:`overlap_report` counts such
duplicates by hashing each sample's content (for image datasets with a uint8 ``.data`` array
the rows of that array, fast; ``torch.utils.data.Subset`` indexes its parent's array), and
:func:`random_split` with ``dedup=True`` keeps every group of identical samples in one split.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

log = logging.getLogger(__name__)

_LABEL_KEYS = frozenset({"label", "labels", "target", "targets"})
VAL = "val"  # the one word for the validation split (torchvision's)


def split_name(split: str) -> str:
    """Return ``split`` in the package's vocabulary: ``"valid"`` becomes ``"val"``, with a warning.

    Example:
        >>> split_name("train")
        'train'
    """
    if split == "valid":
        warnings.warn("split='valid' is deprecated: the validation split is called 'val' "
                      "everywhere (as in torchvision); pass split='val'", DeprecationWarning,
                      stacklevel=3)
        return VAL
    return split


@dataclass(frozen=True)
class SplitStats:
    """Duplicates inside one split.

    Attributes:
        name: the split's name.
        size: number of items.
        unique: number of distinct contents.
        duplicates: ``size - unique``: items that repeat an earlier item of the split.
    """

    name: str
    size: int
    unique: int

    @property
    def duplicates(self) -> int:
        return self.size - self.unique


@dataclass(frozen=True)
class PairOverlap:
    """Shared content between two splits.

    Attributes:
        first: name of the first split.
        second: name of the second split.
        shared_unique: distinct contents present in both.
        first_items: items of ``first`` whose content is also in ``second``.
        second_items: items of ``second`` whose content is also in ``first`` (the leak, when
            ``second`` is the test split).
    """

    first: str
    second: str
    shared_unique: int
    first_items: int
    second_items: int


@dataclass(frozen=True)
class OverlapReport:
    """What :func:`overlap_report` found; ``str()`` gives a readable table."""

    splits: tuple[SplitStats, ...]
    pairs: tuple[PairOverlap, ...]

    def __str__(self) -> str:
        width = max([len(s.name) for s in self.splits] + [5])
        lines = [f"{'split':<{width}}  {'size':>9}  {'unique':>9}  {'duplicates':>10}"]
        for s in self.splits:
            lines.append(f"{s.name:<{width}}  {s.size:>9,}  {s.unique:>9,}  {s.duplicates:>10,}")
        for p in self.pairs:
            lines.append(
                f"{p.first} ∩ {p.second}: {p.shared_unique:,} shared distinct items "
                f"({p.first_items:,} items of {p.first}, {p.second_items:,} items of {p.second})"
            )
        return "\n".join(lines)


def content_hashes(dataset: Dataset[Any]) -> list[bytes]:
    """Return a 16-byte digest of every item's content (labels excluded), in index order.

    Uses the uint8 ``.data`` array of image datasets (also through nested ``Subset``s) when its
    length matches the dataset's; else iterates the samples: the first element of a tuple, the
    non-label values of a dict, text as UTF-8, tensors and arrays with their shape and dtype.
    """
    base, indices = _unwrap(dataset)
    data = getattr(base, "data", None)
    if isinstance(data, (torch.Tensor, np.ndarray)) and len(data) == len(base):
        rows = data.numpy() if isinstance(data, torch.Tensor) else data
        rows = rows.reshape(len(rows), -1)
        picked = rows if indices is None else rows[np.asarray(indices, dtype=np.int64)]
        picked = np.ascontiguousarray(picked)
        return [hashlib.blake2b(row, digest_size=16).digest() for row in picked]
    log.info("no uint8 .data array on %s: hashing %d samples one by one",
             type(base).__name__, len(dataset))  # type: ignore[arg-type]
    return [_sample_digest(dataset[i]) for i in range(len(dataset))]  # type: ignore[arg-type]


def _unwrap(dataset: Any) -> tuple[Any, list[int] | None]:
    """Follow nested Subsets down to the base dataset, composing their indices."""
    indices: list[int] | None = None
    while isinstance(dataset, Subset):
        own = list(dataset.indices)
        indices = own if indices is None else [own[i] for i in indices]
        dataset = dataset.dataset
    return dataset, indices


def _sample_digest(sample: Any) -> bytes:
    if isinstance(sample, Mapping):
        parts = [v for k, v in sorted(sample.items()) if k not in _LABEL_KEYS]
    elif isinstance(sample, (tuple, list)) and sample:
        parts = [sample[0]]
    else:
        parts = [sample]
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(_as_bytes(part))
    return h.digest()


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().contiguous().numpy()
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes()
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    tobytes = getattr(value, "tobytes", None)  # PIL images
    return tobytes() if callable(tobytes) else repr(value).encode()


def overlap_report(*splits: Dataset[Any], names: Sequence[str] | None = None) -> OverlapReport:
    """Count exact duplicates within each split and shared items between every pair.

    Args:
        *splits: datasets (or ``Subset``s) to compare.
        names: one name per split; defaults to ``train``/``test`` for two splits,
            ``train``/``val``/``test`` for three, else ``split0``, ``split1``, ...

    Returns:
        An :class:`OverlapReport`.

    Raises:
        ValueError: no splits, or ``names`` of the wrong length.

    Example:
        >>> import torch
        >>> class Tiny(torch.utils.data.Dataset):
        ...     data = torch.tensor([[1], [1], [2]], dtype=torch.uint8)
        ...     def __len__(self): return 3
        ...     def __getitem__(self, i): return self.data[i], 0
        >>> r = overlap_report(Tiny(), torch.utils.data.Subset(Tiny(), [0]))
        >>> r.splits[0].duplicates, r.pairs[0].second_items
        (1, 1)
    """
    if not splits:
        raise ValueError("overlap_report needs at least one split, but got none")
    if names is None:
        defaults = {2: ["train", "test"], 3: ["train", VAL, "test"]}
        names = defaults.get(len(splits), [f"split{i}" for i in range(len(splits))])
    if len(names) != len(splits):
        raise ValueError(f"names should have one name per split ({len(splits)}), but got {list(names)}")
    hashes = [content_hashes(s) for s in splits]
    sets = [set(h) for h in hashes]
    stats = tuple(SplitStats(str(n), len(h), len(s)) for n, h, s in zip(names, hashes, sets, strict=True))
    pairs = []
    for i, j in combinations(range(len(splits)), 2):
        shared = sets[i] & sets[j]
        pairs.append(PairOverlap(
            str(names[i]), str(names[j]), len(shared),
            sum(h in shared for h in hashes[i]), sum(h in shared for h in hashes[j]),
        ))
    return OverlapReport(stats, tuple(pairs))


def _split_sizes(n: int, lengths: Sequence[int | float]) -> list[int]:
    """Turn fractions (summing to 1) or counts (summing to n) into counts, as torch does."""
    if not lengths:
        raise ValueError("lengths should not be empty")
    if all(isinstance(x, int) and not isinstance(x, bool) for x in lengths):
        if sum(lengths) != n or min(lengths) < 0:
            raise ValueError(
                f"lengths should be non-negative counts summing to the dataset size {n}, "
                f"but got {list(lengths)} (sum {sum(lengths)})"
            )
        return list(lengths)  # type: ignore[arg-type]
    if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6) or min(lengths) < 0:
        raise ValueError(
            f"lengths should be counts summing to {n} or fractions summing to 1, "
            f"but got {list(lengths)} (sum {sum(lengths)})"
        )
    sizes = [int(math.floor(n * f)) for f in lengths]
    for i in range(n - sum(sizes)):  # spread the remainder round-robin, as torch does
        sizes[i % len(sizes)] += 1
    return sizes


def random_split(
    dataset: Dataset[Any],
    lengths: Sequence[int | float],
    *,
    seed: int = 0,
    dedup: bool = False,
) -> list[Subset[Any]]:
    """Split ``dataset`` into random ``Subset``s, optionally without leaks between them.

    Args:
        dataset: the dataset to split.
        lengths: counts summing to ``len(dataset)`` or fractions summing to 1.
        seed: seeds a private ``torch.Generator``; the same seed gives the same split.
        dedup: keep every group of identical items (see :func:`content_hashes`) inside one
            split, so no split shares content with another. Split sizes then match ``lengths``
            only approximately (a group crossing a boundary goes whole to the earlier split).

    Returns:
        One ``Subset`` per entry of ``lengths``.

    Raises:
        ValueError: ``lengths`` do not add up.

    Example:
        >>> [len(s) for s in random_split(range(10), [0.8, 0.2])]
        [8, 2]
    """
    n = len(dataset)  # type: ignore[arg-type]
    sizes = _split_sizes(n, lengths)
    g = torch.Generator()
    g.manual_seed(seed)
    if not dedup:
        perm = torch.randperm(n, generator=g).tolist()
        bounds = np.cumsum([0, *sizes])
        return [Subset(dataset, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    groups: dict[bytes, list[int]] = {}
    for index, digest in enumerate(content_hashes(dataset)):
        groups.setdefault(digest, []).append(index)
    ordered = list(groups.values())
    ordered = [ordered[i] for i in torch.randperm(len(ordered), generator=g).tolist()]
    bounds = np.cumsum(sizes)
    parts: list[list[int]] = [[] for _ in sizes]
    k = filled = 0
    for group in ordered:
        while k < len(sizes) - 1 and filled >= bounds[k]:
            k += 1
        parts[k].extend(group)
        filled += len(group)
    log.info("dedup split: %d items in %d distinct groups -> sizes %s (asked %s)",
             n, len(groups), [len(p) for p in parts], sizes)
    return [Subset(dataset, p) for p in parts]
