"""Indexing an image folder: ours against torchvision's ``ImageFolder`` (issue 17).

Writes ``--files`` tiny PNGs into ``--classes`` class folders, then times, each in a fresh
process (best of ``--rounds`` in that process; imports are not timed; directory entries are warm,
as for any second run):

* ``torchvision``: ``torchvision.datasets.ImageFolder(root)`` (``os.walk``, no ``stat``);
* ``ours scan``: ``datasets.ImageFolderDataset(root)`` (target: as fast, ratio <= 1.0);
* ``ours warm pack``: ``ImageFolderDataset.pack(root)`` with its cache already built, which
  still stats every file so that an added, removed or rewritten one gives a new cache
  (target: within 3x of torchvision's index time).

    python benchmarks/bench_index.py                  # 20,000 files (under a minute)
    python benchmarks/bench_index.py --files 200000   # the issue's figure (a few minutes)
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import add_json_flag, emit, figure  # noqa: E402

SCAN_TARGET = "<= 1.0"
PACK_TARGET = "<= 3.0"
PIPELINES = ("torchvision", "scan", "pack")


def make_folder(root: Path, files: int, classes: int) -> None:
    """Write ``files`` 4x4 grey PNGs (256 distinct ones, repeated) over ``classes`` folders."""
    from PIL import Image

    pngs = []
    for i in range(256):
        buffer = io.BytesIO()
        Image.frombytes("L", (4, 4), bytes([i]) * 16).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    for c in range(classes):
        (root / f"class{c:04d}").mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"class{i % classes:04d}" / f"{i:07d}.png").write_bytes(pngs[i % 256])


def child(pipeline: str, root: str, cache: str, rounds: int) -> None:
    """In a fresh process: import, then index ``root`` ``rounds`` times; print the best."""
    from collections.abc import Callable, Sized

    index: Callable[[str], Sized]
    if pipeline == "torchvision":
        from torchvision.datasets import ImageFolder

        index = ImageFolder
    elif pipeline == "scan":
        from datasets import ImageFolderDataset

        index = ImageFolderDataset
    else:
        from datasets import ImageFolderDataset

        def index(root: str) -> Sized:
            return ImageFolderDataset.pack(root, cache_dir=cache, workers=0)

        started = time.perf_counter()  # build the cache first (decodes every file): not timed
        index(root)
        print(f"cold pack (decodes every file): {time.perf_counter() - started:.2f} s",
              file=sys.stderr)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        count = len(index(root))
        times.append(time.perf_counter() - started)
    print(f"{min(times):.6f} {count}")


def timed(pipeline: str, root: Path, cache: Path, rounds: int = 1) -> tuple[float, int]:
    """Best of ``rounds`` indexes of ``root`` by ``pipeline``, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, __file__, "--child", pipeline, str(root), str(cache),
                           str(rounds)], check=True, capture_output=True, text=True, env=env)
    sys.stdout.write(proc.stderr)
    out = proc.stdout.split()
    return float(out[0]), int(out[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000, help="images (default 20,000)")
    parser.add_argument("--classes", type=int, default=100, help="class folders (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, best kept")
    parser.add_argument("--quick", action="store_true", help="5,000 files, 2 rounds")
    parser.add_argument("--workdir", type=Path, default=None, help="where the folder goes")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.child:
        pipeline, root_arg, cache_arg, rounds = args.child
        child(pipeline, root_arg, cache_arg, int(rounds))
        return 0
    if args.quick:
        args.files, args.rounds = 5_000, 2
    with tempfile.TemporaryDirectory(prefix="bench-index-", dir=args.workdir) as tmp:
        root, cache = Path(tmp) / "photos", Path(tmp) / "cache"
        started = time.perf_counter()
        make_folder(root, args.files, args.classes)
        print(f"folder: {args.files:,} files in {args.classes} classes, written in "
              f"{time.perf_counter() - started:.1f} s")
        timings = {p: timed(p, root, cache, args.rounds) for p in PIPELINES}
    best = {p: seconds for p, (seconds, _) in timings.items()}
    count = min(n for _, n in timings.values())
    tv = best["torchvision"]
    for name, label in (("torchvision", "torchvision ImageFolder"),
                        ("scan", "ours ImageFolderDataset"), ("pack", "ours warm .pack()")):
        print(f"{label:<25} {best[name]:.3f} s   {best[name] / tv:.2f}x torchvision")
    emit("index", [
        figure("torchvision ImageFolder index", tv, unit="s"),
        figure("ImageFolderDataset scan / torchvision", best["scan"] / tv, unit="x",
               target=SCAN_TARGET),
        figure("warm .pack() / torchvision", best["pack"] / tv, unit="x", target=PACK_TARGET),
    ], args.json)
    return 0 if count == args.files else 1


if __name__ == "__main__":
    raise SystemExit(main())
