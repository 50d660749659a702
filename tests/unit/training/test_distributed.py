"""torch.distributed helpers outside torchrun degrade to one process; env errors are clear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    ran = []
    with distributed.main_process_first():  # one process: no barrier to wait at
        ran.append("body")
    assert ran == ["body"]
    assert distributed.all_reduce_sum(torch.ones(2)).tolist() == [1.0, 1.0]


def test_bad_environment_says_launch_with_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DistributedError, match="launch with torchrun"):
        distributed.env_from_environ()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(DistributedError, match="expected 0 <= RANK < WORLD_SIZE"):
        distributed.env_from_environ()


_RANK_SCRIPT = r"""
import sys, time
import torch.distributed as dist
from training import distributed
rank, init, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=2)
def note(what):
    with open(log, "a") as out:
        out.write(f"{rank} {what}\n")
with distributed.main_process_first():
    note("enters")
    time.sleep(1.0 if rank == 0 else 0.0)  # rank 1 would overtake a rank 0 that did not lead
    note("leaves")
dist.destroy_process_group()
"""


@pytest.mark.integration  # two real processes in a gloo process group (loopback TCP)
def test_main_process_first_runs_rank_0_before_the_others(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "order.log"
    ranks = [subprocess.Popen([sys.executable, "-c", _RANK_SCRIPT, str(r), str(tmp_path / "init"),
                               str(log)], env=env, cwd=root) for r in (1, 0)]  # rank 1 first
    assert [p.wait(timeout=120) for p in ranks] == [0, 0]
    assert log.read_text().splitlines() == ["0 enters", "0 leaves", "1 enters", "1 leaves"]
