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
    try:
        lock.acquire(timeout=timeout_s)
    except filelock.Timeout as err:
        raise LockTimeoutError(
            f"waited {timeout_s:g} s for the lock {lock_file} held by another process working on "
            f"{Path(path).name}; wait for it to finish, or stop it and retry "
            "(the lock is released when that process exits)"
        ) from err
    try:
        yield lock_file
    finally:
        lock.release()
