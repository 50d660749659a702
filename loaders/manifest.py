"""The dataset folder's manifest: verified files and trust-on-first-use pins.

``<dataset dir>/.dataferry-manifest.json`` records, per file, the sha256 that was verified (or
pinned, for files without a published hash), its size, its mtime and where it came from. A file
whose size and mtime still match its record is not hashed again on every :func:`loaders.fetch`;
``python -m loaders.download --verify`` re-hashes everything. The manifest is written atomically
(temporary file + ``os.replace``) under its own lock.

Reserved names: a downloaded file may not be called like our bookkeeping (the manifest with
or without its dot, ``*.lock``, ``*.part``, ``.*.part.json``, extraction manifests and
staging folders); :func:`check_filename` refuses such a name before anything is written, so a
file can never be its own lock or overwrite the manifest.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from loaders.errors import UnsafeNameError
from loaders.lock import LOCK_SUFFIX, locked
from loaders.names import check_name

log = logging.getLogger(__name__)

MANIFEST_NAME = ".dataferry-manifest.json"
_VERSION = 1
_RESERVED_SUFFIXES = (LOCK_SUFFIX, ".part", ".part.json", ".extracted.json", ".tmp")
_RESERVED_PREFIXES = ("dataferry-manifest", ".dataferry-manifest", ".extract-")


def check_filename(name: str) -> str:
    """Return ``name`` when a downloaded file may have it; refuse our bookkeeping names.

    The name often comes from outside (the last part of a URL): it must also be a plain file
    name by the one rule, :func:`loaders.names.check_name`.

    Raises:
        ValueError: ``name`` is one of dataferry's own bookkeeping names.
        UnsafeNameError: ``name`` is not a plain file name (``..``, a separator, a NUL...).

    Example:
        >>> check_filename("train.csv")
        'train.csv'
        >>> check_filename("dataferry-manifest.json")
        Traceback (most recent call last):
        ...
        ValueError: the file name 'dataferry-manifest.json' is reserved for dataferry's bookkeeping (manifests, locks, partial downloads: names like .dataferry-manifest.json, *.lock, *.part); download that file with another tool, or serve it under another name
    """
    if isinstance(name, str) and is_reserved(name):  # before the rule: a clearer message
        raise ValueError(
            f"the file name {name!r} is reserved for dataferry's bookkeeping (manifests, locks, "
            f"partial downloads: names like {MANIFEST_NAME}, *.lock, *.part); download that "
            "file with another tool, or serve it under another name"
        )
    try:
        check_name(name)
    except UnsafeNameError as err:
        raise UnsafeNameError(err.name, f"{err.reason}, so no file may be saved under that name; "
                              "pass a URL that ends in a file name") from err
    return name


def is_reserved(name: str) -> bool:
    """Whether ``name`` looks like dataferry's bookkeeping (``*.lock``, ``*.part``, manifests).

    Example:
        >>> is_reserved("x.part"), is_reserved("shard-00000.bin")
        (True, False)
    """
    lowered = name.lower()
    return lowered.startswith(_RESERVED_PREFIXES) or lowered.endswith(_RESERVED_SUFFIXES)


def manifest_path(dataset_dir: str | os.PathLike[str]) -> Path:
    """Return where the manifest of a dataset folder lives."""
    return Path(dataset_dir) / MANIFEST_NAME


def read_manifest(dataset_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the manifest of a dataset folder (an empty one when there is none or it is bad)."""
    path = manifest_path(dataset_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": _VERSION, "files": {}}
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: "[[[[…" nested deep
        log.warning("ignoring unreadable manifest %s: %s", path, type(err).__name__)
        return {"version": _VERSION, "files": {}}
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        log.warning("ignoring malformed manifest %s", path)
        return {"version": _VERSION, "files": {}}
    return data


def file_record(dataset_dir: str | os.PathLike[str], filename: str) -> dict[str, Any] | None:
    """Return the manifest record of one file, or ``None``."""
    record = read_manifest(dataset_dir)["files"].get(filename)
    if record is None:
        return None
    if not _well_formed(record):
        log.warning("ignoring the malformed record of %s in %s", filename, manifest_path(dataset_dir))
        return None
    return dict(record)


def _well_formed(record: object) -> bool:
    """Whether a record has the fields and types :func:`record_file` writes."""
    if not isinstance(record, dict):
        return False
    sha256 = record.get("sha256")
    return (
        isinstance(sha256, str) and len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)
        and type(record.get("size_bytes")) is int and type(record.get("mtime_ns")) is int
        and isinstance(record.get("pinned", False), bool)
        and isinstance(record.get("source"), (str, type(None)))
    )


def pinned_sha256(dataset_dir: str | os.PathLike[str], filename: str) -> str | None:
    """Return the sha256 pinned for a file on first use, or ``None``."""
    record = file_record(dataset_dir, filename)
    return record.get("sha256") if record and record.get("pinned") else None


def record_file(
    dataset_dir: str | os.PathLike[str],
    filename: str,
    *,
    sha256: str,
    pinned: bool,
    source: str | None = None,
) -> None:
    """Record a verified file (``pinned=True``: its hash is trusted from now on).

    Nothing is written (and no lock taken) when the manifest already says the same, so
    re-verifying a read-only cache needs no write.
    """
    dataset_dir = Path(dataset_dir)
    stat = (dataset_dir / filename).stat()
    record = {
        "sha256": sha256,
        "size_bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "pinned": pinned,
        "source": source,
    }
    if file_record(dataset_dir, filename) == record:
        return
    with locked(manifest_path(dataset_dir), what=f"updating {MANIFEST_NAME} in {dataset_dir}"):
        data = read_manifest(dataset_dir)
        data["files"][filename] = record
        _write_atomic(manifest_path(dataset_dir), data)


def forget_file(dataset_dir: str | os.PathLike[str], filename: str) -> None:
    """Drop a file's record (keeps nothing pinned for it)."""
    dataset_dir = Path(dataset_dir)
    if not manifest_path(dataset_dir).exists():
        return
    with locked(manifest_path(dataset_dir), what=f"updating {MANIFEST_NAME} in {dataset_dir}"):
        data = read_manifest(dataset_dir)
        if data["files"].pop(filename, None) is not None:
            _write_atomic(manifest_path(dataset_dir), data)


def is_unchanged(dataset_dir: str | os.PathLike[str], filename: str, sha256: str | None) -> bool:
    """Whether a file is recorded as verified and its size and mtime have not changed since.

    Args:
        dataset_dir: the dataset folder.
        filename: the file.
        sha256: the hash it must have been verified against (``None``: any recorded hash).
    """
    record = file_record(dataset_dir, filename)
    if not record:
        return False
    try:
        stat = (Path(dataset_dir) / filename).stat()
    except FileNotFoundError:
        return False
    return (
        record.get("size_bytes") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
        and (sha256 is None or record.get("sha256") == sha256)
    )


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a failed write (disk full): no stray temporary file
