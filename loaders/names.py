"""The one rule for names that come from outside: what a file we did not write may call a file.

A name read from an archive, a served ``index.json``, a manifest or a URL is joined to a
folder we own. Before that, it goes through :func:`check_name`, so no such name can leave
the folder (``../../x.pth``, ``/abs/x``, ``C:\\x``) or mean something other than it says
(a NUL byte ends a C string early):

- ``nested=False`` (a shard name, a downloaded file's name): one plain name. Refused: empty,
  ``.``, ``..``, a separator (``/`` or ``\\``), a NUL byte, a drive (``C:``, ``C:x``), a
  leading ``.`` (the namespace of our own bookkeeping: locks, pins, sidecars), a control or
  format character (a newline fakes a report line, U+202E reverses the text shown), a Windows
  device name (``CON``, ``nul.txt``) and more than 255 bytes of UTF-8 (no file system has them).
- ``nested=True`` (an archive member): a relative path, cleaned lexically: ``\\`` counts as
  a separator, ``.`` and empty parts are dropped. Refused: an absolute path (``/x``, ``\\x``,
  ``C:/x``), a ``..`` part, a NUL byte. ``a:b`` is a plain relative name on POSIX (a drive or
  stream name on Windows, refused there).

Callers wrap :class:`~loaders.errors.UnsafeNameError` in their own package's error, naming
the file the name came from; :func:`inside` is the second guard, for the joined path.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from pathlib import Path

from loaders.errors import UnsafeNameError

log = logging.getLogger(__name__)

# Names that are already clean relative paths: no '.', '..' or empty parts, no backslash, no
# NUL, no drive; a trailing '/' (a folder) is allowed. Anything else takes the slow, exact path.
_PLAIN_PATH = re.compile(r"(?!\.\.?(?:/|$))[^/\\\x00:]+(?:/(?!\.\.?(?:/|$))[^/\\\x00]+)*/?")
# The usual plain name: printable ASCII, no leading '.', no separator or ':'; at most 255.
_PLAIN_NAME = re.compile(r"[^./\\:\x00-\x20\x7f-\U0010ffff][^/\\:\x00-\x1f\x7f-\U0010ffff]{0,254}")
_DEVICE = re.compile(r"(?i)(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?")
MAX_NAME_BYTES = 255
_DRIVE = re.compile(r"[A-Za-z]:")

NUL_RULE = "has a NUL byte in its name"
ABSOLUTE_RULE = "has an absolute path (rule: names must be relative)"
PARENT_RULE = "has a '..' part and would escape the target (rule: no '..' in names)"


def _parts(name: str) -> list[str]:
    return [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]


def is_absolute(name: str) -> bool:
    """``/x``, ``\\x`` and Windows drive paths (``C:\\x``, ``C:/x``) are absolute everywhere; ``a:b`` is a plain relative name on POSIX but a drive or stream name on Windows.

    Example:
        >>> is_absolute("/etc/x"), is_absolute("C:\\\\x"), is_absolute("a:b")
        (True, True, False)
    """
    if name.startswith(("/", "\\")):
        return True
    drive = _DRIVE.match(name) is not None and len(name) >= 3 and name[2] in "/\\"
    return drive or (os.name == "nt" and ":" in name)


def _problem(name: str, *, nested: bool) -> str | None:
    """Why ``name`` is refused (the rule it breaks), or None."""
    if "\x00" in name:
        return NUL_RULE
    if is_absolute(name):
        return ABSOLUTE_RULE
    if ".." in _parts(name):
        return PARENT_RULE
    if nested:
        return None
    if name in ("", "."):
        return "is empty or '.' (rule: a plain file name)"
    if "/" in name or "\\" in name:
        return "has a path separator (rule: a plain file name, no '/' or '\\\\')"
    if _DRIVE.match(name):
        return "starts with a drive (rule: a plain file name, no 'C:')"
    return _plain_problem(name)


def _plain_problem(name: str) -> str | None:
    """The rules of one plain name beyond paths: hidden, unprintable, device, too long."""
    if name.startswith("."):
        return "starts with '.' (rule: names starting with '.' are dataferry's bookkeeping)"
    if any(unicodedata.category(char).startswith("C") for char in name):
        return "has a control or format character (rule: printable names only)"
    if _DEVICE.fullmatch(name.rstrip(". ")):
        return "is a Windows device name (rule: no CON, NUL, COM1, ... even with an extension)"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes (rule: no file system holds it)"
    return None


def check_name(name: object, *, nested: bool = False) -> str:
    """Return ``name`` cleaned, when a folder we own may hold a file of that name.

    Args:
        name: the name as found in the outside file (anything: it is checked to be a str).
        nested: accept a relative path (an archive member) and return it cleaned (``""`` for
            the folder itself); otherwise only one plain file name.

    Raises:
        UnsafeNameError: the name breaks the rule (its ``reason`` says which); the caller
            re-raises it as its own package's error, naming the file the name came from.

    Example:
        >>> check_name("shard-00000.bin"), check_name("./data//A/x.png", nested=True)
        ('shard-00000.bin', 'data/A/x.png')
        >>> check_name("../../x.pth")
        Traceback (most recent call last):
        ...
        loaders.errors.UnsafeNameError: '../../x.pth' has a '..' part and would escape the target (rule: no '..' in names)
    """
    if not isinstance(name, str):
        raise UnsafeNameError(repr(name), f"is of type {type(name).__name__}, not a string")
    if os.name != "nt" and (_PLAIN_PATH.fullmatch(name) if nested else (
            _PLAIN_NAME.fullmatch(name) and not _DEVICE.fullmatch(name.rstrip(". ")))):
        return name.rstrip("/")  # the usual name: one regex, no list
    problem = _problem(name, nested=nested)
    if problem is not None:
        raise UnsafeNameError(repr(name), problem)
    return "/".join(_parts(name)) if nested else name


def is_plain(name: object, *, nested: bool) -> bool:
    """Whether :func:`check_name` accepts ``name`` (for names we may skip rather than refuse).

    Example:
        >>> is_plain("x.bin", nested=False), is_plain("../x", nested=True)
        (True, False)
    """
    try:
        check_name(name, nested=nested)
    except UnsafeNameError:
        return False
    return True


def inside(folder: str | os.PathLike[str], name: str) -> Path:
    """Return ``folder / name`` after checking that it resolves inside ``folder``.

    The second guard after :func:`check_name` (a symlink in the folder, a rule missed).

    Raises:
        UnsafeNameError: the joined path resolves outside ``folder``.

    Example:
        >>> import tempfile
        >>> inside(tempfile.gettempdir(), "x.bin").name
        'x.bin'
    """
    root = Path(folder).resolve()
    path = root / name
    if not path.resolve().is_relative_to(root):
        raise UnsafeNameError(repr(name), f"resolves to {path.resolve()}, outside {root}")
    return Path(folder) / name


__all__ = ["check_name", "inside", "is_absolute", "is_plain"]
