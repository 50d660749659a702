"""``MNIST``, ``FashionMNIST``, ``KMNIST`` and ``EMNIST`` as torchvision's (see :mod:`datasets.mirror`).

A root is read where torchvision keeps it: ``root/<Class>/raw/`` holding
``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (EMNIST:
``emnist-<split>-{train,test}-...``), uncompressed as torchvision leaves them or ``.gz``. Only
the requested split's two files are needed. A ``.gz`` is checked against its published md5
(an uncompressed file against the published sha256 of its content where one is known) when it
is first packed. ``download=True`` fetches what is missing or damaged into that same layout
(``.gz`` plus the uncompressed copy torchvision reads). ``root=None`` reads dataferry's cache
home (``loaders.fetch``'s layout).
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import torchvision.datasets as tvd

from datasets import mirror
from datasets.errors import DatasetNotFoundError
from datasets.idx import EMNISTSplit, IDXDataset, _IDXFamily, cached_idx_files
from datasets.images import check_choice
from datasets.mirror import MirrorDataset, refuse_keywords, resolve_train
from datasets.transforms import Transform
from loaders.registry import Resource
from loaders.retry import RetryPolicy

log = logging.getLogger(__name__)

__all__ = ["EMNIST", "KMNIST", "MNIST", "FashionMNIST"]

_FIX = "pass download=True to fetch it again (only missing or damaged files are fetched)"
_KEYWORDS = ("root", "train", "transform", "target_transform", "download", "split",
             "transforms", "retry")


def _pick(folder: Path, name: str) -> Path | None:
    """The uncompressed file torchvision reads, else its ``.gz``, else ``None``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(cls: str, folder: Path, names: list[str], split: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{cls} {split} files not found: looked for {', '.join(names)} (or .gz) in {folder}; "
        f"pass download=True to fetch them (only the {split} files are needed)")


class _MirrorIDX(MirrorDataset, IDXDataset):
    """An IDX dataset read from a torchvision root; checks published hashes when packing.

    Has torchvision's class attributes (``mirrors``, ``resources``, ``training_file``...);
    ``download=True`` honours ``mirrors``/``resources`` changed by a user.
    """

    registry_name: ClassVar[str] = ""
    _torchvision: ClassVar[Any] = tvd.MNIST
    mirrors: ClassVar[list[str]] = list(tvd.MNIST.mirrors)
    resources: ClassVar[list[tuple[str, str]]] = list(tvd.MNIST.resources)
    training_file: str = tvd.MNIST.training_file
    test_file: str = tvd.MNIST.test_file

    def _check_sources(self, images_path: Path, labels_path: Path) -> None:
        for path in (images_path, labels_path):
            gz = path.name if path.suffix == ".gz" else f"{path.name}.gz"
            resource = mirror.published_resource(self.registry_name, gz)
            if resource is None:
                continue
            if path.suffix == ".gz":
                mirror.check_file_md5(path, resource.md5, fix=_FIX,
                                      content_sha256=resource.content_sha256)
            elif resource.content_sha256:
                mirror.check_file_sha256(path, resource.content_sha256, fix=_FIX)

    def _download_source(self, gz: str) -> tuple[list[str], str | None, Resource | None]:
        """``(urls, md5, published record)`` to fetch ``gz`` from: the registry's record, after
        the class's ``mirrors``/``resources`` where a user changed them (torchvision's
        workaround when a site is down: ``MNIST.mirrors = [...]``)."""
        resource = mirror.published_resource(self.registry_name, gz)
        urls, md5 = (list(resource.urls), resource.md5) if resource else ([], None)
        if list(self.mirrors) != list(self._torchvision.mirrors):
            urls = [f"{base}{gz}" for base in self.mirrors] + urls
        if list(self.resources) != list(self._torchvision.resources):
            md5 = dict(self.resources).get(gz, md5)
        return urls, md5, resource

    def _fetch(self, folder: Path, name: str, retry: RetryPolicy | None) -> Path:
        """Make ``name`` (and its ``.gz``) present and intact, fetching only what is not.

        An uncompressed file kept without its ``.gz`` is kept (as torchvision does) unless a
        published content hash says it is damaged.
        """
        urls, md5, resource = self._download_source(f"{name}.gz")
        raw, gz = folder / name, folder / f"{name}.gz"
        if not urls:
            if raw.is_file() or gz.is_file():
                return raw if raw.is_file() else gz
            raise DatasetNotFoundError(f"{name}: no published source to download it from; set "
                                       f"{type(self).__name__}.mirrors or place it in {folder}")
        raw_ok = raw.is_file() and (resource is None or mirror.content_matches(raw, resource))
        if raw_ok and not gz.is_file():
            return raw
        if not gz.is_file() or not mirror.md5_matches(gz, md5):
            mirror.download_file(urls, gz, md5=md5, retry=retry)
            raw_ok = False
        if not raw_ok:
            mirror.gunzip_beside(gz)
        return raw

    @property
    def raw_folder(self) -> str:
        return os.path.join(str(self.root), type(self).__name__, "raw")

    @property
    def processed_folder(self) -> str:
        return os.path.join(str(self.root), type(self).__name__, "processed")

    # torchvision's deprecated names of data and targets
    @property
    def train_labels(self) -> Any:
        return _renamed("train_labels", "targets", self.targets)

    @property
    def test_labels(self) -> Any:
        return _renamed("test_labels", "targets", self.targets)

    @property
    def train_data(self) -> Any:
        return _renamed("train_data", "data", self.data)

    @property
    def test_data(self) -> Any:
        return _renamed("test_data", "data", self.data)


