"""IDX files (the MNIST format) and the MNIST family of datasets.

An IDX file is ``00 00 <dtype> <ndim>``, then ``ndim`` big-endian ``int32`` sizes, then the
data. Images are ``uint8`` with 3 dims (``N, H, W``), labels ``uint8`` with 1 dim (``N``).
Files are read as ``.gz`` or raw, validated (magic, dims, length, image/label counts) and
streamed once into a packed cache (:mod:`datasets.packed`), so every dataset here is a
memory-mapped :class:`datasets.images.PackedImageDataset`.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, ClassVar, cast

import numpy as np

from datasets.errors import DataFormatError, DatasetNotFoundError
from datasets.images import PackedImageDataset, Transform, check_choice
from datasets.packed import FORMAT_VERSION, PackWriter, ensure_packed
from datasets.packing import file_fingerprint

log = logging.getLogger(__name__)

UINT8_CODE = 0x08
COPY_BYTES = 1 << 24
# zlib's deflate expands at most about 1032:1, so a .gz file of c bytes holds at most this
# many times c bytes: a header may not claim more data than its file can hold.
MAX_DEFLATE_RATIO = 1032


def read_idx_header(handle: IO[bytes], name: str) -> tuple[int, ...]:
    """Read and check an IDX header of ``uint8`` data; return its dimensions.

    Raises:
        DataFormatError: bad magic or an unsupported data type.
    """
    magic = handle.read(4)
    if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] != UINT8_CODE or magic[3] == 0:
        raise DataFormatError(
            f"{name}: expected an IDX file of uint8 (magic 00 00 08 <ndim>) but the first bytes "
            f"are {magic.hex(' ') or 'missing'}; the file is not IDX or is damaged: delete it "
            "and download it again"
        )
    ndim = magic[3]
    raw = handle.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DataFormatError(f"{name}: expected {ndim} dimension sizes in the IDX header but "
                              "the file ends first; delete it and download it again")
    return struct.unpack(f">{ndim}i", raw)


def _data_bound(path: Path, header_bytes: int) -> int:
    """The most data bytes that can follow the header in ``path`` (decompressed for ``.gz``)."""
    size = path.stat().st_size
    if path.suffix == ".gz":
        return size * MAX_DEFLATE_RATIO
    return max(0, size - header_bytes)


def check_dims(path: Path, dims: tuple[int, ...], expected_ndim: int, what: str) -> int:
    """Check IDX dimensions before anything is allocated; return the data size in bytes.

    Every size must be at least 1 (``int32`` sizes can be negative) and their product no more
    than the file can hold, so a 100-byte file cannot claim 2^31 images.

    Raises:
        DataFormatError: wrong number of dimensions, a size below 1, or more data claimed
            than the file holds.
    """
    if len(dims) != expected_ndim:
        raise DataFormatError(f"{path}: expected a {expected_ndim}-dim IDX {what} file but found "
                              f"dims {list(dims)}; did you swap the images and labels files?")
    if min(dims) < 1:
        raise DataFormatError(f"{path}: expected every IDX dimension to be at least 1 but the "
                              f"header says {list(dims)}; the file is damaged or holds no "
                              f"{what}s: delete it and download it again")
    claimed = 1
    for size in dims:
        claimed *= size
    bound = _data_bound(path, 4 + 4 * len(dims))
    if claimed > bound:
        raise DataFormatError(
            f"{path}: the IDX header claims {list(dims)} = {claimed:,} bytes of data but the "
            f"file can hold at most {bound:,}; it is damaged or truncated: delete it and "
            "download it again"
        )
    return claimed


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def read_idx_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a 1-dim IDX label file (``.gz`` or raw) into an ``int64`` array.

    Raises:
        DataFormatError: malformed file (magic, dims, length), naming the file.
    """
    path = Path(path)
    with _reading(path) as handle:
        dims = read_idx_header(handle, str(path))
        count = check_dims(path, dims, 1, "label")
        data = handle.read(count + 1)  # one more byte tells trailing data
    _check_length(path, len(data), count)
    return np.frombuffer(data, dtype=np.uint8).astype(np.int64)


