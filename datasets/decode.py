"""Decode PNG images into ``uint8`` arrays, one chunk at a time, in worker processes.

Every function here is a plain module-level function so that a ``multiprocessing`` pool can
run it. A chunk comes back as one ``uint8`` array ``[k, H, W]`` of the readable images plus one
reason per unreadable one, so the caller writes it straight into the packed file and never
holds per-image objects.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import logging
import lzma
import multiprocessing
import os
import struct
import sys
import warnings
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from datasets.errors import DataFormatError

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Shape = tuple[int, int]
ChunkResult = tuple[np.ndarray, list[str | None], Shape | None]


def decode_png(data: bytes, *, shape: Shape | None = None,
               libpng: bool = False) -> tuple[np.ndarray | None, str]:
    """Decode one PNG into a greyscale ``uint8`` array ``[H, W]``.

    Unfiltered 8-bit grey PNGs are decoded directly; others by libpng through
    ``torchvision.io.decode_png`` when ``libpng`` is set (3–4× faster than Pillow for small
    images), else, or when that fails or is unavailable, by Pillow, which also words the
    reason for an unreadable file.

    Args:
        data: the file's bytes.
        shape: the ``(H, W)`` every image must have; ``None`` accepts any.
        libpng: try torchvision's decoder before Pillow (callers silence its deprecation
            warning: see :func:`decode_blobs`).

    Returns:
        ``(array, "")`` for a readable image, else ``(None, reason)`` with a short reason
        such as ``"empty file (0 bytes)"`` or ``"wrong size: expected 28x28 but got 32x32"``.
    """
    if not data:
        return None, "empty file (0 bytes)"
    if not data.startswith(PNG_SIGNATURE):
        return None, f"not a PNG: starts with {data[:8]!r}"
    array = _decode_unfiltered_grey(data)
    if array is None and libpng:
        array = _decode_libpng(data)
    if array is None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.mode != "L":
                    image = image.convert("L")
                array = np.asarray(image, dtype=np.uint8)
        except UnidentifiedImageError:
            return None, "cannot decode PNG: corrupt or truncated header"
        except (OSError, ValueError, SyntaxError) as err:
            return None, f"cannot decode PNG: {err}"
    if shape is not None and array.shape != tuple(shape):
        found = "x".join(map(str, array.shape))
        return None, f"wrong size: expected {shape[0]}x{shape[1]} but got {found}"
    return array, ""


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
    _LIBPNG.append(functools.partial(tv_decode_png, mode=ImageReadMode.GRAY))
    return _LIBPNG[0]


def prefer_libpng() -> None:
    """Import torchvision (about a second) so that :func:`decode_blobs` may use libpng."""
    try:
        import torchvision.io  # noqa: F401
    except ImportError:
        log.debug("torchvision.io is not available: decoding PNGs with Pillow")


def _decode_libpng(data: bytes) -> np.ndarray | None:
    decoder = _libpng()
    if decoder is None:
        return None
    try:
        image = decoder(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    except (RuntimeError, ValueError):
        return None  # Pillow gives the precise reason
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 1:
        return None  # 16-bit and other rare kinds: Pillow converts them
    return image[0].numpy()


def _decode_unfiltered_grey(data: bytes) -> np.ndarray | None:
    """Decode the simplest PNGs (8-bit grey, not interlaced, no row filters) without Pillow.

    That is what ``loaders.letters`` writes, and it is about 4× faster than ``Image.open``
    for 28×28 images. Anything else returns ``None`` and goes through Pillow.
    """
    if data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if depth != 8 or color != 0 or interlace != 0:
        return None
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
    try:
        raw = zlib.decompress(b"".join(parts))
    except zlib.error:
        return None  # Pillow gives the precise reason
    if len(raw) != height * (width + 1):
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():  # some row is filtered (Sub/Up/Average/Paeth): leave it to Pillow
        return None
    return rows[:, 1:]


def decode_blobs(blobs: list[bytes], shape: Shape | None) -> ChunkResult:
    """Decode a chunk of PNG byte strings.

    Args:
        blobs: the PNG files' bytes.
        shape: the required ``(H, W)``; ``None`` takes the first readable image's shape.

    Returns:
        ``(images, reasons, shape)``: the readable images stacked ``[k, H, W]``, one reason per
        blob (``None`` for the readable ones, in order), and the shape used.
    """
    rows: list[np.ndarray] = []
    reasons: list[str | None] = []
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its image decoders; Pillow takes over once they go.
        warnings.simplefilter("ignore", DeprecationWarning)
        for data in blobs:
            array, reason = decode_png(data, shape=shape, libpng=True)
            if array is None:
                reasons.append(reason)
                continue
            if shape is None:
                shape = (int(array.shape[0]), int(array.shape[1]))
            rows.append(array)
            reasons.append(None)
    if rows:
        images = np.stack(rows)
    else:
        images = np.empty((0, *(shape or (0, 0))), dtype=np.uint8)
    return images, reasons, shape


def decode_files(root: str, relpaths: list[str], shape: Shape | None) -> ChunkResult:
    """Read and decode a chunk of files below ``root`` (see :func:`decode_blobs`)."""
    blobs = []
    for rel in relpaths:
        try:
            blobs.append(Path(root, rel).read_bytes())
        except OSError as err:  # unreadable file: an empty blob reports it below
            log.debug("cannot read %s: %s", rel, err)
            blobs.append(b"")
    return decode_blobs(blobs, shape)


def run_ordered(
    fn: Callable[..., ChunkResult],
    tasks: Iterable[tuple[Any, ...]],
    *,
    workers: int,
    window: int = 4,
) -> Iterator[ChunkResult]:
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
    with context.Pool(workers) as pool:
        pending: deque[Any] = deque()
        for task in tasks:
            pending.append(pool.apply_async(fn, task))
            if len(pending) >= window * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def default_workers() -> int:
    """Return the number of decoding processes to use: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)


