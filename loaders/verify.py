"""Hashing and verification of files: size, sha256, md5, and the re-gzipped ``.gz`` case.

This is dataferry's one hash helper: :func:`hash_file` hashes a file in one pass,
:func:`new_hashers` gives the hash objects a stream feeds (see :mod:`loaders.stream`),
:func:`check_hex` checks a digest typed by a user, :func:`check_file` verifies.

A ``.gz`` file compressed again by a mirror (another gzip level or header timestamp) has a new
md5 although its decompressed bytes are the canonical ones. When the registry records the
sha256 of the decompressed bytes (``content_sha256``) such a copy is recognised: by default it
is ACCEPTED with a warning, because the data the datasets read is byte-identical and sha256 is
a stronger check than the md5 it replaces; with ``allow_recompressed=False`` it is refused with
a message that says the content matches. When the content differs too, the message says so.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loaders.errors import ChecksumMismatchError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Expected:
    """What a file should be; every field ``None`` means nothing is known.

    Attributes:
        size_bytes: the exact size.
        sha256: lower-case hex sha256 of the file.
        md5: lower-case hex md5 of the file (only where that is all that is published).
        content_sha256: sha256 of the decompressed bytes of a ``.gz`` file.
    """

    size_bytes: int | None = None
    sha256: str | None = None
    md5: str | None = None
    content_sha256: str | None = None

    @property
    def has_hash(self) -> bool:
        """Whether a sha256 or md5 is known (a size alone is not a hash)."""
        return bool(self.sha256 or self.md5)

    def describe(self) -> str:
        """Return ``"8,458,043 bytes, sha256 76b2…"``-style text for messages."""
        parts = []
        if self.size_bytes is not None:
            parts.append(f"{self.size_bytes:,} bytes")
        if self.sha256:
            parts.append(f"sha256 {self.sha256}")
        if self.md5:
            parts.append(f"md5 {self.md5}")
        return ", ".join(parts) or "no published size or hash"


_HEX_LENGTHS = {"sha256": 64, "md5": 32}


def check_hex(value: str | None, algorithm: str) -> str | None:
    """Return ``value`` as lower-case hex when it is a well-formed digest, else raise.

    A mistyped hash must fail before anything is downloaded or deleted.

    Args:
        value: the digest as given by the user (``None``: nothing to check).
        algorithm: ``"sha256"`` or ``"md5"``.

    Returns:
        The lower-case digest, or ``None``.

    Raises:
        ValueError: not exactly 64 (sha256) or 32 (md5) hexadecimal digits.

    Example:
        >>> check_hex("AB" * 16, "md5")
        'abababababababababababababababab'
        >>> check_hex("abc", "sha256")
        Traceback (most recent call last):
        ...
        ValueError: sha256 should be 64 hexadecimal digits, but got 'abc' (3 characters)
    """
    if value is None:
        return None
    length = _HEX_LENGTHS[algorithm]
    text = value.strip()
    if not re.fullmatch(f"[0-9a-fA-F]{{{length}}}", text):
        raise ValueError(
            f"{algorithm} should be {length} hexadecimal digits, but got {value!r} "
            f"({len(value)} characters)"
        )
    return text.lower()


def new_hashers(expected: Expected) -> dict[str, hashlib._Hash]:
    """Return the hash objects a download must feed: sha256 always, md5 when expected."""
    hashers = {"sha256": hashlib.sha256()}
    if expected.md5:
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    return hashers


def hash_file(
    path: str | os.PathLike[str], algorithms: tuple[str, ...] = ("sha256",)
) -> dict[str, str]:
    """Return the hex digests of a file, reading it once.

    Args:
        path: the file.
        algorithms: hashlib names, e.g. ``("sha256", "md5")``.

    Returns:
        ``{algorithm: hexdigest}``.

    Raises:
        OSError: the file cannot be read.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "x"
        >>> _ = path.write_bytes(b"abc")
        >>> hash_file(path)["sha256"][:16]
        'ba7816bf8f01cfea'
    """
    hashers = {name: hashlib.new(name) for name in algorithms}
    update_from_file(hashers, path)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def update_from_file(hashers: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Feed a whole file to hash objects (e.g. the part of a resumed download), reading it once.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            for hasher in hashers.values():
                hasher.update(chunk)


def gunzip_sha256(path: str | os.PathLike[str]) -> str | None:
    """Return the sha256 of a gzip file's decompressed bytes, or ``None`` if it is not gzip."""
    hasher = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                hasher.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return hasher.hexdigest()


