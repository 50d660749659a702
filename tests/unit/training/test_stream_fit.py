"""``python -m training fit --stream PACK`` builds the model asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from datasets import write_shards
from training.cli import main


class Colour:
    """3 classes of 8x8 RGB images written [H, W, C], as ImageFolderDataset.pack stores them."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, 8, 8, 3), dtype=torch.uint8, generator=g)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i].numpy(), "label": i % 3}


def _fit(tmp_path: Path, model: str) -> int:
    if not (tmp_path / "pack").exists():
        write_shards(Colour(48), tmp_path / "pack", shard_size_bytes=4000)
    return main(["fit", "--stream", str(tmp_path / "pack"), "--model", model, "--epochs", "1",
                 "--batch-size", "16", "--device", "cpu", "--root", str(tmp_path / "home"),
                 "--out", str(tmp_path / model), "-q"])


def test_stream_fit_trains_the_cnn_it_was_asked_for(tmp_path: Path) -> None:
    assert _fit(tmp_path, "cnn") == 0
    metrics = json.loads((tmp_path / "cnn" / "metrics.json").read_text())
    assert metrics["model"] == "cnn" and metrics["test_count"] == 48
    state = torch.load(next((tmp_path / "cnn").glob("*.pt")), map_location="cpu", weights_only=False)
    weights = state.get("model", state)
    assert any(name.endswith("weight") and tensor.ndim == 4 for name, tensor in weights.items())


def test_stream_fit_refuses_bow_on_an_image_pack(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _fit(tmp_path, "bow") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--model bow" in err and "--stream" in err
