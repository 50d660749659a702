"""Checkpoints: a run stopped after k epochs and resumed equals an uninterrupted run, bit for bit."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import datasets
from training import CheckpointError, EarlyStopping, FitConfig, History, LogisticRegression, fit
from training.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 6, generator=g) * 2
    y = torch.randint(0, 4, (240,), generator=g)
    return centers[y] + torch.randn(240, 6, generator=g), y


def _loader(x, y, *, generator: bool, cls: type = DataLoader) -> DataLoader:
    gen = torch.Generator().manual_seed(123) if generator else None
    return cls(TensorDataset(x, y), batch_size=16, shuffle=True, generator=gen)


def _run(tmp: Path | None, epochs: int, *, resume: bool, generator: bool, init_seed: int = 0,
         callbacks=(), cls: type = DataLoader) -> tuple[LogisticRegression, History]:
    x, y = _data()
    torch.manual_seed(init_seed)
    model = LogisticRegression(6, 4)
    valid = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32)
    history = fit(model, _loader(x, y, generator=generator, cls=cls), valid,
                  config=FitConfig(optimizer="sgd", lr=0.05, momentum=0.9, epochs=epochs, seed=3,
                                   device="cpu"),
                  checkpoint_dir=tmp, resume=resume, callbacks=callbacks)
    return model, history


@pytest.mark.parametrize("cls", [DataLoader, datasets.DataLoader], ids=["torch", "ours"])
@pytest.mark.parametrize("generator", [False, True])
def test_resume_is_bit_identical_to_uninterrupted_run(tmp_path: Path, generator: bool,
                                                      cls: type) -> None:
    full_model, full = _run(None, 5, resume=False, generator=generator, cls=cls)
    _run(tmp_path, 2, resume=False, generator=generator, cls=cls)
    # a different initialisation proves the weights come from the checkpoint
    resumed_model, resumed = _run(tmp_path, 5, resume=True, generator=generator, init_seed=99,
                                  cls=cls)
    assert torch.equal(full_model.weight, resumed_model.weight)
    assert torch.equal(full_model.bias, resumed_model.bias)
    assert resumed.epoch == [1, 2, 3, 4, 5]
    assert resumed.train_loss == full.train_loss
    assert resumed.valid_accuracy == full.valid_accuracy


def test_resume_keeps_early_stopping_state(tmp_path: Path) -> None:
    stopper = EarlyStopping("valid_loss", patience=5)
    _run(tmp_path, 2, resume=False, generator=False, callbacks=[stopper])
    fresh = EarlyStopping("valid_loss", patience=5)
    _run(tmp_path, 3, resume=True, generator=False, callbacks=[fresh])
    assert fresh.best_epoch >= stopper.best_epoch >= 1
    assert fresh.best <= stopper.best


def _stopper() -> EarlyStopping:
    # min_delta so large that only the first epoch counts as an improvement: stops after epoch 2
    return EarlyStopping("valid_loss", patience=0, min_delta=1e9)


def test_resume_of_a_run_that_stopped_early_does_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, first = _run(tmp_path, 10, resume=False, generator=False, callbacks=[_stopper()])
    assert first.stopped_early and first.epoch == [1, 2]
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    for _ in range(3):  # the same call again and again: no more epochs, the checkpoint untouched
        with caplog.at_level(logging.INFO, logger="training.fit"):
            model, again = _run(tmp_path, 10, resume=True, generator=False,
                                callbacks=[_stopper()], init_seed=99)
        assert again == first
        assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    assert "nothing to resume" in caplog.text and "stopped early after epoch 2" in caplog.text
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert torch.equal(model.weight, payload["model"]["weight"])  # the trained weights, not init


def test_resume_of_a_finished_run_does_nothing(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    _, first = _run(tmp_path, 3, resume=False, generator=False)
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    with caplog.at_level(logging.INFO, logger="training.fit"):
        _, again = _run(tmp_path, 3, resume=True, generator=False)
    assert again == first and again.epoch == [1, 2, 3]
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    assert "nothing to resume" in caplog.text and "already reached epoch 3 of 3" in caplog.text


def test_resume_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    _, history = _run(tmp_path, 1, resume=True, generator=False)
    assert history.epoch == [1]
    assert (tmp_path / "checkpoint.pt").is_file()


def test_checkpoint_holds_model_optimizer_epoch_and_rng(tmp_path: Path) -> None:
    _run(tmp_path, 2, resume=False, generator=True)
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["epoch"] == 2
    assert set(payload["model"]) == {"weight", "bias"}
    assert payload["optimizer"]["state"]  # momentum buffers
    assert "torch" in payload["rng"] and payload["loader"]
    assert payload["config"]["momentum"] == 0.9


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="delete it to start over"):
        _run(tmp_path, 2, resume=True, generator=False)


def test_checkpoint_of_another_model_raises_checkpoint_error(tmp_path: Path) -> None:
    _run(tmp_path, 1, resume=False, generator=False)
    x, y = _data()
    with pytest.raises(CheckpointError, match="does not match this model"):
        fit(LogisticRegression(6, 3), _loader(x, y, generator=False),
            config=FitConfig(epochs=2, device="cpu"),
            checkpoint_dir=tmp_path, resume=True)


def test_resume_with_another_optimizer_raises_checkpoint_error(tmp_path: Path) -> None:
    _run(tmp_path, 1, resume=False, generator=False)  # sgd
    x, y = _data()
    with pytest.raises(CheckpointError, match="written by optimizer 'sgd' but this run uses 'adam'"):
        fit(LogisticRegression(6, 4), _loader(x, y, generator=False),
            config=FitConfig(optimizer="adam", epochs=2, device="cpu"),
            checkpoint_dir=tmp_path, resume=True)


def test_load_missing_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="run fit with checkpoint_dir first"):
        load_checkpoint(tmp_path / "nope.pt")


def test_rng_state_round_trip() -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_zero_byte_checkpoint_gives_a_reason(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: the file is empty \(0 bytes\).*"
                       "delete it to start over"):
        _run(tmp_path, 2, resume=True, generator=False)


@pytest.mark.parametrize("keep", [1, 100, 0.5, -22])
def test_truncated_checkpoint_gives_a_reason(tmp_path: Path, keep: float) -> None:
    _run(tmp_path, 1, resume=False, generator=False)
    path = tmp_path / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    reason = str(caught.value).split("checkpoint.pt: ", 1)[1].split(" (damaged", 1)[0]
    assert len(reason) > 3 and "delete it to start over" in str(caught.value)


def test_checkpoint_without_the_run_state_is_a_checkpoint_error(tmp_path: Path) -> None:
    torch.save({"format": 1, "model": LogisticRegression(6, 4).state_dict(),
                "optimizer": torch.optim.SGD(LogisticRegression(6, 4).parameters(),
                                             lr=0.1).state_dict()}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="incomplete or damaged.*KeyError"):
        _run(tmp_path, 2, resume=True, generator=False)


def test_a_text_file_as_checkpoint_names_what_torch_raised(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"  # torch.load answers a bare KeyError('e') or similar
    path.write_text("hello world\nthis is text\n")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    reason = str(caught.value).split("checkpoint.pt: ", 1)[1].split(" (damaged", 1)[0]
    assert reason.startswith(type(caught.value.__cause__).__name__ + ": "), reason
