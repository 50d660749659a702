"""Stratified train/valid/test splits that refuse to make an empty split or lose a class.

:func:`stratified_split` carves each class with the same fractions (a seeded shuffle per class,
as :func:`datasets.notmnist.split_indices`), then checks the result: a split asked for
(fraction > 0) that gets no row, or a class with no training row, is a
:class:`~datasets.errors.DataFormatError` with the counts per class and what to do. A run
that would measure nothing, or train without a class, never starts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from datasets.errors import DataFormatError
from datasets.notmnist import split_indices

log = logging.getLogger(__name__)

MAX_CLASSES_SHOWN = 20  # class counts an error lists; 10,000 classes would be one huge line

__all__ = ["stratified_split"]


def stratified_split(
    labels: Any, *, test: float, valid: float = 0.0, seed: int = 0,
    classes: Sequence[Any] | None = None,
) -> dict[str, np.ndarray]:
    """Split row indices per class into ``{"train", "val", "test"}``, refusing bad splits.

    Args:
        labels: the class id (0..K-1) of every row.
        test: fraction of each class for test.
        valid: fraction of each class for validation.
        seed: seed of the per-class shuffles.
        classes: class names for messages (default the ids).

    Raises:
        ValueError: fractions outside [0, 1) or summing to 1 or more.
        DataFormatError: a split asked for is empty, or a class has no training row.

    Example:
        >>> parts = stratified_split([0, 0, 0, 0, 1, 1, 1, 1, 1], test=0.25)
        >>> [len(parts[s]) for s in ("train", "val", "test")]
        [7, 0, 2]
        >>> stratified_split([0, 0, 1], test=0.2, classes=["ham", "spam"])
        Traceback (most recent call last):
        ...
        datasets.errors.DataFormatError: a 0.2 test split of 3 rows is empty (per class: ham 2, spam 1: round(n * 0.2) is 0 for each); add data, raise the fraction, or pass a separate test file
    """
    if not (0 <= test < 1 and 0 <= valid < 1 and test + valid < 1):
        raise ValueError(f"test and valid should be fractions in [0, 1) summing below 1, but "
                         f"got test={test!r}, valid={valid!r}")
    labels = np.asarray(labels, dtype=np.int64)
    parts = split_indices(labels, valid=valid, test=test, seed=seed)
    counts = np.bincount(labels, minlength=len(classes) if classes else 0)
    names = [str(c) for c in classes] if classes else [str(i) for i in range(len(counts))]
    shown = [f"{n} {int(c)}" for n, c in zip(names, counts, strict=True) if c]
    per_class = ", ".join(shown[:MAX_CLASSES_SHOWN]) + (
        f", … {len(shown) - MAX_CLASSES_SHOWN} more" if len(shown) > MAX_CLASSES_SHOWN else "")
    for name, fraction in (("test", test), ("val", valid)):
        if fraction > 0 and len(parts[name]) == 0:
            raise DataFormatError(
                f"a {fraction:g} {name} split of {len(labels)} rows is empty (per class: "
                f"{per_class}: round(n * {fraction:g}) is 0 for each); add data, raise the "
                "fraction, or pass a separate test file"
            )
    in_train = np.bincount(labels[parts["train"]], minlength=len(counts))
    missing = [names[i] for i in range(len(counts)) if counts[i] and not in_train[i]]
    if missing or len(parts["train"]) == 0:
        raise DataFormatError(
            f"classes {missing} have no training row after a {test:g} test / {valid:g} valid "
            f"split (per class: {per_class}); add examples of them or lower the fractions"
        )
    log.info("split %d rows: %d train, %d valid, %d test (stratified, seed %d)", len(labels),
             len(parts["train"]), len(parts["val"]), len(parts["test"]), seed)
    return parts
