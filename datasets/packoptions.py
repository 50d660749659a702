"""``PackOptions``: the options an image cache is built with and keyed by."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PIL import Image

from datasets.imagedecode import MODES, RESIZES

log = logging.getLogger(__name__)

STORES = ("auto", "fixed", "variable")
PILLOW_DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3  # PIL.Image.MAX_IMAGE_PIXELS unchanged


@dataclass(frozen=True)
class PackOptions:
    """The options a cache is keyed by (a changed option gives a new cache).

    Args:
        mode: ``"RGB"``, ``"L"`` or ``None`` (``"L"`` if every image is grey, else ``"RGB"``).
        size: ``(H, W)`` (or an int for a square) of the fixed-size store.
        resize: how images reach ``size`` (see :class:`datasets.imagedecode.DecodeOptions`).
        max_side: variable store: re-encode images whose longer side exceeds this, once.
        store: ``"auto"``, ``"fixed"`` or ``"variable"``.
    """

    mode: str | None = None
    size: tuple[int, int] | None = None
    resize: str = "shorter-then-center-crop"
    max_side: int | None = None
    store: str = "auto"

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"mode should be one of {list(MODES)} or None, but got "
                             f"mode={self.mode!r}")
        if self.resize not in RESIZES:
            raise ValueError(f"resize should be one of {list(RESIZES)}, but got "
                             f"resize={self.resize!r}")
        if self.store not in STORES:
            raise ValueError(f"store should be one of {list(STORES)}, but got store={self.store!r}")
        size = self.size
        if size is not None and not isinstance(size, int) and (
                isinstance(size, (str, bytes)) or len(size) != 2):
            raise ValueError(f"size should be an int or a (height, width) pair, but got "
                             f"size={size!r}")
        if isinstance(size, int):
            object.__setattr__(self, "size", (size, size))  # frozen: normalise once, here
        elif size is not None:
            object.__setattr__(self, "size", (int(size[0]), int(size[1])))
        if self.size is not None and min(self.size) < 1:
            raise ValueError(f"size should be positive, but got size={size!r}")
        if self.max_side is not None and self.max_side < 1:
            raise ValueError(f"max_side should be a positive int, but got max_side={self.max_side!r}")

    @property
    def kind(self) -> str:
        """The store to build: ``fixed`` with a size, ``variable`` with ``max_side``, else as set."""
        if self.size is not None:
            return "fixed"
        return "variable" if self.max_side is not None else self.store

    def key(self) -> str:
        """A short text naming the options, for cache keys."""
        size = "x".join(map(str, self.size)) if self.size else "native"
        key = f"{self.kind}-{self.mode or 'auto'}-{size}-{self.resize}-{self.max_side}"
        # A raised (or lowered) decompression-bomb limit changes which images are kept: the
        # refusal's advice, "raise that limit", must give a new cache, not the old one.
        limit = Image.MAX_IMAGE_PIXELS
        return key if limit == PILLOW_DEFAULT_MAX_PIXELS else f"{key}-maxpixels{limit}"
