"""Benchmark: our safe extraction of a 100,000-file ``letters`` archive against GNU ``tar xzf``.

Builds the archive once in a temporary folder (and reports the generation rate), then, for a
few rounds, extracts it into fresh folders with :func:`loaders.extract.extract`, with
``tar xzf`` and (once) with the stdlib's ``tarfile.extractall(filter="data")``, interleaved so
that all three see the same machine load. The best round of each is reported, with the CPU
time each used (ours: this process, all threads; tar: tar and its gzip child), which a busy
machine disturbs less than wall time. Target: our extraction at least 0.5× the speed of GNU tar.

Usage:
    python benchmarks/bench_extract.py            # 100,000 files, 3 rounds
    python benchmarks/bench_extract.py --quick    # 20,000 files, 2 rounds
    python benchmarks/bench_extract.py --workdir /dev/shm --json out.json
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import add_json_flag, emit, figure  # noqa: E402
from loaders.extract import extract  # noqa: E402
from loaders.letters import generate  # noqa: E402

TARGET = ">= 0.5"


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed_cpu(run: Callable[[], object], who: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``run``; ``who`` is RUSAGE_SELF or RUSAGE_CHILDREN."""
    cpu = cpu_seconds(who)
    wall = timed(run)
    return wall, cpu_seconds(who) - cpu


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
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is reported")
    parser.add_argument("--quick", action="store_true", help="20,000 files, 2 rounds (about 20 s)")
    parser.add_argument("--no-stdlib", action="store_true", help="skip tarfile.extractall")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to put the files (default: the temp folder; /dev/shm "
                             "measures CPU cost without the disk)")
    add_json_flag(parser)
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
        times: dict[str, list[tuple[float, float]]] = {"ours": [], "tar": [], "stdlib": []}
        runs = {
            "ours": (lambda d: extract(archive, d), resource.RUSAGE_SELF),
            "tar": (lambda d: subprocess.run([tar or "tar", "xzf", str(archive), "-C", str(d)], check=True),
                    resource.RUSAGE_CHILDREN),
            "stdlib": (lambda d: stdlib_extract(archive, d), resource.RUSAGE_SELF),
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
                run, who = runs[name]
                times[name].append(timed_cpu(functools.partial(run, dest), who))
                shutil.rmtree(dest)
        report(args, times)
    return 0


def report(args: argparse.Namespace, times: dict[str, list[tuple[float, float]]]) -> None:
    """Print the figures and, with --json, write them for python -m benchmarks."""
    ours = [wall for wall, _ in times["ours"]]
    best = min(ours)
    cpu = min(c for _, c in times["ours"])
    print(f"loaders.extract : best {best:.2f} s = {args.files / best:,.0f} files/s, CPU {cpu:.2f} s "
          f"(rounds: {', '.join(f'{t:.2f}' for t in ours)})")
    figures = [figure("loaders.extract", args.files / best, unit="files/s",
                      samples=[args.files / t for t in ours])]
    if times["stdlib"]:
        wall, stdlib_cpu = times["stdlib"][0]
        print(f"tarfile data    : {wall:.2f} s = {args.files / wall:,.0f} files/s, CPU {stdlib_cpu:.2f} s")
        figures.append(figure("tarfile.extractall(filter='data')", args.files / wall, unit="files/s"))
    if not times["tar"]:
        print("GNU tar not found: no ratio")
        emit("extract", figures, args.json)
        return
    gnu = [wall for wall, _ in times["tar"]]
    gnu_cpu = min(c for _, c in times["tar"])
    print(f"GNU tar xzf     : best {min(gnu):.2f} s = {args.files / min(gnu):,.0f} files/s, "
          f"CPU {gnu_cpu:.2f} s (rounds: {', '.join(f'{t:.2f}' for t in gnu)})")
    ratio = min(gnu) / best
    print(f"ratio ours/tar speed: {ratio:.2f}x  (target {TARGET}x)  {'ok' if ratio >= 0.5 else 'MISSED'}")
    print(f"ratio ours/tar CPU time: {gnu_cpu / cpu:.2f}x  (tar's CPU / ours; steadier on a busy machine)")
    if times["stdlib"]:
        print(f"ratio stdlib/tar speed: {min(gnu) / times['stdlib'][0][0]:.2f}x")
    figures += [
        figure("GNU tar xzf", args.files / min(gnu), unit="files/s", samples=[args.files / t for t in gnu]),
        figure("speed ours / GNU tar (best rounds)", ratio, unit="x", target=TARGET,
               samples=[g / o for g, o in zip(gnu, ours, strict=True)],
               note=f"{args.files:,} letters files into {args.workdir or 'the temp folder'}"),
        figure("CPU time tar / ours", gnu_cpu / cpu, unit="x",
               samples=[g[1] / o[1] for g, o in zip(times["tar"], times["ours"], strict=True)]),
    ]
    emit("extract", figures, args.json)


    return 0


if __name__ == "__main__":
    raise SystemExit(main())
