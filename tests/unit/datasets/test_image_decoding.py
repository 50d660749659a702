"""Decoding any image by content, and every bad-input case of issue 7 (plus issue 9 items 4, 8)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from datasets import DataFormatError, DatasetNotFoundError, ImageFolderDataset
from datasets.decode import png_fast_grey
from datasets.imagedecode import (
    DecodeOptions,
    UnreadableImageError,
    decode_image,
    resize_array,
    scale_to_uint8,
)


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def photo(w: int = 40, h: int = 30, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_every_format_decodes_by_content_not_name(fmt: str) -> None:
    data = encode(photo(), fmt)
    array, _ = decode_image(data)  # no file name anywhere: the bytes decide
    assert array.shape == (30, 40, 3) and array.dtype == np.uint8


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    """Issue 9 item 4: 16-bit values spread over 0..65535 keep their spread in 8 bits."""
    ramp = np.linspace(0, 65535, 64 * 4).astype(np.uint16).reshape(4, 64)
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    array, note = decode_image(data)
    values = array[:, :, 0]
    assert values.min() == 0 and values.max() == 255
    assert len(np.unique(values)) > 200  # clipping would leave almost only 0 and 255
    assert np.array_equal(values, ((ramp.astype(np.int64) + 128) // 257).astype(np.uint8))
    assert "16-bit" in note and "scaled" in note
    assert array.mean() == pytest.approx(127.5, abs=2)  # not 99.5% white


def test_float_and_int32_images_are_scaled_by_the_documented_rule() -> None:
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    assert decode_image(encode(Image.fromarray(unit, "F"), "TIFF"))[0][0, :, 0].tolist() == [
        0, 128, 255]
    wide = np.array([[-10.0, 0.0, 10.0]], dtype=np.float32)  # outside [0, 1]: min..max
    assert decode_image(encode(Image.fromarray(wide, "F"), "TIFF"))[0][0, :, 0].tolist() == [
        0, 128, 255]
    assert scale_to_uint8(np.array([0, 100000, 200000], dtype=np.int32)).tolist() == [0, 128, 255]
    assert scale_to_uint8(np.array([np.nan, 1.0], dtype=np.float32)).tolist() == [0, 255]


def test_transparency_is_composited_on_white() -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent black: shows the background
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black over white: mid grey
    array, note = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert array[0, 0].tolist() == [255, 0, 0] and array[0, 1].tolist() == [255, 255, 255]
    assert array[1, 0].tolist() == [127, 127, 127] and "composited on white" in note
    la = Image.fromarray(rgba[:, :, [0, 3]], "LA")
    assert decode_image(encode(la, "PNG"))[0].shape == (2, 2, 1)


def test_palette_with_transparency_and_cmyk_jpeg() -> None:
    palette = photo().convert("P")
    palette.info["transparency"] = 0
    assert decode_image(encode(palette, "PNG", transparency=0))[0].shape == (30, 40, 3)
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    array, note = decode_image(encode(cmyk, "JPEG", quality=95))
    assert array.shape == (8, 8, 3) and "CMYK" in note
    r, g, b = array[4, 4].tolist()
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # a white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    array, _ = decode_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert array.shape == (40, 20, 3)  # portrait once rotated
    assert array[:8, :, 0].mean() > 200 and array[-8:, :, 0].mean() < 50  # band now on top


def test_animated_gif_gives_the_first_frame_with_a_note() -> None:
    frames = [Image.new("L", (6, 6), v) for v in (10, 200, 90)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    array, note = decode_image(buffer.getvalue(), DecodeOptions(mode="L"))
    assert int(np.median(array)) == 10 and "first frame of 3" in note


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty file (0 bytes)"),
    (b"hello, I am a text file named photo.jpg\n", "not an image Pillow can read"),
])
def test_unreadable_bytes_give_a_one_line_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableImageError) as info:
        decode_image(data)
    assert info.value.reason.startswith(reason) and "\n" not in info.value.reason


def test_truncated_jpeg_is_refused() -> None:
    data = encode(photo(200, 150), "JPEG", quality=90)
    with pytest.raises(UnreadableImageError, match="JPEG"):
        decode_image(data[: len(data) // 2])


def _grey_png_header(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def test_decompression_bomb_refused_on_every_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9 item 8: a small PNG declaring 20000x20000 pixels is never inflated."""
    bomb = _grey_png_header(20_000, 20_000, zlib.compress(bytes(20_001 * 64), 9))
    assert len(bomb) < 10_000
    with pytest.raises(UnreadableImageError, match=r"PIL\.Image\.MAX_IMAGE_PIXELS") as info:
        png_fast_grey(bomb)  # the fast path checks the header before inflating
    assert "decompression bomb" in info.value.reason and "raise that limit" in info.value.reason
    with pytest.raises(UnreadableImageError, match=r"MAX_IMAGE_PIXELS = 89,478,485"):
        decode_image(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the same limit, read at each call
    with pytest.raises(UnreadableImageError, match="MAX_IMAGE_PIXELS = 100"):
        decode_image(encode(photo(20, 20), "JPEG"))



@pytest.mark.parametrize("size", [None, 16])  # the variable store (mixed sizes), the fixed one
def test_a_folder_packs_bombs_as_skipped_and_keeps_them_once_the_limit_is_raised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int | None) -> None:
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    photo(20, 20).save(root / "a" / "small.jpg")
    photo(60, 60, seed=1).save(root / "a" / "big.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    refused = ImageFolderDataset.pack(root, size=size, cache_dir=tmp_path / "cache",
                                      workers=0)
    assert len(refused) == 1 and len(refused.skipped) == 1
    path, reason = refused.skipped[0]
    assert path.endswith("big.jpg") and "MAX_IMAGE_PIXELS = 1,000" in reason
    assert "raise that limit" in reason
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # as the reason advises
    kept = ImageFolderDataset.pack(root, size=size, cache_dir=tmp_path / "cache", workers=0)
    assert len(kept) == 2 and not kept.skipped

