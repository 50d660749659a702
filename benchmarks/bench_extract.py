"""Benchmark: our safe extraction of a 100,000-file ``letters`` archive against GNU ``tar xzf``.

Builds the archive once in a temporary folder (and reports the generation rate), then, for a
few rounds, extracts it into fresh folders with :func:`loaders.extract.extract`, with
``tar xzf`` and (once) with the stdlib's ``tarfile.extractall(filter="data")``, interleaved so
that all three see the same machine load. The best round of each is reported. Target: our
extraction at least 0.5× the speed of GNU tar.

Usage:
    python benchmarks/bench_extract.py            # 100,000 files, 2 rounds
    python benchmarks/bench_extract.py --quick    # 20,000 files, 2 rounds
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loaders.extract import extract
from loaders.letters import generate


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def gnu_tar() -> str | None:
    tar = shutil.which("tar")
    if tar is None:
        return None
    version = subprocess.run([tar, "--version"], capture_output=True, text=True, check=False).stdout
    return tar if "GNU tar" in version else None


def fresh(parent: Path, name: str) -> Path:
    path = parent / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def sync() -> None:
    if hasattr(os, "sync"):
        os.sync()


def stdlib_extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, filter="data")
        else:  # pragma: no cover - old Pythons have no filter at all
            tf.extractall(dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="images in the archive")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the best is reported")
    parser.add_argument("--quick", action="store_true", help="20,000 files, 2 rounds (about 20 s)")
    parser.add_argument("--no-stdlib", action="store_true", help="skip tarfile.extractall")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to put the files (default: the temp folder; /dev/shm "
                             "measures CPU cost without the disk)")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.rounds = 20_000, 2
    tar = gnu_tar()
    with tempfile.TemporaryDirectory(prefix="bench-extract-", dir=args.workdir) as tmp:
        work = Path(tmp)
        archive = work / "letters.tar.gz"
        seconds = timed(lambda: generate(archive, count=args.files, seed=0))
        print(f"generate: {args.files:,} images in {seconds:.2f} s = {args.files / seconds:,.0f} images/s "
              f"({os.cpu_count()} CPUs), archive {archive.stat().st_size / 1e6:.1f} MB")
        ours: list[float] = []
        gnu: list[float] = []
        stdlib: list[float] = []
        runs = {
            "ours": (ours, lambda d: extract(archive, d)),
            "tar": (gnu, lambda d: subprocess.run([tar or "tar", "xzf", str(archive), "-C", str(d)], check=True)),
            "stdlib": (stdlib, lambda d: stdlib_extract(archive, d)),
        }
        for round_ in range(args.rounds):
            order = ["ours", "tar"] if round_ % 2 == 0 else ["tar", "ours"]  # fair to both
            if not tar:
                order.remove("tar")
            if round_ == 0 and not args.no_stdlib:
                order.append("stdlib")
            for name in order:
                dest = fresh(work, name)
                sync()  # the previous round's deletions must not slow this one down
                times, run = runs[name]
                times.append(timed(functools.partial(run, dest)))
                shutil.rmtree(dest)
        best = min(ours)
        print(f"loaders.extract : best {best:.2f} s = {args.files / best:,.0f} files/s "
              f"(rounds: {', '.join(f'{t:.2f}' for t in ours)})")
        if stdlib:
            print(f"tarfile data    : {stdlib[0]:.2f} s = {args.files / stdlib[0]:,.0f} files/s")
        if not gnu:
            print("GNU tar not found: no ratio")
            return 0
        print(f"GNU tar xzf     : best {min(gnu):.2f} s = {args.files / min(gnu):,.0f} files/s "
              f"(rounds: {', '.join(f'{t:.2f}' for t in gnu)})")
        print(f"ratio ours/tar speed: {min(gnu) / best:.2f}x  (target >= 0.5x)")
        if stdlib:
            print(f"ratio stdlib/tar speed: {min(gnu) / stdlib[0]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
