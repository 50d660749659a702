"""Move one resource from an ordered list of URLs to a verified file on disk.

The bytes stream to ``<name>.part`` beside the target and are hashed in the same pass (see
:mod:`loaders.stream`); a verified file is fsynced once and renamed into place, so a
complete-looking file is always a verified file, and a file already at ``target`` stays until
a verified replacement is in hand. A leftover ``.part`` is resumed with ``Range`` +
``If-Range`` only under the rule of :mod:`loaders.partfile` (same validator, a
``Content-Range`` that continues the part exactly); a 200 starts over, a 416 re-verifies a
part against a known hash. Connection errors, timeouts, stalls (the stall rule of
:class:`~loaders.retry.RetryPolicy`), 429 and 5xx are retried with exponential backoff and
jitter (``Retry-After`` honoured); 403/404/410, a size or hash mismatch, an HTML page instead
of the data, an https→http redirect, a host name that does not resolve or an unreachable
network move on to the next URL at once (see :mod:`loaders.connection`). A URL may also be a
local path or ``file://`` URL (air-gapped mirrors): the file is copied and verified.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

from loaders.connection import NextUrl, Transient, Unreachable, open_url
from loaders.errors import ChecksumMismatchError, DownloadError, StorageError
from loaders.partfile import PartFile, Validator, resume_problem
from loaders.retry import RetryPolicy, retry_after_s, retry_argument
from loaders.stream import Sink, copy_file, copy_response
from loaders.verify import Expected, check_file, new_hashers, update_from_file

log = logging.getLogger(__name__)

_GONE = (403, 404, 410)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<!--")
USER_AGENT = "dataferry/0.1 (+https://github.com/dataferry/dataferry)"


def _sleep(seconds: float) -> None:  # patched by tests
    time.sleep(seconds)


def download(
    urls: Sequence[str],
    target: str | os.PathLike[str],
    *,
    expected: Expected | None = None,
    retry: RetryPolicy | None = None,
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
        retry: timeouts and retries (:class:`loaders.RetryPolicy`).
        policy: the old name of ``retry`` (deprecated).
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
        policy=retry_argument(retry, policy, "download") or RetryPolicy(),
        progress=progress,
        allow_html=allow_html,
        allow_recompressed=allow_recompressed,
    )
    if not urls:
        raise DownloadError(f"no URL to download {target.name} from; pass a URL, or a mirror (mirror= / --mirror)")
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
                raise StorageError.of(
                    f"could not write {target.name} in {target.parent}: {err}; check free space "
                    "and permissions there, or use another cache folder (root= / --root / "
                    "DATAFERRY_HOME); a partial download is kept and resumed next time", err
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
            f"folder and pass mirror=FOLDER / --mirror FOLDER (or set DATAFERRY_MIRROR), or "
            f"{place}; offline=True / --offline (DATAFERRY_OFFLINE=1) then never touches the "
            "network"
        )
    return (
        f"could not download {target.name} from any of its {len(failures)} URL(s): {tried}. "
        f"Check the network or proxy, try mirror=BASE / --mirror BASE with a copy of the file, or {place}"
    )


@dataclass
class _Job:
    target: Path
    expected: Expected
    policy: RetryPolicy
    progress: bool
    allow_html: bool
    allow_recompressed: bool

    def __post_init__(self) -> None:
        self.part = PartFile(self.target)

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
        offset, stored = self._resumable(url)
        headers = {"Accept-Encoding": "identity"}
        if stored is not None and stored.if_range:
            headers.update({"Range": f"bytes={offset}-", "If-Range": stored.if_range})
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
                self._check_206(response, offset, stored)
            elif status == 200:
                if offset:
                    log.info("%s ignored the Range request; starting over from byte 0", url)
                offset = 0
            else:
                raise NextUrl(f"unexpected HTTP {status} {response.reason}")
            if offset == 0:  # what the part's bytes are, stored before the first of them
                self.part.save(Validator.of(url, response, 0))
            return self._stream(response, offset)

    def _resumable(self, url: str) -> tuple[int, Validator | None]:
        """Return the usable ``.part`` length and its validator; (0, None) to start over."""
        offset = self.part.size()
        if not offset:
            return 0, None
        stored = self.part.load(url)
        size = self.expected.size_bytes
        too_long = size is not None and offset > size and not self.expected.content_sha256
        if stored is None or too_long:
            # No validator: the bytes on the server may have changed since; nothing to splice.
            log.info("%s: not resuming the %s-byte part (%s); starting over", self.target.name,
                     f"{offset:,}", "longer than the file" if too_long else "no validator for it")
            self.part.discard()
            return 0, None
        return offset, stored

    def _check_206(self, response: requests.Response, offset: int, stored: Validator | None) -> None:
        """Refuse a 206 that does not continue the part exactly (see :mod:`loaders.partfile`)."""
        span = response.headers.get("Content-Range")
        if not offset or stored is None:
            raise Transient(
                f"answered 206 Partial Content (Content-Range {span!r}) to a request for the "
                "whole file; a part is never taken for the whole file"
            )
        problem = resume_problem(stored, response, offset, self.expected.size_bytes)
        if problem:
            self.part.discard()
            raise Transient(f"{problem}; discarded the part, starting over")

    def _stream(self, response: requests.Response, offset: int) -> dict[str, str]:
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = offset + remaining if remaining is not None else None
        size = self.expected.size_bytes
        capped = size is not None and not self.expected.content_sha256
        if total is not None and capped and total != size:
            self.part.discard()
            raise NextUrl(f"the server announces {total:,} bytes but expected {size:,} bytes")
        hashers = new_hashers(self.expected)
        if offset:
            update_from_file(hashers, self.part.path)
        check = None if offset or self.allow_html else (lambda chunk: self._refuse_html(response, chunk))
        with self._open_part(hashers, append=bool(offset)) as (fd, sink), self._bar(total, offset) as bar:
            received = copy_response(
                response.raw, sink, self.policy, received_before=offset, first_chunk=check,
                progress=bar.update, limit=size - offset if capped and size is not None else None,
            )
            sink.finish()
            if capped and size is not None and offset + received > size:
                self.part.discard()
                raise NextUrl(f"sent more than the expected {size:,} bytes")
            _sync(fd)  # the one fsync, once every byte is written
        if remaining is not None and received != remaining:
            raise Transient(f"connection closed after {offset + received:,} of {total:,} bytes")
        return {name: hasher.hexdigest() for name, hasher in hashers.items()}

    @contextlib.contextmanager
    def _open_part(self, hashers: dict[str, Any], *, append: bool) -> Iterator[tuple[int, Sink]]:
        """Yield the part's descriptor and a :class:`~loaders.stream.Sink` writing to it."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(self.part.path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            sink = Sink(fd, self.part.path, hashers)
        except BaseException:
            os.close(fd)
            raise
        try:
            yield fd, sink
        finally:
            sink.stop()  # what was queued is written: a retry resumes after it
            os.close(fd)

    def _refuse_html(self, response: requests.Response, chunk: bytes) -> None:
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        head = chunk[:512].lstrip().lower()
        if kind == "text/html" or head.startswith(_HTML_STARTS):
            self.part.discard()
            raise NextUrl(
                f"served an HTML page (Content-Type {kind or 'unset'}) instead of "
                f"{self.target.name}: a login, error or captive-portal page"
            )

    def _recheck_part(self, response: requests.Response) -> dict[str, str]:
        # 416: the part may already hold the whole file (a crash between write and rename);
        # only a known hash can tell, a size alone could be another version's.
        size = self.part.size()
        if not self.expected.has_hash:
            self.part.discard()
            raise Transient(f"416 for bytes from {size:,} and no hash to check the part; starting over")
        log.info("%s: 416 for a complete-looking part; re-verifying it", self.target.name)
        try:
            sha256 = check_file(self.part.path, self.expected, name=self.target.name,
                                allow_recompressed=self.allow_recompressed)
        except ChecksumMismatchError as err:
            self.part.discard()  # a stale or corrupt part: the same URL may still serve it whole
            raise Transient(f"416 and the leftover part does not verify ({err}); starting over") from err
        return {"sha256": sha256}

    def _copy_local(self, source: Path) -> dict[str, str]:
        if not source.is_file():
            raise NextUrl(f"no such file {source}")
        self.part.discard()
        hashers = new_hashers(self.expected)
        with (
            open(source, "rb") as src,
            self._open_part(hashers, append=False) as (fd, sink),
            self._bar(source.stat().st_size, 0) as bar,
        ):
            copy_file(src, sink, self.policy.chunk_bytes, bar.update)
            sink.finish()
            _sync(fd)
        return {name: hasher.hexdigest() for name, hasher in hashers.items()}

    def _finish(self, digests: dict[str, str]) -> str:
        try:
            sha256 = check_file(
                self.part.path,
                self.expected,
                digests=digests,
                allow_recompressed=self.allow_recompressed,
                name=self.target.name,
            )
        except ChecksumMismatchError as err:
            self.part.discard()
            raise NextUrl(f"{err}. Deleted download for safety") from err
        os.replace(self.part.path, self.target)
        self.part.sidecar.unlink(missing_ok=True)
        return sha256

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


def _sync(fd: int) -> None:
    os.fsync(fd)


def _is_local(url: str) -> bool:
    scheme = urlparse(url).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)
