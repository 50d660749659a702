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

import errno
import glob
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from loaders.archive_policy import (
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_TOTAL_BYTES,
    Limits,
)
from loaders.archive_readers import read_archive
from loaders.errors import (
    FORCE_HINT,
    ArchiveError,
    StorageError,
    UnsafeArchiveError,
)
from loaders.lock import DEFAULT_TIMEOUT_S, locked
from loaders.names import is_plain
from loaders.sniff import sniff_archive
from loaders.verify import hash_file

log = logging.getLogger(__name__)

KINDS = ("gz", "tar", "tar.bz2", "tar.gz", "tar.xz", "zip")
_SUFFIXES = (
    (".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar.bz2", "tar.bz2"), (".tbz2", "tar.bz2"),
    (".tbz", "tar.bz2"), (".tar.xz", "tar.xz"), (".txz", "tar.xz"), (".tar", "tar"),
    (".zip", "zip"), (".gz", "gz"),
)
_ALIASES = {"tgz": "tar.gz", "tbz2": "tar.bz2", "tbz": "tar.bz2", "txz": "tar.xz"}
_MANIFEST_FORMAT = 1
_SNIFFED = {"bz2": "tar.bz2", "xz": "tar.xz"}  # only tarballs come compressed that way here


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
        found = sniff_archive(path)
        if found is None:
            with open(path, "rb") as handle:
                head = handle.read(8)
    except OSError as err:
        raise ArchiveError(f"cannot read archive {path}: {err}") from err
    if found is None:
        raise ArchiveError(
            f"cannot tell what kind of archive {path} is (its first bytes {head!r} match no "
            f"tar, gzip, bz2, xz or zip file; an HTML error page?); pass kind=..., or {FORCE_HINT}"
        )
    return _SNIFFED.get(found, found)


def manifest_path(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Return where the completion manifest of ``archive`` extracted into ``dest`` lives."""
    return Path(dest) / f".{Path(archive).name}.extracted.json"


def _read_manifest(archive: Path, dest: Path) -> dict[str, Any] | None:
    """Return our completion (or pending) manifest, with only plain top-level names; else None."""
    try:
        manifest = json.loads(manifest_path(archive, dest).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != _MANIFEST_FORMAT:
        return None
    names = manifest.get("top_level")
    manifest["top_level"] = _plain_names(archive, names if isinstance(names, list) else [])
    return manifest


def _plain_names(archive: Path, names: list[Any]) -> list[str]:
    """Keep the names that can only mean an entry of ``dest`` itself (not the archive).

    One part by the nested rule of outside names: an archive's top level may hold ``.x``.
    """
    return [name for name in names if is_plain(name, nested=True) and name not in ("", ".")
            and "/" not in name and "\\" not in name and name != archive.name]


def _sha256(path: Path) -> str:
    try:
        return hash_file(path)["sha256"]
    except OSError as err:
        raise ArchiveError(f"cannot read archive {path}: {err}") from err


def _manifest_matches(manifest: dict[str, Any] | None, dest: Path, sha256: str) -> bool:
    return (
        manifest is not None
        and manifest.get("complete", True) is True  # format 1 without the key: complete
        and manifest.get("sha256") == sha256
        and all(os.path.lexists(dest / name) for name in manifest["top_level"])
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
    member may do. Only entries that an earlier extraction of this archive wrote (its
    manifest lists them) are replaced; an entry of the same name that we did not write (the
    user's ``data/`` folder) is never touched: the extraction is refused, naming it.

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
        ArchiveError: the archive is corrupt, truncated or of an unknown kind, or a top-level
            entry would replace a file or folder in ``dest`` that we did not write.
        LockTimeoutError: another process kept extracting the same archive too long.
        StorageError: the disk refused a write (full, read-only); ``dest`` is as it was.

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
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with locked(dest / f"{archive.name}.extract", timeout_s=DEFAULT_TIMEOUT_S,
                    what=f"extracting {archive.name} into {dest}", remove=True):
            return _extract_locked(archive, dest, kind, sha256, limits, progress=progress)
    except OSError as err:
        if isinstance(err, (StorageError, TimeoutError)) or err.errno not in _DISK_ERRNOS:
            raise
        where = f" (writing {err.filename})" if err.filename else ""
        raise StorageError.of(
            f"could not extract {archive.name} into {dest}: {err.strerror}{where}; free space "
            f"there or extract into another folder; {dest} is as it was", err
        ) from err


_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


def _top_level_paths(dest: Path, manifest: dict[str, Any] | None) -> list[Path]:
    return [dest / name for name in sorted((manifest or {}).get("top_level", []))]


def _extract_locked(
    archive: Path, dest: Path, kind: str, sha256: str, limits: Limits, *, progress: bool
) -> list[Path]:
    old = _read_manifest(archive, dest)
    if _manifest_matches(old, dest, sha256):  # another process finished while we waited
        return _top_level_paths(dest, old)
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
        ours = (old or {}).get("top_level", [])
        _check_top_level(archive, dest, top_level, ours)
        # Pending: from here until the final manifest, every name we may have written is ours.
        _write_manifest(archive, dest, {"sha256": sha256, "complete": False,
                                        "top_level": sorted({*ours, *top_level})})
        for name in ours:
            _remove(dest / name)  # an older version's entries, or a failed run's leftovers
        for name in top_level:
            os.replace(staging / name, dest / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_manifest(archive, dest, {
        "archive": archive.name, "kind": kind, "sha256": sha256, "complete": True,
        "archive_size_bytes": archive.stat().st_size, "members": budget.members,
        "total_bytes": budget.total_bytes, "top_level": top_level,
    })
    log.info("extracted %s into %s (%d members, %d bytes)", archive, dest, budget.members,
             budget.total_bytes)
    return [dest / name for name in top_level]


def _check_top_level(archive: Path, dest: Path, top_level: list[str], ours: list[str]) -> None:
    """Refuse names that are our bookkeeping, the archive itself, or entries we did not write."""
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
    clashes = [name for name in top_level if name not in ours and os.path.lexists(dest / name)]
    if clashes:
        shown = ", ".join(str(dest / name) for name in clashes[:3])
        more = f" and {len(clashes) - 3} more" if len(clashes) > 3 else ""
        one = len(clashes) == 1
        raise ArchiveError(
            f"cannot extract {archive.name} into {dest}: {shown}{more} "
            f"{'already exists' if one else 'already exist'} and no earlier extraction of "
            f"{archive.name} wrote {'it' if one else 'them'}; nothing was changed. Move "
            f"{'it' if one else 'them'} away, or extract into an empty folder"
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _write_manifest(archive: Path, dest: Path, fields: dict[str, Any]) -> None:
    target = manifest_path(archive, dest)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"format": _MANIFEST_FORMAT, **fields}, indent=1, sort_keys=True),
                       encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["KINDS", "detect_kind", "extract", "is_extracted", "manifest_path"]
