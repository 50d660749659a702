"""``CIFAR10`` and ``CIFAR100`` as torchvision's (see :mod:`datasets.mirror`).

A root is read where torchvision keeps it: the extracted ``root/cifar-10-batches-py`` (or
``root/cifar-100-python``), else the archive ``root/cifar-10-python.tar.gz``; only the
requested split's batches and the meta file are read, each checked against its published md5
(the archive against its own) when first packed. ``download=True`` fetches the archive into
``root`` and extracts it there, as torchvision does; ``root=None`` reads dataferry's cache home.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torchvision.datasets as tvd

from datasets import mirror
from datasets.cifar import (
    CIFAR10Split,
    CIFAR100Split,
    _Cifar,
    _find_source,
    iter_members,
    pack_cifar,
)
from datasets.errors import DatasetNotFoundError
from datasets.images import check_choice
from datasets.mirror import MirrorDataset, refuse_keywords, resolve_train
from datasets.packeddataset import PackedImageDataset
from datasets.transforms import Transform
from loaders.retry import RetryPolicy

log = logging.getLogger(__name__)

__all__ = ["CIFAR10", "CIFAR100"]

_FIX = "pass download=True to fetch the archive again"
_KEYWORDS = ("root", "train", "transform", "target_transform", "download", "split", "label",
             "transforms", "retry")


class _MirrorCifar(MirrorDataset, _Cifar):
    """The CIFAR mirrors, with torchvision's class attributes (``download=True`` honours a
    changed ``url``/``tgz_md5``)."""

    pil_mode = "RGB"
    _torchvision: ClassVar[Any] = tvd.CIFAR10
    base_folder: str
    url: str
    filename: str
    tgz_md5: str
    train_list: list[list[str]]
    test_list: list[list[str]]
    meta: dict[str, str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Copy torchvision's class attributes (``base_folder``, ``url``, ``train_list``...)."""
        super().__init_subclass__(**kwargs)
        theirs = cls._torchvision
        cls.base_folder, cls.url, cls.filename = theirs.base_folder, theirs.url, theirs.filename
        cls.tgz_md5, cls.meta = theirs.tgz_md5, dict(theirs.meta)
        cls.train_list = [list(row) for row in theirs.train_list]
        cls.test_list = [list(row) for row in theirs.test_list]

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool | None = None,
                 transform: Transform | None = None, target_transform: Transform | None = None,
                 download: bool = False, *, split: str | None = None, label: str | None = None,
                 transforms: Any = None, retry: RetryPolicy | None = None, **unsupported: Any
                 ) -> None:
        refuse_keywords(type(self).__name__, unsupported, _KEYWORDS)
        self.train = resolve_train(type(self).__name__, train, split)
        self.split = "train" if self.train else "test"
        self.label = label or self.layout.label_keys[0]
        check_choice("label", self.label, list(self.layout.label_keys))
        with mirror.not_found_as_runtime_error():
            source = self._source(root, download, retry)
        packed = pack_cifar(source, self.layout, self.split, label=self.label,
                            check=lambda: self._check_md5(source))
        PackedImageDataset.__init__(self, packed)
        self._as_torchvision(root, transform, target_transform, transforms)

    def _stored_data(self) -> np.ndarray:
        """``uint8`` ``[N, 32, 32, 3]`` as torchvision's (a numpy view of the packed store)."""
        return self.pixels.numpy()

    def _stored_targets(self) -> list[int]:
        """The labels as a list of ``int``, as torchvision's."""
        return self.target_tensor.tolist()

    def _needed(self) -> list[str]:
        return [*self.layout.splits[self.split], self.layout.meta]

    def _source(self, root: str | os.PathLike[str] | None, download: bool,
                retry: RetryPolicy | None) -> Path:
        if root is None:  # dataferry's cache home, loaders.fetch's layout
            return _find_source(self.registry_name, self.layout, None, download)
        base = Path(root).expanduser()
        folder, archive = base / self.layout.folder, base / self.layout.archive
        missing = [n for n in self._needed() if not (folder / n).is_file()]
        if download:
            return self._download(base, retry)
        if not missing:
            return folder
        if archive.is_file() and not folder.exists():
            return archive
        where = (f"{', '.join(missing)} in {folder}" if folder.exists()
                 else f"{folder} (or {archive})")
        raise DatasetNotFoundError(
            f"{type(self).__name__} {self.split} files not found: looked for {where}; pass "
            f"download=True to fetch them (only the {self.split} batches and "
            f"{self.layout.meta} are needed)")

    def _download(self, base: Path, retry: RetryPolicy | None) -> Path:
        """Make torchvision's extracted folder complete and intact, fetching only what is not.

        The archive is fetched when a file is missing or fails its md5 and the archive itself
        is missing or damaged; those files alone are then written from it (atomically).
        """
        folder = base / self.layout.folder
        names = [*self.layout.member_md5] or [*self._needed()]
        bad = [n for n in names if not (folder / n).is_file()
               or not mirror.md5_matches(folder / n, self.layout.member_md5.get(n))]
        if not bad:
            return folder
        urls, md5 = self._download_source()
        archive = base / self.layout.archive
        if not urls and not archive.is_file():
            raise DatasetNotFoundError(f"{self.layout.archive}: no published source to download "
                                       f"it from; place it in {base}")
        if urls and (not archive.is_file() or not mirror.md5_matches(archive, md5)):
            mirror.download_file(urls, archive, md5=md5, retry=retry)
        folder.mkdir(exist_ok=True)
        for name, data in iter_members(archive, set(bad)):
            temp = folder / f".{name}.partial"
            temp.write_bytes(data)
            os.replace(temp, folder / name)
        return folder

    def _download_source(self) -> tuple[list[str], str | None]:
        """``(urls, md5)`` of the archive: the registry's, after the class's ``url``/``tgz_md5``
        where a user changed them (torchvision's workaround when a site is down)."""
        resource = mirror.published_resource(self.registry_name, self.layout.archive)
        urls, md5 = (list(resource.urls), resource.md5) if resource else ([], None)
        if self.url != self._torchvision.url:
            urls = [self.url, *urls]
        if self.tgz_md5 != self._torchvision.tgz_md5:
            md5 = self.tgz_md5
        return urls, md5

    def _check_md5(self, source: Path) -> None:
        if source.is_dir():
            for name in self._needed():
                mirror.check_file_md5(source / name, self.layout.member_md5.get(name), fix=_FIX)
            return
        resource = mirror.published_resource(self.registry_name, self.layout.archive)
        mirror.check_file_md5(source, resource.md5 if resource else None, fix=_FIX)


