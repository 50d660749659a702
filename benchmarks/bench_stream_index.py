"""What the index of a huge sharded pack costs one rank: size, memory, time to first sample id.

Writes a synthetic ``index.json`` (no shards) for ``--samples`` samples in shards of
``--per-shard`` samples (default: 100 M samples, 580 per shard, like ImageNet-sized JPEGs in
64 MB shards), then, in a fresh process per measurement, opens it as a ``StreamingDataset``
and builds rank ``--rank``'s ``StreamingSampler`` of ``--world-size`` ranks, reporting the
resident memory this added and how long it took::

    python benchmarks/bench_stream_index.py --samples 100000000 --world-size 1000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]


def write_index(folder: Path, samples: int, per_shard: int, shard_bytes: int) -> int:
    """Write a synthetic index.json; return its size in bytes."""
    from datasets.shardformat import FORMAT, VERSION, shard_name

    shards, start = [], 0
    while start < samples:
        count = min(per_shard, samples - start)
        digest = hashlib.sha256(start.to_bytes(8, "little")).hexdigest()
        shards.append({"name": shard_name(len(shards)), "start": start, "count": count,
                       "size_bytes": shard_bytes, "sha256": digest})
        start += count
    index = {"format": FORMAT, "version": VERSION, "count": samples, "shards": shards,
             "schema": [{"name": "image", "kind": "bytes", "dtype": "", "shape": []},
                        {"name": "label", "kind": "int", "dtype": "", "shape": []}],
             "classes": [str(i) for i in range(1000)]}
    data = json.dumps(index, indent=1, sort_keys=True).encode()
    (folder / "index.json").write_bytes(data)
    return len(data)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(folder: Path, world_size: int, rank: int) -> dict[str, float]:
    """In this process: open the pack, build one rank's sampler, take its first ids."""
    import gc

    from datasets import StreamingDataset, StreamingSampler

    before = _rss_mb()
    start = time.perf_counter()
    # decode=False: the index alone (decode=True imports torchvision for JPEGs: its own cost)
    ds = StreamingDataset(folder, cache_dir=folder / "cache", decode=False)
    opened = time.perf_counter() - start
    gc.collect()
    after_open = _rss_mb()
    sampler = StreamingSampler(ds, num_replicas=world_size, rank=rank)
    first = time.perf_counter()
    ids = iter(sampler)
    for _ in range(10_000):
        next(ids)
    took = time.perf_counter() - first
    import numpy as np

    every = np.fromiter(sampler, dtype=np.int64, count=len(sampler))  # the whole epoch's ids
    shards = np.unique(np.searchsorted(ds.starts, every, side="right") - 1)
    return {"open_s": opened, "dataset_mb": after_open - before, "rank_samples": len(sampler),
            "rank_shards": len(shards), "total_shards": len(ds.counts),
            "first_10k_ids_s": took, "rss_mb": _rss_mb(), "peak_rss_mb":
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="default 100,000,000 (--quick: 10,000,000)")
    parser.add_argument("--quick", action="store_true", help="10 M samples")
    parser.add_argument("--json", help="also write the figures here (python -m benchmarks)")
    parser.add_argument("--per-shard", type=int, default=580)
    parser.add_argument("--shard-bytes", type=int, default=64_000_000)
    parser.add_argument("--world-size", type=int, default=1000)
    parser.add_argument("--rank", type=int, default=500)
    parser.add_argument("--images-per-s", type=float, default=2000.0,
                        help="one rank's reading speed, for the request rate (default 2,000)")
    parser.add_argument("--_measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.samples = args.samples or (10_000_000 if args.quick else 100_000_000)
    if args._measure:
        print(json.dumps(measure(Path(args._measure), args.world_size, args.rank)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        size = write_index(Path(tmp), args.samples, args.per_shard, args.shard_bytes)
        cmd = [sys.executable, __file__, "--_measure", tmp, "--world-size", str(args.world_size),
               "--rank", str(args.rank)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
    shards = -(-args.samples // args.per_shard)
    print(f"{args.samples:,} samples in {shards:,} shards; index.json {size / 1e6:.1f} MB")
    print(f"rank {args.rank} of {args.world_size}: {result['rank_samples']:,} samples; opening "
          f"took {result['open_s']:.2f} s and holds {result['dataset_mb']:.1f} MB "
          f"(peak while parsing +{result['peak_rss_mb']:.0f} MB); its first 10,000 ids "
          f"{result['first_10k_ids_s']:.2f} s")
    gets = result["rank_shards"]  # one GET per shard a rank touches (a cold cache, no retries)
    seconds = result["rank_samples"] / args.images_per_s
    print(f"rank {args.rank} touches {gets} shards per epoch ({gets * args.world_size:,} GETs for "
          f"{args.world_size:,} ranks vs {result['total_shards']:,} shards); at "
          f"{args.images_per_s:,.0f} images/s per rank: {gets / seconds:.2f} GET/s per rank, "
          f"{gets * args.world_size / seconds:,.0f} GET/s and "
          f"{gets * args.world_size * args.shard_bytes / seconds / 1e9:,.0f} GB/s for all ranks")
    from benchmarks.report import emit, figure

    emit("stream_index", [
        figure(f"index.json MB, {args.samples:,} samples", size / 1e6, unit="MB"),
        figure("resident MB per process after opening", result["dataset_mb"], unit="MB"),
        figure("peak MB while parsing", result["peak_rss_mb"], unit="MB"),
        figure("shards per rank per epoch / shards / ranks", gets / shards * args.world_size),
    ], args.json, extra=result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
