"""Sharded packs written to and streamed from a real S3-compatible server (moto) via boto3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from stream_pack import IdImages

from datasets import ShardError, StreamingDataset, StreamingSampler, ToFloat, write_shards
from datasets.shard import main


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on 127.0.0.1 with one bucket; skipped only if moto cannot start."""
    boto3 = pytest.importorskip("boto3", reason="boto3 is in the test extra")
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except (ImportError, OSError) as err:
        pytest.skip(f"moto's server cannot start here: {err}")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="packs")
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.mark.integration
def test_write_to_s3_verify_and_stream_back(tmp_path: Path, s3_endpoint: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    source = IdImages(300)
    index = write_shards(source, "s3://packs/ids", shard_size_bytes=72 * 50,
                         endpoint_url=s3_endpoint, shuffle=False)
    assert len(index["shards"]) == 6
    assert main(["--verify", "s3://packs/ids", "--endpoint-url", s3_endpoint, "-q"]) == 0
    assert "ok: 6 shards, 300 samples" in capsys.readouterr().out
    ds = StreamingDataset("s3://packs/ids", cache_dir=tmp_path / "cache", endpoint_url=s3_endpoint)
    seen = [ds[i][1] for i in StreamingSampler(ds, num_replicas=1, rank=0)]
    assert sorted(seen) == list(range(300))
    assert torch.equal(ds[77][0], ToFloat()(source.data[77][None]))
    assert ds.cache.fetched_bytes == sum(s["size_bytes"] for s in index["shards"])
    with pytest.raises(ShardError, match="already holds a sharded pack"):
        write_shards(source, "s3://packs/ids", endpoint_url=s3_endpoint)


@pytest.mark.integration
def test_tampered_s3_shard_is_named(tmp_path: Path, s3_endpoint: str) -> None:
    import boto3

    write_shards(IdImages(100), "s3://packs/t", shard_size_bytes=72 * 50, endpoint_url=s3_endpoint)
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket="packs", Key="t/shard-00001.bin", Body=b"not a shard")
    ds = StreamingDataset("s3://packs/t", cache_dir=tmp_path / "cache", endpoint_url=s3_endpoint,
                          prefetch=0)
    with pytest.raises(ShardError, match="shard 'shard-00001.bin' from s3://packs/t/shard-00001.bin failed"):
        ds[60]
    assert main(["--verify", "s3://packs/t", "--endpoint-url", s3_endpoint]) == 1


@pytest.mark.integration
def test_fit_streams_s3_with_endpoint_url(tmp_path: Path, s3_endpoint: str) -> None:
    import json

    from training.cli import main as training_main

    source = IdImages(200)
    source.targets = source.targets % 4  # 4 classes; the run only has to read and train
    write_shards(source, "s3://packs/fit", shard_size_bytes=72 * 50, endpoint_url=s3_endpoint)
    args = ["fit", "--stream", "s3://packs/fit", "--endpoint-url", s3_endpoint, "--epochs", "1",
            "--batch-size", "50", "--device", "cpu", "--root", str(tmp_path / "home"), "-q",
            "--out", str(tmp_path / "run")]
    assert training_main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"] == "s3://packs/fit" and metrics["test_count"] == 200


@pytest.mark.integration
@pytest.mark.parametrize("name", ["../../x.pth", "ABSOLUTE"])
def test_s3_pack_with_an_unsafe_shard_name_writes_nothing(tmp_path: Path, s3_endpoint: str,
                                                           name: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 16 item 1: the payload is really there under that key, with its own sha256 and size
    import json

    import boto3

    name = str(tmp_path / "site-packages" / "x.pth") if name == "ABSOLUTE" else name
    write_shards(IdImages(100), tmp_path / "pack", shard_size_bytes=72 * 50, shuffle=False)
    index = json.loads((tmp_path / "pack" / "index.json").read_text())
    payload = (tmp_path / "pack" / index["shards"][0]["name"]).read_bytes()
    index["shards"][0]["name"] = name
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.put_object(Bucket="packs", Key=f"evil/{name}", Body=payload)
    client.put_object(Bucket="packs", Key="evil/index.json", Body=json.dumps(index).encode())
    from datasets.storage import S3Store

    fetched: list[str] = []  # as the HTTP test checks: no shard key is even requested
    monkeypatch.setattr(S3Store, "fetch", lambda self, key, *args, **kwargs: fetched.append(key))
    with pytest.raises(ShardError, match="shard names must be plain file names") as err:
        StreamingDataset("s3://packs/evil", cache_dir=tmp_path / "cache",
                         endpoint_url=s3_endpoint)[0]
    assert "\n" not in str(err.value) and repr(name) in str(err.value)
    assert list(tmp_path.rglob("x.pth")) == [] and fetched == []
