"""Evaluation and prediction, and the batch plumbing shared with :func:`training.fit`.

Batches are ``(inputs, labels)`` pairs or dicts with ``"labels"``; :func:`split_batch` tells
them apart. Loss and accuracy sums stay on the device and are read once per pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from training import distributed
from training.checkpoint import unwrap
from training.metrics import (
    DENSE_CONFUSION_MAX_CLASSES,
    cell_scores,
    confusion_cells,
    dense_confusion,
    merge_cells,
    predictions_from_outputs,
)

log = logging.getLogger(__name__)

__all__ = ["evaluate", "predict", "resolve_device", "split_batch"]

_REGRESSION_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


def resolve_device(device: str | torch.device = "auto", *, flag: str | None = None) -> torch.device:
    """Return ``cuda`` when available for ``"auto"``, else the named device.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
        flag: the command-line option that gave ``device`` (``"--device"``), named in the
            error message; by default the message names the Python argument ``device=``.

    Raises:
        ValueError: the name is not a torch device, or CUDA (or that CUDA index) was asked for
            and is not available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            index = distributed.env_from_environ().local_rank if distributed.is_distributed() else None
            return torch.device("cuda", index) if index is not None else torch.device("cuda")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device should be 'auto', 'cpu', 'cuda' or 'cuda:N', but got device={device!r}"
        ) from err
    if resolved.type == "cuda":
        _check_cuda(device, resolved, flag)
    return resolved


def _check_cuda(device: str, resolved: torch.device, flag: str | None) -> None:
    if not torch.cuda.is_available():
        found, choices = "torch.cuda.is_available() is False", ["cpu", "auto"]
    else:
        count = torch.cuda.device_count()
        if resolved.index is None or resolved.index < count:
            return
        found = f"torch.cuda.device_count() is {count}"
        choices = [f"cuda:{i}" for i in range(count)] + ["cpu", "auto"]
    if flag is not None:
        advice = f"pass {flag} {', '.join(choices[:-1])} or {choices[-1]}"
    else:
        quoted = [repr(c) for c in choices]
        advice = f"pass device={', '.join(quoted[:-1])} or {quoted[-1]}"
    raise ValueError(f"expected an available device but got device={device!r} and {found}; "
                     f"{advice}")


def split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    """Return ``(inputs, labels)`` of an ``(x, y)`` batch or a dict batch with ``"labels"``.

    Raises:
        TypeError: the batch is neither.
    """
    if type(batch) in (list, tuple) and len(batch) == 2:  # the common case, checked first
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        if "labels" not in batch:
            raise TypeError(
                f"expected a dict batch with a 'labels' key but got keys {sorted(batch)}; "
                "collate text with datasets.pad_collate"
            )
        return {k: v for k, v in batch.items() if k != "labels"}, batch["labels"]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(
        f"expected an (inputs, labels) pair or a dict with 'labels' but got {type(batch).__name__}"
        f"{f' of length {len(batch)}' if isinstance(batch, (tuple, list)) else ''}; "
        "make the dataset return (x, y)"
    )


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        if obj.device == device:
            return obj
        return obj.to(device, non_blocking=obj.is_pinned())
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _is_classifier(model: nn.Module, criterion: nn.Module) -> bool:
    declared = getattr(criterion, "classification", None)  # e.g. cli.OneHotMSELoss
    if declared is not None:
        return bool(declared)
    if getattr(unwrap(model), "task", None) == "regression":
        return False
    return not isinstance(criterion, _REGRESSION_LOSSES)


def _default_loss(model: nn.Module) -> nn.Module:
    make = getattr(unwrap(model), "default_loss", None)
    return make() if callable(make) else nn.CrossEntropyLoss()


