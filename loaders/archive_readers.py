"""Stream each kind of archive, member by member, through the safety policy into a folder.

:func:`read_archive` is the one entry point: every member passes
:class:`~loaders.archive_policy.MemberRules` *before* it is written (tar members through
:func:`loaders.tar_stream.iter_checked`, the one tar reader), and regular files are written
with one ``open``/``write``/``close`` each (no per-file ``chmod``/``utime``; permission bits
become 0o644, or 0o755 when any execute bit was set). Because the rules let no member replace
or lie under an earlier one, the writer never deletes anything: a clash on disk is an error.
Disk errors (a full disk, a name longer than the file system allows) name the member and path.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import os
import queue
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from loaders.archive_policy import Budget, Limits, MemberRules
from loaders.errors import FORCE_HINT, ArchiveError, UnsafeArchiveError
from loaders.tar_stream import TarMember, decoding_errors, iter_checked

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024**2
# O_EXCL: the staging folder starts empty and the rules refuse duplicate names, so an existing
# path (or a link in its place) is a clash, never something to overwrite or follow.
_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)
_BAR_EVERY = 256  # members between progress-bar updates
_NAME_MAX = 255  # bytes per path component on Linux and macOS file systems
_BATCH_FILES = 128  # small files per batch handed to the writer thread
_BATCH_BYTES = 8 * 1024**2  # ...or fewer when they are this big together


class Writer:
    """Writes checked members under ``root`` with as few syscalls as possible.

    With ``background=True`` small files are written by one thread in batches: ``open``,
    ``write`` and ``close`` release the GIL, so the system calls of earlier members overlap
    with parsing the next ones (extraction of many small files is syscall-bound). Folders are
    made before a file is queued, and links and large files wait for the queue to drain, so the
    order on disk is the archive's. Use it as a context manager: leaving it stops the thread.

    Args:
        root: the (staging) folder that receives the members.
        archive: the archive's path, for messages.
        background: write small files from a thread.
    """

    def __init__(self, root: Path, archive: Path, *, background: bool = False) -> None:
        self.root = os.fspath(root) + os.sep
        self.archive = os.fspath(archive)
        self.made: set[str] = {""}
        self._batch: list[tuple[str, int, bytes]] = []
        self._batch_bytes = 0
        self._failure: tuple[str, BaseException] | None = None
        self._stop = False
        self._queue: queue.Queue[list[tuple[str, int, bytes]] | None] = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="dataferry-extract-writer", daemon=True)
            self._thread.start()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop = exc[0] is not None  # an error: drop what is queued, it is all discarded
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def folder(self, name: str, member: str | None = None) -> None:
        """Create folder ``name`` and its parents, once (for ``member``, named in errors)."""
        if name in self.made:
            return
        try:
            os.makedirs(self.root + name, exist_ok=True)
        except OSError as err:
            raise self._error(member or name, err) from err
        while name not in self.made:
            self.made.add(name)
            name = name.rpartition("/")[0]

    def file(self, name: str, mode: int, data: bytes | None, src: Any = None, size: int = 0) -> None:
        """Write ``data``, or ``size`` bytes read from ``src``, as regular file ``name``."""
        self.folder(name.rpartition("/")[0], name)
        perms = 0o755 if mode & 0o111 else 0o644
        if data is not None and self._thread is not None:
            self._batch.append((name, perms, data))
            self._batch_bytes += len(data)
            if len(self._batch) >= _BATCH_FILES or self._batch_bytes >= _BATCH_BYTES:
                self._submit()
            return
        self.drain()
        try:
            if data is not None:
                _write_file(self.root + name, perms, data)
            else:
                fd = os.open(self.root + name, _CREATE_FLAGS, perms)
                try:
                    _copy(src, fd, size, self.archive, name)
                finally:
                    os.close(fd)
        except OSError as err:
            raise self._error(name, err) from err

    def drain(self) -> None:
        """Wait until every queued file is written; raise the first error of the thread."""
        if self._thread is not None:
            self._submit()
            self._queue.join()
        self._raise_failure()

    def _submit(self) -> None:
        self._raise_failure()
        if self._batch:
            self._queue.put(self._batch)
            self._batch, self._batch_bytes = [], 0

    def _raise_failure(self) -> None:
        if self._failure is not None:
            name, err = self._failure
            if isinstance(err, OSError):
                raise self._error(name, err) from err
            raise err

    def _run(self) -> None:
        root, flags = self.root, _CREATE_FLAGS
        while (batch := self._queue.get()) is not None:
            if self._failure is None and not self._stop:
                name = ""
                try:
                    for name, perms, data in batch:  # the hot loop: three system calls per file
                        fd = os.open(root + name, flags, perms)
                        try:
                            write_all(fd, data)
                        finally:
                            os.close(fd)
                except BaseException as err:  # handed to the main thread, raised there
                    self._failure = (name, err)
            self._queue.task_done()
        self._queue.task_done()

    def symlink(self, name: str, target: str) -> None:
        self.drain()
        self.folder(name.rpartition("/")[0], name)
        try:
            os.symlink(target, self.root + name)
        except OSError as err:
            raise self._error(name, err) from err

    def hardlink(self, name: str, target: str) -> None:
        self.drain()  # its target must be on disk
        self.folder(name.rpartition("/")[0], name)
        try:
            os.link(self.root + target, self.root + name, follow_symlinks=False)
        except OSError as err:
            raise self._error(name, err) from err

    def _error(self, name: str, err: OSError) -> Exception:
        """Say which member failed and what to do; keep disk errors OSErrors."""
        if err.errno == errno.ENAMETOOLONG or any(
            len(os.fsencode(part)) > _NAME_MAX for part in name.split("/")
        ):
            return ArchiveError(
                f"{self.archive}: member {name!r} has a name longer than the file system allows "
                f"({_NAME_MAX} bytes per folder or file name); extract it by hand with shorter "
                f"names (e.g. 7z x, then rename), or get the archive from its source again"
            )
        if isinstance(err, (IsADirectoryError, NotADirectoryError, FileExistsError)):
            return ArchiveError(
                f"{self.archive}: member {name!r} clashes with an earlier member "
                f"({err.strerror}); the archive is malformed: {FORCE_HINT}"
            )
        # A disk error (full, read-only...) stays an OSError with the path it was writing:
        # extract() turns it into a StorageError that names it and says what to do.
        return OSError(err.errno, err.strerror, self.root + name)


def _write_file(path: str, perms: int, data: bytes) -> None:
    fd = os.open(path, _CREATE_FLAGS, perms)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


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


def read_archive(archive: Path, kind: str, root: Path, limits: Limits, bar: Any = None) -> Budget:
    """Extract every member of ``archive`` (of ``kind``) into ``root``; return the counts.

    Raises:
        UnsafeArchiveError: a member breaks the policy (nothing is written outside ``root``).
        ArchiveError: the archive is corrupt or truncated, or cannot be read (encrypted...).
    """
    with decoding_errors(archive):
        if kind == "zip":
            return _read_zip(archive, root, limits, bar)
        if kind == "gz":
            return _read_gz(archive, root, limits, bar)
        return _read_tar(archive, kind, root, limits, bar)


def _read_tar(archive: Path, kind: str, root: Path, limits: Limits, bar: Any) -> Budget:
    arch = os.fspath(archive)
    rules = MemberRules(archive, archive.stat().st_size, limits)
    data_filter = getattr(tarfile, "data_filter", None)
    with (
        open(archive, "rb", buffering=CHUNK_BYTES) as raw,
        Writer(root, archive, background=True) as writer,
        contextlib.closing(iter_checked(raw, kind=kind, archive=arch, rules=rules)) as members,
    ):  # closing: on an error the reader's thread stops now, not when the traceback is freed
        for count, (member, reader) in enumerate(members):
            if member.kind == "file":
                if member.size <= CHUNK_BYTES:
                    writer.file(member.name, member.mode, reader.read(member.size))
                else:
                    writer.file(member.name, member.mode, None, reader, member.size)
            elif member.kind == "folder":
                writer.folder(member.name)
            else:
                # The rules above are exact (nothing is ever written under a link); where this
                # Python has it, the stdlib's realpath-based data filter checks links too.
                if data_filter is not None:
                    _filter(data_filter, member, writer.root, arch)
                if member.kind == "symlink":
                    writer.symlink(member.name, member.linkname)
                else:
                    writer.hardlink(member.name, member.linkname)
            if bar is not None and count % _BAR_EVERY == 0:
                bar.update(raw.tell() - bar.n)
        writer.drain()
        if bar is not None:
            bar.update(raw.tell() - bar.n)
    return rules.budget


def _filter(data_filter: Any, member: TarMember, root: str, archive: str) -> None:
    info = tarfile.TarInfo(member.name)
    info.type = tarfile.SYMTYPE if member.kind == "symlink" else tarfile.LNKTYPE
    info.mode, info.linkname = member.mode, member.linkname
    try:
        data_filter(info, root)
    except tarfile.TarError as err:  # FilterError and its kinds
        raise UnsafeArchiveError(
            f"{archive}: member {member.name!r} refused by tarfile's data filter: {err}"
        ) from err


_ZIP_METHODS = {
    zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA,
}
_ZIP_METHOD_NAMES = {6: "Implode", 9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd", 99: "AES"}


def check_zip_member(archive: str, info: zipfile.ZipInfo) -> None:
    """Refuse a zip member Python's :mod:`zipfile` cannot read, before anything is written.

    Raises:
        ArchiveError: the member is encrypted or compressed with a method zipfile lacks
            (Deflate64, which Windows writes for large folders, and others).
    """
    if info.flag_bits & 0x1:
        raise ArchiveError(
            f"{archive}: member {info.filename!r} is encrypted (password-protected zips are "
            f"not supported); extract it with the password (unzip or 7z x), or get an "
            f"unencrypted copy"
        )
    if info.compress_type not in _ZIP_METHODS:
        method = _ZIP_METHOD_NAMES.get(info.compress_type, "an unknown method")
        raise ArchiveError(
            f"{archive}: member {info.filename!r} is compressed with {method} (zip method "
            f"{info.compress_type}), which Python's zipfile cannot read; extract it with "
            f"7z x, or re-create the zip with Deflate"
        )


def _read_zip(archive: Path, root: Path, limits: Limits, bar: Any) -> Budget:
    arch = os.fspath(archive)
    writer = Writer(root, archive)
    rules = MemberRules(archive, archive.stat().st_size, limits)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            rules.budget.members = limits.max_members
            rules.budget.add_member(infos[limits.max_members].filename)
        # The central directory declares every size: refuse a bomb before writing anything.
        rules.budget.check_declared(sum(info.file_size for info in infos))
        for info in infos:
            check_zip_member(arch, info)
        for info in infos:
            _place_zip_member(zf, info, rules, writer)
            if bar is not None:
                bar.update(info.compress_size)
    return rules.budget


def _place_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, rules: MemberRules, writer: Writer) -> None:
    file_type = (info.external_attr >> 16) & 0o170000
    if info.filename.endswith("/") or file_type == 0o040000:  # is_dir() fails on an empty name
        kind, target = "folder", ""
    elif file_type == 0o120000:
        kind = "symlink"  # its data is the target: small, but read at most 4 KiB of it
        with zf.open(info) as src:
            target = src.read(4096).decode("utf-8", "surrogateescape")
    elif file_type in (0, 0o100000):
        kind, target = "file", ""
    else:
        kind, target = f"special file (mode {oct(file_type)})", ""
    name = rules.admit(info.filename, kind, info.file_size if kind == "file" else 0, target)
    if name is None:
        return
    if kind == "folder":
        writer.folder(name)
    elif kind == "symlink":
        writer.symlink(name, target)
    else:
        with zf.open(info) as src:
            writer.file(name, info.external_attr >> 16, None, src, info.file_size)


def _read_gz(archive: Path, root: Path, limits: Limits, bar: Any) -> Budget:
    name = archive.name[:-3] if archive.name.lower().endswith(".gz") else f"{archive.name}.out"
    budget = Budget(archive, archive.stat().st_size, limits)
    budget.add_member(name)
    writer = Writer(root, archive)
    with open(archive, "rb", buffering=CHUNK_BYTES) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as src:
        try:
            fd = os.open(writer.root + name, _CREATE_FLAGS, 0o644)
        except OSError as err:
            raise writer._error(name, err) from err
        try:
            while chunk := src.read(CHUNK_BYTES):
                budget.add_bytes(name, len(chunk))  # no declared size: count while streaming
                try:
                    write_all(fd, chunk)
                except OSError as err:
                    raise writer._error(name, err) from err
                if bar is not None:
                    bar.update(raw.tell() - bar.n)
        finally:
            os.close(fd)
    return budget

