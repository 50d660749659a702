"""Write tiny IDX ``.gz`` pairs (MNIST's file format) into a test's tmp_path."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, *,
              gz: bool = True) -> None:
    """Write ``<prefix>-images-idx3-ubyte.gz`` and ``<prefix>-labels-idx1-ubyte.gz``.

    ``gz=False`` writes them uncompressed, as torchvision leaves them in ``root/MNIST/raw``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    opener = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    with opener(folder / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, w) + images.astype(np.uint8).tobytes())
    with opener(folder / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())
