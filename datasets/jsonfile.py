"""Small JSON state files (vocabularies, label encoders) written whole or not at all."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def save_json(path: str | os.PathLike[str], state: Any) -> Path:
    """Write ``state`` as JSON to ``path`` atomically, creating missing parent folders.

    The text goes to a temporary file beside ``path`` that replaces it only once complete, so a
    crash never leaves half a file where a whole one is expected.

    Args:
        path: where to write.
        state: anything :func:`json.dumps` takes.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, ensure_ascii=False)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    log.debug("wrote %s", path)
    return path
