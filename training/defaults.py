"""Each model's training defaults, in one table: what ``python -m training fit`` uses unflagged.

An explicit flag always wins (``--optimizer``, ``--lr``, ``--batch-size``, ``--schedule``,
``--momentum``, ``--weight-decay``). The optimizer's settings (learning rate, momentum, weight
decay) depend on the model *and* the optimizer, so choosing another optimizer with
``--optimizer`` also picks that optimizer's settings for the model (or the generic ones).

How the CNN row was chosen (issue 19; the README has the table of runs): standard practice for
small convolutional networks trained for a few epochs is AdamW (decoupled weight decay) with a
one-cycle schedule and small batches; a 700-image folder at batch 128 gives 6 steps per epoch,
too few to learn from, at batch 32 it gives 22. The linear models keep what they had. The bow
row is the text recipe's (:data:`training.text.TEXT_DEFAULTS`, chosen as the README's "How the
text defaults were chosen" says), so ``fit --model bow`` and the text example train alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from training.optim import OPTIMIZERS
from training.text import TEXT_DEFAULTS

log = logging.getLogger(__name__)

__all__ = ["GENERIC_OPTIMIZERS", "MODEL_DEFAULTS", "ModelDefaults", "OptimizerDefaults",
           "default_lr", "describe_defaults"]


@dataclass(frozen=True)
class OptimizerDefaults:
    """An optimizer's settings for one model.

    Args:
        lr: learning rate (the peak of a one-cycle schedule).
        momentum: SGD momentum (other optimizers ignore it).
        weight_decay: L2 strength (AdamW: decoupled). L-BFGS ignores it: the command line
            uses ``1 / n_train`` there, scikit-learn's ``C=1``.
    """

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0


GENERIC_OPTIMIZERS = {
    "sgd": OptimizerDefaults(0.1),
    "adam": OptimizerDefaults(0.01),
    "adamw": OptimizerDefaults(0.001, weight_decay=0.01),  # torch's own defaults
    "lbfgs": OptimizerDefaults(1.0),
}


@dataclass(frozen=True)
class ModelDefaults:
    """One model's defaults: its optimizer, batch size, schedule and per-optimizer settings.

    Args:
        optimizer: the optimizer used when ``--optimizer`` is not given.
        batch_size: training batch size.
        schedule: ``"constant"``, ``"cosine"`` or ``"onecycle"`` (L-BFGS always constant).
        optimizers: ``(name, settings)`` pairs that differ from :data:`GENERIC_OPTIMIZERS`.
        epochs: the number of epochs (the most, with early stopping).
        patience: early stopping's patience on the validation loss; None: off.

    Example:
        >>> MODEL_DEFAULTS["cnn"].settings("sgd").momentum
        0.9
    """

    optimizer: str
    batch_size: int = 128
    schedule: str = "constant"
    optimizers: tuple[tuple[str, OptimizerDefaults], ...] = ()
    epochs: int = 5
    patience: int | None = None

    def settings(self, optimizer: str) -> OptimizerDefaults:
        """Return the settings of ``optimizer`` for this model."""
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer should be one of {list(OPTIMIZERS)}, but got "
                             f"optimizer={optimizer!r}")
        return dict(self.optimizers).get(optimizer, GENERIC_OPTIMIZERS[optimizer])


MODEL_DEFAULTS = {
    "linear": ModelDefaults(  # squared error on 784 inputs diverges at lr 0.1
        "sgd", optimizers=(("sgd", OptimizerDefaults(0.01)),)),
    "logistic": ModelDefaults("sgd"),
    "cnn": ModelDefaults(
        "adamw", batch_size=32, schedule="onecycle",
        optimizers=(("adamw", OptimizerDefaults(0.003, weight_decay=0.05)),
                    ("adam", OptimizerDefaults(0.001)),
                    ("sgd", OptimizerDefaults(0.05, momentum=0.9, weight_decay=5e-4)))),
    # the text recipe's; SGD needs a huge lr on rows of L2-normalized TF-IDF bags
    "bow": ModelDefaults(
        TEXT_DEFAULTS.optimizer, batch_size=TEXT_DEFAULTS.batch_size,
        schedule=TEXT_DEFAULTS.schedule, epochs=TEXT_DEFAULTS.epochs,
        patience=TEXT_DEFAULTS.patience,
        optimizers=((TEXT_DEFAULTS.optimizer, OptimizerDefaults(
            TEXT_DEFAULTS.lr, weight_decay=TEXT_DEFAULTS.weight_decay)),
                    ("sgd", OptimizerDefaults(8.0)), ("adam", OptimizerDefaults(0.02)))),
}


def default_lr(optimizer: str, model: str) -> float:
    """Return the learning rate the command lines use when ``--lr`` is not given.

    Example:
        >>> default_lr("sgd", "logistic"), default_lr("adamw", "cnn")
        (0.1, 0.003)
    """
    return _row(model).settings(optimizer).lr


def _row(model: str) -> ModelDefaults:
    if model not in MODEL_DEFAULTS:
        raise ValueError(f"model should be one of {list(MODEL_DEFAULTS)}, but got model={model!r}")
    return MODEL_DEFAULTS[model]


def describe_defaults() -> str:
    """Return the table of defaults as ``fit --help`` prints it, one line per model."""
    lines = ["defaults per model (a flag overrides each; another --optimizer brings its own):"]
    for model, row in MODEL_DEFAULTS.items():
        others = "; ".join(f"{name} {_settings(s)}" for name, s in row.optimizers
                           if name != row.optimizer)
        stop = f", early stopping patience {row.patience}" if row.patience is not None else ""
        lines.append(f"  {model:<9} {row.optimizer} {_settings(row.settings(row.optimizer))}, "
                     f"batch {row.batch_size}, {row.schedule} schedule, {row.epochs} epochs{stop}"
                     + (f" (with {others})" if others else ""))
    lines.append(f"  {'':<9} {TEXT_DEFAULTS.describe()}")
    return "\n".join(lines)


def _settings(settings: OptimizerDefaults) -> str:
    return "".join([f"lr {settings.lr:g}",
                    f", momentum {settings.momentum:g}" if settings.momentum else "",
                    f", weight decay {settings.weight_decay:g}" if settings.weight_decay else ""])
