"""Decode any common image file, by content, into a ``uint8`` array ``[H, W, C]``.

One decoder for every image path (packing, the variable store's reads, the uncached
``ImageFolderDataset``), so every path applies the same rules:

- **Formats** are recognised from the bytes, not the name: JPEG, PNG, GIF, WebP, BMP, TIFF and
  whatever else Pillow opens. An animated GIF/WebP/TIFF gives its first frame (and a note).
- **Decompression bombs**: an image of more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels is
  refused before its pixels are decoded, with the limit named; raise that limit to accept it.
- **Orientation**: the EXIF orientation tag is applied (``ImageOps.exif_transpose``).
- **16-bit and 32-bit images are scaled, never clipped**: 16-bit (``I;16*``, and ``I`` whose
  values lie in ``0..65535``) as ``round(x / 257)``, so 65535 is 255 and 32768 is 128; other
  ``I`` images and float (``F``) images whose values leave ``[0, 1]`` are stretched linearly
  from their own minimum..maximum to ``0..255``; float images inside ``[0, 1]`` are
  ``round(x * 255)``. NaN pixels become 0.
- **Transparency** (``RGBA``, ``LA``, ``PA``, palette transparency) is composited on a white
  background (:data:`BACKGROUND`), as a viewer shows it; the alpha channel is not kept.
- **Colour**: grey kinds (``1``, ``L``, ``LA``, ``I``, ``I;16*``, ``F``) are native ``"L"``, every
  other kind (``RGB``, ``RGBA``, ``P``, ``CMYK``, ``YCbCr``…) native ``"RGB"``; ``CMYK`` and the
  others are converted by Pillow. ``mode="L"`` converts colour with ITU-R 601 luma
  (``L = 0.299 R + 0.587 G + 0.114 B``), ``mode="RGB"`` repeats grey in three channels.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from datasets.errors import DataFormatError

log = logging.getLogger(__name__)

BACKGROUND = 255  # white: transparent pixels are composited on it (in every channel)
MAX_IMAGE_BYTES = 256 * 1024**2  # an encoded image larger than this is refused unread
MODES = ("RGB", "L")
# Pillow's names for files libjpeg decodes (MPO: a phone's JPEG with extra frames), which can
# be decoded at a reduced DCT scale (``draft``)
JPEG_FORMATS = ("JPEG", "MPO")
RESIZES = ("shorter-then-center-crop", "pad", "stretch")
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})

Size = tuple[int, int]


class UnreadableImageError(DataFormatError):
    """An image file that cannot be decoded; ``reason`` is the one-line why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: target ``mode`` and, for a fixed-size store, ``size`` and ``resize``.

    Args:
        mode: ``"RGB"``, ``"L"`` or ``None`` (each image's native ``"L"``/``"RGB"``).
        size: ``(H, W)`` to resize to with ``resize``; ``None`` keeps the decoded size.
        resize: ``"shorter-then-center-crop"`` (torchvision's ``Resize(size)`` then
            ``CenterCrop``), ``"pad"`` (fit inside, pad with black) or ``"stretch"``
            (``Resize((H, W))``, aspect not kept).
        min_side: decode JPEGs at a reduced scale (Pillow ``draft``) as long as both sides
            stay at least this long (``size`` implies it); ``None`` decodes full resolution.
        channels_first: return ``[C, H, W]`` (what torch models take) instead of ``[H, W, C]``;
            colour is read band by band from Pillow, as fast as ``[H, W, C]``, where
            transposing the array afterwards costs 0.5-1.3 ms for 500x375.
    """

    mode: str | None = None
    size: Size | None = None
    resize: str = "shorter-then-center-crop"
    min_side: int | None = None
    channels_first: bool = False


def native_mode(pil_mode: str) -> str:
    """Return ``"L"`` for Pillow's grey modes, ``"RGB"`` for every other.

    Example:
        >>> native_mode("I;16"), native_mode("P"), native_mode("CMYK")
        ('L', 'RGB', 'RGB')
    """
    return "L" if pil_mode in GREY_MODES or pil_mode.startswith("I;16") else "RGB"


def open_image(data: bytes) -> Image.Image:
    """Open encoded bytes with Pillow (header only) and refuse decompression bombs.

    Raises:
        UnreadableImageError: empty, not an image, or more pixels than Pillow's limit.
    """
    if not data:
        raise UnreadableImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise UnreadableImageError(_bomb_reason(None)) from err
    except UnidentifiedImageError as err:
        kind = sniff_format(data)
        if kind:
            raise UnreadableImageError(f"corrupt or truncated {kind}: Pillow cannot read its "
                                       f"header ({len(data):,} bytes)") from err
        raise UnreadableImageError(f"not an image Pillow can read (starts with {data[:8]!r})"
                                   ) from err
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise UnreadableImageError(f"cannot read the image header: {err}") from err
    check_pixels(image.size)
    return image


_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
               (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def sniff_format(data: bytes) -> str | None:
    """Name the image format the first bytes announce, or ``None``.

    Example:
        >>> sniff_format(bytes([0xFF, 0xD8, 0xFF, 0xE0])), sniff_format(b"<html>")
        ('JPEG', None)
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)


