"""A reader process for the streaming integration tests (run directly or under torchrun).

Reads one epoch of a streamed pack whose labels are sample ids through a ``DataLoader`` with
``--workers`` workers and a :class:`StreamingSampler`; appends the ids of each batch as one JSON
line to ``OUT.rank<R>.jsonl`` and, with ``--state``, rewrites the sampler state after each batch
(atomically), so a ``kill -9`` leaves a state that matches the lines written.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from datasets import StreamingDataset, StreamingSampler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epoch", type=int, default=0)
    parser.add_argument("--state", help="write the sampler state here after each batch")
    parser.add_argument("--resume", help="load this sampler state first")
    parser.add_argument("--sleep-s", type=float, default=0.0, help="pause after each batch")
    parser.add_argument("--endpoint-url")
    args = parser.parse_args()
    if "RANK" in os.environ:
        dist.init_process_group("gloo")
    ds = StreamingDataset(args.url, cache_dir=args.cache_dir, endpoint_url=args.endpoint_url,
                          block_shards=2, prefetch=1)
    sampler = StreamingSampler(ds)
    if args.resume:
        sampler.load_state_dict(json.loads(Path(args.resume).read_text()))
    sampler.set_epoch(args.epoch)
    loader = DataLoader(ds, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers)
    rank = dist.get_rank() if dist.is_initialized() else 0
    consumed = 0
    with open(f"{args.out}.rank{rank}.jsonl", "a", encoding="utf-8") as lines:
        for _, labels in loader:
            ids = labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)
            lines.write(json.dumps(ids) + "\n")
            lines.flush()
            consumed += len(ids)
            if args.state:
                tmp = Path(args.state + ".tmp")
                tmp.write_text(json.dumps(sampler.state_dict(consumed=consumed)))
                os.replace(tmp, args.state)
            time.sleep(args.sleep_s)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
