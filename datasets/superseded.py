"""Name the caches a rebuild leaves behind, so that their disk space can be taken back.

A packed cache is keyed by its source's content (:func:`datasets.packing.folder_fingerprint`:
paths, sizes, mtimes, ctimes and inodes). Anything that changes those gives a new cache beside
the old one: an edited file, and also ``chmod -R``/``chown -R`` (ctime), a copy or restore
(inodes), a new hidden ``.DS_Store`` (listed as skipped), or a file system without stable inode
numbers (some network and FUSE mounts), where every open repacks. The old cache is not
deleted: another process may still be reading it (a worker that reopens it by path would fail).
After a build, the older caches of the same source and options are named with their size, once.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def report_superseded(final: Path) -> list[Path]:
    """Log (warning) the other caches beside ``final`` built from the same source and options.

    Only manifests that record ``source.path`` and ``options`` are compared; unreadable ones
    are passed over. Run after a build only: it reads every sibling's manifest.

    Returns:
        The superseded cache folders.
    """
    mine = _identity(final)
    if mine is None:
        return []
    older = sorted(p for p in final.parent.iterdir()
                   if p != final and not p.name.startswith(".") and _shape(p) == _shape(final)
                   and _identity(p) == mine)
    if older:
        size = sum(_folder_bytes(p) for p in older)
        log.warning("the packed cache %s replaces %d earlier one(s) of the same source, "
                    "%s bytes in all (its files changed, or their ctime/inode: chmod, chown, "
                    "a copy): %s; delete them to free that space once no process reads them",
                    final, len(older), f"{size:,}", ", ".join(map(str, older)))
    return older


def _shape(folder: Path) -> tuple[str, str]:
    """A cache name's kind and what follows its key: ``archive-KEY-train-v0.1`` is a split
    derived from ``archive-KEY``, not an earlier version of it."""
    kind, _, rest = folder.name.partition("-")
    return kind, rest.partition("-")[2]


def _identity(folder: Path) -> tuple[str, str, str] | None:
    try:
        manifest: Any = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        source, options = manifest["source"], manifest["options"]
        return (str(manifest.get("kind")), str(source["path"]),
                json.dumps(options, sort_keys=True))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _folder_bytes(folder: Path) -> int:
    total = 0
    for entry in os.scandir(folder):
        try:
            total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total
