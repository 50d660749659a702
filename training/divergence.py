"""Stop a diverged run: a NaN or infinite loss or weight is an error naming where it appeared.

:func:`training.fit` checks after every epoch (the per-step losses stay on the device, so the
check costs one read per epoch, not one per step); the examples check after every step.

Example:
    >>> from torch import nn
    >>> model = nn.Linear(1, 1)
    >>> check_finite(model, [torch.tensor(0.5), torch.tensor(float("nan"))], epoch=3, lr=1e6)
    Traceback (most recent call last):
    ...
    training.errors.DivergenceError: expected a finite training loss but got nan at step 2 of epoch 3 (lr=1000000.0); lower the learning rate, or check the inputs and labels for NaN/inf
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from torch import nn

from training.checkpoint import unwrap
from training.errors import DivergenceError

log = logging.getLogger(__name__)

__all__ = ["check_finite"]


def check_finite(model: nn.Module, losses: Sequence[torch.Tensor], *, epoch: int,
                 lr: float, mean_loss: float | None = None) -> None:
    """Raise if a step's loss, or a weight after the epoch, is NaN or infinite.

    Args:
        model: the model trained (a DDP wrapper is looked through).
        losses: this process's loss of every step of the epoch, in order (one for a
            full-batch epoch).
        epoch: the epoch that produced them (1-based), named in the message.
        lr: the learning rate, named in the message.
        mean_loss: the epoch's mean loss over every process, when known: under DDP another
            rank's step may be the bad one, and every rank must stop.

    Raises:
        DivergenceError: the first non-finite loss (its step and value), else a non-finite
            ``mean_loss``, else the first parameter holding a non-finite value (its name and
            that value).
    """
    advice = f"(lr={lr}); lower the learning rate, or check the inputs and labels for NaN/inf"
    if losses:
        stacked = torch.stack([loss.detach().reshape(()) for loss in losses])
        bad = torch.nonzero(~torch.isfinite(stacked))
        if len(bad):
            step = int(bad[0, 0])
            where = f"step {step + 1} of epoch {epoch}" if len(losses) > 1 else f"epoch {epoch}"
            raise DivergenceError(f"expected a finite training loss but got "
                                  f"{stacked[step].item()} at {where} {advice}")
    if mean_loss is not None and not math.isfinite(mean_loss):
        raise DivergenceError(f"expected a finite training loss but got {mean_loss} at epoch "
                              f"{epoch} {advice}")
    for name, weight in unwrap(model).named_parameters():
        finite = torch.isfinite(weight.detach())
        if not bool(finite.all()):
            value = weight.detach()[~finite].reshape(-1)[0].item()
            raise DivergenceError(f"expected finite weights but {name} holds {value} after "
                                  f"epoch {epoch} {advice}")
