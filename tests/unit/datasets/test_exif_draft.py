"""A reduced JPEG scale is chosen from the image as displayed (after its EXIF orientation)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import datasets.imagedecode
from datasets.imagedecode import DecodeOptions, decode_image


def _rotated_jpeg(width: int, height: int, orientation: int) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)  # detail a blur would lose
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
@pytest.mark.parametrize(("resize", "size"), [("shorter-then-center-crop", (100, 200)),
                                              ("stretch", (100, 200)), ("pad", (400, 200))])
def test_turned_jpeg_is_not_decoded_smaller_than_its_target(
        orientation: int, resize: str, size: tuple[int, int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _rotated_jpeg(400, 200, orientation)  # displayed 200 wide, 400 high
    options = DecodeOptions(mode="RGB", size=size, resize=resize)  # H x W: needs full scale
    array, _ = decode_image(data, options)
    monkeypatch.setattr(datasets.imagedecode, "_draft", lambda image, options: None)
    full, _ = decode_image(data, options)  # full resolution, then resized
    assert array.shape == full.shape
    assert np.array_equal(array, full)


def test_turned_jpeg_still_decodes_at_a_reduced_scale_when_the_target_allows() -> None:
    data = _rotated_jpeg(400, 200, 6)  # displayed 200 x 400 (W x H)
    image = Image.open(io.BytesIO(data))
    datasets.imagedecode._draft(image, DecodeOptions(mode="RGB", size=(200, 100)))
    assert image.size == (200, 100)  # stored terms: half of 400 x 200
