"""The base of the classes that mirror torchvision's datasets: same calls, attributes, samples.

``MNIST``, ``FashionMNIST``, ``KMNIST``, ``EMNIST`` (:mod:`datasets.mnist`), ``CIFAR10``,
``CIFAR100`` (:mod:`datasets.cifarmirror`) and ``ImageFolder`` (:mod:`datasets.imagefolder`) take
torchvision's call forms (``root, train=True, transform=None, target_transform=None,
download=False``), subclass ``torchvision.datasets.VisionDataset`` and, with
``transform=None``, return the PIL image torchvision returns, so a torchvision pipeline gets
what it gets there. The pixels still live in the packed store, so the batched path of
:class:`datasets.PackedImageDataset` applies to them.

``root`` means what it means in torchvision (``root/MNIST/raw``, ``root/cifar-10-batches-py``):
it is read in place; only ``root=None`` uses dataferry's cache home. Derived (packed) caches
never go into ``root``: they are in the cache home, keyed by the resolved files.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import VisionDataset

from datasets.errors import DataFormatError, DatasetNotFoundError, MirrorNotFoundError
from datasets.packeddataset import ImageBatch, PackedImageDataset
from datasets.transforms import Transform, is_batch_transform
from loaders.registry import Resource
from loaders.retry import RetryPolicy

log = logging.getLogger(__name__)

__all__ = ["MirrorDataset", "check_file_md5", "download_file", "not_found_as_runtime_error",
           "published_resource", "refuse_keywords", "resolve_train"]

# torchvision keywords of sibling classes that these classes do not take, and what to use
UNSUPPORTED: dict[str, str] = {
    "what": "QMNIST's what= is not supported; use train=True/False (or split='train'/'test')",
    "compat": "QMNIST's compat= is not supported; targets are always class indices (ints)",
}


def refuse_keywords(cls: str, given: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Raise a one-line ``TypeError`` for a keyword ``cls`` does not take, saying what to use.

    Example:
        >>> refuse_keywords("MNIST", {"what": "test10k"}, ["train"])
        Traceback (most recent call last):
        TypeError: MNIST() got an unexpected keyword argument 'what': QMNIST's what= is not supported; use train=True/False (or split='train'/'test')
    """
    for name in given:
        if name not in allowed:
            advice = UNSUPPORTED.get(name, f"it takes {', '.join(allowed)}")
            raise TypeError(f"{cls}() got an unexpected keyword argument {name!r}: {advice}")


def resolve_train(cls: str, train: bool | None, split: str | None) -> bool:
    """Return whether the train split is meant, from torchvision's ``train=`` or our ``split=``.

    ``train`` alone is kept as given (``train=0`` stays ``0``, as in torchvision).

    Raises:
        TypeError: ``train`` is a string: ``MNIST(root, "test")`` would be the train split in
            torchvision (a non-empty string is true), so it is refused for ``split=``.
        ValueError: ``split`` is not ``"train"``/``"test"``, or it contradicts ``train``.

    Example:
        >>> resolve_train("MNIST", None, "test"), resolve_train("MNIST", False, None)
        (False, False)
    """
    if isinstance(train, str):
        raise TypeError(f"{cls}() got train={train!r}: train= takes True or False "
                        f"(torchvision's); for dataferry's split name pass split={train!r}")
    if split is None:
        return True if train is None else train
    if split not in ("train", "test"):
        raise ValueError(f"split should be one of ['train', 'test'], but got split={split!r}")
    if train is not None and bool(train) != (split == "train"):
        raise ValueError(f"{cls}: train={train!r} and split={split!r} disagree; pass one of them "
                         f"(train=True is split='train', train=False is split='test')")
    return split == "train"


@contextmanager
def not_found_as_runtime_error() -> Iterator[None]:
    """Re-raise missing data as :class:`MirrorNotFoundError`: a ``RuntimeError`` too, as
    torchvision raises, so ``except RuntimeError:`` written for torchvision still catches it."""
    try:
        yield
    except MirrorNotFoundError:
        raise
    except DatasetNotFoundError as err:
        raise MirrorNotFoundError(str(err)) from err


def check_file_md5(path: Path, md5: str | None, *, fix: str,
                   content_sha256: str | None = None) -> None:
    """Check ``path`` against its published md5; a mismatch names the file and the fix.

    A ``.gz`` whose md5 differs but whose decompressed bytes have the published
    ``content_sha256`` is a re-compressed copy of the same data (public copies of MNIST are):
    it is accepted, with a warning saying so.

    Raises:
        DataFormatError: the md5 differs (and the decompressed bytes, where they are published).
    """
    from loaders.verify import gunzip_sha256, hash_file

    got = md5 and hash_file(path, ("md5",))["md5"]
    if got == md5:
        return
    if content_sha256 is not None and gunzip_sha256(path) == content_sha256:
        log.warning("%s: md5 %s is not the published %s, but its decompressed bytes are the "
                    "published ones (a re-compressed copy); reading it", path, got, md5)
        return
    also = " nor are its decompressed bytes the published ones" if content_sha256 else ""
    raise DataFormatError(f"{path}: expected the published md5 {md5} but got {got}{also}: the "
                          f"file is damaged or incomplete; {fix}")


def published_resource(registry_name: str, filename: str) -> Resource | None:
    """The registry's record (urls, md5, content sha256) of a published file, if any."""
    from loaders.registry import get

    return next((r for r in get(registry_name).resources if r.filename == filename), None)


def md5_matches(path: Path, md5: str | None) -> bool:
    """Whether ``path`` has the published md5 (``True`` when none is published)."""
    from loaders.verify import hash_file

    return md5 is None or hash_file(path, ("md5",))["md5"] == md5


