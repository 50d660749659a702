"""Benchmark: ``loaders.fetch`` (streaming + sha256) against curl and a bare requests copy loop.

A ~200 MB incompressible file is generated in a temporary folder and served from a loopback
``ThreadingHTTPServer`` (zero-copy ``sendfile``); each client downloads it ``--repeat`` times
and the best run counts (clients run round-robin). Target: ours >= 0.9x curl.

    python benchmarks/bench_download.py            # 200 MB, best of 5, round-robin
    python benchmarks/bench_download.py --quick    # 50 MB, best of 2
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO))
from loopback_server import LoopbackServer  # noqa: E402

from benchmarks.report import add_json_flag, emit, figure  # noqa: E402
from loaders import RetryPolicy, fetch, verify  # noqa: E402

log = logging.getLogger(__name__)


def _make_file(path: Path, size: int) -> str:
    rng = random.Random(0)
    hasher = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = rng.randbytes(min(left, 8 << 20))
            handle.write(block)
            hasher.update(block)
            left -= len(block)
    return hasher.hexdigest()


def _curl(url: str, out: Path) -> None:
    subprocess.run(["curl", "-sS", "--fail", "-o", str(out), url], check=True)


def _bare_requests(url: str, out: Path) -> None:
    with requests.get(url, stream=True, timeout=(10, 60)) as response, open(out, "wb") as handle:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            handle.write(chunk)


def _ours_client(
    url: str, home: Path, sha256: str, chunk_bytes: int, threaded: bool
) -> Callable[[Path], None]:
    """Return a client for ``_best_interleaved``: our fetch (it picks its own target)."""
    return lambda out: _ours(url, home, sha256, chunk_bytes, threaded)


def _ours(url: str, home: Path, sha256: str, chunk_bytes: int, threaded: bool) -> None:
    saved = verify.HASH_IN_THREAD
    verify.HASH_IN_THREAD = threaded
    try:  # the public entry point: lock, manifest, stream + sha256, fsync, rename
        fetch(url, home, sha256=sha256, force=True, policy=RetryPolicy(chunk_bytes=chunk_bytes))
    finally:
        verify.HASH_IN_THREAD = saved


def _best_interleaved(
    clients: dict[str, Callable[[Path], None]], out: Path, repeat: int
) -> dict[str, float]:
    """Best time per client, running the clients round-robin so load bursts hit them alike."""
    times: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(repeat):
        for name, run in clients.items():
            out.unlink(missing_ok=True)
            started = time.perf_counter()
            run(out)
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="file size in MB (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per client; best counts")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="our read size in KiB")
    parser.add_argument("--quick", action="store_true", help="50 MB, best of 2")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mb, args.repeat = 50, 2
    size = args.size_mb * 1_000_000
    tmp = Path(tempfile.mkdtemp(prefix="bench-download-"))
    try:
        source = tmp / "source.bin"
        sha256 = _make_file(source, size)
        with LoopbackServer() as server:
            url = server.serve("/source.bin", file=source)
            clients: dict[str, Callable[[Path], None]] = {}
            if shutil.which("curl"):
                clients["curl"] = lambda out: _curl(url, out)
            clients["requests loop (no hash)"] = lambda out: _bare_requests(url, out)
            for threaded in (False, True):
                name = f"dataferry ({'hash thread' if threaded else 'inline hash'})"
                clients[name] = _ours_client(url, tmp / "home", sha256, args.chunk_kib * 1024, threaded)
            results = _best_interleaved(clients, tmp / "out.bin", args.repeat)
        print(f"download of {size / 1e6:.0f} MB from 127.0.0.1, best of {args.repeat} "
              f"(cpu count {os.cpu_count()}):")
        default = "hash thread" if verify.HASH_IN_THREAD else "inline hash"
        ours = results[f"dataferry ({default})"]
        print(f"  (dataferry = stream + sha256 + fsync + rename; default here: {default})")
        for name, seconds in results.items():
            print(f"  {name:<28} {seconds:7.3f} s  {size / seconds / 1e6:8.1f} MB/s")
        if "curl" in results:
            ratio = results["curl"] / ours
            print(f"  ratio dataferry/curl throughput: {ratio:.2f}x (target >= 0.90x)")
        else:
            print("  curl not on PATH: no curl figure")
        print(f"  ratio dataferry/requests-loop throughput: "
              f"{results['requests loop (no hash)'] / ours:.2f}x")
        figures = [figure(name, size / seconds / 1e6, unit="MB/s") for name, seconds in results.items()]
        if "curl" in results:
            figures.append(figure("throughput dataferry / curl", results["curl"] / ours, unit="x", target=">= 0.9"))
        emit("download", figures, args.json)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
