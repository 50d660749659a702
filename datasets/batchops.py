"""More batch transforms: the torchvision ops a user's pipeline compiles to (:mod:`datasets.pipeline`).

Each works on ``uint8`` ``[C, H, W]`` or ``[B, C, H, W]`` (``ConvertFloat`` then makes floats)
and gives, per sample, what torchvision gives for the same image:

- :class:`Resize`, :class:`CenterCrop`, :class:`Pad`: torchvision's output sizes, offsets and
  zero fill; ``Resize`` is bilinear and antialiased with torch's ``uint8`` kernel (the one
  torchvision uses on tensors), or with ``pillow=True`` Pillow's, per image (what it does to a
  PIL image): bit-identical to torchvision either way.
- :class:`Grayscale`: Pillow's ``convert("L")`` in its own integer arithmetic (what
  torchvision's ``Grayscale`` does to a PIL image), not the tensor kernel's float weights.
- :class:`Copy`: a new tensor, so a pipeline that only converts to a tensor (``PILToTensor``)
  never hands out a view of a store's pixels (torchvision's tensor is the sample's own).
- :class:`AsImage`: one sample as torchvision's ``tv_tensors.Image`` (what a v2 pipeline that
  converts with ``v2.ToImage`` returns); batches stay plain tensors, as torch's collate makes them.
- :class:`ConvertFloat`: ``ToTensor``/``ToDtype(scale=True)`` followed by ``Normalize``, with
  torchvision's operations in its order, so the floats are bit-identical.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from PIL import Image

from datasets.transforms import (
    BatchTransform,
    _batched,
    _empty_batch,
    _is_channels_last,
    _pair,
    gather,
)

log = logging.getLogger(__name__)

__all__ = ["AsImage", "CenterCrop", "ConvertFloat", "Copy", "Grayscale", "Pad", "Resize", "ltrb",
           "pillow_resize"]


def ltrb(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """torchvision's padding forms as ``(left, top, right, bottom)``.

    Example:
        >>> ltrb(4), ltrb((1, 2)), ltrb([1, 2, 3, 4])
        ((4, 4, 4, 4), (1, 2, 1, 2), (1, 2, 3, 4))
    """
    values = [padding] if isinstance(padding, int) else [int(p) for p in padding]
    if len(values) not in (1, 2, 4) or min(values) < 0:
        raise ValueError(f"padding should be a non-negative int or a sequence of 1, 2 or 4 of "
                         f"them, but got padding={padding!r}")
    if len(values) == 1:
        return values[0], values[0], values[0], values[0]
    if len(values) == 2:
        return values[0], values[1], values[0], values[1]
    return values[0], values[1], values[2], values[3]


def pillow_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``uint8`` ``[C, H, W]`` (1 or 3 channels) resized by Pillow's bilinear filter, as
    torchvision resizes a PIL image: bit-identical to it. ``[C, *size]``, channels last.

    (torch's ``uint8`` antialiased kernel, 3x faster, rounds its weights coarser: up to 2
    levels from Pillow on smooth photos, beyond the 1/255 promised.)

    Example:
        >>> pillow_resize(torch.zeros(3, 8, 6, dtype=torch.uint8), (4, 3)).shape
        torch.Size([3, 4, 3])
    """
    array = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    out = np.array(pil.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return torch.from_numpy(out.reshape(size[0], size[1], -1)).permute(2, 0, 1)


class Resize(BatchTransform):
    """torchvision's ``Resize(size, max_size=...)``, bilinear and antialiased.

    Args:
        size: an int (or ``[int]``) for the shorter side, the longer one scaled (truncated) as
            torchvision does; or ``(H, W)``.
        max_size: the longer side's cap when ``size`` is the shorter side's length.
        pillow: resize each image with Pillow (:func:`pillow_resize`, what torchvision does to
            a PIL image) instead of torch's ``uint8`` kernel (what it does to a tensor).

    Example:
        >>> Resize(4)(torch.zeros(2, 3, 8, 12, dtype=torch.uint8)).shape
        torch.Size([2, 3, 4, 6])
    """

    def __init__(self, size: int | Sequence[int], *, max_size: int | None = None,
                 pillow: bool = False) -> None:
        sizes = [size] if isinstance(size, int) else [int(s) for s in size]
        if len(sizes) not in (1, 2) or min(sizes) < 1:
            raise ValueError(f"size should be a positive int or (H, W), but got size={size!r}")
        self.size = sizes
        self.max_size = max_size
        self.pillow = pillow

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """The ``(H, W)`` torchvision resizes an ``h`` × ``w`` image to."""
        if len(self.size) == 2:
            return self.size[0], self.size[1]
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.size[0], int(self.size[0] * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_long, new_short) if w <= h else (new_short, new_long)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(x)
        size = self.output_size(*batch.shape[-2:])
        if size == tuple(batch.shape[-2:]):
            return x.clone()  # torchvision: the image unchanged (Pillow: a copy of it)
        if self.pillow:
            out = _empty_batch(batch, size, len(batch))
            for i, image in enumerate(batch):
                out[i] = pillow_resize(image, size)
            return out[0] if single else out
        if not _is_channels_last(batch):  # torch's uint8 antialiased kernel works channels last
            batch = batch.contiguous(memory_format=torch.channels_last)
        out = torch.nn.functional.interpolate(batch, size=size, mode="bilinear", antialias=True,
                                              align_corners=False)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, max_size={self.max_size}, pillow={self.pillow})"


