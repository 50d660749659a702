"""IDX reading, validation of malformed files, the MNIST family, and the real data."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets import MNIST, DataFormatError, DatasetNotFoundError, IDXDataset, NotMNIST
from datasets.idx import EMNISTSplit, MNISTSplit


def idx_bytes(array: np.ndarray, *, magic: bytes | None = None) -> bytes:
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    return header + struct.pack(f">{array.ndim}i", *array.shape) + array.astype(np.uint8).tobytes()


def write_pair(folder: Path, images: np.ndarray, labels: np.ndarray, *, prefix: str = "t10k",
               gz: bool = True) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    paths = (folder / f"{prefix}-images-idx3-ubyte{suffix}",
             folder / f"{prefix}-labels-idx1-ubyte{suffix}")
    for path, array in zip(paths, (images, labels), strict=True):
        data = idx_bytes(array)
        path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return paths


def fake(n: int = 12, h: int = 28, w: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, h, w), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.uint8))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_reads_gz_and_raw(tmp_path: Path, gz: bool) -> None:
    images, labels = fake()
    ds = IDXDataset(*write_pair(tmp_path, images, labels, gz=gz))
    assert np.array_equal(ds.data.numpy(), images)
    assert ds.targets.tolist() == labels.tolist() and ds.targets.dtype == torch.int64
    assert ds.classes == [str(i) for i in range(int(labels.max()) + 1)]
    x, y = ds[5]
    assert x.shape == (1, 28, 28) and y == int(labels[5])


def test_idx_dataset_transpose_and_classes(tmp_path: Path) -> None:
    images, labels = fake(n=4, h=3, w=5)
    ds = IDXDataset(*write_pair(tmp_path, images, labels), transpose=True,
                    classes=[chr(65 + i) for i in range(10)])
    assert ds.data.shape == (4, 5, 3)
    assert np.array_equal(ds.data.numpy(), images.transpose(0, 2, 1))
    assert ds.classes[0] == "A"


def _malformed(tmp_path: Path, case: str) -> tuple[Path, Path]:
    images, labels = fake()
    paths = write_pair(tmp_path, images, labels)
    image_bytes, label_bytes = idx_bytes(images), idx_bytes(labels)
    if case == "bad-magic":
        image_bytes = b"\x1f\x8b\x08\x03" + image_bytes[4:]
    elif case == "float-data":
        image_bytes = b"\x00\x00\x0d\x03" + image_bytes[4:]
    elif case == "wrong-dims":
        image_bytes = idx_bytes(images.reshape(12, 784))
    elif case == "swapped":
        paths = (paths[1], paths[0])
        return paths
    elif case == "short-data":
        image_bytes = image_bytes[:-100]
    elif case == "trailing-data":
        image_bytes = image_bytes + b"\0" * 7
    elif case == "count-mismatch":
        label_bytes = idx_bytes(labels[:11])
    elif case == "broken-gzip":
        paths[0].write_bytes(gzip.compress(image_bytes)[:-30])
        return paths
    paths[0].write_bytes(gzip.compress(image_bytes))
    paths[1].write_bytes(gzip.compress(label_bytes))
    return paths


@pytest.mark.parametrize(("case", "match"), [
    ("bad-magic", r"images-idx3-ubyte\.gz: expected an IDX file of uint8.*1f 8b 08 03"),
    ("float-data", r"expected an IDX file of uint8 \(magic 00 00 08"),
    ("wrong-dims", r"images-idx3-ubyte\.gz: expected a 3-dim IDX image file.*\[12, 784\]"),
    ("swapped", r"expected a 1-dim IDX label file but found dims \[12, 28, 28\]"),
    ("short-data", r"expected 9,408 bytes of data.*found 9,308.*truncated"),
    ("trailing-data", r"expected 9,408 bytes.*found 9,409.*trailing bytes"),
    ("count-mismatch", r"expected as many images as labels \(11\) but the file holds 12"),
    ("broken-gzip", r"images-idx3-ubyte\.gz: cannot decompress"),
])
def test_malformed_idx_rejected(tmp_path: Path, case: str, match: str) -> None:
    with pytest.raises(DataFormatError, match=match):
        IDXDataset(*_malformed(tmp_path, case))


def test_malformed_idx_leaves_no_cache(tmp_path: Path) -> None:
    from datasets.packed import packed_root

    with pytest.raises(DataFormatError):
        IDXDataset(*_malformed(tmp_path, "short-data"))
    assert not [p for p in packed_root().glob("*") if p.suffix != ".lock"]


def test_mnist_own_form_reads_from_dataset_dir(tmp_path: Path) -> None:
    images, labels = fake()
    write_pair(tmp_path / "mnist", images, labels, prefix="train")
    ds = MNISTSplit(tmp_path, split="train")
    assert len(ds) == 12 and ds.classes == [str(i) for i in range(10)]
    assert ds.packed.path.parent == tmp_path / "packed"


def test_mnist_own_form_missing_files_say_where_and_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        MNISTSplit(tmp_path, split="test")
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and str(tmp_path / "mnist") in message
    assert "python -m loaders.download mnist" in message


def test_mnist_rejects_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split should be one of"):
        MNIST(tmp_path, split="valid")


def test_emnist_reads_members_from_the_zip(tmp_path: Path) -> None:
    import zipfile

    images, labels = fake(n=6)
    labels = labels + 1  # letters are 1..26
    folder = tmp_path / "emnist"
    folder.mkdir()
    with zipfile.ZipFile(folder / "gzip.zip", "w") as zf:
        zf.writestr("gzip/emnist-letters-test-images-idx3-ubyte.gz",
                    gzip.compress(idx_bytes(images)))
        zf.writestr("gzip/emnist-letters-test-labels-idx1-ubyte.gz",
                    gzip.compress(idx_bytes(labels)))
    ds = EMNISTSplit(tmp_path, split="test", subset="letters")
    assert ds.classes[0] == "N/A" and ds.classes[1] == "a" and len(ds.classes) == 27
    assert np.array_equal(ds.data.numpy(), images.transpose(0, 2, 1))  # upright again
    with pytest.raises(DatasetNotFoundError, match="emnist-digits-test-images"):
        EMNISTSplit(tmp_path, split="test", subset="digits")


def test_real_notmnist_idx(shared_data: Path) -> None:
    folder = shared_data / "notmnist-idx"
    ds = IDXDataset(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz",
                    classes=list("ABCDEFGHIJ"))
    assert ds.data.shape == (10_000, 28, 28)
    assert ds.manifest["counts"] == {c: 1000 for c in "ABCDEFGHIJ"}
    assert len(np.unique(ds.data.numpy().reshape(10_000, -1), axis=0)) == 9_804


def test_real_notmnist_idx_through_notmnist_variant(shared_data: Path, tmp_path: Path) -> None:
    import shutil

    (tmp_path / "notmnist-idx").mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared_data / "notmnist-idx" / name, tmp_path / "notmnist-idx" / name)
    ds = NotMNIST(tmp_path, split="test", variant="idx")
    assert len(ds) == 10_000 and ds.classes == list("ABCDEFGHIJ")


def test_real_mnist_t10k(shared_data: Path) -> None:
    folder = shared_data / "mnist-t10k"
    ds = IDXDataset(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
    assert ds.data.shape == (10_000, 28, 28)
    assert ds.targets[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test digits
    assert ds.manifest["counts"]["1"] == 1135


def _header(*dims: int) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}i", *dims)


@pytest.mark.parametrize(("dims", "match"), [
    ((2**31 - 1, 28, 28), r"claims \[2147483647, 28, 28\].*at most"),  # huge count
    ((12, 2**31 - 1, 2**31 - 1), r"claims .* bytes of data but the file can hold at most"),
    ((-1, 28, 28), r"at least 1 but the header says \[-1, 28, 28\]"),  # int32 sign
    ((12, -28, 28), r"at least 1"),
    ((0, 28, 28), r"holds no images"),  # zero items
    ((12, 0, 28), r"at least 1"),
    ((65536, 65536, 65536), r"claims \[65536, 65536, 65536\] = 281,474,976,710,656 bytes"),
])
@pytest.mark.parametrize("gz", [True, False])
def test_hostile_image_dims_are_refused_before_allocating(
        tmp_path: Path, dims: tuple[int, ...], match: str, gz: bool) -> None:
    images, labels = fake()
    paths = write_pair(tmp_path, images, labels, gz=gz)
    data = _header(*dims) + images.tobytes()
    paths[0].write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataFormatError, match=match):
        IDXDataset(*paths, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(("dims", "match"), [
    ((2**31 - 1,), r"claims \[2147483647\]"), ((-5,), r"at least 1"), ((0,), r"holds no labels"),
])
def test_hostile_label_dims_are_refused(tmp_path: Path, dims: tuple[int, ...], match: str) -> None:
    from datasets.idx import read_idx_labels

    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(_header(*dims) + bytes(12))
    with pytest.raises(DataFormatError, match=match):
        read_idx_labels(path)


def test_a_gz_header_claiming_more_than_it_can_inflate_to_is_refused(tmp_path: Path) -> None:
    """1 MiB of zeros deflates to about 1 KB: that file cannot hold the 1 GiB its header claims."""
    from datasets.idx import read_idx_labels

    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_header(2**30) + bytes(1 << 20), compresslevel=9))
    with pytest.raises(DataFormatError, match=r"claims \[1073741824\].*at most"):
        read_idx_labels(path)
