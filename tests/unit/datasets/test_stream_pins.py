"""Pins of a shared streaming cache: per cache, alive by a lock, never trusted blindly (review of issue 16)."""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from datasets import ShardError, StreamingDataset, shardcache, streaming, write_shards
from tests.unit.datasets.shard_factory import TinyImages


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    write_shards(TinyImages(200), tmp_path / "pack", shard_size_bytes=24 * 10, shuffle=False)
    return tmp_path / "pack"


def _open(pack: Path, tmp_path: Path, **kwargs: Any) -> StreamingDataset:
    options: dict[str, Any] = {"prefetch": 0, "block_shards": 1, "shuffle": False}
    return StreamingDataset(pack, cache_dir=tmp_path / "cache", **{**options, **kwargs})


def test_two_datasets_in_one_process_keep_each_others_pins(pack: Path, tmp_path: Path) -> None:
    # before: one pin file per host+pid, so b's pins replaced a's; a never rewrote its own
    a, b = _open(pack, tmp_path), _open(pack, tmp_path)
    a[0]
    b[150]
    assert shardcache._pinned(a.cache.folder) >= {"shard-00000.bin", "shard-00015.bin"}
    for pin in (a.cache.folder / shardcache.PINS).iterdir():  # deleted by someone else
        if pin.is_file() and not pin.name.startswith("."):
            pin.unlink()
    a[10]  # its pin must be written again
    pinned = shardcache._pinned(a.cache.folder)
    assert "shard-00001.bin" in pinned and {a.shards.name(k) for k in a._open} <= pinned


def test_no_shard_is_mapped_unpinned(pack: Path, tmp_path: Path) -> None:
    # before: shards of the previous block stayed mapped after their pins were dropped, so
    # another process could delete a mapped shard (ESTALE/SIGBUS on NFS)
    ds = _open(pack, tmp_path)
    ds[0]
    ds[10]
    pinned = shardcache._pinned(ds.cache.folder)
    assert "shard-00001.bin" in pinned
    assert {ds.shards.name(k) for k in ds._open} <= pinned


