"""The packed cache: reuse, rebuild on change, atomic builds, one build under concurrency."""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from image_factory import make_image_archive, make_image_tree, png_bytes
from PIL import Image

import datasets.decode
import datasets.packed
import datasets.packing
from datasets import DataFormatError, ImageFolderDataset, PackedCacheError
from datasets.archivemembers import iter_members, member_class
from datasets.decode import png_fast_grey
from datasets.packed import PackedImages, PackWriter, ensure_packed, packed_root


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded images although the cache should have been reused")

    monkeypatch.setattr(datasets.packing, "decode_chunk", fail)


def test_second_open_reuses_cache_without_decoding(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make_image_tree(tmp_path / "t", per_class=4)
    first = ImageFolderDataset.pack(tmp_path / "t")
    _no_decoding(monkeypatch)
    started = time.perf_counter()
    second = ImageFolderDataset.pack(tmp_path / "t")
    assert time.perf_counter() - started < 1.0
    assert second.packed.path == first.packed.path
    assert torch.equal(second.data, first.data)


def test_archive_cache_reused_without_decoding(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_image_archive(tmp_path / "a.tar.gz", per_class=4)
    first = ImageFolderDataset.from_archive(archive)
    _no_decoding(monkeypatch)
    monkeypatch.setattr(datasets.packing, "iter_members", None)  # not even read
    assert ImageFolderDataset.from_archive(archive).packed.path == first.packed.path


def test_changed_source_gets_a_new_cache(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=3)
    first = ImageFolderDataset.pack(tmp_path / "t")
    make_image_tree(tmp_path / "t", classes=("D",), per_class=2)  # a new class appears
    second = ImageFolderDataset.pack(tmp_path / "t")
    assert second.packed.path != first.packed.path
    assert len(second) == 11 and second.classes == ["A", "B", "C", "D"]
    victim = tmp_path / "t" / "A" / "00000.png"
    stat = victim.stat()
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ImageFolderDataset.pack(tmp_path / "t").packed.path not in (first.packed.path,
                                                                 second.packed.path)


def test_crash_mid_pack_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_image_tree(tmp_path / "t", per_class=30)
    monkeypatch.setattr(datasets.packing, "CHUNK_SIZE", 8)
    real = datasets.decode.decode_chunk
    calls = []

    def crash_on_third(*args: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # like Ctrl-C half way through
        return real(*args)

    monkeypatch.setattr(datasets.packing, "decode_chunk", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        ImageFolderDataset.pack(tmp_path / "t")
    root = packed_root()
    assert list(root.iterdir()) == [] or all(p.suffix == ".lock" for p in root.iterdir())
    monkeypatch.setattr(datasets.packing, "decode_chunk", real)
    ds = ImageFolderDataset.pack(tmp_path / "t")  # the next use builds it whole
    assert len(ds) == 90


def test_leftover_temp_folder_of_killed_build_is_removed(tmp_path: Path) -> None:
    root = packed_root()
    stale = root / ".k1.tmp-12345"
    stale.mkdir(parents=True)
    (stale / "images.u8").write_bytes(b"\0" * 100)  # half written, no manifest

    def build(folder: Path) -> None:
        writer = PackWriter(folder)
        writer.append(np.zeros((2, 3, 3), np.uint8), np.array([0, 1]))
        writer.finish({"classes": ["x", "y"], "skipped": []}, image_shape=None)

    packed = ensure_packed("k1", build)
    assert not stale.exists()
    assert packed.shape == (2, 3, 3, 1) and packed.labels().tolist() == [0, 1]


def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=3)
    first = ImageFolderDataset.pack(tmp_path / "t")
    with open(first.packed.path / "images.u8", "r+b") as handle:
        handle.truncate(100)  # a damaged cache file
    again = ImageFolderDataset.pack(tmp_path / "t")
    assert len(again) == 9 and torch.equal(again.targets, first.targets)


def test_invalid_cache_folder_raises_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format": 999, "shape": [1, 1, 1]}))
    with pytest.raises(PackedCacheError, match="format 999.*delete the folder"):
        PackedImages(folder)


def test_concurrent_users_build_once(tmp_path: Path) -> None:
    builds = []

    def build(folder: Path) -> None:
        builds.append(1)
        time.sleep(0.2)
        writer = PackWriter(folder)
        writer.append(np.ones((1, 2, 2), np.uint8), np.array([0]))
        writer.finish({"classes": ["a"], "skipped": []}, image_shape=None)

    results: list[PackedImages] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_packed("same", build)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(results) == 3
    assert {r.path for r in results} == {packed_root() / "same"}


def test_a_held_pack_lock_times_out_with_a_packed_cache_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loaders.lock import locked

    monkeypatch.setattr(datasets.packed, "LOCK_TIMEOUT_S", 0.3)
    builds: list[int] = []
    with locked(packed_root() / "held", timeout_s=1) as lock_file:  # the lock ensure_packed takes
        with pytest.raises(PackedCacheError, match=r"waited 0.3 s for the lock .*\.held\.lock"
                           r" held by another process packing held"):
            ensure_packed("held", lambda folder: builds.append(1))
    assert builds == [] and lock_file.parent == packed_root()
    assert not (packed_root() / "held").exists()


def test_manifest_describes_the_cache(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=2, corrupt=[("B", "empty")])
    manifest = ImageFolderDataset.pack(tmp_path / "t").manifest
    assert manifest["shape"] == [6, 28, 28, 1] and manifest["mode"] == "L"
    assert manifest["store"] == "fixed" and len(manifest["mean"]) == len(manifest["std"]) == 1
    assert manifest["classes"] == ["A", "B", "C"]
    assert manifest["counts"] == {"A": 2, "B": 2, "C": 2}
    assert manifest["skipped"] == [["B/bad-0-empty.png", "empty file (0 bytes)"]]
    assert manifest["source"]["type"] == "folder"
    assert manifest["source"]["fingerprint"].startswith("folder-")
    assert manifest["build_seconds"] >= 0 and "built_at" in manifest


def test_cache_dir_argument_places_the_cache(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=1)
    ds = ImageFolderDataset.pack(tmp_path / "t", cache_dir=tmp_path / "elsewhere")
    assert ds.packed.path.parent == tmp_path / "elsewhere" / "packed"


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_reader_matches_tarfile(tmp_path: Path, fmt: int) -> None:
    archive = tmp_path / "a.tar.bz2"
    long_dir = "d" * 90 + "/" + "e" * 60  # over 100 characters: a long name or a prefix
    members = {f"top/{long_dir}/A/{'x' * 80}.png": b"\x89PNG one", "top/B/1.png": b"",
               "top/B/readme.txt": b"text", "./top/C/2.png": b"two" * 300}
    with tarfile.open(archive, "w:bz2", format=fmt) as tar:
        folder = tarfile.TarInfo("top/B")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("top/C/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "2.png"
        tar.addfile(link)
    with tarfile.open(archive) as tar:
        expected = [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
    # loaders.tar_stream reads as tarfile (its checked API also drops a leading "./")
    assert [(n.removeprefix("./"), d) for n, d in iter_members(archive)] == [
        (n.removeprefix("./"), d) for n, d in expected]
    assert member_class(expected[0][0]) == "A" and member_class("./top/C/2.png") == "C"
    assert member_class("top/.git/x") is None and member_class("__MACOSX/A/._x.png") is None


def test_truncated_archive_raises_data_format_error(tmp_path: Path) -> None:
    archive = make_image_archive(tmp_path / "a.tar.gz", per_class=20)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="a.tar.gz.*(corrupt|truncated)"):
        ImageFolderDataset.from_archive(archive)
    assert not [p for p in packed_root().glob("*") if p.suffix != ".lock"]


def test_fast_png_path_agrees_with_pillow() -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    rows = b"".join(b"\x00" + array[y].tobytes() for y in range(28))
    header = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    unfiltered = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                  + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    decoded = png_fast_grey(unfiltered)
    assert decoded is not None and np.array_equal(decoded, array)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(unfiltered))), array)


KILL_SCRIPT = r"""
import sys, time
import datasets.packing as packing
real = packing.decode_chunk
calls = []
def slow(*args):
    calls.append(1)
    if len(calls) == 2:
        print("packing", flush=True)
        time.sleep(60)  # killed here, half way through
    return real(*args)
packing.decode_chunk = slow
packing.CHUNK_SIZE = 8
from datasets import ImageFolderDataset
ImageFolderDataset.pack(sys.argv[1], workers=0)
"""


@pytest.mark.integration
def test_killed_packing_process_leaves_no_cache(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    make_image_tree(tmp_path / "t", per_class=10)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "t")],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "packing"
        root = packed_root()
        temps = [p for p in root.iterdir() if ".tmp-" in p.name]
        assert temps and (temps[0] / "images.u8").stat().st_size > 0  # half written
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert not [p for p in root.iterdir() if p.is_dir() and ".tmp-" not in p.name]
    ds = ImageFolderDataset.pack(tmp_path / "t")  # builds it whole and clears the leftover
    assert len(ds) == 30
    assert not [p for p in root.iterdir() if ".tmp-" in p.name]


def test_libpng_path_agrees_with_pillow() -> None:
    import warnings

    from image_factory import image_for

    from datasets.decode import _libpng, prefer_libpng

    prefer_libpng()
    assert _libpng() is not None  # torchvision is a dependency
    array = image_for(3, 7)
    data = png_bytes(array)  # Pillow-encoded: filtered rows, not the unfiltered fast path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = png_fast_grey(data)
    assert decoded is not None and np.array_equal(decoded, array)
