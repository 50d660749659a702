"""Bag-of-n-grams text classification: the text recipe of :mod:`training.text`, as a script.

Run ``python -m training.examples.text_classification --dataset sms-spam`` (also ``ag-news``
and ``imdb``, fetched through ``loaders``) or ``--data FILE`` for a local CSV/TSV/JSONL file,
with ``--text-column`` (repeatable), ``--label-column`` and ``--header auto|yes|no``.
``--test-data FILE`` gives a separate test file; otherwise each class is split 80/20
(seeded), refusing a split that would be empty or leave a class out of training. The recipe
(:mod:`training.text`, the same one ``python -m training fit --model bow`` runs): words and
hashed bigrams with sublinear TF-IDF weights, a logistic regression over the bag with feature
dropout, AdamW with a cosine schedule, early stopping on 10% of the training texts. Prints
accuracy, per-class F1, the confusion matrix and the baseline to reach, and ends with
``accuracy: 0.xxxx``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

import torch

from training.console import (
    add_run_arguments,
    configure_logging,
    describe_error,
    interrupted_line,
    non_negative_int,
)
from training.errors import TrainingError
from training.fit import resolve_device
from training.metrics import classification_report, format_confusion_matrix
from training.text import (
    BASELINES,
    TEXT_DEFAULTS,
    TextData,
    TextReadOptions,
    add_text_arguments,
    load_text_data,
    read_options,
    train_text,
)

log = logging.getLogger(__name__)

# The recipe's names, importable from here as before.
__all__ = ["BASELINES", "TextData", "TextReadOptions", "add_text_arguments", "load_text_data",
           "main", "read_options", "train_text"]

#: Up to this many classes ``main`` prints the per-class report and the confusion matrix.
PRINTED_CLASSES = 20


def main(argv: list[str] | None = None) -> int:
    """Train and print accuracy, F1 and the confusion matrix; last line ``accuracy: 0.xxxx``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.examples.text_classification",
        description="Bag-of-n-grams text classifier (training.text's recipe: TF-IDF 1-2-grams, "
        "logistic regression with feature dropout, AdamW, cosine schedule, early stopping).",
        epilog="example: python -m training.examples.text_classification --data test.csv "
               "--text-column title --text-column description",
    )
    source = parser.add_mutually_exclusive_group()
    from datasets.catalog import names

    source.add_argument("--dataset", choices=names(kind="text"), default=None,
                        help="registry corpus fetched through loaders (default sms-spam)")
    source.add_argument("--data", help="local CSV/TSV/JSONL file (label and text columns)")
    parser.add_argument("--test-data", help="a separate test file (with --data)")
    add_text_arguments(parser)
    parser.add_argument("--patience", type=non_negative_int, default=TEXT_DEFAULTS.patience,
                        help="early stopping: epochs without a lower validation loss "
                        f"(default {TEXT_DEFAULTS.patience})")
    add_run_arguments(parser, epochs=TEXT_DEFAULTS.epochs, lr=TEXT_DEFAULTS.lr,
                      batch_size=TEXT_DEFAULTS.batch_size)
    args = parser.parse_args(argv)
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    from datasets.errors import DatasetError
    from loaders.errors import LoaderError

    try:
        device = resolve_device(args.device, flag="--device")  # fail before the data
        recipe = dataclasses.replace(TEXT_DEFAULTS, epochs=args.epochs, lr=args.lr,
                                     batch_size=args.batch_size, patience=args.patience)
        text = load_text_data(args.dataset or ("sms-spam" if args.data is None else None),
                              data=args.data, test_data=args.test_data, root=args.root,
                              read=read_options(args), recipe=recipe, seed=args.seed)
        _, result = train_text(text, recipe=recipe, seed=args.seed, device=device,
                               progress=not args.quiet and sys.stderr.isatty())
    except (DatasetError, LoaderError, TrainingError, ValueError, OSError) as err:
        print(describe_error(err, offline_hint="pass --data FILE (a local copy of the "
                             "SMS Spam Collection or any CSV/TSV/JSONL file)"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # no checkpoint here: a run takes seconds
        print(interrupted_line(None, "python -m training.examples.text_classification"),
              file=sys.stderr)
        return 130
    print(f"{text.train_size} train, {text.valid_size} valid, {text.test_size} test texts, "
          f"{text.vocab_size} features")
    if len(text.classes) <= PRINTED_CLASSES:
        cm = torch.tensor(result["confusion_matrix"])
        print(classification_report(cm, text.classes))
        print("confusion matrix (rows true, columns predicted):")
        print(format_confusion_matrix(cm, text.classes))
    else:  # 10,000 classes would print 10,000 report lines and a 10^8-cell matrix
        print(f"{len(text.classes)} classes: per-class scores and the confusion matrix are not "
              f"printed above {PRINTED_CLASSES} classes (evaluate(report=True) returns them)")
    if text.baseline:
        print(f"baseline to reach: {text.baseline}")
    print(f"macro F1: {result['macro_f1']:.4f}")
    print(f"accuracy: {result['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