def check_file(
    path: str | os.PathLike[str],
    expected: Expected,
    *,
    digests: dict[str, str] | None = None,
    allow_recompressed: bool = True,
    name: str | None = None,
) -> str:
    """Check a file against what is expected; return its sha256.

    Args:
        path: the file.
        expected: size and hashes to check; unknown fields are not checked.
        digests: digests already computed while the file was written (skips a re-read).
        allow_recompressed: accept a ``.gz`` whose md5 differs but whose decompressed bytes
            match ``expected.content_sha256`` (a warning is logged).
        name: the name to use in messages (default: the file's name).

    Returns:
        The file's sha256.

    Raises:
        ChecksumMismatchError: the size or a hash differs; the file is left in place.
    """
    path = Path(path)
    label = name or path.name
    size = path.stat().st_size
    if expected.size_bytes is not None and size != expected.size_bytes and not (
        expected.content_sha256 and allow_recompressed
    ):
        raise ChecksumMismatchError(
            f"{label}: expected {expected.size_bytes:,} bytes but got {size:,} bytes"
        )
    wanted = ("sha256", "md5") if expected.md5 else ("sha256",)
    digests = dict(digests or {})
    missing = tuple(name for name in wanted if name not in digests)
    if missing:
        digests.update(hash_file(path, missing))
    if expected.sha256 and digests["sha256"] != expected.sha256.lower():
        raise ChecksumMismatchError(
            f"{label}: expected sha256 {expected.sha256} but got {digests['sha256']}"
        )
    md5_ok = not expected.md5 or digests["md5"] == expected.md5.lower()
    size_ok = expected.size_bytes is None or size == expected.size_bytes
    if md5_ok and size_ok:
        return digests["sha256"]
    what = (
        f"md5 {expected.md5} but got {digests['md5']}"
        if not md5_ok
        else f"{expected.size_bytes:,} bytes but got {size:,} bytes"
    )
    _check_recompressed(path, label, expected, what, allow_recompressed=allow_recompressed)
    return digests["sha256"]


def _check_recompressed(
    path: Path, label: str, expected: Expected, what: str, *, allow_recompressed: bool
) -> None:
    """Accept (with a warning) or refuse a ``.gz`` whose md5/size differ; say what the content is."""
    if not label.endswith(".gz"):
        raise ChecksumMismatchError(f"{label}: expected {what}")
    if not expected.content_sha256:
        raise ChecksumMismatchError(
            f"{label}: expected {what}; no sha256 of the decompressed content is recorded, "
            "so a re-compressed copy cannot be told from a corrupt one; "
            "get the file from the original publisher"
        )
    content = gunzip_sha256(path)
    if content != expected.content_sha256:
        raise ChecksumMismatchError(
            f"{label}: expected {what}, and the decompressed content differs too "
            f"(expected sha256 {expected.content_sha256} but got {content or 'not gzip'}); "
            "the file is corrupt or another file"
        )
    if not allow_recompressed:
        raise ChecksumMismatchError(
            f"{label}: expected {what}, but the decompressed content matches the canonical "
            f"bytes (sha256 {content}): the file was re-compressed by whoever published it; "
            "allow re-compressed copies or get the original .gz"
        )
    log.warning(
        "%s: expected %s, but the decompressed content matches the canonical bytes "
        "(sha256 %s): accepting a re-compressed copy",
        label,
        what,
        content,
    )
