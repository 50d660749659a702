"""The built-in ``letters`` data: notMNIST-like 28×28 images of A–J rendered from local fonts.

:func:`generate` draws each letter in one of the TrueType/OpenType fonts installed on the
machine (Pillow's own scalable font when there are none) at a random size, position,
rotation, shear, stroke and brightness, and packs the images as a tar.gz laid out exactly like
notMNIST (``letters/A/00000.png`` …). Image ``i`` is class ``i % 10`` and gets its own random
generator seeded from ``(seed, i)``, so the bytes depend only on the seed, the count, the font
set and the Pillow/zlib versions, whatever the number of worker processes.
"""

from __future__ import annotations

import collections
import gzip
import io
import logging
import math
import multiprocessing
import os
import random
import struct
import sys
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

CLASSES = tuple("ABCDEFGHIJ")
IMAGE_SIZE = 28
DEFAULT_COUNT = 20_000
TOP_LEVEL = "letters"
FONT_DIRS = (
    "/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts",
    "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts",
)
_FONT_SUFFIXES = (".ttf", ".otf")
_TAR_MTIME = 946_684_800  # 2000-01-01T00:00:00Z: fixed so that the archive bytes are stable
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SCALE = 2  # draw at 2× and reduce with a box filter: smooth edges at 28×28
_CHUNK = 500  # images per task handed to a worker process
_PARALLEL_FROM = 4_000  # fewer images than this are drawn in-process


def discover_fonts(dirs: Sequence[str | os.PathLike[str]] = FONT_DIRS) -> list[Path]:
    """Return the usable TrueType/OpenType fonts under ``dirs``, sorted by path.

    A font is usable when it draws A–J as ten distinct, non-empty glyphs (symbol fonts do not).
    """
    found: set[Path] = set()
    for folder in dirs:
        root = Path(folder).expanduser()
        if root.is_dir():
            found.update(
                p for p in root.rglob("*") if p.suffix.lower() in _FONT_SUFFIXES and p.is_file()
            )
    return [path for path in sorted(found, key=str) if _draws_letters(str(path))]


def _draws_letters(path: str) -> bool:
    try:
        font = ImageFont.truetype(path, 24)
        masks = {bytes(font.getmask(letter)) for letter in CLASSES}
    except (OSError, ValueError):
        return False
    return len(masks) == len(CLASSES) and all(any(mask) for mask in masks)


@lru_cache(maxsize=1)
def _default_fonts() -> tuple[str, ...]:
    return tuple(str(p) for p in discover_fonts())


@lru_cache(maxsize=4096)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path == "<pillow>":
        try:
            return ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1 has no scalable default font
            return ImageFont.load_default()
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def render(index: int, *, seed: int = 0, fonts: Sequence[str] | None = None) -> Image.Image:
    """Return image ``index`` of the ``letters`` data for ``seed``: a 28×28 'L' image.

    Args:
        index: the image number; its class is ``CLASSES[index % 10]``.
        seed: the data set's seed.
        fonts: font file paths to draw from; the discovered fonts when None.
    """
    fonts = list(fonts) if fonts is not None else list(_default_fonts()) or ["<pillow>"]
    rng = random.Random(seed * 1_000_000_007 + index)
    letter = CLASSES[index % len(CLASSES)]
    big = IMAGE_SIZE * _SCALE
    font = _font(fonts[rng.randrange(len(fonts))], int(big * rng.uniform(0.6, 1.05)))
    canvas = Image.new("L", (big, big), 0)
    stroke = rng.choice((0, 0, 0, 1, 2, 3))
    outline_only = stroke >= 2 and rng.random() < 0.3
    fill = 0 if outline_only else rng.randint(150, 255)
    if isinstance(font, ImageFont.FreeTypeFont):
        position, anchor = (big / 2, big / 2), "mm"
    else:  # Pillow < 10.1 without fonts: a small bitmap font, which takes no anchor
        left, top, right, bottom = font.getbbox(letter)
        position, anchor = ((big - right - left) / 2, (big - bottom - top) / 2), None
    ImageDraw.Draw(canvas).text(
        position, letter, fill=fill, font=font, anchor=anchor,
        stroke_width=stroke, stroke_fill=rng.randint(170, 255),
    )
    angle = math.radians(rng.uniform(-15.0, 15.0))
    shear = rng.uniform(-0.3, 0.3)
    zoom = rng.uniform(0.85, 1.15)
    dx, dy = rng.uniform(-0.1, 0.1) * big, rng.uniform(-0.1, 0.1) * big
    cos, sin = math.cos(angle), math.sin(angle)
    # Inverse map (output -> input) of zoom · rotation · horizontal shear about the centre.
    a, b = (cos + shear * sin) / zoom, (sin - shear * cos) / zoom
    d, e = -sin / zoom, cos / zoom
    c = big / 2 - a * (big / 2 + dx) - b * (big / 2 + dy)
    f = big / 2 - d * (big / 2 + dx) - e * (big / 2 + dy)
    warped = canvas.transform((big, big), Image.Transform.AFFINE, (a, b, c, d, e, f),
                              resample=Image.Resampling.BILINEAR)
    return warped.reduce(_SCALE)


