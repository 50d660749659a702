"""torch.distributed helpers outside torchrun degrade to one process; env errors are clear."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training import DistributedError, distributed


def test_single_process_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    env = distributed.setup()
    assert env == distributed.DistEnv(0, 1, 0) and env.is_main and not env.is_distributed
    assert distributed.world_size() == 1 and distributed.rank() == 0
    model = nn.Linear(2, 2)
    assert distributed.wrap_model(model, torch.device("cpu")) is model
    assert distributed.shard_sampler(list(range(4))) is None
    with distributed.main_process_first():
        pass
    assert distributed.all_reduce_sum(torch.ones(2)).tolist() == [1.0, 1.0]


def test_bad_environment_says_launch_with_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DistributedError, match="launch with torchrun"):
        distributed.env_from_environ()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(DistributedError, match="expected 0 <= RANK < WORLD_SIZE"):
        distributed.env_from_environ()
