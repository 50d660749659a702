"""One streaming cache shared by processes (issue 16 items 6 and 10)."""

from __future__ import annotations

import errno
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from datasets import (
    ShardError,
    StreamingDataset,
    StreamingSampler,
    shardcache,
    streaming,
    write_shards,
)
from loaders.errors import StorageError
from tests.unit.datasets.shard_factory import TinyImages


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    write_shards(TinyImages(240), tmp_path / "pack", shard_size_bytes=24 * 10, shuffle=False)
    return tmp_path / "pack"


def _read_epochs(pack: Path, cache: Path, limit: int, rank: int, world: int) -> None:
    ds = StreamingDataset(pack, cache_dir=cache, cache_limit=limit, block_shards=2, prefetch=1)
    sampler = StreamingSampler(ds, num_replicas=world, rank=rank)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for i in sampler:
            _, y = ds[i]
            if y != i % 5:
                raise AssertionError(f"sample {i} has label {y}")


def _child(pack: Path, cache: Path, limit: int, rank: int, world: int) -> None:
    try:
        _read_epochs(pack, cache, limit, rank, world)
    except BaseException as err:  # the parent reads the exit code; say why on stderr
        os.write(2, f"rank {rank}: {type(err).__name__}: {err}\n".encode())
        os._exit(1)
    os._exit(0)


def test_processes_sharing_a_limited_cache_keep_each_others_shards(
        pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 ranks x 2 workers at the documented minimum limit (block + prefetch + 1 shards). A slow
    # open (a busy disk) widens the gap between finding a shard and mapping it: before the
    # pins, another process evicted it there and the reader died with FileNotFoundError.
    opened = streaming._Shard.__init__

    def slow_open(self: Any, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.01)
        opened(self, *args, **kwargs)

    monkeypatch.setattr(streaming._Shard, "__init__", slow_open)
    limit = (2 + 1 + 1) * (pack / "shard-00000.bin").stat().st_size
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_child, args=(pack, tmp_path / "cache", limit, r, 4))
                for r in range(4)]
    for child in children:
        child.start()
    deadline = time.monotonic() + 120
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
    for child in children:
        if child.is_alive():
            child.kill()
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    pins = list((tmp_path / "cache").glob("streaming/*/.pins/*"))
    assert len(pins) <= 4


def _read_only_utime(path: Any, *args: Any, **kwargs: Any) -> None:
    # what a read-only mount answers (tests run as root, so chmod -w would not stop a write)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", os.fspath(path))
    raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))


def test_a_warm_read_only_cache_is_read(pack: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    warm = StreamingDataset(pack, cache_dir=tmp_path / "cache", prefetch=0)
    expected = [warm[i][1] for i in range(len(warm))]
    monkeypatch.setattr(shardcache.os, "utime", _read_only_utime)

    def no_lock(path: Any, **kwargs: Any) -> Any:
        raise StorageError.of(f"cannot create the lock file for {path}", OSError(errno.EROFS, "ro"))

    monkeypatch.setattr(shardcache, "resource_lock", no_lock)
    ds = StreamingDataset(pack, cache_dir=tmp_path / "cache", prefetch=0, cache_limit=10**9)
    assert [ds[i][1] for i in range(len(ds))] == expected and ds.cache.fetched_bytes == 0


def test_a_cold_read_only_cache_names_the_folder(pack: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shardcache.os, "utime", _read_only_utime)

    def no_lock(path: Any, **kwargs: Any) -> Any:
        raise StorageError.of(f"cannot create the lock file for {path}", OSError(errno.EROFS, "ro"))

    monkeypatch.setattr(shardcache, "resource_lock", no_lock)
    ds = StreamingDataset(pack, cache_dir=tmp_path / "cache", prefetch=0)
    with pytest.raises(ShardError, match=r"cannot fetch shard 'shard-00000.bin' into the cache "
                                         rf".*{ds.cache.folder.name}"):
        ds[0]


def test_a_touch_error_that_is_not_read_only_names_the_path(
        pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warm = StreamingDataset(pack, cache_dir=tmp_path / "cache", prefetch=0)
    warm[0]

    def broken(path: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error", os.fspath(path))

    monkeypatch.setattr(shardcache.os, "utime", broken)
    ds = StreamingDataset(pack, cache_dir=tmp_path / "cache", prefetch=0)
    with pytest.raises(ShardError, match=r"cannot use the cached shard .*shard-00000.bin: Input"):
        ds[0]
