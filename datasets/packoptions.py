"""``PackOptions``: the options an image cache is built with and keyed by."""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass
from typing import Any

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
        if self.size is not None:  # frozen: normalise once, here
            object.__setattr__(self, "size", size_pair(self.size))
        if self.max_side is not None:
            object.__setattr__(self, "max_side", positive_int("max_side", self.max_side))

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


def positive_int(name: str, value: Any, *, or_none: bool = False) -> int:
    """Return ``value`` as an ``int`` when it is an integer >= 1 (``numpy`` ints included).

    Raises:
        ValueError: a bool, a float, anything ``operator.index`` refuses, or a value < 1,
            in torch's words.

    Example:
        >>> positive_int("max_side", 2.5)
        Traceback (most recent call last):
        ValueError: max_side should be a positive int, but got max_side=2.5
    """
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise ValueError(f"{name} should be a positive int{' or None' if or_none else ''}, "
                         f"but got {name}={value!r}")
    return number


def size_pair(size: Any) -> tuple[int, int]:
    """Return ``size`` (an int, or a ``(height, width)`` pair) as ``(H, W)`` of ints >= 1.

    Raises:
        ValueError: anything else (a bool, a float, a set, ``(10, None)``, three values).

    Example:
        >>> size_pair(5), size_pair([4, 6])
        ((5, 5), (4, 6))
    """
    wrong = ValueError(f"size should be a positive int or a (height, width) pair of them, but "
                       f"got size={size!r}")
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise wrong
        try:
            return positive_int("size", size[0]), positive_int("size", size[1])
        except ValueError:
            raise wrong from None
    try:
        side = positive_int("size", size)
    except ValueError:
        raise wrong from None
    return side, side
