"""List a ``CLASS/image`` folder as torchvision's ``ImageFolder`` does, with reasons for the rest.

Classes are the sorted names of the sub-folders of ``root`` (hidden ones, ``.x``, excepted);
each class's files are found recursively and sorted by their relative path (plain string
order, so ``a.jpg`` and ``A.jpg`` are two images in a fixed order). Hidden files are not read:
they are listed in ``skipped`` with that reason.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets.errors import DatasetNotFoundError

log = logging.getLogger(__name__)

# torchvision's IMG_EXTENSIONS plus GIF, JFIF and AVIF (lower case; matched case-insensitively)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".gif",
                    ".tif", ".tiff", ".webp", ".avif")


@dataclass
class FolderScan:
    """What :func:`scan_folder` found: classes, ``(relpath, size, mtime_ns)`` files, skipped."""

    classes: list[str]
    files: list[tuple[str, int, int]]
    skipped: list[list[str]] = field(default_factory=list)


def has_image_extension(path: str) -> bool:
    """Return whether ``path`` ends with one of :data:`IMAGE_EXTENSIONS` (any case).

    Example:
        >>> has_image_extension("ants/x.JPG"), has_image_extension("notes.txt")
        (True, False)
    """
    return path.lower().endswith(IMAGE_EXTENSIONS)


def scan_folder(
    root: str | os.PathLike[str],
    *,
    allow_empty: bool = False,
    is_valid_file: Callable[[str], bool] | None = None,
    by_content: bool = False,
) -> FolderScan:
    """List the images of a ``CLASS/image`` folder.

    Args:
        root: the folder with one sub-folder per class.
        allow_empty: keep class folders without a file (else they are an error, as in
            torchvision).
        is_valid_file: ``path -> bool`` choosing the files (torchvision's argument).
        by_content: without ``is_valid_file``, take every non-hidden file (the packer tries
            each and lists what it cannot decode) instead of those with an image extension.

    Raises:
        DatasetNotFoundError: ``root`` is not a folder, holds no class folder, a class folder
            holds no file (unless ``allow_empty``), or there is no image at all.
    """
    root = Path(root)
    _check_root(root)
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DatasetNotFoundError(
            f"expected class folders (CLASS/image files) in {root} but found none; point root "
            "at the folder that holds one sub-folder per class"
        )
    scan = FolderScan(classes, [])
    for name in classes:
        for rel, entry in _walk(root, name):
            if entry.name.startswith("."):
                scan.skipped.append([rel, "hidden file (its name starts with '.'): not read"])
            elif (is_valid_file(str(root / rel)) if is_valid_file is not None
                  else by_content or has_image_extension(entry.name)):
                st = entry.stat()
                scan.files.append((rel, st.st_size, st.st_mtime_ns))
    _check_found(root, scan, allow_empty=allow_empty)
    return scan


def _check_root(root: Path) -> None:
    if root.is_file():
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/image files at {root} but it is a file; for a tar or "
            "zip archive of such a folder use from_archive(path)"
        )
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"expected a folder of CLASS/image files at {root} but it does not exist; "
            "check the path or download the dataset first"
        )


def _walk(root: Path, name: str) -> list[tuple[str, os.DirEntry[str]]]:
    """Files below ``root/name``, recursively (not into hidden folders), sorted by relpath."""
    found: list[tuple[str, os.DirEntry[str]]] = []
    stack = [name]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(root / rel_dir) as entries:
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}"
                if entry.is_dir():
                    if not entry.name.startswith("."):
                        stack.append(rel)
                elif entry.is_file():
                    found.append((rel, entry))
    return sorted(found, key=lambda item: item[0])


def _check_found(root: Path, scan: FolderScan, *, allow_empty: bool) -> None:
    have = {rel.split("/", 1)[0] for rel, _, _ in scan.files}
    empty = [c for c in scan.classes if c not in have]
    if len(scan.classes) == 1 and scan.files and all(rel.count("/") > 1 for rel, _, _ in scan.files):
        raise DatasetNotFoundError(
            f"expected one sub-folder per class in {root} but found one folder, "
            f"{scan.classes[0]}, whose images all sit in its own sub-folders; point root at "
            f"{root / scan.classes[0]}, which holds the class folders"
        )
    if not scan.files and not (allow_empty and scan.classes):
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
