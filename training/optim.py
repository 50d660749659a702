"""Optimizer construction: SGD (momentum, weight decay), Adam, and full-batch L-BFGS.

L-BFGS is a full-batch method for convex problems (linear/logistic regression): :func:`fit`
runs one ``optimizer.step(closure)`` per epoch, the closure evaluating the mean loss over the
whole training set. Its ``weight_decay`` is an explicit ``weight_decay / 2 * ||W||^2`` term on
the weight matrices only (not biases), which with ``weight_decay = 1 / (C * n)`` is exactly
scikit-learn's ``LogisticRegression(C=C)`` objective divided by ``C * n``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

log = logging.getLogger(__name__)

__all__ = ["OPTIMIZERS", "is_full_batch", "l2_penalty", "make_optimizer"]

OPTIMIZERS = ("adam", "lbfgs", "sgd")


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
        name: ``"sgd"``, ``"adam"`` or ``"lbfgs"``.
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
