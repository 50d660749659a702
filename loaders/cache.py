"""Where dataferry keeps its files: the cache home and the folder of each dataset."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

HOME_ENV = "DATAFERRY_HOME"


def cache_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the cache home: ``root``, else ``$DATAFERRY_HOME``, else the XDG cache folder.

    The XDG folder is ``$XDG_CACHE_HOME/dataferry``, or ``~/.cache/dataferry`` when that
    variable is unset or empty. Nothing is created here.

    Args:
        root: an explicit folder; wins over every environment variable.

    Returns:
        The absolute path of the cache home.

    Example:
        >>> cache_root("/tmp/dfhome")
        PosixPath('/tmp/dfhome')
    """
    if root is not None:
        return Path(root).expanduser().resolve()
    env_home = os.environ.get(HOME_ENV, "").strip()
    if env_home:
        return Path(env_home).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "dataferry").resolve()
