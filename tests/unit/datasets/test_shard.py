"""Sharded packs: the record format, the writer (resumable, S3-free here) and ``--verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from datasets import ShardError, verify_shards, write_shards
from datasets.errors import DataFormatError
from datasets.shard import main, parse_size
from datasets.shardcheck import check_header
from datasets.shardformat import Field, decode_record, encode_record, parse_index
from datasets.shardsource import ArraySource, ItemSource, record_source
from datasets.shardwriter import PROGRESS_FILE


class Images:
    """A packed-like dataset: uint8 ``.data``, ``.targets`` and a float ``__getitem__``."""

    def __init__(self, n: int, shape: tuple[int, ...] = (6, 5), seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.data = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
        self.targets = torch.arange(n) % 3
        self.classes = ["a", "b", "c"]

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.data[i].float() / 255, int(self.targets[i])  # what ToFloat would give


class Mixed:
    """Variable records: encoded bytes, token ids, text and an int label."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i == self.fail_at:
            raise KeyboardInterrupt
        return {"blob": bytes([i % 256]) * (i % 17), "input_ids": torch.arange(i % 5 + 1) * i,
                "text": f"sample {i} é", "label": i % 4}


def test_record_roundtrip_keeps_every_kind() -> None:
    schema = [Field("a", "array", "float32", (2, 3)), Field("y", "int"), Field("b", "bytes"),
              Field("t", "tokens"), Field("s", "text")]
    record = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "y": -7, "b": b"\x00\xff",
              "t": np.array([1, 2**31 - 1]), "s": "naïve"}
    out = decode_record(schema, encode_record(schema, record))
    assert np.array_equal(out["a"], record["a"]) and out["y"] == -7 and out["b"] == b"\x00\xff"
    assert out["t"].tolist() == [1, 2**31 - 1] and out["s"] == "naïve"


@pytest.mark.fuzz
@given(st.lists(st.tuples(st.binary(max_size=40), st.lists(st.integers(-2**31, 2**31 - 1),
                                                           max_size=9), st.integers(-2**62, 2**62)),
                max_size=12))
def test_record_roundtrip_fuzz(rows: list[tuple[bytes, list[int], int]]) -> None:
    schema = [Field("b", "bytes"), Field("t", "tokens"), Field("y", "int")]
    for blob, ids, label in rows:
        out = decode_record(schema, encode_record(schema, {"b": blob, "t": ids, "y": label}))
        assert (out["b"], out["t"].tolist(), out["y"]) == (blob, ids, label)


def test_source_reads_raw_uint8_not_transformed_floats() -> None:
    source = record_source(Images(10))
    assert isinstance(source, ArraySource)
    assert [(f.name, f.kind, f.dtype) for f in source.schema] == [
        ("image", "array", "uint8"), ("label", "int", "")]
    assert isinstance(record_source(Mixed(3)), ItemSource)


def test_write_shards_index_describes_every_shard(tmp_path: Path) -> None:
    ds = Images(100)
    index = write_shards(ds, tmp_path / "pack", shard_size_bytes=400)
    on_disk = json.loads((tmp_path / "pack" / "index.json").read_text())
    assert on_disk["count"] == 100 and on_disk["classes"] == ["a", "b", "c"]
    assert [s["start"] for s in on_disk["shards"]] == [s["start"] for s in index["shards"]]
    assert sum(s["count"] for s in on_disk["shards"]) == 100 and len(on_disk["shards"]) == 10
    for shard in on_disk["shards"]:
        path = tmp_path / "pack" / shard["name"]
        assert path.stat().st_size == shard["size_bytes"]
    mean = ds.data.double().mean().item() / 255
    assert on_disk["channel_stats"]["mean"][0] == pytest.approx(mean, abs=1e-6)
    assert not (tmp_path / "pack" / PROGRESS_FILE).exists()
    offsets = check_header(np.fromfile(tmp_path / "pack" / "shard-00000.bin", np.uint8),
                           on_disk["shards"][0], parse_index(json.dumps(on_disk), "i")["schema"], "s0")
    assert len(offsets) == 11  # 10 records of 38 bytes each fill a 400-byte shard


def test_colour_images_get_per_channel_stats(tmp_path: Path) -> None:
    ds = Images(20, shape=(4, 4, 3))
    ds.data[..., 0] = 255
    index = write_shards(ds, tmp_path / "pack")
    assert index["channel_stats"]["mean"][0] == 1.0 and index["channel_stats"]["std"][0] == 0.0
    assert len(index["channel_stats"]["mean"]) == 3


