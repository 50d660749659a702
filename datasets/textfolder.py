"""One text file per sample in ``SPLIT/CLASS/*.txt`` (IMDB's aclImdb): :class:`TextFolderDataset`.

The layout is ``[top/]SPLIT/CLASS/NAME.txt``; the classes are the sorted folder names under
the split (``neg``, ``pos``), and anything else is ignored (aclImdb's ``unsup/`` reviews,
``urls_*.txt``, ``labeledBow.feat``, ``imdb.vocab``). The source is a folder or a tar archive
read member by member through the one tar reader, :func:`loaders.tar_stream.iter_members`
(header checksums, caps on declared sizes, duplicate names refused), without extracting
anything; the split is then packed once (:mod:`datasets.textpack`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Generator
from pathlib import Path
from typing import Any

from datasets.errors import DataFormatError, DatasetNotFoundError
from datasets.textfiles import file_kind
from datasets.textpack import (
    PackedText,
    PackedTextDataset,
    ensure_packed_text,
    source_key,
    write_packed_text,
)
from datasets.vocab import WordTokenizer
from loaders.errors import LoaderError
from loaders.extract import detect_kind
from loaders.tar_stream import iter_members

log = logging.getLogger(__name__)

__all__ = ["TextFolderDataset", "read_text_folder"]

IGNORED_CLASSES = ("unsup",)
MAX_FILE_BYTES = 16 * 1024**2


def _split_class(name: str, split: str) -> str | None:
    """Return the class of member ``name`` when it is ``[top/]split/CLASS/x.txt``, else None."""
    parts = name.strip("/").split("/")
    if len(parts) == 4:
        parts = parts[1:]
    if len(parts) != 3 or parts[0] != split or not parts[2].endswith(".txt"):
        return None
    return None if parts[1] in IGNORED_CLASSES or parts[1].startswith(".") else parts[1]


def _from_archive(archive: Path, split: str) -> Generator[tuple[str, str, bytes], None, None]:
    kind = detect_kind(archive)
    if not kind.startswith("tar"):
        raise DataFormatError(f"{archive}: expected a folder or a tar archive of "
                              f"SPLIT/CLASS/*.txt files but it is a {kind}; extract it first")
    # closing: the reader decompresses ahead in a thread, stopped as soon as the caller stops
    with contextlib.closing(iter_members(archive, kind=kind)) as members:
        for member, reader in members:
            label = _split_class(member.name, split) if member.kind == "file" else None
            if label is None:
                continue  # its data is skipped in bounded pieces, never held
            if member.size > MAX_FILE_BYTES:  # refused on its header, before any byte is read
                raise DataFormatError(f"{archive}: member {member.name} declares {member.size} "
                                      f"bytes, more than {MAX_FILE_BYTES} for one text")
            yield member.name, label, reader.read(member.size)


def _from_folder(root: Path, split: str) -> Generator[tuple[str, str, bytes], None, None]:
    for path in sorted((root / split).glob("*/*.txt")):
        label = _split_class(path.relative_to(root).as_posix(), split)
        if label is not None:
            yield os.fspath(path), label, _read_file(path)


def _read_file(path: Path) -> bytes:
    """Read one regular file of at most :data:`MAX_FILE_BYTES`, as archive members are capped.

    Opened without blocking and checked on the open descriptor: a FIFO named ``x.txt`` would
    block ``read_bytes()`` forever, and a check by name could race with a swapped file.

    Raises:
        DataFormatError: not a regular file (a FIFO, device or folder), or larger than the cap.
    """
    try:  # by name first: opening a socket, a tty or a serial port has effects or fails oddly
        _check_regular(path, os.stat(path).st_mode)
    except FileNotFoundError as err:
        raise DataFormatError(f"{path}: expected a text file but it is a symlink to a missing "
                              "file; remove the link or restore its target") from err
    except OSError as err:
        raise DataFormatError(f"cannot read {path}: {err.strerror or err}; check its "
                              "permissions or remove it") from err
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise DataFormatError(f"cannot read {path}: {err.strerror or err}; check its "
                              "permissions or remove it") from err
    info = os.fstat(fd)
    try:  # again on the open descriptor: the name may have been swapped since
        _check_regular(path, info.st_mode)
    except DataFormatError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows after fstat
    if len(data) > MAX_FILE_BYTES:
        raise DataFormatError(f"{path}: {max(info.st_size, len(data))} bytes, more than "
                              f"{MAX_FILE_BYTES} for one text; split or remove it")
    return data


def _check_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise DataFormatError(f"{path}: expected a regular text file but it is "
                              f"{file_kind(mode)}; remove it or rename it so it does "
                              "not end in .txt")


def read_text_folder(root: str | os.PathLike[str], *, split: str) -> tuple[list[str], list[str]]:
    """Return the texts and class names of ``split`` from a folder or a tar archive.

    Raises:
        DatasetNotFoundError: ``root`` does not exist.
        DataFormatError: no ``split/CLASS/*.txt`` file, a file that is not UTF-8 text, or
            not a regular file (a FIFO...), or larger than :data:`MAX_FILE_BYTES`; ``root``
            neither a folder nor a file.
        loaders.LoaderError: the archive is corrupt or truncated.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetNotFoundError(f"expected a folder or tar archive at {root} but nothing is "
                                   "there; check the path or fetch the dataset first")
    if not root.is_dir() and not root.is_file():  # a FIFO would block the archive sniffing
        raise DataFormatError(f"expected a folder or tar archive at {root} but it is "
                              f"{file_kind(root.stat().st_mode)}; pass the folder or archive")
    texts: list[str] = []
    labels: list[str] = []
    members = _from_folder(root, split) if root.is_dir() else _from_archive(root, split)
    with contextlib.closing(members):  # a bad text stops the archive's reader thread now
        for name, label, data in members:
            try:
                texts.append(data.decode("utf-8"))
            except UnicodeDecodeError as err:
                raise DataFormatError(f"{root}: {name} is not UTF-8 text (byte {err.start}); "
                                      "re-encode it or remove it") from err
            labels.append(label)
    if not texts:
        raise DataFormatError(f"{root}: expected {split}/CLASS/*.txt files (as aclImdb's "
                              f"{split}/pos, {split}/neg) but found none; check split=")
    return texts, labels


class TextFolderDataset(PackedTextDataset):
    """The texts of one split of a ``SPLIT/CLASS/*.txt`` folder or tar archive, packed once.

    Args:
        root: the folder, or the tar archive (``aclImdb_v1.tar.gz``) read without extracting.
        split: the split folder's name (``"train"`` or ``"test"`` for aclImdb).
        cache_dir: the cache home for the packed cache.
        tokenizer: default ``WordTokenizer()``.
        classes: the class names to expect (default: those found); pass the training split's
            to a test split so that both number the classes alike.

    Raises:
        DataFormatError: see :func:`read_text_folder`; also a class outside ``classes``.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, split: str = "train",
        cache_dir: str | os.PathLike[str] | None = None, tokenizer: WordTokenizer | None = None,
        classes: list[str] | None = None,
    ) -> None:
        tokenizer = tokenizer or WordTokenizer()
        options: dict[str, Any] = {"layout": "text-folder", "split": split, "classes": classes,
                                   "tokenizer": tokenizer.describe()}

        def build(folder: Path) -> PackedText:
            try:
                texts, labels = read_text_folder(root, split=split)
            except LoaderError as err:
                raise DataFormatError(f"cannot read {root}: {err}") from err
            found = classes or sorted(set(labels))
            unknown = sorted(set(labels) - set(found))
            if unknown:
                raise DataFormatError(f"{root}: classes {unknown} of split {split!r} are not "
                                      f"among the training classes {found}")
            index = {c: i for i, c in enumerate(found)}
            return write_packed_text(folder, texts, [index[y] for y in labels], classes=found,
                                     tokenizer=tokenizer,
                                     source={"path": os.fspath(root), **options})

        super().__init__(ensure_packed_text(source_key(root, options), build, cache_dir=cache_dir))
