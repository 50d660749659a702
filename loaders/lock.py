"""dataferry's one cross-process lock: a file lock beside what it guards, one timeout rule.

Every lock of the project goes through :func:`locked`: downloads and manifests here,
extraction in :mod:`loaders.extract`, and anyone else (``datasets``' packed caches, a training
run's folder) who must keep two processes off the same files. The rule is the same
everywhere: wait silently for up to ``QUIET_WAIT_S``, then log once who waits on what, then
give up after ``timeout_s`` with a :class:`~loaders.errors.LockTimeoutError` that names the
lock and the work. The lock is an OS lock (``filelock``): a crashed holder never leaves a
stale lock behind. A lock file that cannot be created (a read-only cache) is a
:class:`~loaders.errors.StorageError` naming the folder; reading verified data never needs a
lock, so :func:`loaders.fetch` does not take one then.

Besides the block form, a lock can say that its holder is alive: :func:`hold` takes a lock
for as long as the returned object lives (a process pins shards under it), and
:func:`is_held` asks, without waiting, whether anyone holds it. The OS drops the lock when
its holder exits, on this host or another one sharing the folder, whatever pid namespace the
holder runs in; so no pid and no clock decides who is alive.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from loaders.errors import LockTimeoutError, StorageError

log = logging.getLogger(__name__)

# Long enough for another process to download notMNIST_large on a slow line.
DEFAULT_TIMEOUT_S = 3600.0
# Waits shorter than this (another process updating a manifest) pass without a word.
QUIET_WAIT_S = 1.0
LOCK_SUFFIX = ".lock"


def lock_path(path: str | os.PathLike[str]) -> Path:
    """Return the lock file guarding ``path``: ``.<name>.lock`` beside it (one dot at most).

    Example:
        >>> lock_path("/data/notmnist/train.bin").name
        '.train.bin.lock'
    """
    path = Path(path)
    name = path.name if path.name.startswith(".") else f".{path.name}"
    return path.with_name(f"{name}{LOCK_SUFFIX}")


@contextmanager
def locked(
    path: str | os.PathLike[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    what: str | None = None,
    remove: bool = False,
) -> Iterator[Path]:
    """Hold the cross-process lock of ``path`` for the duration of the block.

    Args:
        path: the file or folder the lock protects (it need not exist); the lock file
            ``.<name>.lock`` is created beside it, and its folder when missing.
        timeout_s: how long to wait for another process; ``-1`` waits forever.
        what: the work, for messages (default ``"working on <name>"``).
        remove: delete the lock file when done (for locks in a user's folder). Every user
            of that lock must pass it: a process that locked a file which was removed
            meanwhile sees it and locks the new one. Kept when the installed ``filelock``
            cannot report the locked file (before ``on_acquired``).

    Yields:
        The lock file's path.

    Raises:
        LockTimeoutError: another process held the lock for longer than ``timeout_s``.
        StorageError: the lock file cannot be created (a read-only or full folder).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with locked(folder / "data.bin", timeout_s=5, what="packing data.bin") as lock_file:
        ...     lock_file.name
        '.data.bin.lock'
        >>> with locked(folder / "x", timeout_s=5, remove=True) as lock_file:
        ...     lock_file.exists()
        True
        >>> lock_file.exists()
        False
    """
    lock_file = lock_path(path)
    what = what or f"working on {Path(path).name}"
    while True:
        inodes: list[int] = []
        lock, knows_inode = _new_lock(lock_file, inodes)
        _hold(lock, lock_file, what, timeout_s)
        remove_it = remove and knows_inode
        if not remove_it or _still_linked(lock_file, inodes[-1]):
            break
        lock.release()  # the holder before us removed the file we locked: lock the new one
    try:
        yield lock_file
    finally:
        try:
            if remove_it:  # unlinked while held, so no one can lock this file after us
                lock_file.unlink(missing_ok=True)
        finally:
            lock.release()


def _new_lock(lock_file: Path, inodes: list[int]) -> tuple[filelock.BaseFileLock, bool]:
    """A ``FileLock`` recording the inode it locks in ``inodes``, when filelock can."""
    try:
        return filelock.FileLock(str(lock_file), on_acquired=lambda fd: inodes.append(
            os.fstat(fd).st_ino)), True
    except TypeError:  # filelock before on_acquired: the lock file is kept
        return filelock.FileLock(str(lock_file)), False


def _still_linked(lock_file: Path, inode: int) -> bool:
    try:
        return os.stat(lock_file).st_ino == inode
    except FileNotFoundError:
        return False


def _hold(lock: filelock.BaseFileLock, lock_file: Path, what: str, timeout_s: float) -> None:
    quiet_s = QUIET_WAIT_S if timeout_s < 0 else min(QUIET_WAIT_S, timeout_s)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=quiet_s)
        except filelock.Timeout:
            # Say why nothing happens: the other process may be minutes into a large download.
            limit = "no time limit" if timeout_s < 0 else f"up to {timeout_s:g} s"
            log.warning("another process is %s; waiting for it (%s, lock %s)", what, limit, lock_file)
            _acquire(lock, lock_file, what, timeout_s, already_waited_s=quiet_s)
    except LockTimeoutError:  # a TimeoutError, hence an OSError: not a storage problem
        raise
    except OSError as err:
        raise StorageError.of(
            f"cannot create the lock file {lock_file} ({err.strerror or err}) for {what}: "
            f"{lock_file.parent} is not writable; make it writable, or use a writable folder", err
        ) from err


def _acquire(
    lock: filelock.BaseFileLock, lock_file: Path, what: str, timeout_s: float, *, already_waited_s: float
) -> None:
    try:
        lock.acquire(timeout=timeout_s if timeout_s < 0 else max(timeout_s - already_waited_s, 0.0))
    except filelock.Timeout as err:
        raise LockTimeoutError(
            f"waited {timeout_s:g} s for the lock {lock_file} held by another process {what}; "
            "wait for it to finish, or stop it and retry (the lock is released when that "
            "process exits)"
        ) from err


class HeldLock:
    """A lock taken by :func:`hold`, kept until :meth:`release` (or the process exits).

    A forked child inherits the descriptor but never unlocks it: on POSIX an unlock through
    any copy would drop the parent's lock too (filelock before 4 did that when a child freed
    its copy), so in a child :meth:`release` only closes the copy.
    """

    def __init__(self, lock_file: Path, fd: int | None, fallback: filelock.BaseFileLock | None) -> None:
        self.lock_file, self._fd, self._fallback, self._pid = lock_file, fd, fallback, os.getpid()

    def release(self) -> None:
        """Unlock (in the process that locked) and close; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            if os.getpid() == self._pid:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        elif self._fallback is not None and os.getpid() == self._pid:
            self._fallback.release()

    def __del__(self) -> None:
        self.release()


