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

import contextlib
import errno
import gc
import itertools
import logging
import operator
import os
from collections.abc import Callable, Iterator
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
        paths: the chosen files, ``str(root / relpath)`` (``relpath``: ``CLASS/...``), sorted.
        labels: each path's class index.
        skipped: ``[relpath, reason]`` of the files not read.
        stats: ``int64`` ``[len(paths), 4]``: :data:`STAT_FIELDS` of each file
            (``with_stats=True`` only, else ``None``).
        prefix: what precedes ``relpath`` in each path (:func:`path_prefix`).
    """

    classes: list[str]
    paths: list[str]
    labels: list[int] = field(default_factory=list)
    skipped: list[list[str]] = field(default_factory=list)
    stats: np.ndarray | None = None
    prefix: str = ""

    def relpaths(self) -> list[str]:
        """The chosen files' paths relative to the root (``CLASS/...``)."""
        cut = len(self.prefix)
        return [path[cut:] for path in self.paths]


def shown(name: str) -> str:
    """Return ``name`` for a report line: as is, or as ``repr`` writes it when unprintable.

    A name holding a newline (or another control character) is printed quoted and escaped, so
    a crafted file name cannot fake a report line.

    Example:
        >>> print(shown("a.jpg"), shown("a.jpg: ok" + chr(10) + "  b.jpg"))
        a.jpg 'a.jpg: ok\\n  b.jpg'
    """
    return name if name.isprintable() else repr(name)


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


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a long list of new tuples and strings is built.

    Those objects hold no cycles, yet each 700 allocations start a collection that walks
    every young object (and, every so often, the whole heap): a third of a 200,000-file
    scan's time. Nested uses keep it paused until the outermost one ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
            f"expected class folders (CLASS/image files) in {shown(str(root))} but found none; point root "
            "at the folder that holds one sub-folder per class"
        )
    prefix = path_prefix(root)
    chosen = is_valid_file if is_valid_file is not None else (
        (lambda path: True) if by_content else None)
    scan = FolderScan(classes, [], prefix=prefix)
    entries: list[os.DirEntry[str]] = []
    # the root and its parents: a link back to one of them would read the tree again
    above = {_folder_id(p) for p in (root, *root.resolve().parents)}
    with gc_paused():
        for label, name in enumerate(classes):
            before = len(scan.paths)
            for path, entry in _walk(prefix, name, scan.skipped, above):
                base = entry.name
                if base.startswith("."):
                    scan.skipped.append([path[len(prefix):],
                                         "hidden file (its name starts with '.'): not read"])
                elif chosen(path) if chosen is not None else base.lower().endswith(IMAGE_EXTENSIONS):
                    if entry.is_file():  # the entry's type: no stat call unless it is a link
                        scan.paths.append(path)
                        entries.append(entry)
                    else:
                        scan.skipped.append([path[len(prefix):], _unfollowable(entry)])
            scan.labels += [label] * (len(scan.paths) - before)
        if with_stats:
            scan.stats = _stats(entries)
    _check_found(root, scan, allow_empty=allow_empty)
    return scan


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop beside the class folders: not a class (nor read)
        return False


def _stats(entries: list[os.DirEntry[str]]) -> np.ndarray:
    """:data:`STAT_FIELDS` of each entry, as one ``int64`` array (one ``stat`` each; the
    loops run in C: this is most of a warm ``pack()``'s time)."""
    return _stat_array(map(os.DirEntry.stat, entries), len(entries))


def stat_files(paths: list[str]) -> np.ndarray:
    """:data:`STAT_FIELDS` of each file, as :attr:`FolderScan.stats` holds them.

    Raises:
        OSError: a file cannot be ``stat``-ed (removed since it was listed).
    """
    return _stat_array(map(os.stat, paths), len(paths))


def _stat_array(results: Iterator[os.stat_result], count: int) -> np.ndarray:
    fields = operator.attrgetter("st_size", "st_mtime_ns", "st_ctime_ns", "st_ino")
    values = itertools.chain.from_iterable(map(fields, results))
    return np.fromiter(values, dtype=np.int64, count=count * len(STAT_FIELDS)).reshape(
        -1, len(STAT_FIELDS))


def _check_root(root: Path) -> None:
    if root.is_file():
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/image files at {shown(str(root))} but it is a file; for a tar or "
            "zip archive of such a folder use from_archive(path)"
        )
    if os.path.lexists(root) and not root.is_dir():
        kind = "a dangling link" if root.is_symlink() and not root.exists() else "not a folder"
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/image files at {shown(str(root))} but it is {kind} (a device, "
            "socket, pipe or broken link); point root at the folder of class sub-folders"
        )
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/image files at {shown(str(root))} but it does not exist; "
            "check the path or download the dataset first"
        )


def _walk(prefix: str, name: str, skipped: list[list[str]],
          above: set[tuple[int, int]]) -> list[tuple[str, os.DirEntry[str]]]:
    """``(path, entry)`` of the entries that are not folders below the class folder ``name``,
    recursively (not into hidden folders), sorted by path; ``path`` is ``entry.path``, made by
    ``os.scandir`` (``prefix + CLASS/...``). A link to a folder already read, or one that
    loops, goes to ``skipped``."""
    found: list[tuple[str, os.DirEntry[str]]] = []
    stack = [prefix + name]
    seen = {_folder_id(Path(stack[0])), *above}
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError as err:  # ELOOP: a link that points at itself, or in a circle
                    skipped.append([entry.path[len(prefix):], "symbolic link that cannot be "
                                    f"followed: {err.strerror or err}; not read"])
                    continue
                if not is_dir:
                    found.append((entry.path, entry))
                elif entry.name.startswith("."):
                    continue
                elif (folder := _folder_id(Path(entry.path))) in seen:
                    skipped.append([entry.path[len(prefix):], "symbolic link to a folder "
                                    "already read (a link loop or a second link to it); not "
                                    "read twice"])
                else:
                    seen.add(folder)
                    stack.append(entry.path)
    found.sort()  # by path: each is unique, so entries are never compared
    return found


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
    have = set(scan.labels)
    empty = [c for i, c in enumerate(scan.classes) if i not in have]
    if len(scan.classes) == 1 and scan.paths and all(rel.count("/") > 1 for rel in scan.relpaths()):
        raise DatasetNotFoundError(
            f"expected one sub-folder per class in {shown(str(root))} but found one folder, "
            f"{shown(scan.classes[0])}, whose images all sit in its own sub-folders; point "
            f"root at {shown(str(root / scan.classes[0]))}, which holds the class folders"
        )
    if not scan.paths and not (allow_empty and scan.classes):
        nested = [root / c for c in scan.classes
                  if any(p.is_dir() and not p.name.startswith(".") for p in (root / c).iterdir())]
        hint = (f"point root at {shown(str(nested[0]))}, which holds the class folders" if len(nested) == 1
                else "point root at the folder that holds one sub-folder per class")
        raise DatasetNotFoundError(
            f"expected images in the class folders of {shown(str(root))} but found no image file; "
            f"{hint}"
        )
    if empty and not allow_empty:
        raise DatasetNotFoundError(
            f"found no image file in the class folder(s) {', '.join(map(shown, empty[:5]))} "
            f"of {shown(str(root))}; "
            "pass allow_empty=True to keep them as classes with 0 images, or remove them"
        )
    if empty:
        log.info("class folder(s) %s of %s hold no image; kept as classes with 0 images",
                 ", ".join(map(shown, empty[:10])), shown(str(root)))
