"""Train/valid/test image splits for the CLI, through the dataset catalog.

``--dataset NAME`` opens a catalog row (:mod:`datasets.catalog`); ``--data-dir PATH`` opens
local data the same way (an image folder of any format, colour and size; a folder of
``train/``/``val/`` image folders; IDX files). The published splits are used as they are:
``valid`` when there is one, else 10% of each class of the training split (seeded); the row's
held-out split (``test``, or ``val``) for the final test, else 20% of each class. A single
folder is carved 70/10/20. Splits must share their class list (labels are indices into it):
``train/{ants,wasps}`` beside ``val/{ants,bees}`` is refused. Classes of 5 images or fewer carve
no validation image, so training runs without validation (a warning says so); with no test
image at all (2 or fewer per class) the data are refused, naming the counts.

Images are read as stored (``uint8``) and turned into float batches by batch transforms
(:mod:`datasets.transforms`): ``--image-size N`` packs image folders at ``N x N`` (other rows
are resized per batch), ``--augment`` adds random-resized-crop and horizontal flip to the
training batches only. Training and evaluation views share one packed cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch.utils.data import Dataset, Subset

from training import distributed

log = logging.getLogger(__name__)

__all__ = ["IMAGE_DATASETS", "ImageSplits", "load_image_splits", "stratified_subsets"]


def _image_names() -> tuple[str, ...]:
    from datasets import catalog

    return tuple(catalog.names(kind="image"))


IMAGE_DATASETS = _image_names()
DEFAULT_FOLDER_SIZE = 64  # a folder of mixed sizes without --image-size is packed at 64 x 64
VALID_FRACTION = 0.1
TEST_FRACTION = 0.2


@dataclass
class ImageSplits:
    """The three splits (``valid`` may be None), class names and the input's shape."""

    train: Dataset[Any]
    valid: Dataset[Any] | None
    test: Dataset[Any]
    classes: list[str]
    in_features: int
    in_channels: int = 1
    image_size: tuple[int, int] = (28, 28)


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


class _Opener:
    """Opens one split twice over one cache: with the training and the evaluation transform."""

    def __init__(self, name: str, *, root: Any, download: bool, train_tf: Any, eval_tf: Any,
                 options: dict[str, Any]) -> None:
        self.name, self.root, self.download = name, root, download
        self.train_tf, self.eval_tf, self.options = train_tf, eval_tf, options

    def open(self, split: str, *, train: bool) -> Dataset[Any]:
        from datasets.catalog import open_dataset

        return open_dataset(self.name, self.root, split=split, download=self.download,
                            transform=self.train_tf if train else self.eval_tf, **self.options)


def _splits(name: str, opener: _Opener, seed: int) -> tuple[Any, Any, Any]:
    """Use the published splits, carving per class what is not published."""
    from datasets import catalog

    if catalog.is_path(name):
        from datasets.local import open_path_splits

        published: tuple[str, ...] = tuple(open_path_splits(Path(name), **opener.options))
        held_out = next((s for s in ("test", "val", "valid") if s in published), "")
    else:
        row = catalog.get(name)
        published, held_out = row.splits, row.held_out
    first = published[0]
    if held_out in ("", first, "all"):  # one split only: carve valid and test out of it
        parts = _carve(opener, first, seed, test=TEST_FRACTION)
        return parts["train"], parts["val"], parts["test"]
    test = opener.open(held_out, train=False)
    val = next((s for s in ("val", "valid") if s in published), None)  # valid/: a folder's name
    if val is not None and held_out != val:
        train, valid = opener.open(first, train=True), opener.open(val, train=False)
        _check_same_classes(name, {first: train, val: valid, held_out: test})
        return train, valid, test
    parts = _carve(opener, first, seed, test=0.0)
    _check_same_classes(name, {first: parts["train"], held_out: test})
    return parts["train"], parts["val"], test


def _classes(dataset: Dataset[Any]) -> list[str]:
    base: Any = dataset.dataset if isinstance(dataset, Subset) else dataset
    return [str(c) for c in base.classes]


