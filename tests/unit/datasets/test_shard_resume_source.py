"""A shard write resumed over a changed source starts over; a stale complete pack is named."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from image_factory import image_for, make_image_tree

import datasets.shardsource
from datasets import ImageFolderDataset, ShardError, StreamingDataset, write_shards
from datasets.shard import main
from datasets.shardwriter import PROGRESS_FILE


def _interrupted_write(src: Path, out: Path, cache: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Write ``src`` to ``out`` and stop after two shards, as Ctrl-C would."""
    real = datasets.shardsource.ArraySource.chunks

    def two_then_stop(self, start, shard_size_bytes):  # type: ignore[no-untyped-def]
        for n, chunk in enumerate(real(self, start, shard_size_bytes)):
            if n == 2:
                raise KeyboardInterrupt
            yield chunk

    with monkeypatch.context() as patch:
        patch.setattr(datasets.shardsource.ArraySource, "chunks", two_then_stop)
        with pytest.raises(KeyboardInterrupt):
            write_shards(ImageFolderDataset.pack(src, cache_dir=cache), out,
                         shard_size_bytes=3 * 28 * 28, source=str(src), workers=1)
    assert len(json.loads((out / PROGRESS_FILE).read_text())["shards"]) == 2


def _samples(out: Path) -> list[tuple[bytes, int]]:
    ds = StreamingDataset(out, cache_dir=out.parent / "read-cache", transform=lambda x: x)
    return sorted((bytes(ds[i][0].numpy().tobytes()), int(ds[i][1])) for i in range(len(ds)))


def test_resume_over_a_changed_source_starts_over_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    src = make_image_tree(tmp_path / "src", per_class=6)
    out, cache = tmp_path / "out", tmp_path / "cache"
    _interrupted_write(src, out, cache, monkeypatch)
    # move two files between class folders: same count, same names, other labels
    shutil.move(src / "A" / "00000.png", src / "B" / "moved-0.png")
    shutil.move(src / "B" / "00001.png", src / "A" / "moved-1.png")
    caplog.set_level(logging.WARNING, logger="datasets.shardwriter")
    index = write_shards(ImageFolderDataset.pack(src, cache_dir=cache), out,
                         shard_size_bytes=3 * 28 * 28, source=str(src), workers=1)
    assert "starting the write over" in caplog.text
    fresh = write_shards(ImageFolderDataset.pack(src, cache_dir=cache), tmp_path / "fresh",
                         shard_size_bytes=3 * 28 * 28, source=str(src), workers=1)
    assert index["count"] == fresh["count"] == 18
    assert [s["sha256"] for s in index["shards"]] == [s["sha256"] for s in fresh["shards"]]
    labels = {(bytes(image_for(0, 0).tobytes()), 1), (bytes(image_for(1, 1).tobytes()), 0)}
    assert labels <= set(_samples(out))


