"""What :func:`training.fit` records per epoch: :class:`History`, and its one-line summary."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["History", "count_noun"]


def count_noun(count: int, noun: str, plural: str | None = None) -> str:
    """Return ``count`` and ``noun``, in the plural unless the count is one.

    Example:
        >>> count_noun(1, "epoch"), count_noun(3, "epoch"), count_noun(2, "batch", "batches")
        ('1 epoch', '3 epochs', '2 batches')
    """
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


@dataclass
class History:
    """Per-epoch record of a :func:`fit` run; ``None`` where a value does not apply.

    ``data_time_s`` is the time spent waiting for the loader, ``compute_time_s`` the time in
    forward/backward/step; a large ``data_time_s`` means the input pipeline is the bottleneck.
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float | None] = field(default_factory=list)
    valid_loss: list[float | None] = field(default_factory=list)
    valid_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    data_time_s: list[float] = field(default_factory=list)
    compute_time_s: list[float] = field(default_factory=list)
    epoch_time_s: list[float] = field(default_factory=list)
    skipped_batches: list[int] = field(default_factory=list)
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Rebuild a history from :meth:`to_dict`'s output."""
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v)
                                  for k, v in data.items() if k in names}
        return cls(**values)

    def record(
        self, epoch: int, *, train_loss: float, train_accuracy: float | None,
        valid: Mapping[str, Any] | None, lr: float, data_time_s: float, compute_time_s: float,
        epoch_time_s: float, skipped_batches: int,
    ) -> None:
        """Append one epoch (``valid``: :func:`training.evaluate`'s result, or None)."""
        self.epoch.append(epoch)
        self.train_loss.append(train_loss)
        self.train_accuracy.append(train_accuracy)
        self.valid_loss.append(valid["loss"] if valid else None)
        self.valid_accuracy.append(valid["accuracy"] if valid else None)
        self.lr.append(lr)
        self.data_time_s.append(data_time_s)
        self.compute_time_s.append(compute_time_s)
        self.epoch_time_s.append(epoch_time_s)
        self.skipped_batches.append(skipped_batches)

    def describe_last(self, epochs: int) -> str:
        """Return the last epoch as one line for a person.

        Example:
            >>> h = History()
            >>> h.record(1, train_loss=0.5, train_accuracy=0.8, valid=None, lr=0.1,
            ...          data_time_s=0.01, compute_time_s=0.2, epoch_time_s=0.25,
            ...          skipped_batches=0)
            >>> h.describe_last(3)
            'epoch 1/3: train loss 0.5000, accuracy 80.00% | 0.25 s (waiting for data 0.01 s)'
        """
        def part(loss: float | None, acc: float | None) -> str:
            text = "-" if loss is None else f"loss {loss:.4f}"
            return text if acc is None else f"{text}, accuracy {100 * acc:.2f}%"

        valid = ""
        if self.valid_loss[-1] is not None:
            valid = f" | valid {part(self.valid_loss[-1], self.valid_accuracy[-1])}"
        skipped = ""
        if self.skipped_batches[-1]:
            skipped = f", {count_noun(self.skipped_batches[-1], 'empty batch', 'empty batches')} skipped"
        return (f"epoch {self.epoch[-1]}/{epochs}: train "
                f"{part(self.train_loss[-1], self.train_accuracy[-1])}{valid} | "
                f"{self.epoch_time_s[-1]:.2f} s (waiting for data {self.data_time_s[-1]:.2f} s"
                f"{skipped})")
