"""Callbacks called by :func:`training.fit` at the end of each epoch; early stopping.

A callback is any object with ``on_epoch_end(epoch, history, model) -> bool`` (True asks
``fit`` to stop) and, optionally, ``on_train_end(model)`` (called once after the last epoch,
stopped early or not); ``state_dict``/``load_state_dict`` make it survive a checkpoint resume.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import TYPE_CHECKING, Any, Protocol

from torch import nn

from training.history import count_noun

if TYPE_CHECKING:
    from training.history import History

log = logging.getLogger(__name__)

__all__ = ["Callback", "EarlyStopping"]


class Callback(Protocol):
    """What :func:`training.fit` calls after every epoch."""

    def on_epoch_end(self, epoch: int, history: History, model: nn.Module) -> bool:
        """Return True to stop training after this epoch."""
        ...


class EarlyStopping:
    """Stop when a validation metric has not improved for ``patience`` epochs.

    Args:
        monitor: a history key, ``"valid_loss"`` (default) or ``"valid_accuracy"``...
        patience: stop after this many epochs in a row without improvement (as Keras and
            Lightning count: 2 stops at the second; 0 and 1 both stop at the first).
        min_delta: smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy/f1, min otherwise).
        restore_best: load the best epoch's weights back into the model when training ends,
            stopped early or not (a run whose last epoch was not its best ends with the best).

    Example:
        >>> stopper = EarlyStopping(monitor="valid_accuracy", patience=2)
        >>> stopper.mode
        'max'
    """

    def __init__(
        self,
        monitor: str = "valid_loss",
        *,
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        if patience < 0:
            raise ValueError(f"patience should be an int >= 0, but got patience={patience!r}")
        if mode == "auto":
            mode = "max" if ("accuracy" in monitor or "f1" in monitor) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode should be 'min', 'max' or 'auto', but got mode={mode!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.restore_best = restore_best
        self.best: float = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.wait = 0
        self.best_state: dict[str, Any] | None = None
        self.last_epoch = 0
        self.restored = False  # the best weights are back in the model: restore once

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, history: History, model: nn.Module) -> bool:
        """Record the monitored value; return True once patience is exhausted."""
        values = getattr(history, self.monitor, None)
        if not values or values[-1] is None:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r} but the history has no value for it; "
                "pass a valid_loader to fit or monitor a train_* key"
            )
        value = float(values[-1])
        self.last_epoch, self.restored = epoch, False
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.wait += 1
        if self.wait >= self.patience:  # as Keras and Lightning count it
            log.info(
                "early stopping at epoch %d: %s has not improved on %.6g (epoch %d) for %s",
                epoch, self.monitor, self.best, self.best_epoch, count_noun(self.wait, "epoch"),
            )
            self.on_train_end(model)
            return True
        return False

    def on_train_end(self, model: nn.Module) -> None:
        """Load the best epoch's weights back into ``model`` (with ``restore_best``)."""
        if (not self.restore_best or self.best_state is None or self.restored
                or self.best_epoch == self.last_epoch):
            return
        model.load_state_dict(self.best_state)
        self.restored = True
        log.info("restored the weights of epoch %d (best %s %.6g)", self.best_epoch,
                 self.monitor, self.best)

    def state_dict(self) -> dict[str, Any]:
        """Return the counters and best weights, for checkpoints."""
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.wait = state["wait"]
        self.best_state = state["best_state"]
