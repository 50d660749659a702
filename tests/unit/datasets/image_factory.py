"""Fake image trees and archives built in ``tmp_path`` (torchvision's ``inject_fake_data`` idea).

Other test modules import these helpers::

    from image_factory import make_image_archive, make_image_tree  # same folder on sys.path
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_CLASSES = ("A", "B", "C")
# The two kinds of unreadable files the real notMNIST archives hold.
CORRUPT_KINDS = ("empty", "not-png", "wrong-size", "truncated")


def png_bytes(array: np.ndarray) -> bytes:
    """Encode a ``uint8`` ``[H, W]`` array as a greyscale PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def image_for(label: int, index: int, size: int = 28) -> np.ndarray:
    """A deterministic, distinct image for (label, index): pixel values encode both."""
    rng = np.random.default_rng(label * 100_003 + index)
    array = rng.integers(0, 256, size=(size, size), dtype=np.uint8)
    array[0, 0] = label
    array[0, 1] = index % 256
    return array


def corrupt_bytes(kind: str, size: int = 28) -> bytes:
    """Bytes of an unreadable image of the given kind (see ``CORRUPT_KINDS``)."""
    if kind == "empty":
        return b""
    if kind == "not-png":
        return b"<html>this is not a PNG</html>"
    if kind == "wrong-size":
        return png_bytes(np.zeros((size + 4, size), dtype=np.uint8))
    if kind == "truncated":
        return png_bytes(image_for(0, 0, size))[:40]
    raise ValueError(f"kind should be one of {CORRUPT_KINDS}, but got kind={kind!r}")


def make_image_tree(
    root: Path,
    classes: Sequence[str] = DEFAULT_CLASSES,
    per_class: int = 5,
    size: int = 28,
    corrupt: Sequence[tuple[str, ...]] = (),
) -> Path:
    """Write ``root/CLASS/<index>.png`` images, plus ``corrupt`` ``(class, kind[, name])`` files.

    Returns ``root``. Image ``i`` of class ``c`` is ``image_for(c_index, i, size)``; corrupt
    files are named ``name`` or else ``bad-<n>-<kind>.png`` in their class folder.
    """
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            (folder / f"{index:05d}.png").write_bytes(png_bytes(image_for(label, index, size)))
    for n, (name, kind, *filename) in enumerate(corrupt):
        (root / name).mkdir(parents=True, exist_ok=True)
        file = filename[0] if filename else f"bad-{n}-{kind}.png"
        (root / name / file).write_bytes(corrupt_bytes(kind, size))
    return root


def make_image_archive(
    path: Path,
    top: str = "fake_small",
    classes: Sequence[str] = DEFAULT_CLASSES,
    per_class: int = 5,
    size: int = 28,
    corrupt: Sequence[tuple[str, ...]] = (),
    shuffle_seed: int | None = 0,
) -> Path:
    """Write a ``tar.gz`` laid out ``<top>/CLASS/<index>.png`` (members in a shuffled order).

    ``corrupt`` is as for :func:`make_image_tree`.
    """
    members: list[tuple[str, bytes]] = []
    for label, name in enumerate(classes):
        for index in range(per_class):
            members.append((f"{top}/{name}/{index:05d}.png",
                            png_bytes(image_for(label, index, size))))
    for n, (name, kind, *filename) in enumerate(corrupt):
        file = filename[0] if filename else f"bad-{n}-{kind}.png"
        members.append((f"{top}/{name}/{file}", corrupt_bytes(kind, size)))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(members))
        members = [members[i] for i in order]
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return path