def test_fast_png_path_bounds_inflation() -> None:
    """A header that lies low: the IDAT inflates to far more than declared, never read whole."""
    lying = _grey_png_header(28, 28, zlib.compress(bytes(50_000_000), 9))
    assert png_fast_grey(lying) is None  # left to Pillow, which reports it


def test_resize_policies() -> None:
    wide = np.zeros((50, 100, 3), dtype=np.uint8)
    wide[:, 40:60] = 255  # a white band in the middle
    crop = resize_array(wide, (32, 32), "shorter-then-center-crop")
    assert crop.shape == (32, 32, 3) and crop[:, 16].min() == 255 and crop[:, 0].max() == 0
    pad = resize_array(wide, (32, 32), "pad")
    assert pad.shape == (32, 32, 3) and pad[:7].max() == 0 and pad[-7:].max() == 0
    stretch = resize_array(wide, (32, 32), "stretch")
    assert stretch.shape == (32, 32, 3) and stretch[:, 0].max() == 0 and stretch[:, 15].min() > 200



@pytest.mark.parametrize("policy", ["shorter-then-center-crop", "pad", "stretch"])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
@pytest.mark.parametrize("target", [None, "RGB", "L"])
@pytest.mark.parametrize("channels_first", [False, True])
def test_decoding_to_a_size_equals_decoding_then_resizing(policy: str, mode: str,
                                                          target: str | None,
                                                          channels_first: bool) -> None:
    # An L or RGB image needing no conversion is resized as Pillow holds it; every other is
    # converted first. Either way: the pixels resize_array gives, dense and writeable.
    for w, h in [(50, 37), (37, 50), (9, 3)]:
        data = encode(photo(w, h, seed=w).convert(mode), "PNG")
        whole, _ = decode_image(data, DecodeOptions(mode=target))
        expected = resize_array(whole, (16, 24), policy)
        got, _ = decode_image(data, DecodeOptions(mode=target, size=(16, 24), resize=policy,
                                                  channels_first=channels_first))
        if channels_first:
            got = got.transpose(1, 2, 0)
        assert np.array_equal(got, expected)
        got[...] = 0  # writeable: the caller may change it


# -- folders -----------------------------------------------------------------------------


