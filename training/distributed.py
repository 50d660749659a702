"""torch.distributed helpers: process-group setup from torchrun's environment, DDP, sharding.

``torchrun --nproc_per_node=N -m training fit ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them and starts the
process group (``nccl`` on GPUs, ``gloo`` on CPU). Outside torchrun every helper degrades to
the single-process behaviour, so the same code runs both ways.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from training.errors import DistributedError

log = logging.getLogger(__name__)

__all__ = [
    "DistEnv",
    "all_reduce_sum",
    "barrier",
    "cleanup",
    "env_from_environ",
    "is_distributed",
    "is_main_process",
    "main_process_first",
    "rank",
    "setup",
    "shard_sampler",
    "world_size",
    "wrap_model",
]


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes files."""
        return self.rank == 0


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise DistributedError(
            f"expected an integer in ${name} but got {raw!r}; launch with torchrun"
        ) from err


def env_from_environ() -> DistEnv:
    """Return the rank, world size and local rank torchrun put in the environment."""
    env = DistEnv(_int_env("RANK", 0), _int_env("WORLD_SIZE", 1), _int_env("LOCAL_RANK", 0))
    if not 0 <= env.rank < env.world_size:
        raise DistributedError(
            f"expected 0 <= RANK < WORLD_SIZE but got RANK={env.rank}, "
            f"WORLD_SIZE={env.world_size}; launch with torchrun"
        )
    return env


def setup(*, backend: str | None = None) -> DistEnv:
    """Start the process group when launched by torchrun with ``WORLD_SIZE > 1``.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; default nccl when CUDA is available, else gloo.

    Returns:
        This process's :class:`DistEnv` (rank 0 of 1 outside torchrun).
    """
    env = env_from_environ()
    if not env.is_distributed or dist.is_initialized():
        return env
    if not dist.is_available():
        raise DistributedError(
            f"WORLD_SIZE={env.world_size} asks for {env.world_size} processes but this torch "
            "build has no torch.distributed; run a single process"
        )
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(env.local_rank)
    dist.init_process_group(backend=backend)
    # one INFO line per job, not per process (only rank 0 talks); each rank's at DEBUG
    log.log(logging.INFO if env.rank == 0 else logging.DEBUG, "process group up: rank %d of %d (%s)",
            env.rank, env.world_size, backend)
    return env


def cleanup() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """Return this process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Return the number of processes (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 or outside a process group."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op outside a process group)."""
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` in place over all processes and return it (no-op when alone)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


@contextmanager
def main_process_first() -> Iterator[None]:
    """Run the body on rank 0 first, then on the others: download and pack data once."""
    if not is_main_process():
        barrier()
    try:
        yield
    finally:
        if is_main_process():
            barrier()


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Return ``DistributedDataParallel(model)`` inside a process group, else ``model``."""
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard_sampler(
    dataset: Dataset, *, shuffle: bool = True, seed: int = 0, drop_last: bool = False
) -> DistributedSampler | None:
    """Return a ``DistributedSampler`` for this rank inside a process group, else None."""
    if not is_distributed():
        return None
    return DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
