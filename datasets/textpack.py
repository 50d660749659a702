"""Texts tokenized once: token ids in one memory-mapped array plus offsets (:class:`PackedText`).

A packed text cache is a folder ``cache_root()/packed/text-<key>/`` holding::

    ids.i32        token ids of every text, concatenated (little-endian int32, memory-mapped)
    offsets.i64    N + 1 offsets: text i is ids[offsets[i]:offsets[i + 1]]
    labels.i64     N class ids (0..K-1)
    tokens.json    the corpus dictionary: every distinct token, in id order (first appearance)
    manifest.json  format, count, classes and their names, tokenizer settings, source, seconds

It is written into a temporary folder beside the final one and moved into place with
``os.replace`` only when complete, under :func:`loaders.lock.locked`, so an interrupted
build leaves nothing and two processes build it once. The key fingerprints the source file
(path, size, modification and change times, inode) and every reading and tokenizing option, so an edited file
or another tokenizer gets a new cache. An epoch then only slices arrays: no tokenizing.
The dictionary covers all texts; what a model may use (the training vocabulary, n-grams,
weights) is decided later from the training rows by :mod:`datasets.textfeatures`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.errors import DatasetNotFoundError, PackedCacheError
from datasets.labels import LabelEncoder
from datasets.packed import ensure_packed
from datasets.packing import file_fingerprint
from datasets.vocab import WordTokenizer

log = logging.getLogger(__name__)

FORMAT = "dataferry.text/1"
_FILES = ("ids.i32", "offsets.i64", "labels.i64", "tokens.json")


class PackedText:
    """A complete packed text folder; arrays are memory-mapped read-only.

    Args:
        path: the folder.

    Raises:
        PackedCacheError: the folder is not a complete cache of this format.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> pack = write_packed_text(folder, ["a b", "b c c"], [0, 1], classes=["x", "y"])
        >>> pack.tokens, pack.ids_of(1).tolist(), pack.labels.tolist()
        (['a', 'b', 'c'], [1, 2, 2], [0, 1])
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.manifest: dict[str, Any] = json.loads((self.path / "manifest.json").read_text("utf-8"))
            self.tokens: list[str] = json.loads((self.path / "tokens.json").read_text("utf-8"))
        except (OSError, ValueError) as err:
            raise PackedCacheError(f"cannot read the packed text cache {self.path}: {err}; "
                                   "delete the folder to rebuild it") from err
        if self.manifest.get("format") != FORMAT:
            raise PackedCacheError(f"{self.path} has format {self.manifest.get('format')!r}, "
                                   f"expected {FORMAT}; delete the folder to rebuild it")
        n, total = int(self.manifest["count"]), int(self.manifest["tokens"])
        self.offsets = self._array("offsets.i64", "<i8", n + 1)
        self.labels = self._array("labels.i64", "<i8", n)
        self.ids = self._array("ids.i32", "<i4", total)
        if n and (self.offsets[0] != 0 or self.offsets[-1] != total):
            raise PackedCacheError(f"{self.path}: offsets do not cover ids.i32; delete the "
                                   "folder to rebuild it")

    def _array(self, name: str, dtype: str, count: int) -> np.ndarray:
        path = self.path / name
        expected = count * np.dtype(dtype).itemsize
        size = path.stat().st_size if path.is_file() else -1
        if size != expected:
            raise PackedCacheError(f"{path} has {size} bytes, expected {expected}; delete "
                                   f"{self.path} to rebuild it")
        if count == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", shape=(count,))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> list[Any]:
        """The original label values, in id order."""
        return list(self.manifest["classes"])

    @property
    def names(self) -> list[str]:
        """Display names of the classes."""
        return list(self.manifest.get("names") or map(str, self.classes))

    def ids_of(self, index: int) -> np.ndarray:
        """Return the token ids of text ``index``."""
        return np.asarray(self.ids[self.offsets[index]:self.offsets[index + 1]])

    def lengths(self) -> np.ndarray:
        """Return the token count of every text."""
        return np.diff(np.asarray(self.offsets))


