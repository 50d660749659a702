"""Stream each kind of archive, member by member, through the safety policy into a folder.

:func:`read_archive` is the one entry point: it checks every member against
:mod:`loaders.archive_policy` *before* writing it, and writes regular files with one
``open``/``write``/``close`` each (no per-file ``chmod``/``utime``; permission bits become
0o644, or 0o755 when any execute bit was set). Tar streams go through the fast
:class:`~loaders.tar_stream.TarStream` and start over with :mod:`tarfile` when they use a
feature it leaves out.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import lzma
import os
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from loaders.archive_policy import (
    Budget,
    Limits,
    check_hardlink,
    check_symlink,
    clean_name,
    refuse_special,
)
from loaders.errors import ArchiveError, UnsafeArchiveError
from loaders.tar_stream import FOLDER, HARDLINK, REGULAR, SYMLINK, TarStream, UnsupportedTar

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024**2
FORCE_HINT = "delete it and download it again (fetch(..., force=True) or --force)"
_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)
_SPECIAL = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
_BAR_EVERY = 256  # members between progress-bar updates
_TAR_MODES: dict[str, Literal["r:", "r:gz", "r:bz2", "r:xz"]] = {
    "tar": "r:", "tar.gz": "r:gz", "tar.bz2": "r:bz2", "tar.xz": "r:xz",
}


class Writer:
    """Writes checked members under ``root`` with as few syscalls as possible.

    Args:
        root: the (staging) folder that receives the members.
        archive: the archive's path, for messages.
    """

    def __init__(self, root: Path, archive: Path) -> None:
        self.root = os.fspath(root) + os.sep
        self.archive = os.fspath(archive)
        self.made: set[str] = {""}
        self.regular: set[str] = set()
        self.linked = False  # once a symlink exists, lexical checks alone are not exact

    def folder(self, name: str) -> None:
        """Create folder ``name`` and its parents, once."""
        if name in self.made:
            return
        try:
            os.makedirs(self.root + name, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as err:
            raise self._conflict(name, err) from err
        while name not in self.made:
            self.made.add(name)
            name = name.rpartition("/")[0]

    def file(self, name: str, mode: int, data: bytes | None, src: Any = None, size: int = 0) -> None:
        """Write ``data``, or ``size`` bytes read from ``src``, as regular file ``name``."""
        self.folder(name.rpartition("/")[0])
        path = self.root + name
        perms = 0o755 if mode & 0o111 else 0o644
        try:
            fd = os.open(path, _CREATE_FLAGS, perms)
        except OSError as err:
            if err.errno != errno.ELOOP:  # ELOOP: a symlink of the same name came earlier
                raise self._conflict(name, err) from err
            os.unlink(path)
            fd = os.open(path, _CREATE_FLAGS, perms)
        try:
            if data is not None:
                write_all(fd, data)
            else:
                _copy(src, fd, size, self.archive, name)
        finally:
            os.close(fd)
        self.regular.add(name)

    def symlink(self, name: str, target: str) -> None:
        self.folder(name.rpartition("/")[0])
        _remove(self.root + name)
        os.symlink(target, self.root + name)
        self.linked = True

    def hardlink(self, name: str, target: str) -> None:
        self.folder(name.rpartition("/")[0])
        _remove(self.root + name)
        os.link(self.root + target, self.root + name, follow_symlinks=False)
        self.regular.add(name)

    def _conflict(self, name: str, err: OSError) -> ArchiveError | OSError:
        if isinstance(err, (IsADirectoryError, NotADirectoryError, FileExistsError)):
            return ArchiveError(
                f"{self.archive}: member {name!r} clashes with an earlier member "
                f"({err.strerror}); the archive is malformed: {FORCE_HINT}"
            )
        return err  # a disk error (full, read-only...): let it through as it is


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (one ``write`` in the usual case)."""
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)
        while written < len(view):
            written += os.write(fd, view[written:])


def _copy(src: Any, fd: int, size: int, archive: str, name: str) -> None:
    left = size
    while left > 0:
        chunk = src.read(min(left, CHUNK_BYTES))
        if not chunk:
            raise ArchiveError(f"{archive} is truncated inside member {name!r}; {FORCE_HINT}")
        write_all(fd, chunk)
        left -= len(chunk)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


