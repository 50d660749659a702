"""The byte level of :mod:`loaders.tar_stream`: decompression and 512-byte tar headers.

Only :mod:`loaders.tar_stream` reads records from this module (:mod:`loaders.sniff` shares its
header check, :func:`checksum_ok`); the records carry the names *as stored* (nothing here is
checked against the safety rules). :class:`TarHeaders` parses ustar, GNU
long names/links, base-256 numbers and pax ``path``/``linkpath``/``size`` records, local and
global, and verifies each header's checksum. GNU sparse members and binary pax charsets raise
:class:`UnsupportedTar`, which :mod:`loaders.tar_stream` answers by going on with
:mod:`tarfile`.
"""

from __future__ import annotations

import bz2
import logging
import lzma
import queue
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from loaders.errors import FORCE_HINT, ArchiveError, UnsafeArchiveError

log = logging.getLogger(__name__)

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
READ_BYTES = 1024**2  # compressed bytes per read
OUT_BYTES = 4 * 1024**2  # most decompressed bytes held at once: a bomb cannot fill memory
_MAX_META_BYTES = 1024**2
_SIGNED = struct.Struct("148b8x356b")

REGULAR, FOLDER, SYMLINK, HARDLINK = b"0", b"5", b"2", b"1"
SPECIAL_KINDS = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
_REGULAR_TYPES = (b"0", b"\x00", b"7")
_META_TYPES = (b"L", b"K", b"x", b"g")


class UnsupportedTar(Exception):
    """The stream uses a tar feature this parser leaves to :mod:`tarfile`."""


@dataclass
class TarRecord:
    """One member as stored: ``type`` is REGULAR, FOLDER, SYMLINK, HARDLINK or another type byte."""

    name: str
    type: bytes
    size: int
    mode: int
    linkname: str


class Inflater:
    """Decompressed chunks of a tar, tar.gz (multi-member too), tar.bz2 or tar.xz file."""

    def __init__(self, raw: IO[bytes], kind: str, archive: str) -> None:
        self.raw, self.kind, self.archive = raw, kind, archive
        self.decomp = self._new()
        self.pending = b""  # compressed input not yet fed

    def _new(self) -> Any:  # zlib, bz2 or lzma: each branch below uses its own attributes
        if self.kind == "tar.gz":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.kind == "tar.bz2":
            return bz2.BZ2Decompressor()
        if self.kind == "tar.xz":
            return lzma.LZMADecompressor()
        return None

    def chunk(self) -> bytes:
        """Return the next decompressed bytes (at most a few MiB), or b"" at the end."""
        if self.decomp is None:
            return self.raw.read(READ_BYTES) if self.raw is not None else b""
        while True:
            if self.decomp.eof:
                rest = self.decomp.unused_data or self.raw.read(READ_BYTES)
                if not rest:
                    self.decomp, self.raw = None, None  # type: ignore[assignment]
                    return b""
                self.decomp, self.pending = self._new(), rest  # a concatenated stream follows
            if self.kind == "tar.gz":
                data = self.decomp.unconsumed_tail or self.pending or self.raw.read(READ_BYTES)
                out = self.decomp.decompress(data, OUT_BYTES) if data else b""
            else:
                data = (self.pending or self.raw.read(READ_BYTES)) if self.decomp.needs_input else b""
                out = self.decomp.decompress(data, OUT_BYTES)
            self.pending = b""
            if out:
                return out
            if not data and not self.decomp.eof:
                raise ArchiveError(
                    f"{self.archive} is corrupt or truncated (the compressed stream ends before "
                    f"its end marker); {FORCE_HINT}"
                )


class Prefetcher:
    """Decompresses the next chunks in a thread while the caller parses the current one.

    ``zlib``, ``bz2`` and ``lzma`` release the GIL while they work, so decompression runs on a
    second core. At most ``depth`` chunks (a few MiB each) wait; an error is raised in the
    caller's thread, at the chunk where it happened. :meth:`close` stops the thread before
    the file it reads is closed.
    """

    def __init__(self, inflater: Inflater, depth: int = 2) -> None:
        self._inflater = inflater
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="dataferry-tar-inflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item: bytes | BaseException = self._inflater.chunk()
            except BaseException as err:  # handed to the caller's thread, raised there
                item = err
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, bytes) or not item:
                return

    def chunk(self) -> bytes:
        """Return the next decompressed bytes, or b"" at the end."""
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        self._done = not item
        return item

    def close(self) -> None:
        """Stop the thread and wait for it (it may be inside a read of the file)."""
        self._stop.set()
        self._thread.join()