def write_packed_text(
    folder: str | os.PathLike[str], texts: Sequence[str], labels: Sequence[int], *,
    classes: Sequence[Any], names: Sequence[str] | None = None,
    tokenizer: WordTokenizer | None = None, source: dict[str, Any] | None = None,
) -> PackedText:
    """Tokenize ``texts`` and write the arrays and manifest into ``folder`` (created).

    Args:
        folder: where the files go (the caller publishes it atomically).
        texts: the texts.
        labels: class ids ``0..K-1``, one per text.
        classes: the original label values, in id order.
        names: display names of the classes.
        tokenizer: default :class:`~datasets.vocab.WordTokenizer()`.
        source: a description of the source for the manifest.
    """
    started = time.perf_counter()
    tokenizer = tokenizer or WordTokenizer()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dictionary: defaultdict[str, int] = defaultdict(itertools.count().__next__)
    lengths = np.zeros(len(texts), dtype=np.int64)
    with open(folder / "ids.i32", "wb") as out:
        for start in range(0, len(texts), 8192):  # chunks keep memory flat on large corpora
            chunk = [tokenizer(t) for t in texts[start:start + 8192]]
            lengths[start:start + len(chunk)] = [len(tokens) for tokens in chunk]
            flat = map(dictionary.__getitem__, itertools.chain.from_iterable(chunk))
            out.write(np.fromiter(flat, dtype="<i4").tobytes())
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype("<i8")
    offsets.tofile(folder / "offsets.i64")
    np.asarray(labels, dtype="<i8").tofile(folder / "labels.i64")
    (folder / "tokens.json").write_text(json.dumps(list(dictionary)), encoding="utf-8")
    manifest = {
        "format": FORMAT, "count": len(texts), "tokens": int(offsets[-1]),
        "classes": list(classes), "names": list(names) if names else None,
        "tokenizer": tokenizer.describe(), "source": source or {},
        "build_seconds": round(time.perf_counter() - started, 3),
    }
    with open(folder / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    log.info("packed %d texts (%d tokens, %d distinct) in %.2f s", len(texts), offsets[-1],
             len(dictionary), manifest["build_seconds"])
    return PackedText(folder)


def source_key(path: str | os.PathLike[str], options: dict[str, Any]) -> str:
    """Return a cache key for a file read with ``options``: its
    :func:`datasets.packing.file_fingerprint` (resolved path, size, mtime, ctime, inode) and
    the options.

    For a folder, every file under it counts (so an edited review gets a new cache, even one
    rewritten with its mtime put back).

    Raises:
        DatasetNotFoundError: ``path`` does not exist.

    Example:
        >>> len(source_key(__file__, {"header": "auto"}))
        24
    """
    path = Path(path).resolve()
    if not path.exists():
        raise DatasetNotFoundError(f"text file not found: {path}; check the path")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = [file_fingerprint(p) for p in files]
    blob = json.dumps([stats, options], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def ensure_packed_text(
    key: str, build: Callable[[Path], PackedText], *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> PackedText:
    """Open ``cache_root(cache_dir)/packed/text-<key>``, building it with ``build(temp)`` if absent.

    The image caches' :func:`datasets.packed.ensure_packed` does the work (lock, temporary
    folder with the umask's mode, check, ``os.replace``).

    Raises:
        PackedCacheError: the cache folder cannot be created or written.
    """

    def build_only(folder: Path) -> None:
        build(folder)

    return ensure_packed(f"text-{key}", build_only, cache_dir=cache_dir, opener=PackedText)


class PackedTextDataset(Dataset[dict[str, Any]]):
    """Rows of a :class:`PackedText` as a map-style dataset: ``{"input_ids", "label"}`` items.

    Args:
        pack: the packed texts.
        rows: the rows of ``pack`` this dataset shows (default all), e.g. a split.

    Example:
        >>> import tempfile
        >>> pack = write_packed_text(tempfile.mkdtemp(), ["a b", "c"], [1, 0], classes=["n", "p"])
        >>> ds = PackedTextDataset(pack)
        >>> ds[0], ds.classes
        ({'input_ids': tensor([0, 1]), 'label': 1}, ['n', 'p'])
    """

    def __init__(self, pack: PackedText, rows: Any = None) -> None:
        self.pack = pack
        self.rows = np.arange(len(pack)) if rows is None else np.asarray(rows, dtype=np.int64)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None,
        tokenizer: WordTokenizer | None = None, label_encoder: LabelEncoder | None = None,
        names: Sequence[str] | None = None, **read: Any,
    ) -> PackedTextDataset:
        """Read a CSV/TSV/JSONL file once and pack it (cached by content and options).

        Args:
            path: the file.
            cache_dir: the cache home (``loaders.cache_root(cache_dir)/packed``).
            tokenizer: default ``WordTokenizer()``.
            label_encoder: the training file's encoder, for a test file.
            names: display names of the classes (AG News: World, Sports, ...).
            read: ``text_columns=``, ``label_column=``, ``header=``, ``format=``, ``encoding=``,
                ``escapechar=`` of :func:`datasets.textfiles.read_records`.

        Raises:
            DataFormatError: see :func:`~datasets.textfiles.read_records`; a class unknown to
                ``label_encoder``.
        """
        from datasets.text import TextClassificationDataset
        from datasets.textfiles import read_records

        tokenizer = tokenizer or WordTokenizer()
        options = {"read": read, "tokenizer": tokenizer.describe(), "names": names,
                   "classes": label_encoder.classes if label_encoder else None}

        def build(folder: Path) -> PackedText:
            records = read_records(path, **read)
            ds = TextClassificationDataset.from_records(records, path=os.fspath(path),
                                                        label_encoder=label_encoder)
            enc = ds.label_encoder or LabelEncoder(sorted(set(ds.labels)))
            return write_packed_text(folder, ds.texts, ds.labels, classes=enc.classes,
                                     names=names, tokenizer=tokenizer,
                                     source={"path": os.fspath(path), "header": records.header,
                                             "skipped_empty": records.skipped_empty, **options})

        return cls(ensure_packed_text(source_key(path, options), build, cache_dir=cache_dir))

    @property
    def classes(self) -> list[Any]:
        """The original label values, in id order."""
        return self.pack.classes

    def describe_source(self) -> str:
        """Say where the texts came from and how the file was read (for a log line)."""
        source = self.pack.manifest.get("source", {})
        header = source.get("header")
        head = f"header {header!r:.80}" if header else "no header"
        return f"{source.get('path', self.pack.path)} ({head})"

    @property
    def label_encoder(self) -> LabelEncoder:
        """An encoder of this pack's classes (to read a matching test file)."""
        return LabelEncoder(self.pack.classes, names=self.pack.names)

    @property
    def targets(self) -> torch.Tensor:
        """Labels of the rows, int64."""
        return torch.from_numpy(np.asarray(self.pack.labels)[self.rows].astype(np.int64))

    def lengths(self) -> list[int]:
        """Token count of every row."""
        return self.pack.lengths()[self.rows].tolist()

    def subset(self, rows: Any) -> PackedTextDataset:
        """Return the dataset of ``rows`` (positions in this dataset)."""
        return PackedTextDataset(self.pack, self.rows[np.asarray(rows, dtype=np.int64)])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = int(self.rows[index])
        return {"input_ids": torch.from_numpy(self.pack.ids_of(row).astype(np.int64)),
                "label": int(self.pack.labels[row])}


__all__ = ["FORMAT", "PackedText", "PackedTextDataset", "ensure_packed_text", "source_key",
           "write_packed_text"]
