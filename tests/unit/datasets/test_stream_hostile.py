"""A served pack is outside input: its index and shard headers must not be trusted (issue 16)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import responses
import torch

from datasets import ShardError, StreamingDataset, write_shards
from datasets.shardcache import ShardCache
from datasets.shardformat import ShardTable
from datasets.storage import open_store


class Digits:
    def __init__(self, n: int) -> None:
        self.data = torch.arange(n * 16, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(n, 4, 4)
        self.targets = torch.arange(n) % 3
        self.classes = ["a", "b", "c"]

    def __len__(self) -> int:
        return len(self.data)


def _pack(folder: Path, n: int = 40, per_shard: int = 20) -> dict[str, Any]:
    write_shards(Digits(n), folder, shard_size_bytes=24 * per_shard, shuffle=False)
    return json.loads((folder / "index.json").read_text())


def _renamed(index: dict[str, Any], name: str) -> bytes:
    index = json.loads(json.dumps(index))
    index["shards"][0]["name"] = name  # same sha256 and size: the payload is the real shard
    return json.dumps(index).encode()


HOSTILE = ["../../x.pth", "..", ".", "", "a/x.pth", "..\\..\\x.pth", "C:x.pth", "C:", "x\x00.pth"]


@pytest.mark.parametrize("name", HOSTILE)
def test_folder_pack_refuses_unsafe_shard_names_before_fetching(tmp_path: Path, name: str) -> None:
    index = _pack(tmp_path / "good")
    payload = (tmp_path / "good" / "shard-00000.bin").read_bytes()
    served = tmp_path / "served" / "a" / "pack"
    served.mkdir(parents=True)
    (served / "index.json").write_bytes(_renamed(index, name))
    (tmp_path / "served" / "x.pth").write_bytes(payload)  # where served/a/pack/../../x.pth reads
    cache = tmp_path / "home"
    with pytest.raises(ShardError) as err:
        StreamingDataset(served, cache_dir=cache, prefetch=0)[0]
    message = str(err.value)
    assert "\n" not in message and repr(name) in message and "index.json" in message
    assert not (cache / "x.pth").exists()
    assert [p for p in tmp_path.rglob("*.pth") if p != tmp_path / "served" / "x.pth"] == []


def test_folder_pack_refuses_an_absolute_shard_name(tmp_path: Path) -> None:
    index = _pack(tmp_path / "good")
    evil = tmp_path / "site-packages" / "x.pth"
    served = tmp_path / "served"
    served.mkdir()
    (served / "index.json").write_bytes(_renamed(index, str(evil)))
    with pytest.raises(ShardError, match="absolute path"):
        StreamingDataset(served, cache_dir=tmp_path / "home", prefetch=0)[0]
    assert not evil.exists()


@responses.activate
@pytest.mark.parametrize("name", ["../../x.pth", "ABSOLUTE", "a/../../x.pth"])
def test_http_pack_refuses_unsafe_shard_names_before_fetching(tmp_path: Path, name: str) -> None:
    # an absolute name under tmp_path: the old reader really wrote there (never use /abs here)
    name = str(tmp_path / "site-packages" / "x.pth") if name == "ABSOLUTE" else name
    index = _pack(tmp_path / "good")
    payload = (tmp_path / "good" / "shard-00000.bin").read_bytes()
    base = "https://store.example/packs/a"
    responses.get(f"{base}/index.json", body=_renamed(index, name))
    responses.get(re.compile(r"https://store\.example/.*\.(pth|bin)"), body=payload)
    with pytest.raises(ShardError) as err:
        StreamingDataset(base, cache_dir=tmp_path / "home", prefetch=0)[0]
    assert "\n" not in str(err.value) and repr(name) in str(err.value)
    assert [c.request.url for c in responses.calls] == [f"{base}/index.json"]
    assert list(tmp_path.rglob("x.pth")) == []


@responses.activate
@pytest.mark.parametrize("name", ["x#y.bin", "x?y.bin", "x%2fy.bin", "é 1.bin"])
def test_http_shard_names_are_quoted_in_urls(tmp_path: Path, name: str) -> None:
    # before: x#y.bin fetched x (the rest was a fragment), x?y.bin fetched x with a query
    index = _pack(tmp_path / "good")
    base = "https://store.example/packs/a"
    responses.get(f"{base}/index.json", body=_renamed(index, name))
    responses.get(f"{base}/{quote(name, safe='')}",
                  body=(tmp_path / "good" / "shard-00000.bin").read_bytes())
    ds = StreamingDataset(base, cache_dir=tmp_path / "home", prefetch=0)
    assert ds[5][1] == 5 % 3
    assert responses.calls[-1].request.url == f"{base}/{quote(name, safe='')}"


def test_cache_path_must_resolve_inside_the_cache_folder(tmp_path: Path) -> None:
    # the second guard, for names that reach the cache without parse_index's check
    index = _pack(tmp_path / "good")
    entries = [{**index["shards"][0], "name": "../escape.bin"}]
    cache = ShardCache(open_store(tmp_path / "good"), ShardTable(entries), tmp_path / "home" / "p",
                       cache_limit=None, prefetch_threads=0)
    with pytest.raises(ShardError, match=r"resolves to .*escape.bin, outside"):
        cache.path(0)
    assert not (tmp_path / "home" / "escape.bin").exists()


def test_a_symlink_in_the_cache_cannot_lead_outside(tmp_path: Path) -> None:
    index = _pack(tmp_path / "good")
    folder = tmp_path / "home" / "p"
    folder.mkdir(parents=True)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not a shard")
    (folder / "shard-00000.bin").symlink_to(outside)
    cache = ShardCache(open_store(tmp_path / "good"), ShardTable(index["shards"]), folder,
                       cache_limit=None, prefetch_threads=0)
    with pytest.raises(ShardError, match="outside"):
        cache.path(0)
    assert outside.read_bytes() == b"not a shard"


@pytest.mark.parametrize("name", ["shard-00000.bin", "part-0.bin"])
def test_plain_shard_names_still_read(tmp_path: Path, name: str) -> None:
    index = _pack(tmp_path / "good")
    served = tmp_path / "served"
    served.mkdir()
    (served / name).write_bytes((tmp_path / "good" / "shard-00000.bin").read_bytes())
    (served / "shard-00001.bin").write_bytes((tmp_path / "good" / "shard-00001.bin").read_bytes())
    (served / "index.json").write_bytes(_renamed(index, name))
    ds = StreamingDataset(served, cache_dir=tmp_path / "home", prefetch=0)
    assert ds[5][1] == 5 % 3 and ds[25][1] == 25 % 3


def test_repeated_shard_names_are_refused(tmp_path: Path) -> None:
    index = _pack(tmp_path / "good")
    index["shards"][1]["name"] = index["shards"][0]["name"]
    (tmp_path / "good" / "index.json").write_text(json.dumps(index))
    with pytest.raises(ShardError, match="like an earlier shard"):
        StreamingDataset(tmp_path / "good", cache_dir=tmp_path / "home")


# the cache's own files (review P0 1: .evict made the reader wait an hour on its own lock;
# .pins was returned as the shard; x.part is shard x's download) and names that fake lines
BOOKKEEPING = [".evict", ".pins", ".shard-00001.bin.lock", "x.part", "x.LOCK", "a\nbad: b",
               "\u202enib.x", "CON", "x" * 300]


@pytest.mark.parametrize("name", BOOKKEEPING)
def test_shard_names_of_the_caches_own_files_are_refused(tmp_path: Path, name: str) -> None:
    index = _pack(tmp_path / "good")
    served = tmp_path / "served"
    served.mkdir()
    (served / "index.json").write_bytes(_renamed(index, name))
    with pytest.raises(ShardError, match="refused before fetching anything") as err:
        StreamingDataset(served, cache_dir=tmp_path / "home", prefetch=0, cache_limit=10**6)
    assert "\n" not in str(err.value) and repr(name) in str(err.value)
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.bin"))


def test_shard_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    # one file on macOS and Windows: two shards would overwrite each other in the cache
    index = _pack(tmp_path / "good")
    index["shards"][1]["name"] = index["shards"][0]["name"].upper()
    (tmp_path / "good" / "index.json").write_text(json.dumps(index))
    with pytest.raises(ShardError, match="like an earlier shard .*ignoring case"):
        StreamingDataset(tmp_path / "good", cache_dir=tmp_path / "home")


def test_file_url_pack_refuses_unsafe_shard_names_before_fetching(tmp_path: Path) -> None:
    index = _pack(tmp_path / "good")
    payload = (tmp_path / "good" / "shard-00000.bin").read_bytes()
    served = tmp_path / "served" / "a" / "pack"
    served.mkdir(parents=True)
    (served / "index.json").write_bytes(_renamed(index, "../../x.pth"))
    (tmp_path / "served" / "x.pth").write_bytes(payload)
    with pytest.raises(ShardError, match=r"'\.\./\.\./x\.pth'.*shard names must be plain"):
        StreamingDataset(served.as_uri(), cache_dir=tmp_path / "home", prefetch=0)[0]
    assert not (tmp_path / "home" / "x.pth").exists()
