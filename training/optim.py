"""Optimizer construction: SGD (momentum, weight decay), Adam, AdamW, full-batch L-BFGS, and
the learning-rate schedules (:class:`StepSchedule`: constant, cosine, one-cycle).

L-BFGS is a full-batch method for convex problems (linear/logistic regression): :func:`fit`
runs one ``optimizer.step(closure)`` per epoch, the closure evaluating the mean loss over the
whole training set. Its ``weight_decay`` is an explicit ``weight_decay / 2 * ||W||^2`` term on
the weight matrices only (not biases), which with ``weight_decay = 1 / (C * n)`` is exactly
scikit-learn's ``LogisticRegression(C=C)`` objective divided by ``C * n``.

A schedule is a pure function of the step number (``lr = base_lr * factor(step)``), set before
every optimizer step: a resumed run recomputes it from the epoch it resumes at, so nothing about
it is stored in the checkpoint and a resume stays bit-identical.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)

__all__ = ["OPTIMIZERS", "SCHEDULES", "StepSchedule", "is_full_batch", "l2_penalty",
           "make_optimizer", "scheduled_lr"]

OPTIMIZERS = ("adam", "adamw", "lbfgs", "sgd")
SCHEDULES = ("constant", "cosine", "onecycle")


def make_optimizer(
    name: str,
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    lbfgs_max_iter: int = 20,
) -> torch.optim.Optimizer:
    """Return a configured optimizer.

    Args:
        name: ``"sgd"``, ``"adam"``, ``"adamw"`` (decoupled weight decay) or ``"lbfgs"``.
        params: the parameters to optimise.
        lr: learning rate (L-BFGS: the step scale, 1.0 is usual with its line search).
        momentum: SGD momentum.
        weight_decay: L2 strength (SGD/Adam: ``weight_decay`` of the optimizer; L-BFGS: added
            to the closure's loss by :func:`fit`, weights only).
        lbfgs_max_iter: L-BFGS iterations per ``step`` (one step per epoch).

    Raises:
        ValueError: unknown name or a negative/zero hyper-parameter.
    """
    if not lr > 0:
        raise ValueError(f"lr should be a positive float, but got lr={lr!r}")
    if momentum < 0 or weight_decay < 0:
        raise ValueError(
            f"momentum and weight_decay should be >= 0, but got momentum={momentum!r}, "
            f"weight_decay={weight_decay!r}"
        )
    key = name.lower()
    if key == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if key == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if key == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if key == "lbfgs":
        return torch.optim.LBFGS(
            params,
            lr=lr,
            max_iter=lbfgs_max_iter,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-6,
            tolerance_change=1e-10,
        )
    raise ValueError(f"optimizer should be one of {', '.join(OPTIMIZERS)}, but got {name!r}")


def is_full_batch(optimizer: torch.optim.Optimizer) -> bool:
    """Return True for optimizers that need a closure over the whole training set (L-BFGS)."""
    return isinstance(optimizer, torch.optim.LBFGS)


def l2_penalty(model: nn.Module, weight_decay: float) -> torch.Tensor | float:
    """Return ``weight_decay / 2 * sum ||W||^2`` over the model's matrices (biases excluded)."""
    if weight_decay == 0:
        return 0.0
    total = sum((p * p).sum() for p in model.parameters() if p.requires_grad and p.dim() >= 2)
    return 0.5 * weight_decay * total


@dataclass(frozen=True)
class StepSchedule:
    """A learning-rate schedule over ``total_steps`` optimizer steps: ``base_lr * factor(step)``.

    - ``"constant"``: factor 1.
    - ``"cosine"``: half a cosine from 1 down to 0 over the run (Loshchilov & Hutter's SGDR
      without restarts; ``CosineAnnealingLR(T_max=total_steps)`` per step).
    - ``"onecycle"``: Smith's one-cycle as torch's ``OneCycleLR`` draws it (without its momentum
      cycling): a cosine rise from ``1 / 25`` to 1 over the first 30% of the steps, then a
      cosine fall to ``1 / 25e4``.

    Args:
        name: one of :data:`SCHEDULES`.
        total_steps: the optimizer steps of the whole run (epochs times batches per epoch).

    Example:
        >>> s = StepSchedule("onecycle", 10)
        >>> round(s.factor(0), 3), round(s.factor(2), 3), s.factor(9) < 1e-4
        (0.04, 1.0, True)
    """

    name: str
    total_steps: int

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"schedule should be one of {list(SCHEDULES)}, but got "
                             f"schedule={self.name!r}")
        if self.total_steps < 1:
            raise ValueError(f"total_steps should be a positive int, but got "
                             f"total_steps={self.total_steps!r}")

    def factor(self, step: int) -> float:
        """Return the multiplier of the base learning rate at ``step`` (0-based)."""
        if self.name == "constant":
            return 1.0
        if self.name == "cosine":
            return _cosine(1.0, 0.0, min(step, self.total_steps) / self.total_steps)
        peak = 0.3 * self.total_steps - 1  # OneCycleLR's phases: pct_start 0.3, in steps
        if step <= peak:
            return _cosine(1 / 25, 1.0, step / peak)
        return _cosine(1.0, 1 / 25e4, min(1.0, (step - peak) / (self.total_steps - 1 - peak)))

    def apply(self, optimizer: torch.optim.Optimizer, base_lrs: list[float], step: int) -> None:
        """Set each parameter group's ``lr`` to its base rate times :meth:`factor` of ``step``."""
        factor = self.factor(step)
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * factor


def scheduled_lr(name: str, optimizer: torch.optim.Optimizer, *,
                 total_steps: int) -> Callable[[int], None]:
    """Return ``set_lr(step)``: the optimizer's rates, as they are now, times ``name``'s factor.

    Raises:
        ValueError: an unknown schedule, or a schedule for L-BFGS (one step per epoch).
    """
    schedule = StepSchedule(name, total_steps)
    if is_full_batch(optimizer):
        raise ValueError(f"schedule={name!r} sets the rate per minibatch step, but L-BFGS "
                         "takes one full-batch step per epoch; use schedule='constant'")
    base_lrs = [float(group["lr"]) for group in optimizer.param_groups]  # before any resume

    def set_lr(step: int) -> None:
        schedule.apply(optimizer, base_lrs, step)

    return set_lr


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2
