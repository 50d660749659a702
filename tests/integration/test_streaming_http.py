"""StreamingDataset over a real HTTP server on 127.0.0.1: faults, warm cache, cache limit, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from loopback_server import LoopbackServer
from stream_pack import make_pack, serve_pack, shard_bytes, shard_requests

from datasets import ShardError, StreamingDataset, StreamingSampler, ToFloat
from loaders import RetryPolicy, transfer

REPO = Path(__file__).resolve().parents[2]
READER = Path(__file__).with_name("stream_reader.py")


def _epoch(ds: StreamingDataset, epoch: int) -> list[int]:
    sampler = StreamingSampler(ds, num_replicas=1, rank=0)
    sampler.set_epoch(epoch)
    labels = []
    for i in sampler:
        image, label = ds[i]
        labels.append(label)
    return labels


@pytest.mark.integration
def test_faults_are_survived_and_second_epoch_is_local(
    tmp_path: Path, loopback_server: LoopbackServer
) -> None:
    source = make_pack(tmp_path / "pack")
    url = serve_pack(loopback_server, tmp_path / "pack", behaviours={
        "shard-00000.bin": {"reset_after": [1000]},
        "shard-00001.bin": {"statuses": [503], "retry_after": "0"},
        "shard-00002.bin": {"delay_s": 0.05, "chunk_bytes": 512},
    })
    ds = StreamingDataset(url, cache_dir=tmp_path / "cache")
    assert sorted(_epoch(ds, 0)) == list(range(480))
    x, y = ds[123]
    assert torch.equal(x, ToFloat()(source.data[123][None])) and y == 123
    total = sum(p.stat().st_size for p in (tmp_path / "pack").glob("shard-*.bin"))
    assert shard_bytes(loopback_server, tmp_path / "pack") == total  # the reset resumed by Range
    assert loopback_server.stats("/pack/shard-00000.bin").ranges[-1] == "bytes=1000-"
    requests_after_first = shard_requests(loopback_server, tmp_path / "pack")
    assert sorted(_epoch(ds, 1)) == list(range(480))
    again = StreamingDataset(url, cache_dir=tmp_path / "cache")  # a new process, same cache
    assert sorted(_epoch(again, 2)) == list(range(480))
    assert shard_requests(loopback_server, tmp_path / "pack") == requests_after_first


@pytest.mark.integration
def test_server_that_stops_mid_shard_is_cut_by_the_stall_rule_and_resumed(
    tmp_path: Path, loopback_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_pack(tmp_path / "pack")
    # 256 bytes, then silence for 2 s per write: under 1 KiB per 0.3 s is a stall
    url = serve_pack(loopback_server, tmp_path / "pack",
                     behaviours={"shard-00003.bin": {"chunk_bytes": 256, "delay_s": 2.0}})
    waits: list[float] = []

    def server_recovers(seconds: float) -> None:
        waits.append(seconds)
        loopback_server.behaviours["/pack/shard-00003.bin"].delay_s = 0.0

    monkeypatch.setattr(transfer, "_sleep", server_recovers)
    policy = RetryPolicy(stall_bytes=1024, stall_window_s=0.3, backoff_s=0.01)
    ds = StreamingDataset(url, cache_dir=tmp_path / "cache", retry=policy, prefetch=0)
    started = time.monotonic()
    x, y = ds[3 * 40 + 5]
    assert torch.equal(x, ToFloat()(source.data[125][None])) and y == 125
    assert time.monotonic() - started < 5 and len(waits) == 1
    stats = loopback_server.stats("/pack/shard-00003.bin")
    assert stats.ranges[0] is None and stats.ranges[1] == "bytes=512-"  # resumed, not restarted


@pytest.mark.integration
def test_cache_smaller_than_the_pack_fetches_each_shard_once_per_epoch(
    tmp_path: Path, loopback_server: LoopbackServer
) -> None:
    make_pack(tmp_path / "pack")
    url = serve_pack(loopback_server, tmp_path / "pack")
    size = (tmp_path / "pack" / "shard-00000.bin").stat().st_size
    total = sum(p.stat().st_size for p in (tmp_path / "pack").glob("shard-*.bin"))
    ds = StreamingDataset(url, cache_dir=tmp_path / "cache", cache_limit=4 * size,
                          block_shards=2, prefetch=1)
    assert sorted(_epoch(ds, 0)) == list(range(480))
    assert shard_bytes(loopback_server, tmp_path / "pack") == total
    cached = list((tmp_path / "cache").rglob("shard-*.bin"))
    assert sum(p.stat().st_size for p in cached) <= 4 * size < total
    assert sorted(_epoch(ds, 1)) == list(range(480))
    assert total < shard_bytes(loopback_server, tmp_path / "pack") <= 2 * total


@pytest.mark.integration
def test_corrupt_shard_error_names_shard_url_and_hash(
    tmp_path: Path, loopback_server: LoopbackServer
) -> None:
    make_pack(tmp_path / "pack")
    url = serve_pack(loopback_server, tmp_path / "pack",
                     behaviours={"shard-00004.bin": {"wrong_bytes": True}})
    ds = StreamingDataset(url, cache_dir=tmp_path / "cache", shuffle=False, prefetch=0)
    expected = ds.shards.entry(4)["sha256"]
    with pytest.raises(ShardError, match=f"'shard-00004.bin' from {url}/shard-00004.bin failed "
                                         f"twice: expected sha256 {expected}"):
        ds[4 * 40]
    assert loopback_server.stats("/pack/shard-00004.bin").requests == 2
    assert not list((tmp_path / "cache").rglob("shard-00004.bin*"))


def _reader(url: str, out: Path, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, str(READER), url, str(out), "--cache-dir", str(cache), *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _ids(path: Path) -> list[int]:
    return [i for line in path.read_text().splitlines() for i in json.loads(line)]


@pytest.mark.integration
def test_kill_9_mid_epoch_then_resume_with_other_workers(
    tmp_path: Path, loopback_server: LoopbackServer
) -> None:
    make_pack(tmp_path / "pack")
    url = serve_pack(loopback_server, tmp_path / "pack")
    state = tmp_path / "state.json"
    first = subprocess.Popen(
        _reader(url, tmp_path / "first", tmp_path / "cache", "--workers", "2", "--epoch", "3",
                "--state", str(state), "--sleep-s", "0.1"),
        cwd=REPO, env=_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if state.exists() and json.loads(state.read_text())["stages"][-1][1] >= 96:
                break
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # the reader and its DataLoader workers
    finally:
        first.wait(timeout=30)
    saved = json.loads(state.read_text())
    consumed = saved["stages"][-1][1]
    assert 96 <= consumed < 480, "the reader finished before it could be killed"
    subprocess.run(_reader(url, tmp_path / "second", tmp_path / "cache", "--workers", "1",
                           "--epoch", "3", "--resume", str(state)),
                   cwd=REPO, env=_env(), check=True, timeout=120)
    ds = StreamingDataset(url, cache_dir=tmp_path / "cache", block_shards=2)  # as the reader
    sampler = StreamingSampler(ds, num_replicas=1, rank=0)
    sampler.set_epoch(3)
    expected = list(sampler)
    assert _ids(tmp_path / "first.rank0.jsonl")[:consumed] == expected[:consumed]
    assert _ids(tmp_path / "second.rank0.jsonl") == expected[consumed:]
