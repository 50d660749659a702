"""DecodeRandomResizedCrop: the box drawn first, JPEGs decoded at a reduced scale, same output."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from datasets import DataLoader, DecodeRandomResizedCrop, ImageFolderDataset, Normalize
from datasets.cropdecode import reduction
from datasets.imagedecode import DecodeOptions, UnreadableImageError, decode_image
from datasets.transforms import Compose, RandomResizedCrop


def smooth(w: int, h: int) -> np.ndarray:
    """A smooth RGB image (gradients and a slow wave): little lost to DCT scaling."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / w
    g = 255 * y / h
    b = 127 + 100 * np.sin(x / 37.0) * np.cos(y / 53.0)
    return np.clip(np.stack([r, g, b], axis=2), 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str = "JPEG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def reference(data: bytes, box: tuple[int, int, int, int], size: int, mode: str = "RGB"
              ) -> torch.Tensor:
    """torchvision's resized_crop of the full-resolution decode, for the same box."""
    array, _ = decode_image(data, DecodeOptions(mode=mode))
    full = torch.from_numpy(array).permute(2, 0, 1)
    x1, y1, x2, y2 = box
    return F.resized_crop(full, y1, x1, y2 - y1, x2 - x1, [size, size], antialias=True)


def same_box_pair(size: int, seed: int, **kwargs: object
                  ) -> tuple[DecodeRandomResizedCrop, DecodeRandomResizedCrop]:
    """Two decoders on equal generators: one decodes, the other tells its box."""
    return (DecodeRandomResizedCrop(size, generator=torch.Generator().manual_seed(seed),
                                    **kwargs),  # type: ignore[arg-type]
            DecodeRandomResizedCrop(size, generator=torch.Generator().manual_seed(seed),
                                    **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize("scale", [(0.08, 1.0), (0.6, 1.0)])
def test_crop_decode_matches_resized_crop_of_full_decode(scale: tuple[float, float]) -> None:
    data = encode(Image.fromarray(smooth(800, 600)), quality=95)
    reductions = set()
    for seed in range(12):
        decoder, twin = same_box_pair(64, seed, scale=scale)
        out = decoder(data, "RGB")
        box = twin.box(600, 800)
        reductions.add(reduction(box[2] - box[0], box[3] - box[1], 64, 64))
        expected = reference(data, box, 64)
        diff = (out.int() - expected.int()).abs()
        assert out.shape == (3, 64, 64) and out.dtype == torch.uint8
        assert diff.float().mean() < 1.5 and diff.max() <= 12, (seed, box)
    assert max(reductions) >= 4  # the reduced decode was exercised, not only full scale


def test_crop_decode_boxes_follow_torchvision_distribution() -> None:
    for h, w in [(600, 800), (30, 40), (1000, 20), (20, 1000), (128, 128), (1, 1)]:
        for seed in range(20):
            decoder = DecodeRandomResizedCrop(16, generator=torch.Generator().manual_seed(seed))
            batch = RandomResizedCrop(16, generator=torch.Generator().manual_seed(seed))
            x1, y1, x2, y2 = decoder.box(h, w)
            expected = batch.boxes(1, h, w)[0].tolist()
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            assert max(abs(a - b) for a, b in zip((x1, y1, x2, y2), expected, strict=True)) <= 1


def test_crop_decode_tiny_image_is_enlarged_from_full_scale() -> None:
    data = encode(Image.fromarray(smooth(40, 30)), quality=95)
    decoder, twin = same_box_pair(64, 3)
    out = decoder(data, "RGB")
    assert out.shape == (3, 64, 64)
    assert (out.int() - reference(data, twin.box(30, 40), 64).int()).abs().max() <= 2


def test_crop_decode_grey_and_cmyk_jpegs() -> None:
    grey = encode(Image.fromarray(smooth(400, 300)[:, :, 0], "L"), quality=95)
    assert DecodeRandomResizedCrop(32)(grey, "L").shape == (1, 32, 32)
    assert DecodeRandomResizedCrop(32)(grey, None).shape == (1, 32, 32)
    colour = DecodeRandomResizedCrop(32)(grey, "RGB")
    assert colour.shape == (3, 32, 32) and torch.equal(colour[0], colour[2])
    cmyk = encode(Image.fromarray(smooth(400, 300)).convert("CMYK"), quality=95)
    decoder, twin = same_box_pair(32, 5, scale=(0.8, 1.0))
    out = decoder(cmyk, "RGB")
    assert (out.int() - reference(cmyk, twin.box(300, 400), 32).int()).abs().float().mean() < 2


def test_crop_decode_png_falls_back_to_full_decode_with_the_same_box() -> None:
    rgba = np.dstack([smooth(300, 200), np.full((200, 300), 128, np.uint8)])
    data = encode(Image.fromarray(rgba, "RGBA"), "PNG")
    decoder, twin = same_box_pair(48, 7)
    out = decoder(data, "RGB")
    assert torch.equal(out, reference(data, twin.box(200, 300), 48))  # composited on white



@pytest.mark.parametrize("mode", ["F", "I"])
def test_crop_decode_scales_32_bit_images_by_the_whole_image_range(mode: str) -> None:
    # F and I pixels are stretched from the image's own min..max: the crop must use the whole
    # image's range, as a full decode does, not the range inside its box.
    values = np.linspace(-100, 1000, 300 * 200).reshape(200, 300)
    image = Image.fromarray(values.astype(np.float32 if mode == "F" else np.int32), mode)
    data = encode(image, "TIFF")
    decoder, twin = same_box_pair(48, 3, scale=(0.08, 0.2))
    out = decoder(data, "L")
    assert torch.equal(out, reference(data, twin.box(200, 300), 48, mode="L"))

def test_crop_decode_boxes_in_exif_oriented_coordinates() -> None:
    upright = np.zeros((1600, 800, 3), np.uint8)  # as shown: 800 wide, top red, bottom blue
    upright[:800, :, 0] = 255
    upright[800:, :, 2] = 255
    raw = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(raw, exif=exif.tobytes(), quality=95)
    decoder, twin = same_box_pair(64, 0, scale=(1.0, 1.0))  # no try fits: the centre crop
    out = decoder(data, "RGB")
    assert twin.box(1600, 800) == (0, 266, 800, 1333)
    assert out[0, 5, 32] > 200 and out[2, 5, 32] < 50  # top is red
    assert out[2, 58, 32] > 200 and out[0, 58, 32] < 50  # bottom is blue
    assert (out.int() - reference(data, (0, 266, 800, 1333), 64).int()).abs().float().mean() < 2


def test_crop_decode_flip_mirrors_the_same_crop() -> None:
    data = encode(Image.fromarray(smooth(400, 300)), quality=95)
    plain = DecodeRandomResizedCrop(32, generator=torch.Generator().manual_seed(1))(data)
    flipped = DecodeRandomResizedCrop(32, flip=1.0,
                                      generator=torch.Generator().manual_seed(1))(data)
    assert torch.equal(flipped, plain.flip(-1))
    with pytest.raises(ValueError, match=r"flip should be a probability in \[0, 1\]"):
        DecodeRandomResizedCrop(32, flip=2.0)


def test_crop_decode_refuses_decompression_bombs(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.fromarray(smooth(400, 300)), quality=90)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableImageError, match=r"MAX_IMAGE_PIXELS = 1,000"):
        DecodeRandomResizedCrop(32)(data)


def test_variable_store_with_crop_decoder_batches_seeded(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for i, (w, h) in enumerate([(320, 240), (200, 300), (90, 60), (500, 375)] * 2):
        folder = root / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth(w, h)).save(folder / f"{i}.jpg", quality=90)

    def epoch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        decoder = DecodeRandomResizedCrop(48, flip=0.5,
                                          generator=torch.Generator().manual_seed(seed))
        ds = ImageFolderDataset.pack(root, Normalize([0.5] * 3, [0.5] * 3),
                                     cache_dir=tmp_path / "cache", decoder=decoder)
        x, y = next(iter(DataLoader(ds, batch_size=8, num_workers=0)))
        return x, y

    x, y = epoch(0)
    assert x.shape == (8, 3, 48, 48) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert torch.equal(epoch(0)[0], x) and not torch.equal(epoch(1)[0], x)


def test_crop_decoder_packs_the_variable_store_even_for_one_image_size(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for i in range(4):
        folder = root / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth(120, 90)).save(folder / f"{i}.jpg", quality=90)
    decoder = DecodeRandomResizedCrop(32, generator=torch.Generator().manual_seed(0))
    ds = ImageFolderDataset.pack(root, cache_dir=tmp_path / "cache", decoder=decoder)
    assert type(ds).__name__ == "VariableImageFolder" and ds[0][0].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="pass one"):
        ImageFolderDataset.pack(root, cache_dir=tmp_path / "cache", decoder=decoder, size=32)
    with pytest.raises(ValueError, match="pass one"):
        ImageFolderDataset.pack(root, cache_dir=tmp_path / "cache", decoder=decoder,
                                decode_size=32)