def _png(image: Image.Image) -> bytes:
    """Encode a small 'L' image as PNG directly: ~10× faster than Pillow's encoder here."""
    width, height = image.size
    raw = image.tobytes()
    rows = b"".join(b"\x00" + raw[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib.compress(rows, 6)), _chunk(b"IEND", b"")))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _render_chunk(task: tuple[int, int, int, tuple[str, ...]]) -> list[bytes]:
    start, stop, seed, fonts = task
    return [_png(render(i, seed=seed, fonts=fonts)) for i in range(start, stop)]


def _chunks(count: int, seed: int, fonts: tuple[str, ...]) -> Iterator[tuple[int, int, int, tuple[str, ...]]]:
    for start in range(0, count, _CHUNK):
        yield start, min(start + _CHUNK, count), seed, fonts


def _rendered(count: int, seed: int, fonts: tuple[str, ...], workers: int) -> Iterator[bytes]:
    """Yield the PNG bytes of images 0..count-1 in order, drawing in ``workers`` processes."""
    if workers <= 1:
        for task in _chunks(count, seed, fonts):
            yield from _render_chunk(task)
        return
    # fork is cheap and needs no importable __main__; elsewhere use the platform's default.
    method = "fork" if sys.platform.startswith("linux") else None
    with multiprocessing.get_context(method).Pool(workers) as pool:
        pending: collections.deque = collections.deque()
        tasks = _chunks(count, seed, fonts)
        for task in tasks:  # a bounded window of tasks in flight keeps memory flat
            pending.append(pool.apply_async(_render_chunk, (task,)))
            if len(pending) >= 3 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _tarinfo(name: str, size: int = 0, *, folder: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = size, _TAR_MTIME, 0, 0, "", ""
    info.type, info.mode = (tarfile.DIRTYPE, 0o755) if folder else (tarfile.REGTYPE, 0o644)
    return info


def member_name(index: int, count: int) -> str:
    """Return the archive path of image ``index`` of ``count``: class folder, zero-padded number.

    Example:
        >>> member_name(12, 20_000)
        'letters/C/00012.png'
    """
    width = max(5, len(str(count - 1)))
    return f"{TOP_LEVEL}/{CLASSES[index % len(CLASSES)]}/{index:0{width}d}.png"


def generate(
    out: str | os.PathLike[str],
    *,
    count: int = DEFAULT_COUNT,
    seed: int = 0,
    progress: bool = False,
    workers: int | None = None,
    fonts: Sequence[str | os.PathLike[str]] | None = None,
) -> Path:
    """Render ``count`` letters and write them as a deterministic tar.gz to ``out``, atomically.

    Args:
        out: the tar.gz to write (its folder is created; a temp file is renamed into place).
        count: number of images, spread evenly over A–J (image ``i`` is class ``i % 10``).
        seed: seed of the data set; the same seed, count and fonts give the same bytes.
        progress: show a tqdm bar on stderr.
        workers: processes drawing images; None uses every CPU for large counts.
        fonts: font files to draw from; None discovers the installed ones.

    Returns:
        The path of the archive, ``out``.

    Example:
        >>> import tempfile, tarfile, pathlib
        >>> path = generate(pathlib.Path(tempfile.mkdtemp()) / "letters.tar.gz", count=20)
        >>> tarfile.open(path).getnames()[:3]
        ['letters', 'letters/A', 'letters/B']
    """
    if not isinstance(count, int) or count <= 0:
        raise ValueError(f"count should be a positive int, but got count={count!r}")
    if workers is not None and workers <= 0:
        raise ValueError(f"workers should be a positive int or None, but got workers={workers!r}")
    font_list = tuple(str(f) for f in fonts) if fonts is not None else _default_fonts()
    if not font_list:
        log.warning("no TrueType/OpenType fonts found under %s; using Pillow's default font",
                    ", ".join(FONT_DIRS))
        font_list = ("<pillow>",)
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if count >= _PARALLEL_FROM else 1
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                     compresslevel=6, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tf, \
                tqdm(total=count, unit="img", disable=not progress, desc="letters") as bar:
            tf.addfile(_tarinfo(TOP_LEVEL, folder=True))
            for letter in CLASSES:
                tf.addfile(_tarinfo(f"{TOP_LEVEL}/{letter}", folder=True))
            for i, png in enumerate(_rendered(count, seed, font_list, workers)):
                tf.addfile(_tarinfo(member_name(i, count), len(png)), io.BytesIO(png))
                bar.update(1)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %d letters (seed %d, %d fonts) to %s", count, seed, len(font_list), out)
    return out


__all__ = ["CLASSES", "DEFAULT_COUNT", "discover_fonts", "generate", "member_name", "render"]
