"""``python -m training fit``: train a linear, logistic, small CNN or bag-of-words model.

Data come from the dataset catalog (``--dataset``, :mod:`datasets.catalog`) or a local path
(``--data-dir``: an image folder of any format, colour and size, IDX files, or a text file).
Writes into ``--out``: ``metrics.json`` (``test_accuracy`` as a fraction, per-class scores,
confusion matrix, history, configuration), ``checkpoint.pt``, ``curves.png`` and, with
``--tensorboard``, TensorBoard event files in ``tensorboard/``; prints a final
line with the test accuracy. Under ``torchrun`` it trains with DistributedDataParallel; only
rank 0 logs and writes files. Exit status: 0 success, 1 a caught error (one line
``error: …``), 2 usage, 130 Ctrl-C (one line saying how to resume). A second run into the
same ``--out`` while one runs fails at once (exit 1) naming the other process.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Sized
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from datasets import catalog
from training import distributed
from training.callbacks import EarlyStopping
from training.console import (
    add_run_arguments,
    check_batch_memory,
    configure_logging,
    describe_error,
    hold_run_folder,
    image_side,
    interrupted_line,
    is_worker_error,
    make_output_dir,
    memory_error_line,
    non_negative_float,
    non_negative_int,
    output_folder,
    worker_count,
)
from training.curves import save_curves
from training.data import IMAGE_DATASETS, load_image_splits
from training.defaults import MODEL_DEFAULTS, default_lr, describe_defaults
from training.errors import TrainingError
from training.fit import FitConfig, History, evaluate, fit, resolve_device, seed_everything
from training.history import count_noun
from training.models import LinearRegression, LogisticRegression, SmallCNN
from training.optim import OPTIMIZERS, SCHEDULES
from training.text import add_text_arguments, read_options, recipe_threads

log = logging.getLogger(__name__)

__all__ = ["OneHotMSELoss", "build_parser", "default_lr", "main"]

TEXT_DATASETS = tuple(catalog.names(kind="text"))
OFFLINE_HINT = ("train on local data: --dataset letters (generated offline) or --data-dir DIR "
                "(an image folder, IDX files, or a text file with --model bow)")
EPILOG = """examples:
  python -m training fit --dataset letters --model logistic --epochs 5 --out runs/letters
  python -m training fit --data-dir ~/Pictures/my-photos --model cnn --image-size 64 --out runs/mine
  python -m training fit --dataset cifar10 --model cnn --augment --out runs/cifar
  python -m training fit --dataset hymenoptera --model cnn --image-size 64 --out runs/hym
  python -m training fit --data-dir ../shared/data/notmnist-idx --optimizer lbfgs --out runs/idx
  python -m training fit --dataset sms-spam --model bow --out runs/sms
  python -m training fit --data-dir train.csv --test-data test.csv --model bow --out runs/text
  torchrun --nproc_per_node=2 -m training fit --dataset letters --out runs/ddp

