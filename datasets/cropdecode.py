"""Decode an image straight to a random-resized crop: draw the box first, decode only as much.

torchvision's ``RandomResizedCrop(size)`` decodes the whole image at full resolution, then
keeps a box and shrinks it to ``size``. :class:`DecodeRandomResizedCrop` (the idea of FFCV's
``RandomResizedCropRGBImageDecoder``) draws the same box first, from the image's header size
once its EXIF orientation is applied, then lets libjpeg decode at the smallest DCT scale (1/2,
1/4, Pillow's ``draft``) at which the box still has at least ``size`` pixels on both sides,
cuts the scaled box (its edges rounded to the reduced pixels) and resizes it to ``size`` (bilinear, antialiased: the kernel
torchvision's ``resized_crop`` uses). The output has the detail a full decode would give (the
box is never enlarged from a coarser decode than full resolution would need) for less work.

- Boxes follow torchvision's distribution (``scale``, ``ratio``, ten tries then the centre
  crop; :meth:`datasets.transforms.RandomResizedCrop.boxes`), from ``generator`` when given.
- Other formats (PNG, GIF, WebP…) are decoded whole and the same box cut: the same output.
- Every rule of :mod:`datasets.imagedecode` holds: formats by content, modes, 16-bit scaling,
  transparency, orientation, and the decompression-bomb limit (checked on the header).
- ``flip`` mirrors left-right with that probability (``RandomHorizontalFlip(p=flip)``).
- The reduced decode is not torchvision's pixels: a coarser DCT scale and box edges rounded to
  it put a sample 2-3 levels (of 255) from ``RandomResizedCrop`` of the full decode.
  ``draft=False`` decodes at full resolution: the same box, resized by the kernel of
  :class:`datasets.transforms.RandomResizedCrop` (``pillow=True``: Pillow's, so the crop equals
  torchvision's of the same box bit for bit; what :func:`datasets.pipeline.crop_decoder`
  builds from a user's pipeline).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from PIL import Image

from datasets.batchops import pillow_resize
from datasets.imagedecode import (
    JPEG_FORMATS,
    DecodeOptions,
    decode_opened,
    open_image,
    oriented_size,
)
from datasets.transforms import RandomResizedCrop, worker_generator

log = logging.getLogger(__name__)

# The reductions of libjpeg (through Pillow's draft) used here. 1/8 is left out: a box's edges
# would round to 8 full-resolution pixels (a visible shift), and it decodes barely faster than
# 1/4, since Huffman decoding, the same work at every scale, dominates.
SCALES = (4, 2, 1)

Box = tuple[int, int, int, int]


class DecodeRandomResizedCrop:
    """Decode encoded image bytes to a random-resized crop, ``uint8`` ``[C, H, W]``.

    Args:
        size: output ``(H, W)``, or an int for a square.
        scale: range of the box's area as a fraction of the image's (torchvision's).
        ratio: range of the box's aspect ratio, width / height (drawn log-uniform).
        flip: probability of a left-right mirror of the output (0 for none).
        draft: decode JPEGs at a reduced DCT scale where the box allows (faster, not within
            1/255 of torchvision's full decode); ``False`` always decodes at full resolution.
        pillow: resize with Pillow (as torchvision does a PIL image; with ``draft=False``
            bit-identical to torchvision's crop of the same box) instead of torch's kernel.
        generator: draws boxes and flips; ``None`` uses torch's global RNG. In a
            ``DataLoader`` worker the draws come from
            :func:`datasets.transforms.worker_generator` (its own per worker and epoch).

    Example:
        >>> import io; from PIL import Image
        >>> buffer = io.BytesIO(); Image.new("RGB", (400, 300), "red").save(buffer, "JPEG")
        >>> crop = DecodeRandomResizedCrop(64, generator=torch.Generator().manual_seed(0))
        >>> image = crop(buffer.getvalue(), "RGB")
        >>> image.shape, image.dtype, int(image[0, 32, 32]) > 250
        (torch.Size([3, 64, 64]), torch.uint8, True)
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), *, flip: float = 0.0,
                 draft: bool = True, pillow: bool = False,
                 generator: torch.Generator | None = None) -> None:
        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"flip should be a probability in [0, 1], but got flip={flip!r}")
        # the batch transform whose boxes these are (same draws, same distribution)
        self.batch_equivalent = RandomResizedCrop(size, scale, ratio, pillow=pillow,
                                                  generator=generator)
        self.size = self.batch_equivalent.size
        self.flip = flip
        self.draft = draft

    @property
    def generator(self) -> torch.Generator | None:
        """The source of the boxes and flips (one generator, shared with ``batch_equivalent``)."""
        return self.batch_equivalent.generator

    @generator.setter
    def generator(self, generator: torch.Generator | None) -> None:
        self.batch_equivalent.generator = generator

    def __call__(self, data: bytes, mode: str | None = "RGB") -> torch.Tensor:
        """Decode ``data`` in ``mode`` (``"RGB"``, ``"L"`` or ``None``) to ``uint8`` ``[C, H, W]``.

        Raises:
            UnreadableImageError: the bytes cannot be decoded (the reason says why).
        """
        image = open_image(data)  # refuses decompression bombs from the header
        h, w = oriented_size(image)
        box = self.box(h, w)
        if self.draft and image.format in JPEG_FORMATS:
            box = self._draft(image, (h, w), box)
        array, _ = decode_opened(image, DecodeOptions(mode=mode), box=box)
        pixels = torch.from_numpy(array).permute(2, 0, 1)  # channels-last memory: fast resize
        if self.batch_equivalent.pillow:
            out = pillow_resize(pixels, self.size)
        else:
            out = torch.nn.functional.interpolate(pixels[None], size=self.size, mode="bilinear",
                                                  antialias=True, align_corners=False)[0]
        flip_draw = torch.rand(1, generator=worker_generator(self.generator)) if self.flip else None
        if flip_draw is not None and float(flip_draw) < self.flip:
            out = out.flip(-1)
        return out.contiguous()

    def box(self, h: int, w: int) -> Box:
        """Draw one box ``(left, top, right, bottom)`` for an ``h`` × ``w`` image
        (:meth:`datasets.transforms.RandomResizedCrop.box`, from this decoder's generator)."""
        return self.batch_equivalent.box(h, w)

    def _draft(self, image: Image.Image, oriented: tuple[int, int], box: Box) -> Box:
        """Ask libjpeg for the smallest scale keeping ``size`` pixels in the box; rescale it."""
        x1, y1, x2, y2 = box
        out_h, out_w = self.size
        k = reduction(x2 - x1, y2 - y1, out_w, out_h)
        if k == 1:
            return box
        raw_w, raw_h = image.size
        image.draft(None, (max(1, raw_w // k), max(1, raw_h // k)))
        new_w, new_h = image.size
        h, w = oriented
        sx = (new_w if (raw_h, raw_w) == (h, w) else new_h) / w
        sy = (new_h if (raw_h, raw_w) == (h, w) else new_w) / h
        left, top = round(x1 * sx), round(y1 * sy)
        return left, top, max(left + 1, round(x2 * sx)), max(top + 1, round(y2 * sy))

    def __repr__(self) -> str:
        return (f"DecodeRandomResizedCrop(size={self.size}, scale={self.batch_equivalent.scale}, "
                f"ratio={self.batch_equivalent.ratio}, flip={self.flip}"
                f"{'' if self.draft else ', draft=False'}"
                f"{', pillow=True' if self.batch_equivalent.pillow else ''})")


def reduction(box_w: int, box_h: int, out_w: int, out_h: int) -> int:
    """Return the largest of 4, 2, 1 that leaves the box at least ``out`` on both sides.

    Example:
        >>> reduction(500, 300, 128, 128), reduction(260, 1000, 128, 128)
        (2, 2)
        >>> reduction(2000, 2000, 128, 128)
        4
        >>> reduction(90, 90, 128, 128)
        1
    """
    return next(k for k in SCALES if box_w // k >= out_w and box_h // k >= out_h or k == 1)
