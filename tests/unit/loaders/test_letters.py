"""loaders.letters: deterministic, balanced, notMNIST-shaped generated data."""

from __future__ import annotations

import collections
import gzip
import importlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loaders.extract import extract
from loaders.letters import CLASSES, discover_fonts, generate, member_name, render

letters_module = importlib.import_module("loaders.letters")


def png_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}  # type: ignore[union-attr]


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_generate_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    first = generate(tmp_path / "a.tar.gz", count=40, seed=7, workers=1)
    second = generate(tmp_path / "b.tar.gz", count=40, seed=7, workers=1)
    other_seed = generate(tmp_path / "c.tar.gz", count=40, seed=8, workers=1)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other_seed.read_bytes()


def test_generate_same_bytes_with_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(letters_module, "_CHUNK", 30)  # several tasks in flight, out of order
    serial = generate(tmp_path / "serial.tar.gz", count=200, workers=1)
    parallel = generate(tmp_path / "parallel.tar.gz", count=200, workers=2)
    assert serial.read_bytes() == parallel.read_bytes()


def test_generate_layout_counts_and_image_format(tmp_path: Path) -> None:
    path = generate(tmp_path / "letters.tar.gz", count=55)
    with tarfile.open(path) as tf:
        names = tf.getnames()
        members = tf.getmembers()
    assert names[:11] == ["letters"] + [f"letters/{c}" for c in CLASSES]
    files = png_members(path)
    assert sorted(files)[:2] == ["letters/A/00000.png", "letters/A/00010.png"]
    per_class = collections.Counter(name.split("/")[1] for name in files)
    assert per_class == {c: 6 if c < "F" else 5 for c in CLASSES}  # 55 = 5×6 + 5×5
    for name, png in files.items():
        image = decode(png)
        assert (image.format, image.mode, image.size) == ("PNG", "L", (28, 28)), name
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(946_684_800, 0, 0, "")}
    with open(path, "rb") as f:
        header = f.read(10)
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_generated_images_are_legible_and_varied(tmp_path: Path) -> None:
    images = [np.asarray(render(i, seed=3)) for i in range(100)]
    for i, pixels in enumerate(images):
        ink = (pixels > 96).mean()
        assert 0.02 < ink < 0.8, f"image {i} has {ink:.0%} ink"
        assert pixels[0].max() < 255 or pixels[:, 0].max() < 255  # not a filled box
    same_class = np.stack(images[0::10]).astype(float)  # ten A's
    assert same_class.std(axis=0).mean() > 20  # sizes, fonts, angles differ
    assert render(5, seed=3).tobytes() == Image.fromarray(images[5]).tobytes()


def test_member_names_are_wide_enough_for_big_counts() -> None:
    assert member_name(0, 20_000) == "letters/A/00000.png"
    assert member_name(19_999, 20_000) == "letters/J/19999.png"
    assert member_name(0, 100_001) == "letters/A/000000.png"
    assert member_name(529_113, 529_114) == "letters/D/529113.png"
    names = [member_name(i, 100_001) for i in range(100_001)]
    assert len(set(names)) == 100_001 and names == sorted(names, key=lambda n: n[-10:])


def test_generate_failure_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(task: object) -> list[bytes]:
        raise OSError("disk on fire")

    monkeypatch.setattr(letters_module, "_render_chunk", broken)
    with pytest.raises(OSError, match="disk on fire"):
        generate(tmp_path / "out" / "letters.tar.gz", count=20, workers=1)
    assert list((tmp_path / "out").iterdir()) == []


def test_generate_falls_back_to_pillow_font(tmp_path: Path) -> None:
    path = generate(tmp_path / "fallback.tar.gz", count=20, fonts=[])
    images = [decode(png) for png in png_members(path).values()]
    assert len(images) == 20
    assert all(np.asarray(image).max() > 100 for image in images)


def test_discover_fonts_skips_files_that_are_not_fonts(tmp_path: Path) -> None:
    (tmp_path / "fake.ttf").write_bytes(b"not a font")
    (tmp_path / "notes.txt").write_text("hello")
    assert discover_fonts([tmp_path]) == []
    real = discover_fonts()
    assert real == sorted(real, key=str)


def test_generate_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="count should be a positive int, but got count=0"):
        generate(tmp_path / "x.tar.gz", count=0)
    with pytest.raises(ValueError, match="workers"):
        generate(tmp_path / "x.tar.gz", count=5, workers=0)


def test_generated_archive_goes_through_extract(tmp_path: Path) -> None:
    archive = generate(tmp_path / "letters.tar.gz", count=30)
    top = extract(archive, tmp_path)
    assert top == [tmp_path / "letters"]
    assert sorted(p.name for p in (tmp_path / "letters").iterdir()) == list(CLASSES)
    assert len(list((tmp_path / "letters").rglob("*.png"))) == 30
    assert gzip.decompress(archive.read_bytes())[257:262] == b"ustar"
