"""Checkpoints that resume exactly: model, optimizer, epoch, history, callbacks and RNG states.

Besides the global torch/numpy/python RNGs the checkpoint keeps the state of every
``torch.Generator`` reachable from the training loader (its own ``generator`` and those of its
sampler and batch sampler) and of samplers that have ``state_dict``. A run stopped after ``k``
epochs and resumed is then bit-identical to an uninterrupted one on CPU.

Files are written to a temporary name in the same folder and moved into place with
``os.replace``, so a crash never leaves half a checkpoint. They load with
``torch.load(weights_only=True)``: only tensors and plain Python values are stored.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from training.errors import CheckpointError

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_NAME",
    "capture_rng_state",
    "load_checkpoint",
    "loader_state",
    "restore_loader_state",
    "restore_rng_state",
    "save_checkpoint",
    "unwrap",
]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def unwrap(model: nn.Module) -> nn.Module:
    """Return the module inside a ``DistributedDataParallel``/``DataParallel`` wrapper."""
    return getattr(model, "module", model)


def capture_rng_state() -> dict[str, Any]:
    """Return the torch (CPU and CUDA), numpy and python RNG states."""
    # legacy=True gives the (name, keys, pos, has_gauss, gauss) tuple for the global MT19937;
    # numpy's stub also allows a dict, which only non-legacy calls return
    np_state = cast("tuple[Any, ...]", np.random.get_state(legacy=True))
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _loader_parts(loader: Any) -> dict[str, Any]:
    parts = {"loader": loader}
    for name in ("sampler", "batch_sampler"):
        part = getattr(loader, name, None)
        if part is not None:
            parts[name] = part
            inner = getattr(part, "sampler", None)
            if inner is not None:
                parts[f"{name}.sampler"] = inner
    return parts


def loader_state(loader: Any) -> dict[str, Any]:
    """Return the generator states and sampler ``state_dict``s reachable from a loader."""
    state: dict[str, Any] = {}
    for name, part in _loader_parts(loader).items():
        generator = getattr(part, "generator", None)
        if isinstance(generator, torch.Generator) and generator.device.type == "cpu":
            state[f"{name}.generator"] = generator.get_state()
        if name != "loader" and callable(getattr(part, "state_dict", None)):
            state[f"{name}.state_dict"] = part.state_dict()
    return state


def restore_loader_state(loader: Any, state: dict[str, Any]) -> None:
    """Restore what :func:`loader_state` returned into an equivalent loader."""
    for name, part in _loader_parts(loader).items():
        if f"{name}.generator" in state:
            part.generator.set_state(state[f"{name}.generator"])
        if f"{name}.state_dict" in state:
            part.load_state_dict(state[f"{name}.state_dict"])


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus a format version) atomically to ``path`` and return it.

    Raises:
        CheckpointError: the file cannot be written.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": FORMAT_VERSION, **payload}, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(
            f"cannot write checkpoint {path}: {err}; check the folder is writable and has space"
        ) from err
    except BaseException:  # Ctrl-C mid-write: the previous checkpoint stays, no temp file
        tmp.unlink(missing_ok=True)
        raise
    log.debug("checkpoint written: %s (epoch %s)", path, payload.get("epoch"))
    return path


def _load_failure(err: Exception) -> str:
    """Say why ``torch.load`` refused a file, without relaying its advice.

    torch's message for a refused pickle suggests retrying with ``weights_only=False``, which
    would unpickle (run) whatever the file holds: never repeat that to a user.
    """
    text = str(err).strip()
    if isinstance(err, pickle.UnpicklingError) or "weights_only" in text:
        return ("torch.load(weights_only=True) found something other than tensors and plain "
                "values, which we never unpickle")
    line = text.splitlines()[0] if text else ""
    if not re.search(r"[^\W\d_]{3}", line):  # no word in it: KeyError('101') says "101"
        return f"{type(err).__name__}: {line}" if line else type(err).__name__
    return line


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing, unreadable, or of an unknown format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"expected a checkpoint at {path} but found none; run fit with checkpoint_dir first "
            "or drop resume"
        )
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is empty (0 bytes), not a checkpoint we "
            "wrote (ours are replaced atomically); delete it to start over"
        )
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning is a 2nd line
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types (pickle, zip, RuntimeError, EOFError)
        raise CheckpointError(
            f"cannot read checkpoint {path}: {_load_failure(err)} (damaged, truncated or not "
            "a dataferry checkpoint); delete it to start over"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"expected checkpoint format {FORMAT_VERSION} in {path} but got {found!r}; "
            "it was written by another version: delete it to start over"
        )
    return payload