def _check_same_classes(source: str, splits: dict[str, Dataset[Any]]) -> None:
    """Refuse splits whose labels would mean other classes than in the first split's list.

    Labels are indices into the class list, so a ``val/`` with ``bees`` where ``train/`` has
    ``wasps`` would score bees as wasps. A split may lack trailing classes (an IDX test file
    without the last label): its indices still line up, and a warning names what it lacks
    (``--stream-test`` follows the same rule).

    Raises:
        DataFormatError: a split's class list is not a prefix of the first's (both are named).
    """
    from datasets.errors import DataFormatError

    (first, dataset), *others = splits.items()
    expected = _classes(dataset)
    for split, other in others:
        found = _classes(other)
        if found != expected[:len(found)]:  # fewer classes, in the same order, still line up
            raise DataFormatError(
                f"expected the splits of {source} to have the same classes but {first} has "
                f"{expected} and {split} has {found}; give every split folder the same class "
                "folders (labels are class indices, so other classes would be scored as wrong "
                "ones)"
            )
        if len(found) < len(expected):
            log.warning("%s: %s lacks the last class(es) of %s: %s; they are not evaluated on "
                        "%s", source, split, first, expected[len(found):], split)


def _carve(opener: _Opener, split: str, seed: int, *, test: float) -> dict[str, Subset[Any]]:
    from datasets.notmnist import split_indices

    train_view, eval_view = opener.open(split, train=True), opener.open(split, train=False)
    parts = split_indices(_targets(eval_view), valid=VALID_FRACTION, test=test, seed=seed)
    return {part: Subset(train_view if part == "train" else eval_view, idx.tolist())
            for part, idx in parts.items()}


AUGMENT_SCALE = (0.35, 1.0)  # milder than torchvision's 0.08: small models, few epochs


def _resize(size: int) -> Any:
    """A deterministic square resize (the whole image as the box), ``uint8`` in and out."""
    from datasets.transforms import RandomResizedCrop

    return RandomResizedCrop(size, scale=(1.0, 1.0), ratio=(1.0, 1.0))


def _transforms(size: int | None, *, augment: bool, resize: bool, base: Any,
                generator: torch.Generator) -> tuple[Any, Any]:
    """The training and evaluation batch transforms (``uint8`` batches in, float out).

    ``size`` is the side the model sees; ``resize`` says the stored images must be resized
    to it (datasets that are not packed at ``size``).
    """
    if not augment and not (resize and size is not None):
        return base, base
    from datasets.transforms import Compose, RandomHorizontalFlip, RandomResizedCrop

    pre = [_resize(size)] if resize and size is not None else []
    eval_tf = Compose([*pre, base]) if pre else base
    if not augment:
        return eval_tf, eval_tf
    crop = [RandomResizedCrop(size, scale=AUGMENT_SCALE, generator=generator)] if size else []
    return Compose([*crop, RandomHorizontalFlip(generator=generator), base]), eval_tf


def load_image_splits(
    name: str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    seed: int = 0,
    transform: Any = None,
    image_size: int | None = None,
    augment: bool = False,
) -> ImageSplits:
    """Return train/valid/test splits of a catalog image dataset or a local path.

    Args:
        name: a catalog image name (:data:`IMAGE_DATASETS`; ignored when ``data_dir`` is given).
        root: the data home (``loaders.cache_root(root)``).
        data_dir: local data instead of ``name`` (see :mod:`datasets.local`).
        download: fetch through ``loaders`` when the data are missing.
        seed: seed of the carved splits.
        transform: the last batch transform, from ``uint8`` to float (default ``ToFloat()``,
            ``[-1, 1]``).
        image_size: pack image folders at this square size; resize other datasets' batches.
        augment: random-resized-crop (to ``image_size``, else the stored size) and horizontal
            flip on the training batches.

    Raises:
        ValueError: neither a known image ``name`` nor a ``data_dir``.
        datasets.DatasetError: the data are missing or malformed.
        loaders.LoaderError: fetching failed.
    """
    from datasets import ToFloat, catalog
    from datasets.local import ARCHIVE_SUFFIXES, is_idx_folder

    if data_dir is None and name not in IMAGE_DATASETS:
        raise ValueError(f"dataset should be one of {', '.join(IMAGE_DATASETS)}, but got "
                         f"dataset={name!r}; or pass data_dir")
    source = os.fspath(data_dir) if data_dir is not None else str(name)
    if Path(source).is_file() and not source.lower().endswith(ARCHIVE_SUFFIXES):
        raise ValueError(f"expected an image folder, an archive of one or IDX files at {source} "
                         "but it is a file; for a CSV/TSV/JSONL text file add --model bow")
    packs_at_size = (not is_idx_folder(Path(source)) if catalog.is_path(source)
                     else "size" in catalog.get(source).options)
    if packs_at_size and Path(source).is_dir():
        _refuse_one_class(Path(source))  # before packing, which may take minutes
    base = ToFloat() if transform is None else transform
    opener = _Opener(source, root=root, download=download, train_tf=base, eval_tf=base,
                     options={"size": image_size} if packs_at_size and image_size else {})
    if packs_at_size and image_size is None and not _is_fixed_size(source, opener):
        log.info("images in %s differ in size: packing them at %dx%d (pass image_size= / "
                 "--image-size N to choose)", source, DEFAULT_FOLDER_SIZE, DEFAULT_FOLDER_SIZE)
        image_size = DEFAULT_FOLDER_SIZE
        opener.options = {"size": image_size}
    if augment and image_size is None:  # crop back to the stored size
        stored = opener.open(_first_split(source), train=False)[0][0]
        image_size = int(min(stored.shape[-2:]))
    opener.train_tf, opener.eval_tf = _transforms(
        image_size, augment=augment, resize=not packs_at_size, base=base,
        generator=torch.Generator().manual_seed(seed))
    train, carved, test = _splits(source, opener, seed)
    valid: Any = _usable_splits(source, train, carved, test)
    base_ds: Any = train.dataset if isinstance(train, Subset) else train  # it has .classes
    x, _ = (valid if valid is not None else test)[0]
    splits = ImageSplits(train, valid, test, list(base_ds.classes), int(x.numel()),
                         int(x.shape[0]) if x.dim() == 3 else 1, tuple(x.shape[-2:]))
    if distributed.is_main_process():  # under torchrun, only rank 0 talks
        log.info("data: %d train, %d valid, %d test, %d classes, %s", len(train),
                 len(valid) if valid is not None else 0, len(test), len(splits.classes),
                 "x".join(str(v) for v in (splits.in_channels, *splits.image_size)))
    return splits