def _renamed(old: str, new: str, value: Any) -> Any:
    warnings.warn(f"{old} has been renamed {new}", stacklevel=3)
    return value


class MNIST(_MirrorIDX):
    """MNIST digits, exactly as ``torchvision.datasets.MNIST`` (and dataferry's forms beside).

    ``ds[i]`` is ``(PIL image mode "L", int)`` before ``transform``; ``data`` is ``uint8``
    ``[N, 28, 28]``, ``targets`` ``int64`` ``[N]``, ``classes`` torchvision's names.

    Args:
        root: the folder holding ``MNIST/raw`` (torchvision's); ``None``: dataferry's cache home.
        train: the train split (``True``, default) or the test split.
        transform: applied to the PIL image (any torchvision v1/v2 pipeline).
        target_transform: applied to the ``int`` label.
        download: fetch the split's missing or damaged files into ``root/MNIST/raw``.
        split: dataferry's spelling of ``train``: ``"train"`` or ``"test"``.
        transforms: a joint ``(image, target) -> (image, target)`` callable (VisionDataset's).
        retry: timeouts and retries of the download (:class:`loaders.RetryPolicy`).

    Raises:
        MirrorNotFoundError: a file of the split is missing (named, with where it looked);
            a ``DatasetNotFoundError`` and a ``RuntimeError`` (torchvision's type).
        DataFormatError: a file fails its published md5 or is malformed (named, with the fix).
        TypeError: a torchvision keyword this class does not take (QMNIST's ``what=``).
        ValueError: ``train=`` and ``split=`` disagree.

    Example:
        >>> ds = MNIST("data", train=False, download=True)  # doctest: +SKIP
        >>> ds[0][0].mode, ds[0][1]  # doctest: +SKIP
        ('L', 7)
    """

    registry_name = "mnist"
    classes_tv: ClassVar[list[str]] = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
                                       "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool | None = None,
                 transform: Transform | None = None, target_transform: Transform | None = None,
                 download: bool = False, *, split: str | None = None,
                 transforms: Any = None, retry: RetryPolicy | None = None, **unsupported: Any
                 ) -> None:
        refuse_keywords(type(self).__name__, unsupported, _KEYWORDS)
        self.train = resolve_train(type(self).__name__, train, split)
        prefix = "train" if self.train else "t10k"
        with mirror.not_found_as_runtime_error():
            images, labels = self._locate(root, [f"{prefix}-images-idx3-ubyte",
                                                 f"{prefix}-labels-idx1-ubyte"], download, retry)
        IDXDataset.__init__(self, images, labels, classes=list(self.classes_tv))
        self._as_torchvision(root, transform, target_transform, transforms)

    def _locate(self, root: str | os.PathLike[str] | None, names: list[str], download: bool,
                retry: RetryPolicy | None) -> tuple[Path, Path]:
        split = "train" if self.train else "test"
        if root is None:  # dataferry's cache home, loaders.fetch's layout
            return cached_idx_files(self.registry_name, type(self).__name__,
                                    _IDXFamily.files[split], None, split, download)
        folder = Path(root).expanduser() / type(self).__name__ / "raw"
        found = [self._fetch(folder, n, retry) if download else _pick(folder, n) for n in names]
        if found[0] is None or found[1] is None:
            raise _missing(type(self).__name__, folder, [n for n, p in zip(names, found,
                                                                           strict=True) if p is None], split)
        return found[0], found[1]


