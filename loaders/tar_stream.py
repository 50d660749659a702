"""The one tar reader of dataferry: members streamed through the safety rules, never buffered.

:func:`iter_members` reads a tar, tar.gz (multi-member too), tar.bz2 or tar.xz file once, from
start to end, and yields each member with a reader of its data. Before a member is yielded it
has passed every rule of :mod:`loaders.archive_policy`: its name is cleaned (absolute and
``..`` names refused), link targets stay inside, special files are refused, a name appears only
once (a duplicate raises :class:`~loaders.errors.ArchiveError` naming it, in extraction and
packing alike), and the member count, total size and compression ratio are capped on the
*declared* sizes: a 94-byte file announcing a 2**40-byte member is refused on its header.
The caller reads at most the member's size, as little as it likes; the rest is skipped in
bounded pieces, so a 1 GiB member can be refused by its ``size`` without being buffered.

The parser decompresses in large chunks with ``zlib``/``bz2``/``lzma`` directly and parses each
512-byte header (checksum verified) with a handful of slices: :mod:`tarfile` spends several
times longer per header. It covers ustar, GNU long names/links, base-256 numbers and pax
``path``/``linkpath``/``size`` records (global ones too); an archive using GNU sparse files or
binary pax names is handed to :mod:`tarfile` mid-stream, where the source can be re-read, and
continues from the same member.

Example:
    >>> import io, tarfile, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.tar.gz"
    >>> with tarfile.open(path, "w:gz") as tf:
    ...     for name, data in [("d/x.txt", b"hello"), ("d/big.bin", bytes(5000))]:
    ...         info = tarfile.TarInfo(name); info.size = len(data)
    ...         tf.addfile(info, io.BytesIO(data))
    >>> for member, reader in iter_members(path):
    ...     if member.size > 1000:
    ...         continue  # refused by size: its data is skipped, never held in memory
    ...     print(member.name, member.kind, reader.read(member.size))
    d/x.txt file b'hello'
"""

from __future__ import annotations

import contextlib
import logging
import lzma
import os
import tarfile
import zipfile
import zlib
from collections.abc import Generator, Iterator
from typing import IO, Any, NamedTuple

from loaders.archive_policy import Limits, MemberRules, clean_name
from loaders.errors import FORCE_HINT, ArchiveError
from loaders.sniff import sniff_archive
from loaders.tar_headers import (
    FOLDER,
    HARDLINK,
    REGULAR,
    SPECIAL_KINDS,
    SYMLINK,
    Prefetcher,
    TarHeaders,
    TarRecord,
    UnsupportedTar,
    open_inflater,
)

log = logging.getLogger(__name__)

_SNIFF_BYTES = 64 * 1024  # enough for sniff_archive to look inside a gzip stream
_KIND_NAMES = {REGULAR: "file", FOLDER: "folder", SYMLINK: "symlink", HARDLINK: "hardlink"}
_TAR_MODES = {"tar": "r:", "tar.gz": "r:gz", "tar.bz2": "r:bz2", "tar.xz": "r:xz"}


class TarMember(NamedTuple):
    """One member that passed the rules (a named tuple: cheap to make, immutable).

    Attributes:
        name: the cleaned relative POSIX name (``./a//b`` becomes ``a/b``).
        kind: ``file``, ``folder``, ``symlink`` or ``hardlink``.
        size: bytes of data (0 for anything but a file), as declared by the header.
        mode: the permission bits stored in the archive.
        linkname: a link's target (a hard link's is cleaned), else ``""``.
    """

    name: str
    kind: str
    size: int
    mode: int
    linkname: str


