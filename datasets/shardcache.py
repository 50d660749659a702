"""Shards on the local disk: fetched on demand and ahead, verified, evicted least recently used.

The cache of one pack is ``cache_root(cache_dir)/streaming/<sha256 of index.json, 16 hex>/``,
shared by every process on the machine (DataLoader workers, local ranks): a shard is fetched
under its file lock (:mod:`loaders.lock`), so two processes never fetch the same shard twice,
and is published by an atomic rename after its size and sha256 match the index, so a file in
the cache is a verified shard. A shard that fails verification is fetched once more; a second
failure raises :class:`ShardError` naming the shard, its URL and the expected hash.

Opening a shard refreshes its mtime; before and after a fetch, the oldest shards are deleted
until the cache fits under ``cache_limit`` bytes. Eviction never deletes a *pinned* shard:
each process (DataLoader worker, rank) writes the names of the shards it reads and prefetches
to ``.pins/<host>-<pid>`` under the cache's eviction lock (:mod:`loaders.lock`), *before* it
checks that the shard is there, and the evicting process reads every live process's pins
under the same lock; so no shard disappears between its check and its mapping, in any process.
A dead process's pins are dropped (its pid is gone; on another host, after ``PIN_TTL_S``).
Pinned shards and concurrent fetches may take the cache past the limit meanwhile. On POSIX a
process that still maps a deleted shard keeps reading it safely.

A complete cache on a read-only mount is read as is: no mtime refresh, no pins (nothing can
evict there); a shard missing from it fails with an error naming the folder.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from datasets.errors import ShardError
from datasets.shardformat import ShardTable
from datasets.storage import Store
from loaders.errors import DownloadError, StorageError, UnsafeNameError
from loaders.lock import resource_lock
from loaders.names import inside
from loaders.verify import Expected

log = logging.getLogger(__name__)

EVICT_LOCK = ".evict"
PINS = ".pins"
PIN_TTL_S = 3600.0  # pins written on another host (a shared network cache) count this long
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


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
        self._pinned: tuple[Path, list[str]] | None = None  # this process's last pin file

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers: no pool, no futures
        state = dict(self.__dict__)
        state.update(_pool=None, _pool_pid=0, _inflight={}, _pinned=None)
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
            raise ShardError(f"cannot fetch shard {self.shards.name(k)} into the cache "
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
                        f"shard {shard['name']} from {url} failed twice: expected sha256 "
                        f"{shard['sha256']} and {shard['size_bytes']:,} bytes; {err}. Check the "
                        "pack with python -m datasets.shard --verify URL and write it again"
                    ) from err
                log.warning("shard %s from %s failed (%s); fetching it again once", shard["name"],
                            url, err)
                continue
            self.fetched_bytes += int(shard["size_bytes"])
            log.debug("fetched %s (%d bytes)", shard["name"], shard["size_bytes"])
            return

    def _pin_and_check(self, k: int, target: Path) -> bool:
        """Pin this process's shards (``keep`` and ``k``), then return whether ``k`` is here.

        Both under the eviction lock, so once this returns True no process evicts ``k``
        until this process pins other shards (by then it has mapped ``k``).
        """
        try:
            with resource_lock(self.folder / EVICT_LOCK):
                try:
                    self._write_pins(k)
                except OSError as err:
                    if err.errno not in _READ_ONLY:
                        raise ShardError(f"cannot write the pins of {self.folder / PINS}: "
                                         f"{err.strerror or err}; check the cache folder") from err
                    log.debug("cannot pin shards in %s: %s", self.folder, err)
                return _touch(target)
        except StorageError:  # a read-only cache: nothing can evict there; read it unpinned
            log.debug("cannot pin shards in %s (read-only?); reading without pins", self.folder)
            return _touch(target)

    def _write_pins(self, k: int) -> None:
        names = sorted({self.shards.name(j) for j in {*self.keep, k}})
        pin = self.folder / PINS / f"{socket.gethostname()}-{os.getpid()}"
        if self._pinned == (pin, names):
            return
        pin.parent.mkdir(exist_ok=True)
        tmp = pin.with_name(f".{pin.name}.tmp")
        tmp.write_text("\n".join(names), encoding="utf-8")
        os.replace(tmp, pin)
        self._pinned = (pin, names)

    def _evict(self, *, incoming: int, fetching: int) -> None:
        if self.cache_limit is None:
            return
        with resource_lock(self.folder / EVICT_LOCK):
            keep = {self.shards.name(k) for k in {*self.keep, fetching}} | _pinned(self.folder)
            files = []
            for path in self.folder.glob("shard-*.bin"):
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                files.append((stat.st_mtime, path.name, stat.st_size))
            total = sum(size for _, _, size in files)
            for _, name, size in sorted(files):
                if total + incoming <= self.cache_limit:
                    break
                if name in keep:
                    continue
                (self.folder / name).unlink(missing_ok=True)
                total -= size
                log.debug("evicted %s (%d bytes) to stay under %d bytes", name, size, self.cache_limit)


def _pinned(folder: Path) -> set[str]:
    """The shard names pinned by live processes; a dead process's pin file is removed."""
    names: set[str] = set()
    host = socket.gethostname()
    for pin in (folder / PINS).glob("[!.]*"):
        owner, _, pid = pin.name.rpartition("-")
        try:
            alive = (_pid_alive(pid) if owner == host
                     else time.time() - pin.stat().st_mtime < PIN_TTL_S)
            if not alive:
                pin.unlink(missing_ok=True)
                continue
            names.update(pin.read_text(encoding="utf-8").split("\n"))
        except FileNotFoundError:  # removed since the listing (writers hold this lock too)
            continue
    return names


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


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
