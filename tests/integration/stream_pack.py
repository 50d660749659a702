"""A small sharded pack whose labels are the sample ids, and serving it from the loopback server."""

from __future__ import annotations

from pathlib import Path

import torch
from loopback_server import LoopbackServer

from datasets import write_shards

RECORD_BYTES = 8 * 8 + 8


class IdImages:
    """``count`` random 8x8 uint8 images; the label of sample ``i`` is ``i``."""

    def __init__(self, count: int) -> None:
        g = torch.Generator().manual_seed(count)
        self.data = torch.randint(0, 256, (count, 8, 8), dtype=torch.uint8, generator=g)
        self.targets = torch.arange(count)

    def __len__(self) -> int:
        return len(self.data)


def make_pack(folder: Path, count: int = 480, per_shard: int = 40) -> IdImages:
    source = IdImages(count)
    # in the source's order, so that the label of pack sample i is i
    write_shards(source, folder, shard_size_bytes=RECORD_BYTES * per_shard, shuffle=False)
    return source


def serve_pack(server: LoopbackServer, folder: Path, prefix: str = "/pack",
               behaviours: dict[str, dict[str, object]] | None = None) -> str:
    """Serve every file of ``folder`` under ``prefix``; ``behaviours`` by file name."""
    for path in sorted(folder.iterdir()):
        extra = (behaviours or {}).get(path.name, {})
        server.serve(f"{prefix}/{path.name}", path.read_bytes(), **extra)
    return server.base_url + prefix


def shard_bytes(server: LoopbackServer, folder: Path, prefix: str = "/pack") -> int:
    """Body bytes the server sent for the shards so far."""
    return sum(server.stats(f"{prefix}/{p.name}").body_bytes for p in folder.glob("shard-*.bin"))


def shard_requests(server: LoopbackServer, folder: Path, prefix: str = "/pack") -> int:
    return sum(server.stats(f"{prefix}/{p.name}").requests for p in folder.glob("shard-*.bin"))
