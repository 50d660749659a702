"""CIFAR-10 and CIFAR-100 from the python ``tar.gz`` batches, packed once as ``[N, 32, 32, 3]``.

The archives (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``) hold pickled dicts:
``data`` is a ``uint8`` array ``[N, 3072]`` whose rows are the red, green and blue planes of a
32x32 image, each plane row-major (so ``row.reshape(3, 32, 32)`` is channel-first and upright);
``labels`` (CIFAR-10) or ``fine_labels``/``coarse_labels`` (CIFAR-100) are lists of ints; the
meta file names the classes. The archive is streamed once per split with the package's one tar
reader (:func:`loaders.tar_stream.iter_members`: header checksums, caps on declared sizes,
duplicate names refused), never extracted, and the pixels go into a
fixed-size packed cache (:mod:`datasets.packed`), memory-mapped on every later use.

The batches are pickles, and a pickle can run code: they are read by an unpickler that knows
only what a CIFAR batch contains (dicts, lists, strings, ints and numpy arrays) and refuses
anything else with :class:`datasets.DataFormatError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from datasets.errors import DataFormatError, DatasetNotFoundError
from datasets.images import PackedImageDataset, Transform, check_choice
from datasets.packed import FORMAT_VERSION, PackedImages, PackWriter, ensure_packed
from datasets.packing import file_fingerprint

log = logging.getLogger(__name__)

SIDE = 32
ROW_BYTES = 3 * SIDE * SIDE
# The largest batch, CIFAR-100's ``train``, is 50,000 rows of 3,072 bytes (~155 MB) plus labels:
# a member declaring more than this is refused on its header, before any of it is read.
MAX_MEMBER_BYTES = 256 * 1024**2
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own, whatever its module path
# (module, name) -> object: everything a CIFAR pickle may ask for, under every numpy spelling
_ALLOWED = {
    **{(module, "_reconstruct"): _RECONSTRUCT
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,  # how protocol 2 spells bytes in Python 3
}


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its splits inside the archive (or extracted folder)."""

    archive: str
    folder: str
    splits: dict[str, tuple[str, ...]]
    meta: str
    label_keys: tuple[str, ...]  # the first is the dataset's targets unless told otherwise
    name_keys: tuple[str, ...]  # meta keys naming the classes of each label key
    member_md5: dict[str, str]  # published md5 of each extracted file (torchvision's lists)


CIFAR10_LAYOUT = CifarLayout(
    archive="cifar-10-python.tar.gz", folder="cifar-10-batches-py",
    splits={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
    meta="batches.meta", label_keys=("labels",), name_keys=("label_names",),
    member_md5={"data_batch_1": "c99cafc152244af753f735de768cd75f",
                "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
                "data_batch_4": "634d18415352ddfa80567beed471001a",
                "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
                "test_batch": "40351d587109b95175f43aff81a1287e",
                "batches.meta": "5ff9c542aee3614f3951f8cda6e48888"},
)
CIFAR100_LAYOUT = CifarLayout(
    archive="cifar-100-python.tar.gz", folder="cifar-100-python",
    splits={"train": ("train",), "test": ("test",)}, meta="meta",
    label_keys=("fine_labels", "coarse_labels"),
    name_keys=("fine_label_names", "coarse_label_names"),
    member_md5={"train": "16019d7e3df5f24257cddd939b257f8d",
                "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
                "meta": "7973b15100ade9c7d40fb424638fde48"},
)


_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                  IndexError, KeyError, UnicodeDecodeError)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches only: numpy arrays and plain containers, nothing callable."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: a CIFAR batch holds only arrays, lists and "
                "strings") from None