class MemberReader:
    """The data of the member just yielded; valid until the iteration moves on."""

    __slots__ = ("_archive", "_left", "_name", "_source")

    def __init__(self, source: Any, size: int, archive: str, name: str) -> None:
        self._source, self._left, self._archive, self._name = source, size, archive, name

    @property
    def remaining(self) -> int:
        """Bytes of this member not read yet."""
        return self._left

    def read(self, n: int = -1) -> bytes:
        """Return the next ``min(n, remaining)`` bytes (all remaining ones for ``n < 0``).

        Raises:
            ArchiveError: the archive ends inside the member.
        """
        n = self._left if n < 0 or n > self._left else n
        if n == 0:
            return b""
        try:
            data = self._source.read(n)
        except _DECODING_ERRORS as err:
            if is_disk_error(err):
                raise
            raise corrupt(self._archive, err) from err
        if len(data) < n:
            raise ArchiveError(f"{self._archive} is truncated inside member {self._name!r}; {FORCE_HINT}")
        self._left -= n
        return data


def iter_members(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    kind: str | None = None,
    limits: Limits | None = None,
    archive_size: int | None = None,
) -> Generator[tuple[TarMember, MemberReader], None, None]:
    """Yield ``(member, reader)`` for each member of a tar archive that passes every rule.

    Args:
        source: the archive's path, or a binary file object positioned at its start.
        kind: ``tar``, ``tar.gz``, ``tar.bz2`` or ``tar.xz``; read from the magic bytes when None.
        limits: the caps (member count, total bytes, ratio); :class:`Limits` defaults when None.
        archive_size: the archive's size on disk, for the ratio cap; from the file when None.

    Yields:
        Each member and a :class:`MemberReader` of its data. The root folder (``./``) is counted
        but not yielded. Compressed archives are decompressed ahead in a thread: to stop early,
        close the iterator (``contextlib.closing``, or ``.close()``) rather than leave it to the
        garbage collector.

    Raises:
        UnsafeArchiveError: a member breaks a rule of :mod:`loaders.archive_policy`.
        ArchiveError: the archive is corrupt or truncated, or a name appears twice.
    """
    with contextlib.ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            raw: IO[bytes] = stack.enter_context(open(source, "rb"))  # noqa: SIM115
            archive = os.fspath(source)
        else:
            raw, archive = source, str(getattr(source, "name", "<tar stream>"))
        with decoding_errors(archive):
            kind = kind or _sniff(raw, archive)
        if kind not in _TAR_MODES:
            raise ValueError(f"kind should be one of {', '.join(_TAR_MODES)}, but got kind={kind!r}")
        size = archive_size if archive_size is not None else _size_of(raw)
        rules = MemberRules(archive, size, limits or Limits())
        yield from iter_checked(raw, kind=kind, archive=archive, rules=rules)


def iter_checked(
    raw: IO[bytes], *, kind: str, archive: str, rules: MemberRules
) -> Generator[tuple[TarMember, MemberReader], None, None]:
    """:func:`iter_members` with the caller's :class:`MemberRules` (whose counts it then reads).

    Args:
        raw: the archive file, at its start.
        kind: ``tar``, ``tar.gz``, ``tar.bz2`` or ``tar.xz``.
        archive: the archive's path, for messages.
        rules: the rules (and budget) to apply; extraction reads its counts afterwards.
    """
    start = raw.tell() if raw.seekable() else 0
    done = 0  # records handed to the rules: a tarfile restart skips as many
    records: Iterator[tuple[TarRecord, Any]] = _fast_records(raw, kind, archive)
    while True:
        try:
            for record, src in records:
                done += 1
                member = _admit(rules, record)
                if member is None:
                    continue
                reader = MemberReader(src, member.size, archive, member.name)
                try:
                    yield member, reader
                finally:
                    reader._left = 0  # the stream moves on (or closes): its bytes are another member's
            return
        except UnsupportedTar as err:
            records = _restart(raw, kind, archive, start, done, err)
        except _DECODING_ERRORS as err:
            if is_disk_error(err):
                raise
            raise corrupt(archive, err) from err


def _admit(rules: MemberRules, record: TarRecord) -> TarMember | None:
    kind = _KIND_NAMES.get(record.type) or SPECIAL_KINDS.get(record.type, f"special member (type {record.type!r})")
    name = rules.admit(record.name, kind, record.size, record.linkname)
    if name is None:
        return None
    link = record.linkname
    if kind == "hardlink":  # check_hardlink has accepted it: it cleans to an earlier file
        link = clean_name(rules.archive, link) or ""
    return TarMember(name, kind, record.size if kind == "file" else 0, record.mode, link)


