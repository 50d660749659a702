"""``torchrun --nproc_per_node=2 -m training fit``: DDP on 127.0.0.1 matches one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from idx_factory import write_idx

REPO = Path(__file__).resolve().parents[2]


def _write_idx(folder: Path, prefix: str, n: int, seed: int, band: int = 40) -> None:
    """Noisy 4-class images (a faint band per class) so accuracy is high but not perfect."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    images = rng.integers(0, 200, size=(n, 28, 28)).astype(np.float64)
    for i, label in enumerate(labels):
        images[i, 3 + 6 * label: 5 + 6 * label, :] += band
    write_idx(folder, prefix, np.clip(images, 0, 255), labels)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DATAFERRY_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _fit_args(data: Path, out: Path, optimizer: str, *, quiet: bool = True) -> list[str]:
    return ["-m", "training", "fit", "--data-dir", str(data), "--optimizer", optimizer,
            "--epochs", "3", "--batch-size", "64", "--device", "cpu", "--out", str(out),
            *(["-q"] if quiet else [])]


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"{cmd}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def _torchrun(nproc: int, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run torchrun; retry on a fresh port if another process took ours between pick and bind."""
    for _ in range(3):
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args]
        result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=240)
        if result.returncode == 0 or "address already in use" not in result.stderr.lower():
            break
    assert result.returncode == 0, f"{cmd}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.mark.integration
def test_two_processes_match_one_process(tmp_path: Path) -> None:
    data = tmp_path / "idx"
    _write_idx(data, "train", 1200, seed=0)
    _write_idx(data, "t10k", 400, seed=1)
    env = _env(tmp_path / "home")
    single = _run([sys.executable, *_fit_args(data, tmp_path / "one", "lbfgs")], env)
    ddp = _torchrun(2, _fit_args(data, tmp_path / "two", "lbfgs"), env)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert 0.6 < one["test_accuracy"] < 1.0
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= 0.005
    # only rank 0 prints the final line and writes files
    assert ddp.stdout.count("test accuracy:") == 1
    assert single.stdout.strip().splitlines()[-1].startswith("test accuracy:")
    assert (tmp_path / "two" / "checkpoint.pt").is_file()


@pytest.mark.integration
def test_two_processes_sgd_shard_the_data(tmp_path: Path) -> None:
    data = tmp_path / "idx"
    _write_idx(data, "train", 800, seed=2, band=150)
    _write_idx(data, "t10k", 200, seed=3, band=150)
    ddp = _torchrun(2, _fit_args(data, tmp_path / "run", "sgd", quiet=False),
                    _env(tmp_path / "home"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["test_accuracy"] > 0.9
    assert metrics["history"]["epoch"] == [1, 2, 3]
    # rank 0 alone reports: one line per step and per epoch, not one per process (other lines,
    # such as torch's own warnings under load, are not ours to check)
    ours = ["process group up", "data", "training", "epoch 1/3", "epoch 2/3", "epoch 3/3"]
    heads = [line.split(":")[0] for line in ddp.stderr.splitlines()]
    assert [head for head in heads if head in ours] == ours, ddp.stderr
    assert "rank 0 of 2" in ddp.stderr and ddp.stdout.count("test accuracy:") == 1
