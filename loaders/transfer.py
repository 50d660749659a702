"""Move one resource from an ordered list of URLs to a verified file on disk.

The bytes stream to ``<name>.part`` beside the target and are hashed in the same pass; a
verified file is fsynced and renamed into place, so a complete-looking file is always a verified
file. A leftover ``.part`` is resumed with ``Range`` + ``If-Range``; only a 206 whose
``Content-Range`` starts where the part ends is appended, a 200 starts over, a 416 re-verifies
the part. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and
jitter (``Retry-After`` honoured); 403/404/410, a size or hash mismatch, an HTML page instead
of the data, or an https→http redirect move on to the next URL at once. A URL may also be a
local path or ``file://`` URL (air-gapped mirrors): the file is copied and verified.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import requests
import urllib3
from tqdm import tqdm

from loaders.errors import ChecksumMismatchError, DownloadError
from loaders.retry import RetryPolicy, retry_after_s
from loaders.verify import Expected, check_file, stream_hasher

log = logging.getLogger(__name__)

_GONE = (403, 404, 410)
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<!--")
USER_AGENT = "dataferry/0.1 (+https://github.com/dataferry/dataferry)"


class _NextUrl(Exception):
    """This URL cannot give the file: try the next one at once."""


class _Transient(Exception):
    """A failure worth retrying on the same URL."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def _sleep(seconds: float) -> None:  # patched by tests
    time.sleep(seconds)


