"""What an archive member may do: the safety policy that :mod:`loaders.extract` enforces.

The same rules hold for tar and zip on every Python version (on Pythons that have
``tarfile.data_filter`` it is applied to tar members on top of these rules):

- a member name is cleaned lexically: ``\\`` counts as a separator, ``.`` and empty parts
  are dropped; absolute names (``/x``, ``C:x``), names with a ``..`` part and names with a
  NUL byte are refused;
- symbolic links must be relative and must not contain ``..``: every link then points at or
  below its own folder, which is itself inside the target, so no chain of links can leave it;
- hard links must name a regular file that appeared earlier in the same archive;
- device files, FIFOs and other special members are refused;
- each name appears once: a second member of the same cleaned name (``a`` then ``./a``), or a
  member under a name that is not a folder (``a`` a file or link, then ``a/b``), is refused
  with :class:`~loaders.errors.ArchiveError` naming it; only a folder may be listed again.
  Extraction and packing (:func:`loaders.tar_stream.iter_members`) share this rule, so an
  archive that one accepts the other accepts too (GNU tar keeps the last copy instead; an
  archive with appended updates must be re-created, e.g. extracted with tar and packed again);
- the member count, the total uncompressed size and the ratio of that size to the archive's
  size on disk are capped, and the caps are checked *before* each member is written, so a
  compression bomb is refused while streaming, not after it has filled the disk.

Every refusal raises :class:`~loaders.errors.UnsafeArchiveError` naming the archive, the member
and the rule.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from loaders.errors import ArchiveError, UnsafeArchiveError, UnsafeNameError
from loaders.names import check_name, is_plain

log = logging.getLogger(__name__)

DEFAULT_MAX_TOTAL_BYTES = 16 * 1024**3
DEFAULT_MAX_RATIO = 200.0
DEFAULT_MAX_MEMBERS = 2_000_000
# Tiny archives may legitimately expand more than max_ratio (a few headers, an empty file);
# the ratio cap only bites beyond this many bytes.
RATIO_FLOOR_BYTES = 1024**2

_HINT = "if you trust this archive, extract it by hand; otherwise delete it"


@dataclass(frozen=True)
class Limits:
    """Caps on what one archive may expand to.

    Attributes:
        max_total_bytes: most uncompressed bytes over all members.
        max_ratio: most uncompressed bytes per byte of the archive on disk.
        max_members: most members (files, folders and links together).
    """

    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO
    max_members: int = DEFAULT_MAX_MEMBERS

    def __post_init__(self) -> None:
        if self.max_total_bytes <= 0:
            raise ValueError(
                f"max_total_bytes should be a positive int, but got max_total_bytes={self.max_total_bytes}"
            )
        if self.max_ratio <= 0:
            raise ValueError(f"max_ratio should be positive, but got max_ratio={self.max_ratio}")
        if self.max_members <= 0:
            raise ValueError(
                f"max_members should be a positive int, but got max_members={self.max_members}"
            )


class Budget:
    """Counts members and bytes of one archive and refuses as soon as a cap would be passed.

    Args:
        archive: the archive's path, for messages.
        archive_size: the archive's size on disk in bytes (the ratio's denominator).
        limits: the caps.
    """

    def __init__(self, archive: str | os.PathLike[str], archive_size: int, limits: Limits) -> None:
        self.archive = os.fspath(archive)
        self.limits = limits
        self.members = 0
        self.total_bytes = 0
        self._ratio_bytes = max(int(limits.max_ratio * archive_size), RATIO_FLOOR_BYTES)
        self._archive_size = archive_size

    def add_member(self, name: str) -> None:
        """Count one more member; raise when there are more than ``max_members``."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise UnsafeArchiveError(
                f"{self.archive}: member {name!r} is number {self.members}, more than "
                f"max_members={self.limits.max_members} (refusing a likely archive bomb); "
                f"{_HINT}, or pass a larger max_members"
            )

    def check_declared(self, total_bytes: int) -> None:
        """Refuse up front when the sizes an archive declares already break a cap."""
        Budget(self.archive, self._archive_size, self.limits).add_bytes("(all members)", total_bytes)

    def add_bytes(self, name: str, size: int) -> None:
        """Count ``size`` more uncompressed bytes of member ``name``, before writing them.

        Raises:
            UnsafeArchiveError: the total would pass ``max_total_bytes`` or the ratio cap.
        """
        total = self.total_bytes + size
        if total > self.limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"{self.archive}: member {name!r} would bring the uncompressed total to {total} "
                f"bytes, more than max_total_bytes={self.limits.max_total_bytes}; "
                f"{_HINT}, or pass a larger max_total_bytes"
            )
        if total > self._ratio_bytes:
            raise UnsafeArchiveError(
                f"{self.archive}: member {name!r} would bring the uncompressed total to {total} "
                f"bytes, more than max_ratio={self.limits.max_ratio:g} times the archive's "
                f"{self._archive_size} bytes (refusing a likely compression bomb); "
                f"{_HINT}, or pass a larger max_ratio"
            )
        self.total_bytes = total


