"""Datasets from a local path: what :func:`datasets.open_dataset` opens when given a path.

A path may be:

- an image folder in torchvision's ``ImageFolder`` layout (``CLASS/*.jpg``, any format, colour
  and size): one split, ``"all"``;
- a folder of split folders, ``train/`` plus ``val/``, ``valid/`` or ``test/``, each an image
  folder (how Imagenette and the hymenoptera data unpack): one split per folder;
- an archive of an image folder (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``,
  ``.zip``, or any name: the content is sniffed with :func:`loaders.sniff.sniff_archive`),
  packed without extracting it: ``"all"``;
- a folder of IDX files (``train-images-idx3-ubyte.gz`` and its labels, ``t10k-*``...): one
  split per pair, ``train`` and ``test``. Files that are a registry dataset's published files
  (same name, size and hash) get that dataset's class names: notMNIST's IDX files are labelled
  A-J, not 0-9;
- a CSV, TSV or JSON Lines text file: ``"all"``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from datasets.errors import DataFormatError, DatasetNotFoundError

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
SPLIT_FOLDERS = ("train", "valid", "val", "test")
_IDX_IMAGES = re.compile(r"^(?P<prefix>.+)-images[-.]idx3-ubyte(?:\.gz)?$")
_IDX_SPLIT_NAMES = {"train": "train", "t10k": "test", "test": "test"}


def open_path_splits(
    path: Path,
    *,
    split: str | None = None,
    transform: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> dict[str, Dataset[Any]]:
    """Open the splits held at ``path`` (see the module docstring): ``{split: dataset}``.

    Args:
        path: the file or folder.
        split: open only this split.
        transform: the datasets' transform (``None``: their default).
        cache_dir: where packed caches go (default ``loaders.cache_root()``).
        **options: image packing options (``mode``, ``size``, ``resize``) for image folders.

    Raises:
        DatasetNotFoundError: nothing at ``path``, or not the split asked for.
        DataFormatError: ``path`` is a single image file (by extension or content).
    """
    if not path.exists():
        raise DatasetNotFoundError(
            f"expected a file or folder at {path} but nothing is there; check the path, or pass "
            "a catalog name (python -m datasets.report --list shows them)"
        )
    found = _open(path, split, transform, cache_dir, options)
    if split is not None and split not in found:
        _missing_split(path, split, list(found))
    return found if split is None else {split: found[split]}


def _missing_split(path: Path, split: str, found: list[str]) -> None:
    raise DatasetNotFoundError(
        f"expected split {split!r} of {path} but found only {found}; pass one of those, or "
        "leave the split out"
    )


def _open(path: Path, split: str | None, transform: Any, cache_dir: Any,
          options: dict[str, Any]) -> dict[str, Dataset[Any]]:
    from datasets.images import ImageFolderDataset

    if path.is_file() and is_archive(path):
        return {"all": ImageFolderDataset.from_archive(path, transform, cache_dir=cache_dir,
                                                       **options)}
    if path.is_file():
        _refuse_image_file(path)
        if options:
            raise TypeError(f"image options {sorted(options)} do not apply to the text file {path}")
        from datasets.text import TextClassificationDataset

        return {"all": TextClassificationDataset.from_file(path)}
    if is_idx_folder(path):
        if options:
            raise TypeError(f"image options {sorted(options)} apply to image folders, not to "
                            f"the IDX files in {path}")
        return open_idx_folder(path, split, transform=transform, cache_dir=cache_dir)
    folders = split_folders(path)
    if folders and split is not None and split not in folders:
        _missing_split(path, split, list(folders))
    if folders:
        return {name: ImageFolderDataset.pack(folder, transform, cache_dir=cache_dir, **options)
                for name, folder in folders.items() if split is None or split == name}
    return {"all": ImageFolderDataset.pack(path, transform, cache_dir=cache_dir, **options)}


def _refuse_image_file(path: Path) -> None:
    """Refuse one image (by extension or content): it is no dataset, nor a text file."""
    from datasets.folders import has_image_extension
    from datasets.imagedecode import sniff_format

    with path.open("rb") as handle:
        fmt = sniff_format(handle.read(16))
    if fmt is not None or has_image_extension(path.name):
        kind = f" ({fmt})" if fmt else ""
        raise DataFormatError(
            f"{path} is an image file{kind}, expected a folder of CLASS/ folders of images or "
            "an archive of one; point at the folder that holds the class folders instead"
        )


def is_idx_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding IDX image files (its images are not repacked)."""
    return path.is_dir() and any(_IDX_IMAGES.match(p.name) for p in path.iterdir())