def _fast_records(raw: IO[bytes], kind: str, archive: str) -> Iterator[tuple[TarRecord, Any]]:
    inflater = open_inflater(raw, kind, archive)
    headers = TarHeaders(inflater, archive)
    try:
        for record in headers.records():
            yield record, headers
    finally:
        if isinstance(inflater, Prefetcher):
            inflater.close()


def _restart(raw: IO[bytes], kind: str, archive: str, start: int, done: int, why: Exception) -> Iterator[tuple[TarRecord, Any]]:
    if not raw.seekable():
        raise ArchiveError(
            f"{archive} uses a tar feature dataferry's reader leaves to tarfile ({why}) and the "
            f"stream cannot be re-read; pass a path or a seekable file, or extract it with tar"
        )
    log.debug("%s uses %s: reading it with tarfile from member %d on", archive, why, done + 1)
    raw.seek(start)
    return _tarfile_records(raw, kind, done)


def _tarfile_records(raw: IO[bytes], kind: str, skip: int) -> Iterator[tuple[TarRecord, Any]]:
    with tarfile.open(fileobj=raw, mode=_TAR_MODES[kind]) as tf:  # type: ignore[call-overload]
        index = 0
        while (info := tf.next()) is not None:
            # Private in the stubs, but the list tarfile grows with every member read:
            # clearing it keeps memory flat on archives with millions of members.
            tf.members.clear()
            index += 1
            if index <= skip:
                continue
            kind_byte = REGULAR if info.isreg() else FOLDER if info.isdir() else info.type
            record = TarRecord(info.name, kind_byte, info.size if info.isreg() else 0, info.mode, info.linkname)
            yield record, tf.extractfile(info) if info.isreg() else None


_SNIFFED = {"tar": "tar", "tar.gz": "tar.gz", "gz": "tar.gz", "bz2": "tar.bz2", "xz": "tar.xz"}


def _sniff(raw: IO[bytes], archive: str) -> str:
    """The tar kind from the first bytes (loaders.sniff's rules), the stream left where it was."""
    if not raw.seekable():
        raise ValueError("pass kind= for a stream that cannot seek (its magic bytes cannot be re-read)")
    start = raw.tell()
    head = raw.read(_SNIFF_BYTES)
    raw.seek(start)
    found = sniff_archive(head)
    if found == "zip":
        raise ArchiveError(f"{archive} is a zip archive, not a tar; extract it with loaders.extract")
    return _SNIFFED.get(found or "tar", "tar")  # unknown: read as a plain tar, whose checks say why


def _size_of(raw: IO[bytes]) -> int:
    try:
        return os.fstat(raw.fileno()).st_size
    except (OSError, AttributeError, ValueError):  # io.BytesIO and friends have no fileno
        pass
    if raw.seekable():
        here = raw.tell()
        end = raw.seek(0, os.SEEK_END)
        raw.seek(here)
        return end
    return 2**62  # unknown size: the ratio cap cannot apply, max_total_bytes still does


_DECODING_ERRORS = (
    tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile,
    zipfile.LargeZipFile, OSError,
)


def corrupt(archive: str | os.PathLike[str], err: BaseException) -> ArchiveError:
    """Return the ArchiveError for a decoder's error."""
    return ArchiveError(f"{archive} is corrupt or truncated ({err}); {FORCE_HINT}")


def is_disk_error(err: BaseException) -> bool:
    """Tell a real I/O error (disk full, permission...) from a decoder's OSError (bz2, gzip)."""
    return isinstance(err, OSError) and err.errno is not None


@contextlib.contextmanager
def decoding_errors(archive: str | os.PathLike[str]) -> Iterator[None]:
    """Turn the decoders' many error types into :class:`ArchiveError`; disk errors pass through."""
    try:
        yield
    except _DECODING_ERRORS as err:
        if is_disk_error(err):
            raise
        raise corrupt(archive, err) from err


__all__ = ["MemberReader", "TarMember", "decoding_errors", "iter_checked", "iter_members"]
