"""Optional TensorBoard event files: loss and accuracy per epoch, and a grid of input samples.

``python -m training fit ... --tensorboard`` writes them into ``<out>/tensorboard/`` (view with
``tensorboard --logdir runs``); ``curves.png`` is written as always. From Python, pass a
:class:`TensorBoardLogger` in ``fit(..., callbacks=[...])``. It needs the ``tensorboard``
package, the project's ``tensorboard`` extra (``pip install -e '.[tensorboard]'``); without it
:func:`summary_writer_class` raises a :class:`~training.errors.TrainingError` that says so in
one line.

Scalars are tagged ``loss/train``, ``loss/valid``, ``accuracy/train``, ``accuracy/valid`` and
``lr``, with the epoch as the step; the sample grid is the image ``samples``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from training.errors import TrainingError

if TYPE_CHECKING:
    from training.history import History

log = logging.getLogger(__name__)

__all__ = ["TensorBoardLogger", "first_images", "summary_writer_class"]

_SCALARS = (("train_loss", "loss/train"), ("valid_loss", "loss/valid"),
            ("train_accuracy", "accuracy/train"), ("valid_accuracy", "accuracy/valid"),
            ("lr", "lr"))
INSTALL_HINT = ("install the tensorboard extra: pip install -e '.[tensorboard]' (or pip install "
                "tensorboard), or leave out --tensorboard / TensorBoardLogger")


def summary_writer_class() -> Any:
    """Return ``torch.utils.tensorboard.SummaryWriter``.

    Raises:
        TrainingError: the ``tensorboard`` package is not installed (one line, how to fix).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # torch raises ImportError when tensorboard is missing
        raise TrainingError(f"TensorBoard logging needs the tensorboard package, which is not "
                            f"installed ({err}); {INSTALL_HINT}") from err
    return SummaryWriter


def first_images(loader: Any) -> torch.Tensor | None:
    """The inputs of a loader's first batch, when they are an image tensor (else ``None``)."""
    batch = next(iter(loader), None)
    images = batch[0] if isinstance(batch, (tuple, list)) else None
    return images if isinstance(images, torch.Tensor) and images.dim() in (3, 4) else None


class TensorBoardLogger:
    """A :func:`training.fit` callback writing TensorBoard scalars per epoch and a sample grid.

    Args:
        log_dir: the folder of the event files (created).
        samples: an input batch ``[B, C, H, W]`` (or ``[B, H, W]``) drawn once as a grid.
        nrow: images per row of the grid.

    Raises:
        TrainingError: tensorboard is not installed.

    Example:
        >>> import tempfile  # doctest: +SKIP
        >>> logger = TensorBoardLogger(tempfile.mkdtemp())  # doctest: +SKIP
        >>> fit(model, train, valid, callbacks=[logger]); logger.close()  # doctest: +SKIP
    """

    def __init__(self, log_dir: str | os.PathLike[str], *, samples: torch.Tensor | None = None,
                 nrow: int = 8) -> None:
        self.log_dir = Path(log_dir)
        self.writer = summary_writer_class()(log_dir=str(self.log_dir))
        if samples is not None:
            self.add_samples(samples, nrow=nrow)

    def add_samples(self, images: torch.Tensor, *, nrow: int = 8, step: int = 0) -> None:
        """Draw a batch of inputs as one image (each stretched to its own range)."""
        from torchvision.utils import make_grid

        images = images.detach().float().cpu()
        if images.dim() == 3:
            images = images.unsqueeze(1)
        if images.dim() != 4:
            raise ValueError(f"samples should be images [B, C, H, W], but got shape "
                             f"{tuple(images.shape)}")
        grid = make_grid(images[:64], nrow=nrow, normalize=True, scale_each=True, pad_value=0.5)
        self.writer.add_image("samples", grid, step)

    def on_epoch_end(self, epoch: int, history: History, model: nn.Module) -> bool:
        """Write this epoch's losses, accuracies and learning rate; never asks to stop."""
        for field, tag in _SCALARS:
            values = getattr(history, field)
            if values and values[-1] is not None:
                self.writer.add_scalar(tag, float(values[-1]), epoch)
        self.writer.flush()
        return False

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