def test_decoder_and_decode_size_are_refused_before_anything_is_packed(tmp_path: Path) -> None:
    from datasets import VariableImageFolder

    root = tmp_path / "photos" / "cat"
    root.mkdir(parents=True)
    Image.fromarray(smooth(64, 48)).save(root / "a.jpg")
    for make in (ImageFolderDataset.pack, VariableImageFolder):
        with pytest.raises(ValueError, match="decode_size= and decoder= both"):
            make(tmp_path / "photos", cache_dir=tmp_path / "cache", decode_size=32,
                 decoder=DecodeRandomResizedCrop(16))
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.bin"))


def test_variable_store_batches_take_negative_rows_and_name_a_bad_one(tmp_path: Path) -> None:
    root = tmp_path / "photos" / "cat"
    root.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(smooth(64 + i, 48)).save(root / f"{i}.jpg")
    ds = ImageFolderDataset.pack(tmp_path / "photos", Compose([]), cache_dir=tmp_path / "c",
                                 decoder=DecodeRandomResizedCrop(16))
    batch = ds.__getitems__([-1, 0])
    assert batch.indices.tolist() == [2, 0]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 images"):
        ds.__getitems__([0, 3])
    with pytest.raises(IndexError, match="index -4 is out of range"):
        ds.__getitems__([-4])
    with pytest.raises(TypeError, match="integer row indices"):
        ds.__getitems__([True, False])  # a mask is not a list of rows


def test_crop_decoder_draws_boxes_and_flips_from_the_generator_it_is_given() -> None:
    data = encode(Image.fromarray(smooth(120, 90)))
    later = DecodeRandomResizedCrop(32, flip=0.5)
    later.generator = torch.Generator().manual_seed(5)  # set after construction
    at_once = DecodeRandomResizedCrop(32, flip=0.5, generator=torch.Generator().manual_seed(5))
    assert later.batch_equivalent.generator is later.generator
    for _ in range(4):
        assert torch.equal(later(data), at_once(data))