def test_interrupted_write_resumes_to_the_same_pack(tmp_path: Path) -> None:
    # a Python dataset has no fingerprint of its own: resuming needs the caller's
    whole = write_shards(Mixed(300), tmp_path / "whole", shard_size_bytes=500,
                         source_fingerprint="v1")
    with pytest.raises(KeyboardInterrupt):
        write_shards(Mixed(300, fail_at=200), tmp_path / "pack", shard_size_bytes=500,
                     source_fingerprint="v1")
    assert not (tmp_path / "pack" / "index.json").exists()
    progress = json.loads((tmp_path / "pack" / PROGRESS_FILE).read_text())
    assert 0 < len(progress["shards"]) < len(whole["shards"])
    resumed = write_shards(Mixed(300), tmp_path / "pack", shard_size_bytes=500,
                           source_fingerprint="v1")
    strip = [{k: v for k, v in s.items()} for s in whole["shards"]]
    assert resumed["shards"] == strip
    assert not list((tmp_path / "pack").glob(".shard-staging-*"))


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        write_shards(Mixed(300, fail_at=200), tmp_path / "pack", shard_size_bytes=500)
    with pytest.raises(ShardError, match="unfinished write of another source"):
        write_shards(Mixed(300), tmp_path / "pack", shard_size_bytes=900)


def test_resume_in_another_order_names_the_seed_to_use(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        write_shards(Mixed(300, fail_at=200), tmp_path / "pack", shard_size_bytes=500, seed=3)
    with pytest.raises(ShardError, match="another sample order.*--seed 3"):
        write_shards(Mixed(300), tmp_path / "pack", shard_size_bytes=500, seed=4)
    with pytest.raises(ShardError, match="another sample order.*--seed 3"):
        write_shards(Mixed(300), tmp_path / "pack", shard_size_bytes=500, shuffle=False)


def test_a_progress_file_from_before_write_seeds_resumes_in_source_order(tmp_path: Path) -> None:
    whole = write_shards(Mixed(300), tmp_path / "whole", shard_size_bytes=500, shuffle=False,
                         source_fingerprint="v1")
    with pytest.raises(KeyboardInterrupt):
        write_shards(Mixed(300, fail_at=200), tmp_path / "pack", shard_size_bytes=500,
                     shuffle=False, source_fingerprint="v1")
    progress_path = tmp_path / "pack" / PROGRESS_FILE
    progress = json.loads(progress_path.read_text())
    for key in ("write_shuffle_seed", "write_order_sha256"):  # what older writes recorded
        del progress["settings"][key]
    progress_path.write_text(json.dumps(progress))
    resumed = write_shards(Mixed(300), tmp_path / "pack", shard_size_bytes=500, shuffle=False,
                           source_fingerprint="v1")
    assert resumed["shards"] == whole["shards"]


def test_existing_pack_is_not_overwritten(tmp_path: Path) -> None:
    write_shards(Images(5), tmp_path / "pack")
    before = (tmp_path / "pack" / "index.json").read_bytes()
    with pytest.raises(ShardError, match="already holds a sharded pack"):
        write_shards(Images(7), tmp_path / "pack")
    assert (tmp_path / "pack" / "index.json").read_bytes() == before


def test_inconsistent_samples_name_the_index(tmp_path: Path) -> None:
    class Ragged:
        def __len__(self) -> int:
            return 9

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return torch.zeros(3 if i == 4 else 2, 2), 0

    with pytest.raises(DataFormatError, match="sample 4 field 'input' has shape"):
        write_shards(Ragged(), tmp_path / "pack", workers=1)
    assert not (tmp_path / "pack" / "index.json").exists()


def test_verify_finds_a_damaged_shard(tmp_path: Path) -> None:
    write_shards(Images(50), tmp_path / "pack", shard_size_bytes=400)
    assert verify_shards(tmp_path / "pack")[1] == []
    shard = tmp_path / "pack" / "shard-00002.bin"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1
    shard.write_bytes(bytes(data))
    index, bad = verify_shards(tmp_path / "pack")
    assert len(bad) == 1 and "shard-00002.bin" in bad[0] and "sha256" in bad[0]


def test_parse_index_refuses_gaps(tmp_path: Path) -> None:
    write_shards(Images(20), tmp_path / "pack", shard_size_bytes=200)
    index = json.loads((tmp_path / "pack" / "index.json").read_text())
    index["shards"][1]["start"] += 1
    with pytest.raises(ShardError, match="starts at"):
        parse_index(json.dumps(index), "x/index.json")
    with pytest.raises(ShardError, match="not JSON"):
        parse_index("{", "x/index.json")


def test_parse_size_units() -> None:
    assert parse_size("64MB") == 64_000_000 and parse_size("2KiB") == 2048
    with pytest.raises(Exception, match="expected a size"):
        parse_size("lots")


def test_cli_writes_a_folder_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    for label in ("A", "B"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (28, 28), color=i * 10).save(tmp_path / "imgs" / label / f"{i}.png")
    out = tmp_path / "pack"
    assert main([str(tmp_path / "imgs"), str(out), "--shard-size", "3KB", "--root",
                 str(tmp_path / "home"), "-q"]) == 0
    assert "wrote 12 samples in 4 shards" in capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    assert index["classes"] == ["A", "B"] and index["schema"][0]["shape"] == [28, 28]
    assert main(["--verify", str(out)]) == 0
    assert capsys.readouterr().out.startswith("ok: 4 shards, 12 samples")
    (out / "shard-00001.bin").write_bytes(b"x")
    assert main(["--verify", str(out)]) == 1
    assert "shard-00001.bin" in capsys.readouterr().out


def test_cli_text_file_stores_token_ids_and_vocab(tmp_path: Path) -> None:
    text = tmp_path / "spam.tsv"
    text.write_text("ham\thello there\nspam\twin money now\nham\thello again\n", encoding="utf-8")
    assert main([str(text), str(tmp_path / "pack"), "-q"]) == 0
    index = json.loads((tmp_path / "pack" / "index.json").read_text())
    assert [f["kind"] for f in index["schema"]] == ["tokens", "int"]
    assert index["classes"] == ["ham", "spam"] and "hello" in index["vocab"]["itos"]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: SOURCE") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("mode", ["w:xz", "w:bz2"])
def test_cli_reads_compressed_tar_archives_as_images(tmp_path: Path, mode: str) -> None:
    import tarfile

    from PIL import Image

    for label in ("A", "B"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), color=i * 40).save(tmp_path / "imgs" / label / f"{i}.png")
    archive = tmp_path / f"imgs.tar.{mode[2:]}"
    with tarfile.open(archive, mode) as tar:
        tar.add(tmp_path / "imgs", arcname="imgs")
    assert main([str(archive), str(tmp_path / "pack"), "--root", str(tmp_path / "home"), "-q"]) == 0
    index = json.loads((tmp_path / "pack" / "index.json").read_text())
    assert index["count"] == 6 and index["classes"] == ["A", "B"]