def hold(path: str | os.PathLike[str], *, what: str) -> HeldLock:
    """Take the lock of ``path`` now and keep it until released or the process exits.

    Args:
        path: the file whose liveness the lock tells (its lock file is :func:`lock_path`).
        what: the holder's work, for messages.

    Raises:
        LockTimeoutError: someone else holds it (a fresh, unique ``path`` never is).
        StorageError: the lock file cannot be created (a read-only or full folder).

    Example:
        >>> import tempfile, pathlib
        >>> pin = pathlib.Path(tempfile.mkdtemp()) / "me"
        >>> held = hold(pin, what="pinning shards")
        >>> is_held(pin)
        True
        >>> held.release(); is_held(pin)
        False
    """
    lock_file = lock_path(path)
    if fcntl is None:  # Windows: no fork, so filelock's own lock is safe to keep
        lock = filelock.FileLock(str(lock_file), thread_local=False)
        _hold(lock, lock_file, what, 0.0)
        return HeldLock(lock_file, None, lock)
    fd = _open_lock(lock_file, what)
    if not _try_flock(fd):
        os.close(fd)
        raise LockTimeoutError(f"the lock {lock_file} is held by another process {what}; "
                               "use another name, or stop that process")
    return HeldLock(lock_file, fd, None)


def is_held(path: str | os.PathLike[str]) -> bool:
    """Whether a live process (this one included) holds the lock of ``path``; never waits.

    Raises:
        StorageError: the lock file cannot be opened (a read-only folder).
    """
    lock_file = lock_path(path)
    if fcntl is None:
        lock = filelock.FileLock(str(lock_file), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            return True
        lock.release()
        return False
    fd = _open_lock(lock_file, "checking who holds it")
    try:
        if not _try_flock(fd):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _open_lock(lock_file: Path, what: str) -> int:
    try:
        return os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as err:
        raise StorageError.of(f"cannot open the lock file {lock_file} ({err.strerror or err}) "
                              f"for {what}; make {lock_file.parent} writable", err) from err


def _try_flock(fd: int) -> bool:
    assert fcntl is not None  # callers checked; for mypy
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


# The former name, still used by code written against it (datasets' text and shard caches):
# the same helper, not a second one.
resource_lock = locked