def test_bad_files_in_a_folder_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    for i in range(3):
        (root / "cats" / f"{i}.jpg").write_bytes(encode(photo(seed=i), "JPEG"))
        (root / "dogs" / f"{i}.png").write_bytes(encode(photo(seed=9 + i), "PNG"))
    good = encode(photo(200, 150), "JPEG")
    (root / "cats" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "cats" / "zero.jpg").write_bytes(b"")
    (root / "dogs" / "notes.jpg").write_bytes(b"not a picture at all")
    (root / "dogs" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    ds = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert len(ds) == 6 and ds.mode == "RGB"
    reasons = dict(ds.skipped)
    assert set(reasons) == {"cats/truncated.jpg", "cats/zero.jpg", "dogs/notes.jpg",
                            "dogs/.DS_Store"}
    assert reasons["cats/zero.jpg"] == "empty file (0 bytes)"
    assert reasons["dogs/notes.jpg"].startswith("not an image")
    assert reasons["dogs/.DS_Store"].startswith("hidden file")
    assert "JPEG" in reasons["cats/truncated.jpg"]
    plain = ImageFolderDataset(root)
    assert len(plain) == 9 and "dogs/.DS_Store" in dict(plain.skipped)  # read on access
    with pytest.raises(DataFormatError, match="zero.jpg: empty file"):
        plain[[p for p, _ in plain.samples].index(str(root / "cats" / "zero.jpg"))]


def test_names_differing_only_in_case_are_both_kept_in_order(tmp_path: Path) -> None:
    root = tmp_path / "t" / "A"
    root.mkdir(parents=True)
    (root / "Photo.png").write_bytes(encode(Image.new("L", (4, 4), 10), "PNG"))
    (root / "photo.png").write_bytes(encode(Image.new("L", (4, 4), 200), "PNG"))
    ds = ImageFolderDataset.pack(tmp_path / "t", cache_dir=tmp_path / "c")
    assert [Path(p).name for p, _ in ds.samples] == ["Photo.png", "photo.png"]
    assert ds.data[:, 0, 0].tolist() == [10, 200]
    assert [Path(p).name for p, _ in ImageFolderDataset(tmp_path / "t").samples] == [
        "Photo.png", "photo.png"]


def test_folder_without_any_image_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "t" / "A").mkdir(parents=True)
    (tmp_path / "t" / "B").mkdir()
    with pytest.raises(DatasetNotFoundError, match="found no image file"):
        ImageFolderDataset.pack(tmp_path / "t")
    with pytest.raises(DatasetNotFoundError, match="found no image file"):
        ImageFolderDataset(tmp_path / "t")


def test_grey_and_colour_mixed_give_rgb_and_grey_only_gives_l(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "A").mkdir(parents=True)
    (root / "A" / "g.png").write_bytes(encode(Image.new("L", (8, 8), 77), "PNG"))
    grey = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert grey.mode == "L" and grey.manifest["mode"] == "L" and grey[0][0].shape == (1, 8, 8)
    (root / "B").mkdir()
    (root / "B" / "c.png").write_bytes(encode(Image.new("RGB", (8, 8), (255, 0, 0)), "PNG"))
    both = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert both.mode == "RGB" and both.pixels.shape == (2, 8, 8, 3)
    assert both.pixels[0, 0, 0].tolist() == [77, 77, 77]  # grey row widened, nothing lost
    assert both.pixels[1, 0, 0].tolist() == [255, 0, 0]  # colour kept
    assert both.mean == pytest.approx([(77 + 255) / 2 / 255, 77 / 2 / 255, 77 / 2 / 255], abs=1e-4)
    assert ImageFolderDataset.pack(root, mode="L", cache_dir=tmp_path / "c").mode == "L"


def test_mixed_sizes_give_the_variable_store_never_a_drop(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "A").mkdir(parents=True)
    sizes = [(64, 64), (30, 50), (50, 30)]
    for i, (w, h) in enumerate(sizes):
        (root / "A" / f"{i}.jpg").write_bytes(encode(photo(w, h, seed=i), "JPEG"))
    ds = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert type(ds).__name__ == "VariableImageFolder" and len(ds) == 3 and not ds.skipped
    assert [tuple(ds[i][0].shape) for i in range(3)] == [(3, 64, 64), (3, 50, 30), (3, 30, 50)]
    assert ds.sizes.tolist() == [[64, 64], [50, 30], [30, 50]]
    fixed = ImageFolderDataset.pack(root, size=16, cache_dir=tmp_path / "c")
    assert type(fixed).__name__ == "PackedImageFolder" and fixed.pixels.shape == (3, 16, 16, 3)
    assert ImageFolderDataset.pack(root, size=(16, 24), resize="pad",
                                   cache_dir=tmp_path / "c").packed.path != fixed.packed.path


