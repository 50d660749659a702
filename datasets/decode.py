"""Decode PNG images into ``uint8`` arrays, one chunk at a time, in worker processes.

Every function here is a plain module-level function so that a ``multiprocessing`` pool can
run it. A chunk comes back as one ``uint8`` array ``[k, H, W]`` of the readable images plus one
reason per unreadable one, so the caller writes it straight into the packed file and never
holds per-image objects.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import tarfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Shape = tuple[int, int]
ChunkResult = tuple[np.ndarray, list[str | None], Shape | None]


def decode_png(data: bytes, *, shape: Shape | None = None) -> tuple[np.ndarray | None, str]:
    """Decode one PNG into a greyscale ``uint8`` array ``[H, W]``.

    Args:
        data: the file's bytes.
        shape: the ``(H, W)`` every image must have; ``None`` accepts any.

    Returns:
        ``(array, "")`` for a readable image, else ``(None, reason)`` with a short reason
        such as ``"empty file (0 bytes)"`` or ``"wrong size: expected 28x28 but got 32x32"``.
    """
    if not data:
        return None, "empty file (0 bytes)"
    if not data.startswith(PNG_SIGNATURE):
        return None, f"not a PNG: starts with {data[:8]!r}"
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
    for data in blobs:
        array, reason = decode_png(data, shape=shape)
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


def is_image_member(name: str) -> bool:
    """Return whether a path names a ``CLASS/*.png`` file (not hidden, not macOS metadata)."""
    path = PurePosixPath(name)
    if path.suffix.lower() != ".png" or len(path.parts) < 2:
        return False
    return not any(part.startswith(".") or part == "__MACOSX" for part in path.parts)


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
    with tarfile.open(archive, mode="r|*") as tar:
        for member in tar:
            if not member.isfile() or not is_image_member(member.name):
                continue
            handle = tar.extractfile(member)
            names.append(member.name)
            blobs.append(handle.read() if handle is not None else b"")
            if len(names) >= chunk_size:
                yield names, blobs
                names, blobs = [], []
    if names:
        yield names, blobs
