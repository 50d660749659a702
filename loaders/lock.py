"""Cross-process locks per resource (a filelock beside the file), with a clear timeout error."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from loaders.errors import LockTimeoutError

log = logging.getLogger(__name__)

# Long enough for another process to download notMNIST_large on a slow line.
DEFAULT_TIMEOUT_S = 3600.0
# Waits shorter than this (another process updating a manifest) pass without a word.
QUIET_WAIT_S = 1.0


def lock_path(path: str | os.PathLike[str]) -> Path:
    """Return the lock file guarding ``path``: ``.<name>.lock`` beside it (one dot at most)."""
    path = Path(path)
    name = path.name if path.name.startswith(".") else f".{path.name}"
    return path.with_name(f"{name}.lock")


@contextmanager
def resource_lock(
    path: str | os.PathLike[str], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Iterator[Path]:
    """Hold the cross-process lock of ``path`` for the duration of the block.

    The lock is an OS file lock (``filelock``), so a crashed holder never leaves a stale lock.

    Args:
        path: the file the lock protects (it need not exist); its folder is created.
        timeout_s: how long to wait for another process; ``-1`` waits forever.

    Yields:
        The lock file's path.

    Raises:
        LockTimeoutError: another process held the lock for longer than ``timeout_s``.
    """
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_file))
    quiet_s = QUIET_WAIT_S if timeout_s < 0 else min(QUIET_WAIT_S, timeout_s)
    try:
        lock.acquire(timeout=quiet_s)
    except filelock.Timeout:
        # Say why nothing happens: the other process may be minutes into a large download.
        limit = "no time limit" if timeout_s < 0 else f"up to {timeout_s:g} s"
        log.warning("another process is working on %s; waiting for it (%s, lock %s)",
                    Path(path).name, limit, lock_file)
        _acquire(lock, lock_file, path, timeout_s, already_waited_s=quiet_s)
    try:
        yield lock_file
    finally:
        lock.release()


def _acquire(
    lock: filelock.BaseFileLock,
    lock_file: Path,
    path: str | os.PathLike[str],
    timeout_s: float,
    *,
    already_waited_s: float,
) -> None:
    try:
        lock.acquire(timeout=timeout_s if timeout_s < 0 else max(timeout_s - already_waited_s, 0.0))
    except filelock.Timeout as err:
        raise LockTimeoutError(
            f"waited {timeout_s:g} s for the lock {lock_file} held by another process working on "
            f"{Path(path).name}; wait for it to finish, or stop it and retry "
            "(the lock is released when that process exits)"
        ) from err
