"""Safe, atomic and idempotent extraction of tar(.gz/.bz2/.xz), zip and single-file .gz archives.

Members are checked against :mod:`loaders.archive_policy` one by one while streaming and
written into a staging folder inside the target (``dest/.extract-<archive>.tmp-XXXX``); then
each top-level entry is renamed into ``dest`` and, last, a completion manifest
``dest/.<archive>.extracted.json`` is written atomically. A re-run whose manifest matches the
archive's sha256 does nothing; a failed run leaves ``dest`` as it was.

Regular files are written with one ``open``/``write``/``close`` each and the archive's
permission bits reduced to 0o644/0o755; modification times are not restored (they are the
time of extraction).
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any

from filelock import FileLock
from filelock import Timeout as FileLockTimeout
from tqdm.auto import tqdm

from loaders.archive_policy import (
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_TOTAL_BYTES,
    Budget,
    Limits,
)
from loaders.archive_readers import FORCE_HINT, read_archive
from loaders.errors import ArchiveError, LockTimeoutError, UnsafeArchiveError

log = logging.getLogger(__name__)

KINDS = ("gz", "tar", "tar.bz2", "tar.gz", "tar.xz", "zip")
_SUFFIXES = (
    (".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar.bz2", "tar.bz2"), (".tbz2", "tar.bz2"),
    (".tbz", "tar.bz2"), (".tar.xz", "tar.xz"), (".txz", "tar.xz"), (".tar", "tar"),
    (".zip", "zip"), (".gz", "gz"),
)
_ALIASES = {"tgz": "tar.gz", "tbz2": "tar.bz2", "tbz": "tar.bz2", "txz": "tar.xz"}
_MANIFEST_FORMAT = 1
_CHUNK_BYTES = 1024**2
_LOCK_TIMEOUT_S = 900.0


def detect_kind(archive: str | os.PathLike[str], kind: str | None = None) -> str:
    """Return the archive kind, one of :data:`KINDS`, from ``kind``, the name or magic bytes.

    Raises:
        ArchiveError: the kind is unknown and the first bytes match no supported format.

    Example:
        >>> detect_kind("notMNIST_small.tar.gz")
        'tar.gz'
    """
    if kind is not None:
        kind = _ALIASES.get(kind.lower(), kind.lower())
        if kind not in KINDS:
            raise ValueError(f"kind should be one of {', '.join(KINDS)}, but got kind={kind!r}")
        return kind
    lowered = os.fspath(archive).lower()
    for suffix, found in _SUFFIXES:
        if lowered.endswith(suffix):
            return found
    return _sniff(Path(archive))


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as err:
        raise ArchiveError(f"cannot read archive {path}: {err}") from err
    if head.startswith(b"\x1f\x8b"):
        with contextlib.suppress(OSError, EOFError, zlib.error):
            with gzip.open(path, "rb") as g:
                if _looks_like_tar(g.read(512)):
                    return "tar.gz"
        return "gz"
    if head.startswith(b"BZh"):
        return "tar.bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "tar.xz"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if _looks_like_tar(head):
        return "tar"
    raise ArchiveError(
        f"cannot tell what kind of archive {path} is (its first bytes {head[:8]!r} match no "
        f"tar, gzip, bz2, xz or zip file; an HTML error page?); pass kind=..., or {FORCE_HINT}"
    )


def _looks_like_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def manifest_path(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Return where the completion manifest of ``archive`` extracted into ``dest`` lives."""
    return Path(dest) / f".{Path(archive).name}.extracted.json"


