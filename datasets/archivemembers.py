"""Stream the image members of a tar or zip archive, one at a time, with a size cap.

Packing reads archives directly (no extraction). Tar archives (plain, gz, bz2, xz) go through
the one hardened tar reader, :func:`loaders.tar_stream.iter_members` (header checksums, pax
sizes, caps on declared sizes, duplicate names refused); zip archives through :mod:`zipfile`.
A member larger than :data:`datasets.imagedecode.MAX_IMAGE_BYTES` is refused *before* any of
it is read into memory, and a member whose data turns out longer than it declared is cut off at the cap and
refused too, so a small archive that declares or inflates to gigabytes never fills memory.
Refused and unreadable members come back with their reason instead of their bytes.

Member names follow the one rule for outside names (:func:`loaders.names.check_name`) in tar
and zip alike: an absolute name, a ``..`` part or a NUL byte refuses the archive. Then they are
filtered as folders are: hidden files and folders (``.x``) and macOS
metadata (``__MACOSX``) are not images, and an image must sit in a class folder
(``[top/]CLASS/file``).
"""

from __future__ import annotations

import logging
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from datasets.errors import DataFormatError
from datasets.imagedecode import MAX_IMAGE_BYTES
from loaders.archive_policy import clean_name

log = logging.getLogger(__name__)

Member = tuple[str, "bytes | str"]  # (name, bytes) or (name, "!reason")


def member_class(name: str) -> str | None:
    """Return the class of a ``[...]/CLASS/file`` member name, or ``None`` if it is not one.

    Example:
        >>> member_class("./notMNIST_small/A/x.png"), member_class("README.png")
        ('A', None)
        >>> member_class("__MACOSX/A/._x.png") is None, member_class("top/A/.hidden") is None
        (True, True)
    """
    # plain string tests first: this runs once per member of archives with 500k members
    if "/." not in name and "__MACOSX" not in name and not name.startswith(".") \
            and "//" not in name:
        parts = name.rsplit("/", 2)
        return parts[-2] if len(parts) > 1 and parts[-1] else None
    parts = [p for p in name.split("/") if p and p != "."]
    if len(parts) < 2 or any(p[0] == "." or p == "__MACOSX" for p in parts):
        return None
    return parts[-2]


def iter_members(archive: str | os.PathLike[str], *, max_bytes: int | None = None
                 ) -> Iterator[Member]:
    """Yield ``(name, bytes)`` of each image member, or ``(name, "!reason")`` if refused.

    Args:
        archive: a tar (plain, ``.gz``, ``.bz2``, ``.xz``) or zip file, recognised by content.
        max_bytes: the per-member cap (default ``MAX_IMAGE_BYTES``).

    Raises:
        DataFormatError: the archive is corrupt, truncated or of no supported kind.
    """
    from loaders.errors import LoaderError
    from loaders.extract import detect_kind

    path = Path(archive)
    cap = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    try:
        kind = detect_kind(path)
        if kind == "zip":
            yield from _zip_members(path, cap)
        elif kind.startswith("tar"):
            yield from _tar_members(path, kind, cap)
        else:
            raise DataFormatError(f"expected a tar or zip archive of images at {path} but it "
                                  f"is a {kind} file; extract it and pass the folder")
    except LoaderError as err:
        detail = str(err).removeprefix(f"{path}: ")  # loaders' messages start with the path too
        raise DataFormatError(f"cannot read the image archive {path}: {detail}") from err


def _refused(size: int, cap: int) -> str:
    return (f"!member of {size:,} bytes exceeds the per-image limit of {cap:,} bytes "
            "(datasets.imagedecode.MAX_IMAGE_BYTES); refused unread")


def _tar_members(path: Path, kind: str, cap: int) -> Iterator[Member]:
    from loaders.archive_policy import Limits
    from loaders.tar_stream import iter_members as iter_tar

    # Packing writes nothing but the cache, and each member is capped by ``cap``: extraction's
    # whole-archive caps (total bytes, compression ratio) would refuse big, honest photo archives.
    limits = Limits(max_total_bytes=1 << 60, max_ratio=1e12)
    members = iter_tar(path, kind=kind, limits=limits)
    try:
        for member, reader in members:
            if member.kind != "file" or member_class(member.name) is None:
                continue
            if member.size > cap:
                yield member.name, _refused(member.size, cap)  # its data is skipped, never held
                continue
            yield member.name, reader.read(member.size)
    finally:  # the reader decompresses ahead in a thread: stop it as soon as the caller stops
        members.close()


def _zip_members(path: Path, cap: int) -> Iterator[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataFormatError(f"cannot read the zip archive {path} ({err}); it is corrupt or "
                              "truncated: download it again") from err
    with archive:
        for info in archive.infolist():
            # one policy with tar: a name with '..', absolute or with a NUL is refused, not skipped
            name = clean_name(os.fspath(path), info.filename)
            if info.is_dir() or name is None or member_class(name) is None:
                continue
            if info.file_size > cap:
                yield name, _refused(info.file_size, cap)
                continue
            yield name, _zip_read(archive, info, cap)


def _zip_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | str:
    if info.flag_bits & 0x1:
        return "!encrypted zip member: extract it with its password and pack the folder"
    try:
        with archive.open(info) as member:
            data = member.read(cap + 1)  # a member may inflate past what it declares
    except NotImplementedError as err:  # Deflate64 and other methods zipfile lacks
        return f"!zip compression method {info.compress_type} is not supported ({err}); " \
               "extract the archive with another tool and pack the folder"
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        return f"!corrupt zip member: {err}"
    if len(data) > cap:
        return _refused(len(data), cap)
    return data
