"""The variable-size store: encoded image files back to back, decoded per sample.

For images of many sizes (photos) a fixed ``[N, H, W, C]`` array would either resize them
once (losing the resolution random-resized-crop augmentation wants) or not exist. This store
keeps each image's encoded bytes (the original file, or re-encoded once when ``max_side`` asks
for smaller) in one memory-mapped file, and decodes an image when it is read. A cache folder
``cache_root()/packed/<key>/`` holds::

    blobs.bin      the encoded images, back to back (memory-mapped when read)
    offsets.i64    N + 1 little-endian int64 offsets: image i is blobs[offsets[i]:offsets[i+1]]
    labels.i64     N little-endian int64 labels
    sizes.i32      N x 2 little-endian int32: each image's (H, W) as decoded
    manifest.json  format, store ("variable"), count, mode, mean/std (and ``stats_from``: they
                   come from reduced-scale JPEG decodes), classes, counts, skipped, notes,
                   options, source

It is published atomically by :func:`datasets.packed.ensure_packed` like the fixed store.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from datasets.channelstats import ChannelStats
from datasets.errors import PackedCacheError
from datasets.packed import (
    FORMAT_VERSION,
    LABELS_FILE,
    _check_size,
    read_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)

BLOBS_FILE = "blobs.bin"
OFFSETS_FILE = "offsets.i64"
SIZES_FILE = "sizes.i32"


class VariableImages:
    """A complete variable-size store on disk; the blobs are memory-mapped lazily.

    Args:
        path: the cache folder.

    Raises:
        PackedCacheError: the folder is not a complete variable store of this format.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        if self.manifest.get("store") != "variable":
            raise PackedCacheError(f"packed cache {self.path} is not a variable-size store; "
                                   "delete the folder to rebuild it")
        n = int(self.manifest["count"])
        self.count = n
        self.offsets = np.fromfile(self.path / OFFSETS_FILE, dtype="<i8")
        if len(self.offsets) != n + 1 or (n and np.any(np.diff(self.offsets) < 0)):
            raise PackedCacheError(f"packed cache file {self.path / OFFSETS_FILE} does not hold "
                                   f"{n + 1} ascending offsets; delete {self.path} to rebuild it")
        _check_size(self.path / BLOBS_FILE, int(self.offsets[-1]))
        _check_size(self.path / LABELS_FILE, n * 8)
        _check_size(self.path / SIZES_FILE, n * 8)
        self._blobs: np.ndarray | None = None

    def __len__(self) -> int:
        return self.count

    @property
    def mode(self) -> str:
        """``"L"`` or ``"RGB"``: the mode every image is decoded to."""
        return str(self.manifest["mode"])

    def blob(self, index: int) -> bytes:
        """Return the encoded bytes of image ``index``."""
        if self._blobs is None:  # mapped lazily, so each worker process maps the file itself
            self._blobs = (np.memmap(self.path / BLOBS_FILE, dtype=np.uint8, mode="r")
                           if self.offsets[-1] else np.zeros(0, np.uint8))
        return self._blobs[int(self.offsets[index]) : int(self.offsets[index + 1])].tobytes()

    def labels(self) -> np.ndarray:
        """Read the labels: ``int64`` ``[N]``."""
        return np.fromfile(self.path / LABELS_FILE, dtype="<i8").astype(np.int64, copy=False)

    def sizes(self) -> np.ndarray:
        """Read each image's decoded ``(H, W)``: ``int32`` ``[N, 2]``."""
        return np.fromfile(self.path / SIZES_FILE, dtype="<i4").reshape(-1, 2)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_blobs"] = None  # workers map the file themselves
        return state

    def __repr__(self) -> str:
        return f"VariableImages({str(self.path)!r}, count={self.count})"


class VariableWriter:
    """Append encoded images, labels and sizes to a variable store being built.

    Args:
        folder: the (temporary) folder to write into.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._blobs = open(folder / BLOBS_FILE, "wb")  # noqa: SIM115 - closed in finish()
        self._labels = open(folder / LABELS_FILE, "wb")  # noqa: SIM115
        self._sizes = open(folder / SIZES_FILE, "wb")  # noqa: SIM115
        self.offsets = [0]
        self.count = 0
        self.channels = 1
        self.stats = ChannelStats()

    def append(self, blobs: list[bytes], labels: np.ndarray, sizes: np.ndarray) -> None:
        """Write encoded ``blobs`` with their ``labels`` ``[k]`` and ``sizes`` ``[k, 2]``."""
        for blob in blobs:
            self._blobs.write(blob)
            self.offsets.append(self.offsets[-1] + len(blob))
        self._labels.write(np.asarray(labels, dtype="<i8").tobytes())
        self._sizes.write(np.asarray(sizes, dtype="<i4").reshape(-1, 2).tobytes())
        self.count += len(blobs)

    def append_file(self, path: str | os.PathLike[str], lengths: list[int], labels: np.ndarray,
                    sizes: np.ndarray) -> None:
        """Append blobs written back to back in ``path`` (of ``lengths``); delete ``path``."""
        self._blobs.flush()
        with open(path, "rb") as part:
            shutil.copyfileobj(part, self._blobs, 1 << 20)
        os.unlink(path)
        for length in lengths:
            self.offsets.append(self.offsets[-1] + length)
        self._labels.write(np.asarray(labels, dtype="<i8").tobytes())
        self._sizes.write(np.asarray(sizes, dtype="<i4").reshape(-1, 2).tobytes())
        self.count += len(lengths)

    def close(self) -> None:
        """Flush and close the files (safe to call twice)."""
        for handle in (self._blobs, self._labels, self._sizes):
            handle.close()

    def finish(self, manifest: dict[str, Any], *, mode: str) -> None:
        """Write the offsets and ``manifest.json`` (count, store, mode, stats filled in)."""
        self.close()
        np.asarray(self.offsets, dtype="<i8").tofile(self.folder / OFFSETS_FILE)
        stats = self.stats.as_manifest()
        if mode == "RGB" and len(stats["mean"]) == 1:  # grey images shown as colour
            stats = {k: v * 3 for k, v in stats.items()}
        write_manifest(self.folder, {"format": FORMAT_VERSION, "store": "variable",
                                     "count": self.count, "mode": mode, **stats, **manifest})


def permute_blobs(folder: Path, order: np.ndarray) -> None:
    """Rewrite a store's blobs, offsets and sizes with image ``order[i]`` as image ``i``.

    Blobs are copied with ``os.pread``, one image at a time: memory stays bounded.
    """
    offsets = np.fromfile(folder / OFFSETS_FILE, dtype="<i8")
    sizes = np.fromfile(folder / SIZES_FILE, dtype="<i4").reshape(-1, 2)
    path, temp = folder / BLOBS_FILE, folder / (BLOBS_FILE + ".sorting")
    new_offsets = [0]
    fd = os.open(path, os.O_RDONLY)
    try:
        with open(temp, "wb") as out:
            for row in order.tolist():
                start, end = int(offsets[row]), int(offsets[row + 1])
                out.write(os.pread(fd, end - start, start))
                new_offsets.append(new_offsets[-1] + end - start)
    finally:
        os.close(fd)
    os.replace(temp, path)
    np.asarray(new_offsets, dtype="<i8").tofile(folder / OFFSETS_FILE)
    sizes[order].astype("<i4").tofile(folder / SIZES_FILE)
    manifest = read_manifest(folder)
    manifest["count"] = len(order)
    write_manifest(folder, manifest)
