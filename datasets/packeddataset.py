"""Datasets over the fixed-size packed store: ``PackedImageDataset`` and ``PackedImageFolder``.

Every fixed-size image dataset here (``PackedImageFolder``, ``NotMNIST``, the MNIST family)
keeps its pixels in one memory-mapped ``uint8`` array ``[N, H, W, C]`` (:mod:`datasets.packed`)
and reads with zero decoding. ``ds[i]`` is ``(image, label)``; ``ds.__getitems__(indices)``
fetches a whole batch with one gather and one conversion (:class:`datasets.DataLoader` uses
it). What ``image`` is depends on ``transform`` (the same rule for every image dataset):

- ``None``: ``ToFloat()``, a ``float32`` tensor ``[C, H, W]`` in ``[-1, 1]``
  (``(x / 255 - 0.5) / 0.5``); batches ``[B, C, H, W]``.
- a :class:`datasets.transforms.BatchTransform` (``ToFloat``, ``Normalize``, ``RandomCrop``…):
  applied once per batch to ``uint8`` ``[B, C, H, W]`` (and to ``[C, H, W]`` for ``ds[i]``).
- a torchvision v1 or v2 pipeline that :func:`datasets.pipeline.compile_pipeline` recognises
  (``ToTensor``, ``Normalize``, ``RandomCrop``, ``Resize``…): run as its batch equivalent, the
  same way, with torchvision's result, bit for bit (resizes of a PIL image run Pillow's).
- any other callable (another torchvision pipeline, a function): applied per sample to the
  PIL image (mode ``"L"`` or ``"RGB"``) torchvision's datasets would give it, so v1 and v2
  pipelines behave as there (a v2 pipeline wanting tensors starts with ``v2.ToImage()``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch.utils.data import Dataset

from datasets.errors import DataFormatError
from datasets.packed import PackedImages
from datasets.pipeline import compile_pipeline, pil_image, signature
from datasets.transforms import (
    BatchTransform,
    ToFloat,
    Transform,
    checked_rows,
    is_batch_transform,
)

log = logging.getLogger(__name__)


class ImageBatch(Sequence[tuple[torch.Tensor, Any]]):
    """A batch fetched at once: ``images`` ``[B,C,H,W]``, ``targets`` ``[B]``, ``indices``.

    It is also a sequence of ``(image, label)`` samples, so torch's ``default_collate`` (used
    by a plain ``torch.utils.data.DataLoader``) rebuilds the same batch from it, only slower.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor) -> None:
        self.images = images
        self.targets = targets
        self.indices = indices
        self._samples: list[tuple[torch.Tensor, int]] | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: Any) -> Any:
        if self._samples is None:  # made at once: default_collate walks the samples twice
            self._samples = list(zip(self.images.unbind(0), self.targets.tolist(), strict=True))
        return self._samples[i]

    def as_tuple(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(images, targets)``, the batch as a ``DataLoader`` yields it."""
        return self.images, self.targets


class StoredImageInfo:
    """What every packed image dataset reads from its manifest (fixed and variable stores alike).

    A subclass defines :meth:`_stored` (its opened store: ``manifest``, ``mode``, ``labels()``);
    the rest follows from it.
    """

    _targets: torch.Tensor | None = None
    transform: Transform
    _compiled: tuple[tuple[Any, ...], BatchTransform | None] | None = None

    def _stored(self) -> Any:
        raise NotImplementedError

    @property
    def batch_transform(self) -> BatchTransform | None:
        """What ``transform`` runs as on ``uint8`` pixels: itself when a batch transform, its
        compiled torchvision pipeline, or ``None`` (per sample on PIL images)."""
        transform = self.transform
        if transform is None:  # a torchvision mirror's transform=None: PIL images
            return None
        if is_batch_transform(transform):
            return cast(BatchTransform, transform)
        key = signature(transform)  # compiled again when the pipeline (or an op) changed
        if self._compiled is None or self._compiled[0] != key:
            self._compiled = (key, compile_pipeline(transform))
        return self._compiled[1]

    def apply_transform(self, image: torch.Tensor) -> Any:
        """Transform one ``uint8`` ``[C, H, W]`` image by the rule of the module docstring."""
        batch = self.batch_transform
        return batch(image) if batch is not None else self.transform(pil_image(image))

    @property
    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = self._stored().manifest
        return manifest

    @property
    def mode(self) -> str:
        """``"L"`` or ``"RGB"``."""
        mode: str = self._stored().mode
        return mode

    @property
    def target_tensor(self) -> torch.Tensor:
        """``int64`` labels ``[N]``, read once from the memory-mapped store."""
        if self._targets is None:
            self._targets = torch.from_numpy(self._stored().labels())
        return self._targets

    @property
    def targets(self) -> Any:
        """``int64`` labels ``[N]`` (a mirror class gives torchvision's type: CIFAR's a list)."""
        return self.target_tensor

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def mean(self) -> list[float]:
        """Per-channel mean of ``x / 255``, computed while packing."""
        return list(self.manifest.get("mean", []))

    @property
    def std(self) -> list[float]:
        """Per-channel standard deviation of ``x / 255``, computed while packing."""
        return list(self.manifest.get("std", []))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every file that could not be read."""
        return [(path, reason) for path, reason in self.manifest["skipped"]]

    @property
    def notes(self) -> list[tuple[str, str]]:
        """``(path, note)`` of files kept with a change worth knowing (a GIF's first frame...)."""
        return [(path, note) for path, note in self.manifest.get("notes", [])]


class PackedImageDataset(StoredImageInfo, Dataset[tuple[Any, Any]]):
    """A map-style dataset over an opened fixed-size store (see the module docstring).

    Args:
        packed: the cache (see :mod:`datasets.packed`).
        transform: ``None`` for ``ToFloat()``; a batch transform; a torchvision pipeline
            (batched when it compiles, else per sample on PIL images); or a callable.
        target_transform: applied per sample to the ``int`` label.

    Attributes:
        classes: class names; label ``i`` is ``classes[i]``.
        data: ``uint8`` tensor ``[N, H, W]`` (grey) or ``[N, H, W, C]`` (colour), as
            torchvision's MNIST and CIFAR keep it, backed by the memory-mapped file.
        targets: ``int64`` tensor ``[N]``.
        mean, std: per-channel statistics of the pixels (``x / 255``) from the manifest.
        skipped: ``(path, reason)`` of every unreadable image left out.
        manifest: the cache's manifest (shape, mode, counts, source, build time…).
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
        self._pixels: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None

    def _stored(self) -> PackedImages:
        return self.packed

    @property
    def pixels(self) -> torch.Tensor:
        """``uint8`` ``[N, H, W, C]`` backed by the memory-mapped cache file."""
        if self._pixels is None:  # opened lazily, so each worker process maps the file itself
            self._pixels = torch.from_numpy(self.packed.images())
        return self._pixels

    @property
    def data(self) -> torch.Tensor:
        return self.pixels[..., 0] if self.packed.shape[3] == 1 else self.pixels

    @property
    def batched(self) -> bool:
        """Whether ``__getitems__`` converts a batch at once (no per-sample transform set)."""
        return self.batch_transform is not None and self.target_transform is None

    def __len__(self) -> int:
        return len(self.packed)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image = self.pixels[index].permute(2, 0, 1)  # [C, H, W], a view
        x = self.apply_transform(image)
        target: Any = int(self.target_tensor[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return x, target

    def __getitems__(self, indices: Sequence[int]) -> Sequence[tuple[Any, Any]]:
        """Fetch a batch: one gather and one conversion when :attr:`batched`."""
        if not self.batched:
            return [self[int(i)] for i in indices]
        idx = checked_rows(indices, len(self))  # negative ones from the end, a bad one named
        # take(): a crop reads its boxes straight from the memory map; anything else gathers
        # the rows (index_select, many times faster than advanced indexing) and transforms.
        transform = cast(BatchTransform, self.batch_transform)
        images = transform.take(self.pixels.permute(0, 3, 1, 2), idx)
        return ImageBatch(images, self.target_tensor.index_select(0, idx), idx)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into spawned workers: send the path, never the pixels.
        state = self.__dict__.copy()
        state["_pixels"] = None
        state["_targets"] = None
        return state

    def __repr__(self) -> str:
        n, h, w, c = self.packed.shape
        return (f"{type(self).__name__}(N={n}, size={h}x{w}, mode={self.mode!r}, "
                f"classes={len(self.classes)}, skipped={len(self.skipped)}, "
                f"cache={str(self.packed.path)!r})")


class PackedImageFolder(PackedImageDataset):
    """A ``CLASS/image`` folder packed once into the fixed-size store, memory-mapped.

    Build it with ``ImageFolderDataset.pack(root, size=...)`` (which picks the store), this
    constructor, or :meth:`from_archive`. ``size=`` resizes every image by ``resize=``; without
    it every image must have one size (else use :class:`datasets.VariableImageFolder`).

    Attributes:
        root: the folder (or archive).
        samples: ``(path, label)`` per row, as torchvision's ``ImageFolder`` lists them.
        notes: ``(path, note)`` of images kept with a remark (an animated GIF's first frame).
    """

    root: Path

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        *,
        mode: str | None = None,
        size: int | tuple[int, int] | None = None,
        resize: str = "shorter-then-center-crop",
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
        allow_empty: bool = False,
        is_valid_file: Callable[[str], bool] | None = None,
    ) -> None:
        from datasets.packing import PackOptions, pack_folder  # packing imports this module

        options = PackOptions(mode=mode, size=_size(size), resize=resize)
        store = pack_folder(root, options, cache_dir=cache_dir, workers=workers,
                            allow_empty=allow_empty, is_valid_file=is_valid_file)
        super().__init__(_fixed(store, root), transform, target_transform)
        self.root = Path(root)

    @classmethod
    def from_store(cls, store: PackedImages, root: str | os.PathLike[str],
                   transform: Transform | None = None,
                   target_transform: Transform | None = None) -> PackedImageFolder:
        """Wrap an opened store (what ``ImageFolderDataset.pack`` does)."""
        dataset = cls.__new__(cls)
        PackedImageDataset.__init__(dataset, store, transform, target_transform)
        dataset.root = Path(root)
        return dataset

    @classmethod
    def from_archive(
        cls,
        path: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        *,
        mode: str | None = None,
        size: int | tuple[int, int] | None = None,
        resize: str = "shorter-then-center-crop",
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
    ) -> PackedImageFolder:
        """Pack the image members of a tar or zip archive without extracting it.

        Arguments as for the constructor; :attr:`samples` and :attr:`skipped` name members.
        """
        from datasets.packing import PackOptions, pack_archive

        options = PackOptions(mode=mode, size=_size(size), resize=resize)
        store = pack_archive(path, options, cache_dir=cache_dir, workers=workers)
        return cls.from_store(_fixed(store, path), path, transform, target_transform)

    @property
    def samples(self) -> list[tuple[str, int]]:
        return [(str(self.root / name), int(label))
                for name, label in zip(row_names(self.packed.path), self.target_tensor.tolist(),
                                       strict=True)]


def row_names(folder: Path) -> list[str]:
    """The relative path or member name of each row of a packed folder or archive."""
    from datasets.packing import NAMES_FILE

    path = folder / NAMES_FILE
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    return text.split("\0") if text else []


def _size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


def _fixed(store: Any, root: str | os.PathLike[str]) -> PackedImages:
    if not isinstance(store, PackedImages):
        raise DataFormatError(
            f"the images of {root} have different sizes, so they cannot share one fixed-size "
            "array; pass size=(H, W) to resize them, or use VariableImageFolder (or "
            "ImageFolderDataset.pack, which picks the store) to keep each image's size"
        )
    return store