class CIFAR10(_MirrorCifar, CIFAR10Split):
    """CIFAR-10 exactly as ``torchvision.datasets.CIFAR10`` (and dataferry's forms beside).

    ``ds[i]`` is ``(PIL image mode "RGB", int)`` before ``transform``; ``data`` is a ``uint8``
    ``numpy`` array ``[N, 32, 32, 3]``, ``targets`` a list of ``int``, ``classes`` the meta
    file's names.

    Args:
        root: the folder holding ``cifar-10-batches-py`` or the archive (torchvision's);
            ``None``: dataferry's cache home.
        train: the train split (``True``, default) or the test split.
        transform: applied to the PIL image (any torchvision v1/v2 pipeline).
        target_transform: applied to the ``int`` label.
        download: fetch and extract the archive into ``root`` when the split's files are
            missing or damaged.
        split: dataferry's spelling of ``train``: ``"train"`` or ``"test"``.
        label: the batches' label key (CIFAR-100: ``"coarse_labels"`` for the 20 coarse classes).
        transforms: a joint ``(image, target)`` callable (VisionDataset's).
        retry: timeouts and retries of the download (:class:`loaders.RetryPolicy`).

    Raises:
        MirrorNotFoundError: a file of the split is missing (named, with where it looked);
            a ``DatasetNotFoundError`` and a ``RuntimeError`` (torchvision's type).
        DataFormatError: a file fails its published md5 or is malformed (named, with the fix).
        TypeError: a keyword this class does not take; ValueError: ``train=``/``split=`` disagree.

    Example:
        >>> ds = CIFAR10("data", train=False, download=True)  # doctest: +SKIP
        >>> ds[0][0].mode, ds.classes[ds[0][1]]  # doctest: +SKIP
        ('RGB', 'cat')
    """


class CIFAR100(_MirrorCifar, CIFAR100Split):
    """CIFAR-100 exactly as ``torchvision.datasets.CIFAR100``; arguments as :class:`CIFAR10`."""

    _torchvision = tvd.CIFAR100
