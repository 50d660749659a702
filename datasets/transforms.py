"""Transforms that work on one image or on a whole batch at once.

The image datasets store pixels as ``uint8``. Their default transform, :class:`ToFloat`,
turns them into normalized ``float32`` with one fused operation. Because it accepts any
leading shape (``[1,H,W]`` for a sample, ``[B,1,H,W]`` for a batch), a dataset applies it once
per batch in ``__getitems__`` instead of once per sample.

Any other callable (for example a ``torchvision.transforms.v2`` pipeline) is a *per-sample*
transform: the dataset hands it a ``PIL.Image`` in mode ``"L"``, exactly as torchvision's own
``MNIST`` and ``ImageFolder`` do, so existing pipelines work as given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

log = logging.getLogger(__name__)

__all__ = ["BatchTransform", "Compose", "ToFloat", "is_batch_transform"]

DEFAULT_MEAN = 0.5
DEFAULT_STD = 0.5


class BatchTransform:
    """Base of transforms that take a tensor of any leading shape (sample or batch).

    Subclasses implement :meth:`__call__` on a tensor ``[..., H, W]`` and must give the same
    result for a batch as for each of its samples stacked.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class ToFloat(BatchTransform):
    """Convert ``uint8`` pixels to ``float32`` as ``(x / 255 - mean) / std``.

    The defaults ``mean=0.5, std=0.5`` map pixels to ``[-1, 1]``; they are fixed constants
    rather than statistics of one split, so train and test are always normalized alike.
    ``ToFloat(mean=0.0, std=1.0)`` gives plain ``x / 255`` in ``[0, 1]``.

    Args:
        mean: subtracted after scaling to ``[0, 1]``.
        std: divisor after subtracting ``mean``; must be positive.

    Example:
        >>> ToFloat()(torch.tensor([[0, 255]], dtype=torch.uint8))
        tensor([[-1.,  1.]])
    """

    def __init__(self, mean: float = DEFAULT_MEAN, std: float = DEFAULT_STD) -> None:
        if not std > 0:
            raise ValueError(f"std should be a positive float, but got std={std!r}")
        self.mean = float(mean)
        self.std = float(std)
        # One multiply-add: x * scale + shift == (x / 255 - mean) / std.
        self._scale = 1.0 / (255.0 * self.std)
        self._shift = -self.mean / self.std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"ToFloat expects a uint8 tensor, but got dtype={x.dtype}")
        out = x.to(torch.float32)
        return out.mul_(self._scale).add_(self._shift)

    def __repr__(self) -> str:
        return f"ToFloat(mean={self.mean}, std={self.std})"


class Compose(BatchTransform):
    """Chain batch transforms; the result is still a batch transform.

    Args:
        transforms: batch transforms applied left to right.
    """

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        for t in transforms:
            if not is_batch_transform(t):
                raise TypeError(
                    "datasets.transforms.Compose takes batch transforms only, but got "
                    f"{t!r}; use torchvision.transforms.v2.Compose for per-sample transforms"
                )
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def is_batch_transform(transform: Any) -> bool:
    """Return whether ``transform`` may be applied once to a whole batch."""
    return isinstance(transform, BatchTransform)
