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


def _blank_runs(image: Image.Image, top: int, bottom: int) -> list[int]:
    """Widths of the blank column runs between the first and last inked column of a band."""
    band = image.convert("L").crop((0, top, image.width, bottom))
    inked = [any(band.getpixel((x, y)) < 128 for y in range(band.height)) for x in range(band.width)]
    first, last = inked.index(True), len(inked) - 1 - inked[::-1].index(True)
    runs, width = [], 0
    for ink in inked[first:last + 1]:
        if ink:
            if width:
                runs.append(width)
            width = 0
        else:
            width += 1
    return runs


def test_title_words_are_spaced_and_the_title_is_stored(tmp_path: Path) -> None:
    title = "logistic on ../shared/data/x (adam, lr 0.01)"
    history = History(epoch=[1, 2], train_loss=[1.0, 0.5], train_accuracy=[0.5, 0.8])
    path = save_curves(history, tmp_path / "c.png", title=title)
    with Image.open(path) as image:
        assert image.text["Title"] == title  # type: ignore[attr-defined]
        runs = _blank_runs(image, 4, 22)
    words = len(title.split(" "))
    wide = [r for r in runs if r >= 4]
    assert len(wide) == words - 1, f"gaps between words {wide}, all gaps {runs}"
    assert max(r for r in runs if r < 4) <= 2  # inside a word letters stay close