def test_an_old_pin_of_a_live_process_on_another_host_still_counts(
        pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: a pin unchanged for an hour expired on other hosts while its reader still ran
    ds = _open(pack, tmp_path)
    ds[0]
    monkeypatch.setattr(socket, "gethostname", lambda: "another-host")
    hour_ago = time.time() - 7200
    for pin in (ds.cache.folder / shardcache.PINS).iterdir():
        os.utime(pin, (hour_ago, hour_ago))
    assert "shard-00000.bin" in shardcache._pinned(ds.cache.folder)


def test_a_live_pin_whose_pid_is_not_ours_still_counts(
        pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: os.kill(pid, 0) judged liveness; another pid namespace (docker --network=host,
    # hostNetwork pods) shares the hostname but not the pids: every live pin looked dead
    ds = _open(pack, tmp_path)
    ds[0]

    def other_namespace(pid: int, sig: int) -> None:
        raise ProcessLookupError(errno.ESRCH, "No such process")

    monkeypatch.setattr(os, "kill", other_namespace)
    assert "shard-00000.bin" in shardcache._pinned(ds.cache.folder)


def _pin_and_die(pack: Path, cache: Path) -> None:
    ds = StreamingDataset(pack, cache_dir=cache, prefetch=0, block_shards=1, shuffle=False)
    ds[0]
    os._exit(0)  # no clean-up: as a killed process leaves its pin file


def test_a_dead_process_pins_nothing(pack: Path, tmp_path: Path) -> None:
    dead = multiprocessing.get_context("fork").Process(target=_pin_and_die,
                                                       args=(pack, tmp_path / "cache"))
    dead.start()
    dead.join(60)
    folder = _open(pack, tmp_path).cache.folder
    pins = [p for p in (folder / shardcache.PINS).iterdir() if not p.name.startswith(".")]
    assert dead.exitcode == 0 and len(pins) == 1
    assert shardcache._pinned(folder) == set() and not pins[0].exists()


def test_pins_folder_holding_a_folder_is_skipped(pack: Path, tmp_path: Path) -> None:
    ds = _open(pack, tmp_path, cache_limit=10**6)
    ds[0]
    (ds.cache.folder / shardcache.PINS / ("a" * 32)).mkdir()  # before: IsADirectoryError
    assert shardcache._pinned(ds.cache.folder) == {"shard-00000.bin"}


def test_pins_folder_as_a_symlink_is_refused_and_its_target_untouched(
        pack: Path, tmp_path: Path) -> None:
    # before: the evictor listed and deleted "dead" pins in whatever folder .pins pointed to
    ds = _open(pack, tmp_path, cache_limit=10**6)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / ("b" * 32)).write_text("precious")
    (victim / "notes-1").write_text("precious")
    ds.cache.folder.mkdir(parents=True, exist_ok=True)
    (ds.cache.folder / shardcache.PINS).symlink_to(victim)
    with pytest.raises(ShardError, match=r"\.pins is not a folder .*delete it") as err:
        ds[0]
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in victim.iterdir()) == ["b" * 32, "notes-1"]


def test_a_full_disk_while_pinning_reads_unpinned_with_a_warning(
        pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    warm = _open(pack, tmp_path)
    expected = warm[0][1]
    written = Path.write_text

    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        if shardcache.PINS in self.parts:
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(self))
        return written(self, *args, **kwargs)

    def full_fd(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr(os, "pwrite", full_fd)
    with caplog.at_level(logging.WARNING, logger="datasets.shardcache"):
        assert _open(pack, tmp_path)[0][1] == expected  # before: ShardError
    assert "reading them unpinned" in caplog.text


def test_a_shard_deleted_before_mapping_is_fetched_again(
        pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _open(pack, tmp_path)
    opened = streaming._Shard.__init__
    calls: list[str] = []

    def deleted_first(self: Any, path: Any, *args: Any) -> None:
        if not calls:
            os.unlink(path)  # a cleaner, or a process without pins, got there first
        calls.append(os.fspath(path))
        opened(self, path, *args)

    monkeypatch.setattr(streaming._Shard, "__init__", deleted_first)
    assert ds[3][1] == 3 and len(calls) == 2  # before: a raw FileNotFoundError


def test_a_shard_deleted_twice_is_one_shard_error(
        pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _open(pack, tmp_path)
    opened = streaming._Shard.__init__

    def always_deleted(self: Any, path: Any, *args: Any) -> None:
        os.unlink(path)
        opened(self, path, *args)

    monkeypatch.setattr(streaming._Shard, "__init__", always_deleted)
    with pytest.raises(ShardError, match=r"'shard-00000.bin' vanished twice from the cache"):
        ds[0]


def _renamed_pack(pack: Path, out: Path) -> Path:
    out.mkdir()
    index = json.loads((pack / "index.json").read_text())
    for k, shard in enumerate(index["shards"]):
        (pack / shard["name"]).rename(out / f"part-{k}.bin")
        shard["name"] = f"part-{k}.bin"
    (out / "index.json").write_text(json.dumps(index))
    return out


def test_shards_of_any_name_are_evicted(pack: Path, tmp_path: Path) -> None:
    # before: eviction looked for shard-*.bin only, so cache_limit did nothing for part-0.bin
    renamed = _renamed_pack(pack, tmp_path / "renamed")
    size = (renamed / "part-0.bin").stat().st_size
    ds = StreamingDataset(renamed, cache_dir=tmp_path / "cache", prefetch=0, block_shards=1,
                          shuffle=False, cache_limit=3 * size)
    assert [ds[i][1] for i in range(0, 200, 10)] == [i % 5 for i in range(0, 200, 10)]
    cached = [p for p in ds.cache.folder.iterdir() if p.name.startswith("part-")]
    assert len(cached) <= 3
    assert (ds.cache.folder / shardcache.PINS).is_dir()  # the cache's own files are kept