def _read_manifest(archive: Path, dest: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads(manifest_path(archive, dest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != _MANIFEST_FORMAT:
        return None
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as err:
        raise ArchiveError(f"cannot read archive {path}: {err}") from err
    return digest.hexdigest()


def _manifest_matches(manifest: dict[str, Any] | None, dest: Path, sha256: str) -> bool:
    return (
        manifest is not None
        and manifest.get("sha256") == sha256
        and all(os.path.lexists(dest / name) for name in manifest.get("top_level", []))
    )


def is_extracted(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    archive_sha256: str | None = None,
) -> bool:
    """Tell whether ``archive`` has been fully extracted into ``dest`` by :func:`extract`.

    Args:
        archive: the archive file (hashed when ``archive_sha256`` is not given).
        dest: the target folder.
        archive_sha256: the archive's known sha256, which spares hashing it.

    Returns:
        True when the completion manifest matches the archive and its top-level entries exist.
    """
    archive, dest = Path(archive), Path(dest)
    manifest = _read_manifest(archive, dest)
    if manifest is None:
        return False
    if archive_sha256 is None:
        if not archive.is_file():
            return False
        archive_sha256 = _sha256(archive)
    return _manifest_matches(manifest, dest, archive_sha256.lower())


def extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    archive_sha256: str | None = None,
    kind: str | None = None,
    progress: bool = False,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[Path]:
    """Extract ``archive`` safely into ``dest``; the archive's top-level members land in ``dest``.

    A single-file ``.gz`` becomes ``dest/<name without .gz>``. Idempotent: a re-run with a
    matching completion manifest returns at once. See :mod:`loaders.archive_policy` for what a
    member may do.

    Args:
        archive: a tar, tar.gz/tgz, tar.bz2, tar.xz, zip or single-file .gz file.
        dest: the target folder, created when missing.
        archive_sha256: the archive's known sha256 (it is computed when not given).
        kind: one of :data:`KINDS` (or tgz/tbz2/txz); detected from the name or magic bytes
            when None.
        progress: show a tqdm bar on stderr.
        max_total_bytes: most uncompressed bytes over all members.
        max_ratio: most uncompressed bytes per byte of archive (beyond the first MiB).
        max_members: most members.

    Returns:
        The top-level entries now in ``dest``, sorted.

    Raises:
        UnsafeArchiveError: a member breaks the policy; nothing was written outside ``dest``.
        ArchiveError: the archive is corrupt, truncated or of an unknown kind.
        LockTimeoutError: another process kept extracting the same archive too long.

    Example:
        >>> import tarfile, tempfile, io, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> with tarfile.open(tmp / "a.tar.gz", "w:gz") as tf:
        ...     info = tarfile.TarInfo("data/x.txt"); info.size = 2
        ...     tf.addfile(info, io.BytesIO(b"hi"))
        >>> [p.name for p in extract(tmp / "a.tar.gz", tmp / "out")]
        ['data']
        >>> (tmp / "out" / "data" / "x.txt").read_text()
        'hi'
    """
    archive, dest = Path(archive), Path(dest)
    limits = Limits(max_total_bytes=max_total_bytes, max_ratio=max_ratio, max_members=max_members)
    kind = detect_kind(archive, kind)
    if not archive.is_file():
        raise ArchiveError(f"archive {archive} does not exist; fetch it first")
    sha256 = (archive_sha256 or _sha256(archive)).lower()
    if _manifest_matches(_read_manifest(archive, dest), dest, sha256):
        log.debug("%s already extracted into %s", archive, dest)
        return _top_level_paths(dest, _read_manifest(archive, dest))
    dest.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(dest / f".{archive.name}.extract.lock"))
    try:
        with lock.acquire(timeout=_LOCK_TIMEOUT_S):
            return _extract_locked(archive, dest, kind, sha256, limits, progress=progress)
    except FileLockTimeout as err:
        raise LockTimeoutError(
            f"another process has been extracting {archive} into {dest} for over "
            f"{_LOCK_TIMEOUT_S:g} s; wait for it, or stop it and delete {lock.lock_file}"
        ) from err


def _top_level_paths(dest: Path, manifest: dict[str, Any] | None) -> list[Path]:
    return [dest / name for name in sorted((manifest or {}).get("top_level", []))]


def _extract_locked(
    archive: Path, dest: Path, kind: str, sha256: str, limits: Limits, *, progress: bool
) -> list[Path]:
    old = _read_manifest(archive, dest)
    if _manifest_matches(old, dest, sha256):  # another process finished while we waited
        return _top_level_paths(dest, old)
    manifest_path(archive, dest).unlink(missing_ok=True)
    prefix = f".extract-{archive.name}.tmp-"
    for stale in dest.glob(f"{glob.escape(prefix)}*"):
        log.info("removing %s, left over by an interrupted extraction", stale)
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=dest))
    try:
        with tqdm(
            total=archive.stat().st_size, unit="B", unit_scale=True, disable=not progress,
            desc=f"extract {archive.name}", leave=False,
        ) as bar:
            budget = read_archive(archive, kind, staging, limits, bar if progress else None)
        top_level = sorted(os.listdir(staging))
        _check_top_level(archive, dest, top_level)
        for name in {*_own_entries(archive, dest, old), *top_level}:
            _remove(dest / name)  # leftovers of a failed or older run: no manifest vouches for them
        for name in top_level:
            os.replace(staging / name, dest / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_manifest(archive, dest, kind, sha256, budget, top_level)
    log.info("extracted %s into %s (%d members, %d bytes)", archive, dest, budget.members,
             budget.total_bytes)
    return [dest / name for name in top_level]


def _check_top_level(archive: Path, dest: Path, top_level: list[str]) -> None:
    reserved = (manifest_path(archive, dest).name, f".{archive.name}.extract.lock")
    for name in top_level:
        bookkeeping = name.startswith((".extract-", ".dataferry")) or (
            name.startswith(".") and name.endswith((".extracted.json", ".lock"))
        )
        if bookkeeping or name in reserved:
            raise UnsafeArchiveError(
                f"{archive}: top-level member {name!r} would clash with dataferry's own "
                "bookkeeping files; extract it by hand"
            )
        if os.path.lexists(dest / name) and (dest / name).resolve() == archive.resolve():
            raise UnsafeArchiveError(
                f"{archive}: top-level member {name!r} would overwrite the archive itself; "
                "extract it into another folder"
            )


def _own_entries(archive: Path, dest: Path, manifest: dict[str, Any] | None) -> list[str]:
    """The top-level names an older manifest lists, keeping only plain names in ``dest``."""
    names = (manifest or {}).get("top_level", [])
    return [
        name for name in names if isinstance(name, str) and name not in ("", ".", "..")
        and "/" not in name and os.sep not in name and name != archive.name
    ]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _write_manifest(
    archive: Path, dest: Path, kind: str, sha256: str, budget: Budget, top_level: list[str]
) -> None:
    manifest = {
        "format": _MANIFEST_FORMAT, "archive": archive.name, "kind": kind, "sha256": sha256,
        "archive_size_bytes": archive.stat().st_size, "members": budget.members,
        "total_bytes": budget.total_bytes, "top_level": top_level,
    }
    target = manifest_path(archive, dest)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, target)


__all__ = ["KINDS", "detect_kind", "extract", "is_extracted", "manifest_path"]