def download(
    urls: Sequence[str],
    target: str | os.PathLike[str],
    *,
    expected: Expected | None = None,
    policy: RetryPolicy | None = None,
    progress: bool = False,
    session: requests.Session | None = None,
    allow_html: bool = False,
    allow_recompressed: bool = True,
) -> str:
    """Download ``target`` from the first URL that gives a verified file; return its sha256.

    Args:
        urls: http(s) URLs, ``file://`` URLs or local paths, tried in order.
        target: the final path; ``<target>.part`` is written beside it.
        expected: size and hashes to verify (nothing known: any file is accepted).
        policy: timeouts and retries.
        progress: show a tqdm bytes bar on stderr.
        session: a ``requests.Session`` to reuse.
        allow_html: accept an HTML page (for plain URLs that really are web pages).
        allow_recompressed: see :func:`loaders.verify.check_file`.

    Returns:
        The sha256 of the verified file, now at ``target``.

    Raises:
        DownloadError: no URL gave a verified file; the message lists each URL and why.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    job = _Job(
        target=target,
        expected=expected or Expected(),
        policy=policy or RetryPolicy(),
        progress=progress,
        allow_html=allow_html,
        allow_recompressed=allow_recompressed,
    )
    if not urls:
        raise DownloadError(f"no URL to download {target.name} from; pass a URL or a --mirror")
    failures: list[str] = []
    own_session = session is None
    session = session or requests.Session()
    session.headers.setdefault("User-Agent", USER_AGENT)
    try:
        for url in urls:
            try:
                return job.run(url, session)
            except _NextUrl as failure:
                log.warning("%s failed: %s", url, failure)
                failures.append(f"{url} ({failure})")
            except OSError as err:  # the local disk, not the server: another URL will not help
                raise DownloadError(
                    f"could not write {target.name} in {target.parent}: {err}; check free space "
                    "and permissions there, or use another cache folder (--root / DATAFERRY_HOME)"
                ) from err
    finally:
        if own_session:
            session.close()
    raise DownloadError(
        f"could not download {target.name} from any of its {len(urls)} URL(s): "
        + "; ".join(failures)
        + f". Check the network or proxy, try --mirror BASE with a copy of the file, "
        f"or place the file at {target} ({job.expected.describe()})"
    )


@dataclass
class _Job:
    target: Path
    expected: Expected
    policy: RetryPolicy
    progress: bool
    allow_html: bool
    allow_recompressed: bool

    @property
    def part(self) -> Path:
        return self.target.with_name(self.target.name + ".part")

    @property
    def meta(self) -> Path:
        return self.target.with_name(f".{self.target.name}.part.json")

    def run(self, url: str, session: requests.Session) -> str:
        if _is_local(url):
            digests = self._copy_local(_local_path(url))
        else:
            digests = self._fetch_with_retries(url, session)
        return self._finish(digests)

    def _fetch_with_retries(self, url: str, session: requests.Session) -> dict[str, str]:
        attempts = self.policy.attempts
        for attempt in range(attempts):
            try:
                return self._attempt(url, session)
            except _Transient as failure:
                if attempt == attempts - 1:
                    raise _NextUrl(f"{failure}; gave up after {attempts} attempts") from failure
                delay = self.policy.backoff(attempt, failure.retry_after_s)
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s", url, failure, attempt + 1, attempts - 1, delay
                )
                _sleep(delay)
        raise _NextUrl("no attempt made")  # attempts < 1

    def _attempt(self, url: str, session: requests.Session) -> dict[str, str]:
        offset = self.part.stat().st_size if self.part.exists() else 0
        size = self.expected.size_bytes
        if offset and size is not None and offset > size and not self.expected.content_sha256:
            self._discard()  # longer than the whole file: nothing in it can be trusted
            offset = 0
        validator = self._validator(url) if offset else None
        headers = {"Accept-Encoding": "identity"}
        if offset and (validator or self.expected.has_hash):
            # Without a validator a changed file could be spliced; the final hash catches it.
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        elif offset:
            offset = 0
        response = _open(session, url, headers, self.policy)
        with response:
            status = response.status_code
            if status == 416 and offset:
                return self._recheck_part(response)
            if status in _GONE:
                raise _NextUrl(f"HTTP {status} {response.reason}")
            if status == 429 or status >= 500:
                raise _Transient(
                    f"HTTP {status} {response.reason}",
                    retry_after_s(response.headers.get("Retry-After")),
                )
            if status == 206:
                start = _content_range_start(response.headers.get("Content-Range"))
                if start != offset:
                    self._discard()
                    raise _Transient(
                        f"206 with Content-Range {response.headers.get('Content-Range')!r} "
                        f"but asked for bytes from {offset}; starting over"
                    )
            elif status == 200:
                if offset:
                    log.info("%s ignored the Range request; starting over from byte 0", url)
                offset = 0
            else:
                raise _NextUrl(f"unexpected HTTP {status} {response.reason}")
            self._save_validator(url, response)
            return self._stream(response, offset)

    def _stream(self, response: requests.Response, offset: int) -> dict[str, str]:
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = offset + remaining if remaining is not None else None
        size = self.expected.size_bytes
        if total is not None and size is not None and total != size and not self.expected.content_sha256:
            self._discard()
            raise _NextUrl(f"the server announces {total:,} bytes but expected {size:,} bytes")
        received = 0
        with (
            open(self.part, "ab" if offset else "wb") as handle,
            stream_hasher(self.expected, sync_fd=handle.fileno()) as hasher,  # stops first
            self._bar(total, offset) as bar,
        ):
            if offset:
                hasher.update_from_file(self.part)
            while True:
                try:
                    chunk = response.raw.read(self.policy.chunk_bytes, decode_content=False)
                except _READ_ERRORS as err:
                    _sync(handle)
                    raise _Transient(f"connection lost after {offset + received:,} bytes: {err}") from err
                if not chunk:
                    break
                if received == 0 and offset == 0 and not self.allow_html:
                    self._refuse_html(response, chunk)
                handle.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                if size is not None and offset + received > size and not self.expected.content_sha256:
                    hasher.close()
                    handle.close()
                    self._discard()
                    raise _NextUrl(f"sent more than the expected {size:,} bytes")
            _sync(handle)
            digests = hasher.hexdigests()
        if remaining is not None and received != remaining:
            raise _Transient(f"connection closed after {offset + received:,} of {total:,} bytes")
        return digests

    def _refuse_html(self, response: requests.Response, chunk: bytes) -> None:
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        head = chunk[:512].lstrip().lower()
        if kind == "text/html" or head.startswith(_HTML_STARTS):
            self._discard()
            raise _NextUrl(
                f"served an HTML page (Content-Type {kind or 'unset'}) instead of "
                f"{self.target.name}: a login, error or captive-portal page"
            )

    def _recheck_part(self, response: requests.Response) -> dict[str, str]:
        # 416: the part may already hold the whole file (a crash between write and rename).
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        size = self.part.stat().st_size
        if not self.expected.has_hash and not (total.isdigit() and int(total) == size):
            self._discard()
            raise _Transient(f"416 for bytes from {size:,}; starting over")
        log.info("%s: 416 for a complete-looking part; re-verifying it", self.target.name)
        try:
            sha256 = check_file(self.part, self.expected, name=self.target.name,
                                allow_recompressed=self.allow_recompressed)
        except ChecksumMismatchError as err:
            self._discard()  # a stale or corrupt part: the same URL may still serve it whole
            raise _Transient(f"416 and the leftover part does not verify ({err}); starting over") from err
        return {"sha256": sha256}

    def _copy_local(self, source: Path) -> dict[str, str]:
        if not source.is_file():
            raise _NextUrl(f"no such file {source}")
        size = source.stat().st_size
        with (
            open(source, "rb") as src,
            open(self.part, "wb") as dst,
            stream_hasher(self.expected, sync_fd=dst.fileno()) as hasher,  # stops first
            self._bar(size, 0) as bar,
        ):
            while chunk := src.read(self.policy.chunk_bytes):
                dst.write(chunk)
                hasher.update(chunk)
                bar.update(len(chunk))
            _sync(dst)
            return hasher.hexdigests()

    def _finish(self, digests: dict[str, str]) -> str:
        try:
            sha256 = check_file(
                self.part,
                self.expected,
                digests=digests,
                allow_recompressed=self.allow_recompressed,
                name=self.target.name,
            )
        except ChecksumMismatchError as err:
            self._discard()
            raise _NextUrl(f"{err}. Deleted download for safety") from err
        os.replace(self.part, self.target)
        self.meta.unlink(missing_ok=True)
        return sha256

    def _discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)

    def _validator(self, url: str) -> str | None:
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("url") != url:
            return None
        return meta.get("etag") or meta.get("last_modified")

    def _save_validator(self, url: str, response: requests.Response) -> None:
        etag = response.headers.get("ETag")
        strong_etag = etag if etag and not etag.startswith("W/") else None  # If-Range needs strong
        meta = {"url": url, "etag": strong_etag, "last_modified": response.headers.get("Last-Modified")}
        self.meta.write_text(json.dumps(meta), encoding="utf-8")

    def _bar(self, total: int | None, initial: int) -> tqdm:
        return tqdm(
            total=total,
            initial=initial,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=self.target.name,
            file=sys.stderr,
            disable=not self.progress,
            leave=False,
        )


def _open(
    session: requests.Session, url: str, headers: dict[str, str], policy: RetryPolicy
) -> requests.Response:
    """GET with redirects followed by hand, refusing any https→http downgrade."""
    for _ in range(10):
        try:
            response = session.get(
                url,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=(policy.connect_timeout_s, policy.read_timeout_s),
            )
        except requests.exceptions.SSLError as err:  # a bad certificate will not heal by retrying
            raise _NextUrl(f"TLS error: {err}") from err
        except (requests.ConnectionError, requests.Timeout) as err:
            raise _Transient(f"{type(err).__name__}: {err}") from err
        except requests.RequestException as err:
            raise _NextUrl(f"{type(err).__name__}: {err}") from err
        if not response.is_redirect:
            return response
        location = urljoin(url, response.headers["Location"])
        response.close()
        if urlparse(url).scheme == "https" and urlparse(location).scheme != "https":
            raise _NextUrl(f"refused a redirect from https to {location} (no downgrade to http)")
        url = location
    raise _NextUrl("more than 10 redirects")


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200"
    if not value or not value.startswith("bytes "):
        return None
    first = value[6:].partition("-")[0]
    return int(first) if first.isdigit() else None


def _sync(handle: object) -> None:
    handle.flush()  # type: ignore[attr-defined]
    os.fsync(handle.fileno())  # type: ignore[attr-defined]


def _is_local(url: str) -> bool:
    scheme = urlparse(url).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)