def load_batch(data: bytes, name: str) -> dict[str, Any]:
    """Unpickle one CIFAR batch or meta file (Python 2 pickles) into a ``str``-keyed dict.

    Raises:
        DataFormatError: not a pickle, not a dict, or it asks for anything but numpy arrays.

    Example:
        >>> load_batch(pickle.dumps({b"label_names": [b"cat"]}, protocol=2), "batches.meta")
        {'label_names': ['cat']}
    """
    try:
        # latin1: the batches were pickled by Python 2, whose byte strings it maps 1:1
        loaded = _CifarUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _PICKLE_ERRORS as err:  # damaged data raise many kinds; all mean the same
        raise DataFormatError(
            f"{name}: cannot read it as a CIFAR batch ({type(err).__name__}: {err}); the file is "
            "damaged or not from the CIFAR python archive: delete it and download it again"
        ) from err
    if not isinstance(loaded, dict):
        raise DataFormatError(f"{name}: expected a pickled dict (a CIFAR batch) but got "
                              f"{type(loaded).__name__}; delete it and download it again")
    return {_text(k): [_text(v) for v in value] if isinstance(value, list) else value
            for k, value in loaded.items()}


def _text(value: Any) -> Any:
    return value.decode("latin1") if isinstance(value, bytes) else value


def batch_images(batch: dict[str, Any], name: str) -> np.ndarray:
    """Return a batch's pixels as ``uint8`` ``[N, 32, 32, 3]`` (height, width, channel).

    Raises:
        DataFormatError: ``data`` is missing or not ``uint8`` ``[N, 3072]``.

    Example:
        >>> planes = np.repeat(np.array([10, 20, 30], dtype=np.uint8), 1024)  # R, G, B planes
        >>> batch_images({"data": planes[None]}, "b")[0, 5, 7].tolist()  # the pixel at (5, 7)
        [10, 20, 30]
    """
    data = batch.get("data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != ROW_BYTES:
        got = (f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray)
               else type(data).__name__)
        raise DataFormatError(f"{name}: expected 'data' as uint8 [N, {ROW_BYTES}] but got {got}; "
                              "delete the file and download it again")
    return data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)


def batch_labels(batch: dict[str, Any], key: str, count: int, classes: int, name: str
                 ) -> np.ndarray:
    """Return ``batch[key]`` as ``int64`` ``[count]``, checked against the number of classes."""
    labels = np.asarray(batch.get(key, []), dtype=np.int64)
    if labels.shape != (count,):
        raise DataFormatError(f"{name}: expected {count:,} '{key}' (one per image) but found "
                              f"{labels.size:,}; delete the file and download it again")
    if count and (labels.min() < 0 or labels.max() >= classes):
        raise DataFormatError(f"{name}: expected '{key}' in 0..{classes - 1} but found "
                              f"{labels.min()}..{labels.max()}; the archive is damaged")
    return labels


