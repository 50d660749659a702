"""``ImageFolderDataset``: torchvision's ``ImageFolder``, decoding any image by content.

Two forms, two small classes each:

- :class:`ImageFolderDataset` (this module) reads and decodes each file when it is indexed,
  exactly like ``torchvision.datasets.ImageFolder`` (same arguments and attributes), with the
  decoding rules of :mod:`datasets.imagedecode` (any format, 16-bit scaled, EXIF orientation,
  transparency on white, decompression bombs refused).
- :meth:`ImageFolderDataset.pack` builds a memory-mapped cache once and returns a
  :class:`datasets.PackedImageFolder` (fixed size: every image the same size, or resized to
  ``size=``; zero decoding per read) or a :class:`datasets.VariableImageFolder` (each image
  kept at its own size as encoded bytes, decoded per read), and :meth:`from_archive` does the
  same straight from a tar or zip archive.

``transform=None`` gives every image dataset here the same output, ``ToFloat()``:
``float32`` ``[C, H, W]`` in ``[-1, 1]`` (see :mod:`datasets.packeddataset`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from datasets.cropdecode import DecodeRandomResizedCrop
from datasets.errors import DataFormatError
from datasets.folders import IMAGE_EXTENSIONS, gc_paused, scan_folder
from datasets.imagedecode import (
    MAX_IMAGE_BYTES,
    MODES,
    DecodeOptions,
    UnreadableImageError,
    decode_image,
)
from datasets.packeddataset import ImageBatch, PackedImageDataset, PackedImageFolder
from datasets.pipeline import pil_image
from datasets.transforms import ToFloat, Transform, is_batch_transform
from datasets.variable import VariableImageFolder, check_decoding

log = logging.getLogger(__name__)

__all__ = ["ImageBatch", "ImageFolderDataset", "PackedImageDataset", "PackedImageFolder", "Transform",
           "VariableImageFolder", "check_choice", "decode_file"]


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


def decode_file(path: str | os.PathLike[str], mode: str | None = "RGB") -> torch.Tensor:
    """Read and decode one image file into ``uint8`` ``[C, H, W]`` (the default ``loader``).

    Raises:
        DataFormatError: the file cannot be read or decoded (the message says why).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise UnreadableImageError(f"file of {size:,} bytes exceeds the per-image limit of "
                                       f"{MAX_IMAGE_BYTES:,} bytes")
        array, _ = decode_image(path.read_bytes(), DecodeOptions(mode=mode))
    except UnreadableImageError as err:
        raise DataFormatError(f"cannot read image {path}: {err.reason}") from err
    except OSError as err:
        raise DataFormatError(f"cannot read image {path}: {err}") from err
    return torch.from_numpy(array).permute(2, 0, 1)