class _EpochStats:
    """Per-batch losses and predictions kept on the device; summed with one sync per epoch.

    Appending detached tensors to lists costs well under a microsecond and the accuracy needs
    one op per step (argmax); comparing with the labels happens once, in :meth:`totals`.
    Nothing is read back until :meth:`reduce`.
    """

    def __init__(self, device: torch.device, classify: bool) -> None:
        self.device = device
        self.losses: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.corrects: list[torch.Tensor] = []
        self.predicted: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.classify = classify
        self.data_s = 0.0
        self.compute_s = 0.0
        self.skipped = 0

    def add(self, outputs: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        self.losses.append(loss.detach())
        self.sizes.append(labels.shape[0])
        if self.classify:
            if outputs.dim() == 2 and outputs.shape[1] > 1 and labels.dim() == 1:
                # one op per step; compared with the labels once, at the end of the epoch
                self.predicted.append(outputs.detach().argmax(1))
                self.labels.append(labels)
            else:
                predicted = predictions_from_outputs(outputs.detach())
                self.corrects.append((predicted == labels.reshape(-1).long()).sum())

    def totals(self) -> torch.Tensor:
        """Return ``[loss_sum, correct, count]`` as a float64 tensor on the device."""
        count = float(sum(self.sizes))
        if not self.sizes:
            return torch.zeros(3, dtype=torch.float64, device=self.device)
        sizes = torch.tensor(self.sizes, dtype=torch.float64, device=self.device)
        loss_sum = (torch.stack(self.losses).to(torch.float64) * sizes).sum()
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        if self.corrects:
            correct = correct + torch.stack(self.corrects).sum()
        if self.predicted:
            hits = torch.cat(self.predicted) == torch.cat(self.labels).to(self.device)
            correct = correct + hits.sum()
        return torch.stack([loss_sum, correct, torch.tensor(count, dtype=torch.float64,
                                                            device=self.device)])

    def reduce(self, *, across_processes: bool = True) -> tuple[float, float | None, int]:
        """Return (mean loss, accuracy or None, count), summed over processes when asked."""
        totals = self.totals()
        if across_processes:
            totals = distributed.all_reduce_sum(totals)
        loss_sum, correct, count = totals.tolist()
        if count == 0:
            return float("nan"), None, 0
        return loss_sum / count, (correct / count if self.classify else None), int(count)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    loss: nn.Module | None = None,
    device: str | torch.device = "auto",
    report: bool = False,
) -> dict[str, Any]:
    """Return ``loss``, ``accuracy`` (None for regression) and ``count`` over a loader.

    Sums are all-reduced over processes when the loader is sharded by a
    ``DistributedSampler``. With ``report=True`` the dict also has ``confusion_cells`` (the
    matrix's nonzero cells as ``[true, predicted, count]`` rows, see
    :func:`training.metrics.confusion_cells`), ``confusion_matrix`` (rows true class; None
    above :data:`training.metrics.DENSE_CONFUSION_MAX_CLASSES` classes) and per-class
    ``precision``, ``recall``, ``f1``, ``support`` and ``macro_f1``.
    """
    target = resolve_device(device)
    criterion = (loss if loss is not None else _default_loss(model)).to(target)
    classify = _is_classifier(model, criterion)
    was_training = model.training
    model.eval()
    stats = _EpochStats(target, classify)
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (labels, predictions) per batch
    k = 0
    for batch in loader:
        if batch is None:
            continue
        inputs, labels = split_batch(batch)
        inputs, labels = _to_device(inputs, target), _to_device(labels, target)
        outputs = model(inputs)
        stats.add(outputs, labels, criterion(outputs, labels))
        if classify and report:
            k = outputs.shape[1] if outputs.dim() == 2 and outputs.shape[1] > 1 else 2
            pairs.append((labels.reshape(-1).long(), predictions_from_outputs(outputs)))
    model.train(was_training)
    sharded = isinstance(getattr(loader, "sampler", None), torch.utils.data.DistributedSampler)
    mean_loss, acc, count = stats.reduce(across_processes=sharded)
    result: dict[str, Any] = {"loss": mean_loss, "accuracy": (acc or 0.0) if classify else None, "count": count}
    if pairs:
        result.update(_confusion_report(pairs, k, sharded=sharded))
    return result


def _confusion_report(pairs: list[tuple[torch.Tensor, torch.Tensor]], k: int, *,
                      sharded: bool) -> dict[str, Any]:
    """The confusion matrix as nonzero cells (dense too, up to 100 classes) and the scores.

    Cells, not a ``k x k`` matrix: memory and ``metrics.json`` grow with the test samples, not
    with the square of the class count.
    """
    cells = confusion_cells(torch.cat([y for y, _ in pairs]), torch.cat([p for _, p in pairs]), k)
    if sharded:  # every rank gets every rank's cells (a list per rank, at most its samples)
        pieces: list[Any] = [None] * distributed.world_size()
        torch.distributed.all_gather_object(pieces, cells)
        cells = merge_cells(torch.cat(pieces), k)
    dense = dense_confusion(cells, k).tolist() if k <= DENSE_CONFUSION_MAX_CLASSES else None
    return {"confusion_matrix": dense, "confusion_cells": cells.tolist(), **cell_scores(cells, k)}


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable,
    *,
    device: str | torch.device = "auto",
    output: str = "labels",
) -> torch.Tensor:
    """Return predictions for every sample of a loader, on the CPU.

    Args:
        model: a trained model.
        loader: batches of inputs, ``(x, y)`` pairs or dicts (labels are ignored).
        device: where to run the model.
        output: ``"labels"`` (class ids; raw outputs for regression models),
            ``"probabilities"`` (sigmoid/softmax) or ``"logits"``.
    """
    if output not in ("labels", "probabilities", "logits"):
        raise ValueError(
            f"output should be 'labels', 'probabilities' or 'logits', but got output={output!r}"
        )
    target = resolve_device(device)
    was_training = model.training
    model.eval()
    regression = getattr(unwrap(model), "task", None) == "regression"
    chunks = []
    for batch in loader:
        if batch is None:
            continue
        if isinstance(batch, (tuple, list)) and len(batch) == 1:
            inputs = batch[0]
        elif isinstance(batch, Mapping):
            inputs = {k: v for k, v in batch.items() if k != "labels"}
        elif isinstance(batch, (tuple, list)):
            inputs = split_batch(batch)[0]
        else:
            inputs = batch
        outputs = model(_to_device(inputs, target))
        if output == "labels" and not regression:
            outputs = predictions_from_outputs(outputs)
        elif output == "probabilities":
            binary = outputs.dim() == 1 or outputs.shape[-1] == 1
            outputs = torch.sigmoid(outputs) if binary else torch.softmax(outputs, dim=-1)
        chunks.append(outputs.cpu())
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)
