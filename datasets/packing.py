"""Build image caches from a ``CLASS/image`` folder or a tar/zip archive of one.

(A cache made of rows of another, a split, is :func:`datasets.packed.pack_subset`.)

Decoding runs in a process pool (:func:`datasets.decode.run_ordered`) in chunks; each chunk is
appended to the cache file at once, so memory stays bounded however many images there are.
Which store is built follows :class:`PackOptions`: ``size=`` gives the fixed-size store,
``max_side=`` or ``store="variable"`` the variable-size one, and otherwise ("auto") the
fixed-size store while every image has the same size, the variable-size one as soon as two
differ (the build starts over once). Rows are stored sorted by class, then name. Unreadable
images are skipped and listed in the manifest with their reason; noteworthy ones (an animated
GIF's first frame) in ``notes``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from datasets.archivemembers import iter_members, member_class
from datasets.decode import (
    STATS_NOTE,
    Chunk,
    ChunkOptions,
    decode_chunk,
    default_workers,
    prefer_libpng,
    run_ordered,
)
from datasets.errors import DataFormatError, DatasetNotFoundError
from datasets.folders import FolderScan, gc_paused, scan_folder, shown
from datasets.imagedecode import DecodeOptions
from datasets.imagestore import VariableImages, VariableWriter, permute_blobs
from datasets.packed import (
    FORMAT_VERSION,
    IMAGES_FILE,
    LABELS_FILE,
    PackedImages,
    PackWriter,
    ensure_packed,
    read_manifest,
    write_manifest,
)
from datasets.packoptions import PackOptions

log = logging.getLogger(__name__)

NAMES_FILE = "names.txt"  # the rows' relative paths / member names, "\0"-separated
CHUNK_SIZE = 256  # the most images in one chunk
FIRST_CHUNK = 64  # the first chunk, decoded here and timed before any pool starts: kept small
CHUNKS_PER_WORKER = 8  # smaller chunks for small jobs, so that the workers finish together
POOL_MIN_S = 0.5  # a process pool pays off only for more decoding work than this
DEFAULT_OPTIONS = PackOptions()
BIG_JOB = 100_000  # from this many images on, importing torchvision for libpng pays off
FAST_ITEM_S = 12e-6  # images decoding faster than this are not worth a process pool

Store = PackedImages | VariableImages


class _MixedSizes(Exception):
    """Images of different sizes met while building the fixed-size store in ``auto``."""


def open_store(path: Path) -> Store:
    """Open a finished cache folder as the store its manifest names."""
    if read_manifest(path).get("store") == "variable":
        return VariableImages(path)
    return PackedImages(path)


def folder_fingerprint(root: Path, scan: FolderScan, options: PackOptions) -> str:
    """Hash what a folder's cache depends on (its key).

    That is the resolved ``root`` (two copies with equal names, sizes and mtimes are two
    caches), the class list (``allow_empty=True`` and a new empty class folder), each file's
    relative path and :data:`datasets.folders.STAT_FIELDS` (a file rewritten in place with its
    mtime put back still gets a new ctime; a copy, a new inode), the names skipped, and the
    options. The stats are hashed as one array, the paths as one string: no per-file
    Python work.

    Raises:
        ValueError: ``scan`` was made without ``with_stats=True``.
    """
    if scan.stats is None:
        raise ValueError("folder_fingerprint needs scan_folder(..., with_stats=True)")
    digest = hashlib.sha256(f"dataferry-packed-v{FORMAT_VERSION}:{options.key()}\n".encode())
    # scan.paths are root + relative path: with the root hashed first, the same information
    for texts in ([str(root)], scan.classes, scan.paths, [rel for rel, _ in scan.skipped]):
        digest.update("\0".join(texts).encode("utf-8", "surrogateescape") + b"\n")
    digest.update(np.ascontiguousarray(scan.stats, dtype="<i8").tobytes())
    return digest.hexdigest()[:32]


def file_fingerprint(path: Path) -> str:
    """Hash a file's resolved path and :data:`datasets.folders.STAT_FIELDS` (it is not read).

    Raises:
        DatasetNotFoundError: ``path`` cannot be read.
    """
    try:
        path = path.resolve()
        st = path.stat()
    except OSError as err:
        raise DatasetNotFoundError(
            f"expected a file at {shown(str(path))} but cannot read it ({err.strerror or err}); "
            "check the path "
            "or download the dataset first"
        ) from err
    text = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def archive_fingerprint(path: Path, options: PackOptions) -> str:
    """Hash an archive's :func:`file_fingerprint` and the options (the archive is not read)."""
    text = f"dataferry-packed-v{FORMAT_VERSION}:{options.key()}:archive\n{file_fingerprint(path)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def planned_bytes(scan: FolderScan, options: PackOptions) -> int:
    """A lower bound of the cache's size: ``N x H x W`` pixels (one byte each, three for
    ``mode="RGB"``) for ``size=``, else the files' own sizes (the variable store keeps them)."""
    if options.size is not None:
        channels = 3 if options.mode == "RGB" else 1
        return len(scan.paths) * options.size[0] * options.size[1] * channels
    return int(scan.stats[:, 0].sum()) if scan.stats is not None and len(scan.stats) else 0


