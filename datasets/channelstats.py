"""Per-channel pixel statistics (``mean``/``std`` in ``[0, 1]`` units) of ``uint8`` images.

The one place packed image stores and sharded packs take their channel statistics from.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["ChannelStats", "image_sums", "pixel_sums"]

_LEVELS = np.arange(256, dtype=np.float64)
_SQUARES = _LEVELS * _LEVELS


def pixel_sums(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Return per-channel sums and sums of squares of ``uint8`` ``[..., C]``, and the count.

    Taken from one 256-bin histogram per channel (Pillow's for 1 or 3 channels): exact, and
    3-5x faster than summing (and squaring) the pixels as floats.

    Example:
        >>> sums, squares, n = pixel_sums(np.array([[[1, 2, 0]], [[3, 4, 0]]], dtype=np.uint8))
        >>> sums.tolist(), squares.tolist(), n
        ([4.0, 6.0, 0.0], [10.0, 20.0, 0.0], 2)
    """
    channels = pixels.shape[-1]
    n = pixels.size // max(1, channels)
    if n and channels in (1, 3) and pixels.ndim >= 3:
        rows = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1, pixels.shape[-2],
                                                                     channels)
        return image_sums(Image.fromarray(rows[:, :, 0] if channels == 1 else rows,
                                          "L" if channels == 1 else "RGB"))
    flat = pixels.reshape(-1, channels)
    hist = np.stack([np.bincount(flat[:, c], minlength=256)
                     for c in range(channels)]).astype(np.float64)
    return hist @ _LEVELS, hist @ _SQUARES, n


def image_sums(image: Image.Image) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`pixel_sums` of an ``L`` or ``RGB`` Pillow image, without making an array of it.

    Example:
        >>> sums, squares, n = image_sums(Image.new("RGB", (2, 1), (1, 2, 3)))
        >>> sums.tolist(), n
        ([2.0, 4.0, 6.0], 2)
    """
    if image.mode not in ("L", "RGB"):
        raise ValueError(f"image_sums takes L or RGB images, but got mode {image.mode!r}")
    channels = len(image.getbands())
    hist = np.asarray(image.histogram(), dtype=np.float64).reshape(channels, 256)
    return hist @ _LEVELS, hist @ _SQUARES, image.width * image.height


class ChannelStats:
    """Running per-channel sums of ``uint8`` pixels: ``mean`` and ``std`` in ``[0, 1]`` units.

    Example:
        >>> stats = ChannelStats(); stats.add(np.array([[[[0], [255]]]], dtype=np.uint8))
        >>> stats.as_manifest()
        {'mean': [0.5], 'std': [0.5]}
    """

    def __init__(self) -> None:
        self.sums = np.zeros(1, dtype=np.float64)
        self.squares = np.zeros(1, dtype=np.float64)
        self.pixels: float = 0

    def add(self, images: np.ndarray) -> None:
        """Add ``uint8`` ``[..., C]`` pixels (grey ones count as equal channels of colour)."""
        self.add_sums(*pixel_sums(images))

    def add_sums(self, sums: np.ndarray, squares: np.ndarray, pixels: float) -> None:
        """Add sums already taken (as a worker process returns them)."""
        channels = (max(len(self.sums), len(sums)),)
        self.sums = np.broadcast_to(self.sums, channels) + np.broadcast_to(sums, channels)
        self.squares = (np.broadcast_to(self.squares, channels)
                        + np.broadcast_to(squares, channels))
        self.pixels += pixels

    def as_manifest(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` per channel, rounded to 6 digits."""
        if not self.pixels:
            return {"mean": [], "std": []}
        mean = self.sums / self.pixels
        var = np.maximum(self.squares / self.pixels - mean * mean, 0.0)
        return {"mean": [round(float(m) / 255, 6) for m in mean],
                "std": [round(float(np.sqrt(v)) / 255, 6) for v in var]}