def clean_name(archive: str, name: str) -> str | None:
    """Return a member's name as a safe relative POSIX path, or None for the root itself.

    The rule is :func:`loaders.names.check_name`'s (``nested=True``), the one every reader of
    outside names uses.

    Args:
        archive: the archive's path, for messages.
        name: the member name as stored in the archive.

    Raises:
        UnsafeArchiveError: the name is absolute, has a ``..`` part or a NUL byte.

    Example:
        >>> clean_name("a.tar", "./data//A/x.png")
        'data/A/x.png'
    """
    try:
        return check_name(name, nested=True) or None
    except UnsafeNameError as err:
        raise UnsafeArchiveError(f"{archive}: member {err.name} {err.reason}; {_HINT}") from err


class MemberRules:
    """Applies every rule of this module to one archive's members, in order.

    Args:
        archive: the archive's path, for messages.
        archive_size: the archive's size on disk in bytes (for the ratio cap).
        limits: the caps.

    Example:
        >>> rules = MemberRules("a.tar", 10_000, Limits())
        >>> rules.admit("./data/x.txt", "file", 5, "")
        'data/x.txt'
        >>> rules.admit("data/x.txt", "file", 5, "")
        Traceback (most recent call last):
        ...
        loaders.errors.ArchiveError: a.tar: member 'data/x.txt' appears twice ...
    """

    def __init__(self, archive: str | os.PathLike[str], archive_size: int, limits: Limits) -> None:
        self.archive = os.fspath(archive)
        self.budget = Budget(archive, archive_size, limits)
        self.files: set[str] = set()  # regular files (hard-link targets)
        self.others: set[str] = set()  # links: nothing may be put under them
        self.folders: set[str] = {""}  # listed or implied by a member below them

    def admit(self, raw_name: str, kind: str, size: int, linkname: str) -> str | None:
        """Check one member; return its cleaned name (None for the root folder itself).

        Args:
            raw_name: the name as stored.
            kind: ``file``, ``folder``, ``symlink``, ``hardlink`` or a special kind
                (``character device``, ``FIFO``...), which is refused.
            size: the bytes of data it declares (counted before anything is read).
            linkname: a link's target as stored.

        Raises:
            UnsafeArchiveError: a rule or cap is broken.
            ArchiveError: the name repeats an earlier member's or lies under a non-folder.
        """
        self.budget.add_member(raw_name)
        if kind == "file":
            self.budget.add_bytes(raw_name, size)  # before anything is read or written
        name = clean_name(self.archive, raw_name)
        if name is None:
            return None
        if kind == "symlink":
            check_symlink(self.archive, name, linkname)
        elif kind == "hardlink":
            check_hardlink(self.archive, name, linkname, self.files)
        elif kind not in ("file", "folder"):
            raise refuse_special(self.archive, name, kind)
        self._place(name, kind == "folder")
        (self.folders if kind == "folder" else self.files if kind != "symlink" else self.others).add(name)
        return name

    def _place(self, name: str, folder: bool) -> None:
        if name in self.files or name in self.others or (not folder and name in self.folders):
            raise ArchiveError(
                f"{self.archive}: member {name!r} appears twice (rule: each name once, so that "
                f"extraction and packing agree); re-create the archive without the duplicate"
            )
        parent = name.rpartition("/")[0]
        while parent not in self.folders:
            if parent in self.files or parent in self.others:
                raise ArchiveError(
                    f"{self.archive}: member {name!r} lies under {parent!r}, which is not a "
                    f"folder (rule: nothing is written under a file or link); "
                    f"re-create the archive without the clash"
                )
            self.folders.add(parent)
            parent = parent.rpartition("/")[0]


def check_symlink(archive: str, name: str, target: str) -> None:
    """Refuse a symbolic link unless its target is relative and free of ``..``.

    Raises:
        UnsafeArchiveError: the target is empty, absolute or has a ``..`` part.
    """
    if not target or not is_plain(target, nested=True):
        raise UnsafeArchiveError(
            f"{archive}: symlink {name!r} -> {target!r} may point outside the target "
            f"(rule: link targets must be relative, without '..'); {_HINT}"
        )


def check_hardlink(archive: str, name: str, target: str, regular_files: set[str]) -> str:
    """Return the cleaned target of a hard link that names an earlier regular member.

    Raises:
        UnsafeArchiveError: the target is unsafe or not an earlier regular file of the archive.
    """
    cleaned = clean_name(archive, target) if target else None
    if cleaned is None or cleaned not in regular_files:
        raise UnsafeArchiveError(
            f"{archive}: hard link {name!r} -> {target!r} does not name an earlier regular "
            f"file of the archive (rule: hard links stay inside the archive); {_HINT}"
        )
    return cleaned


def refuse_special(archive: str, name: str, kind: str) -> UnsafeArchiveError:
    """Return the error for a device file, FIFO or other special member."""
    return UnsafeArchiveError(
        f"{archive}: member {name!r} is a {kind} (rule: only regular files, folders and "
        f"links that stay inside); {_HINT}"
    )
