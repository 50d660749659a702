"""Bag-of-n-grams text classification: packed token ids, hashed bigrams, TF-IDF, BagOfWords.

Run ``python -m training.examples.text_classification --dataset sms-spam`` (also ``ag-news``
and ``imdb``, fetched through ``loaders``) or ``--data FILE`` for a local CSV/TSV/JSONL file,
with ``--text-column`` (repeatable), ``--label-column`` and ``--header auto|yes|no``.
``--test-data FILE`` gives a separate test file; otherwise each class is split 80/20
(seeded), refusing a split that would be empty or leave a class out of training. Texts are
packed once (:mod:`datasets.textpack`); features (vocabulary from the training split, hashed
bigrams, sublinear TF-IDF weights) are built with NumPy (:mod:`datasets.textfeatures`); the
model is :class:`~training.models.BagOfWords` over ``EmbeddingBag(per_sample_weights=...)``
with sparse gradients and Adagrad. Prints accuracy, per-class F1, the confusion matrix and
the baseline to reach, and ends with ``accuracy: 0.xxxx``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch

from training import distributed
from training.console import (
    add_run_arguments,
    configure_logging,
    describe_error,
    interrupted_line,
    positive_int,
)
from training.errors import TrainingError
from training.fit import FitConfig, evaluate, fit, resolve_device, seed_everything
from training.metrics import classification_report, format_confusion_matrix
from training.models import BagOfWords

log = logging.getLogger(__name__)

__all__ = ["BASELINES", "TextData", "TextReadOptions", "load_text_data", "main", "train_text"]

#: Up to this many classes ``main`` prints the per-class report and the confusion matrix.
PRINTED_CLASSES = 20

#: What the bag-of-n-grams model should reach on each corpus (see README, Text).
BASELINES = {
    "sms-spam": "scikit-learn TF-IDF + LinearSVC 98.2% on a stratified 80/20 split",
    "ag-news": "fastText with bigrams 92.5% on the 7,600 test articles (target >= 92.0%)",
    "imdb": "NBSVM with bigrams 91.2% on the 25,000 test reviews (Wang & Manning, 2012)",
}


@dataclass(frozen=True)
class TextReadOptions:
    """How to read a local text file (see :func:`datasets.textfiles.read_records`)."""

    text_columns: tuple[str | int, ...] | None = None
    label_column: str | int | None = None
    header: bool | str = "auto"
    encoding: str = "utf-8"

    def as_kwargs(self) -> dict[str, Any]:
        """Return the options as ``read_records`` keyword arguments."""
        cols = list(self.text_columns) if self.text_columns else None
        return {"text_columns": cols, "label_column": self.label_column, "header": self.header,
                "encoding": self.encoding}


@dataclass
class TextData:
    """Loaders of the split text data, the feature count and the class names."""

    train_loader: Any
    test_loader: Any
    vocab_size: int
    pad_id: int | None
    classes: list[str]
    train_size: int
    test_size: int
    baseline: str | None = None


def _splits(dataset: str | None, data: Any, test_data: Any, root: Any, cache_dir: Any,
            read: TextReadOptions) -> dict[str, Any]:
    from datasets import catalog
    from datasets.textcorpora import open_text_corpus
    from datasets.textpack import PackedTextDataset

    if data is not None:
        train = PackedTextDataset.from_file(data, cache_dir=cache_dir, **read.as_kwargs())
        if test_data is None:
            return {"all": train}
        test = PackedTextDataset.from_file(test_data, cache_dir=cache_dir,
                                           label_encoder=train.label_encoder, **read.as_kwargs())
        return {"train": train, "test": test}
    corpora = catalog.names(kind="text")
    if dataset not in corpora:
        raise ValueError(f"dataset should be one of {corpora} (or pass data=FILE), "
                         f"but got dataset={dataset!r}")
    with distributed.main_process_first():
        return open_text_corpus(dataset, root=root, cache_dir=cache_dir)


def _class_names(parts: dict[str, Any]) -> list[str]:
    pack = next(iter(parts.values())).pack
    return [str(n) for n in pack.names]


def load_text_data(
    dataset: str | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    test_data: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    read: TextReadOptions | None = None,
    features: Any = None,
    batch_size: int = 64,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> TextData:
    """Read and pack, split per class (seeded) unless a test file is given, make the loaders.

    Args:
        dataset: a registry text corpus (``sms-spam``, ``ag-news``, ``imdb``).
        data: a local CSV/TSV/JSONL file instead.
        test_data: a separate local test file (read with the training file's classes).
        root: the cache home of downloads.
        cache_dir: the cache home of packed texts (default ``root``).
        read: text/label columns and header of local files.
        features: a :class:`datasets.textfeatures.FeatureConfig` (default: bigrams, sublinear
            TF-IDF).
        batch_size: training batch size.
        test_fraction: share of each class held out when there is no test split.
        seed: split and shuffle seed.

    Raises:
        datasets.DataFormatError: bad files, a split that would be empty, a class missing from
            training or seen only in test.
    """
    from datasets.textfeatures import BagOfNgrams, FeatureConfig, collate_features
    from datasets.textsplits import stratified_split

    parts = _splits(dataset, data, test_data, root, cache_dir if cache_dir is not None else root,
                    read or TextReadOptions())
    names = _class_names(parts)
    if "all" in parts:
        full = parts["all"]
        rows = stratified_split(full.targets.numpy(), test=test_fraction, seed=seed,
                                classes=names)
        train, test = full.subset(rows["train"]), full.subset(rows["test"])
    else:
        train, test = parts["train"], parts["test"]
    bag = BagOfNgrams(features or FeatureConfig()).fit(train.pack, train.rows)
    train_x, test_x = bag.transform(train.pack, train.rows), bag.transform(test.pack, test.rows)
    sampler = distributed.shard_sampler(train_x, shuffle=True, seed=seed)
    train_loader = torch.utils.data.DataLoader(
        train_x, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
        collate_fn=collate_features, generator=torch.Generator().manual_seed(seed))
    test_loader = torch.utils.data.DataLoader(test_x, batch_size=1024, collate_fn=collate_features)
    if distributed.is_main_process():
        for part in {id(p.pack): p for p in parts.values()}.values():
            log.info("read %s", part.describe_source())
        log.info("data: %d train, %d test texts, %d classes, %d features", len(train_x),
                 len(test_x), len(names), bag.num_features)
    return TextData(train_loader, test_loader, bag.num_features, None, names, len(train_x),
                    len(test_x), BASELINES.get(dataset or ""))


def train_text(
    text: TextData, *, epochs: int = 5, lr: float = 0.2, embed_dim: int = 16,
    seed: int = 0, device: str | torch.device = "auto", progress: bool = False,
    model: BagOfWords | None = None,
) -> tuple[BagOfWords, dict[str, Any]]:
    """Train a sparse :class:`BagOfWords` with Adagrad; return it and its test evaluation.

    Raises:
        TrainingError: ``model`` has another number of classes than the data.
    """
    seed_everything(seed)
    model = model or BagOfWords(text.vocab_size, len(text.classes), embed_dim,
                                padding_idx=text.pad_id, sparse=True)
    if model.num_classes != len(text.classes):
        raise TrainingError(
            f"expected a model with {len(text.classes)} classes ({', '.join(text.classes)}) "
            f"but it has num_classes={model.num_classes}; build it with the data's classes"
        )
    optimizer = torch.optim.Adagrad(model.parameters(), lr=lr)
    config = FitConfig(optimizer="adagrad", lr=lr, epochs=epochs, seed=seed, device=str(device))
    fit(model, text.train_loader, config=config, optimizer=optimizer, progress=progress)
    return model, evaluate(model, text.test_loader, device=device, report=True)


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--text-column`` (repeatable), ``--label-column``, ``--header`` and ``--encoding``."""
    parser.add_argument("--text-column", action="append", default=None, metavar="NAME|INDEX",
                        help="text column by name or 0-based index; repeat to join several "
                        "(default: 'text', else every column but the label's)")
    parser.add_argument("--label-column", default=None, metavar="NAME|INDEX",
                        help="label column (default: one named label/class/..., else column 0)")
    parser.add_argument("--header", choices=["auto", "yes", "no"], default="auto",
                        help="whether line 1 is a header (default auto: see the README)")
    parser.add_argument("--encoding", default="utf-8", type=_encoding,
                        help="the text file's encoding, e.g. latin-1 (default utf-8)")


def _encoding(text: str) -> str:
    """argparse type of ``--encoding``: a text codec Python knows, else a usage error."""
    from datasets.textfiles import check_encoding

    try:
        return check_encoding(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).replace("encoding=", "")) from None


