"""IDX and CIFAR caches are keyed like the image cache: a rewrite with its mtime put back
(``rsync -t``, ``cp -p``) gets a new cache instead of the old pixels."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from cifar_factory import make_cifar_archive

from datasets import IDXDataset
from datasets.cifar import CIFAR10_LAYOUT, pack_cifar


def _rewrite_keeping_mtime(path: Path, data: bytes) -> None:
    stat = path.stat()
    assert len(data) == stat.st_size  # same size: only ctime and content tell them apart
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0, compresslevel=0)


def test_idx_file_rewritten_with_its_mtime_put_back_is_packed_again(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    first = rng.integers(0, 256, (4, 6, 6), dtype=np.uint8)
    images.write_bytes(_idx(first))
    labels.write_bytes(_idx(np.arange(4, dtype=np.uint8)))
    cache = tmp_path / "cache"
    assert np.array_equal(IDXDataset(images, labels, cache_dir=cache).data.numpy(), first)
    second = 255 - first
    _rewrite_keeping_mtime(images, _idx(second))
    assert np.array_equal(IDXDataset(images, labels, cache_dir=cache).data.numpy(), second)


def test_cifar_batch_rewritten_with_its_mtime_put_back_is_packed_again(tmp_path: Path) -> None:
    fake = make_cifar_archive(tmp_path / "a", per_batch=2, test_count=3)
    with tarfile.open(fake.path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    folder = tmp_path / "x" / "cifar-10-batches-py"
    cache = tmp_path / "cache"
    before = pack_cifar(folder, CIFAR10_LAYOUT, "test", label="labels", cache_dir=cache)
    old = np.array(before.images())
    batch = pickle.loads((folder / "test_batch").read_bytes())
    batch["data"] = batch["data"][::-1].copy()  # the same bytes in another order: same size
    _rewrite_keeping_mtime(folder / "test_batch", pickle.dumps(batch, protocol=2))
    after = pack_cifar(folder, CIFAR10_LAYOUT, "test", label="labels", cache_dir=cache)
    assert after.path != before.path
    assert np.array_equal(np.array(after.images()), old[::-1])
