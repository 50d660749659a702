"""A static file server on 127.0.0.1 with one bandwidth cap for all connections (token bucket).

Serves a folder read-only (GET and HEAD, ``Range: bytes=N-``), counts requests and body bytes
per top-level folder, and shares one token bucket of ``rate_bytes_s`` between every connection,
so the benchmark's network is a real, bounded constraint whichever client reads it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

_CHUNK = 256 * 1024


class TokenBucket:
    """``take(n)`` blocks until ``n`` bytes may pass at ``rate`` bytes/s (burst: 1/20 s)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate / 20, _CHUNK)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= n:
                    self.tokens -= n
                    return
                wait = (n - self.tokens) / self.rate
            time.sleep(wait)


class CappedServer:
    """Serve ``root`` at ``http://127.0.0.1:PORT/``; ``stats`` counts per first path segment."""

    def __init__(self, root: Path, rate_bytes_s: float) -> None:
        self.root = root.resolve()
        self.bucket = TokenBucket(rate_bytes_s)
        self.requests: Counter[str] = Counter()
        self.body_bytes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> CappedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path: str, requests: int, body: int) -> None:
        top = path.strip("/").split("/")[0]
        with self.lock:
            self.requests[top] += requests
            self.body_bytes[top] += body


def _handler(server: CappedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _file(self) -> Path | None:
            path = (server.root / unquote(urlparse(self.path).path).lstrip("/")).resolve()
            if server.root not in path.parents or not path.is_file():
                return None
            return path

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(body=True)

        def _serve(self, *, body: bool) -> None:
            server.count(self.path, 1, 0)
            path = self._file()
            if path is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            size = path.stat().st_size
            wanted = self.headers.get("Range", "")
            start = int(wanted[6:].partition("-")[0] or 0) if wanted.startswith("bytes=") else 0
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(size - start))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            if body:
                self._send(path, start)

        def _send(self, path: Path, start: int) -> None:
            with open(path, "rb") as handle:
                handle.seek(start)
                while chunk := handle.read(_CHUNK):
                    server.bucket.take(len(chunk))
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    server.count(self.path, 0, len(chunk))

    return Handler
