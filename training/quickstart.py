"""The whole pipeline offline in under a minute: letters → packed cache → logistic regression.

Run ``python -m training.quickstart [--out runs/quickstart]``. It builds the ``letters`` data
(20,000 generated 28×28 glyphs of A–J, no network), packs them, trains a logistic regression
with :func:`training.fit`, prints the test accuracy, and writes ``samples.png`` (a grid of
training images), ``curves.png`` (loss and accuracy per epoch), ``metrics.json`` and
``checkpoint.pt`` into the output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import CHECKPOINT_NAME
from training.console import (
    add_run_arguments,
    configure_logging,
    describe_error,
    interrupted_line,
    make_output_dir,
    output_folder,
)
from training.curves import save_curves
from training.defaults import default_lr
from training.errors import TrainingError
from training.fit import FitConfig, History, evaluate, fit, resolve_device, seed_everything
from training.history import count_noun
from training.models import LogisticRegression

log = logging.getLogger(__name__)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.quickstart",
        description="Offline end-to-end run: generate letters, pack, train logistic regression.",
        epilog="example: python -m training.quickstart --out runs/quickstart --epochs 5",
    )
    parser.add_argument("--out", default="runs/quickstart", type=output_folder,
                        help="output folder (default runs/quickstart)")
    parser.add_argument("--optimizer", choices=["adam", "lbfgs", "sgd"], default="adam")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --out/checkpoint.pt (after Ctrl-C, say)")
    add_run_arguments(parser, epochs=8, lr=None, batch_size=128,
                      lr_help="learning rate (default: adam 0.01, sgd 0.1, lbfgs 1.0)")
    return parser


def _run(args: argparse.Namespace, out: Path) -> tuple[dict[str, Any], History, dict[str, Any]]:
    import loaders
    from datasets import DataLoader, ToFloat, open_dataset
    from datasets.preview import save_grid

    # 1. data: generated offline by loaders (cached: the second run reuses it)
    started = time.perf_counter()
    folder = loaders.fetch("letters", args.root, extract=False, progress=_bars(args))
    # 2. packed once into a memory-mapped cache; splits are per class and seeded
    splits: dict[str, Any] = {
        s: open_dataset("letters", args.root, split=s, transform=ToFloat(0.0, 1.0))
        for s in ("train", "val", "test")}
    log.info("data: %d train / %d valid / %d test letters A-J, 28x28, in %s (%.1f s)",
             len(splits["train"]), len(splits["val"]), len(splits["test"]), folder,
             time.perf_counter() - started)
    save_grid(splits["train"], out / "samples.png", count=64)
    # 3. a logistic regression trained by the harness
    seed_everything(args.seed)
    classes: list[str] = splits["train"].classes
    model = LogisticRegression(28 * 28, len(classes))
    train = DataLoader(splits["train"], batch_size=args.batch_size, shuffle=True,
                       generator=torch.Generator().manual_seed(args.seed))
    valid = DataLoader(splits["val"], batch_size=1024)
    lr = args.lr if args.lr is not None else default_lr(args.optimizer, "logistic")
    log.info("training: logistic regression (784 -> %d), %s lr %g, %s",
             len(classes), args.optimizer, lr, count_noun(args.epochs, "epoch"))
    config = FitConfig(optimizer=args.optimizer, lr=lr, epochs=args.epochs, seed=args.seed,
                       device=str(args.device))
    history = fit(model, train, valid, config, checkpoint_dir=out, resume=args.resume,
                  progress=_bars(args))
    result = evaluate(model, DataLoader(splits["test"], batch_size=1024), device=args.device,
                      report=True)
    save_curves(history, out / "curves.png", title="logistic regression on letters")
    sizes = {name: len(split) for name, split in splits.items()}
    return {"classes": classes, "sizes": sizes}, history, result


def _bars(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def main(argv: list[str] | None = None) -> int:
    """Build the data, train, print the accuracy and write the pictures; return the exit status."""
    args = _parser().parse_args(argv)
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    import loaders
    from datasets import DatasetError

    started = time.perf_counter()
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]
    command = shlex.join(["python", "-m", "training.quickstart", *given])
    try:
        args.device = resolve_device(args.device, flag="--device")  # fail before the data
        out = make_output_dir(args.out)
        data, history, result = _run(args, out)
    except (loaders.LoaderError, DatasetError, TrainingError, ValueError, OSError) as err:
        print(describe_error(err), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(interrupted_line(Path(args.out), command), file=sys.stderr)
        return 130
    seconds = time.perf_counter() - started
    metrics = {"dataset": "letters", "model": "logistic", "test_accuracy": result["accuracy"],
               "test_macro_f1": result["macro_f1"], "confusion_matrix": result["confusion_matrix"],
               "classes": data["classes"], "seconds": seconds, "history": history.to_dict()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    sizes = data["sizes"]
    print(f"{sizes['train']} train / {sizes['val']} valid / {sizes['test']} test images, "
          f"{count_noun(len(history.epoch), 'epoch')} in {seconds:.1f}s")
    print("wrote " + ", ".join(str(out / name) for name in
                               ("samples.png", "curves.png", "metrics.json", CHECKPOINT_NAME)))
    print(f"test accuracy: {result['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
