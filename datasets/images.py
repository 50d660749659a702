"""Image datasets over a packed cache: the shared base class and ``ImageFolderDataset``.

Every image dataset here (``ImageFolderDataset``, ``NotMNIST``, the MNIST family) keeps its
pixels in a packed cache (:mod:`datasets.packed`): one memory-mapped ``uint8`` array
``N x H x W``. ``ds[i]`` returns ``(image, label)`` with ``image`` a ``float32`` tensor
``[1, H, W]`` computed by the default transform ``ToFloat()``, i.e. ``(x / 255 - 0.5) / 0.5``
in ``[-1, 1]``. ``ds.__getitems__(indices)`` fetches a whole batch with one indexing
operation and one conversion; :class:`datasets.DataLoader` uses it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datasets.decode import decode_png
from datasets.errors import DataFormatError
from datasets.packed import PackedImages
from datasets.packing import pack_archive, pack_folder, scan_folder
from datasets.transforms import ToFloat, is_batch_transform

log = logging.getLogger(__name__)

Transform = Callable[[Any], Any]


def check_choice(arg: str, value: str, choices: Sequence[str], *, context: str = "") -> None:
    """Raise ``ValueError`` in torch's pattern unless ``value`` is one of ``choices``.

    Example:
        >>> check_choice("split", "dev", ["train", "test"])
        Traceback (most recent call last):
        ValueError: split should be one of ['train', 'test'], but got split='dev'
    """
    if value not in choices:
        raise ValueError(f"{arg} should be one of {list(choices)}{context}, but got "
                         f"{arg}={value!r}")


class ImageBatch(Sequence[tuple[torch.Tensor, Any]]):
    """A batch fetched at once: ``images`` ``[B,1,H,W]``, ``targets`` ``[B]``, ``indices``.

    It is also a sequence of ``(image, label)`` samples, so torch's ``default_collate`` (used
    by a plain ``torch.utils.data.DataLoader``) rebuilds the same batch from it, only slower.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor) -> None:
        self.images = images
        self.targets = targets
        self.indices = indices

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.images[i], int(self.targets[i])

    def as_tuple(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(images, targets)``, the batch as a ``DataLoader`` yields it."""
        return self.images, self.targets


class PackedImageDataset(Dataset[tuple[Any, Any]]):
    """A map-style dataset over an opened packed cache.

    Args:
        packed: the cache (see :mod:`datasets.packed`).
        transform: ``None`` for ``ToFloat()``; a :class:`datasets.transforms.BatchTransform`
            is applied once per batch to ``uint8`` ``[B,1,H,W]``; any other callable is applied
            per sample to a ``PIL.Image`` in mode ``"L"`` (torchvision style).
        target_transform: applied per sample to the ``int`` label.

    Attributes:
        classes: class names; label ``i`` is ``classes[i]``.
        data: ``uint8`` tensor ``[N, H, W]`` backed by the memory-mapped cache file.
        targets: ``int64`` tensor ``[N]``.
        skipped: ``(path, reason)`` of every unreadable image left out.
        manifest: the cache's manifest (shape, counts, source, build time…).
    """

    def __init__(
        self,
        packed: PackedImages,
        transform: Transform | None = None,
        target_transform: Transform | None = None,
    ) -> None:
        self.packed = packed
        self.transform: Transform = ToFloat() if transform is None else transform
        self.target_transform = target_transform
        self._data: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        return self.packed.manifest

    @property
    def classes(self) -> list[str]:
        return list(self.packed.manifest["classes"])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return [(path, reason) for path, reason in self.packed.manifest["skipped"]]

    @property
    def data(self) -> torch.Tensor:
        if self._data is None:  # opened lazily, so each worker process maps the file itself
            self._data = torch.from_numpy(self.packed.images())
        return self._data

    @property
    def targets(self) -> torch.Tensor:
        if self._targets is None:
            self._targets = torch.from_numpy(self.packed.labels())
        return self._targets

    @property
    def batched(self) -> bool:
        """Whether ``__getitems__`` converts a batch at once (no per-sample transform set)."""
        return is_batch_transform(self.transform) and self.target_transform is None

    def __len__(self) -> int:
        return len(self.packed)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self._sample(self.data[index], index)

    def _sample(self, image: torch.Tensor, index: int) -> tuple[Any, Any]:
        """Apply the transforms to one ``uint8`` ``[H, W]`` image and the label of ``index``."""
        if is_batch_transform(self.transform):
            x = self.transform(image.unsqueeze(0))
        else:
            x = self.transform(Image.fromarray(image.numpy(), mode="L"))
        target: Any = int(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return x, target

    def __getitems__(self, indices: Sequence[int]) -> Sequence[tuple[Any, Any]]:
        """Fetch a batch: one indexing operation and one conversion when :attr:`batched`."""
        if not self.batched:
            return [self[int(i)] for i in indices]
        idx = torch.as_tensor(indices, dtype=torch.int64)
        if len(idx) and int(idx.min()) < 0:  # index_select takes no negative indices
            idx = torch.where(idx < 0, idx + len(self), idx)
        # index_select is a plain gather, many times faster than advanced indexing here.
        images = self.transform(self.data.index_select(0, idx).unsqueeze(1))
        return ImageBatch(images, self.targets.index_select(0, idx), idx)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into spawned workers: send the path, never the pixels.
        state = self.__dict__.copy()
        state["_data"] = None
        state["_targets"] = None
        return state

    def __repr__(self) -> str:
        n, h, w = self.packed.shape
        return (f"{type(self).__name__}(N={n}, size={h}x{w}, classes={len(self.classes)}, "
                f"skipped={len(self.skipped)}, cache={str(self.packed.path)!r})")


class ImageFolderDataset(PackedImageDataset):
    """Any folder laid out ``CLASS/*.png``: classes sorted, label = index of the class.

    On first use the images are decoded once (in parallel) into a packed cache at
    ``cache_root(cache_dir)/packed/folder-<fingerprint>/``; the fingerprint covers relative
    paths, sizes and mtimes, so later uses open the cache in milliseconds and a changed
    folder gets a new cache. Unreadable images (empty, not a PNG, wrong size) are skipped,
    listed in :attr:`skipped` and counted with a warning. Use :meth:`from_archive` to pack a
    ``tar.gz`` of such a folder without extracting it.

    Args:
        root: the folder holding one sub-folder per class.
        transform: see :class:`PackedImageDataset`.
        target_transform: applied to the ``int`` label.
        cache: ``False`` decodes each image from its file on every access (no packing; an
            unreadable file then raises :class:`datasets.DataFormatError` when read).
        cache_dir: the cache home (default: ``loaders.cache_root()``).
        workers: decoding processes while packing (default: all CPUs for big folders).

    Example:
        >>> ds = ImageFolderDataset("notMNIST_small")  # doctest: +SKIP
        >>> x, y = ds[0]; x.shape, ds.classes[y]  # doctest: +SKIP
        (torch.Size([1, 28, 28]), 'A')
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        cache: bool = True,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.cache = cache
        if cache:
            packed = pack_folder(self.root, cache_dir=cache_dir, workers=workers)
            super().__init__(packed, transform, target_transform)
        else:
            self._init_uncached(transform, target_transform)

    @classmethod
    def from_archive(
        cls,
        path: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
    ) -> ImageFolderDataset:
        """Pack the ``CLASS/*.png`` members of a tar archive without extracting it.

        The class of a member is its parent folder's name (``notMNIST_small/A/x.png`` is
        ``A``); rows are ordered as for the extracted folder (by class, then name), and
        :attr:`skipped` names archive members. The cache key is the archive's name, size and
        mtime, so reopening costs milliseconds.

        Args:
            path: a ``.tar``, ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz`` archive.
            transform: as for the constructor.
            target_transform: as for the constructor.
            cache_dir: the cache home (default: ``loaders.cache_root()``).
            workers: decoding processes (default: chosen after timing the first chunk).

        Returns:
            The dataset; its ``root`` is the archive.

        Raises:
            DataFormatError: the archive is corrupt or holds no ``CLASS/*.png`` member.
        """
        dataset = cls.__new__(cls)
        dataset.root, dataset.cache = Path(path), True
        packed = pack_archive(path, cache_dir=cache_dir, workers=workers)
        PackedImageDataset.__init__(dataset, packed, transform, target_transform)
        return dataset

    # -- cache=False: decode per item -------------------------------------------------------
    def _init_uncached(self, transform: Transform | None, target_transform: Transform | None
                       ) -> None:
        classes, files = scan_folder(self.root)
        self._files = np.array([rel for rel, size, _ in files if size > 0])
        labels = [classes.index(rel.split("/", 1)[0]) for rel in self._files]
        empty = [(rel, "empty file (0 bytes)") for rel, size, _ in files if size == 0]
        counts = {c: labels.count(i) for i, c in enumerate(classes)}
        self.packed = None  # type: ignore[assignment]
        self._manifest = {"classes": classes, "skipped": empty, "counts": counts,
                          "source": {"type": "folder", "path": str(self.root)}}
        self.transform = ToFloat() if transform is None else transform
        self.target_transform = target_transform
        self._targets = torch.tensor(labels, dtype=torch.int64)
        self._data = None

    @property
    def manifest(self) -> dict[str, Any]:
        return self.packed.manifest if self.cache else self._manifest

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return [(path, reason) for path, reason in self.manifest["skipped"]]

    @property
    def data(self) -> torch.Tensor:
        if self.cache or self._data is not None:
            return super().data
        self._data = torch.stack([self._load(i) for i in range(len(self))])  # everything
        return self._data

    @property
    def targets(self) -> torch.Tensor:
        if not self.cache and self._targets is not None:
            return self._targets
        return super().targets

    @property
    def batched(self) -> bool:
        return self.cache and super().batched

    def __len__(self) -> int:
        return len(self.packed) if self.cache else len(self._files)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if self.cache:
            return super().__getitem__(index)
        return self._sample(self._load(index), index)

    def __getitems__(self, indices: Sequence[int]) -> Sequence[tuple[Any, Any]]:
        if self.cache:
            return super().__getitems__(indices)
        return [self[int(i)] for i in indices]

    def _load(self, index: int) -> torch.Tensor:
        path = self.root / str(self._files[index])
        array, reason = decode_png(path.read_bytes())
        if array is None:
            raise DataFormatError(
                f"cannot read image {path}: {reason}; use cache=True to skip unreadable "
                "images (they are then listed in .skipped)"
            )
        return torch.from_numpy(array.copy())

    def __repr__(self) -> str:
        if self.cache:
            return super().__repr__()
        return f"ImageFolderDataset(root={str(self.root)!r}, N={len(self)}, cache=False)"
