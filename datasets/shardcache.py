"""Shards on the local disk: fetched on demand and ahead, verified, evicted least recently used.

The cache of one pack is ``cache_root(cache_dir)/streaming/<sha256 of index.json, 16 hex>/``,
shared by every process on the machine (DataLoader workers, local ranks): a shard is fetched
under its file lock (:mod:`loaders.lock`), so two processes never fetch the same shard twice,
and is published by an atomic rename after its size and sha256 match the index, so a file in
the cache is a verified shard. A shard that fails verification is fetched once more; a second
failure raises :class:`ShardError` naming the shard, its URL and the expected hash.

Opening a shard refreshes its mtime; before and after a fetch, the oldest shards are deleted
until the cache fits under ``cache_limit`` bytes. Only the files the index names are ever
evicted (whatever their names), never the cache's own bookkeeping, whose names start with
``.`` (no shard may be named so: :func:`loaders.names.check_name`).

Eviction never deletes a *pinned* shard. Each :class:`ShardCache` in each process (DataLoader
worker, rank, a second dataset over the same pack) owns one pin file ``.pins/<uuid hex>``
holding the names of the shards it has open, reads and prefetches, and holds its lock
(:func:`loaders.lock.hold`) for as long as it lives. Pins are written under the cache's
eviction lock *before* the shard is checked to be there, and the evicting process reads the
pins under the same lock, so no shard disappears between its check and its mapping. A pin
whose lock no one holds belongs to a process that has exited (on any host sharing the cache,
in any pid namespace: the OS drops the lock) and is removed; no pid and no clock is trusted.
Pinned shards and concurrent fetches may take the cache past the limit meanwhile. A shard
deleted anyway (by hand, by a cleaner) is fetched again once; a deleted shard that is
still mapped is not safe to read everywhere (NFS gives ``ESTALE`` or ``SIGBUS``), which is
why shards are pinned for as long as they are open.

A complete cache on a read-only mount is read as is: no mtime refresh, no pins (nothing can
evict there); a shard missing from it fails with an error naming the folder. A full disk
while writing pins is a warning: the shards are read unpinned.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import uuid
import weakref
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from datasets.errors import ShardError
from datasets.shardformat import ShardTable
from datasets.storage import Store
from loaders.errors import DownloadError, StorageError, UnsafeNameError
from loaders.lock import hold, is_held, lock_path, resource_lock
from loaders.names import inside
from loaders.verify import Expected

log = logging.getLogger(__name__)

EVICT_LOCK = ".evict"
PINS = ".pins"
_PIN_NAME = re.compile(r"[0-9a-f]{32}")  # what .pins may hold; anything else is left alone
_PIN_MAX_BYTES = 16 << 20
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_MINE: dict[str, int] = {}  # pin file name -> the pid that made it (this process's own pins)
_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class ShardCache:
    """The verified local copies of one pack's shards.

    Args:
        store: where the shards are.
        shards: the index's shard table.
        folder: this pack's cache folder.
        cache_limit: bytes the folder may hold (``None``: no limit).
        prefetch_threads: background fetches at a time.
        progress: a tqdm bar per fetched shard.
    """

    def __init__(self, store: Store, shards: ShardTable, folder: Path, *,
                 cache_limit: int | None, prefetch_threads: int = 2, progress: bool = False) -> None:
        self.store, self.shards, self.folder = store, shards, folder
        self.cache_limit, self.progress = cache_limit, progress
        self.prefetch_threads = prefetch_threads
        self.fetched_bytes = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._inflight: dict[int, Future[Path]] = {}
        self.keep: set[int] = set()
        self._pin: _Pin | None = None  # this instance's pin file in this process
        self._unpinned = False  # pins could not be written: said once

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers: no pool, no futures, no pin
        state = dict(self.__dict__)
        state.update(_pool=None, _pool_pid=0, _inflight={}, _pin=None)
        return state

    def path(self, k: int) -> Path:
        """Return the local path of shard ``k``, fetching it (verified) if needed."""
        future = self._inflight.pop(k, None) if self._pool_pid == os.getpid() else None
        if future is not None:
            future.result()  # a prefetch failure surfaces here
        return self._ensure(k)

    def target(self, k: int) -> Path:
        """Shard ``k``'s path in the cache, checked to lie inside the cache folder.

        Raises:
            ShardError: the shard's name would resolve outside the folder (a second guard:
                :func:`datasets.shardformat.parse_index` already refused unsafe names).
        """
        name = self.shards.name(k)
        try:
            return inside(self.folder, name)
        except UnsafeNameError as err:
            raise ShardError(f"shard {k} of {self.store.describe('index.json')} is named "
                             f"{err.name}, which {err.reason}; refused: do not use this pack"
                             ) from err

    def _ensure(self, k: int) -> Path:
        target = self.target(k)
        if self._pin_and_check(k, target):
            return target
        try:
            with resource_lock(target):
                if _touch(target):
                    return target
                self._evict(incoming=int(self.shards.size_bytes[k]), fetching=k)
                self._fetch(k, target)
            self._evict(incoming=0, fetching=k)  # concurrent fetches may each have made room
        except StorageError as err:  # a read-only or full cache, and the shard is not in it
            raise ShardError(f"cannot fetch shard {self.shards.name(k)!r} into the cache "
                             f"{self.folder}: {err}") from err
        return target

    def prefetch(self, shards: Iterable[int]) -> None:
        """Start fetching these shards in background threads (no-op for local ones)."""
        if self.prefetch_threads < 1:
            return
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.prefetch_threads, thread_name_prefix="prefetch")
            self._pool_pid, self._inflight = os.getpid(), {}
        for k in shards:
            done = k in self._inflight and self._inflight[k].done()
            if (k not in self._inflight or done) and not self.target(k).exists():
                self._inflight[k] = self._pool.submit(self._ensure, k)

    def _fetch(self, k: int, target: Path) -> None:
        shard = self.shards.entry(k)
        expected = Expected(size_bytes=shard["size_bytes"], sha256=shard["sha256"])
        url = self.store.describe(shard["name"])
        for attempt in (1, 2):
            try:
                self.store.fetch(shard["name"], target, expected, progress=self.progress)
            except DownloadError as err:
                if attempt == 2:
                    raise ShardError(
                        f"shard {shard['name']!r} from {url} failed twice: expected sha256 "
                        f"{shard['sha256']} and {shard['size_bytes']:,} bytes; {err}. Check the "
                        "pack with python -m datasets.shard --verify URL and write it again"
                    ) from err
                log.warning("shard %r from %s failed (%s); fetching it again once", shard["name"],
                            url, err)
                continue
            self.fetched_bytes += int(shard["size_bytes"])
            log.debug("fetched %r (%d bytes)", shard["name"], shard["size_bytes"])
            return

    def _pin_and_check(self, k: int, target: Path) -> bool:
        """Pin this cache's shards (``keep`` and ``k``), then return whether ``k`` is here.

        Both under the eviction lock, so once this returns True no process evicts ``k``
        until this cache pins other shards (``keep`` holds the shards it has open). When
        they are pinned already, no lock is needed: the hot path of a warm cache.
        """
        names = {self.shards.name(j) for j in {*self.keep, k}}
        pin = self._pin if self._pin is not None and self._pin.pid == os.getpid() else None
        if pin is not None and names <= pin.names and pin.path.is_file():
            return _touch(target)
        try:
            with resource_lock(self.folder / EVICT_LOCK):
                try:
                    self._write_pins(pin, names)
                except OSError as err:
                    self._read_unpinned(err)
                return _touch(target)
        except StorageError as err:  # a read-only cache: nothing can evict there
            self._read_unpinned(err)
            return _touch(target)

    def _write_pins(self, pin: _Pin | None, names: set[str]) -> None:
        if pin is None:  # the prefetch thread may have made it meanwhile, under this lock
            pin = self._pin if self._pin is not None and self._pin.pid == os.getpid() else None
        if pin is None or not pin.path.is_file():  # none yet, or deleted by someone else
            pin = self._pin = _Pin(self.folder / PINS)
        pin.write(names)

    def _read_unpinned(self, err: OSError) -> None:
        """Pins cannot be written: read anyway, as for a read-only cache; say it once."""
        if err.errno not in _READ_ONLY | _FULL:
            raise ShardError(f"cannot write the pins in {self.folder / PINS}: "
                             f"{err.strerror or err}; check the cache folder") from err
        if not self._unpinned:
            level = logging.WARNING if err.errno in _FULL else logging.DEBUG
            log.log(level, "cannot pin shards in %s (%s); reading them unpinned: another "
                    "process evicting this cache may delete a shard being read", self.folder,
                    err.strerror or err)
        self._unpinned = True

    def _evict(self, *, incoming: int, fetching: int) -> None:
        if self.cache_limit is None:
            return
        with resource_lock(self.folder / EVICT_LOCK):
            keep = {self.shards.name(k) for k in {*self.keep, fetching}} | _pinned(self.folder)
            files = []
            with os.scandir(self.folder) as entries:  # the index's names only, never ours
                for entry in entries:
                    try:
                        if self.shards.holds(entry.name) and entry.is_file(follow_symlinks=False):
                            info = entry.stat(follow_symlinks=False)
                            files.append((info.st_mtime, entry.name, info.st_size))
                    except FileNotFoundError:
                        continue
            total = sum(size for _, _, size in files)
            for _, name, size in sorted(files):
                if total + incoming <= self.cache_limit:
                    break
                if name in keep:
                    continue
                (self.folder / name).unlink(missing_ok=True)
                total -= size
                log.debug("evicted %r (%d bytes) to stay under %d bytes", name, size, self.cache_limit)


class _Pin:
    """One cache's pin file in one process, alive while its lock is held (see above)."""

    def __init__(self, folder: Path) -> None:
        _check_pins_folder(folder, create=True)
        self.path, self.pid = folder / uuid.uuid4().hex, os.getpid()
        self.names: set[str] = set()
        self._lock = hold(self.path, what="pinning shards")
        _MINE[self.path.name] = self.pid
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self._fd = os.open(self.path, flags, 0o644)
        weakref.finalize(self, _drop_pin, self.path, self._fd, self._lock, self.pid)

    def write(self, names: set[str]) -> None:
        """Replace the pinned names in place: writers and evictors hold the eviction lock, so
        no one reads half a file (os.replace took 2 ms a shard here)."""
        data = "\n".join(sorted(names)).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        self.names = names