class FashionMNIST(MNIST):
    """Fashion-MNIST as ``torchvision.datasets.FashionMNIST``; arguments as :class:`MNIST`."""

    registry_name = "fashion-mnist"
    _torchvision = tvd.FashionMNIST
    mirrors = list(tvd.FashionMNIST.mirrors)
    resources = list(tvd.FashionMNIST.resources)
    classes_tv = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot"]


class KMNIST(MNIST):
    """Kuzushiji-MNIST as ``torchvision.datasets.KMNIST``; arguments as :class:`MNIST`."""

    registry_name = "kmnist"
    _torchvision = tvd.KMNIST
    mirrors = list(tvd.KMNIST.mirrors)
    resources = list(tvd.KMNIST.resources)
    classes_tv = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


class EMNIST(_MirrorIDX):
    """EMNIST as ``torchvision.datasets.EMNIST(root, split="balanced", train=True)``.

    Images come as torchvision gives them (as stored: transposed glyphs); the upright form is
    ``open_dataset("emnist", subset=...)``. ``split`` takes both vocabularies, told apart by
    value: torchvision's EMNIST splits (``"byclass"``, ``"bymerge"``, ``"balanced"``,
    ``"letters"``, ``"digits"``, ``"mnist"``) or dataferry's ``"train"``/``"test"`` (with the
    EMNIST split then in ``subset=``). Files: ``root/EMNIST/raw/emnist-<split>-<train|test>-
    {images-idx3,labels-idx1}-ubyte`` (or ``.gz``, or inside ``raw/gzip.zip``).

    Args:
        root: the folder holding ``EMNIST/raw``; ``None``: dataferry's cache home.
        split: an EMNIST split (required, as in torchvision), or ``"train"``/``"test"`` (with
            the EMNIST split in ``subset=``, default ``"balanced"``).
        transform: applied to the PIL image.
        target_transform: applied to the ``int`` label.
        download: fetch ``gzip.zip`` (about 536 MB, md5-checked) when the split's files are
            missing, and write the split's two files beside it.
        train: the train split (default) or the test split.
        subset: dataferry's name for the EMNIST split.
        transforms: a joint ``(image, target)`` callable.
        retry: timeouts and retries of the download.

    Raises:
        TypeError: no split given (as torchvision); a string ``train=``.
        ValueError: an unknown split, or ``split``/``subset``/``train`` contradicting each other.
        MirrorNotFoundError: the split's files are missing (named); also a ``RuntimeError``.
    """

    registry_name = "emnist"
    url: ClassVar[str] = tvd.EMNIST.url
    md5: ClassVar[str] = tvd.EMNIST.md5
    splits: ClassVar[tuple[str, ...]] = tuple(EMNISTSplit.SUBSETS)
    # torchvision sorts the class characters (digits, upper, lower case), as these lists are
    classes_split_dict: ClassVar[dict[str, list[str]]] = EMNISTSplit.SUBSETS

    def __init__(self, root: str | os.PathLike[str] | None = None, split: str | None = None,
                 transform: Transform | None = None, target_transform: Transform | None = None,
                 download: bool = False, *, train: bool | None = None, subset: str | None = None,
                 transforms: Any = None, retry: RetryPolicy | None = None, **unsupported: Any
                 ) -> None:
        refuse_keywords("EMNIST", unsupported, (*_KEYWORDS, "subset"))
        self.split, self.train = _emnist_split(split, subset, train)
        self.training_file, self.test_file = f"training_{self.split}.pt", f"test_{self.split}.pt"
        part = "train" if self.train else "test"
        names = [f"emnist-{self.split}-{part}-{kind}-ubyte" for kind in ("images-idx3", "labels-idx1")]
        with mirror.not_found_as_runtime_error():
            images, labels = self._locate(root, names, download, retry)
        IDXDataset.__init__(self, images, labels, classes=list(EMNISTSplit.SUBSETS[self.split]))
        self._as_torchvision(root, transform, target_transform, transforms)

    def _locate(self, root: str | os.PathLike[str] | None, names: list[str], download: bool,
                retry: RetryPolicy | None) -> tuple[Path, Path]:
        import loaders

        if root is None:
            folder = loaders.dataset_dir("emnist")
            found = EMNISTSplit._find(folder, [f"{n}.gz" for n in names])
            if found is None and download:
                found = EMNISTSplit._find(loaders.fetch("emnist"), [f"{n}.gz" for n in names])
        else:
            folder = Path(root).expanduser() / "EMNIST" / "raw"
            found = self._in_raw(folder, names)
            if found is None and download:
                _fetch_zip(folder / "gzip.zip", retry)
            if found is None:
                found = self._from_zip(folder, names)
        if found is None:
            raise _missing("EMNIST", folder, names, "train" if self.train else "test")
        return found

    @staticmethod
    def _in_raw(folder: Path, names: list[str]) -> tuple[Path, Path] | None:
        """The two files in torchvision's ``raw`` (or its ``gzip/``), uncompressed or ``.gz``."""
        picked = [_pick(folder, n) or _pick(folder / "gzip", n) for n in names]
        if picked[0] is not None and picked[1] is not None:
            return picked[0], picked[1]
        return None

    @staticmethod
    def _from_zip(folder: Path, names: list[str]) -> tuple[Path, Path] | None:
        """Write the split's two files out of ``raw/gzip.zip``, uncompressed, as torchvision."""
        archive = folder / "gzip.zip"
        if not archive.is_file():
            return None
        resource = mirror.published_resource("emnist", "gzip.zip")  # checked before it is read
        mirror.check_file_md5(archive, resource.md5 if resource else None,
                              fix="pass download=True to fetch it again")
        with zipfile.ZipFile(archive) as zf:
            members = {Path(m).name: m for m in zf.namelist()}
            if not all(f"{n}.gz" in members for n in names):
                return None
            for n in names:
                temp = folder / f".{n}.gz.partial"
                temp.write_bytes(zf.read(members[f"{n}.gz"]))
                os.replace(temp, folder / f"{n}.gz")
                mirror.gunzip_beside(folder / f"{n}.gz")
                (folder / f"{n}.gz").unlink()
        return folder / names[0], folder / names[1]


