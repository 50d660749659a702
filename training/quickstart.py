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
import sys
import time
from pathlib import Path

import torch

from training.curves import save_curves
from training.errors import TrainingError
from training.fit import evaluate, fit, seed_everything
from training.models import LogisticRegression

log = logging.getLogger(__name__)

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Build the data, train, print the accuracy and write the pictures; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m training.quickstart",
        description="Offline end-to-end run: generate letters, pack, train logistic regression.",
        epilog="example: python -m training.quickstart --out runs/quickstart --epochs 5",
    )
    parser.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    parser.add_argument("--root", help="cache home (default $DATAFERRY_HOME or ~/.cache/dataferry)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--optimizer", choices=["adam", "lbfgs", "sgd"], default="adam")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the result lines")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size should be positive ints")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import loaders
    from datasets import DataLoader, DatasetError, NotMNIST, ToFloat
    from datasets.preview import save_grid

    out = Path(args.out)
    started = time.perf_counter()
    try:
        # 1. data: generated offline by loaders (cached: the second run reuses it)
        loaders.fetch("letters", args.root, extract=False, progress=sys.stderr.isatty())
        # 2. packed once into a memory-mapped cache; splits are per class and seeded
        splits = {s: NotMNIST(args.root, split=s, variant="letters", transform=ToFloat(0.0, 1.0))
                  for s in ("train", "valid", "test")}
        save_grid(splits["train"], out / "samples.png", count=64)
        # 3. a logistic regression trained by the harness
        seed_everything(args.seed)
        model = LogisticRegression(28 * 28, len(splits["train"].classes))
        train = DataLoader(splits["train"], batch_size=args.batch_size, shuffle=True,
                           generator=torch.Generator().manual_seed(args.seed))
        valid = DataLoader(splits["valid"], batch_size=1024)
        test = DataLoader(splits["test"], batch_size=1024)
        history = fit(model, train, valid, optimizer=args.optimizer, lr=args.lr,
                      epochs=args.epochs, seed=args.seed,
                      device=args.device, checkpoint_dir=out,
                      progress=not args.quiet and sys.stderr.isatty())
        result = evaluate(model, test, device=args.device, report=True)
        save_curves(history, out / "curves.png", title="logistic regression on letters")
    except (loaders.LoaderError, DatasetError, TrainingError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    metrics = {"dataset": "letters", "model": "logistic", "test_accuracy": result["accuracy"],
               "test_macro_f1": result["macro_f1"], "confusion_matrix": result["confusion_matrix"],
               "classes": splits["train"].classes, "seconds": seconds,
               "history": history.to_dict()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"{len(splits['train'])} train / {len(splits['valid'])} valid / "
          f"{len(splits['test'])} test images, {args.epochs} epochs in {seconds:.1f}s")
    print(f"wrote {out / 'samples.png'}, {out / 'curves.png'}, {out / 'metrics.json'}")
    print(f"test accuracy: {result['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
