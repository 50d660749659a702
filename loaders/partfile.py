"""A partial download and what it was cut from: ``<name>.part`` and its sidecar ``.<name>.part.json``.

The sidecar is written atomically before the first body byte reaches the part. It records
the URL, the server's validator for those bytes (a strong ``ETag`` and ``Last-Modified``) and
the total size the server announced. A later ``206 Partial Content`` is appended to the part
only when all of these hold (:func:`resume_problem`):

* the sidecar is there, for the same URL, with a validator;
* the 206 carries that same validator (the ``ETag``, else ``Last-Modified``): a server that
  ignores ``If-Range`` and sends bytes of a new version is caught here;
* its ``Content-Range: bytes START-END/TOTAL`` starts where the part ends, runs to the end,
  and TOTAL equals the stored total and the expected size, when known.

Anything else discards the part and starts over from byte 0. A 206 answered to a request
without ``Range`` is never taken for the whole file.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class Validator:
    """What identifies the version of the bytes in a part.

    Attributes:
        url: the URL they came from.
        etag: the strong ``ETag`` (weak ones cannot validate a byte range), or ``None``.
        last_modified: the ``Last-Modified`` header, or ``None``.
        total_bytes: the whole file's size as the server announced it, or ``None``.
    """

    url: str
    etag: str | None = None
    last_modified: str | None = None
    total_bytes: int | None = None

    @property
    def if_range(self) -> str | None:
        """The ``If-Range`` value to send, or ``None`` when there is nothing to validate."""
        return self.etag or self.last_modified

    @classmethod
    def of(cls, url: str, response: requests.Response, offset: int) -> Validator:
        """Return the validator of a 200 (``offset`` 0) or 206 response."""
        headers = response.headers
        etag = headers.get("ETag")
        total = content_range(headers.get("Content-Range"))
        length = headers.get("Content-Length", "")
        if total is not None:
            total_bytes: int | None = total[2]
        else:
            total_bytes = offset + int(length) if length.isdigit() else None
        return cls(url=url, etag=etag if etag and not etag.startswith("W/") else None,
                   last_modified=headers.get("Last-Modified"), total_bytes=total_bytes)


class PartFile:
    """``<target>.part`` and its sidecar; see the module docstring for the rule."""

    def __init__(self, target: Path) -> None:
        self.path = target.with_name(target.name + ".part")
        self.sidecar = target.with_name(f".{target.name}.part.json")

    def size(self) -> int:
        """The part's length in bytes (0 when there is none)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def load(self, url: str) -> Validator | None:
        """Return the stored validator when it is for ``url`` and can validate; else ``None``."""
        try:
            data = json.loads(self.sidecar.read_text(encoding="utf-8"))
            stored = Validator(**data) if isinstance(data, dict) else None
        except (OSError, ValueError, TypeError, RecursionError):
            return None
        if stored is None or stored.url != url or not stored.if_range:
            return None
        if not all(isinstance(v, (str, type(None))) for v in (stored.etag, stored.last_modified)):
            return None
        if stored.total_bytes is not None and type(stored.total_bytes) is not int:
            return None
        return stored

    def save(self, validator: Validator) -> None:
        """Write the sidecar atomically (before the part gets its first byte)."""
        tmp = self.sidecar.with_name(f"{self.sidecar.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(validator)), encoding="utf-8")
            os.replace(tmp, self.sidecar)
        finally:
            tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the part and its sidecar."""
        self.path.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)


def content_range(value: str | None) -> tuple[int, int, int] | None:
    """Parse ``Content-Range: bytes START-END/TOTAL``; ``None`` when absent or malformed.

    Example:
        >>> content_range("bytes 100-199/200")
        (100, 199, 200)
        >>> content_range("bytes */200") is None
        True
    """
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def resume_problem(
    stored: Validator, response: requests.Response, offset: int, expected_size: int | None
) -> str | None:
    """Return why a 206 must not be appended to a part of ``offset`` bytes, or ``None``."""
    headers = response.headers
    if stored.etag and headers.get("ETag") != stored.etag:
        return (f"the server sent ETag {headers.get('ETag')!r} but the part holds bytes of "
                f"ETag {stored.etag!r} (the file changed and If-Range was ignored)")
    if not stored.etag and headers.get("Last-Modified") != stored.last_modified:
        return (f"the server sent Last-Modified {headers.get('Last-Modified')!r} but the part "
                f"holds bytes of {stored.last_modified!r} (the file changed)")
    span = content_range(headers.get("Content-Range"))
    if span is None:
        return f"206 without a usable Content-Range ({headers.get('Content-Range')!r})"
    start, end, total = span
    totals = {total, *(t for t in (stored.total_bytes, expected_size) if t is not None)}
    if start != offset or end != total - 1 or len(totals) > 1:
        known = f"{stored.total_bytes}" if stored.total_bytes is not None else "unknown"
        return (f"206 with Content-Range {headers.get('Content-Range')!r} does not continue a "
                f"part of {offset:,} bytes of a {known}-byte file"
                + (f" ({expected_size:,} bytes expected)" if expected_size is not None else ""))
    return None