def _fetch_zip(archive: Path, retry: RetryPolicy | None) -> None:
    """Fetch EMNIST's ``gzip.zip`` unless it is there and intact."""
    resource = mirror.published_resource("emnist", "gzip.zip")
    if resource is None:
        return
    if not archive.is_file() or not mirror.md5_matches(archive, resource.md5):
        mirror.download_file(resource.urls, archive, md5=resource.md5, retry=retry)


def _emnist_split(split: str | None, subset: str | None, train: bool | None) -> tuple[str, bool]:
    """``(EMNIST split, train)`` from either vocabulary; contradictions are refused."""
    splits = list(EMNISTSplit.SUBSETS)
    if split in ("train", "test"):
        subset = subset or "balanced"
        check_choice("subset", subset, splits)
        return subset, resolve_train("EMNIST", train, split)
    if split is None and subset is None:  # torchvision's EMNIST requires its split
        raise TypeError(f"EMNIST() missing 1 required argument: 'split' (one of {splits}, as in "
                        "torchvision; open_dataset('emnist') defaults to 'balanced')")
    if split is None:
        split = subset
    if split not in splits:
        raise ValueError(f"split should be one of {splits} (torchvision's) or ['train', 'test'] "
                         f"(dataferry's, with subset=), but got split={split!r}")
    if subset is not None and subset != split:
        raise ValueError(f"EMNIST: split={split!r} and subset={subset!r} name two EMNIST splits; "
                         "pass one of them")
    return split, resolve_train("EMNIST", train, None)
