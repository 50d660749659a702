"""Learning-rate schedules: torch's own schedulers as the oracle, per step in fit, on resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from training import FitConfig, LogisticRegression, fit
from training.optim import StepSchedule, make_optimizer


def _torch_rates(name: str, total: int) -> list[float]:
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    scheduler: torch.optim.lr_scheduler.LRScheduler
    if name == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=total,
                                                        cycle_momentum=False)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("name", ["onecycle", "cosine"])
@pytest.mark.parametrize("total", [4, 10, 37, 110])
def test_step_schedule_matches_torch_schedulers(name: str, total: int) -> None:
    ours = [StepSchedule(name, total).factor(step) for step in range(total)]
    assert ours == pytest.approx(_torch_rates(name, total), abs=1e-12)


def test_step_schedule_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"schedule should be one of .*, but got schedule='step'"):
        StepSchedule("step", 10)
    with pytest.raises(ValueError, match="total_steps should be a positive int"):
        StepSchedule("cosine", 0)
    with pytest.raises(ValueError, match="schedule should be one of"):
        FitConfig(schedule="linear")


def _blobs(n: int = 96):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.randn(3, 4, generator=g)[y] * 3 + torch.randn(n, 4, generator=g), y


class _RecordingAdamW(torch.optim.AdamW):
    def __init__(self, params, rates: list[float]) -> None:
        super().__init__(params, lr=0.2)
        self.rates = rates

    def step(self, closure=None):
        self.rates.append(self.param_groups[0]["lr"])
        return super().step(closure)


@pytest.mark.parametrize("name", ["onecycle", "cosine"])
def test_fit_sets_the_scheduled_rate_before_every_step(name: str) -> None:
    x, y = _blobs()
    model = LogisticRegression(4, 3)
    rates: list[float] = []
    fit(model, DataLoader(TensorDataset(x, y), batch_size=16),  # 6 steps per epoch
        config=FitConfig(epochs=3, device="cpu", schedule=name),
        optimizer=_RecordingAdamW(model.parameters(), rates))
    assert rates == pytest.approx([0.2 * r for r in _torch_rates(name, 18)], abs=1e-12)


def test_constant_schedule_leaves_the_rate_alone() -> None:
    x, y = _blobs()
    model = LogisticRegression(4, 3)
    rates: list[float] = []
    fit(model, DataLoader(TensorDataset(x, y), batch_size=16),
        config=FitConfig(epochs=2, device="cpu"),
        optimizer=_RecordingAdamW(model.parameters(), rates))
    assert rates == [0.2] * 12


class _Interrupt:
    def on_epoch_end(self, epoch: int, history, model) -> bool:
        if epoch == 3:
            raise KeyboardInterrupt
        return False


def _scheduled_run(out: Path | None, *, resume: bool = False, callbacks=()) -> torch.Tensor:
    x, y = _blobs()
    torch.manual_seed(5 if resume else 0)  # a resumed model starts elsewhere and is restored
    model = LogisticRegression(4, 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(1))
    fit(model, loader, config=FitConfig(optimizer="adamw", lr=0.05, epochs=5, device="cpu",
                                        schedule="onecycle"),
        checkpoint_dir=out, resume=resume, callbacks=callbacks)
    return model.weight.detach().clone()


def test_resume_of_a_scheduled_run_is_bit_identical(tmp_path: Path) -> None:
    full = _scheduled_run(None)
    with pytest.raises(KeyboardInterrupt):
        _scheduled_run(tmp_path, callbacks=[_Interrupt()])  # the checkpoint holds epoch 2
    assert torch.equal(_scheduled_run(tmp_path, resume=True), full)


def test_schedule_with_lbfgs_is_refused() -> None:
    x, y = _blobs()
    with pytest.raises(ValueError, match="L-BFGS takes one full-batch step per epoch"):
        fit(LogisticRegression(4, 3), DataLoader(TensorDataset(x, y), batch_size=16),
            config=FitConfig(optimizer="lbfgs", lr=1.0, epochs=1, device="cpu",
                             schedule="cosine"))


def test_adamw_decouples_weight_decay() -> None:
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = make_optimizer("adamw", [weight], lr=0.1, weight_decay=0.5)
    assert isinstance(optimizer, torch.optim.AdamW)
    weight.grad = torch.zeros(3)
    optimizer.step()  # no gradient: only the decoupled decay moves it, by lr * wd
    assert torch.allclose(weight.detach(), torch.full((3,), 1 - 0.1 * 0.5))
