"""``python -m training fit --stream PACK``: training on a sharded pack (a local folder here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from datasets import write_shards
from training.cli import main


class Bands:
    """4 classes of 8x8 uint8 images, each with a bright row band: easy to learn."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.targets = torch.randint(0, 4, (n,), generator=g)
        self.data = torch.randint(0, 100, (n, 8, 8), dtype=torch.uint8, generator=g)
        for i, label in enumerate(self.targets.tolist()):
            self.data[i, 2 * label] = 250
        self.classes = ["a", "b", "c", "d"]

    def __len__(self) -> int:
        return len(self.targets)


@pytest.mark.integration
def test_fit_stream_trains_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_shards(Bands(600, 0), tmp_path / "train", shard_size_bytes=72 * 100)
    write_shards(Bands(200, 1), tmp_path / "test", shard_size_bytes=72 * 100)
    args = ["fit", "--stream", str(tmp_path / "train"), "--stream-test", str(tmp_path / "test"),
            "--epochs", "2", "--batch-size", "32", "--device", "cpu", "--root",
            str(tmp_path / "home"), "-q"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["classes"] == ["a", "b", "c", "d"] and metrics["test_count"] == 200
    assert metrics["test_accuracy"] > 0.9 and metrics["dataset"] == str(tmp_path / "train")
    # 1 epoch, then resume to 2: the same result as 2 epochs straight (exact resume)
    one = [a if a != "2" else "1" for a in args]
    assert main([*one, "--out", str(tmp_path / "resumed")]) == 0
    assert main([*args, "--out", str(tmp_path / "resumed"), "--resume"]) == 0
    resumed = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert resumed["history"]["train_loss"] == metrics["history"]["train_loss"]
