"""List a ``CLASS/image`` folder as torchvision's ``ImageFolder`` does, with reasons for the rest.

Classes are the sorted names of the sub-folders of ``root`` (hidden ones, ``.x``, excepted);
each class's files are found recursively and sorted by their relative path (plain string
order, so ``a.jpg`` and ``A.jpg`` are two images in a fixed order). Hidden files are not read:
they are listed in ``skipped`` with that reason. So are symbolic links that cannot be
followed: a dangling link, a link loop (``ELOOP``), and a link to a folder already read (a
link back to a parent folder would make the walk endless); none of them is an error.

One ``os.scandir`` pass per folder lists everything; file types come from the directory
entries (no ``stat`` call), so listing costs what torchvision's ``os.walk`` costs.
``with_stats=True`` adds one ``stat`` per file, for the packed cache's key
(:func:`datasets.packing.folder_fingerprint`).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets.errors import DatasetNotFoundError

log = logging.getLogger(__name__)

# torchvision's IMG_EXTENSIONS plus GIF, JFIF and AVIF (lower case; matched case-insensitively)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".gif",
                    ".tif", ".tiff", ".webp", ".avif")
# What a rewrite of a file changes, as git's index records it: size, mtime, ctime and inode
# (``cp -p``, ``tar x`` and ``rsync -t`` keep mtime; none of them keeps ctime and inode).
STAT_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")


@dataclass
class FolderScan:
    """What :func:`scan_folder` found.

    Attributes:
        classes: the class names, sorted.
        paths: the chosen files' paths relative to the root (``CLASS/...``), sorted.
        skipped: ``[relpath, reason]`` of the files not read.
        stats: ``int64`` ``[len(paths), 4]``: :data:`STAT_FIELDS` of each file
            (``with_stats=True`` only, else ``None``).
    """

    classes: list[str]
    paths: list[str]
    skipped: list[list[str]] = field(default_factory=list)
    stats: np.ndarray | None = None


def has_image_extension(path: str) -> bool:
    """Return whether ``path`` ends with one of :data:`IMAGE_EXTENSIONS` (any case).

    Example:
        >>> has_image_extension("ants/x.JPG"), has_image_extension("notes.txt")
        (True, False)
    """
    return path.lower().endswith(IMAGE_EXTENSIONS)


def path_prefix(root: Path) -> str:
    """What joins ``root`` and a relative path as ``str(root / rel)`` would, as a prefix
    (one string concatenation per file instead of a ``Path`` join).

    Example:
        >>> path_prefix(Path(".")), path_prefix(Path("/data/x/")), path_prefix(Path("/"))
        ('', '/data/x/', '/')
    """
    top = str(root)
    return "" if top == "." else top.rstrip("/") + "/"


def scan_folder(
    root: str | os.PathLike[str],
    *,
    allow_empty: bool = False,
    is_valid_file: Callable[[str], bool] | None = None,
    by_content: bool = False,
    with_stats: bool = False,
) -> FolderScan:
    """List the images of a ``CLASS/image`` folder.

    Args:
        root: the folder with one sub-folder per class.
        allow_empty: keep class folders without a file (else they are an error, as in
            torchvision).
        is_valid_file: ``path -> bool`` choosing the files (torchvision's argument).
        by_content: without ``is_valid_file``, take every non-hidden file (the packer tries
            each and lists what it cannot decode) instead of those with an image extension.
        with_stats: also ``stat`` each chosen file (see :attr:`FolderScan.stats`).

    Raises:
        DatasetNotFoundError: ``root`` is not a folder, holds no class folder, a class folder
            holds no file (unless ``allow_empty``), or there is no image at all.
    """
    root = Path(root)
    _check_root(root)
    classes = sorted(e.name for e in os.scandir(root) if _is_dir(e) and not e.name.startswith("."))
    if not classes:
        raise DatasetNotFoundError(
            f"expected class folders (CLASS/image files) in {root} but found none; point root "
            "at the folder that holds one sub-folder per class"
        )
    if is_valid_file is not None:
        top = path_prefix(root)
        chosen: Callable[[str], bool] = lambda rel: is_valid_file(top + rel)  # noqa: E731
    else:
        chosen = (lambda rel: True) if by_content else has_image_extension  # noqa: E731
    scan = FolderScan(classes, [])
    entries: list[os.DirEntry[str]] = []
    for name in classes:
        for rel, entry in _walk(root, name, scan.skipped):
            if entry.name.startswith("."):
                scan.skipped.append([rel, "hidden file (its name starts with '.'): not read"])
            elif chosen(rel):
                if entry.is_file():
                    scan.paths.append(rel)
                    entries.append(entry)
                else:
                    scan.skipped.append([rel, _unfollowable(entry)])
    if with_stats:
        scan.stats = _stats(entries, scan)
    _check_found(root, scan, allow_empty=allow_empty)
    return scan


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop: listed by the walk, not a class
        return False


def _stats(entries: list[os.DirEntry[str]], scan: FolderScan) -> np.ndarray:
    """:data:`STAT_FIELDS` of each entry, as one ``int64`` array (one ``stat`` each)."""
    rows: list[tuple[int, int, int, int]] = []
    for entry in entries:
        st = entry.stat()
        rows.append((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(STAT_FIELDS))


def _check_root(root: Path) -> None:
    if root.is_file():
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/image files at {root} but it is a file; for a tar or "
            "zip archive of such a folder use from_archive(path)"
        )
    if os.path.lexists(root) and not root.is_dir():
        kind = "a dangling link" if root.is_symlink() and not root.exists() else "not a folder"
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/image files at {root} but it is {kind} (a device, "
            "socket, pipe or broken link); point root at the folder of class sub-folders"
        )
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/image files at {root} but it does not exist; "
            "check the path or download the dataset first"
        )


def _walk(root: Path, name: str,
          skipped: list[list[str]]) -> list[tuple[str, os.DirEntry[str]]]:
    """Entries that are not folders below ``root/name``, recursively (not into hidden folders),
    sorted by relpath. A link to a folder already read, or one that loops, goes to ``skipped``."""
    found: list[tuple[str, os.DirEntry[str]]] = []
    stack = [name]
    # the root and its parents too: a link to one of them would read the tree again
    seen = {_folder_id(root / name), *(_folder_id(p) for p in (root, *root.resolve().parents))}
    while stack:
        rel_dir = stack.pop()
        with os.scandir(root / rel_dir) as entries:
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}"
                try:
                    is_dir = entry.is_dir()
                except OSError as err:  # ELOOP: a link that points at itself, or in a circle
                    skipped.append([rel, f"symbolic link that cannot be followed: "
                                         f"{err.strerror or err}; not read"])
                    continue
                if not is_dir:
                    found.append((rel, entry))
                elif entry.name.startswith("."):
                    continue
                elif entry.is_symlink() and _folder_id(Path(entry.path)) in seen:
                    skipped.append([rel, "symbolic link to a folder already read (a link loop "
                                         "or a second link to it); not read twice"])
                else:
                    seen.add(_folder_id(Path(entry.path)))
                    stack.append(rel)
    return sorted(found, key=lambda item: item[0])


def _folder_id(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _unfollowable(entry: os.DirEntry[str]) -> str:
    """Why a listed entry that is neither a folder nor a file is not read."""
    if entry.is_symlink():
        try:
            target = os.readlink(entry.path)
        except OSError:
            target = "?"
        try:
            os.stat(entry.path)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return f"dangling symbolic link (its target {target!r} does not exist); not read"
            return f"symbolic link that cannot be followed ({err.strerror}); not read"
    return "not a regular file (a device, socket or pipe); not read"


def _check_found(root: Path, scan: FolderScan, *, allow_empty: bool) -> None:
    have = {rel.split("/", 1)[0] for rel in scan.paths}
    empty = [c for c in scan.classes if c not in have]
    if len(scan.classes) == 1 and scan.paths and all(rel.count("/") > 1 for rel in scan.paths):
        raise DatasetNotFoundError(
            f"expected one sub-folder per class in {root} but found one folder, "
            f"{scan.classes[0]}, whose images all sit in its own sub-folders; point root at "
            f"{root / scan.classes[0]}, which holds the class folders"
        )
    if not scan.paths and not (allow_empty and scan.classes):
        nested = [root / c for c in scan.classes
                  if any(p.is_dir() and not p.name.startswith(".") for p in (root / c).iterdir())]
        hint = (f"point root at {nested[0]}, which holds the class folders" if len(nested) == 1
                else "point root at the folder that holds one sub-folder per class")
        raise DatasetNotFoundError(
            f"expected images in the class folders of {root} but found no image file; {hint}"
        )
    if empty and not allow_empty:
        raise DatasetNotFoundError(
            f"found no image file in the class folder(s) {', '.join(empty[:5])} of {root}; "
            "pass allow_empty=True to keep them as classes with 0 images, or remove them"
        )
    if empty:
        log.info("class folder(s) %s of %s hold no image; kept as classes with 0 images",
                 ", ".join(empty[:10]), root)