""" + describe_defaults() + "\n"

#: The models whose loss is convex, where full-batch L-BFGS finds the optimum.
CONVEX_MODELS = ("linear", "logistic", "bow")

def dataset_name(text: str) -> str:
    """argparse type of ``--dataset``: a catalog name, else a usage error naming the nearest."""
    from datasets.catalog import get
    from loaders.errors import UnknownDatasetError

    try:
        get(text)
    except UnknownDatasetError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


class OneHotMSELoss(nn.Module):
    """Mean squared error against one-hot labels: least-squares classification."""

    classification = True

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return ``mean((outputs - one_hot(labels))^2)``."""
        target = nn.functional.one_hot(labels.long(), self.num_classes).to(outputs.dtype)
        return nn.functional.mse_loss(outputs, target)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m training``."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train linear and logistic models on dataferry datasets.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit", help="train a model and write metrics, checkpoint and curves",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", type=dataset_name, default="letters", metavar="NAME",
                   help="catalog dataset (default letters, generated offline): "
                   f"{', '.join([*IMAGE_DATASETS, *TEXT_DATASETS])}")
    p.add_argument("--data-dir", help="local data instead of --dataset: an image folder "
                   "(CLASS/*.jpg, any format, colour and size), a folder of train/ val/ image "
                   "folders, IDX files, or with --model bow a CSV/TSV/JSONL file")
    p.add_argument("--model", choices=["linear", "logistic", "cnn", "bow"], default="logistic",
                   help="default logistic; linear is least squares on one-hot labels; cnn a "
                   "small convolutional network (training.SmallCNN); bow (bag of words) for text")
    p.add_argument("--image-size", type=image_side, default=None, metavar="N",
                   help="pack image folders at N x N (other datasets: resized per batch); a "
                   "folder of mixed sizes defaults to 64")
    p.add_argument("--augment", action="store_true",
                   help="random-resized-crop and horizontal flip on the training batches")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files to --out/tensorboard "
                   "(needs the tensorboard extra)")
    add_text_arguments(p)
    p.add_argument("--test-data", metavar="FILE", help="with --model bow and a text file as "
                   "--data-dir: a separate test file, read with the training file's columns and "
                   "classes (default: 20%% of each class of --data-dir)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=None,
                   help="default per model (below); lbfgs is full batch, one step per epoch "
                   "(convex models)")
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="learning rate per step: constant, cosine decay, or one-cycle (warm up "
                   "to --lr, then anneal); default per model (below)")
    p.add_argument("--momentum", type=non_negative_float, default=None,
                   help="SGD momentum (default per model and optimizer, below; else 0)")
    p.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help="L2 strength (default per model and optimizer, below, else 0; "
                   "lbfgs: 1/n_train, scikit-learn's C=1)")
    p.add_argument("--patience", type=non_negative_int, default=None,
                   help="early stopping: epochs without valid-loss improvement, the best "
                   "epoch's weights restored (default per model, below; else off)")
    p.add_argument("--out", required=True, type=output_folder,
                   help="run folder for metrics.json, checkpoint, curves")
    p.add_argument("--resume", action="store_true",
                   help="continue from --out/checkpoint.pt (a run that already finished or "
                   "stopped early trains no more)")
    p.add_argument("--stream", metavar="URL", help="train on a sharded pack streamed from a "
                   "folder, http(s):// or s3:// URL (python -m datasets.shard writes one)")
    p.add_argument("--stream-test", metavar="URL", help="the test pack for --stream")
    p.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible endpoint for s3:// "
                   "--stream URLs (MinIO, Ceph, R2...)")
    p.add_argument("--num-workers", type=worker_count, default="auto", metavar="N|auto",
                   help="DataLoader worker processes, or auto (the default): none for packed "
                   "images (a batch costs microseconds there; an explicit N steps aside on a "
                   "small pack, saying so), some for per-sample decoding")
    p.add_argument("--force-workers", action="store_true",
                   help="use --num-workers N processes even on a small pack")
    add_run_arguments(p, epochs=None, lr=None, batch_size=None,
                      lr_help="learning rate (default per model and optimizer, below)",
                      batch_help="training batch size (default per model, below)",
                      epochs_help="passes over the training data (default per model, below)")
    return parser


@dataclass
class _Run:
    model: nn.Module
    loss: nn.Module | None
    train: Any
    valid: Any
    test: Any
    classes: list[str]
    n_train: int
    text: bool = False  # the text recipe: trained with its thread count