def open_inflater(raw: IO[bytes], kind: str, archive: str) -> Inflater | Prefetcher:
    """Return the decompressor of ``raw``: a thread for compressed tars, else a plain reader."""
    inflater = Inflater(raw, kind, archive)
    return inflater if kind == "tar" else Prefetcher(inflater)


def checksum_ok(block: bytes) -> bool:
    """Whether ``block`` is a 512-byte tar header whose stored checksum matches its bytes.

    Both sums tar writers have used count: unsigned (POSIX) and signed (old Sun tars).

    Example:
        >>> checksum_ok(bytes(512)), checksum_ok(b"ustar")
        (False, False)
    """
    if len(block) < BLOCK:
        return False
    try:
        stored = _number(block[148:156], "")
    except ArchiveError:  # a checksum field that is no number: not a header
        return False
    # Zeros add nothing: summing only the other bytes is exact and several times faster.
    if stored == 256 + sum(block[:BLOCK].translate(None, b"\x00")) - sum(block[148:156]):
        return True
    return stored == 256 + sum(_SIGNED.unpack_from(block))


def _nts(field: bytes) -> str:
    end = field.find(b"\x00")
    return (field if end < 0 else field[:end]).decode("utf-8", "surrogateescape")


def _number(field: bytes, archive: str, base: int = 8) -> int:
    try:  # the usual field: digits, then NULs or spaces
        value = int(field.rstrip(b"\x00 ") or b"0", base)
    except ValueError:
        value = _odd_number(field, archive, base)
    if value < 0:
        raise ArchiveError(f"{archive} has a negative number in a tar header ({field!r}); {FORCE_HINT}")
    return value


def _odd_number(field: bytes, archive: str, base: int) -> int:
    if field[:1] == b"\x80":  # GNU base-256: big sizes, ids and times
        return int.from_bytes(field[1:], "big")
    end = field.find(b"\x00")
    text = (field if end < 0 else field[:end]).strip()
    try:
        return int(text or b"0", base)
    except ValueError as err:
        raise ArchiveError(f"{archive} has an invalid tar header ({field!r}); {FORCE_HINT}") from err


