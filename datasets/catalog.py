"""The dataset catalog: the one table that names datasets, and :func:`open_dataset`.

Each :class:`CatalogEntry` says what a registry dataset is (``"image"`` or ``"text"``), which
splits it publishes, how to build each split, its default transform and one line of
description. The report, the preview, the training CLI and the examples all open data through
:func:`open_dataset` (or :func:`open_splits`) and list names from :func:`names`, so adding a
dataset is one registry entry (:mod:`loaders.registry`: its files) plus one row here (how to
read them). A test checks that the two tables name the same datasets.

Vocabulary as torchvision's: ``root`` is where the data are (the data home: a dataset's files
are in ``loaders.dataset_dir(name, root)``; default ``loaders.cache_root()``), ``cache_dir``
is where packed caches go (default: the same home), flags are keyword-only. A path instead of a
name opens local data (:mod:`datasets.local`: an image folder, an archive of one, a folder of
``train/``/``val/`` image folders, IDX files or a text file).

Example:
    >>> "cifar10" in names(kind="image") and "sms-spam" in names(kind="text")
    True
    >>> get("cifar10").splits
    ('train', 'test')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from datasets import builders
from datasets.images import check_choice
from datasets.splits import split_name
from datasets.transforms import ToFloat

log = logging.getLogger(__name__)

__all__ = ["CATALOG", "CatalogEntry", "TextFiles", "get", "names", "open_dataset", "open_splits"]

KINDS = ("image", "text")
Builder = Callable[..., Dataset[Any]]
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TextFiles:
    """Where a text row's splits are in its fetched folder, and how to read them.

    Attributes:
        files: split name -> file in the dataset folder (``"all"`` when there is no split).
        read: options of :func:`datasets.textfiles.read_records` (text/label columns, header).
        archive: the splits are folders inside this tar archive, read without extracting.
    """

    files: dict[str, str] = field(default_factory=dict)
    read: dict[str, Any] = field(default_factory=dict)
    archive: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    """One dataset: what it is and how to build each of its splits.

    Attributes:
        name: the registry name (``loaders.registry``), also the catalog's key.
        kind: ``"image"`` or ``"text"``.
        splits: the published splits, the training split first.
        build: ``build(root, split, *, download, transform, cache_dir, **options)`` returns
            the split's dataset (``split`` is one of :attr:`splits`).
        description: one line.
        default_transform: a zero-argument factory of the transform used when none is given
            (``None``: the dataset's own default, e.g. raw text).
        classes: the class names in label order, when known before reading the data (lets a
            local copy of the files be recognised and labelled, e.g. notMNIST's letters).
        options: extra keyword arguments :attr:`build` accepts (``subset``, ``size``...).
        held_out: the split a model is finally evaluated on (``"test"``; ``"val"`` where that
            is the published held-out set).
        text: a text row's files and reading defaults (:func:`datasets.textcorpora.open_text_corpus`
            reads them; the class display names are :attr:`classes`).
    """

    name: str
    kind: str
    splits: tuple[str, ...]
    build: Builder
    description: str
    default_transform: Callable[[], Any] | None = None
    classes: tuple[str, ...] | None = None
    options: tuple[str, ...] = ()
    held_out: str = "test"
    text: TextFiles | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        if (self.kind == "text") != (self.text is not None):
            raise ValueError(f"text should be given for text rows only, but got "
                             f"kind={self.kind!r} and text={self.text!r} for {self.name}")
        if self.held_out not in self.splits:
            raise ValueError(f"held_out should be one of {list(self.splits)}, but got "
                             f"held_out={self.held_out!r} for {self.name}")

    def open(
        self,
        root: PathLike | None = None,
        *,
        split: str,
        download: bool = False,
        transform: Any = None,
        cache_dir: PathLike | None = None,
        **options: Any,
    ) -> Dataset[Any]:
        """Build one split (see :func:`open_dataset`)."""
        split = split_name(split)
        check_choice("split", split, self.splits, context=f" for {self.name}")
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TypeError(f"options should be among {list(self.options)} for {self.name}, "
                            f"but got {', '.join(unknown)}")
        if transform is None and self.default_transform is not None:
            transform = self.default_transform()
        return self.build(root, split, download=download, transform=transform,
                          cache_dir=cache_dir, **options)


def _image(name: str, splits: tuple[str, ...], build: Builder, description: str, *,
           classes: tuple[str, ...] | None = None, options: tuple[str, ...] = (),
           held_out: str = "test") -> CatalogEntry:
    return CatalogEntry(name, "image", splits, build, description, default_transform=ToFloat,
                        classes=classes, options=options, held_out=held_out)


_SPLITS3 = ("train", "val", "test", "all")
_TWO = ("train", "test")
_FOLDER_OPTIONS = ("mode", "size", "resize", "max_side")  # ImageFolderDataset.pack
_LETTERS = tuple("ABCDEFGHIJ")
_DIGITS = tuple("0123456789")
# Text reading defaults: SMS Spam is headerless ``label<TAB>text``; AG News ``label,title,
# description`` (the header detected: the published files have none, Excel copies do).
_tsv_label_text = {"label_column": 0, "text_columns": [1], "header": False, "format": "tsv"}
_csv_ag_news = {"label_column": 0, "text_columns": [1, 2], "header": "auto", "format": "csv"}

# The table. Images default to ToFloat(): float32 [C, H, W] in [-1, 1]; text to raw dicts.
_ROWS: tuple[CatalogEntry, ...] = (
    _image("letters", _SPLITS3, builders.notmnist("letters"),
           "Letters A-J rendered locally in the notMNIST layout (generated offline)",
           classes=_LETTERS),
    _image("notmnist", _SPLITS3, builders.notmnist("small"),
           "notMNIST small: 28x28 glyphs of A-J, split 80/10/10 per class", classes=_LETTERS),
    _image("notmnist-large", _SPLITS3, builders.notmnist("large"),
           "notMNIST large: train/valid 90/10 of large, test = notMNIST small", classes=_LETTERS),
    _image("notmnist-idx", _TWO, builders.notmnist("idx"),
           "a notMNIST sample as MNIST-style IDX files", classes=_LETTERS),
    _image("mnist", _TWO, builders.idx_family("MNIST"), "MNIST handwritten digits, 28x28",
           classes=_DIGITS),
    _image("fashion-mnist", _TWO, builders.idx_family("FashionMNIST"),
           "Fashion-MNIST: Zalando articles, 10 classes, 28x28"),
    _image("kmnist", _TWO, builders.idx_family("KMNIST"),
           "Kuzushiji-MNIST: 10 cursive hiragana, 28x28"),
    _image("emnist", _TWO, builders.emnist, "EMNIST letters and digits (subset=, default "
           "balanced)", options=("subset",)),
    _image("cifar10", _TWO, builders.cifar("CIFAR10"), "CIFAR-10: 32x32 colour, 10 classes",
           options=("label",)),
    _image("cifar100", _TWO, builders.cifar("CIFAR100"), "CIFAR-100: 32x32 colour, 100 fine "
           "classes (label='coarse_labels': 20 coarse)", options=("label",)),
    _image("imagenette-160", ("train", "val"), builders.image_archive(
        "imagenette-160", "imagenette2-160.tgz", "imagenette2-160"),
        "Imagenette: 10 ImageNet classes, JPEGs with shorter side 160", options=_FOLDER_OPTIONS,
        held_out="val"),
    _image("imagenette-320", ("train", "val"), builders.image_archive(
        "imagenette-320", "imagenette2-320.tgz", "imagenette2-320"),
        "Imagenette: 10 ImageNet classes, JPEGs with shorter side 320", options=_FOLDER_OPTIONS,
        held_out="val"),
    _image("hymenoptera", ("train", "val"), builders.image_archive(
        "hymenoptera", "hymenoptera_data.zip", "hymenoptera_data"),
        "ants and bees photos of PyTorch's transfer-learning tutorial, many sizes",
        options=_FOLDER_OPTIONS, held_out="val"),
    CatalogEntry("sms-spam", "text", ("all",), builders.text_corpus("sms-spam"),
                 "UCI SMS Spam Collection: ham or spam", classes=("ham", "spam"), held_out="all",
                 text=TextFiles({"all": "SMSSpamCollection"}, _tsv_label_text)),
    CatalogEntry("ag-news", "text", _TWO, builders.text_corpus("ag-news"),
                 "AG News: news titles and descriptions in 4 topics",
                 classes=("World", "Sports", "Business", "Sci/Tech"),  # labels 1..4
                 text=TextFiles({"train": "train.csv", "test": "test.csv"}, _csv_ag_news)),
    CatalogEntry("imdb", "text", _TWO, builders.text_corpus("imdb"),
                 "IMDB movie reviews: positive or negative (25,000 + 25,000)",
                 text=TextFiles({"train": "train", "test": "test"}, archive="aclImdb_v1.tar.gz")),
)
CATALOG: dict[str, CatalogEntry] = {row.name: row for row in _ROWS}


def names(*, kind: str | None = None) -> list[str]:
    """Return the catalog's names, sorted; only ``"image"`` or ``"text"`` ones with ``kind``.

    Example:
        >>> names(kind="text")[:1]
        ['ag-news']
    """
    if kind is not None:
        check_choice("kind", kind, KINDS)
    return sorted(n for n, row in CATALOG.items() if kind is None or row.kind == kind)


def get(name: str) -> CatalogEntry:
    """Return the catalog row called ``name``.

    Raises:
        loaders.UnknownDatasetError: no such name; the message suggests the nearest ones.

    Example:
        >>> get("hymenoptera").kind
        'image'
    """
    rows = CATALOG
    if name in rows:
        return rows[name]
    from loaders import registry

    registry.get(name)  # an unknown name: the registry's error, with the nearest names
    from datasets.errors import DatasetError

    raise DatasetError(f"{name!r} is in the registry but has no catalog row; add one to "
                       "datasets/catalog.py (how to read its files)")


def is_path(name: str | os.PathLike[str]) -> bool:
    """Whether ``name`` means a path (it exists, or is spelled like one), not a catalog name."""
    text = os.fspath(name)
    return Path(text).expanduser().exists() or "/" in text or os.sep in text \
        or text.startswith(".") or (bool(Path(text).suffix) and text not in CATALOG)


def open_dataset(
    name: str | os.PathLike[str],
    root: PathLike | None = None,
    *,
    split: str,
    download: bool = False,
    transform: Any = None,
    target_transform: Any = None,
    cache_dir: PathLike | None = None,
    **options: Any,
) -> Dataset[Any]:
    """Open one split of a catalog dataset, or of local data at a path.

    Args:
        name: a catalog name (:func:`names`) or a path (see :mod:`datasets.local`).
        root: the data home (default ``loaders.cache_root()``); ignored for a path.
        split: one of the row's :attr:`CatalogEntry.splits` (a path: what it holds, ``"all"``
            for a single folder or file).
        download: fetch the files through ``loaders.fetch`` when missing.
        transform: ``None`` for the row's default transform.
        target_transform: applied to each label (as in torchvision's datasets).
        cache_dir: where packed caches go (default: ``root``'s home).
        **options: the row's options (``get(name).options``), e.g. ``subset="letters"`` for
            EMNIST, ``label="coarse_labels"`` for CIFAR-100, ``size=64`` for image folders.

    Returns:
        A map-style dataset.

    Raises:
        loaders.UnknownDatasetError: neither a catalog name nor a path.
        DatasetNotFoundError: the data are missing (says where it looked and what to run).
        ValueError: a split the dataset does not have.
        TypeError: an option the dataset does not take.

    Example:
        >>> ds = open_dataset("cifar10", split="test", download=True)  # doctest: +SKIP
        >>> ds[0][0].shape  # doctest: +SKIP
        torch.Size([3, 32, 32])
    """
    if is_path(name):
        dataset = open_splits(name, split=split, transform=transform, cache_dir=cache_dir,
                              **options)[split]
    else:
        dataset = get(os.fspath(name)).open(root, split=split, download=download,
                                            transform=transform, cache_dir=cache_dir, **options)
    if target_transform is not None:
        if not hasattr(dataset, "target_transform"):
            raise TypeError(f"target_transform is not supported by {type(dataset).__name__} "
                            f"({name}); apply it to the labels yourself")
        dataset.target_transform = target_transform
    return dataset


def open_splits(
    name: str | os.PathLike[str],
    root: PathLike | None = None,
    *,
    split: str | None = None,
    download: bool = False,
    transform: Any = None,
    cache_dir: PathLike | None = None,
    **options: Any,
) -> dict[str, Dataset[Any]]:
    """Open every split that is there (or only ``split``): ``{split: dataset}``, in order.

    A catalog dataset's splits whose files are missing are left out (``download=True`` fetches
    them); arguments as :func:`open_dataset`.

    Raises:
        DatasetNotFoundError: no split could be opened; says where it looked.
    """
    from datasets.errors import DatasetNotFoundError

    if is_path(name):
        from datasets.local import open_path_splits

        return open_path_splits(Path(name).expanduser(), split=split, transform=transform,
                                cache_dir=cache_dir, **options)
    row = get(os.fspath(name))
    wanted = row.splits if split is None else (split,)
    found: dict[str, Dataset[Any]] = {}
    missing: list[str] = []
    for candidate in wanted:
        if candidate == "all" and split is None and len(row.splits) > 1:
            continue  # "all" repeats the other splits' items
        try:
            found[candidate] = row.open(root, split=candidate, download=download,
                                        transform=transform, cache_dir=cache_dir, **options)
        except DatasetNotFoundError as err:
            if split is not None:
                raise
            missing.append(str(err))
    if not found:
        raise DatasetNotFoundError(missing[0] if missing else f"no split of {name} was found")
    return found


def format_catalog() -> str:
    """Return the catalog as a table: name, kind, splits, options and description."""
    rows = [("name", "kind", "splits", "description")]
    for name in names():
        row = CATALOG[name]
        options = f" (options: {', '.join(row.options)})" if row.options else ""
        rows.append((name, row.kind, "/".join(row.splits), row.description + options))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
                     for r in rows)

