"""Image datasets published as an archive of ``top/<split>/CLASS/*`` folders (Imagenette,
the hymenoptera data): fetched and extracted once by ``loaders.fetch``, then each split
folder is packed like any image folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from datasets.errors import DatasetNotFoundError

log = logging.getLogger(__name__)


def split_folder(name: str, filename: str, subfolder: str, *, root: str | os.PathLike[str] | None,
                 download: bool) -> Path:
    """Return ``dataset_dir(name, root)/subfolder``, extracting or fetching the archive if needed.

    Raises:
        DatasetNotFoundError: neither the folder nor the archive is there and ``download`` is
            False; says where it looked and what to run.
    """
    import loaders

    home = loaders.dataset_dir(name, root)
    folder = home / subfolder
    if folder.is_dir():
        return folder
    if (home / filename).is_file() or download:
        # verifies the archive (fetching it only when missing) and extracts it safely
        home = loaders.fetch(name, root)
        folder = home / subfolder
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{name} not found: looked for {folder} and {home / filename}; pass download=True "
            f"or run `python -m loaders.download {name}`"
        )
    return folder


def open_archived_split(name: str, filename: str, subfolder: str, *,
                        root: str | os.PathLike[str] | None, download: bool, transform: Any,
                        cache_dir: str | os.PathLike[str] | None, **options: Any) -> Dataset[Any]:
    """Open one split folder of an archived image dataset, packed (see :mod:`datasets.local`)."""
    from datasets.images import ImageFolderDataset

    folder = split_folder(name, filename, subfolder, root=root, download=download)
    return ImageFolderDataset.pack(folder, transform, cache_dir=cache_dir, **options)
