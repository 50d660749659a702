"""Collate functions: padding token ids, skipping ``None`` samples, and clear collate errors.

* :func:`pad_collate` / :class:`PadCollate` pad variable-length ``input_ids`` into a batch dict
  usable with ``pack_padded_sequence`` (``lengths``) and ``nn.EmbeddingBag``
  (``flat_input_ids`` + ``offsets``).
* :func:`skip_none_collate` / :class:`SkipNoneCollate` drop samples a dataset returned as
  ``None`` (an unreadable file) and return ``None`` for a batch left empty (pytorch#57429);
  :class:`datasets.DataLoader` and ``training.fit`` skip such batches.
* :func:`default_collate` is torch's, except that a failure raises
  :class:`~datasets.errors.CollateError` naming the key, the shapes and the dataset indices
  instead of "stack expects each tensor to be equal size".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate as _torch_default_collate

from datasets.errors import CollateError

log = logging.getLogger(__name__)

_SIDES = ("right", "left")


def default_collate(batch: Sequence[Any], *, indices: Sequence[int] | None = None) -> Any:
    """Collate like :func:`torch.utils.data.default_collate`, with an error that says why.

    Args:
        batch: the samples.
        indices: the samples' dataset indices, named in the error when given.

    Returns:
        What torch's ``default_collate`` returns.

    Raises:
        CollateError: the samples cannot be combined; the message names the key (path into
            the sample), the shape of each sample (with its dataset index) and what to do.
    """
    try:
        return _torch_default_collate(batch)  # type: ignore[arg-type]  # any sequence works
    except (RuntimeError, TypeError, ValueError) as err:
        where = _diagnose(list(batch), indices, "sample")
        raise CollateError(
            f"cannot collate a batch of {len(batch)} samples: {where or err}"
        ) from err


def _diagnose(items: list[Any], indices: Sequence[int] | None, path: str) -> str | None:
    """Find the first place where the samples disagree and describe it."""
    labels = list(indices) if indices is not None else list(range(len(items)))
    kind = "dataset index" if indices is not None else "batch position"
    nones = [labels[i] for i, x in enumerate(items) if x is None]
    if nones:
        return (
            f"{path} is None at {kind} {nones[:10]}; wrap the collate_fn with "
            "datasets.skip_none_collate to drop such samples"
        )
    first = items[0]
    if isinstance(first, (torch.Tensor, np.ndarray)):
        shapes = [tuple(getattr(x, "shape", ())) for x in items]
        if len(set(shapes)) > 1:
            listing = ", ".join(f"{list(s)} at {kind} {i}" for s, i in zip(shapes, labels, strict=True))
            return (
                f"{path} has different shapes: {listing:.600}; pad variable-length sequences "
                "with datasets.pad_collate or resize images to one size in a transform"
            )
        return None
    if isinstance(first, Mapping):
        return _diagnose_mapping(items, indices, path, labels, kind)
    if isinstance(first, Sequence) and not isinstance(first, (str, bytes)):
        return _diagnose_sequence(items, indices, path, labels, kind)
    types = {type(x).__name__ for x in items}
    if len(types) > 1:
        listing = ", ".join(f"{type(x).__name__} at {kind} {i}" for x, i in zip(items, labels, strict=True))
        return f"{path} has mixed types: {listing:.600}; return one type from every sample"
    return None


def _diagnose_mapping(items: list[Any], indices: Sequence[int] | None, path: str,
                      labels: list[int], kind: str) -> str | None:
    keys = [set(x) if isinstance(x, Mapping) else None for x in items]
    if any(k != keys[0] for k in keys):
        listing = ", ".join(f"{sorted(k) if k else type(x).__name__} at {kind} {i}"
                            for k, x, i in zip(keys, items, labels, strict=True))
        return f"{path} has different keys: {listing:.600}; return the same keys from every sample"
    for key in items[0]:
        found = _diagnose([x[key] for x in items], indices, f"key {key!r}" if path == "sample"
                          else f"{path}[{key!r}]")
        if found:
            return found
    return None


def _diagnose_sequence(items: list[Any], indices: Sequence[int] | None, path: str,
                       labels: list[int], kind: str) -> str | None:
    sizes = [len(x) if isinstance(x, Sequence) else None for x in items]
    if len(set(sizes)) > 1:
        listing = ", ".join(f"{n} at {kind} {i}" for n, i in zip(sizes, labels, strict=True))
        return (
            f"{path} has different lengths: {listing:.600}; pad sequences with "
            "datasets.pad_collate"
        )
    for pos in range(len(items[0])):
        found = _diagnose([x[pos] for x in items], indices, f"{path}[{pos}]")
        if found:
            return found
    return None


def pad_collate(
    batch: Sequence[Any],
    *,
    pad_value: int = 0,
    max_length: int | None = None,
    pad_to_multiple_of: int | None = None,
    side: str = "right",
    return_offsets: bool = False,
) -> dict[str, torch.Tensor | list[Any]]:
    """Pad token-id sequences into one batch.

    Samples are dicts with ``input_ids`` (a 1-D int tensor or list) and ``label`` (as yielded by
    :class:`~datasets.text.TextClassificationDataset` with a vocab), or ``(ids, label)`` pairs.
    Other dict keys are collated with :func:`default_collate` under their own names.

    Args:
        batch: the samples.
        pad_value: the id written into padding positions (``<pad>`` is 0 in our Vocab).
        max_length: truncate longer sequences to this many tokens (keep the first ones when
            ``side="right"``, the last ones when ``side="left"``).
        pad_to_multiple_of: round the padded length up to a multiple of this (8 suits tensor
            cores).
        side: ``"right"`` pads after the tokens, ``"left"`` before them.
        return_offsets: also return ``flat_input_ids`` (all real tokens concatenated) and
            ``offsets`` (start of each sample in it), the ``nn.EmbeddingBag`` inputs.

    Returns:
        ``input_ids`` int64 ``[B, T]``, ``lengths`` int64 ``[B]`` (after truncation),
        ``attention_mask`` bool ``[B, T]`` (True on real tokens), ``labels`` int64 ``[B]``,
        plus ``flat_input_ids``/``offsets`` when asked and any other sample keys.

    Raises:
        CollateError: a sample has no ``input_ids`` or its ids are not 1-D.
        ValueError: an argument is out of range.

    Example:
        >>> b = pad_collate([{"input_ids": [5, 6, 7], "label": 1}, {"input_ids": [8], "label": 0}])
        >>> b["input_ids"].tolist(), b["lengths"].tolist(), b["labels"].tolist()
        ([[5, 6, 7], [8, 0, 0]], [3, 1], [1, 0])
    """
    _check_pad_args(max_length, pad_to_multiple_of, side)
    if len(batch) == 0:
        raise CollateError("cannot pad an empty batch; use skip_none_collate to skip it")
    seqs, labels, extras = _split_samples(batch)
    if max_length is not None:
        seqs = [s[:max_length] if side == "right" else s[max(0, len(s) - max_length):]
                for s in seqs]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    width = int(lengths.max())
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(seqs), width), pad_value, dtype=torch.int64)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for row, seq in enumerate(seqs):
        n = len(seq)
        cols = slice(0, n) if side == "right" else slice(width - n, width)
        input_ids[row, cols] = seq
        mask[row, cols] = True
    out: dict[str, Any] = {"input_ids": input_ids, "lengths": lengths, "attention_mask": mask}
    if labels is not None:
        out["labels"] = torch.as_tensor(labels, dtype=torch.int64)
    if return_offsets:
        out["flat_input_ids"] = torch.cat(seqs) if seqs else torch.empty(0, dtype=torch.int64)
        out["offsets"] = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)[:-1]])
    for key, values in extras.items():
        out[key] = values if isinstance(values[0], str) else default_collate(values)
    return out


def _check_pad_args(max_length: int | None, multiple: int | None, side: str) -> None:
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length should be a positive int or None, but got {max_length}")
    if multiple is not None and multiple < 1:
        raise ValueError(f"pad_to_multiple_of should be a positive int or None, but got {multiple}")
    if side not in _SIDES:
        raise ValueError(f"side should be one of {_SIDES}, but got side={side!r}")


def _split_samples(
    batch: Sequence[Any],
) -> tuple[list[torch.Tensor], list[Any] | None, dict[str, list[Any]]]:
    seqs: list[torch.Tensor] = []
    labels: list[Any] | None = []
    extras: dict[str, list[Any]] = {}
    for pos, sample in enumerate(batch):
        if isinstance(sample, Mapping):
            if "input_ids" not in sample:
                raise CollateError(
                    f"expected samples with an 'input_ids' key but the sample at batch position "
                    f"{pos} has keys {sorted(sample)}; give the dataset a vocab "
                    "(TextClassificationDataset(..., vocab=...)) or use default_collate"
                )
            ids = sample["input_ids"]
            label = sample.get("label", sample.get("labels"))
            for key, value in sample.items():
                if key not in ("input_ids", "label", "labels"):
                    extras.setdefault(key, []).append(value)
        elif isinstance(sample, Sequence) and len(sample) == 2:
            ids, label = sample
        else:
            raise CollateError(
                f"expected dict samples with 'input_ids' or (ids, label) pairs but got "
                f"{type(sample).__name__} at batch position {pos}"
            )
        ids = torch.as_tensor(ids, dtype=torch.int64)
        if ids.ndim != 1:
            raise CollateError(
                f"expected 1-D input_ids but the sample at batch position {pos} has shape "
                f"{list(ids.shape)}; flatten them or use default_collate"
            )
        seqs.append(ids)
        if label is None:
            labels = None
        elif labels is not None:
            labels.append(label)
    return seqs, labels, extras


class PadCollate:
    """:func:`pad_collate` with its settings bound; picklable for ``num_workers > 0``.

    Example:
        >>> collate = PadCollate(pad_to_multiple_of=8, return_offsets=True)
        >>> collate([{"input_ids": [1, 2, 3], "label": 0}])["input_ids"].shape
        torch.Size([1, 8])
    """

    def __init__(
        self,
        pad_value: int = 0,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        side: str = "right",
        return_offsets: bool = False,
    ) -> None:
        _check_pad_args(max_length, pad_to_multiple_of, side)
        self.pad_value = pad_value
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.side = side
        self.return_offsets = return_offsets

    def __call__(self, batch: Sequence[Any]) -> dict[str, torch.Tensor | list[Any]]:
        return pad_collate(
            batch, pad_value=self.pad_value, max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of, side=self.side,
            return_offsets=self.return_offsets,
        )

    def __repr__(self) -> str:
        return (
            f"PadCollate(pad_value={self.pad_value}, max_length={self.max_length}, "
            f"pad_to_multiple_of={self.pad_to_multiple_of}, side={self.side!r}, "
            f"return_offsets={self.return_offsets})"
        )


def skip_none_collate(
    batch: Sequence[Any], *, collate_fn: Callable[[list[Any]], Any] | None = None
) -> Any:
    """Drop ``None`` samples, then collate the rest; return None when none is left.

    Each dropped sample is logged (warning with the count). Use :class:`SkipNoneCollate`
    to keep a running count, or bind ``collate_fn`` with ``functools.partial``.

    Args:
        batch: the samples, some of which may be None.
        collate_fn: collates the kept samples; defaults to :func:`default_collate`.

    Returns:
        The collated batch, or None when every sample was None (the loader loop skips it).
    """
    kept = [sample for sample in batch if sample is not None]
    dropped = len(batch) - len(kept)
    if dropped:
        log.warning("skipped %d of %d samples that were None", dropped, len(batch))
    if not kept:
        return None
    return (collate_fn or default_collate)(kept)


class SkipNoneCollate:
    """:func:`skip_none_collate` that counts what it dropped.

    Counts live in the process that runs the collate function: with ``num_workers > 0`` each
    worker keeps its own copy, so read them with ``num_workers=0`` or from the log.

    Args:
        collate_fn: collates the kept samples; defaults to :func:`default_collate`.

    Attributes:
        skipped_samples: samples dropped so far.
        skipped_batches: batches that ended up empty (returned as None).
    """

    def __init__(self, collate_fn: Callable[[list[Any]], Any] | None = None) -> None:
        self.collate_fn = collate_fn
        self.skipped_samples = 0
        self.skipped_batches = 0

    def __call__(self, batch: Sequence[Any]) -> Any:
        self.skipped_samples += sum(sample is None for sample in batch)
        out = skip_none_collate(batch, collate_fn=self.collate_fn)
        if out is None:
            self.skipped_batches += 1
        return out
