"""Errors raised by :mod:`loaders`.

Every error derives from :class:`LoaderError`, so ``except LoaderError`` catches them all::

    LoaderError
    ├── UnknownDatasetError      (also LookupError)  no registry entry of that name
    ├── DownloadError            (also OSError)      every URL tried failed
    ├── ChecksumMismatchError    (also ValueError)   size or hash differs from the expected one
    ├── ArchiveError             (also ValueError)   an archive is corrupt or of an unknown kind
    │   └── UnsafeArchiveError                       a member would escape or bomb the target
    ├── UnsafeNameError          (also ValueError)   an outside name would leave its folder
    ├── OfflineError             (also ConnectionError) offline and the file is not in the cache
    ├── LockTimeoutError         (also TimeoutError) another process holds the resource too long
    └── StorageError             (also OSError)      the disk refused a write (full, read-only)

Every message says what failed, with the values involved, and what to do next.
:data:`FORCE_HINT` is the one wording of "fetch it again" for a corrupt file.
"""

from __future__ import annotations

FORCE_HINT = "delete it and download it again (fetch(..., force=True) or --force)"


class LoaderError(Exception):
    """Base class of every error raised by :mod:`loaders`."""


class UnknownDatasetError(LoaderError, LookupError):
    """No dataset of that name is in the registry."""

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DownloadError(LoaderError, OSError):
    """Every URL of a resource was tried and none gave a verified file."""


class ChecksumMismatchError(LoaderError, ValueError):
    """A file's size or hash is not the expected one."""


class ArchiveError(LoaderError, ValueError):
    """An archive is corrupt, truncated, or of a kind that cannot be extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the target, or the archive is a bomb."""


class UnsafeNameError(LoaderError, ValueError):
    """A name read from outside (a shard, a member, a URL) would leave the folder it is joined to.

    Raised by :func:`loaders.names.check_name`; ``name`` is the name as ``repr`` writes it,
    ``reason`` the rule it breaks. Callers re-raise it as their own error, naming the file.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name} {reason}")
        self.name, self.reason = name, reason


class OfflineError(LoaderError, ConnectionError):
    """Offline mode is on and a needed file is not in the cache."""


class LockTimeoutError(LoaderError, TimeoutError):
    """Another process held a resource's lock for longer than the timeout."""


class StorageError(LoaderError, OSError):
    """The local disk refused a write: full, read-only or not permitted; the message names the path.

    ``errno`` is the one of the failed call (``errno.ENOSPC``…), so callers can tell a full disk
    from a read-only one; ``str()`` is the message alone.
    """

    @classmethod
    def of(cls, message: str, err: OSError) -> StorageError:
        """Return a StorageError saying ``message``, with the ``errno`` of ``err``."""
        error = cls(message)
        error.errno = err.errno
        return error