def read_options(args: argparse.Namespace) -> TextReadOptions:
    """Return the :class:`TextReadOptions` of ``--text-column/--label-column/--header/--encoding``."""
    def column(value: str | None) -> str | int | None:
        return int(value) if value is not None and value.lstrip("-").isdigit() else value

    cols = tuple(c for c in map(column, args.text_column) if c is not None) \
        if args.text_column else None
    headers: dict[str, bool | str] = {"auto": "auto", "yes": True, "no": False}
    header = headers[args.header]
    return TextReadOptions(cols, column(args.label_column), header, args.encoding)


def main(argv: list[str] | None = None) -> int:
    """Train and print accuracy, F1 and the confusion matrix; last line ``accuracy: 0.xxxx``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.examples.text_classification",
        description="Bag-of-n-grams (EmbeddingBag, TF-IDF weights) text classifier.",
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
    parser.add_argument("--embed-dim", type=positive_int, default=16,
                        help="embedding size (default 16)")
    add_run_arguments(parser, epochs=5, lr=0.2, batch_size=64)
    args = parser.parse_args(argv)
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    from datasets.errors import DatasetError
    from loaders.errors import LoaderError

    try:
        device = resolve_device(args.device, flag="--device")  # fail before the data
        text = load_text_data(args.dataset or ("sms-spam" if args.data is None else None),
                              data=args.data, test_data=args.test_data, root=args.root,
                              read=read_options(args), batch_size=args.batch_size, seed=args.seed)
        _, result = train_text(text, epochs=args.epochs, lr=args.lr, embed_dim=args.embed_dim,
                               seed=args.seed, device=device,
                               progress=not args.quiet and sys.stderr.isatty())
    except (DatasetError, LoaderError, TrainingError, ValueError, OSError) as err:
        print(describe_error(err, offline_hint="pass --data FILE (a local copy of the "
                             "SMS Spam Collection or any CSV/TSV/JSONL file)"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # no checkpoint here: a run takes seconds
        print(interrupted_line(None, "python -m training.examples.text_classification"),
              file=sys.stderr)
        return 130
    print(f"{text.train_size} train / {text.test_size} test texts, {text.vocab_size} features")
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