class TarHeaders:
    """Records of a tar stream, read once from start to end.

    Args:
        inflater: the decompressed stream.
        archive: the archive's path, for messages.
    """

    def __init__(self, inflater: Inflater | Prefetcher, archive: str) -> None:
        self.archive = archive
        self._inflater = inflater
        self._buf = b""
        self._pos = 0
        self._base = 0  # absolute offset of _buf[0]

    def read(self, n: int) -> bytes:
        """Return the next ``n`` bytes (fewer only at the end of the stream)."""
        pos, end = self._pos, self._pos + n
        if end <= len(self._buf):
            self._pos = end
            return self._buf[pos:end]
        parts = [self._buf[pos:]]
        have = len(parts[0])
        self._base += len(self._buf)
        self._buf, self._pos = b"", 0
        while have < n:
            chunk = self._inflater.chunk()
            if not chunk:
                break
            take = min(n - have, len(chunk))
            parts.append(chunk[:take])
            have += take
            if take < len(chunk):
                self._buf, self._pos = chunk, take
                break
            self._base += len(chunk)
        return b"".join(parts)

    def tell(self) -> int:
        return self._base + self._pos

    def _skip_to(self, offset: int) -> None:
        while (left := offset - self._base - self._pos) > 0:
            if self._pos + left <= len(self._buf):
                self._pos += left
                return
            if not self.read(min(left, OUT_BYTES)):
                raise ArchiveError(f"{self.archive} is truncated inside a member; {FORCE_HINT}")

    def _data(self, size: int) -> bytes:
        data = self.read(size)
        if len(data) < size:
            raise ArchiveError(f"{self.archive} is truncated inside a member; {FORCE_HINT}")
        self._skip_to(self.tell() + (-size % BLOCK))
        return data

    def records(self) -> Iterator[TarRecord]:
        """Yield each member; the caller may :meth:`read` up to ``size`` bytes of its data."""
        long_name = long_link = None
        pax: dict[str, str] = {}
        global_pax: dict[str, str] = {}
        while True:
            pos = self._pos  # the usual case inline: the header lies inside the current chunk
            if pos + BLOCK <= len(self._buf):
                block = self._buf[pos:pos + BLOCK]
                self._pos = pos + BLOCK
            else:
                block = self.read(BLOCK)
            if not block or block == _ZERO_BLOCK:
                return
            if len(block) < BLOCK:
                raise ArchiveError(f"{self.archive} is truncated inside a tar header; {FORCE_HINT}")
            self._check(block)
            kind = block[156:157]
            size = _number(block[124:136], self.archive)
            if kind in _META_TYPES:
                data = self._meta_data(kind, size)
                if kind == b"L":
                    long_name = _nts(data)
                elif kind == b"K":
                    long_link = _nts(data)
                else:
                    (pax if kind == b"x" else global_pax).update(self._pax(data))
                continue
            if kind == b"S":
                raise UnsupportedTar("a GNU sparse member")
            if global_pax:
                pax = {**global_pax, **pax}
            record = self._record(block, kind, size, pax, long_name, long_link)
            if long_name is not None or long_link is not None or pax:
                long_name = long_link = None
                pax = {}
            data_end = self._base + self._pos + record.size  # like tarfile: only files have data
            yield record
            end = data_end + (-data_end % BLOCK) - self._base
            if self._pos <= end <= len(self._buf):
                self._pos = end
            else:
                self._skip_to(end + self._base)

    def _meta_data(self, kind: bytes, size: int) -> bytes:
        """The data of a long-name or pax header, refused when it is not small."""
        if size > _MAX_META_BYTES:
            raise UnsafeArchiveError(
                f"{self.archive}: a {kind.decode()!r} header announces {size} bytes of "
                f"metadata, more than {_MAX_META_BYTES} (rule: long names and pax headers stay small)"
            )
        return self._data(size)

    def _record(
        self,
        block: bytes,
        kind: bytes,
        size: int,
        pax: dict[str, str],
        long_name: str | None,
        long_link: str | None,
    ) -> TarRecord:
        """Return the member a header block describes; pax and GNU long names win."""
        name = _nts(block[0:100])
        if block[345] and block[257:263] == b"ustar\x00":  # a POSIX ustar long name
            name = f"{_nts(block[345:500])}/{name}"
        if kind == b"\x00" and name.endswith("/"):
            kind = FOLDER
        if long_name is not None:
            name = long_name
        if pax:
            name = pax.get("path", name)
            if "size" in pax:
                size = _number(pax["size"].encode(), self.archive, base=10)
        if kind in (SYMLINK, HARDLINK):
            link = pax.get("linkpath", long_link if long_link is not None else _nts(block[157:257]))
        else:
            link = ""
        regular = kind in _REGULAR_TYPES
        return TarRecord(
            name=name.rstrip("/") or name if kind == FOLDER else name,
            type=REGULAR if regular else kind,
            size=size if regular else 0,
            mode=_number(block[100:108], self.archive),
            linkname=link,
        )

    def _check(self, block: bytes) -> None:
        if not checksum_ok(block):
            raise ArchiveError(
                f"{self.archive} has a tar header with a bad checksum at byte "
                f"{self.tell() - BLOCK}: it is corrupt; {FORCE_HINT}"
            )

    def _pax(self, data: bytes) -> dict[str, str]:
        records: dict[str, str] = {}
        pos = 0
        while pos < len(data) and data[pos:pos + 1] != b"\x00":
            space = data.find(b" ", pos)
            try:
                length = int(data[pos:space])
            except ValueError as err:
                raise ArchiveError(f"{self.archive} has a malformed pax header; {FORCE_HINT}") from err
            if length <= 0 or pos + length > len(data):
                raise ArchiveError(f"{self.archive} has a malformed pax header; {FORCE_HINT}")
            key, _, value = data[space + 1:pos + length - 1].partition(b"=")
            pos += length
            if key.startswith(b"GNU.sparse") or key == b"hdrcharset":
                raise UnsupportedTar(f"pax record {key!r}")
            if key in (b"path", b"linkpath", b"size"):
                records[key.decode()] = value.decode("utf-8", "surrogateescape")
        return records
