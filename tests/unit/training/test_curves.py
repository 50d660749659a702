"""curves.png: drawn with Pillow, train and valid lines in their colours."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from training import History
from training.curves import _TRAIN, _VALID, _nice_ticks, save_curves


def test_save_curves_draws_both_series(tmp_path: Path) -> None:
    history = History(epoch=[1, 2, 3], train_loss=[1.0, 0.6, 0.4], train_accuracy=[0.5, 0.7, 0.8],
                      valid_loss=[1.1, 0.8, 0.7], valid_accuracy=[0.4, 0.6, 0.7])
    path = save_curves(history, tmp_path / "sub" / "curves.png", title="test")
    with Image.open(path) as image:
        colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 16)}
    assert _TRAIN in colours and _VALID in colours


def test_save_curves_without_validation_or_accuracy(tmp_path: Path) -> None:
    history = History(epoch=[1], train_loss=[0.5], train_accuracy=[None], valid_loss=[None],
                      valid_accuracy=[None])
    path = save_curves(history, tmp_path / "c.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 400 and image.size[1] > 200
        pixels = image.convert("RGB")
        colours = {c for _, c in pixels.getcolors(maxcolors=1 << 16)}
    assert len(colours) > 2  # not a blank canvas: axes, text and the train point are drawn
    assert _TRAIN in colours and _VALID not in colours


def test_ticks_cover_the_range() -> None:
    ticks = _nice_ticks(0.41, 0.87)
    assert ticks[0] <= 0.41 and ticks[-1] >= 0.87 and len(ticks) <= 8
