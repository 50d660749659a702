"""The training harness: :func:`fit` (:class:`History` comes from :mod:`training.history`,
``evaluate``/``predict`` from :mod:`training.evaluation`; both are re-exported here).

The four steps of every training loop stand in :func:`_train_epoch`::

    optimizer.zero_grad()
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()

Batches are ``(inputs, labels)`` tuples or dicts with a ``"labels"`` key (the rest of the dict
is the model's input); a ``None`` batch (``datasets.skip_none_collate`` of an all-bad batch) is
skipped and counted. Per-step work is kept small: metrics accumulate on the device and are read
once per epoch, so ``fit`` costs no more than a hand-written loop.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training import distributed
from training.callbacks import Callback
from training.checkpoint import (
    CHECKPOINT_NAME,
    capture_rng_state,
    load_checkpoint,
    loader_state,
    restore_loader_state,
    restore_rng_state,
    save_checkpoint,
    unwrap,
)
from training.divergence import check_finite
from training.errors import CheckpointError
from training.evaluation import (
    _default_loss,
    _EpochStats,
    _is_classifier,
    _to_device,
    evaluate,
    predict,
    resolve_device,
    split_batch,
)
from training.history import History
from training.optim import (
    StepSchedule,
    is_full_batch,
    l2_penalty,
    make_optimizer,
    scheduled_lr,
)

log = logging.getLogger(__name__)

__all__ = [
    "FitConfig",
    "History",
    "evaluate",
    "fit",
    "predict",
    "resolve_device",
    "seed_everything",
    "split_batch",
]

@dataclass(frozen=True)
class FitConfig:
    """The hyper-parameters of one :func:`fit` call (stored in checkpoints and metrics).

    Args:
        optimizer: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"lbfgs"`` (full batch, one step
            per epoch).
        lr: learning rate (the peak rate of a ``"onecycle"`` schedule).
        epochs: total epochs.
        momentum: SGD momentum.
        weight_decay: L2 strength (see :mod:`training.optim` for L-BFGS).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
        seed: seeds python/numpy/torch at the start of a fresh run.
        lbfgs_max_iter: L-BFGS iterations per epoch.
        schedule: the learning rate per step, ``"constant"``, ``"cosine"`` or ``"onecycle"``
            (:class:`training.optim.StepSchedule`; minibatch optimizers only).

    Example:
        >>> FitConfig(optimizer="adam", lr=0.01, epochs=3).epochs
        3
    """

    optimizer: str = "sgd"
    lr: float = 0.1
    epochs: int = 10
    momentum: float = 0.0
    weight_decay: float = 0.0
    device: str = "auto"
    seed: int = 0
    lbfgs_max_iter: int = 20
    schedule: str = "constant"

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs should be a positive int, but got epochs={self.epochs!r}")
        StepSchedule(self.schedule, 1)  # a bad name fails here, before any data is read


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _progress_bar(loader: Any, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    total = len(loader) if hasattr(loader, "__len__") else None
    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)


def _train_epoch(
    model: nn.Module, loader: Iterable, criterion: nn.Module,
    optimizer: torch.optim.Optimizer, device: torch.device, stats: _EpochStats, bar: Any,
    set_lr: Callable[[int], None] | None = None, first_step: int = 0,
) -> None:
    clock = time.perf_counter
    move: bool | None = None  # decided on the first batch: a loader yields one device
    tick = clock()
    for i, batch in enumerate(loader):
        fetched = clock()
        stats.data_s += fetched - tick
        if batch is None:  # every sample of the batch was bad and dropped by the collate
            stats.skipped += 1
            tick = clock()
            continue
        inputs, labels = split_batch(batch)
        if move is None:
            move = not (isinstance(inputs, torch.Tensor) and inputs.device == device
                        and labels.device == device)
        if move:
            inputs, labels = _to_device(inputs, device), _to_device(labels, device)
        if set_lr is not None:  # the schedule's rate for this step
            set_lr(first_step + i)
        optimizer.zero_grad(set_to_none=True)
        outputs = model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        stats.add(outputs, labels, loss)
        if bar is not None:
            bar.update(1)
        tick = clock()
        stats.compute_s += tick - fetched


def _full_batches(loader: Iterable, device: torch.device) -> list[tuple[Any, torch.Tensor]]:
    pairs = [split_batch(b) for b in loader if b is not None]
    if pairs and all(isinstance(x, torch.Tensor) for x, _ in pairs):
        # one big batch: a single matmul per L-BFGS evaluation
        pairs = [(torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs]))]
    return [(_to_device(x, device), _to_device(y, device)) for x, y in pairs]


def _lbfgs_epoch(
    model: nn.Module, batches: list[tuple[Any, torch.Tensor]], criterion: nn.Module,
    optimizer: torch.optim.Optimizer, weight_decay: float, stats: _EpochStats,
) -> None:
    total = sum(labels.shape[0] for _, labels in batches)
    penalty_model = unwrap(model)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = torch.zeros((), device=batches[0][1].device)
        for i, (inputs, labels) in enumerate(batches):
            outputs = model(inputs)
            loss = criterion(outputs, labels) * (labels.shape[0] / total)
            if i == 0:  # the L2 term joins the first backward (one backward per DDP forward)
                loss = loss + l2_penalty(penalty_model, weight_decay)
            loss.backward()
            value = value + loss.detach()
        if distributed.is_distributed():
            # every rank must see the same objective, or their line searches would disagree
            value = distributed.all_reduce_sum(value) / distributed.world_size()
        return value

    started = time.perf_counter()
    # torch's stub types closures as returning float; LBFGS itself takes (and returns) a tensor
    optimizer.step(closure)  # type: ignore[arg-type]
    with torch.no_grad():
        for inputs, labels in batches:
            outputs = model(inputs)
            stats.add(outputs, labels, criterion(outputs, labels))
    stats.compute_s += time.perf_counter() - started


@dataclass
class _EpochRunner:
    """One training pass per call: minibatch steps (with a tqdm bar) or one L-BFGS step."""

    model: nn.Module
    loader: Iterable
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    classify: bool
    weight_decay: float
    show_bar: bool
    schedule: Callable[[int], None] | None = None  # sets the lr of a global step
    batches: list[tuple[Any, torch.Tensor]] | None = None  # L-BFGS: the data, read once

    def run(self, epoch: int, epochs: int) -> _EpochStats:
        started = time.perf_counter()
        _set_epoch(self.loader, epoch)
        self.model.train()
        stats = _EpochStats(self.device, self.classify)
        if is_full_batch(self.optimizer):
            if self.batches is None:
                self.batches = _full_batches(self.loader, self.device)
                stats.data_s = time.perf_counter() - started
            _lbfgs_epoch(self.model, self.batches, self.criterion, self.optimizer,
                         self.weight_decay, stats)
            return stats
        bar = _progress_bar(self.loader, f"epoch {epoch}/{epochs}", self.show_bar)
        first = (epoch - 1) * _steps_per_epoch(self.loader) if self.schedule else 0
        _train_epoch(self.model, self.loader, self.criterion, self.optimizer, self.device, stats,
                     bar, self.schedule, first)
        if bar is not None:
            bar.close()
        return stats


def _steps_per_epoch(loader: Any) -> int:
    try:
        return int(len(loader))
    except TypeError as err:
        raise ValueError("a learning-rate schedule needs a train_loader with a length (batches "
                         "per epoch), but this one has none; use schedule='constant'") from err


def _set_epoch(loader: Any, epoch: int) -> None:
    for name in ("sampler", "batch_sampler"):
        set_epoch = getattr(getattr(loader, name, None), "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)


def _resume(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, loader: Any,
    callbacks: Sequence[Callback], config: FitConfig,
) -> tuple[int, History]:
    payload = load_checkpoint(path)
    saved = payload.get("config", {}).get("optimizer")
    if saved is not None and saved != config.optimizer:
        raise CheckpointError(
            f"checkpoint {path} was written by optimizer {saved!r} but this run uses "
            f"{config.optimizer!r}; resume with the same optimizer, or start afresh without "
            "resume (--resume) or in another folder"
        )
    try:
        unwrap(model).load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not match this model/optimizer: {err}; "
            "use the same model and optimizer, or delete the checkpoint"
        ) from err
    try:
        for callback, state in zip(callbacks, payload.get("callbacks", []), strict=False):
            if state is not None and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(state)
        restore_rng_state(payload["rng"])
        restore_loader_state(loader, payload.get("loader", {}))
        done, history = int(payload["epoch"]), History.from_dict(payload["history"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"checkpoint {path} is incomplete or damaged ({type(err).__name__}: {err}); "
            "delete it to start over"
        ) from err
    log.info("resumed from %s after epoch %d", path, done)
    return done, history


def _finished(path: Path, done: int, epochs: int, history: History) -> bool:
    """Whether a resumed run has nothing left to train (it stopped early or reached ``epochs``)."""
    if history.stopped_early:
        reason = f"the run stopped early after epoch {done}"
    elif done >= epochs:
        reason = f"the run already reached epoch {done} of {epochs}"
    else:
        return False
    if distributed.is_main_process():
        log.info("nothing to resume: %s (%s); start afresh without resume or in another folder "
                 "to train again", reason, path)
    return True


def fit(
    model: nn.Module,
    train_loader: Iterable,
    valid_loader: Iterable | None = None,
    config: FitConfig | None = None,
    *,
    loss: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> History:
    """Train ``model`` on ``train_loader`` as ``config`` says; return its per-epoch history.

    Args:
        model: any ``nn.Module``; :mod:`training.models` know their default loss.
        train_loader: iterable of ``(x, y)`` or dict batches (usually a DataLoader).
        valid_loader: evaluated after every epoch when given.
        config: optimizer name, learning rate, epochs (a resumed run continues up to this
            number; one that already reached it, or stopped early, returns its history without
            training), momentum, weight decay, device, seed, L-BFGS iterations, the
            learning-rate schedule (per step over all ``epochs``); default
            ``FitConfig()``. It is stored in the checkpoint.
        loss: the criterion; default the model's ``default_loss()`` or ``CrossEntropyLoss``.
        optimizer: a ready ``torch.optim.Optimizer`` over the model's parameters, used instead
            of building ``config.optimizer`` (then ``config``'s lr, momentum and weight decay
            are the optimizer's business).
        callbacks: objects with ``on_epoch_end(epoch, history, model) -> bool`` (stop when
            True), e.g. :class:`training.EarlyStopping`, and optionally ``on_train_end(model)``,
            called after the last epoch (stopped early or not) before its checkpoint is saved.
        progress: a tqdm bar per epoch on stderr (rank 0 only); otherwise ``logging``.
        checkpoint_dir: folder for ``checkpoint.pt``, written after every epoch (rank 0 only).
        resume: continue from ``checkpoint_dir/checkpoint.pt`` when it exists.

    Returns:
        The history of all epochs (including those before a resume).

    Raises:
        DivergenceError: a training loss (named by step) or a weight became NaN or infinite.
        CheckpointError: the checkpoint cannot be read, written or applied.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from training.models import LinearRegression
        >>> x = torch.linspace(0, 1, 64).unsqueeze(1)
        >>> loader = DataLoader(TensorDataset(x, 2 * x + 1), batch_size=16)
        >>> config = FitConfig(lr=0.5, epochs=50, device="cpu")
        >>> history = fit(LinearRegression(1, 1), loader, config=config)
        >>> history.train_loss[-1] < 1e-3
        True
    """
    config = config if config is not None else FitConfig()
    if optimizer is not None:
        config = dataclasses.replace(config, optimizer=type(optimizer).__name__.lower())
    target = resolve_device(config.device)
    model.to(target)
    criterion = (loss if loss is not None else _default_loss(model)).to(target)
    if optimizer is None:
        optimizer = make_optimizer(
            config.optimizer, model.parameters(), lr=config.lr, momentum=config.momentum,
            weight_decay=config.weight_decay, lbfgs_max_iter=config.lbfgs_max_iter,
        )
    set_lr = None if config.schedule == "constant" else scheduled_lr(
        config.schedule, optimizer, total_steps=config.epochs * _steps_per_epoch(train_loader))
    main = distributed.is_main_process()
    path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    if resume and path is not None and path.is_file():
        done, history = _resume(path, model, optimizer, train_loader, callbacks, config)
        if _finished(path, done, config.epochs, history):
            return history
    else:
        seed_everything(config.seed)
        done, history = 0, History()
    runner = _EpochRunner(model, train_loader, criterion, optimizer, target,
                          _is_classifier(model, criterion), config.weight_decay, progress and main,
                          set_lr)
    for epoch in range(done + 1, config.epochs + 1):
        started = time.perf_counter()
        stats = runner.run(epoch, config.epochs)
        train_loss, train_acc, count = stats.reduce()
        check_finite(model, stats.losses, epoch=epoch, lr=config.lr,
                     mean_loss=train_loss if count else None)
        valid = evaluate(model, valid_loader, loss=criterion, device=target) if valid_loader else None
        history.record(
            epoch, train_loss=train_loss, train_accuracy=train_acc, valid=valid,
            lr=float(optimizer.param_groups[0]["lr"]), data_time_s=stats.data_s,
            compute_time_s=stats.compute_s, epoch_time_s=time.perf_counter() - started,
            skipped_batches=stats.skipped,
        )
        stop = [bool(cb.on_epoch_end(epoch, history, unwrap(model))) for cb in callbacks]
        history.stopped_early = any(stop)
        if history.stopped_early or epoch == config.epochs:  # before the save: it keeps them
            _train_end(callbacks, unwrap(model))
        if path is not None and main:
            _save(path, model, optimizer, epoch, history, callbacks, train_loader, config)
        if main:  # after the save: an epoch that was announced is in the checkpoint
            log.info("%s", history.describe_last(config.epochs))
        if history.stopped_early:
            break
    return history


def _train_end(callbacks: Sequence[Callback], model: nn.Module) -> None:
    """Call ``on_train_end(model)`` of the callbacks that have it (EarlyStopping's best weights)."""
    for callback in callbacks:
        end = getattr(callback, "on_train_end", None)
        if callable(end):
            end(model)


def _save(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
    history: History, callbacks: Sequence[Callback], loader: Any, config: FitConfig,
) -> None:
    save_checkpoint(
        path,
        {
            "epoch": epoch,
            "model": unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": history.to_dict(),
            "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks],
            "rng": capture_rng_state(),
            "loader": loader_state(loader),
            "config": dataclasses.asdict(config),
        },
    )
