"""One mapping from label values to class ids: :class:`LabelEncoder`.

Any labels (``"ham"``/``"spam"``, 0-based or 1-based ints, ``-1``/``1``) become ids
``0..K-1`` in sorted order; the original values stay in :attr:`LabelEncoder.classes` for
reports and predictions, with optional display :attr:`~LabelEncoder.names` (AG News's 1..4 are
World, Sports, Business, Sci/Tech).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from datasets.errors import DataFormatError
from datasets.jsonfile import save_json

__all__ = ["LabelEncoder"]


class LabelEncoder:
    """Map labels (strings, ints or any sortable hashable) to ids ``0..K-1`` in sorted order.

    Args:
        classes: the known classes; they are sorted. Use :meth:`fit` to learn them instead.
        names: display names, one per sorted class (default ``str(class)``).

    Raises:
        DataFormatError: the labels mix kinds that do not sort together (ints and strings).

    Example:
        >>> enc = LabelEncoder().fit(["spam", "ham", "spam"])
        >>> enc.classes, enc.encode(["spam", "ham"]), enc.decode([0, 1])
        (['ham', 'spam'], [1, 0], ['ham', 'spam'])
        >>> LabelEncoder([1, -1]).encode([-1, 1, 1])
        [0, 1, 1]
    """

    def __init__(self, classes: Iterable[Any] | None = None, *,
                 names: Sequence[str] | None = None) -> None:
        self.classes: list[Any] = []
        self._index: dict[Any, int] = {}
        self._names = list(names) if names is not None else None
        if classes is not None:
            self.fit(classes)

    def fit(self, labels: Iterable[Any]) -> LabelEncoder:
        """Learn the sorted set of distinct ``labels``; return ``self``."""
        distinct = set(labels)
        try:
            self.classes = sorted(distinct)
        except TypeError as err:
            kinds = sorted({type(v).__name__ for v in distinct})
            raise DataFormatError(
                f"expected labels of one kind but got {' and '.join(kinds)} labels "
                f"({sorted(map(repr, distinct))[:6]}); make them all strings or all ints"
            ) from err
        self._index = {c: i for i, c in enumerate(self.classes)}
        if self._names is not None and len(self._names) != len(self.classes):
            raise ValueError(
                f"names should have one entry per class ({len(self.classes)}: "
                f"{self.classes!r:.100}), but got {len(self._names)} names"
            )
        return self

    @property
    def names(self) -> list[str]:
        """Display names of the classes, in id order."""
        return list(self._names) if self._names is not None else [str(c) for c in self.classes]

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return f"LabelEncoder(classes={self.classes!r})"

    def encode(self, labels: Iterable[Any]) -> list[int]:
        """Map each label to its id.

        Raises:
            ValueError: a label is not one of :attr:`classes`.
        """
        out = []
        index = self._index
        for label in labels:
            try:
                out.append(index[label])
            except KeyError:
                raise ValueError(
                    f"label should be one of {self.classes!r:.200}, but got {label!r}; "
                    "fit the encoder on the training labels or pass classes=..."
                ) from None
        return out

    def decode(self, ids: Iterable[int]) -> list[Any]:
        """Map each id back to its class."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.classes):
                raise ValueError(f"label id should be in [0, {len(self.classes)}), but got {i}")
            out.append(self.classes[i])
        return out

    def state_dict(self) -> dict[str, Any]:
        """Return ``{"classes": [...], "names": [...]}`` (JSON-serializable for str/int classes)."""
        return {"classes": list(self.classes), "names": self.names}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LabelEncoder:
        """Rebuild an encoder from :meth:`state_dict` output."""
        if not isinstance(state, dict) or "classes" not in state:
            raise DataFormatError(
                f"expected a LabelEncoder state {{'classes': [...]}} but got {state!r:.100}"
            )
        return cls(state["classes"], names=state.get("names"))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the classes as JSON to ``path`` (atomically, parents created); return the path."""
        return save_json(path, self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelEncoder:
        """Read an encoder written by :meth:`save`.

        Raises:
            DataFormatError: the file is not a saved encoder.
        """
        path = Path(path)
        try:
            return cls.from_state_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, DataFormatError) as err:
            raise DataFormatError(f"{path}: expected a saved LabelEncoder: {err}") from err
