"""How each catalog row builds a split: small factories over the dataset classes.

Every builder has the signature the catalog calls,
``build(root, split, *, download, transform, cache_dir, **options) -> Dataset``, with
``root`` the data home and ``cache_dir`` the packed-cache home (both default to
``loaders.cache_root()``). The dataset classes are imported when a split is built, so importing
the catalog stays cheap.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from torch.utils.data import Dataset

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def _same_home(root: PathLike | None, cache_dir: PathLike | None, cls: str) -> None:
    """The classes that take only ``root`` pack into it: a different ``cache_dir`` is refused."""
    from loaders.cache import cache_root

    if cache_dir is not None and cache_root(cache_dir) != cache_root(root):
        raise ValueError(
            f"cache_dir should be None or the same home as root for {cls} (it packs beside its "
            f"data), but got cache_dir={os.fspath(cache_dir)!r} and root={root!r}"
        )


def notmnist(variant: str) -> Any:
    """Build ``NotMNIST(variant=variant)`` splits."""

    def build(root: PathLike | None, split: str, *, download: bool, transform: Any,
              cache_dir: PathLike | None) -> Dataset[Any]:
        from datasets.notmnist import NotMNIST

        _same_home(root, cache_dir, "NotMNIST")
        return NotMNIST(root, split=split, transform=transform, download=download,
                        variant=variant)

    return build


def idx_family(class_name: str) -> Any:
    """Build splits of one of ``datasets.idx``'s MNIST-family classes (dataferry's own form,
    ``MNISTSplit``...; the torchvision-named classes take torchvision's ``root``)."""

    def build(root: PathLike | None, split: str, *, download: bool, transform: Any,
              cache_dir: PathLike | None) -> Dataset[Any]:
        from datasets import idx

        _same_home(root, cache_dir, class_name)
        cls = getattr(idx, f"{class_name}Split")
        return cls(root, split=split, transform=transform, download=download)

    return build


def emnist(root: PathLike | None, split: str, *, download: bool, transform: Any,
           cache_dir: PathLike | None, subset: str = "balanced") -> Dataset[Any]:
    """Build an EMNIST split in dataferry's own form (``EMNISTSplit``: upright, ``subset=``)."""
    from datasets.idx import EMNISTSplit

    _same_home(root, cache_dir, "EMNIST")
    return EMNISTSplit(root, split=split, transform=transform, download=download, subset=subset)


def cifar(class_name: str) -> Any:
    """Build ``CIFAR10``/``CIFAR100`` splits (``label=`` as the class)."""

    def build(root: PathLike | None, split: str, *, download: bool, transform: Any,
              cache_dir: PathLike | None, label: str | None = None) -> Dataset[Any]:
        from datasets import cifar as module

        cls = getattr(module, f"{class_name}Split")  # dataferry's own form (data home root)
        return cls(root, split=split, transform=transform, download=download,
                   label=label, cache_dir=cache_dir)

    return build


def image_archive(name: str, filename: str, top: str) -> Any:
    """Build the ``top/<split>/CLASS/*`` image folders of a downloaded archive (kept packed)."""

    def build(root: PathLike | None, split: str, *, download: bool, transform: Any,
              cache_dir: PathLike | None, **options: Any) -> Dataset[Any]:
        from datasets.archived import open_archived_split

        return open_archived_split(name, filename, f"{top}/{split}", root=root,
                                   download=download, transform=transform,
                                   cache_dir=cache_dir, **options)

    return build


def text_corpus(name: str) -> Any:
    """Build a text corpus's split with ``datasets.textcorpora.open_text_corpus``.

    The files and reading defaults are the catalog row's ``text`` (``datasets.catalog``).
    """

    def build(root: PathLike | None, split: str, *, download: bool, transform: Any,
              cache_dir: PathLike | None) -> Dataset[Any]:
        from datasets.catalog import get
        from datasets.textcorpora import open_text_corpus

        corpus = get(name).text
        if corpus is None:
            raise ValueError(f"name should be a text row of the catalog, but got name={name!r}")
        needed = corpus.archive or next(iter(corpus.files.values()))
        if not download:  # say where and what to run, before the reader's "file not found"
            _registry_folder(name, root, download, needed)
        return open_text_corpus(name, root=root, cache_dir=cache_dir, download=download)[split]

    return build


def _registry_folder(name: str, root: PathLike | None, download: bool, needed: str) -> Any:
    """The dataset's folder once ``needed`` is in it (fetched with ``download``)."""
    import loaders
    from datasets.errors import DatasetNotFoundError

    folder = loaders.dataset_dir(name, root)
    if not (folder / needed).exists() and download:
        folder = loaders.fetch(name, root)
    if not (folder / needed).exists():
        raise DatasetNotFoundError(
            f"expected {name} in {folder} but {needed} is not there; run "
            f"`python -m loaders.download {name}` or pass download=True"
        )
    return folder
