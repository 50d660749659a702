"""--tensorboard: event files with the history's scalars and a sample grid; a clear error without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from training import FitConfig, fit
from training.cli import main
from training.errors import TrainingError


def test_missing_tensorboard_is_a_one_line_error(monkeypatch, idx_folder: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from training.tensorboard import summary_writer_class

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails
    with pytest.raises(TrainingError, match=r"needs the tensorboard package.*pip install -e "
                       r"'\.\[tensorboard\]'"):
        summary_writer_class()
    assert main(["fit", "--data-dir", str(idx_folder), "--epochs", "1", "--tensorboard",
                 "--out", str(tmp_path / "run"), "--device", "cpu", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: TensorBoard logging needs the tensorboard package")
    assert err.count("\n") == 1 and "Traceback" not in err


def _events(folder: Path) -> tuple[dict[str, list[tuple[int, float]]], list[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    return scalars, acc.Tags()["images"]


def test_logger_writes_the_history_and_a_sample_grid(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from training.tensorboard import TensorBoardLogger

    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0.5).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    logger = TensorBoardLogger(tmp_path / "tb", samples=x[:16])
    history = fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2)), loader,
                  loader, FitConfig(epochs=3, lr=0.1, device="cpu"), callbacks=[logger])
    logger.close()
    scalars, images = _events(tmp_path / "tb")
    assert images == ["samples"]
    assert [step for step, _ in scalars["loss/train"]] == [1, 2, 3]
    for tag, field in (("loss/train", "train_loss"), ("loss/valid", "valid_loss"),
                       ("accuracy/valid", "valid_accuracy"), ("lr", "lr")):
        assert [v for _, v in scalars[tag]] == pytest.approx(getattr(history, field), rel=1e-6)


def test_fit_cli_writes_event_files_beside_the_curves(idx_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    out = tmp_path / "run"
    assert main(["fit", "--data-dir", str(idx_folder), "--epochs", "2", "--tensorboard",
                 "--out", str(out), "--device", "cpu", "-q"]) == 0
    assert (out / "curves.png").is_file()
    scalars, images = _events(out / "tensorboard")
    assert images == ["samples"] and len(scalars["accuracy/train"]) == 2