def test_hymenoptera_real_photos(shared_data: Path, tmp_path: Path) -> None:
    """245 real files: 244 JPEGs of many sizes and a palette GIF placeholder, all kept."""
    root = shared_data / "hymenoptera-train"
    ds = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert len(ds) == 245 and ds.skipped == [] and ds.classes == ["ants", "bees"]
    assert type(ds).__name__ == "VariableImageFolder" and ds.mode == "RGB"
    notes = dict(ds.notes)
    assert "ants/imageNotFound.gif" in notes and "GIF" in notes["ants/imageNotFound.gif"]
    assert len(ds.mean) == 3 and all(0.2 < s < 0.4 for s in ds.std)
    x, y = ds[0]
    assert x.shape[0] == 3 and x.dtype == torch.float32
    plain = ImageFolderDataset(root)
    assert len(plain) == 245 and plain.targets == ds.targets.tolist()
    assert torch.equal(plain[7][0], ds[7][0])  # same pixels, decoded the same way


# -- fuzz ----------------------------------------------------------------------------------

_SEEDS = [encode(Image.new("L", (5, 4), 9), "PNG"), encode(photo(8, 6), "JPEG"),
          encode(photo(8, 6), "GIF"), _grey_png_header(3, 2, zlib.compress(bytes(8)))]


@pytest.mark.fuzz
@given(seed=st.sampled_from(_SEEDS), cuts=st.lists(st.tuples(st.integers(0, 400),
                                                             st.integers(0, 255)), max_size=8),
       length=st.integers(0, 400))
def test_fuzz_decoders_give_data_or_a_reason(seed: bytes, cuts: list[tuple[int, int]],
                                             length: int) -> None:
    """Mutated image bytes: an array, ``None`` (fast path declines) or UnreadableImageError."""
    data = bytearray(seed[: max(length, 8)])
    for pos, value in cuts:
        if pos < len(data):
            data[pos] = value
    try:
        fast = png_fast_grey(bytes(data))
    except UnreadableImageError:
        fast = None
    assert fast is None or fast.dtype == np.uint8
    try:
        array, _ = decode_image(bytes(data), DecodeOptions(mode="RGB", size=(4, 4)))
    except UnreadableImageError as err:
        assert err.reason and "\n" not in err.reason
    else:
        assert array.shape == (4, 4, 3) and array.dtype == np.uint8


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    return encode(photo(40, 30), "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize(("data", "options"), [
    (encode(photo(), "PNG"), DecodeOptions()),
    (encode(photo(), "JPEG"), DecodeOptions(mode="RGB")),
    (encode(photo(), "PNG"), DecodeOptions(mode="L")),
    (encode(photo().convert("L"), "PNG"), DecodeOptions()),
    (encode(photo().convert("L"), "PNG"), DecodeOptions(mode="RGB")),
    (encode(photo().convert("RGBA"), "PNG"), DecodeOptions()),
    (encode(photo().convert("P"), "GIF"), DecodeOptions()),
    (encode(photo().convert("CMYK"), "JPEG"), DecodeOptions()),
    (encode(Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50), "PNG"),
     DecodeOptions()),
    (_exif_rotated(), DecodeOptions()),
    (encode(photo(), "PNG"), DecodeOptions(size=(16, 16))),
    (encode(photo(), "JPEG"), DecodeOptions(size=(8, 12), resize="pad", mode="L")),
])
def test_channels_first_is_the_same_pixels_transposed(data: bytes, options: DecodeOptions) -> None:
    from dataclasses import replace

    hwc, note = decode_image(data, options)
    chw, planar_note = decode_image(data, replace(options, channels_first=True))
    assert chw.flags.c_contiguous and chw.flags.writeable and chw.dtype == np.uint8
    assert np.array_equal(chw, hwc.transpose(2, 0, 1)) and planar_note == note