def _check_length(path: Path, found: int, expected: int) -> None:
    if found != expected:
        what = "is truncated" if found < expected else "has trailing bytes"
        raise DataFormatError(
            f"{path}: expected {expected:,} bytes of data after the IDX header but found "
            f"{found:,}: the file {what}; delete it and download it again"
        )


class _reading:  # noqa: N801 - a context manager used like open()
    """Open an IDX file and turn decompression errors into DataFormatError."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> IO[bytes]:
        try:
            self.handle = _open(self.path)
        except OSError as err:
            raise DatasetNotFoundError(f"cannot open IDX file {self.path}: {err}") from err
        return self.handle

    def __exit__(self, kind: Any, err: BaseException | None, tb: Any) -> None:
        self.handle.close()
        if isinstance(err, (gzip.BadGzipFile, EOFError, zlib.error)):
            raise DataFormatError(
                f"{self.path}: cannot decompress ({err}); the .gz file is damaged: delete it "
                "and download it again"
            ) from err


def _copy_images(path: Path, writer: PackWriter, labels: np.ndarray, *, transpose: bool) -> None:
    """Stream a 3-dim IDX image file into ``writer`` in bounded chunks."""
    with _reading(path) as handle:
        dims = read_idx_header(handle, str(path))
        check_dims(path, dims, 3, "image")
        n, h, w = dims
        if n != len(labels):
            raise DataFormatError(
                f"{path}: expected as many images as labels ({len(labels):,}) but the file "
                f"holds {n:,}; the two files are from different releases: download both again"
            )
        rows_per_chunk = max(1, COPY_BYTES // max(1, h * w))
        done = 0
        while done < n:
            k = min(rows_per_chunk, n - done)
            data = handle.read(k * h * w)
            if len(data) < k * h * w:
                _check_length(path, done * h * w + len(data), n * h * w)
            images = np.frombuffer(data, dtype=np.uint8).reshape(k, h, w)
            if transpose:
                images = images.transpose(0, 2, 1)
            writer.append(images, labels[done : done + k])
            done += k
        if handle.read(1):
            _check_length(path, n * h * w + 1, n * h * w)


def _fingerprint(*paths: Path, extra: str) -> str:
    digest = hashlib.sha256(f"dataferry-packed-v{FORMAT_VERSION}:idx:{extra}\n".encode())
    for path in paths:
        try:
            path.stat()  # the IDX file's own message before file_fingerprint's
        except OSError as err:
            raise DatasetNotFoundError(
                f"expected the IDX file {path} but cannot read it ({err}); check the path or "
                "download the dataset first"
            ) from err
        digest.update(f"{file_fingerprint(path)}\n".encode())  # path, stats, ctime, inode
    return "idx-" + digest.hexdigest()[:32]


class IDXDataset(PackedImageDataset):
    """Images and labels from a pair of IDX files (``.gz`` or raw), memory-mapped.

    Args:
        images_path: the 3-dim image file (``*-images-idx3-ubyte[.gz]``).
        labels_path: the 1-dim label file (``*-labels-idx1-ubyte[.gz]``).
        transform: see :class:`datasets.images.PackedImageDataset`.
        target_transform: applied to the ``int`` label.
        classes: class names (default: ``"0"`` … ``str(max label)``).
        transpose: swap H and W (EMNIST stores images transposed).
        cache_dir: the cache home for the packed copy.

    Raises:
        DataFormatError: bad magic, wrong dims, short or long data, count mismatch.
        DatasetNotFoundError: a file is missing.

    Example:
        >>> ds = IDXDataset("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
    """

    def __init__(
        self,
        images_path: str | os.PathLike[str],
        labels_path: str | os.PathLike[str],
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        *,
        classes: list[str] | None = None,
        transpose: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        images_path, labels_path = Path(images_path).resolve(), Path(labels_path).resolve()
        key = _fingerprint(images_path, labels_path, extra=f"t={int(transpose)}:c={classes}")

        def build(folder: Path) -> None:
            self._check_sources(images_path, labels_path)
            labels = read_idx_labels(labels_path)
            names = classes or [str(i) for i in range(int(labels.max(initial=-1)) + 1)]
            if len(labels) and int(labels.max()) >= len(names):
                raise DataFormatError(f"{labels_path}: expected labels below {len(names)} "
                                      f"(classes {names}) but found {int(labels.max())}")
            writer = PackWriter(folder)
            try:
                _copy_images(images_path, writer, labels, transpose=transpose)
            finally:
                writer.close()
            counts = np.bincount(labels, minlength=len(names))
            writer.finish({
                "kind": "images",
                "source": {"type": "idx", "images": str(images_path),
                           "labels": str(labels_path), "fingerprint": key},
                "classes": names,
                "counts": {name: int(c) for name, c in zip(names, counts, strict=False)},
                "skipped": [],
                "num_skipped": 0,
            }, image_shape=None)

        super().__init__(ensure_packed(key, build, cache_dir=cache_dir), transform,
                         target_transform)

    def _check_sources(self, images_path: Path, labels_path: Path) -> None:
        """Check the files before they are packed (a subclass checks published hashes)."""


class _IDXFamily(IDXDataset):
    """A registry dataset published as the four MNIST-style IDX files."""

    registry_name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""  # for messages; default: the class name
    class_names: ClassVar[list[str]] = []
    transposed: ClassVar[bool] = False
    files: ClassVar[dict[str, tuple[str, str]]] = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        download: bool = False,
    ) -> None:
        check_choice("split", split, list(self.files))
        self.split = split
        images, labels = self._locate(root, split, download)
        super().__init__(images, labels, transform, target_transform,
                         classes=list(self.class_names) or None, transpose=self.transposed,
                         cache_dir=root)

    def _locate(self, root: str | os.PathLike[str] | None, split: str, download: bool
                ) -> tuple[Path, Path]:
        names = self.files[split]
        return cached_idx_files(self.registry_name, self.display_name or type(self).__name__,
                                names, root, split, download)


def cached_idx_files(name: str, display: str, names: tuple[str, str],
                     root: str | os.PathLike[str] | None, split: str, download: bool
                     ) -> tuple[Path, Path]:
    """The images and labels files of registry dataset ``name`` in the cache home ``root``.

    Raises:
        DatasetNotFoundError: missing and ``download=False`` (says where and what to run).
    """
    import loaders  # imported here: datasets works on local files without it

    folder = loaders.dataset_dir(name, root)
    if not all((folder / n).is_file() for n in names) and download:
        folder = loaders.fetch(name, root, split=split)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{display} {split} files not found: looked for {', '.join(missing)} in {folder}; "
            f"pass download=True or run `python -m loaders.download {name}`"
        )
    return folder / names[0], folder / names[1]


class MNISTSplit(_IDXFamily):
    """MNIST in dataferry's own form (``open_dataset("mnist")``): ``ToFloat()`` by default.

    Args:
        root: the cache home (default ``loaders.cache_root()``); files are looked for in
            ``loaders.dataset_dir("mnist", root)``.
        split: ``"train"`` or ``"test"``.
        transform: see :class:`datasets.images.PackedImageDataset`.
        target_transform: applied to the ``int`` label.
        download: fetch the split's files through ``loaders.fetch`` when missing.

    Raises:
        DatasetNotFoundError: files missing and ``download=False``; says where it looked.
    """

    registry_name = "mnist"
    display_name = "MNIST"
    class_names = [str(i) for i in range(10)]


class FashionMNISTSplit(_IDXFamily):
    """Fashion-MNIST in dataferry's own form; arguments as :class:`MNISTSplit`."""

    registry_name = "fashion-mnist"
    display_name = "FashionMNIST"
    class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


class KMNISTSplit(_IDXFamily):
    """Kuzushiji-MNIST in dataferry's own form; arguments as :class:`MNISTSplit`."""

    registry_name = "kmnist"
    display_name = "KMNIST"
    class_names = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


class EMNISTSplit(IDXDataset):
    """EMNIST in dataferry's own form (``open_dataset("emnist")``), upright, ``ToFloat()``.

    ``split`` is ``"train"``/``"test"`` like every dataset of this package and the EMNIST
    split is ``subset`` (the class :class:`datasets.EMNIST` takes torchvision's form too).
    Files are looked for as ``<dir>/gzip/emnist-<subset>-<split>-*-ubyte.gz``
    (what ``loaders.fetch("emnist")`` extracts), then ``<dir>/<same name>``, then read straight
    from ``<dir>/gzip.zip`` without extracting it. Images are transposed back upright (EMNIST
    stores them transposed). Labels are as published: ``letters`` uses 1–26, so its class 0
    is ``"N/A"`` as in torchvision.

    Args:
        root: the cache home; files are looked for in ``loaders.dataset_dir("emnist", root)``.
        split: ``"train"`` or ``"test"``.
        transform: see :class:`datasets.images.PackedImageDataset`.
        target_transform: applied to the ``int`` label.
        download: fetch ``gzip.zip`` (about 536 MB) through ``loaders.fetch`` when missing.
        subset: ``"byclass"``, ``"bymerge"``, ``"balanced"``, ``"letters"``, ``"digits"`` or
            ``"mnist"``.
    """

    _digits = [str(i) for i in range(10)]
    _upper = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    _lower = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    _merged = ["a", "b", "d", "e", "f", "g", "h", "n", "q", "r", "t"]
    SUBSETS: ClassVar[dict[str, list[str]]] = {
        "byclass": _digits + _upper + _lower,
        "bymerge": _digits + _upper + _merged,
        "balanced": _digits + _upper + _merged,
        "letters": ["N/A"] + _lower,
        "digits": _digits,
        "mnist": _digits,
    }

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        download: bool = False,
        *,
        subset: str = "balanced",
    ) -> None:
        check_choice("split", split, ["train", "test"])
        check_choice("subset", subset, list(self.SUBSETS))
        self.split, self.subset = split, subset
        images, labels = self._locate(root, download)
        super().__init__(images, labels, transform, target_transform,
                         classes=self.SUBSETS[subset], transpose=True, cache_dir=root)

    def _locate(self, root: str | os.PathLike[str] | None, download: bool) -> tuple[Path, Path]:
        import loaders

        folder = loaders.dataset_dir("emnist", root)
        names = [f"emnist-{self.subset}-{self.split}-{kind}-ubyte.gz"
                 for kind in ("images-idx3", "labels-idx1")]
        found = self._find(folder, names)
        if found is None and download:
            folder = loaders.fetch("emnist", root)
            found = self._find(folder, names)
        if found is None:
            raise DatasetNotFoundError(
                f"EMNIST {self.subset} {self.split} files not found: looked for {names[0]} in "
                f"{folder / 'gzip'}, {folder} and {folder / 'gzip.zip'}; pass download=True or "
                "run `python -m loaders.download emnist`"
            )
        return found

    @staticmethod
    def _find(folder: Path, names: list[str]) -> tuple[Path, Path] | None:
        for base in (folder / "gzip", folder):
            if all((base / n).is_file() for n in names):
                return base / names[0], base / names[1]
        archive = folder / "gzip.zip"
        if not archive.is_file():
            return None
        # Copy the two members out of the zip (a few MB each) beside it, once.
        out = folder / "gzip"
        with zipfile.ZipFile(archive) as zf:
            members = {Path(m).name: m for m in zf.namelist()}
            if not all(n in members for n in names):
                return None
            out.mkdir(exist_ok=True)
            for n in names:
                if not (out / n).is_file():
                    temp = out / f".{n}.partial"
                    temp.write_bytes(zf.read(members[n]))
                    os.replace(temp, out / n)
        return out / names[0], out / names[1]
