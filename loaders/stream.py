"""Copy bytes into a ``.part`` file: socket reads on one core, writing and hashing on the other.

Where the time of a loopback download went (200 MB, ``benchmarks/bench_download.py``): the
old loop read 1 MiB, wrote it, queued it to a hashing thread and fdatasync'ed every 32 MiB,
so reading, writing and syncing took turns on the calling thread. Here the calling thread
only reads: ``read1`` returns what has arrived (one ``recv`` of up to ``chunk_bytes``), and
batches of about ``chunk_bytes`` go to a :class:`Sink` thread that writes them with one
``os.writev`` and feeds the hashers. ``recv``, ``writev`` and ``hashlib`` (on buffers over
2 KiB) all release the GIL, so the socket, the page cache and sha256 keep both cores busy.
Each chunk is copied once from the socket and once into the page cache; nothing is fsynced
here: the caller syncs once, at the end. The bytes are kept as sent: we ask for
``Accept-Encoding: identity``, and a server that still answers ``Content-Encoding: gzip`` is
nearly always one that labels a ``.gz`` file so (its bytes are the file the hash is of).

The stall rule: while bytes arrive, fewer than ``RetryPolicy.stall_bytes`` within any
``RetryPolicy.stall_window_s`` (default 1 KiB in 30 s) ends the attempt as a
:class:`~loaders.connection.Transient` failure, so a server that trickles one byte a second
(which no read timeout catches) is retried with ``Range`` like a dropped connection. A server
that sends nothing at all is caught by the read timeout instead.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import requests
import urllib3

from loaders.connection import Transient
from loaders.retry import RetryPolicy

log = logging.getLogger(__name__)

READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
_DEPTH = 4  # batches queued for the sink: enough to ride out a slow write, little memory
# Where the writes happen: on the sink thread with the hashing (measured faster on a loaded
# 2-core machine: 0.32 vs 0.45 s best, 0.45 vs 0.64 s median for 100 MB), or on the reading
# thread. benchmarks/bench_download.py times both, so a quiet machine can settle it.
WRITE_ON_SINK_THREAD = True


class Sink:
    """Write and hash batches of chunks on a thread; a write error comes back to the caller.

    Args:
        fd: the open file descriptor to append to.
        path: the file's path, for error messages.
        hashers: the hash objects to feed (see :func:`loaders.verify.new_hashers`).
        write_on_thread: write on the sink thread (default :data:`WRITE_ON_SINK_THREAD`);
            otherwise :meth:`put` writes in the caller's thread and the sink only hashes.
    """

    def __init__(
        self,
        fd: int,
        path: str | os.PathLike[str],
        hashers: dict[str, Any],
        *,
        write_on_thread: bool | None = None,
    ) -> None:
        self._fd, self._path = fd, os.fspath(path)
        self._write_on_thread = WRITE_ON_SINK_THREAD if write_on_thread is None else write_on_thread
        self._hashers = list(hashers.values())
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=_DEPTH)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="dataferry-sink", daemon=True)
        self._thread.start()

    def put(self, batch: list[bytes]) -> None:
        """Queue ``batch`` (immutable chunks) to be written and hashed, in order.

        Raises:
            OSError: an earlier write failed (disk full…); the message names the file.
        """
        if self._error is not None:
            raise self._error
        if not self._write_on_thread:
            self._write(batch)
            if self._error is not None:
                raise self._error
        self._queue.put(batch)

    def finish(self) -> None:
        """Wait until every queued batch is written and hashed; raise a write error, if any."""
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop the thread after it has handled what is queued (idempotent, never raises)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the caller learns of the error at its next put()
            if self._write_on_thread and not self._write(batch):
                continue
            for hasher in self._hashers:
                for chunk in batch:
                    hasher.update(chunk)

    def _write(self, batch: list[bytes]) -> bool:
        """Append ``batch``; on failure keep the error (naming the file) and return False."""
        try:
            _write_all(self._fd, batch)
        except OSError as err:
            self._error = OSError(err.errno, err.strerror or str(err), self._path)
            return False
        return True


def _write_all(fd: int, chunks: list[bytes]) -> None:
    written = os.writev(fd, chunks) if len(chunks) > 1 else os.write(fd, chunks[0])
    total = sum(len(chunk) for chunk in chunks)
    if written < total:  # rare (a signal, a nearly full disk): write the rest plainly
        view = memoryview(b"".join(chunks))[written:]
        while view:
            view = view[os.write(fd, view):]


class Stall:
    """The stall rule: at least ``stall_bytes`` must arrive within every ``stall_window_s``."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_bytes, self.window_s, self._clock = policy.stall_bytes, policy.stall_window_s, clock
        self._since, self._bytes = clock(), 0

    def add(self, count: int, received: int) -> None:
        """Count ``count`` new bytes (``received`` so far, for the message).

        Raises:
            Transient: fewer than ``min_bytes`` arrived over the last window.
        """
        self._bytes += count
        now = self._clock()
        if now - self._since < self.window_s:
            return
        if self._bytes < self.min_bytes:
            raise Transient(
                f"stalled after {received:,} bytes: only {self._bytes:,} bytes in "
                f"{round(now - self._since, 1):g} s (the stall rule wants {self.min_bytes:,} bytes per "
                f"{self.window_s:g} s, see RetryPolicy.stall_bytes/stall_window_s)"
            )
        self._since, self._bytes = now, 0


