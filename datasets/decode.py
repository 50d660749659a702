"""Decode chunks of image files for packing, in worker processes.

Every function here is a plain module-level function so that a ``multiprocessing`` pool can
run it. A chunk comes back as one :class:`Chunk`: for the fixed-size store one ``uint8``
array ``[k, H, W, C]`` of the readable images, for the variable-size store their encoded bytes,
sizes and pixel sums; plus one reason per unreadable file and one note per noteworthy one, so
the caller writes it straight into the cache and never holds per-image objects.

The rules (formats by content, modes, scaling, transparency, decompression bombs) are those
of :mod:`datasets.imagedecode`. Small 8-bit grey PNGs (what ``loaders.letters`` writes) take a
faster path that obeys the same pixel limit: the header's width × height is checked against
``PIL.Image.MAX_IMAGE_PIXELS`` before anything is inflated, and inflation is bounded by the
size the header declares.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import struct
import sys
import warnings
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from datasets.channelstats import image_sums, pixel_sums
from datasets.imagedecode import (
    MAX_IMAGE_BYTES,
    DecodeOptions,
    UnreadableImageError,
    check_pixels,
    decode_errors,
    decode_opened,
    encode_max_side,
    load_opened,
    native_mode,
    open_image,
    oriented_size,
    resize_array,
    to_uint8,
)

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZLIB_MAX_RATIO = 1032  # deflate inflates at most about 1032:1
# The variable store's mean/std (metadata: the stored bytes stay the originals) come from JPEGs
# decoded at a reduced DCT scale while the shorter side stays >= STATS_SIDE, each image weighted
# by its full-resolution pixel count (as a full decode weighs it). DCT scaling keeps block
# means, so the mean barely moves; the std loses a little fine-detail variance. (Going down to
# 1/8 saves only ~5% more: Huffman decoding, which no scale skips, is most of the cost.)
STATS_SIDE = 64
STATS_NOTE = (f"mean/std from JPEGs decoded at 1/2, 1/4 or 1/8 scale (shorter side >= "
              f"{STATS_SIDE} px), weighted by full-resolution pixels; other formats full size")


@dataclass(frozen=True)
class ChunkOptions:
    """What a worker does with each file: decode options, store and ``max_side``."""

    decode: DecodeOptions
    store: str = "fixed"  # "fixed": pixels; "variable": encoded bytes
    max_side: int | None = None


@dataclass
class Chunk:
    """A decoded chunk: see the module docstring."""

    reasons: list[str | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    images: np.ndarray | None = None  # fixed: [k, H, W, C]; None if their sizes differ
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (H, W) of readable ones
    blobs: list[bytes] = field(default_factory=list)  # variable store
    spill: str | None = None  # variable store, in a pool: the blobs are in this file instead
    lengths: list[int] = field(default_factory=list)  # ... back to back, of these lengths
    channels: int = 1
    sums: np.ndarray = field(default_factory=lambda: np.zeros(1))
    squares: np.ndarray = field(default_factory=lambda: np.zeros(1))
    pixels: float = 0.0  # variable store: full-resolution pixels the sums stand for


def decode_chunk(root: str | None, items: list[bytes | str], options: ChunkOptions,
                 spill: str | None = None) -> Chunk:
    """Decode one chunk: ``items`` are file bytes, or names below ``root`` read here.

    An item that is already a reason (an archive member refused unread) is passed through as
    ``"!reason"``. Returns a :class:`Chunk` with one reason (``None`` if readable) and one note
    per item, in order. With ``spill`` (a path), a variable-store chunk writes its blobs to
    that file rather than sending them back through the pool's pipe (pickling every encoded
    image twice cost the parent process more than writing them).
    """
    chunk = Chunk()
    arrays: list[np.ndarray] = []
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its image decoders; Pillow takes over once they go.
        warnings.simplefilter("ignore", DeprecationWarning)
        for item in items:
            try:
                data = _read(root, item)
                if options.store == "variable":
                    _add_variable(chunk, data, options)
                else:
                    arrays.append(_decode_fixed(chunk, data, options.decode))
                chunk.reasons.append(None)
            except UnreadableImageError as err:
                chunk.reasons.append(err.reason)
                chunk.notes.append("")
            if arrays and arrays[-1].shape[:2] != arrays[0].shape[:2]:
                return _mixed(chunk, len(items))  # "auto" goes variable: decode no further
    if options.store != "variable":
        _stack(chunk, arrays)
    elif spill is not None:
        with open(spill, "wb") as out:
            out.writelines(chunk.blobs)
        chunk.spill, chunk.lengths, chunk.blobs = spill, [len(b) for b in chunk.blobs], []
    return chunk


def _mixed(chunk: Chunk, count: int) -> Chunk:
    """A fixed-store chunk whose images differ in size, cut short: ``images`` is ``None``."""
    chunk.reasons += [None] * (count - len(chunk.reasons))
    chunk.notes += [""] * (count - len(chunk.notes))
    chunk.images = None
    return chunk


def _read(root: str | None, item: bytes | str) -> bytes:
    if isinstance(item, bytes):
        return item
    if item.startswith("!"):
        raise UnreadableImageError(item[1:])
    try:
        with open(os.path.join(root or "", item), "rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_IMAGE_BYTES:
                raise UnreadableImageError(_too_big(size))
            return handle.readall()
    except OSError as err:
        raise UnreadableImageError(f"cannot read the file: {err.strerror or err}") from err


def _too_big(size: int) -> str:
    return (f"file of {size:,} bytes exceeds the per-image limit of {MAX_IMAGE_BYTES:,} bytes "
            "(datasets.imagedecode.MAX_IMAGE_BYTES); refused unread")


def _decode_fixed(chunk: Chunk, data: bytes, options: DecodeOptions) -> np.ndarray:
    grey = png_fast_grey(data)
    if grey is not None:
        array, note = grey[:, :, None], ""
        chunk.sizes.append((array.shape[0], array.shape[1]))
        if options.mode == "RGB":
            array = np.repeat(array, 3, axis=2)
        if options.size is not None:
            array = resize_array(array, options.size, options.resize)
    else:
        image = open_image(data)
        size = oriented_size(image)
        array, note = decode_opened(image, options)
        chunk.sizes.append(size)
    chunk.notes.append(note)
    return array


def _stack(chunk: Chunk, arrays: list[np.ndarray]) -> None:
    if not arrays:
        chunk.images = np.empty((0, 0, 0, 1), dtype=np.uint8)
        return
    chunk.channels = max(a.shape[2] for a in arrays)
    if len({a.shape[:2] for a in arrays}) > 1:
        chunk.images = None  # sizes differ: the caller switches to the variable store
        return
    chunk.images = np.stack([a if a.shape[2] == chunk.channels
                             else np.repeat(a, chunk.channels, axis=2) for a in arrays])


def _add_variable(chunk: Chunk, data: bytes, options: ChunkOptions) -> None:
    """Check an image by decoding it small, keep its bytes, size and pixel sums."""
    encoded_note = ""  # what re-encoding at max_side did to the original, if it did
    if options.max_side is not None:
        data, encoded_note = encode_max_side(data, options.max_side)
    image = open_image(data)
    size = oriented_size(image)
    mode = options.decode.mode or native_mode(image.mode)
    loaded, note = load_opened(image, DecodeOptions(mode=mode, min_side=STATS_SIDE))
    note = "; ".join(n for n in (encoded_note, note) if n)
    if loaded.mode == mode:  # the usual L or RGB: the histogram straight from Pillow
        sums, squares, pixels = image_sums(loaded)
    else:
        with decode_errors(image.format):
            sums, squares, pixels = pixel_sums(to_uint8(loaded, mode))
    weight = size[0] * size[1] / max(1, pixels)  # a reduced decode counts as the full image
    channels = max(chunk.channels, len(sums))
    if len(chunk.sums) != channels:
        chunk.sums = np.broadcast_to(chunk.sums, (channels,)).copy()
        chunk.squares = np.broadcast_to(chunk.squares, (channels,)).copy()
    chunk.sums += sums * weight  # grey sums broadcast over colour channels
    chunk.squares += squares * weight
    chunk.pixels += pixels * weight
    chunk.channels = channels
    chunk.blobs.append(data)
    chunk.sizes.append(size)
    chunk.notes.append(note)


def png_fast_grey(data: bytes) -> np.ndarray | None:
    """Decode an 8-bit grey PNG without Pillow, or return ``None`` to leave it to Pillow.

    Unfiltered ones (what ``loaders.letters`` writes) are inflated here, about 4× faster than
    ``Image.open`` for 28×28 images; filtered ones go to libpng when torchvision is imported.
    Both obey Pillow's pixel limit, checked on the header before inflating.

    Raises:
        UnreadableImageError: the header declares more pixels than Pillow's limit.
    """
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    check_pixels((width, height))
    if depth != 8 or color != 0 or interlace != 0:
        return None
    return _unfiltered(data, width, height)


def _unfiltered(data: bytes, width: int, height: int) -> np.ndarray | None:
    parts = []
    pos = 33
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            parts.append(data[pos + 8 : pos + 8 + length])
        elif kind == b"IEND":
            break
        pos += 12 + length
    expected = height * (width + 1)
    compressed = b"".join(parts)
    try:
        if len(compressed) * ZLIB_MAX_RATIO <= max(2 * expected, 1 << 20):
            raw = zlib.decompress(compressed)  # cannot inflate past the bound: one fast call
        else:
            raw = zlib.decompressobj().decompress(compressed, expected + 1)  # bounded
    except zlib.error:
        return None  # Pillow gives the precise reason
    if len(raw) != expected:
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():  # some row is filtered (Sub/Up/Average/Paeth)
        return _decode_libpng(data)
    return rows[:, 1:]


_LIBPNG: list[Any] = []


def _libpng() -> Any:
    """torchvision's libpng decoder, only if torchvision is already imported (or None).

    Importing torchvision costs about a second: worth it only for big jobs, which call
    :func:`prefer_libpng` first; training scripts have usually imported it anyway.
    """
    if _LIBPNG:
        return _LIBPNG[0]
    if "torchvision" not in sys.modules:
        return None
    try:
        from torchvision.io import ImageReadMode
        from torchvision.io import decode_png as tv_decode_png
    except ImportError:  # torchvision without image support, or a future one without it
        _LIBPNG.append(None)
        return None
    _LIBPNG.append(functools.partial(tv_decode_png, mode=ImageReadMode.UNCHANGED))
    return _LIBPNG[0]


def prefer_libpng() -> None:
    """Import torchvision (about a second) so that filtered grey PNGs may use libpng."""
    try:
        import torchvision.io  # noqa: F401
    except ImportError:
        log.debug("torchvision.io is not available: decoding PNGs with Pillow")


def _decode_libpng(data: bytes) -> np.ndarray | None:
    """Decode an 8-bit grey PNG (checked by the caller) with libpng, or ``None``."""
    decoder = _libpng()
    if decoder is None:
        return None
    try:
        image = decoder(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    except (RuntimeError, ValueError):
        return None  # Pillow gives the precise reason
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 1:
        return None
    return image[0].numpy()


def run_ordered(
    fn: Callable[..., Chunk],
    tasks: Iterable[tuple[Any, ...]],
    *,
    workers: int,
    window: int = 4,
) -> Iterator[Chunk]:
    """Run ``fn(*task)`` for each task, in ``workers`` processes, yielding results in order.

    At most ``window * workers`` tasks are in flight, so a streamed source (a ``tar.gz``)
    is read only as fast as it is decoded: memory stays bounded.

    Args:
        fn: a module-level function (picklable).
        tasks: argument tuples, consumed lazily.
        workers: processes to use; ``0`` or ``1`` runs everything in this process.
        window: tasks in flight per worker.
    """
    if workers <= 1:
        for task in tasks:
            yield fn(*task)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    # spawned workers (no fork) would start with Pillow's default limit: give them this one
    with context.Pool(workers, initializer=_start_worker,
                      initargs=(Image.MAX_IMAGE_PIXELS,)) as pool:
        pending: deque[Any] = deque()
        for task in tasks:
            pending.append(pool.apply_async(fn, task))
            if len(pending) >= window * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _start_worker(limit: int | None) -> None:
    """Set up a decoding worker: this process's pixel limit, and Ctrl-C left to the parent.

    A terminal's Ctrl-C reaches every process of the group; a worker that took it would print
    a "Process ForkPoolWorker-2:" traceback. The parent stops the pool (``terminate``) when
    its ``KeyboardInterrupt`` leaves :func:`run_ordered`.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Image.MAX_IMAGE_PIXELS = limit


def default_workers() -> int:
    """Return the number of decoding processes to use: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)
