"""``ImageFolder``: ``torchvision.datasets.ImageFolder``'s drop-in (see :mod:`datasets.mirror`).

Kept apart from :mod:`datasets.images` because it subclasses torchvision's ``VisionDataset``:
``import datasets`` does not import torchvision; ``datasets.ImageFolder`` imports this module
(and torchvision) when it is first used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from torchvision.datasets import DatasetFolder, VisionDataset

from datasets.images import ImageFolderDataset, decode_file
from datasets.transforms import Transform

log = logging.getLogger(__name__)

__all__ = ["TORCHVISION_EXTENSIONS", "ImageFolder", "pil_loader"]


# torchvision's IMG_EXTENSIONS: what its ImageFolder lists (ImageFolderDataset lists more)
TORCHVISION_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def pil_loader(path: str) -> Any:
    """Decode ``path`` by content into an RGB PIL image (``ImageFolder``'s default ``loader``).

    The pixels are torchvision's for 8-bit images; where torchvision's ``pil_loader`` loses
    data (16-bit clipped, CMYK, EXIF orientation ignored) they follow
    :mod:`datasets.imagedecode`'s rules instead (see the README).
    """
    from PIL import Image

    return Image.fromarray(decode_file(path, "RGB").permute(1, 2, 0).numpy())


class ImageFolder(ImageFolderDataset, DatasetFolder):
    """``torchvision.datasets.ImageFolder``'s drop-in: the same calls, attributes and samples.

    ``ds[i]`` is ``(loader(path), class index)`` through ``transform``: with the default
    ``loader``, an RGB PIL image, so a torchvision pipeline runs on it as there, per sample.
    Files are listed as torchvision lists them (its extensions, ``os.walk`` order), except that
    hidden files and folders (``.x``) are not read (listed in :attr:`skipped`). A subclass that
    overrides torchvision's hooks ``find_classes``/``make_dataset`` (a ``DatasetFolder``) is
    listed by them, exactly as torchvision lists it.

    Args:
        root: the folder holding one sub-folder per class (``~`` expanded).
        transform: applied to the loaded image.
        target_transform: applied to the ``int`` label.
        loader: ``path -> image`` (default :func:`pil_loader`).
        is_valid_file: ``path -> bool`` choosing the files (default: torchvision's extensions).
        allow_empty: keep class folders without a file.

    Raises:
        DatasetNotFoundError: ``root`` is missing, has no class folder or no image.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        loader: Callable[[str], Any] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        self.extensions = TORCHVISION_EXTENSIONS if is_valid_file is None else None  # type: ignore[assignment]
        ImageFolderDataset.__init__(self, root, None, None, loader or pil_loader, is_valid_file,
                                    allow_empty)
        VisionDataset.__init__(self, root, None, transform, target_transform)

    def _index(self, allow_empty: bool, is_valid_file: Callable[[str], bool] | None
               ) -> tuple[list[str], list[tuple[str, int]], list[tuple[str, str]]]:
        """torchvision's listing: its hooks when a subclass overrides them, else our scan."""
        kind = type(self)
        if (kind.find_classes is DatasetFolder.find_classes
                and kind.make_dataset is DatasetFolder.make_dataset):
            classes, samples, skipped = ImageFolderDataset._index(
                self, allow_empty, is_valid_file or _torchvision_extension)
            return classes, sorted(samples, key=_walk_order), skipped  # os.walk's order
        directory = str(self.root)
        classes, class_to_idx = self.find_classes(directory)
        extensions = self.extensions if is_valid_file is None else None
        samples = self.make_dataset(directory, class_to_idx, extensions, is_valid_file,
                                    allow_empty=allow_empty)
        return classes, samples, []

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        sample = self.loader(path)  # type: ignore[misc]
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __repr__(self) -> str:
        return VisionDataset.__repr__(self)


def _torchvision_extension(path: str) -> bool:
    return path.lower().endswith(TORCHVISION_EXTENSIONS)


def _walk_order(sample: tuple[str, int]) -> tuple[int, str, str]:
    """torchvision's order: by class, then folder path, then file name (``sorted(os.walk)``)."""
    folder, name = os.path.split(sample[0])
    return sample[1], folder, name
