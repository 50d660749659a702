"""Loaders over a streamed sharded pack for ``python -m training fit --stream URL``.

The training pack is read with a :class:`datasets.StreamingSampler` (ranks from
``torch.distributed``, each sample once per epoch, resumable), so ``fit``'s checkpoints carry
its position like any other sampler's. Without ``--stream-test`` the test loader reads the same
pack (the accuracy is then on training data, and a warning says so).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class StreamData:
    """Train and test loaders, class names, flattened input size, training-set size, channels."""

    train: Any
    test: Any
    classes: list[str]
    in_features: int
    n_train: int
    in_channels: int


def stream_loaders(url: str, *, test_url: str | None, cache_dir: str | os.PathLike[str] | None,
                   batch_size: int, num_workers: int | str, seed: int,
                   endpoint_url: str | None = None, progress: bool = False,
                   force_workers: bool = False) -> StreamData:
    """Open the streamed pack(s) and return their loaders (images as float ``[B, C, H, W]``).

    Raises:
        DatasetError: no pack at the URL, or its records are not ``(image, label)`` pairs.
    """
    from datasets import DataLoader, StreamingDataset, StreamingSampler, ToFloat
    from datasets.errors import DataFormatError
    from training import distributed

    to_float = ToFloat(mean=0.0, std=1.0)
    train = StreamingDataset(url, cache_dir=cache_dir, seed=seed, transform=to_float,
                             endpoint_url=endpoint_url, progress=progress)
    kinds = {f.name: f for f in train.schema}
    image = next((f for name, f in kinds.items() if name != "label"), None)
    if "label" not in kinds or len(kinds) != 2 or image is None or image.kind != "array":
        raise DataFormatError(f"--stream needs a pack of fixed-size images and labels, but {url} "
                              f"has fields {[(f.name, f.kind) for f in train.schema]}")
    test_ds = train if test_url is None else StreamingDataset(
        test_url, cache_dir=cache_dir, shuffle=False, transform=to_float, endpoint_url=endpoint_url,
        progress=progress)
    if test_url is None and distributed.is_main_process():
        log.warning("no --stream-test: the test accuracy is measured on the training pack")
    elif test_url is not None:
        _check_same_layout(url, train, test_url, test_ds)
    loader = DataLoader(train, batch_size=batch_size, sampler=StreamingSampler(train),
                        num_workers=num_workers, force_workers=force_workers)
    test = DataLoader(test_ds, batch_size=1024,
                      sampler=StreamingSampler(test_ds, num_replicas=1, rank=0))
    classes = [str(c) for c in (train.classes or range(_max_label(train) + 1))]
    channels = image.shape[2] if len(image.shape) == 3 else 1  # [H, W] or [H, W, C] as written
    return StreamData(loader, test, classes, math.prod(image.shape), len(train), channels)


def _check_same_layout(url: str, train: Any, test_url: str, test: Any) -> None:
    """Refuse a test pack the model could not read or would misscore, before any training.

    Raises:
        DataFormatError: the packs' fields (names, kinds, dtypes, shapes) or class lists differ
            (a test class list that is a prefix of the training one is warned about).
    """
    from datasets.errors import DataFormatError

    def fields(pack: Any) -> list[tuple[Any, ...]]:
        return [(f.name, f.kind, f.dtype, list(f.shape or ())) for f in pack.schema]

    # a test pack may lack trailing classes, as a val/ folder may: its labels still line up
    theirs_classes = list(test.classes or [])
    ours_classes = list(train.classes or [])
    prefix = 0 < len(theirs_classes) < len(ours_classes) and (
        ours_classes[:len(theirs_classes)] == theirs_classes)
    if prefix:
        log.warning("--stream-test %s lacks the last class(es) of --stream %s: %s; they are not "
                    "evaluated", test_url, url, ours_classes[len(theirs_classes):])
    checks = [("fields (name, kind, dtype, shape)", fields(train), fields(test))]
    checks += [] if prefix else [("classes", train.classes, test.classes)]
    for what, ours, theirs in checks:
        if ours != theirs:
            raise DataFormatError(
                f"expected --stream-test {test_url} to have the {what} of --stream {url} but "
                f"got {theirs!r:.300} against {ours!r:.300}; pass a test pack written from "
                "images of the same size and classes (python -m datasets.shard)"
            )


def _max_label(dataset: Any) -> int:
    return max(int(dataset[i][1]) for i in range(len(dataset)))