class ImageFolderDataset(Dataset[tuple[Any, Any]]):
    """A ``CLASS/image`` folder read like ``torchvision.datasets.ImageFolder``, uncached.

    Classes are the sorted sub-folder names of ``root``; each class's files are found
    recursively, sorted by relative path. Without ``is_valid_file``, files with an image
    extension (:data:`datasets.folders.IMAGE_EXTENSIONS`, any case) are used and decoded by
    content; hidden files are not read and are listed in :attr:`skipped`.

    Args:
        root: the folder holding one sub-folder per class.
        transform: ``None`` for ``ToFloat()`` (``float32`` ``[C, H, W]`` in ``[-1, 1]``); a
            batch transform gets the ``uint8`` ``[C, H, W]`` tensor, any other callable the
            PIL image (mode ``"L"``/``"RGB"``), as torchvision's pipelines expect; per sample,
            never batched. With a custom ``loader``, ``None`` returns what it returns.
        target_transform: applied to the ``int`` label.
        loader: ``path -> image``; default :func:`decode_file` in ``mode``.
        is_valid_file: ``path -> bool`` choosing the files (as torchvision).
        allow_empty: keep class folders without a file (else an error, as torchvision).
        mode: ``"RGB"`` (default, as torchvision's loader), ``"L"``, or ``None`` (each image's
            own: grey images give ``[1, H, W]``).

    Raises:
        DatasetNotFoundError: ``root`` is missing, has no class folder or no image.

    Example:
        >>> ds = ImageFolderDataset("hymenoptera_data/train")  # doctest: +SKIP
        >>> ds.classes, ds[0][0].shape  # doctest: +SKIP
        (['ants', 'bees'], torch.Size([3, 512, 768]))
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        loader: Callable[[str], Any] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
        *,
        mode: str | None = "RGB",
    ) -> None:
        if mode is not None:
            check_choice("mode", mode, MODES)
        self.root = Path(root).expanduser()  # "~/photos", as torchvision's VisionDataset
        self.classes, self.samples, self.skipped = self._index(allow_empty, is_valid_file)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.imgs = self.samples
        self.targets = [label for _, label in self.samples]
        self.mode = mode
        self.loader = loader
        self.transform: Transform | None = (
            ToFloat() if transform is None and loader is None else transform)
        self.target_transform = target_transform

    extensions = IMAGE_EXTENSIONS

    def _index(self, allow_empty: bool, is_valid_file: Callable[[str], bool] | None
               ) -> tuple[list[str], list[tuple[str, int]], list[tuple[str, str]]]:
        """``(classes, samples, skipped)`` of :attr:`root`, by one scan of the folder."""
        scan = scan_folder(self.root, allow_empty=allow_empty, is_valid_file=is_valid_file)
        with gc_paused():  # 200,000 new tuples hold no cycles
            samples = list(zip(scan.paths, scan.labels, strict=True))
        return scan.classes, samples, [(path, reason) for path, reason in scan.skipped]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        if self.loader is not None:
            sample = self.loader(path)
        else:
            sample = decode_file(path, self.mode)
            if self.transform is not None and not is_batch_transform(self.transform):
                sample = pil_image(sample)  # what torchvision hands a pipeline, run as there
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __repr__(self) -> str:
        return (f"ImageFolderDataset(root={str(self.root)!r}, N={len(self)}, "
                f"classes={len(self.classes)}, mode={self.mode!r})")

    @staticmethod
    def pack(
        root: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        *,
        mode: str | None = None,
        size: int | tuple[int, int] | None = None,
        resize: str = "shorter-then-center-crop",
        max_side: int | None = None,
        decode_size: int | None = None,
        decoder: DecodeRandomResizedCrop | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
        allow_empty: bool = False,
        is_valid_file: Callable[[str], bool] | None = None,
    ) -> PackedImageFolder | VariableImageFolder:
        """Pack ``root`` once (memory-mapped; reopened in milliseconds) and return it.

        The store: ``size=`` → fixed size (``PackedImageFolder``, each image resized by
        ``resize=``: ``"shorter-then-center-crop"``, ``"pad"`` or ``"stretch"``);
        ``max_side=`` → variable size (``VariableImageFolder``); neither → fixed if every
        image has the same size, else variable. ``mode=None`` is ``"L"`` when every image is
        grey, else ``"RGB"`` (recorded in the manifest). ``decoder=``
        :class:`datasets.DecodeRandomResizedCrop` packs the variable store (whatever the sizes)
        and decodes each image straight to a random-resized crop (JPEGs at a reduced scale when the box allows). Unreadable files (every non-hidden
        file is tried, by content) are listed in ``skipped`` with a reason. The cache key
        covers the resolved root, the class list, the files' paths, sizes, mtimes, ctimes
        and inodes, the names skipped, and these options
        (:func:`datasets.packing.folder_fingerprint`).

        Raises:
            DatasetNotFoundError: ``root`` is missing, has no class folder or no file.
        """
        from datasets.packing import pack_folder

        options = _options(mode, size, resize, max_side, decoder, decode_size)
        root = Path(root).expanduser()
        store = pack_folder(root, options, cache_dir=cache_dir, workers=workers,
                            allow_empty=allow_empty, is_valid_file=is_valid_file)
        return _wrap(store, root, transform, target_transform, decode_size, decoder)

    @staticmethod
    def from_archive(
        path: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        *,
        mode: str | None = None,
        size: int | tuple[int, int] | None = None,
        resize: str = "shorter-then-center-crop",
        max_side: int | None = None,
        decode_size: int | None = None,
        decoder: DecodeRandomResizedCrop | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
    ) -> PackedImageFolder | VariableImageFolder:
        """Pack the ``[top/]CLASS/image`` members of a tar or zip archive, as :meth:`pack`.

        Members are streamed (never extracted, never read whole before the per-image cap
        ``datasets.imagedecode.MAX_IMAGE_BYTES`` is checked); the cache key is the archive's
        resolved path, size, mtime, ctime and inode (:func:`datasets.packing.file_fingerprint`)
        and the options.

        Raises:
            DataFormatError: the archive is corrupt or holds no image in a class folder.
        """
        from datasets.packing import pack_archive

        options = _options(mode, size, resize, max_side, decoder, decode_size)
        path = Path(path).expanduser()
        store = pack_archive(path, options, cache_dir=cache_dir, workers=workers)
        return _wrap(store, path, transform, target_transform, decode_size, decoder)


def _options(mode: str | None, size: int | tuple[int, int] | None, resize: str,
             max_side: int | None, decoder: DecodeRandomResizedCrop | None,
             decode_size: int | None) -> Any:
    """The pack options; ``decoder=`` needs the encoded images, so it asks for the variable
    store (a folder of one image size would otherwise pack as fixed and drop the decoder)."""
    from datasets.packing import PackOptions

    check_decoding(decode_size, decoder)  # before packing, not after
    if decoder is not None and size is not None:
        raise ValueError("decoder= crops while decoding the variable store; size= packs decoded "
                         "pixels: pass one (for a fixed store crop with datasets.RandomResizedCrop)")
    return PackOptions(mode=mode, size=_size(size), resize=resize, max_side=max_side,
                       store="variable" if decoder is not None else "auto")


def _size(size: int | tuple[int, int] | None) -> Any:
    """An int is a square; anything else goes to :class:`PackOptions` as given (it checks it)."""
    if isinstance(size, int) and not isinstance(size, bool):
        return (size, size)
    return size


def _wrap(store: Any, root: str | os.PathLike[str], transform: Transform | None,
          target_transform: Transform | None, decode_size: int | None,
          decoder: DecodeRandomResizedCrop | None = None
          ) -> PackedImageFolder | VariableImageFolder:
    from datasets.imagestore import VariableImages

    if isinstance(store, VariableImages):
        return VariableImageFolder.from_store(store, root, transform, target_transform,
                                              decode_size=decode_size, decoder=decoder)
    if decode_size is not None:
        log.debug("decode_size=%s ignored: %s was packed at one size", decode_size, root)
    return PackedImageFolder.from_store(store, root, transform, target_transform)