def pack_folder(
    root: str | os.PathLike[str],
    options: PackOptions = DEFAULT_OPTIONS,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    allow_empty: bool = False,
    is_valid_file: Callable[[str], bool] | None = None,
) -> Store:
    """Pack a ``CLASS/image`` folder (or reuse its cache when folder and options are unchanged).

    Args:
        root: the folder with one sub-folder per class.
        options: see :class:`PackOptions`.
        cache_dir: the cache home; the cache goes to ``cache_root(cache_dir)/packed/<key>``.
        workers: decoding processes; ``None`` uses every available CPU for big folders.
        allow_empty: keep class folders without images (as torchvision's ``ImageFolder``).
        is_valid_file: ``path -> bool`` choosing files (default: every non-hidden file).

    Returns:
        The opened store (:class:`PackedImages` or :class:`VariableImages`).
    """
    root = Path(root).resolve()
    with gc_paused():  # a warm open is this scan, one stat per file and a hash
        scan = scan_folder(root, allow_empty=allow_empty, is_valid_file=is_valid_file,
                           by_content=is_valid_file is None, with_stats=True)
        key = "folder-" + folder_fingerprint(root, scan, options)
    names: list[str] = []

    def source() -> Iterator[tuple[str, bytes | str]]:
        return ((rel, rel) for rel in names)

    def build(folder: Path) -> None:
        names[:] = scan.relpaths()
        meta = {"type": "folder", "path": str(root), "fingerprint": key}
        _build(folder, source, str(root), options, meta, classes=scan.classes,
               skipped=scan.skipped, workers=workers, big=len(names) >= BIG_JOB,
               count=len(names))

    return ensure_packed(key, build, cache_dir=cache_dir, opener=open_store,
                         size_bytes=planned_bytes(scan, options))


