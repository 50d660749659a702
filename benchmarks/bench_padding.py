"""Padded tokens per real token: random batches vs BucketBatchSampler on a real text corpus.

    python benchmarks/bench_padding.py [--data PATH] [--batch-size 32] [--epochs 5] [--gru] [--quick]

Both loaders go through TextClassificationDataset + pad_collate; the random baseline is what
``DataLoader(shuffle=True, batch_size=B)`` does. Target: bucketing pads >= 3x fewer tokens.
``--gru`` also times one epoch of a small GRU forward pass over the padded batches of each.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from datasets.collate import PadCollate
from datasets.errors import DatasetError
from datasets.samplers import BucketBatchSampler
from datasets.text import TextClassificationDataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.report import add_json_flag, emit, figure  # noqa: E402

# The shared read-only data sits beside the checkout (as in bench_fit), wherever that is.
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sms-spam" / "SMSSpamCollection"
TARGET = 3.0


def measure(ds: TextClassificationDataset, batches: Iterable[list[int]]) -> tuple[int, int, int, float]:
    """Return (real tokens, pad tokens, batches, seconds) for one pass through pad_collate."""
    loader = DataLoader(ds, batch_sampler=batches, collate_fn=PadCollate())
    real = pad = count = 0
    start = time.perf_counter()
    for batch in loader:
        n_real = int(batch["lengths"].sum())
        real += n_real
        pad += batch["input_ids"].numel() - n_real
        count += 1
    return real, pad, count, time.perf_counter() - start


def time_gru(ds: TextClassificationDataset, batches: Iterable[list[int]], seed: int) -> float:
    """Seconds for one epoch of a small GRU's forward pass over the padded batches."""
    torch.manual_seed(seed)
    assert ds.vocab is not None  # set by main() before timing
    emb, gru = torch.nn.Embedding(len(ds.vocab), 32), torch.nn.GRU(32, 64, batch_first=True)
    loader = DataLoader(ds, batch_sampler=batches, collate_fn=PadCollate())
    start = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            gru(emb(batch["input_ids"]))
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"label<TAB>text file or CSV/JSONL (default: {DEFAULT_DATA})")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5, help="epochs averaged (default 5)")
    parser.add_argument("--pool-batches", type=int, default=100,
                        help="BucketBatchSampler pool size in batches (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gru", action="store_true", help="also time a GRU forward epoch")
    parser.add_argument("--quick", action="store_true", help="2 epochs")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 2
    if not args.data.is_file():
        print(f"error: text corpus not found at {args.data}; pass --data PATH to a label<TAB>text "
              "file such as the UCI SMS Spam Collection", file=sys.stderr)
        return 1
    try:
        ds = TextClassificationDataset.from_file(args.data)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    ds.vocab = ds.build_vocab()
    lengths = ds.lengths()
    print(f"corpus: {args.data} ({len(ds):,} texts, {sum(lengths):,} tokens, "
          f"mean {sum(lengths) / len(ds):.1f}, max {max(lengths)}), batch size {args.batch_size}, "
          f"{args.epochs} epochs")
    g = torch.Generator().manual_seed(args.seed)
    random_batches = BatchSampler(RandomSampler(ds, generator=g), args.batch_size, drop_last=False)
    bucket = BucketBatchSampler(lengths, args.batch_size, seed=args.seed,
                                pool_batches=args.pool_batches)
    totals = {"random": [0, 0, 0, 0.0], "bucket": [0, 0, 0, 0.0]}
    for epoch in range(args.epochs):
        bucket.set_epoch(epoch)
        for name, sampler in (("random", random_batches), ("bucket", bucket)):
            for k, value in enumerate(measure(ds, sampler)):
                totals[name][k] += value
    ratios = {}
    for name, (real, pad, count, seconds) in totals.items():
        ratios[name] = pad / real
        print(f"{name:>6}: {pad / real:.3f} pad tokens per real token "
              f"({pad:,} pad / {real:,} real over {count:,} batches; collate {seconds:.2f} s)")
    gain = ratios["random"] / max(ratios["bucket"], 1e-12)
    if args.gru:
        bucket.set_epoch(0)
        gru_s = {name: time_gru(ds, sampler, args.seed)
                 for name, sampler in (("random", random_batches), ("bucket", bucket))}
        print(f"GRU forward epoch: random {gru_s['random']:.2f} s, bucket "
              f"{gru_s['bucket']:.2f} s ({gru_s['random'] / gru_s['bucket']:.1f}x faster)")
    print(f"bucketing pads {gain:.1f}x fewer tokens (target >= {TARGET:.0f}x): "
          f"{'PASS' if gain >= TARGET else 'FAIL'}")
    emit("padding", [
        figure("pad tokens per real token, random batches", ratios["random"]),
        figure("pad tokens per real token, BucketBatchSampler", ratios["bucket"]),
        figure("fewer pad tokens with bucketing", gain, unit="x", target=f">= {TARGET:g}"),
    ], args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