def _image_run(args: argparse.Namespace, device: torch.device) -> _Run:
    from datasets import DataLoader, ToFloat

    if args.model == "bow":
        raise ValueError("--model bow needs a text dataset (--dataset sms-spam or a text file)")
    with distributed.main_process_first():  # rank 0 downloads and packs; the others reuse it
        # pixels / 255 in [0, 1], as scikit-learn users feed them: the lbfgs default L2 term
        # (1 / n_train) then matches LogisticRegression(C=1)
        splits = load_image_splits(None if args.data_dir else args.dataset, root=args.root,
                                   data_dir=args.data_dir, seed=args.seed,
                                   transform=ToFloat(mean=0.0, std=1.0),
                                   image_size=args.image_size, augment=args.augment)
    k = len(splits.classes)
    evaluated = [len(cast(Sized, d)) for d in (splits.valid, splits.test) if d is not None]
    check_batch_memory(side=splits.image_size, channels=splits.in_channels,  # eval: 1024 a batch
                       batch_size=max([args.batch_size, *(min(n, 1024) for n in evaluated)]),
                       image_size=args.image_size)
    model: nn.Module
    loss: nn.Module | None = None
    init = "zeros" if args.optimizer == "lbfgs" else "uniform"  # convex: start where sklearn does
    if args.model == "linear":
        model, loss = LinearRegression(splits.in_features, k, init=init), OneHotMSELoss(k)
    elif args.model == "cnn":
        model = SmallCNN(splits.in_channels, k)
    else:
        model = LogisticRegression(splits.in_features, k, init=init)
    sampler = distributed.shard_sampler(splits.train, shuffle=True, seed=args.seed)
    pin = device.type == "cuda"
    train = DataLoader(splits.train, batch_size=args.batch_size, shuffle=sampler is None,
                       sampler=sampler, num_workers=args.num_workers, pin_memory=pin,
                       generator=torch.Generator().manual_seed(args.seed),
                       force_workers=args.force_workers)
    valid = (DataLoader(splits.valid, batch_size=1024, pin_memory=pin)
             if splits.valid is not None else None)
    test = DataLoader(splits.test, batch_size=1024, pin_memory=pin)
    n_train = len(cast(Sized, splits.train))  # map-style datasets and their Subsets have a length
    return _Run(model, loss, train, valid, test, splits.classes, n_train)


def _stream_run(args: argparse.Namespace) -> _Run:
    from training.stream_data import stream_loaders

    if args.model == "bow":
        raise ValueError("--model bow needs a text dataset (--dataset sms-spam or a text file), "
                         "and --stream reads image packs; use --model logistic, linear or cnn")
    data = stream_loaders(args.stream, test_url=args.stream_test, cache_dir=args.root,
                          batch_size=args.batch_size, num_workers=args.num_workers, seed=args.seed,
                          force_workers=args.force_workers,
                          endpoint_url=args.endpoint_url,
                          progress=not args.quiet and sys.stderr.isatty())
    k, init = len(data.classes), "zeros" if args.optimizer == "lbfgs" else "uniform"
    model: nn.Module
    loss: nn.Module | None = None
    if args.model == "linear":
        model, loss = LinearRegression(data.in_features, k, init=init), OneHotMSELoss(k)
    elif args.model == "cnn":  # the pack's images reach it as float [B, C, H, W]
        model = SmallCNN(data.in_channels, k)
    else:
        model = LogisticRegression(data.in_features, k, init=init)
    return _Run(model, loss, data.train, None, data.test, data.classes, data.n_train)


def _text_run(args: argparse.Namespace) -> _Run:
    """The text recipe (:mod:`training.text`) with the command line's batch size and patience."""
    from training.text import TEXT_DEFAULTS, build_text_model, load_text_data

    if args.model != "bow":
        raise ValueError(f"--model {args.model} needs image data; use --model bow for text")
    if args.image_size is not None or args.augment:
        raise ValueError("--image-size and --augment apply to image data, not to text")
    # L-BFGS's line search needs the same objective at every evaluation: no dropout there
    dropout = 0.0 if args.optimizer == "lbfgs" else TEXT_DEFAULTS.dropout
    recipe = dataclasses.replace(TEXT_DEFAULTS, batch_size=args.batch_size,
                                 patience=args.patience, dropout=dropout)
    text = load_text_data(None if args.data_dir else args.dataset, data=args.data_dir,
                          test_data=args.test_data, root=args.root, read=read_options(args),
                          recipe=recipe, seed=args.seed)
    if text.valid_loader is None and not getattr(args, "patience_given", True):
        args.patience = None  # too few texts to hold out a validation split (load_text_data
        # said so)
    if text.baseline and distributed.is_main_process():
        print(f"baseline to reach: {text.baseline}")
    if args.num_workers not in ("auto", 0):
        log.info("--num-workers %s does not apply to --model bow: the text recipe builds its "
                 "batches of hashed features in the main process", args.num_workers)
    return _Run(build_text_model(text, recipe), None, text.train_loader, text.valid_loader,
                text.test_loader, text.classes, text.train_size, text=True)


