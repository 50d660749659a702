"""Build packed caches from a ``CLASS/*.png`` folder or a tar archive of one.

(A cache made of rows of another, a split, is :func:`datasets.packed.pack_subset`.)

Decoding runs in a process pool (:func:`datasets.decode.run_ordered`) in chunks; each chunk
comes back as one ``uint8`` array that is appended to the cache file at once, so memory stays
bounded however many images there are. Unreadable images are skipped and listed in the
manifest with their reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from datasets.decode import (
    ChunkResult,
    Shape,
    decode_blobs,
    decode_files,
    default_workers,
    image_class,
    iter_tar_chunks,
    prefer_libpng,
    run_ordered,
)
from datasets.errors import DataFormatError, DatasetNotFoundError
from datasets.packed import FORMAT_VERSION, PackedImages, PackWriter, ensure_packed

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024
SMALL_JOB = 4096  # fewer images than this are decoded in-process: a pool costs more
BIG_JOB = 100_000  # from this many images on, importing torchvision for libpng pays off
BIG_ARCHIVE_BYTES = 64 << 20  # the same for an archive, whose image count is not known yet
FAST_ITEM_S = 12e-6  # images decoding faster than this are not worth a process pool


def scan_folder(root: str | os.PathLike[str]) -> tuple[list[str], list[tuple[str, int, int]]]:
    """List a ``CLASS/*.png`` folder.

    Returns:
        ``(classes, files)``: the sorted class folder names, and ``(relative path, size,
        mtime_ns)`` of every ``.png`` file, sorted by class then name.

    Raises:
        DatasetNotFoundError: ``root`` is not a folder or holds no class folder.
    """
    root = Path(root)
    if root.is_file():
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/*.png images at {root} but it is a file; for a tar "
            "archive of such a folder use ImageFolderDataset.from_archive(path)"
        )
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/*.png images at {root} but it does not exist; "
            "check the path or download the dataset first"
        )
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DatasetNotFoundError(
            f"expected class folders (CLASS/*.png) in {root} but found none; point root at the "
            "folder that holds one sub-folder per class"
        )
    files: list[tuple[str, int, int]] = []
    for name in classes:
        entries = [
            e for e in os.scandir(root / name)
            if e.name.lower().endswith(".png") and not e.name.startswith(".") and e.is_file()
        ]
        for entry in sorted(entries, key=lambda e: e.name):
            st = entry.stat()
            files.append((f"{name}/{entry.name}", st.st_size, st.st_mtime_ns))
    empty = sorted(set(classes) - {rel.split("/", 1)[0] for rel, _, _ in files})
    if files and empty:
        log.warning("class folder(s) %s of %s hold no .png file; they are kept as classes with "
                    "0 images (labels stay the index in the sorted folder names)",
                    ", ".join(empty[:10]), root)
    if not files:
        nested = [root / c for c in classes if any(p.is_dir() for p in (root / c).iterdir())]
        hint = (f"point root at {nested[0]}, which holds the class folders" if len(nested) == 1
                else "point root at the folder that holds one sub-folder per class")
        raise DatasetNotFoundError(
            f"expected CLASS/*.png images in {root} but its folders hold no .png file; {hint}"
        )
    return classes, files


def folder_fingerprint(files: Sequence[tuple[str, int, int]]) -> str:
    """Hash the relative paths, sizes and mtimes of a folder's files (see :func:`scan_folder`)."""
    digest = hashlib.sha256(f"dataferry-packed-v{FORMAT_VERSION}:folder\n".encode())
    for rel, size, mtime_ns in files:
        digest.update(f"{rel}\0{size}\0{mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def archive_fingerprint(path: str | os.PathLike[str]) -> str:
    """Hash an archive's name, size and mtime (cheap: the archive is not read)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as err:
        raise DatasetNotFoundError(
            f"expected an image archive at {path} but cannot read it ({err}); check the path "
            "or download the dataset first"
        ) from err
    text = f"dataferry-packed-v{FORMAT_VERSION}:tar\n{path.name}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def pack_folder(
    root: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> PackedImages:
    """Pack a ``CLASS/*.png`` folder (or reuse its cache when the folder has not changed).

    Args:
        root: the folder with one sub-folder per class.
        cache_dir: the cache home; the cache goes to ``cache_root(cache_dir)/packed/<fp>``.
        workers: decoding processes; ``None`` uses every available CPU for big folders.

    Returns:
        The opened cache.
    """
    root = Path(root).resolve()
    classes, files = scan_folder(root)
    key = "folder-" + folder_fingerprint(files)

    def build(folder: Path) -> None:
        labels = np.array([classes.index(rel.split("/", 1)[0]) for rel, _, _ in files])
        names = [rel for rel, _, _ in files]
        n_workers = _workers(workers, len(files))
        tasks = (
            (str(root), names[i : i + CHUNK_SIZE], None)
            for i in range(0, len(names), CHUNK_SIZE)
        )
        source = {"type": "folder", "path": str(root), "fingerprint": key}
        _write_chunks(folder, classes, names, labels, tasks, decode_files, n_workers, source,
                      big=len(files) >= BIG_JOB)

    return ensure_packed(key, build, cache_dir=cache_dir)


def pack_archive(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> PackedImages:
    """Pack the ``CLASS/*.png`` members of a tar archive without extracting it.

    Members are streamed through :mod:`tarfile`; the class of a member is the name of the
    folder that holds it (``notMNIST_small/A/x.png`` is class ``A``). The rows are stored
    sorted by class, then member name, as :func:`pack_folder` stores the extracted folder.

    Args:
        path: a ``.tar``, ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz`` archive.
        cache_dir: the cache home.
        workers: decoding processes; ``None`` times the first chunk and uses every CPU
            unless images decode faster than they could be shipped to another process.

    Returns:
        The opened cache.
    """
    path = Path(path).resolve()
    key = "tar-" + archive_fingerprint(path)

    def build(folder: Path) -> None:
        _build_from_archive(path, folder, key, workers)

    return ensure_packed(key, build, cache_dir=cache_dir)


def _workers(requested: int | None, count: int) -> int | None:
    if requested is not None:
        return requested
    return 0 if count < SMALL_JOB else None  # None: decided after timing the first chunk


def _write_chunks(
    folder: Path,
    classes: list[str],
    names: Sequence[str],
    labels: np.ndarray | _GrowingArray,
    tasks: Iterable[tuple[Any, ...]],
    fn: Any,
    n_workers: int | None,
    source: dict[str, Any],
    *,
    big: bool = False,
) -> None:
    """Decode chunks (``names``/``labels`` give their items in order) and write the cache.

    ``big`` jobs whose images are slow to decode (filtered PNGs) import torchvision for its
    libpng decoder (about a second and 160 MiB, repaid over 100,000 images).
    """
    started = time.perf_counter()
    writer = PackWriter(folder)
    skipped: list[list[str]] = []
    shape: Shape | None = None
    position = 0
    tasks = iter(tasks)
    try:
        first = next(tasks, None)
        if first is not None:  # decode the first chunk here to learn the image size
            chunk_started = time.perf_counter()
            first_result = fn(*first)
            per_item_s = (time.perf_counter() - chunk_started) / max(1, len(first_result[1]))
            if per_item_s >= FAST_ITEM_S and big:
                prefer_libpng()  # before the pool forks, so workers inherit it
            if n_workers is None:
                # Shipping bytes to another process costs about FAST_ITEM_S per image: for
                # images that decode faster than that (unfiltered PNGs), one process wins.
                n_workers = 0 if per_item_s < FAST_ITEM_S else default_workers()
            log.debug("first chunk: %.1f us per image; %d worker(s)", per_item_s * 1e6,
                      n_workers)
            results: Iterator[ChunkResult] = _chain(first_result, run_ordered(
                fn, _with_shape(tasks, lambda: shape), workers=n_workers))
            for images, reasons, chunk_shape in results:
                shape = shape or chunk_shape
                good = [r is None for r in reasons]
                chunk_labels = labels[position : position + len(reasons)]
                writer.append(images, chunk_labels[np.asarray(good, dtype=bool)])
                for offset, reason in enumerate(reasons):
                    if reason is not None:
                        skipped.append([names[position + offset], reason])
                position += len(reasons)
    finally:
        writer.close()
    _finish(writer, classes, skipped, source, shape, started)


def _chain(first: ChunkResult, rest: Iterator[ChunkResult]) -> Iterator[ChunkResult]:
    yield first
    yield from rest


def _with_shape(tasks: Iterator[tuple[Any, ...]], shape: Any) -> Iterator[tuple[Any, ...]]:
    """Replace each task's last argument (the shape) with the one learnt from the first chunk."""
    for task in tasks:
        yield (*task[:-1], shape())


def _finish(
    writer: PackWriter,
    classes: list[str],
    skipped: list[list[str]],
    source: dict[str, Any],
    shape: Shape | None,
    started: float,
) -> None:
    labels = np.fromfile(writer.folder / "labels.i64", dtype="<i8")
    counts = Counter(labels.tolist())
    seconds = time.perf_counter() - started
    if skipped:
        log.warning(
            "skipped %d unreadable image(s) of %s (listed in the manifest); first: %s: %s",
            len(skipped), source.get("path"), skipped[0][0], skipped[0][1],
        )
    manifest = {
        "kind": "images",
        "source": source,
        "classes": classes,
        "counts": {name: counts.get(i, 0) for i, name in enumerate(classes)},
        "skipped": skipped,
        "num_skipped": len(skipped),
        "build_seconds": round(seconds, 3),
        "images_per_s": round((writer.count + len(skipped)) / seconds, 1) if seconds else None,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    writer.finish(manifest, image_shape=shape)


def _build_from_archive(path: Path, folder: Path, key: str, n_workers: int | None) -> None:
    """Stream an archive into ``folder``, then reorder rows by (class, name) if needed."""
    class_ids: dict[str, int] = {}
    names: list[str] = []
    raw_labels: list[int] = []

    def tasks() -> Iterator[tuple[list[bytes], None]]:
        for chunk_names, blobs in iter_tar_chunks(path, chunk_size=CHUNK_SIZE):
            for name in chunk_names:
                cls = image_class(name) or ""
                raw_labels.append(class_ids.setdefault(cls, len(class_ids)))
            names.extend(chunk_names)
            yield blobs, None

    source = {"type": "tar", "path": str(path), "fingerprint": key}
    # names/labels grow as the archive is read; _write_chunks reads them after each chunk.
    _write_chunks(folder, [], _Growing(names), _GrowingArray(raw_labels), tasks(), decode_blobs,
                  n_workers, source, big=path.stat().st_size >= BIG_ARCHIVE_BYTES)
    if not names:
        raise DataFormatError(
            f"expected CLASS/*.png members in the archive {path} but found none; check that "
            "it is an image archive laid out <top>/<class>/<image>.png"
        )
    _sort_by_class(folder, class_ids, names, np.asarray(raw_labels, dtype=np.int64))


class _Growing(Sequence[str]):
    """A read-through view of a list that is still being filled."""

    def __init__(self, items: list[str]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        return self._items[index]


class _GrowingArray:
    """Slice a growing list of ints as a numpy array."""

    def __init__(self, items: list[int]) -> None:
        self._items = items

    def __getitem__(self, index: slice) -> np.ndarray:
        return np.asarray(self._items[index], dtype=np.int64)


def _sort_by_class(folder: Path, class_ids: dict[str, int], names: list[str],
                   raw_labels: np.ndarray) -> None:
    """Relabel rows with sorted class indices and store them sorted by (class, name).

    Memory: one index list besides ``names`` (no per-row tuples), then numpy arrays.
    """
    from datasets.packed import IMAGES_FILE, LABELS_FILE, read_manifest, write_manifest

    manifest = read_manifest(folder)
    skipped_names = {name for name, _ in manifest["skipped"]}
    classes = sorted(class_ids)
    remap = np.empty(len(class_ids), dtype=np.int64)
    for name, raw in class_ids.items():
        remap[raw] = classes.index(name)
    keep = np.fromiter((name not in skipped_names for name in names), dtype=bool,
                       count=len(names))
    row_of = np.cumsum(keep) - 1  # member position -> row written in the cache
    by_name = np.asarray(sorted(range(len(names)), key=names.__getitem__), dtype=np.int64)
    by_name = by_name[keep[by_name]]
    all_labels = remap[raw_labels]
    order = row_of[by_name[np.argsort(all_labels[by_name], kind="stable")]]
    labels = all_labels[keep]
    if not np.array_equal(order, np.arange(len(order))):
        _permute_rows(folder / IMAGES_FILE, order, tuple(manifest["shape"]))
    labels = labels[order]
    labels.astype("<i8").tofile(folder / LABELS_FILE)
    counts = np.bincount(labels, minlength=len(classes))
    manifest["classes"] = classes
    manifest["skipped"] = sorted(manifest["skipped"])
    manifest["counts"] = {name: int(counts[i]) for i, name in enumerate(classes)}
    write_manifest(folder, manifest)


def _permute_rows(path: Path, order: np.ndarray, shape: tuple[int, int, int]) -> None:
    """Rewrite ``path`` with its rows in ``order``, a bounded chunk at a time.

    Rows are read with ``os.pread`` rather than through a memory map, so the pages of the
    whole file never count in this process's resident memory.
    """
    row_bytes = shape[1] * shape[2]
    temp = path.with_suffix(".sorting")
    fd = os.open(path, os.O_RDONLY)
    try:
        with open(temp, "wb") as out:
            for start in range(0, len(order), 16384):
                rows = order[start : start + 16384].tolist()
                out.write(b"".join(os.pread(fd, row_bytes, row * row_bytes) for row in rows))
    finally:
        os.close(fd)
    os.replace(temp, path)