def test_split_defaults_to_the_whole_dataset_where_the_catalog_has_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import catalog, shard

    opened: list[tuple[str, str]] = []
    monkeypatch.setattr(catalog, "open_dataset",
                        lambda name, root, *, split, download: opened.append((name, split)) or Images(3))
    assert shard.build_parser().parse_args(["letters", "out"]).split is None
    shard.open_source("letters")
    shard.open_source("mnist")
    shard.open_source("mnist", split="test")
    assert opened == [("letters", "all"), ("mnist", "train"), ("mnist", "test")]


def test_mixed_size_folder_is_sharded_as_encoded_images(tmp_path: Path) -> None:
    from PIL import Image

    from datasets import StreamingDataset

    for label in ("A", "B"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8 + i, 10), (i * 40, 200, 0)).save(tmp_path / "imgs" / label / f"{i}.png")
    assert main([str(tmp_path / "imgs"), str(tmp_path / "pack"), "--root", str(tmp_path / "home"),
                 "-q"]) == 0
    index = json.loads((tmp_path / "pack" / "index.json").read_text())
    assert [f["kind"] for f in index["schema"]] == ["bytes", "int"] and index["classes"] == ["A", "B"]
    ds = StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c", transform=lambda t: t)
    shapes = sorted(tuple(ds[i][0].shape) for i in range(6))
    assert shapes == [(3, 10, 8), (3, 10, 8), (3, 10, 9), (3, 10, 9), (3, 10, 10), (3, 10, 10)]
    assert sorted(ds[i][1] for i in range(6)) == [0, 0, 0, 1, 1, 1]
    assert all(int(ds[i][0][1, 0, 0]) == 200 for i in range(6))


class SortedItems:
    """Items (no ``.data``) of 4 classes stored class by class; the pixel value is the id."""

    def __len__(self) -> int:
        return 400

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": np.full((2, 2), i % 256, np.uint8), "id": np.array([i], np.int32),
                "label": i // 100}