def check_pixels(size: Size) -> None:
    """Refuse ``(width, height)`` above ``PIL.Image.MAX_IMAGE_PIXELS`` (read at each call).

    Raises:
        UnreadableImageError: the image is a possible decompression bomb.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and size[0] * size[1] > limit:
        raise UnreadableImageError(_bomb_reason(size))


def _bomb_reason(size: Size | None) -> str:
    what = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels" if size else "its size"
    return (f"refused as a possible decompression bomb: {what} exceeds Pillow's limit "
            f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS:,}; raise that limit if "
            "you trust the file")


def decode_image(data: bytes, options: DecodeOptions = DecodeOptions()) -> tuple[np.ndarray, str]:
    """Decode one image file into ``uint8`` ``[H, W, C]`` (C = 1 for ``"L"``, 3 for ``"RGB"``),
    or ``[C, H, W]`` with ``options.channels_first``.

    Args:
        data: the encoded file's bytes.
        options: see :class:`DecodeOptions`.

    Returns:
        ``(array, note)``: ``note`` says what was worth knowing ("first frame of 3"), else "".

    Raises:
        UnreadableImageError: with a one-line reason.

    Example:
        >>> buffer = io.BytesIO(); Image.new("RGB", (4, 2), (255, 0, 0)).save(buffer, "PNG")
        >>> array, note = decode_image(buffer.getvalue(), DecodeOptions(mode="L"))
        >>> array.shape, int(array[0, 0, 0]), note
        ((2, 4, 1), 76, '')
    """
    return decode_opened(open_image(data), options)


def decode_opened(image: Image.Image, options: DecodeOptions, *,
                  box: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, str]:
    """Decode an image returned by :func:`open_image` (see :func:`decode_image`).

    ``box`` ``(left, top, right, bottom)``, in the loaded (possibly drafted) image's pixels
    once its orientation is applied, keeps only that region: it is cut before the
    conversions, so they run on the region alone.
    """
    loaded, note = load_opened(image, options, box=box)
    with decode_errors(image.format):
        if options.size is not None and loaded.mode in MODES and options.mode in (None,
                                                                                 loaded.mode):
            # nothing to convert: resize the loaded image, make one array of the result
            resized = resize_image(loaded, options.size, options.resize)
            return to_uint8(resized, options.mode, channels_first=options.channels_first), note
        planar = options.channels_first and options.size is None  # else resized [H, W, C] first
        array = to_uint8(loaded, options.mode, channels_first=planar)
    if options.size is not None:
        array = resize_array(array, options.size, options.resize)
        if options.channels_first:
            array = np.ascontiguousarray(array.transpose(2, 0, 1))
    return array, note


def load_opened(image: Image.Image, options: DecodeOptions, *,
                box: tuple[int, int, int, int] | None = None) -> tuple[Image.Image, str]:
    """Load the pixels of an image from :func:`open_image`, as Pillow holds them.

    Applies :func:`decode_opened`'s reduced JPEG scale, orientation and ``box``, but not its
    conversions (``to_uint8`` makes the array; with a ``box``, 32-bit and float images are
    scaled to 8 bits first, by the whole image's range): returns ``(image, note)``, the note
    naming what the conversion to ``options.mode`` does. An ``L`` or ``RGB`` image needs none.
    """
    notes = []
    fmt = image.format
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"first frame of {frames} (animated {image.format})")
    with decode_errors(fmt):
        _draft(image, options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # no copy when upright
        converted = _conversion_note(image, options.mode, fmt)
        if box is not None:
            if image.mode in ("I", "F"):  # scaled by their own range: the whole image's
                image = _eight_bit(image)
            image = image.crop(box)
    if converted:
        notes.append(converted)
    return image, "; ".join(notes)


@contextlib.contextmanager
def decode_errors(fmt: str | None) -> Iterator[None]:
    """Turn Pillow's errors while decoding into :class:`UnreadableImageError` (one line)."""
    try:
        yield
    except UnreadableImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(f"cannot decode {fmt or 'image'}: {err}") from err


def _conversion_note(image: Image.Image, target: str | None, fmt: str | None) -> str:
    """Name a conversion worth knowing (a palette GIF, 16-bit, CMYK, transparency)."""
    if image.mode in ("L", "RGB") or (image.mode == "1" and target != "RGB"):
        return ""
    kind = {"P": "palette (P)", "PA": "palette with alpha (PA)", "I;16": "16-bit (I;16)",
            "I": "32-bit integer (I)", "F": "float (F)"}.get(image.mode, image.mode)
    how = "scaled" if image.mode in ("I", "F") or image.mode.startswith("I;16") else "converted"
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        how = "composited on white and converted"
    return f"{fmt or 'image'} {kind} image {how} to 8-bit {target or native_mode(image.mode)}"


def oriented_size(image: Image.Image) -> Size:
    """Return ``(H, W)`` of an opened image once its EXIF orientation is applied."""
    w, h = image.size
    try:
        orientation = image.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError):  # a corrupt EXIF block: exif_transpose skips it
        orientation = 1
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def _draft(image: Image.Image, options: DecodeOptions) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the target is that much smaller.

    ``options.size`` is the upright image's ``(H, W)``: the scale is chosen from the size as
    displayed (an EXIF orientation of 5 to 8 turns the stored image by 90 degrees), then asked
    of libjpeg in the stored image's terms.
    """
    if image.format not in JPEG_FORMATS:
        return
    h, w = oriented_size(image)
    turned = (w, h) != image.size  # a square one turned is the same for what follows
    if options.size is not None:
        th, tw = options.size
        scale = (max(th / h, tw / w) if options.resize == "shorter-then-center-crop"
                 else min(th / h, tw / w) if options.resize == "pad" else None)
        want = (max(1, round(w * scale)), max(1, round(h * scale))) if scale else (tw, th)
    elif options.min_side is not None:
        factor = options.min_side / min(w, h)
        want = (max(1, round(w * factor)), max(1, round(h * factor)))
    else:
        return
    image.draft(None, (want[1], want[0]) if turned else want)


def to_uint8(image: Image.Image, mode: str | None, *, channels_first: bool = False) -> np.ndarray:
    """Convert a loaded Pillow image to ``uint8`` ``[H, W, C]`` (or ``[C, H, W]``) by the
    module's rules."""
    image = _eight_bit(image)
    if channels_first and (image.mode, mode) in (("RGB", None), ("RGB", "RGB"), ("L", None),
                                                 ("L", "L")):
        return _planes(image)
    array = _hwc_uint8(image, mode)
    return np.ascontiguousarray(array.transpose(2, 0, 1)) if channels_first else array


