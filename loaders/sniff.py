"""Tell an archive's kind from its first bytes: dataferry's one magic-byte sniffer."""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import zlib
from typing import IO, Literal

from loaders.tar_headers import checksum_ok

log = logging.getLogger(__name__)

Kind = Literal["gz", "tar", "tar.bz2", "tar.gz", "tar.xz", "zip", "bz2", "xz"]
HEAD_BYTES = 512
_MAGIC: tuple[tuple[bytes, Kind], ...] = (
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty zip: only the end-of-directory record
)


def sniff_archive(source: str | os.PathLike[str] | bytes) -> Kind | None:
    """Return the kind of archive a file (or its first bytes) is, or ``None``.

    Gzip is looked into: a gzip stream whose first 512 decompressed bytes are a tar header is
    ``"tar.gz"``, any other is ``"gz"``. A bzip2 or xz stream is ``"bz2"``/``"xz"`` (whether
    a tar is inside is not checked: both are only used for tarballs here, so callers map them
    to ``"tar.bz2"``/``"tar.xz"``). Given bytes, pass at least the first 512 (more for a
    ``.tar.gz`` whose header compresses badly).

    Args:
        source: a path, or the first bytes of a file.

    Returns:
        ``"tar.gz"``, ``"gz"``, ``"bz2"``, ``"xz"``, ``"zip"``, ``"tar"``, or ``None``.

    Raises:
        OSError: the file cannot be read.

    Example:
        >>> import gzip
        >>> sniff_archive(gzip.compress(b"hello"))
        'gz'
        >>> sniff_archive(b"<html><body>Not found</body></html>") is None
        True
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _kind(bytes(source), io.BytesIO(bytes(source)))
    with open(source, "rb") as handle:
        return _kind(handle.read(HEAD_BYTES), handle)


def _kind(head: bytes, handle: IO[bytes]) -> Kind | None:
    if head.startswith(b"\x1f\x8b"):
        handle.seek(0)
        with contextlib.suppress(OSError, EOFError, zlib.error), gzip.GzipFile(fileobj=handle) as unpacked:
            if looks_like_tar(unpacked.read(HEAD_BYTES)):
                return "tar.gz"
        return "gz"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "tar" if looks_like_tar(head) else None


def looks_like_tar(block: bytes) -> bool:
    """Whether ``block`` starts with a valid tar header (its checksum is checked).

    Example:
        >>> looks_like_tar(bytes(512))
        False
    """
    return checksum_ok(block[:HEAD_BYTES])  # the tar reader's own header check
