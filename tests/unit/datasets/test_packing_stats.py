"""Packing's cheaper work: histogram statistics, reduced-scale statistics, early size check."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import ImageFolderDataset
from datasets.channelstats import ChannelStats, pixel_sums
from datasets.decode import STATS_SIDE, ChunkOptions, decode_chunk
from datasets.imagedecode import DecodeOptions, decode_image, native_mode
from datasets.imagestore import VariableWriter
from datasets.packing import chunk_size


def jpeg(w: int, h: int, value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (w, h), (value, value, value)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(4, 9, 7, 3), (9, 7, 1), (1, 1, 3), (0, 5, 5, 3), (6, 2),
                                   (3, 4, 4, 4)])
def test_pixel_sums_equal_float_sums(shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    sums, squares, n = pixel_sums(pixels)
    flat = pixels.reshape(-1, shape[-1]).astype(np.float64)
    assert n == len(flat)
    assert np.array_equal(sums, flat.sum(0)) and np.array_equal(squares, (flat**2).sum(0))


def test_channel_stats_add_is_the_float_formula() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    stats = ChannelStats()
    stats.add(pixels[:2])
    stats.add(pixels[2:])
    got = stats.as_manifest()
    flat = pixels.reshape(-1, 3) / 255.0
    assert np.allclose(got["mean"], flat.mean(0), atol=1e-6)
    assert np.allclose(got["std"], flat.std(0), atol=1e-6)


def test_auto_fixed_chunk_stops_decoding_at_the_first_other_size() -> None:
    items: list[bytes | str] = [jpeg(40, 30, 10), jpeg(40, 30, 20), jpeg(50, 30, 30),
                                b"not an image at all"]
    chunk = decode_chunk(None, items, ChunkOptions(decode=DecodeOptions()))
    assert chunk.images is None  # the caller builds the variable store instead
    assert chunk.reasons == [None] * 4  # the last item was never decoded (it would fail)
    assert len(chunk.notes) == 4


def test_variable_store_statistics_weigh_images_by_full_resolution(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big.jpg").write_bytes(jpeg(1024, 1024, 200))  # drafted to 1/8
    (tmp_path / "a" / "small.jpg").write_bytes(jpeg(64, 64, 50))  # decoded whole
    ds = ImageFolderDataset.pack(tmp_path, cache_dir=tmp_path / "cache", workers=0)
    expected = (200 * 1024**2 + 50 * 64**2) / (1024**2 + 64**2) / 255
    assert ds.mean == pytest.approx([expected] * 3, abs=2e-3)
    assert "weighted by full-resolution pixels" in ds.manifest["stats_from"]


def test_chunk_size_spreads_small_jobs_over_the_workers() -> None:
    assert chunk_size(1_000, 2) == 62 and chunk_size(100, 4) == 32
    assert chunk_size(1_000_000, 16) == 256 and chunk_size(1_000, 1) == 256


def test_variable_store_from_a_pool_equals_one_process(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.packing

    monkeypatch.setattr(datasets.packing, "CHUNK_SIZE", 8)  # several chunks, spilled by workers
    spilled: list[int] = []
    append_file = VariableWriter.append_file
    monkeypatch.setattr(VariableWriter, "append_file",
                        lambda self, *a: spilled.append(1) or append_file(self, *a))
    root = tmp_path / "photos"
    for i in range(37):
        folder = root / f"c{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:02d}.jpg").write_bytes(jpeg(40 + i, 30 + i % 5, 7 * i % 256))
    (root / "c0" / "bad.jpg").write_bytes(b"\xff\xd8\xff truncated")
    built = {}
    for workers in (0, 2):
        ds = ImageFolderDataset.pack(root, cache_dir=tmp_path / f"cache{workers}", workers=workers)
        folder = ds.store.path  # type: ignore[union-attr]
        assert not list(folder.glob("*.part"))
        built[workers] = (ds, {name: (folder / name).read_bytes()
                               for name in ("blobs.bin", "offsets.i64", "labels.i64", "sizes.i32")})
    (one, files_one), (pool, files_pool) = built[0], built[2]
    assert files_one == files_pool and len(pool) == 37 and len(spilled) == 4
    assert pool.mean == one.mean and pool.std == one.std and pool.skipped == one.skipped


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("grey_first", [False, True])
@pytest.mark.parametrize("mode", [None, "RGB", "L"])
def test_variable_chunk_statistics_equal_those_of_the_decoded_arrays(mode: str | None,
                                                                     grey_first: bool) -> None:
    # The histogram is taken from Pillow's image when it is L or RGB already, from the
    # converted array otherwise: both must give what decoding to arrays gives, whichever kind
    # of image comes first in the chunk.
    rng = np.random.default_rng(0)
    colour = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    grey = Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8))
    wide = Image.fromarray(rng.integers(0, 65536, (10, 12), dtype=np.uint16))
    big = Image.fromarray(rng.integers(0, 256, (300, 200, 3), dtype=np.uint8))  # drafted
    greys = [_encoded(grey, "PNG"), _encoded(wide, "PNG"), _encoded(grey, "JPEG")]
    colours = [_encoded(colour, "PNG"), _encoded(colour.convert("P"), "GIF"),
               _encoded(colour.convert("RGBA"), "PNG"), _encoded(colour.convert("CMYK"), "JPEG"),
               _encoded(big, "JPEG")]
    items: list[bytes | str] = [*(greys + colours if grey_first else colours + greys),
                                b"not an image"]
    chunk = decode_chunk(None, items, ChunkOptions(decode=DecodeOptions(mode=mode),
                                                   store="variable"))
    assert chunk.reasons[:-1] == [None] * 8 and chunk.reasons[-1]
    stats = ChannelStats()
    for data in items[:-1]:
        image = Image.open(io.BytesIO(data))
        array, _ = decode_image(data, DecodeOptions(mode=mode or native_mode(image.mode),
                                                    min_side=STATS_SIDE))
        weight = image.width * image.height / (array.shape[0] * array.shape[1])
        sums, squares, pixels = pixel_sums(array)
        stats.add_sums(sums * weight, squares * weight, pixels * weight)
    assert chunk.pixels == stats.pixels
    assert np.array_equal(chunk.sums, stats.sums) and np.array_equal(chunk.squares, stats.squares)
    named = [note for note in chunk.notes if note]
    assert any("palette" in n for n in named) and any("16-bit" in n for n in named)