def split_folders(path: Path) -> dict[str, Path]:
    """Return ``{split: folder}`` when ``path`` holds ``train/`` and another split folder.

    Example:
        >>> split_folders(Path("no-such-folder"))
        {}
    """
    if not path.is_dir():
        return {}
    children = {p.name: p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if "train" not in children or len(children) < 2 or not set(children) <= set(SPLIT_FOLDERS):
        return {}
    return {name: children[name] for name in SPLIT_FOLDERS if name in children}


def open_idx_folder(folder: Path, split: str | None, *, transform: Any = None,
                    cache_dir: Any = None) -> dict[str, Dataset[Any]]:
    """Open each ``<prefix>-images-idx3-ubyte[.gz]`` with its labels file, as a split."""
    from datasets.idx import IDXDataset

    found: dict[str, Dataset[Any]] = {}
    unpaired: list[str] = []
    for images in sorted(folder.iterdir(), key=lambda p: p.name, reverse=True):  # train first
        match = _IDX_IMAGES.match(images.name)
        if not match:
            continue
        prefix = match["prefix"]
        labels = sorted(p for p in folder.iterdir() if p.name.startswith(f"{prefix}-labels"))
        split_name = _IDX_SPLIT_NAMES.get(prefix, prefix)
        if not labels:
            unpaired.append(images.name)
        elif split is None or split == split_name:
            classes = recognised_classes([images, labels[0]])
            found[split_name] = IDXDataset(images, labels[0], transform,
                                           classes=list(classes) if classes else None,
                                           cache_dir=cache_dir)
    if not found and unpaired:
        prefix = _IDX_IMAGES.match(unpaired[0])["prefix"]  # type: ignore[index]
        raise DatasetNotFoundError(
            f"expected a labels file {prefix}-labels-idx1-ubyte.gz beside {unpaired[0]} in "
            f"{folder} but found none; put the matching labels file there"
        )
    if not found:
        raise DatasetNotFoundError(
            f"expected IDX files like train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz "
            f"in {folder} but found none{' for split ' + repr(split) if split else ''}"
        )
    return found


def is_archive(path: Path) -> bool:
    """Whether the file ``path`` is a tar or zip archive, by its name or else its first bytes.

    A lone gzip stream (``data.csv.gz``) is not an archive of a folder; bzip2 and xz are only
    used for tarballs (see :func:`loaders.sniff.sniff_archive`).
    """
    if path.name.lower().endswith(ARCHIVE_SUFFIXES):
        return True
    from loaders.sniff import sniff_archive

    return sniff_archive(path) not in (None, "gz")


def recognised_classes(files: list[Path]) -> tuple[str, ...] | None:
    """Class names of the catalog dataset whose published files these are, else ``None``.

    A file is recognised when its name, size (where published) and sha256 or md5 are those of
    a registry resource; only resources with a published hash count, so a look-alike never
    borrows a dataset's labels.
    """
    from datasets.catalog import CATALOG
    from loaders import registry
    from loaders.verify import hash_file

    for path in files:
        for row in CATALOG.values():
            if row.classes is None:
                continue
            for resource in registry.get(row.name).resources:
                if resource.filename != path.name or not (resource.sha256 or resource.md5):
                    continue
                if resource.size_bytes is not None and path.stat().st_size != resource.size_bytes:
                    continue
                digests = hash_file(path, ("sha256", "md5"))
                if digests["sha256"] == resource.sha256 or digests["md5"] == resource.md5:
                    log.info("%s is %s's %s: classes %s", path, row.name, resource.filename,
                             ", ".join(row.classes))
                    return row.classes
    return None