def _drop_pin(path: Path, fd: int, lock: Any, pid: int) -> None:
    if os.getpid() != pid:  # a forked child: the pin is its parent's
        return
    _MINE.pop(path.name, None)
    path.unlink(missing_ok=True)
    os.close(fd)
    lock_path(path).unlink(missing_ok=True)
    lock.release()


def _check_pins_folder(folder: Path, *, create: bool) -> bool:
    """Whether ``.pins`` exists; refuse one that is not a real folder (a symlink, a file)."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        if not create:
            return False
        folder.mkdir(exist_ok=True)
        info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise ShardError(f"{folder} is not a folder (a symlink or a file); it holds the cache's "
                         "pins, so nothing in it is trusted: delete it, and readers recreate it")
    return True


def _pinned(folder: Path) -> set[str]:
    """The shard names pinned by live caches; a pin whose lock no one holds is removed."""
    names: set[str] = set()
    pins = folder / PINS
    if not _check_pins_folder(pins, create=False):
        return names
    with os.scandir(pins) as entries:
        for entry in entries:
            if not _PIN_NAME.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            pin = Path(entry.path)
            # this process's own pins are alive without asking: on NFS flock is a POSIX lock,
            # which a second descriptor in the same process would get, and closing it would
            # drop the owner's; any other pin whose lock is free lost its process (exited)
            if _MINE.get(entry.name) != os.getpid() and not is_held(pin):
                pin.unlink(missing_ok=True)
                lock_path(pin).unlink(missing_ok=True)
                continue
            names.update(_read_pin(pin))
    return names


def _read_pin(pin: Path) -> list[str]:
    try:
        fd = os.open(pin, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:  # removed since the listing by its owner, at exit
        return []
    with os.fdopen(fd, "rb") as handle:
        return handle.read(_PIN_MAX_BYTES).decode("utf-8", "replace").split("\n")


def _touch(path: Path) -> bool:
    """Refresh ``path``'s mtime (its LRU time); return whether it exists.

    A cache that cannot be written (a read-only mount: ``EROFS``; no permission) is still
    read: the refresh is skipped, as the packed image cache does.

    Raises:
        ShardError: another error; it names the path.
    """
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError as err:
        if err.errno in _READ_ONLY and path.is_file():
            log.debug("cannot refresh the mtime of %s (%s); reading it as is", path, err.strerror)
            return True
        raise ShardError(f"cannot use the cached shard {path}: {err.strerror or err}; check the "
                         "cache folder, or point cache_dir at another one") from err
    return True