def content_matches(path: Path, resource: Resource) -> bool:
    """Whether an uncompressed copy matches the published sha256 of the ``.gz``'s content."""
    from loaders.verify import hash_file

    wanted = resource.content_sha256
    return wanted is None or hash_file(path)["sha256"] == wanted


def check_file_sha256(path: Path, sha256: str, *, fix: str) -> None:
    """Check an uncompressed copy against the published sha256 of its content.

    Raises:
        DataFormatError: the sha256 differs (names the file and the fix).
    """
    from loaders.verify import hash_file

    got = hash_file(path)["sha256"]
    if got != sha256:
        raise DataFormatError(f"{path}: expected the published content sha256 {sha256} but got "
                              f"{got}: the file is damaged or incomplete; {fix}")


def download_file(urls: Sequence[str], target: Path, *, md5: str | None,
                  retry: RetryPolicy | None) -> None:
    """Fetch ``target`` through the verified, resumable download (``.part`` beside it)."""
    from loaders.transfer import download
    from loaders.verify import Expected

    log.info("downloading %s into %s", target.name, target.parent)
    download(urls, target, expected=Expected(md5=md5), retry=retry)


def gunzip_beside(path: Path) -> Path:
    """Write ``x.gz``'s content as ``x`` beside it (atomically), as torchvision leaves it."""
    out = path.with_suffix("")
    temp = out.with_name(f".{out.name}.partial")
    with gzip.open(path, "rb") as source, open(temp, "wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    os.replace(temp, out)
    return out


class MirrorDataset(PackedImageDataset, VisionDataset):
    """A packed dataset that behaves as its torchvision namesake (see the module docstring).

    ``ds[i]`` is ``(PIL image, int)`` through ``transform`` and ``target_transform``, read at
    each call as torchvision reads them (so setting them later counts), or through the joint
    ``transforms=`` when one was passed; a :class:`datasets.transforms.BatchTransform` gets the
    ``uint8`` ``[C, H, W]`` tensor instead, as in every packed dataset. ``targets`` replaced
    or edited in place (CIFAR's list too) give the labels, per sample and per batch.
    """

    pil_mode: ClassVar[str] = "L"
    train: bool

    def _as_torchvision(self, root: str | os.PathLike[str] | None, transform: Transform | None,
                        target_transform: Transform | None,
                        transforms: Callable[[Any, Any], Any] | None) -> None:
        """Set torchvision's attributes over an initialised packed dataset."""
        VisionDataset.__init__(self, root, transforms, transform, target_transform)
        self._joint = transforms is not None  # else transform/target_transform, read at each call
        self._classes: list[str] | None = None
        self._data: Any = None
        self._target_list: Any = None

    # data and targets may be replaced, as torchvision users do to take a subset
    # (ds.data, ds.targets = ds.data[:100], ds.targets[:100]); samples then come from them.
    @property
    def data(self) -> Any:
        return self._stored_data() if self._data is None else self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value

    @property
    def targets(self) -> Any:
        if self._target_list is None:
            self._target_list = self._stored_targets()
        return self._target_list

    @targets.setter
    def targets(self, value: Any) -> None:
        self._target_list = value

    def _stored_data(self) -> Any:
        return PackedImageDataset.data.fget(self)  # type: ignore[attr-defined]

    def _stored_targets(self) -> Any:
        return self.target_tensor

    @property
    def replaced(self) -> bool:
        """Whether ``data`` was replaced (samples then come from it, one at a time)."""
        return self._data is not None

    @property
    def batched(self) -> bool:
        return not self.replaced and super().batched

    def _target(self, index: int) -> int:
        """The label of row ``index``: from ``targets`` once handed out or set (edits count)."""
        own = self._target_list
        return int(self.target_tensor[index] if own is None else own[index])

    def __getitems__(self, indices: Sequence[int]) -> Sequence[tuple[Any, Any]]:
        batch = super().__getitems__(indices)
        own = self._target_list
        if not isinstance(batch, ImageBatch) or own is None or own is self.target_tensor:
            return batch  # the stored labels (edited in place, if at all, through targets)
        if isinstance(own, torch.Tensor):  # targets set to another tensor
            labels = own.index_select(0, batch.indices).to(torch.int64)
        else:  # CIFAR's list (or one set): read per batch, so edits in place are seen
            labels = torch.tensor([int(own[i]) for i in batch.indices.tolist()], dtype=torch.int64)
        return ImageBatch(batch.images, labels, batch.indices)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"]) if self._classes is None else self._classes

    @classes.setter
    def classes(self, names: list[str]) -> None:
        self._classes = names

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self._data) if self.replaced else len(self.packed)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if self.replaced:
            pixels = np.asarray(self.data[index])
        else:
            pixels = self.pixels[index].numpy()  # [H, W, C]
            pixels = pixels[..., 0] if pixels.shape[2] == 1 else pixels
        target: Any = self._target(index)
        compiled = self.batch_transform  # a torchvision pipeline recognised, or a batch transform
        if compiled is not None and not is_batch_transform(self.transform):
            image: Any = compiled(torch.from_numpy(pixels.reshape(*pixels.shape[:2], -1))
                                  .permute(2, 0, 1))
        elif is_batch_transform(self.transform):
            image = torch.from_numpy(pixels.reshape(*pixels.shape[:2], -1)).permute(2, 0, 1)
            image = self.transform(image)
        else:
            image = Image.fromarray(pixels)  # [H, W]: mode "L"; [H, W, 3]: "RGB", as torchvision
            if self._joint:
                return self.transforms(image, target)
            if self.transform is not None:
                image = self.transform(image)
        if self.target_transform is not None:  # read now, as torchvision: it may have been set
            target = self.target_transform(target)
        return image, target

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'}"

    def __repr__(self) -> str:
        return VisionDataset.__repr__(self)
