"""Shards on the local disk: fetched on demand and ahead, verified, evicted least recently used.

The cache of one pack is ``cache_root(cache_dir)/streaming/<sha256 of index.json, 16 hex>/``,
shared by every process on the machine (DataLoader workers, local ranks): a shard is fetched
under its file lock (:mod:`loaders.lock`), so two processes never fetch the same shard twice,
and is published by an atomic rename after its size and sha256 match the index, so a file in
the cache is a verified shard. A shard that fails verification is fetched once more; a second
failure raises :class:`ShardError` naming the shard, its URL and the expected hash.

Opening a shard refreshes its mtime; before and after a fetch, the oldest shards are deleted
until the cache fits under ``cache_limit`` bytes (never the shards this process is reading or
prefetching; concurrent fetches may pass the limit by the shards in flight meanwhile). On POSIX a process that still maps a deleted shard keeps reading it safely.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from datasets.errors import ShardError
from datasets.shardformat import ShardTable
from datasets.storage import Store
from loaders.errors import DownloadError, UnsafeNameError
from loaders.lock import resource_lock
from loaders.names import inside
from loaders.verify import Expected

log = logging.getLogger(__name__)


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

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers: no pool, no futures
        state = dict(self.__dict__)
        state.update(_pool=None, _pool_pid=0, _inflight={})
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
        if _touch(target):
            return target
        with resource_lock(target):
            if _touch(target):
                return target
            self._evict(incoming=int(self.shards.size_bytes[k]), fetching=k)
            self._fetch(k, target)
        self._evict(incoming=0, fetching=k)  # concurrent fetches may each have made room for one
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

    def _evict(self, *, incoming: int, fetching: int) -> None:
        if self.cache_limit is None:
            return
        keep = {self.shards.name(k) for k in {*self.keep, fetching}}
        with resource_lock(self.folder / ".evict"):
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


def _touch(path: Path) -> bool:
    """Refresh ``path``'s mtime (its LRU time); return whether it exists."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True
