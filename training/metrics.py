"""Classification metrics: accuracy, confusion matrix, per-class precision/recall/F1.

Everything works on label tensors and returns plain Python numbers and lists, ready for JSON.

Example:
    >>> cm = confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
    >>> cm.tolist()
    [[1, 0], [1, 1]]
    >>> precision_recall_f1(cm)["recall"]
    [1.0, 0.5]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypedDict

import torch

log = logging.getLogger(__name__)

__all__ = [
    "ClassScores",
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "format_confusion_matrix",
    "predictions_from_outputs",
    "precision_recall_f1",
]


def predictions_from_outputs(outputs: torch.Tensor) -> torch.Tensor:
    """Return class predictions from logits: ``> 0`` for one logit, ``argmax`` for several."""
    if outputs.dim() == 1 or (outputs.dim() == 2 and outputs.shape[1] == 1):
        return (outputs.reshape(-1) > 0).long()
    return outputs.argmax(dim=1)


def accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Return the fraction of equal labels (0.0 for empty input)."""
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"expected y_true and y_pred of the same shape but got {tuple(y_true.shape)} "
            f"and {tuple(y_pred.shape)}"
        )
    if y_true.numel() == 0:
        return 0.0
    return (y_true == y_pred).double().mean().item()


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return the ``[num_classes, num_classes]`` int64 matrix: rows true class, columns predicted.

    Raises:
        ValueError: a label is outside ``0..num_classes-1``.
    """
    y_true = y_true.reshape(-1).long().cpu()
    y_pred = y_pred.reshape(-1).long().cpu()
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{name} should hold labels in 0..{num_classes - 1}, but got values "
                f"{labels.min().item()}..{labels.max().item()}; pass the right num_classes"
            )
    flat = y_true * num_classes + y_pred
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


class ClassScores(TypedDict):
    """What :func:`precision_recall_f1` returns: per-class lists and their macro averages."""

    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    macro_precision: float
    macro_recall: float
    macro_f1: float


def precision_recall_f1(cm: torch.Tensor) -> ClassScores:
    """Return per-class ``precision``, ``recall``, ``f1``, ``support`` and their macro averages.

    A class never predicted (or never present) gets 0.0 rather than a division by zero.
    """
    cm = cm.double()
    tp = cm.diag()
    predicted = cm.sum(dim=0)
    actual = cm.sum(dim=1)
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(actual > 0, tp / actual.clamp_min(1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-300), torch.zeros_like(tp))
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": [int(v) for v in actual.tolist()],
        "macro_precision": precision.mean().item(),
        "macro_recall": recall.mean().item(),
        "macro_f1": f1.mean().item(),
    }


def format_confusion_matrix(cm: torch.Tensor, class_names: Sequence[str] | None = None) -> str:
    """Return the matrix as aligned text, rows true class and columns predicted."""
    names = [str(n) for n in (class_names or range(cm.shape[0]))]
    width = max(max(len(n) for n in names), len(str(int(cm.max()))) if cm.numel() else 1)
    header = " " * (width + 1) + " ".join(n.rjust(width) for n in names)
    rows = [
        names[i].rjust(width) + " " + " ".join(str(int(v)).rjust(width) for v in cm[i].tolist())
        for i in range(cm.shape[0])
    ]
    return "\n".join([header, *rows])


def classification_report(cm: torch.Tensor, class_names: Sequence[str] | None = None) -> str:
    """Return a text table of precision, recall, F1 and support per class, and macro averages."""
    scores = precision_recall_f1(cm)
    names = [str(n) for n in (class_names or range(cm.shape[0]))]
    width = max(12, *(len(n) for n in names))
    lines = [f"{'class':>{width}} precision    recall        f1   support"]
    for i, name in enumerate(names):
        lines.append(
            f"{name:>{width}} {scores['precision'][i]:9.4f} {scores['recall'][i]:9.4f} "
            f"{scores['f1'][i]:9.4f} {scores['support'][i]:9d}"
        )
    lines.append(
        f"{'macro avg':>{width}} {scores['macro_precision']:9.4f} {scores['macro_recall']:9.4f} "
        f"{scores['macro_f1']:9.4f} {sum(scores['support']):9d}"
    )
    return "\n".join(lines)