def _is_text(args: argparse.Namespace) -> bool:
    if args.data_dir:
        return args.model == "bow"
    return catalog.get(args.dataset).kind == "text"


def _apply_model_defaults(args: argparse.Namespace) -> None:
    """Fill the options left unset with the model's defaults (:mod:`training.defaults`)."""
    row = MODEL_DEFAULTS[args.model]
    if args.optimizer is None:
        args.optimizer = row.optimizer
    own = row.settings(args.optimizer)
    args.lr = own.lr if args.lr is None else args.lr
    args.momentum = own.momentum if args.momentum is None else args.momentum
    args.batch_size = row.batch_size if args.batch_size is None else args.batch_size
    args.epochs = row.epochs if args.epochs is None else args.epochs
    args.patience_given = args.patience is not None  # a default patience steps aside for tiny data
    args.patience = row.patience if args.patience is None else args.patience
    if args.schedule is None:  # L-BFGS takes one full-batch step per epoch: no schedule
        args.schedule = "constant" if args.optimizer == "lbfgs" else row.schedule


def _write_outputs(args: argparse.Namespace, out: Path, run: _Run, history: History,
                   test: dict[str, Any], config: dict[str, Any], seconds: float) -> None:
    metrics = {
        "dataset": args.stream or args.data_dir or args.dataset,
        "model": args.model,
        "classes": run.classes,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "test_count": test["count"],
        "test_macro_f1": test.get("macro_f1"),
        "test_precision": test.get("precision"),
        "test_recall": test.get("recall"),
        "test_f1": test.get("f1"),
        "confusion_matrix": test.get("confusion_matrix"),  # None above 100 classes
        "confusion_cells": test.get("confusion_cells"),  # [true, predicted, count] nonzero
        "train_time_s": seconds,
        "world_size": distributed.world_size(),
        "config": config,
        "history": history.to_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    save_curves(history, out / "curves.png",
                title=f"{args.model} on {metrics['dataset']} ({args.optimizer}, lr {config['lr']})")


def _tensorboard(args: argparse.Namespace, out: Path, run: _Run) -> Any:
    """The TensorBoard callback (rank 0, with --tensorboard), drawing one training batch."""
    if not args.tensorboard or not distributed.is_main_process():
        return None
    from training.tensorboard import TensorBoardLogger, first_images

    return TensorBoardLogger(out / "tensorboard", samples=first_images(run.train))


def _fit_command(args: argparse.Namespace, command: str) -> int:
    _apply_model_defaults(args)
    env = distributed.setup()
    held = ExitStack()
    try:
        device = resolve_device(args.device, flag="--device")
        out = make_output_dir(args.out) if env.is_main else Path(args.out)  # fail before the data
        if env.is_main:  # one run per folder: a second one must not overwrite the first's files
            held.enter_context(hold_run_folder(out, command=command))
        seed_everything(args.seed)
        if args.test_data and (args.stream or not _is_text(args)):
            raise ValueError(f"--test-data {args.test_data} goes with a text file as --data-dir "
                             "and --model bow; image data keep their test split in test/ or "
                             "val/ folders (--stream: --stream-test URL)")
        if args.stream:
            run = _stream_run(args)
        else:
            run = _text_run(args) if _is_text(args) else _image_run(args, device)
        lr, wd = args.lr, args.weight_decay
        if wd is None:
            wd = (1.0 / run.n_train if args.optimizer == "lbfgs"
                  else MODEL_DEFAULTS[args.model].settings(args.optimizer).weight_decay)
        model = distributed.wrap_model(run.model.to(device), device)
        callbacks: list[Any] = ([EarlyStopping(patience=args.patience)]
                                if args.patience is not None else [])
        if callbacks and run.valid is None:
            raise ValueError("--patience needs a validation split, and this dataset has none; "
                             "drop --patience, or give more data (or a val/ folder)")
        board = _tensorboard(args, out, run)
        callbacks += [board] if board is not None else []
        if env.is_main:
            log.info("training: %s model, %s lr %g (%s schedule), batch %d, %s on %s%s",
                     args.model, args.optimizer, lr, args.schedule, args.batch_size,
                     count_noun(args.epochs, "epoch"), device,
                     f", {env.world_size} processes" if env.world_size > 1 else "")
        started = time.perf_counter()
        fit_config = FitConfig(optimizer=args.optimizer, lr=lr, epochs=args.epochs,
                               momentum=args.momentum, weight_decay=wd, device=str(device),
                               seed=args.seed, schedule=args.schedule)
        with recipe_threads() if run.text else contextlib.nullcontext():
            history = fit(model, run.train, run.valid, fit_config, loss=run.loss,
                          callbacks=callbacks, checkpoint_dir=out, resume=args.resume,
                          progress=not args.quiet and sys.stderr.isatty() and env.is_main)
        seconds = time.perf_counter() - started
        if board is not None:
            board.close()
        test = evaluate(model, run.test, loss=run.loss, device=device, report=True)
        if not test["count"]:  # a run that measured nothing must not exit 0
            raise TrainingError("expected test samples to measure but the test split is empty; "
                                "add data or pass a dataset with a test split")
        config = {"optimizer": args.optimizer, "lr": lr, "epochs": args.epochs,
                  "batch_size": args.batch_size, "momentum": args.momentum, "weight_decay": wd,
                  "seed": args.seed, "device": str(device), "patience": args.patience,
                  "image_size": args.image_size, "augment": args.augment,
                  "schedule": args.schedule,
                  "num_workers": getattr(run.train, "num_workers", args.num_workers),  # used
                  "num_workers_asked": args.num_workers}
        if env.is_main:
            _write_outputs(args, out, run, history, test, config, seconds)
            print(f"test accuracy: {test['accuracy']:.4f} ({count_noun(test['count'], 'sample')}, "
                  f"{count_noun(len(history.epoch), 'epoch')}, {seconds:.1f}s) -> "
                  f"{out / 'metrics.json'}")
        return 0
    finally:
        held.close()
        distributed.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 error, 2 usage, 130 Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "optimizer", None) == "lbfgs" and args.model not in CONVEX_MODELS:
        parser.error(f"--optimizer lbfgs is for the convex models ({', '.join(CONVEX_MODELS)}), "
                     f"but got --model {args.model}; drop --optimizer for its default "
                     f"({MODEL_DEFAULTS[args.model].optimizer}) or pass adamw/sgd")
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    from datasets.errors import DatasetError
    from loaders.errors import LoaderError

    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]
    command = shlex.join(["python", "-m", "training", *given])
    try:
        return _fit_command(args, command)
    except (TrainingError, DatasetError, LoaderError, ValueError, OSError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not is_worker_error(err):
            raise  # a bug, not a bad input: keep its traceback
        print(describe_error(err, offline_hint=OFFLINE_HINT), file=sys.stderr)
        return 1
    except MemoryError:
        print(memory_error_line(image_size=args.image_size, batch_size=args.batch_size),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":  # torchrun's ranks all see Ctrl-C; one speaks
            print(interrupted_line(Path(args.out), command), file=sys.stderr)
        return 130