def image_class(name: str) -> str | None:
    """Return the class of a ``[...]/CLASS/*.png`` member name, or ``None`` if it is not one.

    Hidden files and folders (``.x``) and macOS metadata (``__MACOSX``) are not images.
    Plain string operations: this runs once per member of archives with 500k members.

    Example:
        >>> image_class("./notMNIST_small/A/x.png"), image_class("README.png")
        ('A', None)
    """
    if not name[-4:].lower() == ".png":
        return None
    parts = [p for p in name.split("/") if p and p != "."]
    if len(parts) < 2 or any(p[0] == "." or p == "__MACOSX" for p in parts):
        return None
    return parts[-2]


def iter_tar_chunks(
    archive: str | os.PathLike[str], *, chunk_size: int
) -> Iterator[tuple[list[str], list[bytes]]]:
    """Stream the ``CLASS/*.png`` members of a tar archive in chunks, without extracting it.

    Args:
        archive: a ``.tar``, ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz`` file.
        chunk_size: members per chunk.

    Yields:
        ``(names, blobs)``: member names and their bytes.
    """
    names: list[str] = []
    blobs: list[bytes] = []
    for name, data in iter_tar_files(archive):
        if image_class(name) is None:
            continue
        names.append(name)
        blobs.append(data)
        if len(names) >= chunk_size:
            yield names, blobs
            names, blobs = [], []
    if names:
        yield names, blobs


_COMPRESSED = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def _open_decompressed(path: Path) -> IO[bytes]:
    with open(path, "rb") as handle:
        magic = handle.read(6)
    for prefix, opener in _COMPRESSED:
        if magic.startswith(prefix):
            return cast(IO[bytes], opener(path, "rb"))
    return open(path, "rb")


def _octal(field: bytes, archive: Path) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for big numbers
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError as err:
        raise DataFormatError(
            f"{archive}: expected an octal size in a tar header but got {field!r}; the archive "
            "is corrupt: delete it and download it again"
        ) from err


def iter_tar_files(archive: str | os.PathLike[str]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, bytes)`` of each regular file of a (compressed) tar archive, in order.

    A minimal streaming reader (ustar, GNU long names, pax ``path``), several times faster
    than :mod:`tarfile` per member; with millions of small members that parsing dominates.
    Nothing is written to disk, so no path is ever trusted.

    Raises:
        DataFormatError: the archive is truncated or a header is corrupt.
    """
    path = Path(archive)
    with _open_decompressed(path) as raw:
        # typeshed wants a raw stream; any readable binary file object works here.
        handle = io.BufferedReader(raw, buffer_size=1 << 20) if not isinstance(  # type: ignore[type-var]
            raw, io.BufferedReader) else raw
        long_name: str | None = None
        try:
            while True:
                header = handle.read(512)
                if len(header) < 512 or header.count(0) == 512:
                    return
                size = _octal(header[124:136], path)
                padded = (size + 511) & ~511
                body = handle.read(padded)
                if len(body) < padded:
                    raise DataFormatError(f"{path}: the tar archive is truncated; delete it "
                                          "and download it again")
                kind = header[156:157]
                if kind == b"L":
                    long_name = body[:size].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                    continue
                if kind == b"x":
                    long_name = _pax_path(body[:size]) or long_name
                    continue
                if kind not in (b"0", b"\0", b"7"):
                    long_name = None
                    continue
                name = long_name or _ustar_name(header)
                long_name = None
                yield name, bytes(body[:size])
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as err:
            raise DataFormatError(f"{path}: cannot read the archive ({err}); it is corrupt or "
                                  "truncated: delete it and download it again") from err


def _ustar_name(header: bytes) -> str:
    name = header[:100].split(b"\0", 1)[0]
    if header[257:262] == b"ustar":
        prefix = header[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "surrogateescape")


def _pax_path(records: bytes) -> str | None:
    for line in records.split(b"\n"):
        _, _, record = line.partition(b" ")
        if record.startswith(b"path="):
            return record[5:].decode("utf-8", "surrogateescape")
    return None
