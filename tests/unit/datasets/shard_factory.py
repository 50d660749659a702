"""Tiny array sources for ``write_shards`` in the streaming and shard tests."""

from __future__ import annotations

import torch


class TinyImages:
    """``n`` 4×4 ``uint8`` images, labels ``i % num_classes``, class names when given."""

    def __init__(self, n: int, num_classes: int = 5, classes: list[str] | None = None) -> None:
        self.data = (torch.arange(n * 16) % 251).to(torch.uint8).reshape(n, 4, 4)
        self.targets = torch.arange(n) % num_classes
        if classes is not None:
            self.classes = classes

    def __len__(self) -> int:
        return len(self.data)


def digits(n: int) -> TinyImages:
    """``n`` images in three named classes."""
    return TinyImages(n, 3, ["a", "b", "c"])