def test_resume_over_an_unchanged_source_continues(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_image_tree(tmp_path / "src", per_class=6)
    out, cache = tmp_path / "out", tmp_path / "cache"
    _interrupted_write(src, out, cache, monkeypatch)
    first = json.loads((out / PROGRESS_FILE).read_text())["shards"]
    index = write_shards(ImageFolderDataset.pack(src, cache_dir=cache), out,
                         shard_size_bytes=3 * 28 * 28, source=str(src), workers=1)
    assert index["shards"][:2] == [{k: v for k, v in s.items() if k != "pixel_sums"}
                                   for s in first]


def test_cli_over_a_complete_pack_of_a_changed_source_names_it_stale(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_image_tree(tmp_path / "src", per_class=3)
    out = tmp_path / "out"
    argv = [str(src), str(out), "--root", str(tmp_path / "cache"), "-q"]
    assert main(argv) == 0
    assert main(argv) == 1
    assert "already holds a sharded pack of this source" in capsys.readouterr().err
    (src / "A" / "00000.png").write_bytes((src / "B" / "00000.png").read_bytes())
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "earlier version of the source" in err and "stale" in err


def test_cli_to_an_out_below_a_file_is_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    src = make_image_tree(tmp_path / "src", per_class=2)
    assert main([str(src), "/dev/null/x", "--root", str(tmp_path / "cache"), "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write a pack to /dev/null/x (Not a directory")
    assert len(err.splitlines()) == 1


def test_cli_over_a_complete_pack_of_a_rewritten_text_file_names_it_stale(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "spam.tsv"
    text.write_text("ham\thello there\nspam\twin money now\n", encoding="utf-8")
    argv = [str(text), str(tmp_path / "pack"), "-q"]
    assert main(argv) == 0
    stat = text.stat()
    text.write_text("spam\thello there\nham\twin money now\n", encoding="utf-8")  # same size
    os.utime(text, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert main(argv) == 1
    assert "earlier version of the source" in capsys.readouterr().err


def _stop_after_two(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next write of an item dataset stop after two shards, as Ctrl-C would."""
    real = datasets.shardsource.ItemSource.chunks

    def two_then_stop(self, start, shard_size_bytes):  # type: ignore[no-untyped-def]
        for n, chunk in enumerate(real(self, start, shard_size_bytes)):
            if n == 2:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(datasets.shardsource.ItemSource, "chunks", two_then_stop)


def test_uncached_image_folder_changed_since_an_interrupted_write_starts_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    src = make_image_tree(tmp_path / "src", per_class=6)
    out = tmp_path / "out"
    kwargs = {"shard_size_bytes": 3 * 28 * 28 * 4, "source": str(src), "workers": 1,
              "shuffle": False}
    with monkeypatch.context() as patch:
        _stop_after_two(patch)
        with pytest.raises(KeyboardInterrupt):
            write_shards(ImageFolderDataset(src, mode="L"), out, **kwargs)
    assert len(json.loads((out / PROGRESS_FILE).read_text())["shards"]) == 2
    shutil.move(src / "A" / "00000.png", src / "B" / "moved-0.png")
    shutil.move(src / "B" / "00001.png", src / "A" / "moved-1.png")
    caplog.set_level(logging.WARNING, logger="datasets.shardwriter")
    index = write_shards(ImageFolderDataset(src, mode="L"), out, **kwargs)
    assert "as it was before its files changed; starting the write over" in caplog.text
    fresh = write_shards(ImageFolderDataset(src, mode="L"), tmp_path / "fresh", **kwargs)
    assert [s["sha256"] for s in index["shards"]] == [s["sha256"] for s in fresh["shards"]]
    assert index["source_fingerprint"] and index["source_fingerprint"] == fresh["source_fingerprint"]


def test_uncached_image_folder_unchanged_resumes(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_image_tree(tmp_path / "src", per_class=6)
    out = tmp_path / "out"
    kwargs = {"shard_size_bytes": 3 * 28 * 28 * 4, "source": str(src), "workers": 1}
    with monkeypatch.context() as patch:
        _stop_after_two(patch)
        with pytest.raises(KeyboardInterrupt):
            write_shards(ImageFolderDataset(src, mode="L"), out, **kwargs)
    first = json.loads((out / PROGRESS_FILE).read_text())["shards"]
    index = write_shards(ImageFolderDataset(src, mode="L"), out, **kwargs)
    assert [s["sha256"] for s in index["shards"][:2]] == [s["sha256"] for s in first]


class _Rows:
    """A Python dataset (no fingerprint): ``value + i`` for each row ``i``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> dict[str, int]:
        return {"x": self.value + i, "label": i % 2}


def test_a_dataset_without_fingerprint_starts_over_instead_of_resuming(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _stop_after_two(patch)
        with pytest.raises(KeyboardInterrupt):
            write_shards(_Rows(0), out, shard_size_bytes=64, source="rows", shuffle=False)
    caplog.set_level(logging.WARNING, logger="datasets.shardwriter")
    index = write_shards(_Rows(1000), out, shard_size_bytes=64, source="rows", shuffle=False)
    assert "without a fingerprint" in caplog.text and "source_fingerprint=" in caplog.text
    fresh = write_shards(_Rows(1000), tmp_path / "fresh", shard_size_bytes=64, source="rows",
                         shuffle=False)
    assert [s["sha256"] for s in index["shards"]] == [s["sha256"] for s in fresh["shards"]]


def test_a_complete_pack_is_refused_saying_what_is_known_of_its_source(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_shards(_Rows(0), out, shard_size_bytes=64, source_fingerprint="v1")
    with pytest.raises(ShardError, match="already holds a sharded pack of this source"):
        write_shards(_Rows(0), out, shard_size_bytes=64, source_fingerprint="v1")
    with pytest.raises(ShardError, match="earlier version of the source .* stale"):
        write_shards(_Rows(0), out, shard_size_bytes=64, source_fingerprint="v2")
    with pytest.raises(ShardError) as unknown:  # no fingerprint now: nothing is claimed
        write_shards(_Rows(0), out, shard_size_bytes=64)
    assert "cannot be told" in str(unknown.value) and "of this source;" not in str(unknown.value)
    index = json.loads((out / "index.json").read_text())
    del index["source_fingerprint"]  # as a pack written before fingerprints
    (out / "index.json").write_text(json.dumps(index))
    with pytest.raises(ShardError) as older:
        write_shards(_Rows(0), out, shard_size_bytes=64, source_fingerprint="v1")
    assert "records no source fingerprint" in str(older.value)
    assert "stale" not in str(older.value) and "earlier version" not in str(older.value)


def test_a_progress_file_without_fingerprint_restarts_without_claiming_a_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _stop_after_two(patch)
        with pytest.raises(KeyboardInterrupt):
            write_shards(_Rows(0), out, shard_size_bytes=64, source="rows",
                         source_fingerprint="v1")
    progress = json.loads((out / PROGRESS_FILE).read_text())
    del progress["settings"]["source_fingerprint"]  # as an older dataferry wrote it
    (out / PROGRESS_FILE).write_text(json.dumps(progress))
    caplog.set_level(logging.WARNING, logger="datasets.shardwriter")
    write_shards(_Rows(0), out, shard_size_bytes=64, source="rows", source_fingerprint="v1")
    assert "starting the write over" in caplog.text and "older dataferry" in caplog.text
    assert "files changed" not in caplog.text



def test_an_interrupted_write_of_a_cifar_pack_resumes_and_a_rewrite_restarts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import pickle
    import tarfile

    from cifar_factory import make_cifar_archive

    from datasets.cifar import CIFAR10_LAYOUT, pack_cifar
    from datasets.packeddataset import PackedImageDataset

    fake = make_cifar_archive(tmp_path / "a", per_batch=2, test_count=9)
    with tarfile.open(fake.path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    folder = tmp_path / "x" / "cifar-10-batches-py"
    out = tmp_path / "out"
    real = datasets.shardsource.ArraySource.chunks

    def two_then_stop(self, start, shard_size_bytes):  # type: ignore[no-untyped-def]
        for n, chunk in enumerate(real(self, start, shard_size_bytes)):
            if n == 2:
                raise KeyboardInterrupt
            yield chunk

    def write() -> dict:  # type: ignore[type-arg]
        store = pack_cifar(folder, CIFAR10_LAYOUT, "test", label="labels",
                           cache_dir=tmp_path / "cache")
        return write_shards(PackedImageDataset(store), out, shard_size_bytes=2 * 3072,
                            source="cifar", workers=1, shuffle=False)

    def interrupted() -> list[dict]:  # type: ignore[type-arg]
        with monkeypatch.context() as patch:
            patch.setattr(datasets.shardsource.ArraySource, "chunks", two_then_stop)
            with pytest.raises(KeyboardInterrupt):
                write()
        return json.loads((out / PROGRESS_FILE).read_text())["shards"]

    first = interrupted()
    caplog.set_level(logging.WARNING, logger="datasets.shardwriter")
    index = write()
    assert "starting the write over" not in caplog.text  # a CIFAR cache's key identifies it
    assert [s["sha256"] for s in index["shards"][:2]] == [s["sha256"] for s in first]
    shutil.rmtree(out)
    interrupted()
    batch = pickle.loads((folder / "test_batch").read_bytes())
    batch["data"] = batch["data"][::-1].copy()
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    write()
    assert "as it was before its files changed; starting the write over" in caplog.text


def test_an_interrupted_write_of_an_idx_dataset_resumes(  # a guard: its manifest has one
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import gzip
    import struct

    import numpy as np

    from datasets import IDXDataset

    def idx(array: np.ndarray) -> bytes:
        return gzip.compress(bytes([0, 0, 8, array.ndim])
                             + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes())

    images, labels = tmp_path / "i.gz", tmp_path / "l.gz"
    images.write_bytes(idx(np.arange(12 * 16, dtype=np.uint8).reshape(12, 4, 4)))
    labels.write_bytes(idx(np.arange(12, dtype=np.uint8) % 3))
    out = tmp_path / "out"
    real = datasets.shardsource.ArraySource.chunks

    def two_then_stop(self, start, shard_size_bytes):  # type: ignore[no-untyped-def]
        for n, chunk in enumerate(real(self, start, shard_size_bytes)):
            if n == 2:
                raise KeyboardInterrupt
            yield chunk

    def write() -> dict:  # type: ignore[type-arg]
        ds = IDXDataset(images, labels, cache_dir=tmp_path / "cache")
        return write_shards(ds, out, shard_size_bytes=40, source="idx", workers=1)

    with monkeypatch.context() as patch:
        patch.setattr(datasets.shardsource.ArraySource, "chunks", two_then_stop)
        with pytest.raises(KeyboardInterrupt):
            write()
    first = json.loads((out / PROGRESS_FILE).read_text())["shards"]
    caplog.set_level(logging.WARNING, logger="datasets.shardwriter")
    index = write()
    assert "starting the write over" not in caplog.text
    assert [s["sha256"] for s in index["shards"][:2]] == [s["sha256"] for s in first]
