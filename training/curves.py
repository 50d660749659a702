"""Learning curves as a PNG drawn with Pillow: loss and accuracy per epoch, train and valid.

matplotlib is not a dependency; two small line charts need nothing more than ``ImageDraw``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from training.history import History

log = logging.getLogger(__name__)

__all__ = ["save_curves"]

_TRAIN = (31, 119, 180)
_VALID = (255, 127, 14)
_PANEL_W, _PANEL_H = 420, 300
_MARGIN_L, _MARGIN_R, _MARGIN_T, _MARGIN_B = 58, 16, 34, 40


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if math.isclose(low, high):
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(round((last - first) / step) + 1)]


def _draw_words(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont, fill: str = "black",
) -> None:
    """Draw ``text`` with a visible gap between words.

    Pillow's built-in font draws a space 2 px wide at its default size: "logistic on letters"
    read as "logisticon letters". Each word is drawn on its own, an "n" width apart.
    """
    x, y = xy
    gap = max(draw.textlength(" ", font=font), draw.textlength("n", font=font))
    for word in text.split(" "):
        if word:
            draw.text((x, y), word, fill=fill, font=font)
            x += draw.textlength(word, font=font)
        x += gap


def _draw_panel(
    draw: ImageDraw.ImageDraw, origin: tuple[int, int], title: str,
    series: Sequence[tuple[str, Sequence[int], Sequence[float | None], tuple[int, int, int]]],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    *,
    legend_low: bool = False,
) -> None:
    ox, oy = origin
    left, top = ox + _MARGIN_L, oy + _MARGIN_T
    right, bottom = ox + _PANEL_W - _MARGIN_R, oy + _PANEL_H - _MARGIN_B
    draw.text((ox + _PANEL_W // 2 - 3 * len(title), oy + 10), title, fill="black", font=font)
    points = [(e, v) for _, xs, ys, _ in series for e, v in zip(xs, ys, strict=False)
              if v is not None and math.isfinite(v)]
    draw.rectangle([left, top, right, bottom], outline=(80, 80, 80))
    if not points:
        _draw_words(draw, (left + 10, top + 10), "no data", font, fill="gray")
        return
    epochs = [e for e, _ in points]
    values = [v for _, v in points]
    x_low, x_high = min(epochs), max(max(epochs), min(epochs) + 1)
    ticks = _nice_ticks(min(values), max(values))
    y_low, y_high = ticks[0], ticks[-1] if ticks[-1] > ticks[0] else ticks[0] + 1

    def to_px(e: float, v: float) -> tuple[float, float]:
        x = left + (e - x_low) / (x_high - x_low) * (right - left)
        y = bottom - (v - y_low) / (y_high - y_low) * (bottom - top)
        return x, y

    for tick in ticks:
        _, y = to_px(x_low, tick)
        draw.line([left, y, right, y], fill=(225, 225, 225))
        draw.text((ox + 4, y - 6), f"{tick:.3g}", fill="black", font=font)
    step = max(1, math.ceil((x_high - x_low) / 8))
    for e in range(int(x_low), int(x_high) + 1, step):
        x, _ = to_px(e, y_low)
        draw.line([x, bottom, x, bottom + 4], fill="black")
        draw.text((x - 3, bottom + 6), str(e), fill="black", font=font)
    draw.text((left + (right - left) // 2 - 14, bottom + 22), "epoch", fill="black", font=font)
    for row, (label, xs, ys, color) in enumerate(series):
        pts = [to_px(e, v) for e, v in zip(xs, ys, strict=False) if v is not None and math.isfinite(v)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        for x, y in pts:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=color)
        if pts:
            ly = (bottom - 12 - 14 * (len(series) - row)) if legend_low else top + 8 + 14 * row
            draw.line([right - 70, ly + 6, right - 55, ly + 6], fill=color, width=2)
            draw.text((right - 50, ly), label, fill="black", font=font)


def save_curves(history: History, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Draw loss and accuracy per epoch (train and valid) into a PNG and return its path.

    Args:
        history: what :func:`training.fit` returned.
        path: the PNG to write (parent folders are created).
        title: a line drawn above both panels, also stored as the PNG's ``Title`` text.

    Example:
        >>> h = History(epoch=[1, 2], train_loss=[1.0, 0.5], train_accuracy=[0.5, 0.8],
        ...             valid_loss=[1.1, 0.6], valid_accuracy=[0.4, 0.7])
        >>> save_curves(h, "/tmp/doctest-curves.png").suffix
        '.png'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = 24 if title else 0
    image = Image.new("RGB", (2 * _PANEL_W, _PANEL_H + header), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    info = PngImagePlugin.PngInfo()
    if title:
        _draw_words(draw, (10, 6), title, font)
        info.add_text("Title", title)
    epochs = history.epoch
    _draw_panel(draw, (0, header), "loss", [
        ("train", epochs, history.train_loss, _TRAIN),
        ("valid", epochs, history.valid_loss, _VALID),
    ], font)
    _draw_panel(draw, (_PANEL_W, header), "accuracy", [
        ("train", epochs, history.train_accuracy, _TRAIN),
        ("valid", epochs, history.valid_accuracy, _VALID),
    ], font, legend_low=True)
    image.save(path, pnginfo=info)
    log.debug("curves written: %s", path)
    return path
