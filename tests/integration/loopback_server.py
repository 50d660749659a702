"""A real HTTP server on 127.0.0.1 that misbehaves on purpose, for download tests and benchmarks.

Each path is served from memory (or a file) with a :class:`Behaviour`: answer some statuses
first (503 with Retry-After…), reset the connection after N body bytes, ignore ``Range``, send
wrong bytes, or send slowly. The server counts the requests and the body bytes it sent per path,
so a test can assert that a resume re-fetched only the rest.

Usage::

    with LoopbackServer() as server:
        url = server.serve("/data.bin", payload, reset_after=[100_000])
        ...
        assert server.stats("/data.bin").body_bytes == len(payload)
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass
class Behaviour:
    """How one path is served.

    Attributes:
        data: the body (ignored when ``file`` is set).
        file: serve this file instead of ``data`` (for big benchmark payloads).
        statuses: statuses to answer first, one per request, before serving normally.
        retry_after: the ``Retry-After`` value sent with those statuses.
        reset_after: for the next requests, one entry each: close the connection after that
            many body bytes (the full Content-Length is announced).
        ignore_range: always answer 200 with the whole body.
        ignore_if_range: honour ``Range`` even when ``If-Range`` names another version (a
            broken server or cache: it splices versions unless the client checks the ETag).
        wrong_bytes: flip one byte in the middle of the body.
        chunk_bytes: the write size.
        delay_s: sleep this long after each write (a slow server).
        etag: the strong ETag (also checked against If-Range).
        content_type: the Content-Type header.
    """

    data: bytes = b""
    file: Path | None = None
    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    reset_after: list[int] = field(default_factory=list)
    ignore_range: bool = False
    ignore_if_range: bool = False
    wrong_bytes: bool = False
    chunk_bytes: int = 64 * 1024
    delay_s: float = 0.0
    etag: str | None = None
    content_type: str = "application/octet-stream"

    def size(self) -> int:
        return self.file.stat().st_size if self.file else len(self.data)


@dataclass
class Stats:
    """What the server did for one path."""

    requests: int = 0
    body_bytes: int = 0
    ranges: list[str | None] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


class LoopbackServer:
    """A ``ThreadingHTTPServer`` on ``127.0.0.1:0`` in a daemon thread."""

    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self._stats: dict[str, Stats] = {}
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        assert isinstance(host, str)  # AF_INET: the stubs also allow bytes for AF_UNIX
        return f"http://{host}:{port}"

    def serve(self, path: str, data: bytes = b"", **behaviour: object) -> str:
        """Serve ``data`` at ``path`` with the given :class:`Behaviour` fields; return the URL."""
        if not path.startswith("/"):
            raise ValueError(f"path should start with '/', but got path={path!r}")
        with self._lock:
            fields = {"etag": '"' + hashlib.sha256(data).hexdigest()[:16] + '"'}
            fields.update(behaviour)  # type: ignore[arg-type]
            self.behaviours[path] = Behaviour(data=data, **fields)  # type: ignore[arg-type]
            self._stats[path] = Stats()
        return self.base_url + path

    def stats(self, path: str) -> Stats:
        with self._lock:
            return self._stats.setdefault(path, Stats())

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("loopback: " + format, *args)

        def do_GET(self) -> None:  # noqa: N802
            with server._lock:
                behaviour = server.behaviours.get(self.path)
                stats = server._stats.setdefault(self.path, Stats())
                stats.requests += 1
                stats.ranges.append(self.headers.get("Range"))
                status = behaviour.statuses.pop(0) if behaviour and behaviour.statuses else None
                reset = behaviour.reset_after.pop(0) if behaviour and behaviour.reset_after else None
            if behaviour is None:
                return self._answer(404, stats)
            if status is not None:
                return self._answer(status, stats, behaviour.retry_after)
            self._send_body(behaviour, stats, reset)

        def _answer(self, status: int, stats: Stats, retry_after: str | None = None) -> None:
            stats.statuses.append(status)
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send_body(self, behaviour: Behaviour, stats: Stats, reset: int | None) -> None:
            size = behaviour.size()
            start = self._range_start(behaviour, size)
            if start is not None and start >= size:
                stats.statuses.append(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            first = start or 0
            status = 206 if start is not None else 200
            stats.statuses.append(status)
            self.send_response(status)
            self.send_header("Content-Type", behaviour.content_type)
            self.send_header("Content-Length", str(size - first))
            if behaviour.etag:
                self.send_header("ETag", behaviour.etag)
            self.send_header("Last-Modified", email.utils.formatdate(0, usegmt=True))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {first}-{size - 1}/{size}")
            self.end_headers()
            limit = size if reset is None else min(size, first + reset)
            self._write_range(behaviour, stats, first, limit)
            if reset is not None:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)  # SHUT_RDWR: the client sees a short body

        def _range_start(self, behaviour: Behaviour, size: int) -> int | None:
            wanted = self.headers.get("Range")
            if not wanted or behaviour.ignore_range or not wanted.startswith("bytes="):
                return None
            if_range = self.headers.get("If-Range")
            if if_range and not behaviour.ignore_if_range and if_range not in (behaviour.etag, email.utils.formatdate(0, usegmt=True)):
                return None
            first = wanted[6:].partition("-")[0]
            return int(first) if first.isdigit() else None

        def _write_range(self, behaviour: Behaviour, stats: Stats, first: int, limit: int) -> None:
            handle = open(behaviour.file, "rb") if behaviour.file else None  # noqa: SIM115
            try:
                if handle and not (behaviour.wrong_bytes or behaviour.delay_s):
                    # Zero-copy for benchmarks, so that the server is not the bottleneck.
                    try:
                        sent = self.connection.sendfile(handle, offset=first, count=limit - first)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True
                        return
                    with server._lock:
                        stats.body_bytes += sent
                    return
                if handle:
                    handle.seek(first)
                middle = behaviour.size() // 2
                offset = first
                while offset < limit:
                    n = min(behaviour.chunk_bytes, limit - offset)
                    if handle:
                        chunk = handle.read(n)
                    else:
                        chunk = behaviour.data[offset:offset + n]
                    if behaviour.wrong_bytes and offset <= middle < offset + n:
                        i = middle - offset
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True
                        return
                    offset += n
                    with server._lock:
                        stats.body_bytes += n
                    if behaviour.delay_s:
                        time.sleep(behaviour.delay_s)
            finally:
                if handle:
                    handle.close()

    return Handler


def payload(size: int, seed: int = 0) -> bytes:
    """Return ``size`` deterministic pseudo-random bytes (incompressible, unlike zeros)."""
    return random.Random(seed).randbytes(size)