def pack_archive(
    path: str | os.PathLike[str],
    options: PackOptions = DEFAULT_OPTIONS,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> Store:
    """Pack the image members of a tar or zip archive without extracting it.

    The class of a member is the name of the folder that holds it (``notMNIST_small/A/x.png``
    is class ``A``); rows are stored sorted by class, then member name, as :func:`pack_folder`
    stores the extracted folder. A member name met twice is refused, as extraction refuses it.

    Args:
        path: a tar (plain, ``.gz``, ``.bz2``, ``.xz``) or zip archive.
        options: see :class:`PackOptions`.
        cache_dir: the cache home.
        workers: decoding processes; ``None`` times the first chunk and uses every CPU
            unless images decode faster than they could be shipped to another process.

    Returns:
        The opened store.

    Raises:
        DataFormatError: the archive is corrupt, names a member twice, or holds no image in a
            class folder.
    """
    path = Path(path).resolve()
    key = "archive-" + archive_fingerprint(path, options)

    def build(folder: Path) -> None:
        meta = {"type": "archive", "path": str(path), "fingerprint": key}
        _build(folder, lambda: iter_members(path), None, options, meta, classes=None,
               skipped=[], workers=workers, big=path.stat().st_size >= (64 << 20), count=None)

    # the encoded members (the variable store) take about the archive's size; the number of
    # images a fixed size= store needs is known only once the archive is read
    planned = path.stat().st_size if options.size is None else 0
    return ensure_packed(key, build, cache_dir=cache_dir, opener=open_store, size_bytes=planned)


def _build(folder: Path, source: Callable[[], Iterator[tuple[str, bytes | str]]],
           root: str | None, options: PackOptions, meta: dict[str, Any], *,
           classes: list[str] | None, skipped: list[list[str]], workers: int | None,
           big: bool, count: int | None) -> None:
    """Build the store ``options.kind`` asks for; ``auto`` starts over as variable if needed."""
    if options.kind != "variable":
        try:
            _Builder(folder, options, "fixed", meta, classes, skipped).run(
                source(), root, workers, big, count)
            return
        except _MixedSizes as err:
            if options.kind == "fixed":  # cannot happen: every image is resized
                raise DataFormatError(
                    f"images of different sizes in {shown(meta['path'])}") from err
            log.info("%s holds images of different sizes (%s): building the variable-size "
                     "store instead", meta["path"], err)
            for entry in folder.iterdir():
                entry.unlink() if entry.is_file() else shutil.rmtree(entry)
    _Builder(folder, options, "variable", meta, classes, skipped).run(
        source(), root, workers, big, count)


class _Builder:
    """One pass over the source: decode chunks, append them, then order rows and finish."""

    def __init__(self, folder: Path, options: PackOptions, store: str, meta: dict[str, Any],
                 classes: list[str] | None, skipped: list[list[str]]) -> None:
        self.folder, self.options, self.store, self.meta = folder, options, store, meta
        self.fixed_classes = classes
        self.skipped = [list(s) for s in skipped]
        self.notes: list[list[str]] = []
        self.names: list[str] = []  # of the rows written, in order
        self.class_ids: dict[str, int] = {c: i for i, c in enumerate(classes or [])}
        # a folder's class is the first part of the relative path; an archive member's, the
        # folder that holds it
        self.class_of = _first_part if classes is not None else _member_class
        self.raw_labels: list[int] = []
        self.sizes: list[tuple[int, int]] = []
        self.channels = 1
        decode = DecodeOptions(mode=options.mode, size=options.size, resize=options.resize)
        self.chunk_options = ChunkOptions(decode=decode, store=store, max_side=options.max_side)
        self.writer: PackWriter | VariableWriter = (
            PackWriter(folder) if store == "fixed" else VariableWriter(folder))
        self.chunk_size = min(FIRST_CHUNK, CHUNK_SIZE)
        self.spill = False  # variable store in a pool: workers write blobs to part files
        self.spilled = 0  # part files named so far

    def run(self, members: Iterator[tuple[str, bytes | str]], root: str | None,
            workers: int | None, big: bool, count: int | None) -> None:
        """Decode and append every chunk; ``workers=None`` times the first chunk and uses a
        pool of every CPU when the rest (``count`` items, unknown for archives) is worth it."""
        started = time.perf_counter()
        pending: deque[list[str]] = deque()
        tasks = self._tasks(members, root, pending)
        try:
            first = next(tasks, None)
            if first is not None:
                t0 = time.perf_counter()
                result = decode_chunk(*first)
                n = max(1, len(result.reasons))
                per_item_s = (time.perf_counter() - t0) / n
                # This process still reads (an archive: parses tar headers) every item while
                # the pool decodes: a pool pays off only if decoding costs more than that.
                read_item_s = (t0 - started) / n
                if per_item_s >= FAST_ITEM_S and big:
                    prefer_libpng()  # before the pool forks, so workers inherit it
                if workers is None:
                    rest_s = per_item_s * ((count or 1 << 30) - len(result.reasons))
                    slow = per_item_s >= FAST_ITEM_S + read_item_s and rest_s >= POOL_MIN_S
                    workers = default_workers() if slow else 0
                self.chunk_size = chunk_size(count, workers)
                self.spill = workers > 1 and self.store == "variable"
                log.debug("first chunk: %.1f us decoding, %.1f us reading per item; %d worker(s), "
                          "chunks of %d", per_item_s * 1e6, read_item_s * 1e6, workers,
                          self.chunk_size)
                self._append(pending.popleft(), result)
                for chunk in run_ordered(decode_chunk, tasks, workers=workers):
                    self._append(pending.popleft(), chunk)
        finally:
            self.writer.close()
        self._finish(started)

    def _tasks(self, members: Iterator[tuple[str, bytes | str]], root: str | None,
               pending: deque[list[str]]) -> Iterator[tuple[Any, ...]]:
        names: list[str] = []
        items: list[bytes | str] = []
        for name, item in members:
            names.append(name)
            items.append(item)
            if len(names) >= self.chunk_size:
                pending.append(names)
                yield root, items, self.chunk_options, self._spill_path()
                names, items = [], []
        if names:
            pending.append(names)
            yield root, items, self.chunk_options, self._spill_path()

    def _spill_path(self) -> str | None:
        """A part file in the (temporary) cache folder, one per chunk."""
        self.spilled += 1
        return str(self.folder / f"chunk-{self.spilled}.part") if self.spill else None

    def _append(self, names: list[str], chunk: Chunk) -> None:
        if any(chunk.reasons) or any(chunk.notes):
            good = [n for n, r in zip(names, chunk.reasons, strict=True) if r is None]
            self.skipped += [[n, r] for n, r in zip(names, chunk.reasons, strict=True) if r]
            self.notes += [[n, note] for n, note, r in zip(names, chunk.notes, chunk.reasons,
                                                            strict=True) if note and r is None]
        else:
            good = names
        labels = np.fromiter((self._label(n) for n in good), dtype=np.int64, count=len(good))
        self.channels = max(self.channels, chunk.channels)
        if isinstance(self.writer, PackWriter):
            if chunk.images is None or (len(good) and self.writer.image_shape not in (
                    None, tuple(chunk.images.shape[1:3]))):
                raise _MixedSizes(f"{self.writer.image_shape} and others in {good[0]!r}…")
            self.writer.append(chunk.images, labels)
        else:
            sizes = np.array(chunk.sizes, dtype=np.int32)
            if chunk.spill is not None:
                self.writer.append_file(chunk.spill, chunk.lengths, labels, sizes)
            else:
                self.writer.append(chunk.blobs, labels, sizes)
            self.writer.stats.add_sums(chunk.sums, chunk.squares, chunk.pixels)
        self.names += good
        self.raw_labels += labels.tolist()
        self.sizes += chunk.sizes

    def _label(self, name: str) -> int:
        cls = self.class_of(name)
        label = self.class_ids.get(cls)
        if label is None:
            label = self.class_ids[cls] = len(self.class_ids)
        return label

    def _finish(self, started: float) -> None:
        if not self.names:
            raise DataFormatError(_no_image_message(self.meta["path"], self.skipped))
        seconds = time.perf_counter() - started
        if self.skipped:
            log.warning("skipped %d unreadable image(s) of %s (listed in the manifest); first: "
                        "%s: %s", len(self.skipped), self.meta["path"], shown(self.skipped[0][0]),
                        self.skipped[0][1])
        mode = self.options.mode or ("RGB" if self.channels == 3 else "L")
        manifest = {
            "kind": "images",
            "source": self.meta,
            "options": asdict(self.options),
            "skipped": sorted(self.skipped),
            "num_skipped": len(self.skipped),
            "notes": sorted(self.notes),
            "build_seconds": round(seconds, 3),
            "images_per_s": round((len(self.names) + len(self.skipped)) / seconds, 1)
            if seconds else None,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if isinstance(self.writer, PackWriter):
            self.writer.finish(manifest, image_shape=None)
        else:
            self.writer.finish({**manifest, "stats_from": STATS_NOTE}, mode=mode)
        _order_rows(self.folder, self.store, self.names, self.raw_labels, self.class_ids,
                    self.fixed_classes)


def chunk_size(count: int | None, workers: int) -> int:
    """Images per chunk after the first: ``CHUNK_SIZE``, or fewer so each worker gets several.

    Example:
        >>> chunk_size(1_245, 2), chunk_size(10_000, 2), chunk_size(None, 2), chunk_size(500, 0)
        (77, 256, 256, 256)
    """
    if workers <= 1 or count is None:
        return CHUNK_SIZE
    return min(CHUNK_SIZE, max(32, count // (workers * CHUNKS_PER_WORKER)))


def _no_image_message(path: str, skipped: list[list[str]]) -> str:
    """Why ``path`` packs to nothing: no image member at all, or every file unreadable."""
    if not skipped:
        return (f"expected images in class folders ([top/]CLASS/image) in {shown(path)} but found "
                "none; check that it is an image archive or folder")
    first = "; ".join(f"{shown(name)}: {reason}" for name, reason in sorted(skipped)[:3])
    return (f"found no readable image in {shown(path)}: all {len(skipped)} file(s) skipped "
            f"(first: {first}); put decodable images in its CLASS/ folders")


def _first_part(name: str) -> str:
    return name.split("/", 1)[0]


def _member_class(name: str) -> str:
    return member_class(name) or _first_part(name)


def _order_rows(folder: Path, store: str, names: list[str], raw_labels: list[int],
                class_ids: dict[str, int], fixed_classes: list[str] | None) -> None:
    """Relabel rows with sorted class indices; store them sorted by (class, name).

    Raises:
        DataFormatError: a member name appears twice (refused, as extraction refuses it).
    """
    manifest = read_manifest(folder)
    classes = fixed_classes if fixed_classes is not None else sorted(class_ids)
    remap = np.empty(max(1, len(class_ids)), dtype=np.int64)
    for name, raw in class_ids.items():
        remap[raw] = classes.index(name)
    labels = remap[np.asarray(raw_labels, dtype=np.int64)] if raw_labels else np.zeros(0, int)
    seen: set[str] = set()
    for name in names:
        if name in seen:  # loaders.tar_stream's rule, so that extraction and packing agree
            raise DataFormatError(
                f"{shown(manifest['source']['path'])}: member {name!r} appears twice (rule: each name "
                "once, so that extraction and packing agree); re-create the archive without "
                "the duplicate")
        seen.add(name)
    rows = sorted(range(len(names)), key=lambda r: (labels[r], names[r]))
    order = np.asarray(rows, dtype=np.int64)
    if not np.array_equal(order, np.arange(len(names))):
        if store == "fixed":
            _permute_rows(folder / IMAGES_FILE, order, manifest)
        else:
            permute_blobs(folder, order)
            manifest["count"] = len(order)
    labels = labels[order] if len(order) else labels
    labels.astype("<i8").tofile(folder / LABELS_FILE)
    counts = np.bincount(labels, minlength=len(classes))
    manifest["classes"] = classes
    manifest["class_to_idx"] = {c: i for i, c in enumerate(classes)}
    (folder / NAMES_FILE).write_text("\0".join(names[r] for r in rows), encoding="utf-8",
                                     errors="surrogateescape")
    manifest["skipped"] = sorted(manifest["skipped"])
    manifest["num_skipped"] = len(manifest["skipped"])
    manifest["counts"] = {name: int(counts[i]) for i, name in enumerate(classes)}
    write_manifest(folder, manifest)


def _permute_rows(path: Path, order: np.ndarray, manifest: dict[str, Any]) -> None:
    """Rewrite ``path`` with its rows in ``order``, a bounded chunk at a time (``os.pread``)."""
    _, h, w, c = manifest["shape"]
    row_bytes = h * w * c
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
    manifest["shape"][0] = len(order)
