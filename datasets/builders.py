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
    """Build splits of one of ``datasets.idx``'s MNIST-family classes."""

    def build(root: PathLike | None, split: str, *, download: bool, transform: Any,
              cache_dir: PathLike | None) -> Dataset[Any]:
        from datasets import idx

        _same_home(root, cache_dir, class_name)
        cls = getattr(idx, class_name)
        return cls(root, split=split, transform=transform, download=download)

    return build


def emnist(root: PathLike | None, split: str, *, download: bool, transform: Any,
           cache_dir: PathLike | None, subset: str = "balanced") -> Dataset[Any]:
    """Build an ``EMNIST`` split (``subset=`` as the class)."""
    from datasets.idx import EMNIST

    _same_home(root, cache_dir, "EMNIST")
    return EMNIST(root, split=split, transform=transform, download=download, subset=subset)


def cifar(class_name: str) -> Any:
    """Build ``CIFAR10``/``CIFAR100`` splits (``label=`` as the class)."""

    def build(root: PathLike | None, split: str, *, download: bool, transform: Any,
              cache_dir: PathLike | None, label: str | None = None) -> Dataset[Any]:
        from datasets import cifar as module

        cls = getattr(module, class_name)
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


def sms_spam(root: PathLike | None, split: str, *, download: bool, transform: Any,
             cache_dir: PathLike | None) -> Dataset[Any]:
    """Read the SMS Spam Collection as published (``label<TAB>text``)."""
    from datasets.text import TextClassificationDataset

    folder = _registry_folder("sms-spam", root, download, "SMSSpamCollection")
    return TextClassificationDataset.from_file(folder / "SMSSpamCollection")


AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")


def ag_news(root: PathLike | None, split: str, *, download: bool, transform: Any,
            cache_dir: PathLike | None) -> Dataset[Any]:
    """Read AG News' ``train.csv``/``test.csv`` (class 1-4, title, description): the descriptions."""
    from datasets.errors import DataFormatError
    from datasets.text import TextClassificationDataset
    from datasets.textfiles import read_records

    folder = _registry_folder("ag-news", root, download, f"{split}.csv", split=split)
    path = folder / f"{split}.csv"
    texts, labels = read_records(path, text_column=2, label_column=0, format="csv", header=False)
    try:
        names = [AG_NEWS_CLASSES[int(label) - 1] for label in labels]
    except (ValueError, IndexError) as err:
        raise DataFormatError(f"{path}: expected class indexes 1-4 in the first column ({err}); "
                              "delete the file and download it again") from err
    return TextClassificationDataset(texts, names)


def _registry_folder(name: str, root: PathLike | None, download: bool, needed: str, *,
                     split: str | None = None) -> Any:
    """The dataset's folder once ``needed`` is in it (fetched with ``download``)."""
    import loaders
    from datasets.errors import DatasetNotFoundError

    folder = loaders.dataset_dir(name, root)
    if not (folder / needed).is_file() and download:
        folder = loaders.fetch(name, root, split=split)
    if not (folder / needed).is_file():
        raise DatasetNotFoundError(
            f"expected {name} in {folder} but {needed} is not there; run "
            f"`python -m loaders.download {name}` or pass download=True"
        )
    return folder
