"""Datasets over the variable-size store: each image decoded when read, at full resolution.

``ds[i]`` decodes image ``i`` from the memory-mapped store (:mod:`datasets.imagestore`) into
``uint8`` ``[C, H, W]`` in the store's mode, then applies ``transform`` by the rule every image
dataset follows (see :mod:`datasets.packeddataset`): ``None`` gives ``ToFloat()`` (``float32``
in ``[-1, 1]``); a batch transform or a torchvision pipeline that compiles
(:mod:`datasets.pipeline`) is applied to this one image; any other callable gets it as a PIL
image, as from torchvision. A compiled pipeline that starts with ``RandomResizedCrop`` (and no
``decoder=``/``decode_size=`` given) decodes with :class:`datasets.DecodeRandomResizedCrop`
of the same size, scale and ratio at full resolution (``draft=False``: torchvision's pixels
for the same box), and runs the rest once per batch; derived again when ``ds.transform`` is
replaced. Images keep their own
sizes, so batching needs a transform that makes one size (``v2.RandomResizedCrop(128)``,
``v2.Resize`` with ``CenterCrop``…), or ``decoder=``
:class:`datasets.DecodeRandomResizedCrop` which decodes each image straight to a random crop
of one size (JPEGs at a reduced DCT scale when the box allows; see :mod:`datasets.cropdecode`).
With a decoder, a batch ``transform`` (``ToFloat``, ``Normalize``…) runs once per batch in
``__getitems__``. ``DataLoader`` workers scale the decoding (each maps the store itself).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.cropdecode import DecodeRandomResizedCrop
from datasets.errors import DataFormatError
from datasets.imagedecode import DecodeOptions, UnreadableImageError, decode_image
from datasets.imagestore import VariableImages
from datasets.packeddataset import ImageBatch, StoredImageInfo, row_names
from datasets.pipeline import crop_decoder
from datasets.transforms import BatchTransform, ToFloat, Transform, checked_rows, is_batch_transform

log = logging.getLogger(__name__)

Split = tuple[DecodeRandomResizedCrop, BatchTransform]


def check_decoding(decode_size: int | None, decoder: DecodeRandomResizedCrop | None) -> None:
    """Refuse a ``decode_size=`` that is not a positive int, or one together with ``decoder=``
    (both choose how JPEGs decode).

    Example:
        >>> check_decoding(0, None)
        Traceback (most recent call last):
        ValueError: decode_size should be a positive int or None, but got decode_size=0
    """
    from datasets.packoptions import positive_int

    if decode_size is not None:
        positive_int("decode_size", decode_size, or_none=True)
    if decoder is not None and decode_size is not None:
        raise ValueError("decode_size= and decoder= both choose how JPEGs are decoded: pass "
                         "one (decoder= already decodes at the smallest scale its box allows)")


class VariableImageDataset(StoredImageInfo, Dataset[tuple[Any, Any]]):
    """A map-style dataset over an opened variable-size store.

    Args:
        store: the store (see :mod:`datasets.imagestore`).
        transform: ``None`` for ``ToFloat()``; else applied to each decoded image.
        target_transform: applied to the ``int`` label.
        decode_size: decode JPEGs at a reduced scale (1/2, 1/4, 1/8, Pillow's ``draft``)
            while both sides stay at least this long; ``None`` decodes full resolution.
        decoder: decode each image to a random-resized crop instead (not together with
            ``decode_size``: a ``ValueError``); ``transform`` gets that crop.

    Attributes:
        classes, class_to_idx, targets, mean, std, skipped, notes, manifest, sizes.
    """

    def __init__(
        self,
        store: VariableImages,
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        *,
        decode_size: int | None = None,
        decoder: DecodeRandomResizedCrop | None = None,
    ) -> None:
        check_decoding(decode_size, decoder)
        self.store = store
        self.transform: Transform = ToFloat() if transform is None else transform
        self.target_transform = target_transform
        self.decode = DecodeOptions(mode=store.mode, min_side=decode_size)
        self._targets: torch.Tensor | None = None
        self._decoder = decoder  # the user's; one derived from transform is kept apart
        # (the compiled pipeline it was derived from, (its decoder, the rest) or None)
        self._derived: tuple[BatchTransform | None, Split | None] | None = None

    @property
    def decoder(self) -> DecodeRandomResizedCrop | None:
        """``decoder=`` as given, else the one a leading ``RandomResizedCrop`` of
        ``transform`` becomes (derived again when ``transform`` is replaced), else ``None``."""
        if self._decoder is not None:
            return self._decoder
        split = self._split()
        return split[0] if split is not None else None

    @decoder.setter
    def decoder(self, decoder: DecodeRandomResizedCrop | None) -> None:
        check_decoding(self.decode.min_side, decoder)
        self._decoder = decoder

    def _split(self) -> Split | None:
        """The decoder derived from ``transform`` and the batch transform after it, or ``None``."""
        if self._decoder is not None or self.decode.min_side is not None or \
                is_batch_transform(self.transform):
            return None
        compiled = self.batch_transform  # compiled again when transform is another object
        if self._derived is None or self._derived[0] is not compiled:
            split = crop_decoder(compiled)
            if split is not None:
                log.debug("%r decodes straight to its RandomResizedCrop: %r", self.transform,
                          split[0])
            self._derived = (compiled, split)
        return self._derived[1]

    def _stored(self) -> VariableImages:
        return self.store

    @property
    def sizes(self) -> np.ndarray:
        """Each image's ``(H, W)``: ``int32`` ``[N, 2]``."""
        return self.store.sizes()

    def __len__(self) -> int:
        return len(self.store)

    def image(self, index: int) -> torch.Tensor:
        """Decode image ``index``: ``uint8`` ``[C, H, W]``."""
        if index < 0:
            index += len(self)
        try:
            if self.decoder is not None:
                return self.decoder(self.store.blob(index), self.mode)
            array, _ = decode_image(self.store.blob(index), self.decode)
        except UnreadableImageError as err:  # checked while packing: the store was altered
            raise DataFormatError(f"cannot decode image {index} of {self.store.path}: "
                                  f"{err.reason}; delete that folder to rebuild it") from err
        return torch.from_numpy(array).permute(2, 0, 1)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image = self.image(int(index))
        split = self._split()
        x = split[1](image) if split is not None else self.apply_transform(image)
        target: Any = int(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return x, target

    def __getitems__(self, indices: Sequence[int]) -> Sequence[tuple[Any, Any]]:
        """Fetch a batch; with a ``decoder`` and a batch transform, transform it at once."""
        split = self._split()
        batch = split[1] if split is not None else self.batch_transform
        if self.decoder is None or batch is None:
            return [self[int(i)] for i in indices]
        rows = checked_rows(indices, len(self)).tolist()
        images = batch(torch.stack([self.image(i) for i in rows]))
        targets = self.targets[rows]
        if self.target_transform is not None:
            return [(x, self.target_transform(int(t))) for x, t in zip(images, targets,
                                                                       strict=True)]
        return ImageBatch(images, targets, torch.tensor(rows))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_targets"] = None
        return state

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(N={len(self)}, mode={self.mode!r}, "
                f"classes={len(self.classes)}, skipped={len(self.skipped)}, "
                f"cache={str(self.store.path)!r})")


class VariableImageFolder(VariableImageDataset):
    """A ``CLASS/image`` folder packed once as encoded files (each image keeps its size).

    ``max_side=`` re-encodes, once, images whose longer side is above it (JPEG stays JPEG at
    quality 95, others become PNG). See :class:`VariableImageDataset` for reads.

    Example:
        >>> ds = VariableImageFolder("hymenoptera_data/train")  # doctest: +SKIP
        >>> ds[0][0].shape, ds.classes  # doctest: +SKIP
        (torch.Size([3, 375, 500]), ['ants', 'bees'])
    """

    root: Path

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        *,
        mode: str | None = None,
        max_side: int | None = None,
        decode_size: int | None = None,
        decoder: DecodeRandomResizedCrop | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
        allow_empty: bool = False,
        is_valid_file: Callable[[str], bool] | None = None,
    ) -> None:
        from datasets.packing import PackOptions, pack_folder

        check_decoding(decode_size, decoder)  # before packing, not after
        options = PackOptions(mode=mode, max_side=max_side, store="variable")
        store = pack_folder(root, options, cache_dir=cache_dir, workers=workers,
                            allow_empty=allow_empty, is_valid_file=is_valid_file)
        assert isinstance(store, VariableImages)  # store="variable" builds only that
        super().__init__(store, transform, target_transform, decode_size=decode_size,
                         decoder=decoder)
        self.root = Path(root)

    @classmethod
    def from_store(cls, store: VariableImages, root: str | os.PathLike[str],
                   transform: Transform | None = None,
                   target_transform: Transform | None = None, *,
                   decode_size: int | None = None,
                   decoder: DecodeRandomResizedCrop | None = None) -> VariableImageFolder:
        """Wrap an opened store (what ``ImageFolderDataset.pack`` does)."""
        dataset = cls.__new__(cls)
        VariableImageDataset.__init__(dataset, store, transform, target_transform,
                                      decode_size=decode_size, decoder=decoder)
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
        max_side: int | None = None,
        decode_size: int | None = None,
        decoder: DecodeRandomResizedCrop | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
    ) -> VariableImageFolder:
        """Pack the image members of a tar or zip archive without extracting it."""
        from datasets.packing import PackOptions, pack_archive

        options = PackOptions(mode=mode, max_side=max_side, store="variable")
        store = pack_archive(path, options, cache_dir=cache_dir, workers=workers)
        assert isinstance(store, VariableImages)
        return cls.from_store(store, path, transform, target_transform, decode_size=decode_size,
                              decoder=decoder)

    @property
    def samples(self) -> list[tuple[str, int]]:
        return [(str(self.root / name), int(label))
                for name, label in zip(row_names(self.store.path), self.targets.tolist(),
                                       strict=True)]
