"""Streaming benchmark: dataferry's sharded packs against LitData, MosaicML Streaming, WebDataset.

Same data for all: ``letters`` images (uint8 28x28, from ``loaders.letters``) and JPEG photos
(~500x375, quality 90, noise and shapes), served by ONE loopback HTTP server with ONE bandwidth
cap (token bucket, ``--rate-mbs``) so the network is a real constraint. For each system and
data set: conversion time (its own writer), first-epoch images/s (empty cache, over HTTP),
second-epoch images/s (same process, warm cache), peak RSS of the reading process and its
workers, and bytes the server sent. A system that cannot read plain HTTP is said so in the
output (LitData reads ``s3://`` from a moto server on 127.0.0.1, without the cap).

    python benchmarks/bench_stream.py --quick --json runs/bench_stream.json

Peers: ``pip install 'dataferry[bench]'``; a missing peer is skipped with its reason.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from capped_http import CappedServer  # noqa: E402
from stream_systems import READERS, WRITERS, Source, count_batch  # noqa: E402

SYSTEMS = ("ours", "litdata", "mosaic", "webdataset")
MODULES = {"ours": "datasets", "litdata": "litdata", "mosaic": "streaming",
           "webdataset": "webdataset"}
S3_ONLY = ("litdata", "mosaic")  # no plain-HTTP reader in LitData 0.2.76 / Streaming 0.13


def make_letters(folder: Path, count: int) -> None:
    from datasets import ImageFolderDataset
    from loaders.letters import generate

    archive = generate(folder / "letters.tar.gz", count=count, seed=0)
    ds = ImageFolderDataset.from_archive(archive, cache_dir=folder / "home")
    np.save(folder / "letters_images.npy", ds.data.numpy())
    np.save(folder / "letters_labels.npy", ds.targets.numpy())


def make_photos(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    blobs, labels = [], []
    for i in range(count):
        pixels = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8) // 4 + 96
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.integers(0, 450), rng.integers(0, 330)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.ellipse((x, y, x + rng.integers(20, 120), y + rng.integers(20, 120)), fill=colour)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=90)
        blobs.append(out.getvalue())
        labels.append(i % 10)
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    np.save(folder / "photos_blob.npy", np.frombuffer(b"".join(blobs), dtype=np.uint8))
    np.save(folder / "photos_offsets.npy", offsets)
    np.save(folder / "photos_labels.npy", np.array(labels, dtype=np.int64))


def read_main(args: argparse.Namespace) -> int:
    """Subprocess: read two epochs and print one JSON line."""
    from torch.utils.data import DataLoader

    ds, sampler = READERS[args.system](args.url, Path(args.cache), args.kind)
    loader = DataLoader(ds, batch_size=args.batch_size, sampler=sampler,
                        num_workers=args.workers, collate_fn=count_batch)
    result: dict[str, Any] = {}
    for epoch in (1, 2):
        if sampler is not None:
            sampler.set_epoch(epoch)
        elif hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)
        start, n = time.perf_counter(), 0
        for count in loader:
            n += count
        result[f"epoch{epoch}_s"] = time.perf_counter() - start
        result[f"epoch{epoch}_n"] = n
    # VmHWM, not RUSAGE_SELF: Linux keeps ru_maxrss across exec, so a reader would report the
    # benchmark process's peak (which holds the photos) instead of its own
    own = next((int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:")), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    rss = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    result["peak_rss_mb"] = rss / 1024
    print(json.dumps(result))
    return 0


def convert(system: str, source: Source, out: Path) -> float:
    importlib.import_module(MODULES[system])  # imports are not conversion time
    start = time.perf_counter()
    WRITERS[system](source, out)
    return time.perf_counter() - start


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _read(system: str, kind: str, url: str, cache: Path, args: argparse.Namespace,
          env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--_read", system, kind, url, str(cache),
           "--batch-size", str(args.batch_size), "--workers", str(args.workers)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        Path(tempfile.gettempdir(), f"bench-stream-{system}-{kind}.err").write_text(done.stderr)
        lines = [line for line in done.stderr.strip().splitlines() if "Error" in line]
        raise RuntimeError(lines[-1] if lines else done.stderr[-300:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_system(system: str, kind: str, work: Path, server: CappedServer,
               args: argparse.Namespace, s3: str | None) -> dict[str, Any]:
    served = work / "served" / f"{system}-{kind}"
    row: dict[str, Any] = {"system": system, "data": kind, "transport": "http"}
    row["convert_s"] = convert(system, Source(work, kind), served)
    row["stored_bytes"] = folder_bytes(served)
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), BENCH_WDS_SHARDS=str(served),
               BENCH_SAME_DECODER="1" if args.same_decoder else "0")
    url = f"{server.base_url}/{system}-{kind}"
    if system in S3_ONLY:  # they read cloud URLs or local folders, not plain HTTP
        url = _upload_s3(served, f"{system}-{kind}", s3)
        env["BENCH_S3_ENDPOINT"] = s3 or ""
        if system == "mosaic":  # Streaming reads its endpoint from the environment
            env["S3_ENDPOINT_URL"] = s3 or ""
        row["transport"] = "s3: moto on 127.0.0.1, no cap"
    before = server.body_bytes[f"{system}-{kind}"]
    cache = work / "cache" / f"{system}-{kind}"
    row.update(_read(system, kind, url, cache, args, env))
    row["fetched_bytes"] = (server.body_bytes[f"{system}-{kind}"] - before
                            if system not in S3_ONLY else None)
    return row


def _upload_s3(folder: Path, prefix: str, endpoint: str | None) -> str:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    for path in folder.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "bench", f"{prefix}/{path.relative_to(folder)}")
    return f"s3://bench/{prefix}"


def _start_moto() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    return server, endpoint


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'data':8} {'system':11} {'convert s':>9} {'epoch1 img/s':>12} {'epoch2 img/s':>12} "
          f"{'peak RSS MB':>11} {'fetched MB':>10} {'stored MB':>9}  transport")
    for r in rows:
        if "error" in r:
            print(f"{r['data']:8} {r['system']:11} skipped: {r['error']}")
            continue
        fetched = "-" if r["fetched_bytes"] is None else f"{r['fetched_bytes'] / 1e6:.1f}"
        print(f"{r['data']:8} {r['system']:11} {r['convert_s']:9.2f} "
              f"{r['epoch1_n'] / r['epoch1_s']:12,.0f} {r['epoch2_n'] / r['epoch2_s']:12,.0f} "
              f"{r['peak_rss_mb']:11.0f} {fetched:>10} {r['stored_bytes'] / 1e6:9.1f}  "
              f"{r['transport']}")


def ratios(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for kind in ("letters", "photos"):
        by = {r["system"]: r for r in rows if r["data"] == kind and "error" not in r}
        ours = by.get("ours")
        if not ours:
            continue
        for peer, r in by.items():
            if peer == "ours":
                continue
            lines.append(
                f"{kind}: ours vs {peer}: convert {r['convert_s'] / ours['convert_s']:.2f}x "
                f"faster, epoch1 {ours['epoch1_n'] / ours['epoch1_s'] / (r['epoch1_n'] / r['epoch1_s']):.2f}x, "
                f"epoch2 {ours['epoch2_n'] / ours['epoch2_s'] / (r['epoch2_n'] / r['epoch2_s']):.2f}x")
        lines.append(f"{kind}: ours fetched {ours['fetched_bytes']:,} bytes over two epochs; "
                     f"the pack (shards + index.json) holds {ours['stored_bytes']:,}")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 letters, 500 photos")
    parser.add_argument("--letters", type=int, help="letters images (default 100,000)")
    parser.add_argument("--photos", type=int, help="JPEG photos (default 10,000)")
    parser.add_argument("--rate-mbs", type=float, default=100.0, help="bandwidth cap, MB/s")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader workers per reader, the same for every system (default 2)")
    parser.add_argument("--same-decoder", action="store_true",
                        help="ours decodes JPEGs with Pillow like the peers (default: its own)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--data", default="letters,photos",
                        help="data sets to run, comma-separated (default letters,photos)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--_read", nargs=4, metavar=("SYSTEM", "KIND", "URL", "CACHE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.data.split(",")) - {"letters", "photos"})
    if unknown:
        parser.error(f"--data should name letters and/or photos, but got {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._read:
        args.system, args.kind, args.url, args.cache = args._read
        return read_main(args)
    letters = args.letters or (5_000 if args.quick else 100_000)
    photos = args.photos or (500 if args.quick else 10_000)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        work = Path(tmp)
        kinds = args.data.split(",")
        if "letters" in kinds:
            make_letters(work, letters)
        if "photos" in kinds:
            make_photos(work, photos)
        (work / "served").mkdir()
        use_s3 = any(s in args.systems for s in S3_ONLY)
        moto, endpoint = _start_moto() if use_s3 else (None, None)
        with CappedServer(work / "served", args.rate_mbs * 1e6) as server:
            for kind in kinds:
                for system in args.systems.split(","):
                    try:
                        rows.append(run_system(system, kind, work, server, args, endpoint))
                    except (ImportError, RuntimeError, OSError) as err:
                        rows.append({"system": system, "data": kind, "error": str(err)[:200]})
        if moto is not None:
            moto.stop()
    print(f"letters {letters:,}, photos {photos:,}, cap {args.rate_mbs:g} MB/s, batch "
          f"{args.batch_size}, {args.workers} DataLoader workers, ours decoding JPEGs with "
          f"{'Pillow' if args.same_decoder else 'its own decoder'}")
    print_table(rows)
    for line in ratios(rows):
        print(line)
    from benchmarks.report import emit, figure  # python -m benchmarks reads figures; rows kept

    emit("stream", [*target_figures(rows, figure),
                    *(figure(f"{r['data']} {r['system']} epoch {e} images/s",
                             r[f"epoch{e}_n"] / r[f"epoch{e}_s"], unit="images/s")
                      for r in rows if "error" not in r for e in (1, 2))],
         args.json, extra={"rows": rows})
    return 0


def target_figures(rows: list[dict[str, Any]], figure: Any) -> list[dict[str, Any]]:
    """Issue 10's targets per data set: conversion vs LitData, each epoch vs the best peer,
    and the bytes ours fetched over two epochs (one uncached) vs the pack's size."""
    out = []
    for kind in ("letters", "photos"):
        by = {r["system"]: r for r in rows if r["data"] == kind and "error" not in r}
        ours = by.pop("ours", None)
        if ours is None or not by:
            continue
        if "litdata" in by:
            out.append(figure(f"{kind}: conversion speed ours / LitData optimize",
                              by["litdata"]["convert_s"] / ours["convert_s"], unit="x",
                              target=">= 2"))
        for e in (1, 2):
            rate = {name: r[f"epoch{e}_n"] / r[f"epoch{e}_s"] for name, r in by.items()}
            best = max(rate, key=rate.__getitem__)
            out.append(figure(f"{kind}: epoch {e} ours / best peer ({best})",
                              ours[f"epoch{e}_n"] / ours[f"epoch{e}_s"] / rate[best], unit="x",
                              target=">= 1"))
        if ours.get("fetched_bytes") is not None:
            out.append(figure(f"{kind}: bytes ours fetched in 2 epochs / pack size",
                              ours["fetched_bytes"] / ours["stored_bytes"], unit="x",
                              target="<= 1"))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