def _planes(image: Image.Image) -> np.ndarray:
    """``[C, H, W]`` of an 8-bit L or RGB image, one Pillow raw band per channel (no transpose:
    0.16 ms for 500x375 RGB, as ``np.array(image)`` takes for ``[H, W, C]``)."""
    bands = image.getbands()
    out = np.empty((len(bands), image.height, image.width), dtype=np.uint8)
    for plane, band in zip(out, bands, strict=True):
        raw = image.tobytes("raw", band) if len(bands) > 1 else image.tobytes()
        plane[...] = np.frombuffer(raw, dtype=np.uint8).reshape(plane.shape)
    return out


def _hwc_uint8(image: Image.Image, mode: str | None) -> np.ndarray:
    array = np.array(image)  # one writeable copy (asarray's is read-only)
    if array.ndim == 2:
        array = array[:, :, None]
    if image.mode in ("LA", "RGBA"):
        array = _composite(array)
    if mode == "RGB" and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif mode == "L" and array.shape[2] == 3:
        array = np.asarray(Image.fromarray(array, "RGB").convert("L"))[:, :, None]
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return array if array.flags.writeable else array.copy()


def _eight_bit(image: Image.Image) -> Image.Image:
    """Return ``image`` in one of L, LA, RGB, RGBA (8 bits per channel)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "F" or mode == "I" or mode.startswith("I;16"):
        return Image.fromarray(scale_to_uint8(np.asarray(image)), "L")
    if mode == "1":
        return image.convert("L")
    if mode == "La":
        return image.convert("LA")
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if transparent else "RGB")
    if mode == "RGBa":
        return image.convert("RGBA")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale 16-bit, 32-bit or float pixels to ``uint8`` without clipping (rules: module doc).

    Example:
        >>> scale_to_uint8(np.array([0, 32768, 65535], dtype=np.uint16)).tolist()
        [0, 128, 255]
        >>> scale_to_uint8(np.array([0.0, 0.5, 1.0], dtype=np.float32)).tolist()
        [0, 128, 255]
    """
    x = np.asarray(values)
    if x.dtype.kind == "f":
        x = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(x * 255.0).astype(np.uint8)
        return _stretch(x, lo, hi)
    x = x.astype(np.int64)
    lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
    if lo >= 0 and hi <= 65535:
        return ((x + 128) // 257).astype(np.uint8)
    return _stretch(x.astype(np.float64), float(lo), float(hi))


def _stretch(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.uint8)
    return np.rint((x - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _composite(array: np.ndarray) -> np.ndarray:
    """Blend colour over :data:`BACKGROUND` by the last (alpha) channel; drop alpha."""
    colour = array[:, :, :-1].astype(np.uint32)
    alpha = array[:, :, -1:].astype(np.uint32)
    blended = (colour * alpha + BACKGROUND * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def resize_array(array: np.ndarray, size: Size, resize: str) -> np.ndarray:
    """Resize ``[H, W, C]`` to ``size`` ``(H, W)`` by the ``resize`` policy (bilinear, antialiased).

    Example:
        >>> resize_array(np.zeros((50, 100, 3), np.uint8), (32, 32), "pad").shape
        (32, 32, 3)
    """
    h, w, c = array.shape
    if (h, w) == tuple(size):
        return array
    image = Image.fromarray(array[:, :, 0] if c == 1 else array, "L" if c == 1 else "RGB")
    return _hwc(np.array(resize_image(image, size, resize)))  # a writeable copy


def resize_image(image: Image.Image, size: Size, resize: str) -> Image.Image:
    """Resize an ``L`` or ``RGB`` Pillow image to ``size`` ``(H, W)`` by the ``resize`` policy.

    ``"shorter-then-center-crop"`` scales the shorter side to fit, then cuts the centre;
    ``"pad"`` scales the longer side to fit and centres the image on black; ``"stretch"``
    scales each side on its own. Bilinear, antialiased (Pillow's resampling).

    Example:
        >>> resize_image(Image.new("RGB", (100, 50)), (32, 32), "shorter-then-center-crop").size
        (32, 32)
    """
    th, tw = size
    w, h = image.size
    if (h, w) == (th, tw):
        return image
    if resize == "stretch":
        return image.resize((tw, th), Image.Resampling.BILINEAR)
    scale = max(th / h, tw / w) if resize == "shorter-then-center-crop" else min(th / h, tw / w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if resize == "shorter-then-center-crop":
        nw, nh = max(nw, tw), max(nh, th)
        top, left = (nh - th) // 2, (nw - tw) // 2
        scaled = image.resize((nw, nh), Image.Resampling.BILINEAR)
        return scaled.crop((left, top, left + tw, top + th))
    scaled = image.resize((nw, nh), Image.Resampling.BILINEAR)  # nw <= tw, nh <= th
    padded = Image.new(image.mode, (tw, th), 0)  # "pad": black borders, image centred
    padded.paste(scaled, ((tw - nw) // 2, (th - nh) // 2))
    return padded


def _hwc(array: np.ndarray) -> np.ndarray:
    return array[:, :, None] if array.ndim == 2 else array


def encode_max_side(data: bytes, max_side: int) -> tuple[bytes, str]:
    """Re-encode an image whose longer side exceeds ``max_side`` (JPEG stays JPEG, else PNG).

    The image is decoded to 8 bits by the rules above (native mode), shrunk so its longer side
    is ``max_side``, and encoded once: JPEG at quality 95, anything else as PNG (lossless).
    Smaller images are returned as they are. Returns ``(bytes, note)``: the note of that
    decode ("first frame of 3", a CMYK or 16-bit conversion), which the new bytes no longer
    show; "" when the image was kept as it was.

    Raises:
        UnreadableImageError: the image cannot be decoded.
    """
    image = open_image(data)
    if max(image.size) <= max_side:
        return data, ""
    fmt = "JPEG" if image.format in JPEG_FORMATS else "PNG"
    scale = max_side / max(image.size)
    array, note = decode_opened(image, DecodeOptions(min_side=max(1, int(min(image.size) * scale))))
    h, w, c = array.shape  # draft may have decoded at 1/2, 1/4 or 1/8 already
    shrink = max_side / max(h, w)
    new = (max(1, round(w * shrink)), max(1, round(h * shrink)))
    small = Image.fromarray(array[:, :, 0] if c == 1 else array, "L" if c == 1 else "RGB")
    buffer = io.BytesIO()
    small.resize(new, Image.Resampling.BILINEAR).save(buffer, fmt, quality=95)
    return buffer.getvalue(), note