@pytest.mark.parametrize("source", ["arrays", "items"])
def test_write_shuffles_a_class_sorted_source_so_batches_mix_classes(tmp_path: Path,
                                                                     source: str) -> None:
    from datasets import StreamingDataset, StreamingSampler

    data = Images(400) if source == "arrays" else SortedItems()
    if source == "arrays":
        data.targets = torch.arange(400) // 100  # class order, as a folder lists its images
        data.classes = ["a", "b", "c", "d"]  # a label needs its class (issue 16 item 5)
    index = write_shards(data, tmp_path / "pack", shard_size_bytes=400)
    assert index["write_shuffle_seed"] == 0
    ds = StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c", transform=lambda x: x)
    assert isinstance(record_source(data, shuffle_seed=0), ArraySource if source == "arrays"
                      else ItemSource)
    labels = [ds[i][1] if source == "arrays" else ds[i]["label"]
              for i in StreamingSampler(ds, num_replicas=1, rank=0)]
    # the reader's window spans two shards (~20 samples here): in the source's order a batch
    # of 32 held one or two classes, and the model forgot the classes it saw first
    assert all(len(set(labels[b:b + 32])) == 4 for b in range(0, 384, 32))
    if source == "arrays":  # the same samples: a permutation of the source, pixels with labels
        pack = sorted((ds[i][0].flatten().tolist(), ds[i][1]) for i in range(400))
        source_pairs = zip(data.data, data.targets, strict=True)
        assert pack == sorted((x.flatten().tolist(), int(y)) for x, y in source_pairs)
    else:
        ids = [int(ds[i]["id"][0]) for i in range(400)]
        assert sorted(ids) == list(range(400)) and ids != list(range(400))
        assert all(ds[i]["label"] == ids[i] // 100 for i in range(400))


def test_write_keeps_the_order_when_asked(tmp_path: Path) -> None:
    from datasets import StreamingDataset

    index = write_shards(SortedItems(), tmp_path / "pack", shuffle=False)
    ds = StreamingDataset(tmp_path / "pack", cache_dir=tmp_path / "c")
    assert index["write_shuffle_seed"] is None
    assert [int(ds[i]["id"][0]) for i in range(400)] == list(range(400))


def test_cli_shuffles_a_folder_unless_keep_order(tmp_path: Path) -> None:
    from PIL import Image

    from datasets import StreamingDataset

    for label in ("A", "B"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (8, 8), color=i * 10).save(tmp_path / "imgs" / label / f"{i}.png")
    labels = {}
    for name, flags in (("kept", ["--keep-order"]), ("shuffled", ["--seed", "3"])):
        out = tmp_path / name
        assert main([str(tmp_path / "imgs"), str(out), "--root", str(tmp_path / "home"), "-q",
                     *flags]) == 0
        ds = StreamingDataset(out, cache_dir=tmp_path / "c")
        labels[name] = [ds[i][1] for i in range(12)]
        seed = json.loads((out / "index.json").read_text())["write_shuffle_seed"]
        assert seed == (None if name == "kept" else 3)
    assert labels["kept"] == [0] * 6 + [1] * 6
    assert sorted(labels["shuffled"]) == labels["kept"] != labels["shuffled"]


@pytest.mark.parametrize("count", [1, 7, 1000, 3 << 20])
def test_write_order_and_its_hash_are_those_earlier_writes_recorded(count: int) -> None:
    # A progress file stores the order's sha256; resuming it needs the same permutation and
    # digest as before the in-place shuffle and the hashing in parts.
    import hashlib

    from datasets.shardsource import order_sha256, write_order

    order = write_order(count, 5)
    assert order is not None and order.dtype == np.int32
    before = np.random.default_rng(5).permutation(count)
    assert np.array_equal(order, before)
    assert order_sha256(order) == hashlib.sha256(before.astype("<i8").tobytes()).hexdigest()


class _ItemImages:
    """Items only (no ``.data``): written record by record through ``ItemSource``."""

    def __init__(self, n: int, shape: tuple[int, ...]) -> None:
        g = torch.Generator().manual_seed(3)
        self.images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i].numpy(), "label": i % 2}


@pytest.mark.parametrize("shape", [(5, 4), (5, 4, 3)])
def test_record_by_record_writes_get_the_channel_stats_of_all_pixels(
        tmp_path: Path, shape: tuple[int, ...]) -> None:
    ds = _ItemImages(50, shape)
    assert isinstance(record_source(ds), ItemSource)
    index = write_shards(ds, tmp_path / "pack", shard_size_bytes=300)
    pixels = ds.images.double().reshape(50, -1, shape[2] if len(shape) == 3 else 1) / 255
    assert index["channel_stats"]["mean"] == pytest.approx(
        pixels.mean(dim=(0, 1)).tolist(), abs=1e-6)
    assert index["channel_stats"]["std"] == pytest.approx(
        pixels.std(dim=(0, 1), correction=0).tolist(), abs=1e-6)
