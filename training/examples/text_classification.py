"""Bag-of-words text classification: tokenizer + Vocab, BucketBatchSampler, pad_collate, BagOfWords.

Run ``python -m training.examples.text_classification --dataset sms-spam`` (fetched through
``loaders``) or ``--data FILE`` for a local CSV/TSV/JSONL file; the SMS Spam Collection as
distributed (``label<TAB>text``, no header) reads as is. The data are split per class, seeded:
80% train, 20% held-out test. The vocabulary comes from the training split only. Prints
accuracy, per-class F1 and the confusion matrix, and ends with ``accuracy: 0.xxxx``.
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
from training.fit import FitConfig, evaluate, fit, resolve_device, seed_everything
from training.metrics import classification_report, format_confusion_matrix
from training.models import BagOfWords

log = logging.getLogger(__name__)

__all__ = ["TextData", "load_text_data", "main", "train_text"]


@dataclass
class TextData:
    """Loaders of the split text data, the vocabulary size, pad id and class names."""

    train_loader: Any
    test_loader: Any
    vocab_size: int
    pad_id: int
    classes: list[str]
    train_size: int
    test_size: int


def _read(dataset: str | None, data: str | os.PathLike[str] | None, root: Any) -> Any:
    from datasets.text import TextClassificationDataset

    if data is not None:
        return TextClassificationDataset.from_file(data)
    if dataset == "sms-spam":
        import loaders

        with distributed.main_process_first():
            folder = loaders.fetch("sms-spam", root)
        return TextClassificationDataset.from_file(folder / "SMSSpamCollection")
    raise ValueError(
        f"dataset should be 'sms-spam' (or pass data=FILE), but got dataset={dataset!r}"
    )


def load_text_data(
    dataset: str | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    test_fraction: float = 0.2,
    min_freq: int = 1,
    seed: int = 0,
) -> TextData:
    """Read, split per class (seeded), build the vocabulary on train, and make the loaders.

    Training batches come from a ``BucketBatchSampler`` (similar lengths together, sharded by
    rank under torchrun) and ``pad_collate``.
    """
    from datasets import DataLoader
    from datasets.collate import pad_collate
    from datasets.notmnist import split_indices
    from datasets.samplers import BucketBatchSampler
    from datasets.text import TextClassificationDataset

    full = _read(dataset, data, root)
    parts = split_indices(full.targets.numpy(), valid=0.0, test=test_fraction, seed=seed)

    def subset(split: str) -> TextClassificationDataset:
        idx = parts[split].tolist()
        return TextClassificationDataset(
            [full.texts[i] for i in idx], [full.labels[i] for i in idx],
            tokenizer=full.tokenizer,
        )

    train, test = subset("train"), subset("test")
    vocab = train.build_vocab(min_freq=min_freq)
    train.vocab = vocab
    test.vocab = vocab
    sampler = BucketBatchSampler(train.lengths(), batch_size, shuffle=True, seed=seed,
                                 num_replicas=distributed.world_size(), rank=distributed.rank())
    classes = [str(c) for c in (full.classes or sorted(set(full.labels)))]
    return TextData(
        train_loader=DataLoader(train, batch_sampler=sampler, collate_fn=pad_collate),
        test_loader=DataLoader(test, batch_size=512, collate_fn=pad_collate),
        vocab_size=len(vocab),
        pad_id=vocab.pad_id,
        classes=classes,
        train_size=len(train),
        test_size=len(test),
    )


def train_text(
    text: TextData, *, epochs: int = 10, lr: float = 0.02, embed_dim: int = 64,
    optimizer: str = "adam", seed: int = 0, device: str | torch.device = "auto",
    progress: bool = False,
) -> tuple[BagOfWords, dict[str, Any]]:
    """Train a :class:`BagOfWords` model and return it with its test evaluation (with report)."""
    seed_everything(seed)
    model = BagOfWords(text.vocab_size, len(text.classes), embed_dim, padding_idx=text.pad_id)
    config = FitConfig(optimizer=optimizer, lr=lr, epochs=epochs, seed=seed, device=str(device))
    fit(model, text.train_loader, config=config, progress=progress)
    return model, evaluate(model, text.test_loader, device=device, report=True)


def main(argv: list[str] | None = None) -> int:
    """Train and print accuracy, F1 and the confusion matrix; last line ``accuracy: 0.xxxx``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.examples.text_classification",
        description="Bag-of-words (EmbeddingBag) text classifier on SMS Spam or a local file.",
        epilog="example: python -m training.examples.text_classification --dataset sms-spam",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=["sms-spam"], default=None,
                        help="registry dataset fetched through loaders (default sms-spam)")
    source.add_argument("--data", help="local CSV/TSV/JSONL file (label and text columns)")
    parser.add_argument("--embed-dim", type=positive_int, default=64,
                        help="embedding size (default 64)")
    add_run_arguments(parser, epochs=10, lr=0.02, batch_size=64)
    args = parser.parse_args(argv)
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    from datasets.errors import DatasetError
    from loaders.errors import LoaderError
    from training.errors import TrainingError

    try:
        device = resolve_device(args.device, flag="--device")  # fail before the data
        text = load_text_data(args.dataset or ("sms-spam" if args.data is None else None),
                              data=args.data, root=args.root, batch_size=args.batch_size,
                              seed=args.seed)
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
    cm = torch.tensor(result["confusion_matrix"])
    print(f"{text.train_size} train / {text.test_size} test texts, vocabulary {text.vocab_size}")
    print(classification_report(cm, text.classes))
    print("confusion matrix (rows true, columns predicted):")
    print(format_confusion_matrix(cm, text.classes))
    print(f"macro F1: {result['macro_f1']:.4f}")
    print(f"accuracy: {result['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