def copy_response(
    raw: urllib3.response.BaseHTTPResponse,
    sink: Sink,
    policy: RetryPolicy,
    *,
    received_before: int = 0,
    first_chunk: Callable[[bytes], None] | None = None,
    progress: Callable[[int], None] | None = None,
    limit: int | None = None,
) -> int:
    """Read the body of ``raw`` (bytes as sent: no content decoding) into ``sink``.

    Args:
        raw: ``requests.Response.raw``.
        sink: where the bytes go.
        policy: ``chunk_bytes`` and the stall rule.
        received_before: bytes already in the file (for messages).
        first_chunk: called with the first chunk before it is written (may raise).
        progress: called with each chunk's length.
        limit: the most body bytes acceptable; one more ends the copy early (the caller
            compares the count it gets back).

    Returns:
        How many body bytes were read.

    Raises:
        Transient: the connection broke or stalled.
        OSError: a write failed; the message names the file.
    """
    stall = Stall(policy)
    batch: list[bytes] = []
    batched = received = 0
    try:
        while True:
            try:
                chunk = raw.read1(policy.chunk_bytes, decode_content=False)
            except READ_ERRORS as err:
                raise Transient(
                    f"connection lost after {received_before + received:,} bytes: {err}"
                ) from err
            if not chunk:
                break
            if received == 0 and first_chunk is not None:
                first_chunk(chunk)
            received += len(chunk)
            batch.append(chunk)
            batched += len(chunk)
            if batched >= policy.chunk_bytes:
                sink.put(batch)
                batch, batched = [], 0
            if progress is not None:
                progress(len(chunk))
            if limit is not None and received > limit:
                break
            stall.add(len(chunk), received_before + received)
    except (Transient, KeyboardInterrupt):
        if batch:  # keep what arrived: the retry, or the same command run again, resumes after it
            sink.put(batch)
        raise
    if batch:
        sink.put(batch)
    return received


def copy_file(source: IO[bytes], sink: Sink, chunk_bytes: int, progress: Callable[[int], None]) -> int:
    """Copy an open local file into ``sink``; return the byte count."""
    copied = 0
    while chunk := source.read(chunk_bytes):
        sink.put([chunk])
        copied += len(chunk)
        progress(len(chunk))
    return copied


__all__ = ["READ_ERRORS", "WRITE_ON_SINK_THREAD", "Sink", "Stall", "copy_file", "copy_response"]