class Pad(BatchTransform):
    """Pad with zeros: torchvision's ``Pad(padding)`` with ``fill=0, padding_mode="constant"``.

    Example:
        >>> Pad((1, 0))(torch.ones(1, 1, 2, dtype=torch.uint8)).tolist()
        [[[0, 1, 1, 0]]]
    """

    def __init__(self, padding: int | Sequence[int]) -> None:
        self.padding = ltrb(padding)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(x)
        left, top, right, bottom = self.padding
        h, w = batch.shape[-2:]
        out = _empty_batch(batch, (h + top + bottom, w + left + right), len(batch)).zero_()
        out[:, :, top : top + h, left : left + w] = batch
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"Pad(padding={self.padding})"


class CenterCrop(BatchTransform):
    """torchvision's ``CenterCrop(size)``: zero-padded first where the crop is larger.

    Example:
        >>> CenterCrop(2)(torch.arange(9, dtype=torch.uint8).view(1, 3, 3)).tolist()
        [[[0, 1], [3, 4]]]
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size if isinstance(size, int) or len(size) != 1 else size[0], "size")

    def _box(self, h: int, w: int) -> tuple[tuple[int, int, int, int], int, int]:
        """The zero padding ``(l, t, r, b)`` torchvision adds, and the crop's top and left."""
        th, tw = self.size
        pad = ((tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
               (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0)
        ph, pw = h + pad[1] + pad[3], w + pad[0] + pad[2]
        return pad, int(round((ph - th) / 2.0)), int(round((pw - tw) / 2.0))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(x)
        pad, top, left = self._box(*batch.shape[-2:])
        if any(pad):
            batch = Pad(pad)(batch)
        window = batch[:, :, top : top + self.size[0], left : left + self.size[1]]
        out = _empty_batch(batch, self.size, len(batch)).copy_(window)  # never a view of x
        return out[0] if single else out

    def take(self, source: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        pad, top, left = self._box(*source.shape[-2:])
        if any(pad):
            return super().take(source, indices)
        # gather only the window's pixels out of the store
        return gather(source[:, :, top : top + self.size[0], left : left + self.size[1]], indices)

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


class Grayscale(BatchTransform):
    """Pillow's ``convert("L")`` (torchvision's ``Grayscale`` of a PIL image) on a batch.

    ``L = (19595 R + 38470 G + 7471 B + 2**15) >> 16``, Pillow's integer ITU-R 601-2 luma;
    one-channel input stays as it is. ``num_output_channels=3`` repeats ``L`` three times.

    Example:
        >>> Grayscale()(torch.tensor([[[255]], [[0]], [[0]]], dtype=torch.uint8)).tolist()
        [[[76]]]
    """

    def __init__(self, num_output_channels: int = 1) -> None:
        if num_output_channels not in (1, 3):
            raise ValueError(f"num_output_channels should be 1 or 3, but got "
                             f"num_output_channels={num_output_channels!r}")
        self.num_output_channels = num_output_channels

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(x)
        if batch.dtype != torch.uint8 or batch.shape[1] not in (1, 3):
            raise TypeError(f"Grayscale expects uint8 images of 1 or 3 channels, but got "
                            f"dtype={batch.dtype}, shape {list(x.shape)}")
        if batch.shape[1] == 3:
            rgb = batch.to(torch.int32)
            luma = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16
            grey = luma.to(torch.uint8).unsqueeze(1)
        else:
            grey = batch
        # a new tensor even for one channel in and out (never a view of x)
        out = grey.expand(-1, self.num_output_channels, -1, -1).clone(
            memory_format=torch.contiguous_format)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"Grayscale(num_output_channels={self.num_output_channels})"


class Copy(BatchTransform):
    """A new tensor of ``x``'s values, in its memory layout (never ``x`` or a view of it).

    Example:
        >>> x = torch.zeros(1, 2, 2, dtype=torch.uint8)
        >>> y = Copy()(x); _ = y.fill_(1); int(x.sum())
        0
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    def take(self, source: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return gather(source, indices)  # a new batch already: no second copy

    def __repr__(self) -> str:
        return "Copy()"


class AsImage(BatchTransform):
    """One image ``[C, H, W]`` as a ``torchvision.tv_tensors.Image`` (no copy); a batch as it is.

    Example:
        >>> type(AsImage()(torch.zeros(1, 2, 2))).__name__, type(AsImage()(torch.zeros(1, 1, 2, 2))).__name__
        ('Image', 'Tensor')
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:  # torch's collate of tv_tensors.Image samples is a plain tensor too
            return x
        from torchvision import tv_tensors  # imported when a v2 pipeline runs, not before

        return tv_tensors.Image(x)

    def __repr__(self) -> str:
        return "AsImage()"


Scaling = Literal["div", "mul", "none"]


class ConvertFloat(BatchTransform):
    """``uint8`` to ``float32`` in torchvision's arithmetic, then its ``Normalize`` steps.

    Args:
        scaling: ``"div"`` divides by 255 (v1 ``ToTensor``, ``ConvertImageDtype``), ``"mul"``
            multiplies by ``1 / 255`` (v2 ``ToDtype(scale=True)``), ``"none"`` keeps 0..255.
        normalize: ``(mean, std)`` pairs applied in order as ``x.sub_(mean).div_(std)``.

    Example:
        >>> ConvertFloat("div", [((0.5,), (0.5,))])(torch.tensor([[[0, 255]]], dtype=torch.uint8))
        tensor([[[-1.,  1.]]])
    """

    def __init__(self, scaling: Scaling,
                 normalize: Sequence[tuple[Sequence[float] | float, Sequence[float] | float]] = (),
                 ) -> None:
        if scaling not in ("div", "mul", "none"):
            raise ValueError(f"scaling should be one of ['div', 'mul', 'none'], but got "
                             f"scaling={scaling!r}")
        self.scaling = scaling
        self.normalize = [(_channel_view(m), _channel_view(s)) for m, s in normalize]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"ConvertFloat expects a uint8 tensor, but got dtype={x.dtype}")
        out = x.to(torch.float32, memory_format=torch.contiguous_format)
        if self.scaling == "div":
            out.div_(255)
        elif self.scaling == "mul":
            out.mul_(1.0 / 255)
        for mean, std in self.normalize:
            out.sub_(mean).div_(std)
        return out

    def __repr__(self) -> str:
        steps = [(m.flatten().tolist(), s.flatten().tolist()) for m, s in self.normalize]
        return f"ConvertFloat(scaling={self.scaling!r}, normalize={steps})"


def _channel_view(value: Sequence[float] | float) -> torch.Tensor:
    """``torch.as_tensor(value)`` viewed ``[C, 1, 1]``, as torchvision's ``normalize`` does."""
    tensor = torch.as_tensor(value, dtype=torch.float32)
    return tensor.view(-1, 1, 1) if tensor.ndim == 1 else tensor
