"""StreamingDataset and StreamingSampler over local and `responses`-served packs."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import responses
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from datasets import (
    DataFormatError,
    DatasetNotFoundError,
    ShardError,
    StreamingDataset,
    StreamingSampler,
    ToFloat,
    write_shards,
)
from datasets.streamorder import length, rank_positions, remaining_after, select


class Images:
    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.data = torch.randint(0, 256, (n, 4, 4), dtype=torch.uint8, generator=g)
        self.targets = torch.arange(n) % 5

    def __len__(self) -> int:
        return len(self.data)


@pytest.fixture
def pack(tmp_path: Path) -> tuple[Path, Images]:
    source = Images(240)
    # 20 per shard, 12 shards, in the source's order: sample i is source[i]
    write_shards(source, tmp_path / "pack", shard_size_bytes=24 * 20, shuffle=False)
    return tmp_path / "pack", source


def _open(pack: Path, tmp_path: Path, **kwargs: Any) -> StreamingDataset:
    return StreamingDataset(pack, cache_dir=tmp_path / "cache", **kwargs)


def test_samples_equal_the_source(pack: tuple[Path, Images], tmp_path: Path) -> None:
    folder, source = pack
    ds = _open(folder, tmp_path)
    assert len(ds) == 240 and len(ds.counts) == 12
    for i in (0, 19, 20, 239):
        x, y = ds[i]
        assert torch.equal(x, ToFloat()(source.data[i][None])) and y == int(source.targets[i])
    with pytest.raises(IndexError):
        ds[240]


def test_colour_images_come_back_channel_first_as_float(tmp_path: Path) -> None:
    hwc = torch.randint(0, 256, (30, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))

    class Colour:
        def __len__(self) -> int:
            return 30

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"image": hwc[i].numpy(), "label": i % 3}

    write_shards(Colour(), tmp_path / "pack", shard_size_bytes=4000, shuffle=False)
    ds = StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c", shuffle=False)
    expected = ToFloat()(hwc.permute(0, 3, 1, 2).contiguous())
    x, y = ds[7]
    assert x.dtype == torch.float32 and x.shape == (3, 16, 16) and y == 1
    assert torch.equal(x, expected[7])
    images, _ = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, sampler=StreamingSampler(ds))))
    assert images.shape == (8, 3, 16, 16)
    raw, _ = StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c", transform=lambda t: t)[7]
    assert raw.dtype == torch.uint8 and torch.equal(raw, hwc[7].permute(2, 0, 1))


@pytest.mark.parametrize("channels", [1, 3])
def test_raw_samples_are_writable_copies_not_the_shard(tmp_path: Path, channels: int) -> None:
    hwc = torch.randint(0, 200, (10, 6, 6, channels), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(2))

    class Source:
        def __len__(self) -> int:
            return 10

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"image": hwc[i].numpy(), "label": 0}

    write_shards(Source(), tmp_path / "pack", shard_size_bytes=4000, shuffle=False)
    ds = StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c", transform=lambda t: t)
    x, _ = ds[4]
    x.add_(1)  # in place, as a user transform may do: must not touch the read-only shard
    again, _ = ds[4]
    assert torch.equal(again, hwc[4].permute(2, 0, 1))


def test_transforms_apply_to_input_and_label(pack: tuple[Path, Images], tmp_path: Path) -> None:
    ds = _open(pack[0], tmp_path, transform=lambda x: x.float() / 255,
               target_transform=lambda y: y + 100)
    x, y = ds[3]
    assert x.dtype == torch.float32 and y == 103


def test_variable_fields_and_jpeg_decoding(tmp_path: Path) -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (7, 5), (200, 10, 10)).save(jpeg, format="JPEG", quality=95)

    class Mixed:
        def __len__(self) -> int:
            return 30

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"photo": jpeg.getvalue(), "input_ids": torch.arange(i % 4 + 1),
                    "text": f"t{i}", "label": i % 2}

    write_shards(Mixed(), tmp_path / "pack", shard_size_bytes=2000, shuffle=False)
    record = StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c")[7]
    assert record["photo"].shape == (3, 5, 7) and record["photo"].dtype == torch.uint8
    assert abs(int(record["photo"][0, 2, 3]) - 200) < 8
    assert record["input_ids"].tolist() == [0, 1, 2, 3] and record["text"] == "t7"
    raw = StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c", decode=False)[7]
    assert raw["photo"] == jpeg.getvalue()


def test_one_rank_visits_every_sample_once_in_a_seeded_order(
    pack: tuple[Path, Images], tmp_path: Path
) -> None:
    ds = _open(pack[0], tmp_path)
    sampler = StreamingSampler(ds, num_replicas=1, rank=0)
    first = list(sampler)
    assert sorted(first) == list(range(240)) and first != sorted(first)
    assert list(StreamingSampler(_open(pack[0], tmp_path), num_replicas=1, rank=0)) == first
    sampler.set_epoch(1)
    assert sorted(list(sampler)) == list(range(240)) and list(sampler) != first
    plain = StreamingSampler(_open(pack[0], tmp_path, shuffle=False), num_replicas=1, rank=0)
    assert list(plain) == list(range(240))


def test_blocks_bound_the_shards_in_use(pack: tuple[Path, Images], tmp_path: Path) -> None:
    ds = _open(pack[0], tmp_path, block_shards=3)
    order = list(StreamingSampler(ds, num_replicas=1, rank=0))
    shards_of = [set(np.array(order[i:i + 60]) // 20) for i in range(0, 240, 60)]
    assert all(len(s) == 3 for s in shards_of)  # 60 samples = one block of 3 shards


@pytest.mark.parametrize("world", [2, 3, 7])
def test_ranks_partition_the_epoch(pack: tuple[Path, Images], tmp_path: Path, world: int) -> None:
    ds = _open(pack[0], tmp_path)
    per_rank = [list(StreamingSampler(ds, num_replicas=world, rank=r)) for r in range(world)]
    assert len({len(p) for p in per_rank}) == 1 and len(per_rank[0]) == -(-240 // world)
    union = [i for p in per_rank for i in p]
    assert set(union) == set(range(240)) and len(union) - 240 == (-240) % world  # the padding


def test_elastic_resume_visits_the_rest_once(pack: tuple[Path, Images], tmp_path: Path) -> None:
    ds = _open(pack[0], tmp_path)
    first = [StreamingSampler(ds, num_replicas=4, rank=r) for r in range(4)]
    for s in first:
        s.set_epoch(2)
    seen = [i for s in first for i in list(s)[:17]]
    state = first[0].state_dict(consumed=17)
    rest = []
    for r in range(3):
        resumed = StreamingSampler(ds, num_replicas=3, rank=r)
        resumed.load_state_dict(state)
        resumed.set_epoch(2)  # fit calls it again: the loaded position stays
        rest += list(resumed)
    assert set(seen + rest) == set(range(240))
    assert len(seen) + len(rest) - 240 == (-(240 - 68)) % 3  # the new stage's padding only


def test_load_state_dict_refuses_another_seed(pack: tuple[Path, Images], tmp_path: Path) -> None:
    state = StreamingSampler(_open(pack[0], tmp_path), num_replicas=1, rank=0).state_dict()
    other = StreamingSampler(_open(pack[0], tmp_path, seed=1), num_replicas=1, rank=0)
    with pytest.raises(ValueError, match="seed=1 but got seed=0"):
        other.load_state_dict(state)


@pytest.mark.fuzz
@given(total=st.integers(0, 300),
       stages=st.lists(st.tuples(st.integers(1, 9), st.integers(0, 60)), max_size=4))
def test_stages_never_lose_a_position(total: int, stages: list[tuple[int, int]]) -> None:
    intervals = [(0, total)] if total else []
    consumed: list[int] = []
    for number, (world, k) in enumerate(stages):
        for rank in range(world):
            mine = [p for lo, hi in rank_positions(intervals, world, rank) for p in range(lo, hi)]
            consumed += mine[:k]
        intervals = remaining_after(total, stages[:number + 1])
    rest = [p for lo, hi in intervals for p in range(lo, hi)]
    assert sorted(set(consumed) | set(rest)) == list(range(total))
    assert len(rest) == len(set(rest)) and length(intervals) == len(rest)
    assert select([(0, 5), (10, 15)], 3, 8) == [(3, 5), (10, 13)]


def test_cache_limit_evicts_least_recently_used(pack: tuple[Path, Images], tmp_path: Path) -> None:
    folder, source = pack
    size = (folder / "shard-00000.bin").stat().st_size
    ds = _open(folder, tmp_path, cache_limit=5 * size, block_shards=2, prefetch=1)
    sampler = StreamingSampler(ds, num_replicas=1, rank=0)
    for i in sampler:
        x, y = ds[i]
        assert torch.equal(x, ToFloat()(source.data[i][None]))
    cached = list((tmp_path / "cache" / "streaming").glob("*/shard-*.bin"))
    assert 0 < len(cached) <= 5 and sum(p.stat().st_size for p in cached) <= 5 * size
    assert ds.cache.fetched_bytes >= 12 * size


def test_warm_cache_fetches_nothing(pack: tuple[Path, Images], tmp_path: Path) -> None:
    ds = _open(pack[0], tmp_path)
    _ = [ds[i] for i in StreamingSampler(ds, num_replicas=1, rank=0)]
    fetched = ds.cache.fetched_bytes
    assert fetched == sum(p.stat().st_size for p in pack[0].glob("shard-*.bin"))
    again = _open(pack[0], tmp_path)
    _ = [again[i] for i in range(240)]
    assert again.cache.fetched_bytes == 0


def test_cache_limit_too_small_is_refused(pack: tuple[Path, Images], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cache_limit should be at least"):
        _open(pack[0], tmp_path, cache_limit=100)


def test_missing_index_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no index.json"):
        StreamingDataset(tmp_path, cache_dir=tmp_path / "c")


def test_damaged_shard_is_fetched_twice_then_named(
    pack: tuple[Path, Images], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, _ = pack
    ds = _open(folder, tmp_path, prefetch=0)
    shard = folder / "shard-00003.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    caplog.set_level(logging.WARNING)
    with pytest.raises(ShardError, match=r"'shard-00003.bin' from .*shard-00003.bin failed twice: "
                       rf"expected sha256 {ds.shards.entry(3)['sha256']}"):
        ds[65]
    assert "fetching it again once" in caplog.text


@responses.activate
def test_http_pack_refetches_a_bad_shard_once(pack: tuple[Path, Images], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from loaders import transfer

    monkeypatch.setattr(transfer, "_sleep", lambda s: None)
    folder, source = pack
    base = "https://store.example/pack"
    responses.get(f"{base}/index.json", body=(folder / "index.json").read_bytes())
    good = (folder / "shard-00001.bin").read_bytes()
    responses.get(f"{base}/shard-00001.bin", body=good[:-1] + bytes([good[-1] ^ 1]))
    responses.get(f"{base}/shard-00001.bin", body=good)
    ds = StreamingDataset(base, cache_dir=tmp_path / "c", prefetch=0)
    x, _ = ds[25]
    assert torch.equal(x, ToFloat()(source.data[25][None]))
    shard_calls = [c for c in responses.calls if c.request.url.endswith("shard-00001.bin")]
    assert len(shard_calls) == 2


def test_getitems_matches_getitem(pack: tuple[Path, Images], tmp_path: Path) -> None:
    ds = _open(pack[0], tmp_path)
    ids = [5, 200, 3, 21, 5, 239]
    batch = ds.__getitems__(ids)
    for i, (x, y) in zip(ids, batch, strict=True):
        assert torch.equal(x, ds[i][0]) and y == ds[i][1] and isinstance(y, int)
    with pytest.raises(IndexError):
        ds.__getitems__([0, 240])
    loader = torch.utils.data.DataLoader(ds, batch_size=64, sampler=StreamingSampler(ds))
    labels = torch.cat([y for _, y in loader])
    assert sorted(labels.tolist()) == sorted(pack[1].targets.tolist())


def test_pickled_dataset_leaves_open_shards_behind(pack: tuple[Path, Images], tmp_path: Path) -> None:
    import pickle

    ds = _open(pack[0], tmp_path)
    x, _ = ds[3]
    copy = pickle.loads(pickle.dumps(ds))
    assert not copy._open and len(ds._open) == 1
    assert torch.equal(copy[3][0], x)


@responses.activate
def test_retry_policy_reaches_http_fetches_and_workers(
    pack: tuple[Path, Images], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import pickle

    from loaders import RetryPolicy, transfer

    monkeypatch.setattr(transfer, "_sleep", lambda s: None)
    folder, source = pack
    base = "https://store.example/pack"
    responses.get(f"{base}/index.json", body=(folder / "index.json").read_bytes())
    for _ in range(2):
        responses.get(f"{base}/shard-00001.bin", status=503)
    responses.get(f"{base}/shard-00001.bin", body=(folder / "shard-00001.bin").read_bytes())
    policy = RetryPolicy(attempts=2)
    ds = StreamingDataset(base, cache_dir=tmp_path / "c", prefetch=0, retry=policy)
    assert pickle.loads(pickle.dumps(ds)).cache.store.retry == policy  # workers keep it
    # 2 attempts per fetch (the default 4 would get through in one): the first fetch fails on
    # two 503s, the shard is fetched once more and succeeds
    with caplog.at_level(logging.WARNING, logger="datasets.shardcache"):
        x, _ = ds[25]
    assert torch.equal(x, ToFloat()(source.data[25][None]))
    assert "fetching it again once" in caplog.text
    assert len([c for c in responses.calls if c.request.url.endswith("shard-00001.bin")]) == 3


def test_shard_table_matches_the_index(pack: tuple[Path, Images], tmp_path: Path) -> None:
    import json

    from datasets.shardformat import ShardTable

    folder, _ = pack
    shards = json.loads((folder / "index.json").read_text())["shards"]
    shards[0]["sha256"] = "00" * 31 + "ab"  # leading NULs survive (no numpy "S" stripping)
    shards[1]["sha256"] = "ab" + "00" * 31  # trailing ones too
    table = ShardTable(shards)
    assert [table.entry(k) for k in range(len(table))] == shards
    renamed = [{**s, "name": f"part-{k}.bin"} for k, s in enumerate(shards)]
    assert ShardTable(renamed).name(5) == "part-5.bin"
    with pytest.raises(ShardError, match="sha256 is not 64 hex digits"):
        ShardTable([{**shards[0], "sha256": "abcd"}])


def test_block_order_needs_its_shards_one_after_the_other() -> None:
    from datasets.streamorder import EpochOrder

    order = EpochOrder([100] * 400, seed=3, epoch=1, shuffle=True, block_shards=4)
    ids = order.take(0, 40_000)
    assert sorted(ids.tolist()) == list(range(40_000))
    first_from_first = 0
    for b in range(100):
        rank_in_block = {int(s): j for j, s in enumerate(order.block(b))}
        shards = [rank_in_block[i // 100] for i in ids[b * 400:(b + 1) * 400].tolist()]
        # position p never needs a shard past p // 100 + 2 (the window is two shards' worth)
        assert all(j <= p // 100 + 2 for p, j in enumerate(shards))
        first_from_first += all(j == 0 for j in shards[:10])
        assert len(set(shards[:256])) >= 3  # a batch still mixes several shards
    assert first_from_first >= 95  # a reader can start after the block's first shard


def _bytes_pack(tmp_path: Path, blobs: list[bytes]) -> StreamingDataset:
    class Blobs:
        def __len__(self) -> int:
            return len(blobs)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"image": blobs[i], "label": i}

    write_shards(Blobs(), tmp_path / "pack", shard_size_bytes=1 << 20, shuffle=False)
    return StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c", shuffle=False,
                            transform=lambda t: t)


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_images_decode_like_every_other_dataset(tmp_path: Path) -> None:
    from datasets.imagedecode import decode_image

    ramp = np.linspace(0, 65535, 12 * 9).astype(np.uint16).reshape(9, 12)
    rgba = np.zeros((6, 5, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 0  # fully transparent red
    grey = np.random.default_rng(0).integers(0, 256, (7, 11), dtype=np.uint8)
    blobs = [_encoded(Image.fromarray(ramp), "PNG"), _encoded(Image.fromarray(rgba, "RGBA"), "PNG"),
             _encoded(Image.fromarray(grey), "BMP"), _encoded(Image.fromarray(grey), "JPEG")]
    ds = _bytes_pack(tmp_path, blobs)
    for i, blob in enumerate(blobs):
        expected = torch.from_numpy(decode_image(blob)[0]).permute(2, 0, 1)
        assert torch.equal(ds[i][0], expected)
    assert int(ds[0][0].max()) == 255 and len(ds[0][0].unique()) > 50  # 16 bits scaled, not clipped
    assert ds[2][0].shape == (1, 7, 11)  # BMP is decoded too


def test_unreadable_image_names_the_sample_and_shard(tmp_path: Path) -> None:
    good = _encoded(Image.new("RGB", (4, 4)), "JPEG")
    ds = _bytes_pack(tmp_path, [good, good[:40]])
    assert ds[0][0].shape == (3, 4, 4)
    with pytest.raises(DataFormatError, match=r"sample 1 \('shard-00000.bin' of .*pack\)"):
        ds[1]
    with pytest.raises(DataFormatError, match="sample 1"):
        ds.__getitems__([0, 1])
