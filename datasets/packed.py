"""The packed cache: images as one memory-mapped ``uint8`` array, labels, and a manifest.

A packed cache is a folder ``cache_root()/packed/<key>/``. The fixed-size store holds::

    images.u8      raw uint8 pixels, C order, shape N x H x W x C (memory-mapped when read;
                   C = 1 for mode "L", 3 for "RGB")
    labels.i64     raw little-endian int64 labels, N of them
    manifest.json  format, store ("fixed"), shape [N, H, W, C], mode, classes, counts per
                   class, skipped files with reasons, source and fingerprint, build time

(The variable-size store, :mod:`datasets.imagestore`, keeps encoded files instead of pixels
and is built and published by the same :func:`ensure_packed`.)

It is built in a temporary folder beside the final one and moved into place with
``os.replace`` only when complete, under the file lock of :func:`loaders.lock.locked`
(``.KEY.lock`` beside it), so an interrupted build never leaves a
half cache and two processes that need the same cache build it once. :func:`pack_subset`
makes a cache of some rows of another (a split, contiguous and memory-mapped in turn).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from datasets.channelstats import ChannelStats
from datasets.errors import DatasetError, PackedCacheError
from datasets.superseded import report_superseded
from loaders.cache import cache_root
from loaders.errors import LockTimeoutError, StorageError
from loaders.lock import locked

log = logging.getLogger(__name__)

# a disk that cannot take what is written: full, over quota, mounted read-only
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})

Cache = TypeVar("Cache")

FORMAT_VERSION = 2  # 2: pixels N x H x W x C (1: N x H x W, grey only)
IMAGES_FILE = "images.u8"
LABELS_FILE = "labels.i64"
MANIFEST_FILE = "manifest.json"
LOCK_TIMEOUT_S = 6 * 3600.0


def packed_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder that holds every packed cache: ``cache_root(cache_dir)/packed``."""
    return cache_root(cache_dir) / "packed"


class PackedImages:
    """A complete packed cache on disk; arrays are opened lazily and memory-mapped.

    Args:
        path: the cache folder.

    Raises:
        PackedCacheError: the folder is not a complete cache of this format.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        shape = [int(v) for v in self.manifest["shape"]]
        if len(shape) != 4:
            raise PackedCacheError(f"packed cache {self.path} is not a fixed-size store "
                                   f"(shape {shape}); delete the folder to rebuild it")
        n, h, w, c = shape
        self.shape: tuple[int, int, int, int] = (n, h, w, c)
        _check_size(self.path / IMAGES_FILE, n * h * w * c)
        _check_size(self.path / LABELS_FILE, n * 8)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def mode(self) -> str:
        """``"L"`` (one channel) or ``"RGB"`` (three)."""
        return "L" if self.shape[3] == 1 else "RGB"

    def images(self) -> np.ndarray:
        """Map the pixels copy-on-write: ``uint8`` ``[N, H, W, C]``; writes never reach the file."""
        if self.shape[0] == 0:
            return np.zeros(self.shape, dtype=np.uint8)
        return np.memmap(self.path / IMAGES_FILE, dtype=np.uint8, mode="c", shape=self.shape)

    def labels(self) -> np.ndarray:
        """Read the labels: ``int64`` ``[N]`` (small: read into memory)."""
        return np.fromfile(self.path / LABELS_FILE, dtype="<i8").astype(np.int64, copy=False)

    def __repr__(self) -> str:
        return f"PackedImages({str(self.path)!r}, shape={self.shape})"


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and check a cache folder's manifest.

    Raises:
        PackedCacheError: missing, unreadable, or of another format version.
    """
    manifest_path = path / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PackedCacheError(
            f"cannot read the packed cache manifest {manifest_path}: {err}; "
            f"delete the folder {path} and load the dataset again to rebuild it"
        ) from err
    if manifest.get("format") != FORMAT_VERSION:
        raise PackedCacheError(
            f"packed cache {path} has format {manifest.get('format')!r}, expected "
            f"{FORMAT_VERSION}; delete the folder and load the dataset again to rebuild it"
        )
    return manifest


def _check_size(path: Path, expected: int) -> None:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise PackedCacheError(
            f"packed cache file {path} is missing ({err}); delete {path.parent} to rebuild it"
        ) from err
    if size != expected:
        raise PackedCacheError(
            f"packed cache file {path} has {size} bytes, expected {expected}; "
            f"delete {path.parent} and load the dataset again to rebuild it"
        )