def _refuse_one_class(folder: Path) -> None:
    """Refuse an image folder (or its ``train/`` split) of one class before it is packed.

    Raises:
        ValueError: naming the folder and its one class.
    """
    from datasets.folders import scan_folder
    from datasets.local import split_folders

    train = split_folders(folder).get("train", folder)
    classes = scan_folder(train, allow_empty=True, by_content=True).classes  # as pack() reads
    if len(classes) < 2:
        raise ValueError(f"a classifier needs at least 2 classes, but {train} holds one class "
                         f"folder, {classes[0]!r}; add one sub-folder per class (CLASS/image "
                         "files), or point --data-dir / data_dir= at the folder that holds them")


def _per_class(dataset: Dataset[Any]) -> str:
    import numpy as np

    base: Any = dataset.dataset if isinstance(dataset, Subset) else dataset
    counts = np.bincount(_targets(base), minlength=max(len(base.classes), 1))
    few, many = int(counts.min()), int(counts.max())
    return (f"{int(counts.sum())} images in {len(base.classes)} classes "
            f"({few if few == many else f'{few} to {many}'} per class)")


def _usable_splits(source: str, train: Dataset[Any], valid: Dataset[Any] | None,
                   test: Dataset[Any]) -> Dataset[Any] | None:
    """Refuse an empty test split; drop an empty validation split, saying so.

    Classes of 5 images or fewer carve no validation image (``round(5 * 0.1) == 0``), and of
    2 or fewer no test image: training then runs without validation, but a test is needed.

    Returns:
        ``valid``, or None when it is empty.

    Raises:
        DataFormatError: the test split is empty (the message names the counts per class).
    """
    from datasets.errors import DataFormatError

    if len(cast(Sized, test)) == 0:  # map-style: every split here has a length
        raise DataFormatError(
            f"expected test images but {source} has {_per_class(train)}: too few to hold "
            f"out {TEST_FRACTION:.0%} of a class (a class needs 3 images for 1 test image); "
            "add images, or put a test/ folder beside train/"
        )
    if valid is not None and len(cast(Sized, valid)) == 0:
        log.warning("training without a validation split: %s has %s, too few to hold out "
                    "%.0f%% of a class (a class needs 6 images for 1 validation image)",
                    source, _per_class(train), 100 * VALID_FRACTION)
        return None
    return valid


def _is_fixed_size(source: str, opener: _Opener) -> bool:
    """Whether the source's first split packs as one fixed-size array (all images alike)."""
    first = opener.open(_first_split(source), train=False)
    return isinstance(getattr(first, "data", None), torch.Tensor)


def _first_split(source: str) -> str:
    from datasets import catalog
    from datasets.local import split_folders

    if not catalog.is_path(source):
        return catalog.get(source).splits[0]
    folders = split_folders(Path(source))
    return next(iter(folders)) if folders else "all"