def iter_members(source: Path, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(base name, bytes)`` of the ``wanted`` files of a CIFAR archive or folder.

    Raises:
        DataFormatError: the archive is corrupt or hostile, a wanted file is missing or
            declares more than :data:`MAX_MEMBER_BYTES`.
    """
    from loaders.errors import LoaderError

    found: set[str] = set()
    if source.is_dir():
        for name in sorted(wanted):
            if (source / name).is_file():
                found.add(name)
                yield name, (source / name).read_bytes()
    else:
        try:
            yield from _archive_members(source, wanted, found)
        except (LoaderError, OSError) as err:
            raise DataFormatError(f"cannot read the CIFAR archive {source}: {err}") from err
    missing = sorted(wanted - found)
    if missing:
        raise DataFormatError(f"expected {', '.join(missing)} in {source} but "
                              f"{'they are' if len(missing) > 1 else 'it is'} missing; the "
                              "archive is incomplete: delete it and download it again")


def _archive_members(source: Path, wanted: set[str], found: set[str]
                     ) -> Iterator[tuple[str, bytes]]:
    """The wanted files of a CIFAR tar, through the one tar reader; adds their names to ``found``."""
    from loaders.tar_stream import iter_members as iter_tar

    # closing: the reader decompresses ahead in a thread, stopped as soon as all are found
    with contextlib.closing(iter_tar(source)) as members:
        for member, reader in members:
            base = member.name.rsplit("/", 1)[-1]
            if member.kind != "file" or base not in wanted or base in found:
                continue
            if member.size > MAX_MEMBER_BYTES:  # refused on its header, before any byte is read
                raise DataFormatError(
                    f"{source}: member {member.name!r} declares {member.size:,} bytes, more than "
                    f"{MAX_MEMBER_BYTES:,} for one CIFAR batch; the archive is damaged or not "
                    "CIFAR: delete it and download it again")
            found.add(base)
            yield base, reader.read(member.size)
            if found == wanted:
                return


def read_split(source: Path, layout: CifarLayout, split: str
               ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, list[str]]]:
    """Read one split: pixels ``[N, 32, 32, 3]``, labels per label key, class names per key."""
    members = dict(iter_members(source, {*layout.splits[split], layout.meta}))
    meta = load_batch(members.pop(layout.meta), layout.meta)
    names: dict[str, list[str]] = {}
    for key, name_key in zip(layout.label_keys, layout.name_keys, strict=True):
        if not isinstance(meta.get(name_key), list):
            raise DataFormatError(f"{layout.meta}: expected the class names '{name_key}' but "
                                  f"found keys {sorted(meta)}; delete the archive and download it again")
        names[key] = [str(n) for n in meta[name_key]]
    images, labels = [], {key: [] for key in layout.label_keys}  # type: ignore[var-annotated]
    for member in layout.splits[split]:  # in published order, whatever the archive's order
        batch = load_batch(members[member], member)
        pixels = batch_images(batch, member)
        images.append(pixels)
        for key in layout.label_keys:
            labels[key].append(batch_labels(batch, key, len(pixels), len(names[key]), member))
    return (np.concatenate(images),
            {key: np.concatenate(parts) for key, parts in labels.items()}, names)


def _find_source(name: str, layout: CifarLayout, root: str | os.PathLike[str] | None,
                 download: bool) -> Path:
    """The archive or extracted folder: in ``dataset_dir(name, root)``, else in ``root``."""
    import loaders

    home = loaders.dataset_dir(name, root)
    places = [home] + ([Path(root).expanduser()] if root is not None else [])
    for place in places:  # root may also be a torchvision-style folder holding the archive
        for candidate in (place / layout.archive, place / layout.folder):
            if candidate.exists():
                return candidate
    if download:
        return loaders.fetch(name, root) / layout.archive
    looked = " and ".join(str(p) for p in places)
    raise DatasetNotFoundError(
        f"{name} not found: looked for {layout.archive} and {layout.folder}/ in {looked}; pass "
        f"download=True or run `python -m loaders.download {name}`"
    )


def _cache_key(source: Path, layout: CifarLayout, split: str, label: str) -> str:
    # a folder's own mtime misses a batch rewritten in place: key on the files it reads
    files = ([source / n for n in (*layout.splits[split], layout.meta)] if source.is_dir()
             else [source])
    stats = [file_fingerprint(f) if f.exists() else None for f in files]
    text = (f"dataferry-packed-v{FORMAT_VERSION}:cifar:{source.resolve()}:{stats}:"
            f"{split}:{label}")
    return "cifar-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def pack_cifar(source: Path, layout: CifarLayout, split: str, *, label: str,
               cache_dir: str | os.PathLike[str] | None = None,
               check: Callable[[], None] | None = None) -> PackedImages:
    """Pack one split of a CIFAR archive (or folder) once; ``label`` picks the targets' key.

    Every label key is also kept beside the pixels as ``<key>.i64`` (CIFAR-100's coarse
    labels travel with the fine ones). ``check`` runs before the files are read for a build
    (a mirror class checks published md5s there, once per cache).
    """

    def build(folder: Path) -> None:
        if check is not None:
            check()
        images, labels, names = read_split(source, layout, split)
        writer = PackWriter(folder)
        try:
            writer.append(images, labels[label])
        finally:
            writer.close()
        for key, values in labels.items():
            values.astype("<i8").tofile(folder / f"{key}.i64")
        counts = np.bincount(labels[label], minlength=len(names[label]))
        writer.finish({
            "kind": "images",
            "source": {"type": "cifar", "path": str(source.resolve()), "split": split},
            "classes": names[label],
            "label_names": names,
            "counts": {n: int(c) for n, c in zip(names[label], counts, strict=True)},
            "skipped": [],
            "num_skipped": 0,
        }, image_shape=(SIDE, SIDE), channels=3)

    return ensure_packed(_cache_key(source, layout, split, label), build, cache_dir=cache_dir)


class _Cifar(PackedImageDataset):
    registry_name: ClassVar[str] = ""
    layout: ClassVar[CifarLayout]

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        download: bool = False,
        *,
        label: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        check_choice("split", split, list(self.layout.splits))
        label = self.layout.label_keys[0] if label is None else label
        check_choice("label", label, list(self.layout.label_keys))
        self.split, self.label = split, label
        source = _find_source(self.registry_name, self.layout, root, download)
        packed = pack_cifar(source, self.layout, split, label=label,
                            cache_dir=root if cache_dir is None else cache_dir)
        super().__init__(packed, transform, target_transform)

    def labels_of(self, key: str) -> np.ndarray:
        """Return the labels under another key of the batches (CIFAR-100: ``coarse_labels``)."""
        check_choice("key", key, list(self.layout.label_keys))
        return np.fromfile(self.packed.path / f"{key}.i64", dtype="<i8").astype(np.int64)


class CIFAR10Split(_Cifar):
    """CIFAR-10 in dataferry's own form (``open_dataset("cifar10")``): ``ToFloat()`` default.

    ``ds[i]`` is ``(image, label)`` with ``image`` a ``float32`` ``[3, 32, 32]`` from the
    default transform (see :class:`datasets.images.PackedImageDataset`); ``ds.data`` is the
    ``uint8`` store ``[N, 32, 32, 3]``, as torchvision's ``CIFAR10.data``.

    Args:
        root: the data home: the archive (or torchvision's extracted ``cifar-10-batches-py``)
            is looked for in ``loaders.dataset_dir("cifar10", root)``, then in ``root`` itself;
            default ``loaders.cache_root()``.
        split: ``"train"`` or ``"test"``.
        transform: see :class:`datasets.images.PackedImageDataset`.
        target_transform: applied to the ``int`` label.
        download: fetch ``cifar-10-python.tar.gz`` (170 MB, md5-checked) when missing.
        label: the batches' label key (only ``"labels"`` here).
        cache_dir: where the packed cache goes (default: ``root``'s cache home).

    Raises:
        DatasetNotFoundError: the data are missing and ``download=False``.
        DataFormatError: the archive is damaged (named, with what to do).

    Example:
        >>> train = CIFAR10Split(split="train", download=True)  # doctest: +SKIP
        >>> train[0][0].shape, train.classes[:3]  # doctest: +SKIP
        (torch.Size([3, 32, 32]), ['airplane', 'automobile', 'bird'])
    """

    registry_name = "cifar10"
    layout = CIFAR10_LAYOUT


class CIFAR100Split(_Cifar):
    """CIFAR-100 in dataferry's own form: as :class:`CIFAR10Split` with 100 fine classes grouped into 20 coarse ones.

    ``label="fine_labels"`` (default) or ``"coarse_labels"`` picks the targets and classes;
    :meth:`labels_of` returns the other labels, row for row.

    Example:
        >>> coarse = CIFAR100Split(split="test", label="coarse_labels")  # doctest: +SKIP
        >>> len(coarse.classes)  # doctest: +SKIP
        20
    """

    registry_name = "cifar100"
    layout = CIFAR100_LAYOUT