@contextlib.contextmanager
def _read_errors(archive: Path) -> Iterator[None]:
    """Turn the decoders' many error types into ArchiveError; disk errors pass through."""
    try:
        yield
    except tarfile.TarError as err:
        if isinstance(err, getattr(tarfile, "FilterError", ())):
            raise UnsafeArchiveError(f"{archive}: refused by tarfile's data filter: {err}") from err
        raise _corrupt(archive, err) from err
    except (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as err:
        raise _corrupt(archive, err) from err
    except OSError as err:
        if err.errno is not None:  # a real I/O error (disk full...), not a decoding error
            raise
        raise _corrupt(archive, err) from err


def _corrupt(archive: Path, err: BaseException) -> ArchiveError:
    return ArchiveError(f"{archive} is corrupt or truncated ({err}); {FORCE_HINT}")


def read_archive(archive: Path, kind: str, root: Path, limits: Limits, bar: Any = None) -> Budget:
    """Extract every member of ``archive`` (of ``kind``) into ``root``; return the counts.

    Raises:
        UnsafeArchiveError: a member breaks the policy (nothing is written outside ``root``).
        ArchiveError: the archive is corrupt or truncated.
    """
    with _read_errors(archive):
        if kind == "zip":
            return _read_zip(archive, root, limits, bar)
        if kind == "gz":
            return _read_gz(archive, root, limits, bar)
        try:
            return _read_tar(archive, kind, root, limits, bar, fast=True)
        except UnsupportedTar as err:
            log.debug("%s uses %s: extracting it with tarfile instead", archive, err)
            for entry in os.listdir(root):
                _remove(os.path.join(root, entry))
            if bar is not None:
                bar.reset()
            return _read_tar(archive, kind, root, limits, bar, fast=False)


class _Placer:
    """Checks one tar member against the policy, then writes it."""

    def __init__(self, archive: Path, root: Path, limits: Limits, size: int) -> None:
        self.arch = os.fspath(archive)
        self.writer = Writer(root, archive)
        self.budget = Budget(archive, size, limits)
        self.data_filter = getattr(tarfile, "data_filter", None)

    def place(self, raw_name: str, kind: bytes, size: int, mode: int, linkname: str, src: Any) -> None:
        self.budget.add_member(raw_name)
        if kind == REGULAR:
            self.budget.add_bytes(raw_name, size)  # before anything is read or written
        name = clean_name(self.arch, raw_name)
        if name is None:
            return
        if kind == SYMLINK:
            check_symlink(self.arch, name, linkname)
        elif kind == HARDLINK:
            linkname = check_hardlink(self.arch, name, linkname, self.writer.regular)
        elif kind != REGULAR and kind != FOLDER:
            raise refuse_special(self.arch, name, _SPECIAL.get(kind, f"special member (type {kind!r})"))
        # Our lexical checks are exact while no symlink exists; from then on, and for links,
        # the stdlib's realpath-based data filter checks too, where this Python has it.
        if self.data_filter is not None and (self.writer.linked or kind in (SYMLINK, HARDLINK)):
            info = tarfile.TarInfo(raw_name)
            info.type, info.size, info.mode = kind, size, mode
            info.linkname = linkname
            self.data_filter(info, self.writer.root)
        if kind == REGULAR:
            if size <= CHUNK_BYTES:
                data = src.read(size)
                if len(data) != size:
                    raise ArchiveError(f"{self.arch} is truncated inside member {name!r}; {FORCE_HINT}")
                self.writer.file(name, mode, data)
            else:
                self.writer.file(name, mode, None, src, size)
        elif kind == FOLDER:
            self.writer.folder(name)
        elif kind == SYMLINK:
            self.writer.symlink(name, linkname)
        else:
            self.writer.hardlink(name, linkname)


def _read_tar(archive: Path, kind: str, root: Path, limits: Limits, bar: Any, *, fast: bool) -> Budget:
    placer = _Placer(archive, root, limits, archive.stat().st_size)
    with open(archive, "rb", buffering=CHUNK_BYTES) as raw:
        if fast:
            stream = TarStream(raw, kind, os.fspath(archive))
            for member in stream.members():
                placer.place(member.name, member.type, member.size, member.mode, member.linkname, stream)
                if bar is not None and placer.budget.members % _BAR_EVERY == 0:
                    bar.update(raw.tell() - bar.n)
        else:
            with tarfile.open(fileobj=raw, mode=_TAR_MODES[kind]) as tf:
                while (info := tf.next()) is not None:
                    # Private in the stubs, but the list tarfile grows with every member read:
                    # clearing it keeps memory flat on archives with millions of members.
                    tf.members.clear()  # type: ignore[attr-defined]
                    kind_byte = REGULAR if info.isreg() else FOLDER if info.isdir() else info.type
                    src = tf.extractfile(info) if info.isreg() else None
                    placer.place(info.name, kind_byte, info.size, info.mode, info.linkname, src)
        if bar is not None:
            bar.update(raw.tell() - bar.n)
    return placer.budget


def _read_zip(archive: Path, root: Path, limits: Limits, bar: Any) -> Budget:
    arch = os.fspath(archive)
    writer, budget = Writer(root, archive), Budget(archive, archive.stat().st_size, limits)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            budget.members = limits.max_members
            budget.add_member(infos[limits.max_members].filename)
        # The central directory declares every size: refuse a bomb before writing anything.
        budget.check_declared(sum(info.file_size for info in infos))
        for info in infos:
            budget.add_member(info.filename)
            file_type = (info.external_attr >> 16) & 0o170000
            if not info.is_dir() and file_type in (0, 0o100000):
                budget.add_bytes(info.filename, info.file_size)
            name = clean_name(arch, info.filename)
            if name is None:
                continue
            if info.is_dir() or file_type == 0o040000:
                writer.folder(name)
            elif file_type == 0o120000:
                target = zf.read(info)[:4096].decode("utf-8", "surrogateescape")
                check_symlink(arch, name, target)
                writer.symlink(name, target)
            elif file_type in (0, 0o100000):
                with zf.open(info) as src:
                    writer.file(name, info.external_attr >> 16, None, src, info.file_size)
            else:
                raise refuse_special(arch, name, f"special file (mode {oct(file_type)})")
            if bar is not None:
                bar.update(info.compress_size)
    return budget


def _read_gz(archive: Path, root: Path, limits: Limits, bar: Any) -> Budget:
    name = archive.name[:-3] if archive.name.lower().endswith(".gz") else f"{archive.name}.out"
    budget = Budget(archive, archive.stat().st_size, limits)
    budget.add_member(name)
    with open(archive, "rb", buffering=CHUNK_BYTES) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as src:
        fd = os.open(os.path.join(root, name), _CREATE_FLAGS, 0o644)
        try:
            while chunk := src.read(CHUNK_BYTES):
                budget.add_bytes(name, len(chunk))  # no declared size: count while streaming
                write_all(fd, chunk)
                if bar is not None:
                    bar.update(raw.tell() - bar.n)
        finally:
            os.close(fd)
    return budget

