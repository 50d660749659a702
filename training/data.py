"""Train/valid/test image splits for the CLI and quickstart, from ``datasets`` and ``loaders``.

Registry datasets come through their ``datasets`` classes (``NotMNIST`` for ``letters``,
``notmnist``, ``notmnist-large`` and ``notmnist-idx``; ``MNIST``/``FashionMNIST``/``KMNIST``/
``EMNIST``). A local ``--data-dir`` may hold IDX files (``train-*``/``t10k-*`` pairs, or one
pair that is split) or ``CLASS/*.png`` folders. Splits that a dataset does not publish are
carved per class with a seeded shuffle (``datasets.notmnist.split_indices``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from training import distributed

log = logging.getLogger(__name__)

__all__ = ["IMAGE_DATASETS", "ImageSplits", "load_image_splits", "stratified_subsets"]

NOTMNIST_VARIANTS = {
    "letters": "letters",
    "notmnist": "small",
    "notmnist-large": "large",
    "notmnist-idx": "idx",
}
IDX_FAMILY = ("mnist", "fashion-mnist", "kmnist", "emnist")
IMAGE_DATASETS = tuple(sorted([*NOTMNIST_VARIANTS, *IDX_FAMILY]))


@dataclass
class ImageSplits:
    """The three splits (``valid`` may be None), class names and the flattened input size."""

    train: Dataset[Any]
    valid: Dataset[Any] | None
    test: Dataset[Any]
    classes: list[str]
    in_features: int


def _targets(dataset: Dataset[Any]) -> Any:
    import numpy as np

    if isinstance(dataset, Subset):
        return _targets(dataset.dataset)[np.asarray(dataset.indices)]
    labelled: Any = dataset  # every dataferry image dataset has .targets (int64 tensor)
    return labelled.targets.numpy()


def stratified_subsets(
    dataset: Dataset[Any], *, valid: float, test: float, seed: int = 0
) -> dict[str, Subset[Any]]:
    """Split a dataset with ``.targets`` per class into ``train``/``valid``/``test`` subsets."""
    from datasets.notmnist import split_indices

    parts = split_indices(_targets(dataset), valid=valid, test=test, seed=seed)
    return {name: Subset(dataset, idx.tolist()) for name, idx in parts.items()}


def _image_size(dataset: Dataset[Any]) -> int:
    x, _ = dataset[0]
    return int(x.numel())


def _from_idx_dir(folder: Path, seed: int, tf: Any) -> tuple[Dataset[Any], Dataset[Any] | None, Dataset[Any]]:
    from datasets import IDXDataset

    def pair(prefix: str) -> tuple[Path, Path] | None:
        images = sorted(folder.glob(f"{prefix}*images-idx3-ubyte*"))
        labels = sorted(folder.glob(f"{prefix}*labels-idx1-ubyte*"))
        return (images[0], labels[0]) if images and labels else None

    train_pair, test_pair, any_pair = pair("train"), pair("t10k"), pair("")
    if train_pair and test_pair:
        parts = stratified_subsets(IDXDataset(*train_pair, tf), valid=0.1, test=0.0, seed=seed)
        return parts["train"], parts["valid"], IDXDataset(*test_pair, tf)
    if any_pair is None:
        from datasets import DatasetNotFoundError

        images = sorted(p.name for p in folder.glob("*images-idx3-ubyte*"))
        raise DatasetNotFoundError(
            f"expected an IDX labels file (*labels-idx1-ubyte[.gz]) beside {', '.join(images)} "
            f"in {folder} but found none; put the matching labels file there"
        )
    parts = stratified_subsets(IDXDataset(*any_pair, tf), valid=0.1, test=0.2, seed=seed)
    return parts["train"], parts["valid"], parts["test"]


def _from_local(data_dir: str | os.PathLike[str], seed: int, tf: Any) -> tuple[Any, Any, Any]:
    folder = Path(data_dir)
    if folder.is_file():
        raise ValueError(
            f"expected a folder of IDX files or CLASS/*.png images at {folder} but it is a file; "
            "for a CSV/TSV/JSONL text file add --model bow, else pass the folder"
        )
    if not folder.is_dir():
        from datasets import DatasetNotFoundError

        raise DatasetNotFoundError(
            f"expected a folder of IDX files or CLASS/*.png images at {folder} but it does not "
            "exist; check --data-dir"
        )
    if any(folder.glob("*idx3-ubyte*")):
        return _from_idx_dir(folder, seed, tf)
    from datasets import ImageFolderDataset

    parts = stratified_subsets(ImageFolderDataset.pack(folder, tf), valid=0.1, test=0.2, seed=seed)
    return parts["train"], parts["valid"], parts["test"]


def _from_registry(name: str, root: Any, download: bool, seed: int, tf: Any) -> tuple[Any, Any, Any]:
    import datasets

    if name in NOTMNIST_VARIANTS:
        variant = NOTMNIST_VARIANTS[name]

        def make(split: str) -> Any:
            return datasets.NotMNIST(root, split=split, transform=tf, download=download,
                                    variant=variant)

        if variant == "idx":
            parts = stratified_subsets(make("train"), valid=0.1, test=0.0, seed=seed)
            return parts["train"], parts["valid"], make("test")
        return make("train"), make("valid"), make("test")
    classes = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST,
               "kmnist": datasets.KMNIST, "emnist": datasets.EMNIST}
    cls = classes[name]
    parts = stratified_subsets(cls(root, split="train", transform=tf, download=download), valid=0.1, test=0.0,
                               seed=seed)
    return parts["train"], parts["valid"], cls(root, split="test", transform=tf, download=download)


def load_image_splits(
    name: str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    seed: int = 0,
    transform: Any = None,
) -> ImageSplits:
    """Return train/valid/test splits of a registry image dataset or a local folder.

    Args:
        name: one of :data:`IMAGE_DATASETS` (ignored when ``data_dir`` is given).
        root: the cache home (``loaders.cache_root(root)``).
        data_dir: a local folder of IDX files or ``CLASS/*.png`` images instead of ``name``.
        download: fetch through ``loaders`` when the data are missing.
        seed: seed of the carved splits.
        transform: the datasets' transform (None: their default ``ToFloat()``, [-1, 1]).

    Raises:
        ValueError: neither a known ``name`` nor a ``data_dir``.
        datasets.DatasetError: the data are missing or malformed.
        loaders.LoaderError: fetching failed.
    """
    if data_dir is not None:
        train, valid, test = _from_local(data_dir, seed, transform)
    elif name in IMAGE_DATASETS:
        train, valid, test = _from_registry(name, root, download, seed, transform)
    else:
        raise ValueError(
            f"dataset should be one of {', '.join(IMAGE_DATASETS)}, but got dataset={name!r}; "
            "or pass data_dir"
        )
    base: Any = train.dataset if isinstance(train, Subset) else train  # it has .classes
    splits = ImageSplits(train, valid, test, list(base.classes), _image_size(train))
    if distributed.is_main_process():  # under torchrun, only rank 0 talks
        log.info("data: %d train, %d valid, %d test, %d classes", len(train),
                 len(valid) if valid is not None else 0, len(test), len(splits.classes))
    return splits
