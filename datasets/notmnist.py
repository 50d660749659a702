"""``NotMNIST``: the notMNIST letters (A–J), small or large, or the built-in ``letters`` data.

Splits are deterministic (a seeded, per-class shuffle; the seed is fixed) and documented in
:class:`NotMNIST`. Data are packed straight from the downloaded ``tar.gz`` when it is there
(no extraction of notMNIST_large's 529,114 files), else from the extracted folder.
"""

from __future__ import annotations

import logging
import os
from typing import ClassVar

import numpy as np

from datasets.errors import DatasetNotFoundError
from datasets.idx import _IDXFamily
from datasets.images import PackedImageDataset, Transform, check_choice
from datasets.packed import PackedImages, pack_subset
from datasets.packeddataset import _fixed
from datasets.packing import PackOptions, pack_archive, pack_folder
from datasets.splits import split_name

log = logging.getLogger(__name__)

SPLIT_SEED = 0
# notMNIST glyphs are 28x28 greyscale: an odd-sized file is resized, never a colour cache
OPTIONS = PackOptions(mode="L", size=(28, 28))
VALID_FRACTION = 0.1
TEST_FRACTION = 0.1


def split_indices(labels: np.ndarray, *, valid: float, test: float, seed: int
                  ) -> dict[str, np.ndarray]:
    """Split rows per class by a seeded shuffle: ``{"train", "val", "test"}`` index arrays.

    In each class, ``round(n * test)`` rows go to test, ``round(n * valid)`` to valid and the
    rest to train; each split's indices are sorted (so rows stay grouped by class).

    Example:
        >>> parts = split_indices(np.repeat([0, 1], 10), valid=0.1, test=0.2, seed=0)
        >>> [len(parts[s]) for s in ("train", "val", "test")]
        [14, 2, 4]
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_test, n_valid = round(len(rows) * test), round(len(rows) * valid)
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test : n_test + n_valid])
        parts["train"].append(rows[n_test + n_valid :])
    return {k: np.sort(np.concatenate(v)) if v else np.empty(0, np.int64) for k, v in parts.items()}


class NotMNIST(PackedImageDataset):
    """notMNIST glyphs of the letters A–J, 28×28 greyscale, in deterministic splits.

    Splits by ``variant`` (fractions per class, shuffled with the fixed seed ``SPLIT_SEED=0``):

    - ``"small"`` (default): notMNIST_small (18,724 readable images) split 80/10/10 into
      ``"train"``/``"val"``/``"test"``; ``"all"`` is everything.
    - ``"large"``: the classic exercise: ``"train"``/``"val"`` are 90/10 of notMNIST_large
      (529,114 readable), ``"test"`` is the whole of notMNIST_small; ``"all"`` is large.
    - ``"letters"``: the built-in generated ``letters`` data, split as ``"small"``.
    - ``"idx"``: the notMNIST sample in IDX format; ``"train"``/``"test"`` are its files.

    notMNIST has many exact duplicates, also across these splits: use
    ``datasets.overlap_report`` to measure them and ``datasets.random_split(..., dedup=True)``
    for leak-free splits. The 7 unreadable files of the archives are in :attr:`skipped`.

    Args:
        root: the cache home (default ``loaders.cache_root()``); data are looked for in
            ``loaders.dataset_dir(name, root)`` and packed into ``cache_root(root)/packed``.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (``"idx"``: train/test);
            ``"valid"`` is read as ``"val"`` with a ``DeprecationWarning``.
        transform: see :class:`datasets.images.PackedImageDataset`.
        target_transform: applied to the ``int`` label.
        download: fetch through ``loaders.fetch`` (archives kept packed) when missing.
        variant: ``"small"``, ``"large"``, ``"letters"`` or ``"idx"``.

    Raises:
        DatasetNotFoundError: data missing and ``download=False``; says where it looked and
            the command to run.

    Example:
        >>> train = NotMNIST(split="train", download=True)  # doctest: +SKIP
        >>> len(train), train.classes[:3]  # doctest: +SKIP
        (14979, ['A', 'B', 'C'])
    """

    SOURCES: ClassVar[dict[str, tuple[str, str]]] = {
        "small": ("notmnist", "notMNIST_small"),
        "large": ("notmnist-large", "notMNIST_large"),
        "letters": ("letters", "letters"),
    }
    VARIANTS: ClassVar[tuple[str, ...]] = ("small", "large", "letters", "idx")

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        download: bool = False,
        variant: str = "small",
    ) -> None:
        check_choice("variant", variant, self.VARIANTS)
        splits = ("train", "test") if variant == "idx" else ("train", "val", "test", "all")
        split = split_name(split)
        check_choice("split", split, splits, context=f" for variant={variant!r}")
        self.split, self.variant = split, variant
        if variant == "idx":
            packed = _idx_packed(root, split, download)
        elif variant == "large" and split == "test":
            packed = _source(*self.SOURCES["small"], root, download)
        else:
            source = _source(*self.SOURCES[variant], root, download)
            packed = source if split == "all" else _split(source, split, root, variant)
        super().__init__(packed, transform, target_transform)


def _split(source: PackedImages, split: str, root: str | os.PathLike[str] | None,
           variant: str) -> PackedImages:
    valid, test = (VALID_FRACTION, 0.0) if variant == "large" else (VALID_FRACTION, TEST_FRACTION)
    parts = split_indices(source.labels(), valid=valid, test=test, seed=SPLIT_SEED)
    # the key keeps the old word, so caches packed before the rename are still found
    key = f"{source.path.name}-{'valid' if split == 'val' else split}-v{valid}-t{test}-s{SPLIT_SEED}"
    extra = {"split": split, "split_seed": SPLIT_SEED, "valid_fraction": valid,
             "test_fraction": test, "variant": variant}
    return pack_subset(source, parts[split], key, cache_dir=root, extra=extra)


def _source(name: str, top: str, root: str | os.PathLike[str] | None, download: bool
            ) -> PackedImages:
    """Pack a notMNIST-style source from its archive, else its extracted folder."""
    import loaders  # imported here: datasets works on local folders without it

    folder = loaders.dataset_dir(name, root)
    archive, extracted = folder / f"{top}.tar.gz", folder / top
    if not archive.is_file() and not extracted.is_dir() and download:
        folder = loaders.fetch(name, root, extract=False)
        archive, extracted = folder / f"{top}.tar.gz", folder / top
    if archive.is_file():
        return _fixed(pack_archive(archive, OPTIONS, cache_dir=root), archive)
    if extracted.is_dir():
        return _fixed(pack_folder(extracted, OPTIONS, cache_dir=root), extracted)
    raise DatasetNotFoundError(
        f"{name} not found: looked for {archive.name} and {extracted.name}/ in {folder}; pass "
        f"download=True or run `python -m loaders.download {name}`"
    )


class _NotMNISTIDX(_IDXFamily):
    """notMNIST published as MNIST-style IDX files (``NotMNIST(variant="idx")`` reads it)."""

    registry_name = "notmnist-idx"
    display_name = "NotMNIST(variant='idx')"
    class_names = [chr(c) for c in range(ord("A"), ord("J") + 1)]


def _idx_packed(root: str | os.PathLike[str] | None, split: str, download: bool) -> PackedImages:
    return _NotMNISTIDX(root, split, download=download).packed


