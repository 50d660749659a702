"""Logistic regression from scratch: forward, loss, gradients and the SGD update by hand.

No autograd here: every gradient is the closed form, checked in the tests against
``torch.autograd`` (and ``torch.autograd.gradcheck`` in float64). Two models:

* binary: ``p = sigmoid(X @ w + b)``, loss ``mean(-y log p - (1 - y) log(1 - p))``,
  gradients ``dw = X.T @ (p - y) / n``, ``db = mean(p - y)``;
* softmax: ``P = softmax(X @ W + b)``, loss ``mean(-log P[i, y_i])``,
  gradients ``dW = X.T @ (P - Y) / n``, ``db = mean(P - Y, 0)`` with ``Y`` one-hot.

An optional L2 term ``weight_decay / 2 * ||w||^2`` adds ``weight_decay * w`` to the weight
gradient (the bias is not penalised).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(200, 2, generator=g); y = (X[:, 0] > 0).long()
    >>> params = train_binary(X, y, lr=0.5, epochs=200)
    >>> bool(binary_accuracy(params, X, y) > 0.95)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)

__all__ = [
    "BinaryParams",
    "SoftmaxParams",
    "binary_accuracy",
    "binary_forward",
    "binary_gradients",
    "binary_loss",
    "init_binary",
    "init_softmax",
    "sgd_step",
    "softmax_accuracy",
    "softmax_forward",
    "softmax_gradients",
    "softmax_loss",
    "train_binary",
    "train_softmax",
]


@dataclass
class BinaryParams:
    """Weights ``w`` ``[d]`` and bias ``b`` (a 0-dim tensor) of binary logistic regression."""

    w: torch.Tensor
    b: torch.Tensor


@dataclass
class SoftmaxParams:
    """Weights ``W`` ``[d, k]`` and bias ``b`` ``[k]`` of softmax regression."""

    W: torch.Tensor
    b: torch.Tensor


def init_binary(d: int, *, dtype: torch.dtype = torch.float32) -> BinaryParams:
    """Return zero-initialised binary parameters for ``d`` features (the loss is convex)."""
    return BinaryParams(torch.zeros(d, dtype=dtype), torch.zeros((), dtype=dtype))


def init_softmax(d: int, k: int, *, dtype: torch.dtype = torch.float32) -> SoftmaxParams:
    """Return zero-initialised softmax parameters for ``d`` features and ``k`` classes."""
    return SoftmaxParams(torch.zeros(d, k, dtype=dtype), torch.zeros(k, dtype=dtype))


def _flat(X: torch.Tensor) -> torch.Tensor:
    return X.flatten(1) if X.dim() > 2 else X


def binary_forward(params: BinaryParams, X: torch.Tensor) -> torch.Tensor:
    """Return the probabilities ``sigmoid(X @ w + b)``, shape ``[n]``."""
    return torch.sigmoid(_flat(X) @ params.w + params.b)


def binary_loss(
    params: BinaryParams, X: torch.Tensor, y: torch.Tensor, *, weight_decay: float = 0.0
) -> torch.Tensor:
    """Return the mean binary cross-entropy (plus the L2 term), computed stably from logits."""
    z = _flat(X) @ params.w + params.b
    y = y.to(z.dtype)
    # log(1 + exp(z)) - y z, written with softplus so large |z| neither overflows nor gives nan
    loss = (torch.nn.functional.softplus(z) - y * z).mean()
    return loss + 0.5 * weight_decay * (params.w * params.w).sum()


def binary_gradients(
    params: BinaryParams, X: torch.Tensor, y: torch.Tensor, *, weight_decay: float = 0.0
) -> BinaryParams:
    """Return ``(dL/dw, dL/db)`` of :func:`binary_loss` in closed form."""
    X = _flat(X)
    residual = binary_forward(params, X) - y.to(X.dtype)
    n = X.shape[0]
    return BinaryParams(X.T @ residual / n + weight_decay * params.w, residual.mean())


def softmax_forward(params: SoftmaxParams, X: torch.Tensor) -> torch.Tensor:
    """Return the class probabilities ``softmax(X @ W + b)``, shape ``[n, k]``."""
    logits = _flat(X) @ params.W + params.b
    logits = logits - logits.max(dim=1, keepdim=True).values  # shift: exp never overflows
    exp = logits.exp()
    return exp / exp.sum(dim=1, keepdim=True)


def softmax_loss(
    params: SoftmaxParams, X: torch.Tensor, y: torch.Tensor, *, weight_decay: float = 0.0
) -> torch.Tensor:
    """Return the mean cross-entropy ``-log P[i, y_i]`` (plus the L2 term)."""
    logits = _flat(X) @ params.W + params.b
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    loss = -log_probs[torch.arange(len(y)), y.long()].mean()
    return loss + 0.5 * weight_decay * (params.W * params.W).sum()


def softmax_gradients(
    params: SoftmaxParams, X: torch.Tensor, y: torch.Tensor, *, weight_decay: float = 0.0
) -> SoftmaxParams:
    """Return ``(dL/dW, dL/db)`` of :func:`softmax_loss` in closed form."""
    X = _flat(X)
    residual = softmax_forward(params, X)
    residual[torch.arange(len(y)), y.long()] -= 1.0  # P - one_hot(y)
    n = X.shape[0]
    return SoftmaxParams(X.T @ residual / n + weight_decay * params.W, residual.mean(dim=0))


def sgd_step(
    params: BinaryParams | SoftmaxParams, grads: BinaryParams | SoftmaxParams, lr: float
) -> None:
    """Apply ``param -= lr * grad`` in place to every field of ``params``."""
    for name in vars(params):
        getattr(params, name).sub_(lr * getattr(grads, name))


def binary_accuracy(params: BinaryParams, X: torch.Tensor, y: torch.Tensor) -> float:
    """Return the fraction of samples whose thresholded probability equals the label."""
    return ((binary_forward(params, X) > 0.5).long() == y.long()).double().mean().item()


def softmax_accuracy(params: SoftmaxParams, X: torch.Tensor, y: torch.Tensor) -> float:
    """Return the fraction of samples whose most probable class equals the label."""
    return (softmax_forward(params, X).argmax(dim=1) == y.long()).double().mean().item()


def _minibatches(n: int, batch_size: int | None, generator: torch.Generator
                 ) -> Iterator[torch.Tensor]:
    if batch_size is None or batch_size >= n:
        yield torch.arange(n)
        return
    order = torch.randperm(n, generator=generator)
    yield from order.split(batch_size)


def _descend(
    params: Any, X: torch.Tensor, y: torch.Tensor, gradients: Callable[..., Any],
    loss: Callable[..., torch.Tensor], *, lr: float, epochs: int, batch_size: int | None,
    weight_decay: float, seed: int,
) -> None:
    """The hand-written loop both models share: gradients of a minibatch, then ``sgd_step``."""
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        for idx in _minibatches(len(X), batch_size, generator):
            sgd_step(params, gradients(params, X[idx], y[idx], weight_decay=weight_decay), lr)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("epoch %d loss %.6f", epoch + 1, loss(params, X, y).item())


def train_binary(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float = 0.1,
    epochs: int = 100,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> BinaryParams:
    """Fit binary logistic regression by hand-written (minibatch) gradient descent.

    Args:
        X: inputs ``[n, d]`` (more dims are flattened).
        y: labels 0/1 ``[n]``.
        lr: learning rate.
        epochs: passes over the data.
        batch_size: minibatch size; None for full-batch gradient descent.
        weight_decay: L2 strength on ``w``.
        seed: seed of the shuffling generator.

    Returns:
        The fitted parameters.
    """
    X = _flat(X)
    params = init_binary(X.shape[1], dtype=X.dtype)
    _descend(params, X, y, binary_gradients, binary_loss, lr=lr, epochs=epochs,
             batch_size=batch_size, weight_decay=weight_decay, seed=seed)
    return params


def train_softmax(
    X: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    *,
    lr: float = 0.1,
    epochs: int = 100,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> SoftmaxParams:
    """Fit softmax regression by hand-written (minibatch) gradient descent.

    Args:
        X: inputs ``[n, d]`` (more dims are flattened).
        y: labels ``0..num_classes-1`` ``[n]``.
        num_classes: number of classes.
        lr: learning rate.
        epochs: passes over the data.
        batch_size: minibatch size; None for full-batch gradient descent.
        weight_decay: L2 strength on ``W``.
        seed: seed of the shuffling generator.

    Returns:
        The fitted parameters.
    """
    X = _flat(X)
    params = init_softmax(X.shape[1], num_classes, dtype=X.dtype)
    _descend(params, X, y, softmax_gradients, softmax_loss, lr=lr, epochs=epochs,
             batch_size=batch_size, weight_decay=weight_decay, seed=seed)
    return params