class PackWriter:
    """Append image chunks and labels to a cache folder being built.

    Args:
        folder: the (temporary) folder to write into.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._images = open(folder / IMAGES_FILE, "wb")  # noqa: SIM115 - closed in finish()
        self._labels = open(folder / LABELS_FILE, "wb")  # noqa: SIM115
        self.count = 0
        self.image_shape: tuple[int, int] | None = None
        self.channels: int | None = None
        self.stats = ChannelStats()

    def append(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Write ``images`` (``uint8`` ``[k, H, W]`` or ``[k, H, W, C]``) and ``labels`` ``[k]``.

        Grey rows join colour ones as three equal channels; a first colour chunk after grey
        ones rewrites the rows written so far as colour (once): no colour is ever dropped.
        """
        if len(images) == 0:
            return
        if images.ndim == 3:
            images = images[:, :, :, None]
        shape = (int(images.shape[1]), int(images.shape[2]))
        if self.image_shape is None:
            self.image_shape, self.channels = shape, int(images.shape[3])
        elif shape != self.image_shape:
            raise PackedCacheError(
                f"expected images of {self.image_shape} but got a chunk of {shape} while "
                f"packing {self.folder}; this is a bug in the caller, please report it"
            )
        if images.shape[3] != self.channels:
            if images.shape[3] == 1:
                images = np.repeat(images, self.channels or 1, axis=3)
            else:
                self._widen(int(images.shape[3]))
        images = np.ascontiguousarray(images, dtype=np.uint8)
        self.stats.add(images)
        self._images.write(images.tobytes())
        self._labels.write(np.asarray(labels, dtype="<i8").tobytes())
        self.count += len(images)

    def _widen(self, channels: int) -> None:
        """Rewrite the grey rows written so far with ``channels`` equal channels."""
        self._images.close()
        path, temp = self.folder / IMAGES_FILE, self.folder / (IMAGES_FILE + ".widening")
        h, w = self.image_shape or (0, 0)
        rows = max(1, (16 << 20) // max(1, h * w))
        with open(path, "rb") as src, open(temp, "wb") as dst:
            while block := src.read(rows * h * w):
                grey = np.frombuffer(block, dtype=np.uint8)
                dst.write(np.repeat(grey, channels).tobytes())
        os.replace(temp, path)
        self._images = open(path, "ab")  # noqa: SIM115 - closed in finish()
        self.channels = channels

    def close(self) -> None:
        """Flush and close the files (safe to call twice)."""
        self._images.close()
        self._labels.close()

    def finish(self, manifest: dict[str, Any], *, image_shape: tuple[int, int] | None,
               channels: int | None = None) -> None:
        """Close the files and write ``manifest.json`` with shape, store and format filled in."""
        self.close()
        h, w = self.image_shape or image_shape or (0, 0)
        c = self.channels or channels or 1
        manifest = {"format": FORMAT_VERSION, "store": "fixed", "shape": [self.count, h, w, c],
                    "mode": "L" if c == 1 else "RGB", **self.stats.as_manifest(), **manifest}
        write_manifest(self.folder, manifest)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` (the last file of a build) and flush it to disk."""
    path = folder / MANIFEST_FILE
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def ensure_packed(
    key: str,
    build: Callable[[Path], None],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    opener: Callable[[Path], Cache] = PackedImages,  # type: ignore[assignment]
    size_bytes: int = 0,
) -> Cache:
    """Open the cache ``key``, building it with ``build(temp_folder)`` if it is not there.

    ``build`` writes a complete cache into the folder it is given (see :class:`PackWriter`).
    The folder becomes ``packed_root(cache_dir)/key`` only when ``build`` returns; if it
    raises, the temporary folder is deleted. Temporary folders of crashed builds are
    removed by the next build of the same key.

    Args:
        key: the cache name, normally a fingerprint of the source.
        build: writes the cache into a folder.
        cache_dir: the cache home (see :func:`loaders.cache.cache_root`).
        opener: opens (and checks) a complete cache folder; default :class:`PackedImages`.
        size_bytes: the least the cache will take; a build is refused up front when the
            disk has less free space.

    Returns:
        The opened cache.

    Raises:
        PackedCacheError: the cache cannot be built (a read-only or full cache folder
            included: the message names it) or the lock not taken in time.
    """
    root = packed_root(cache_dir)
    final = root / key
    if (final / MANIFEST_FILE).is_file():
        try:
            return opener(final)
        except PackedCacheError as err:
            log.warning("rebuilding invalid packed cache: %s", err)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PackedCacheError(
            f"cannot create the packed cache folder {root}: {err}; set DATAFERRY_HOME to a "
            "writable folder"
        ) from err
    with ExitStack() as held:
        try:
            held.enter_context(locked(final, timeout_s=LOCK_TIMEOUT_S, what=f"packing {key}"))
        except LockTimeoutError as err:  # a DatasetError for our callers
            raise PackedCacheError(f"{err}; or set DATAFERRY_HOME / cache_dir= to a "
                                   "writable folder") from err
        except StorageError as err:  # the lock file cannot be made: one line, one advice
            reason = os.strerror(err.errno) if err.errno else "not writable"
            raise PackedCacheError(
                f"cannot build the packed cache {final}: {root} is not writable ({reason}); "
                "make it writable, or set DATAFERRY_HOME / cache_dir= to a writable "
                "folder") from err
        return _build_locked(root, key, build, opener, size_bytes)


def _build_locked(root: Path, key: str, build: Callable[[Path], None],
                  opener: Callable[[Path], Cache], size_bytes: int) -> Cache:
    final = root / key
    if (final / MANIFEST_FILE).is_file():  # another process built it while we waited
        try:
            return opener(final)
        except PackedCacheError:
            pass
    for stale in root.glob(f".{key}.tmp-*"):  # we hold the lock: these are from dead builds
        log.info("removing %s left by an interrupted build", stale)
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)
    check_free_space(root, size_bytes, what=f"the packed cache {key}")
    temp = make_temp_folder(root, prefix=f".{key}.tmp-")
    started = time.perf_counter()
    try:
        build(temp)
        opener(temp)  # check what was written before publishing it
        os.replace(temp, final)
    except OSError as err:
        shutil.rmtree(temp, ignore_errors=True)
        if err.errno not in DISK_ERRNOS:
            raise
        raise PackedCacheError(
            f"cannot write the packed cache {final} ({err.strerror}, errno {err.errno}: "
            f"{err.filename or temp}); free space on that disk or set DATAFERRY_HOME / "
            "cache_dir= to another folder, then load the dataset again") from err
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    log.info("packed cache %s built in %.2f s", final, time.perf_counter() - started)
    report_superseded(final)
    return opener(final)


def check_free_space(folder: Path, size_bytes: int, *, what: str,
                     error: type[DatasetError] = PackedCacheError,
                     fix: str = "set DATAFERRY_HOME / cache_dir= to a larger disk") -> None:
    """Refuse to write ``size_bytes`` into ``folder`` when its disk has less free space.

    Args:
        folder: where the bytes go.
        size_bytes: how many (a lower bound); ``<= 0`` checks nothing.
        what: what is written, for the message.
        error: the class raised.
        fix: the other way out the message offers, after "free space there".

    Raises:
        PackedCacheError: (or ``error``) naming the folder, the bytes needed and the bytes free.
    """
    if size_bytes <= 0:
        return
    free = shutil.disk_usage(folder).free
    if free < size_bytes:
        raise error(
            f"{what} needs at least {size_bytes:,} bytes in {folder} but only {free:,} bytes "
            f"are free; free space there, or {fix}")


def make_temp_folder(parent: Path, *, prefix: str) -> Path:
    """Create a new uniquely named folder in ``parent`` with the umask's mode.

    ``tempfile.mkdtemp`` makes 0700 folders, and the cache is published by renaming this one:
    a cache others may read must get the mode any new folder gets, as the loaders' cache does
    (``os.mkdir`` applies the umask; changing the umask would race with other threads).
    """
    while True:
        temp = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            temp.mkdir()
            return temp
        except FileExistsError:
            continue


def pack_subset(
    source: PackedImages,
    indices: np.ndarray,
    key: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> PackedImages:
    """Pack the rows ``indices`` of ``source`` as a cache of their own (a split).

    A split is then contiguous and memory-mapped like any cache. The source's classes and
    skipped list are kept; ``extra`` is merged into the manifest.

    Args:
        source: the full cache.
        indices: rows to keep, in the order to store them.
        key: the new cache's key.
        cache_dir: the cache home.
        extra: more manifest fields (for example the split's name and seed).
    """

    def build(folder: Path) -> None:
        started = time.perf_counter()
        images, labels = source.images(), source.labels()
        writer = PackWriter(folder)
        try:
            for start in range(0, len(indices), 16384):
                rows = indices[start : start + 16384]
                writer.append(np.ascontiguousarray(images[rows]), labels[rows])
        finally:
            writer.close()
        classes = list(source.manifest["classes"])
        counts = np.bincount(labels[indices], minlength=len(classes))
        manifest = {
            **{k: v for k, v in source.manifest.items()
               if k not in ("format", "shape", "mean", "std")},
            "counts": {name: int(c) for name, c in zip(classes, counts, strict=True)},
            "parent": str(source.path),
            "build_seconds": round(time.perf_counter() - started, 3),
            **(extra or {}),
        }
        writer.finish(manifest, image_shape=source.shape[1:3], channels=source.shape[3])

    return ensure_packed(key, build, cache_dir=cache_dir)
