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
    "DENSE_CONFUSION_MAX_CLASSES",
    "ClassScores",
    "accuracy",
    "cell_scores",
    "classification_report",
    "confusion_cells",
    "confusion_matrix",
    "dense_confusion",
    "format_confusion_matrix",
    "merge_cells",
    "predictions_from_outputs",
    "precision_recall_f1",
]

#: Up to this many classes :func:`training.evaluate` also returns the dense confusion matrix;
#: above it only the nonzero cells (:func:`confusion_cells`): a dense one grows with the square
#: of the class count (10,000 classes: 10^8 cells, a 900 MB ``metrics.json``).
DENSE_CONFUSION_MAX_CLASSES = 100


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
    return _scores(cm.diag(), cm.sum(dim=0), cm.sum(dim=1))


def confusion_cells(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int
                    ) -> torch.Tensor:
    """Return the confusion matrix's nonzero cells as ``[m, 3]`` rows ``(true, predicted, count)``.

    ``m`` is at most the number of samples, however many classes there are: the form kept for
    more than :data:`DENSE_CONFUSION_MAX_CLASSES` classes. Rows are sorted by true, then
    predicted class; several pieces (batches, processes) concatenated are merged again by
    :func:`merge_cells`.

    Example:
        >>> confusion_cells(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2).tolist()
        [[0, 0, 1], [1, 0, 1], [1, 1, 1]]
    """
    flat = y_true.reshape(-1).long().cpu() * num_classes + y_pred.reshape(-1).long().cpu()
    return merge_cells(torch.stack([flat // num_classes, flat % num_classes,
                                    torch.ones_like(flat)], dim=1), num_classes)


def merge_cells(cells: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Sum the counts of equal ``(true, predicted)`` rows of :func:`confusion_cells` pieces."""
    flat = cells[:, 0] * num_classes + cells[:, 1]
    keys, inverse = torch.unique(flat, sorted=True, return_inverse=True)
    counts = torch.zeros(len(keys), dtype=torch.int64).index_add_(0, inverse, cells[:, 2])
    return torch.stack([keys // num_classes, keys % num_classes, counts], dim=1)


def dense_confusion(cells: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return the ``[num_classes, num_classes]`` matrix of :func:`confusion_cells`' rows."""
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    cm[cells[:, 0], cells[:, 1]] = cells[:, 2]
    return cm


def cell_scores(cells: torch.Tensor, num_classes: int) -> ClassScores:
    """:func:`precision_recall_f1` from :func:`confusion_cells`' rows, in O(cells + classes).

    Example:
        >>> cells = confusion_cells(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
        >>> cell_scores(cells, 2)["recall"]
        [1.0, 0.5]
    """
    true, predicted, counts = cells[:, 0], cells[:, 1], cells[:, 2].double()
    hit = true == predicted
    return _scores(torch.bincount(true[hit], weights=counts[hit], minlength=num_classes),
                   torch.bincount(predicted, weights=counts, minlength=num_classes),
                   torch.bincount(true, weights=counts, minlength=num_classes))


def _scores(tp: torch.Tensor, predicted: torch.Tensor, actual: torch.Tensor) -> ClassScores:
    tp, predicted, actual = tp.double(), predicted.double(), actual.double()
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
