"""Move one resource from an ordered list of URLs to a verified file on disk.

The bytes stream to ``<name>.part`` beside the target and are hashed in the same pass; a
verified file is fsynced and renamed into place, so a complete-looking file is always a verified
file. A leftover ``.part`` is resumed with ``Range`` + ``If-Range``; only a 206 whose
``Content-Range`` starts where the part ends is appended, a 200 starts over, a 416 re-verifies
the part. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and
jitter (``Retry-After`` honoured); 403/404/410, a size or hash mismatch, an HTML page instead
of the data, an https→http redirect, a host name that does not resolve or an unreachable
network move on to the next URL at once (see :mod:`loaders.connection`). A URL may also be a
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
from urllib.parse import unquote, urlparse

import requests
import urllib3
from tqdm import tqdm

from loaders.connection import NextUrl, Transient, Unreachable, open_url
from loaders.errors import ChecksumMismatchError, DownloadError
from loaders.retry import RetryPolicy, retry_after_s
from loaders.verify import Expected, check_file, stream_hasher

log = logging.getLogger(__name__)

_GONE = (403, 404, 410)
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<!--")
USER_AGENT = "dataferry/0.1 (+https://github.com/dataferry/dataferry)"


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
    failures: list[tuple[str, NextUrl]] = []
    own_session = session is None
    session = session or requests.Session()
    session.headers.setdefault("User-Agent", USER_AGENT)
    try:
        for number, url in enumerate(urls, 1):
            try:
                return job.run(url, session)
            except NextUrl as failure:
                failures.append((url, failure))
                if number < len(urls):  # the last one's reason is in the final error
                    log.warning("%s failed: %s; trying the next URL", url, failure)
            except OSError as err:  # the local disk, not the server: another URL will not help
                raise DownloadError(
                    f"could not write {target.name} in {target.parent}: {err}; check free space "
                    "and permissions there, or use another cache folder (--root / DATAFERRY_HOME)"
                ) from err
    finally:
        if own_session:
            session.close()
    raise DownloadError(_failure_message(target, job.expected, failures))


def _failure_message(target: Path, expected: Expected, failures: list[tuple[str, NextUrl]]) -> str:
    """Name every URL tried and why it failed, then what to do next."""
    tried = "; ".join(f"{url} ({failure})" for url, failure in failures)
    place = f"place the file at {target} ({expected.describe()})"
    if all(_is_local(url) for url, _ in failures):
        return (
            f"could not copy {target.name} from the mirror folder: {tried}. Put the file "
            f"there, or {place}"
        )
    if all(isinstance(failure, Unreachable) for _, failure in failures):
        return (
            f"could not download {target.name}: no network, none of its {len(failures)} URL(s) "
            f"could be reached: {tried}. This machine looks offline: copy the file into a "
            f"folder and pass --mirror FOLDER (or set DATAFERRY_MIRROR), or {place}; "
            "--offline (DATAFERRY_OFFLINE=1) then never touches the network"
        )
    return (
        f"could not download {target.name} from any of its {len(failures)} URL(s): {tried}. "
        f"Check the network or proxy, try --mirror BASE with a copy of the file, or {place}"
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
            except Transient as failure:
                if attempt == attempts - 1:
                    raise NextUrl(f"{failure}; gave up after {attempts} attempts") from failure
                delay = self.policy.backoff(attempt, failure.retry_after_s)
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s", url, failure, attempt + 1, attempts - 1, delay
                )
                _sleep(delay)
        raise NextUrl("no attempt made")  # attempts < 1

    def _attempt(self, url: str, session: requests.Session) -> dict[str, str]:
        offset, headers = self._resume_headers(url)
        response = open_url(session, url, headers, self.policy)
        with response:
            status = response.status_code
            if status == 416 and offset:
                return self._recheck_part(response)
            if status in _GONE:
                raise NextUrl(f"HTTP {status} {response.reason}")
            if status == 429 or status >= 500:
                raise Transient(
                    f"HTTP {status} {response.reason}",
                    retry_after_s(response.headers.get("Retry-After")),
                )
            if status == 206:
                start = _content_range_start(response.headers.get("Content-Range"))
                if start != offset:
                    self._discard()
                    raise Transient(
                        f"206 with Content-Range {response.headers.get('Content-Range')!r} "
                        f"but asked for bytes from {offset}; starting over"
                    )
            elif status == 200:
                if offset:
                    log.info("%s ignored the Range request; starting over from byte 0", url)
                offset = 0
            else:
                raise NextUrl(f"unexpected HTTP {status} {response.reason}")
            self._save_validator(url, response)
            return self._stream(response, offset)

    def _resume_headers(self, url: str) -> tuple[int, dict[str, str]]:
        """Return where to start (the usable ``.part`` length) and the request headers."""
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
        return offset, headers

    def _stream(self, response: requests.Response, offset: int) -> dict[str, str]:
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = offset + remaining if remaining is not None else None
        size = self.expected.size_bytes
        if total is not None and size is not None and total != size and not self.expected.content_sha256:
            self._discard()
            raise NextUrl(f"the server announces {total:,} bytes but expected {size:,} bytes")
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
                    raise Transient(f"connection lost after {offset + received:,} bytes: {err}") from err
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
                    raise NextUrl(f"sent more than the expected {size:,} bytes")
            _sync(handle)
            digests = hasher.hexdigests()
        if remaining is not None and received != remaining:
            raise Transient(f"connection closed after {offset + received:,} of {total:,} bytes")
        return digests

    def _refuse_html(self, response: requests.Response, chunk: bytes) -> None:
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        head = chunk[:512].lstrip().lower()
        if kind == "text/html" or head.startswith(_HTML_STARTS):
            self._discard()
            raise NextUrl(
                f"served an HTML page (Content-Type {kind or 'unset'}) instead of "
                f"{self.target.name}: a login, error or captive-portal page"
            )

    def _recheck_part(self, response: requests.Response) -> dict[str, str]:
        # 416: the part may already hold the whole file (a crash between write and rename).
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        size = self.part.stat().st_size
        if not self.expected.has_hash and not (total.isdigit() and int(total) == size):
            self._discard()
            raise Transient(f"416 for bytes from {size:,}; starting over")
        log.info("%s: 416 for a complete-looking part; re-verifying it", self.target.name)
        try:
            sha256 = check_file(self.part, self.expected, name=self.target.name,
                                allow_recompressed=self.allow_recompressed)
        except ChecksumMismatchError as err:
            self._discard()  # a stale or corrupt part: the same URL may still serve it whole
            raise Transient(f"416 and the leftover part does not verify ({err}); starting over") from err
        return {"sha256": sha256}

    def _copy_local(self, source: Path) -> dict[str, str]:
        if not source.is_file():
            raise NextUrl(f"no such file {source}")
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
            raise NextUrl(f"{err}. Deleted download for safety") from err
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
