"""Errors raised by :mod:`training`.

Every error derives from :class:`TrainingError`, so ``except TrainingError`` catches them all::

    TrainingError
    ├── CheckpointError      (also OSError)            a checkpoint cannot be written, read or applied
    ├── DivergenceError      (also FloatingPointError) the loss became NaN or infinite
    └── DistributedError     (also RuntimeError)       the torch.distributed setup is inconsistent

Wrong arguments raise plain ``ValueError``/``TypeError`` in torch's pattern
("epochs should be a positive int, but got epochs=0").
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every error raised by :mod:`training`."""


class CheckpointError(TrainingError, OSError):
    """A checkpoint is missing, corrupt, or does not match the model/optimizer it is loaded into."""


class DivergenceError(TrainingError, FloatingPointError):
    """The training loss became NaN or infinite; lower the learning rate, or check the data."""


class DistributedError(TrainingError, RuntimeError):
    """The torch.distributed environment is incomplete or inconsistent."""
