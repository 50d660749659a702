"""The text recipe: one bag-of-n-grams classifier, one set of defaults, for every entry point.

``python -m training fit --model bow`` and ``python -m training.examples.text_classification``
both run this module, so the same data give the same features, model and result:

1. read and pack the texts once (:mod:`datasets.textpack`); split each class 80/20 (seeded)
   unless a test file is given, then carve a validation split (10% of each class) out of
   training for early stopping;
2. features from the training rows only (:mod:`datasets.textfeatures`): words and hashed
   bigrams, sublinear TF-IDF weights, rows L2-normalised (scikit-learn's
   ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)``);
3. :class:`~training.models.LinearBagOfWords`, a logistic regression over the bag with dropout
   on the bag's features, trained by :func:`training.fit` with AdamW and a cosine schedule;
   :class:`~training.callbacks.EarlyStopping` watches the validation loss and the best epoch's
   weights are restored at the end.

:data:`TEXT_DEFAULTS` holds the defaults; the README ("How the text defaults were chosen")
has the runs they were chosen from.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from datasets.textfeatures import FeatureConfig
from training import distributed
from training.callbacks import EarlyStopping
from training.errors import TrainingError
from training.fit import FitConfig, evaluate, fit
from training.models import LinearBagOfWords

log = logging.getLogger(__name__)

__all__ = [
    "BASELINES",
    "TEXT_DEFAULTS",
    "TextData",
    "TextReadOptions",
    "TextRecipe",
    "add_text_arguments",
    "build_text_model",
    "load_text_data",
    "read_options",
    "recipe_threads",
    "text_fit_config",
    "train_text",
]

#: What the bag-of-n-grams model should reach on each corpus (see README, Text).
BASELINES = {
    "sms-spam": "scikit-learn TF-IDF + LinearSVC 98.2% on a stratified 80/20 split",
    "ag-news": "fastText with bigrams 92.5% on the 7,600 test articles (target >= 92.0%)",
    "imdb": "NBSVM with bigrams 91.2% on the 25,000 test reviews (Wang & Manning, 2012)",
}


@dataclass(frozen=True)
class TextRecipe:
    """The settings of the text recipe; :data:`TEXT_DEFAULTS` is what runs unflagged.

    Args:
        features: n-grams, hashing size, ``min_freq`` and weighting of the bag.
        optimizer: a :func:`training.optim.make_optimizer` name.
        lr: learning rate (the start of the cosine schedule).
        weight_decay: the optimizer's weight decay (AdamW: decoupled).
        dropout: probability of dropping each feature of a training text.
        schedule: ``"constant"``, ``"cosine"`` or ``"onecycle"`` (per step).
        epochs: the most epochs (early stopping usually ends sooner).
        batch_size: training batch size.
        patience: epochs in a row without a lower validation loss that stop it; None: no early
            stopping and no validation split.
        valid_fraction: share of each training class held out for early stopping.
        test_fraction: share of each class held out for the test when there is no test file.
        threads: torch's intra-op threads while training (:func:`recipe_threads`); None keeps
            torch's. A step is a few small ops on ~64 short texts: a second thread only adds
            synchronisation, and on a busy machine it made training ~8x slower (measured).

    Example:
        >>> TEXT_DEFAULTS.optimizer, TEXT_DEFAULTS.features.ngrams
        ('adamw', 2)
    """

    features: FeatureConfig = field(default_factory=FeatureConfig)
    optimizer: str = "adamw"
    lr: float = 0.02
    weight_decay: float = 0.0
    dropout: float = 0.5
    schedule: str = "cosine"
    epochs: int = 20
    batch_size: int = 64
    patience: int | None = 3
    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    threads: int | None = 1

    def __post_init__(self) -> None:
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} should be a float in [0, 1), but got {name}={value!r}")
        if self.patience is not None and self.valid_fraction == 0.0:
            raise ValueError("patience needs a validation split, but got valid_fraction=0.0; "
                             "pass patience=None or a valid_fraction > 0")

    def describe(self) -> str:
        """Return the features, dropout and validation split in one line (``fit --help``)."""
        f = self.features
        grams = f"1-{f.ngrams}-grams" + (f" ({f.buckets:,} hashed bigram buckets)"
                                         if f.ngrams == 2 else "")
        valid = (f"{self.valid_fraction:.0%} of train held out for early stopping, best epoch "
                 "restored" if self.patience is not None else "no early stopping")
        return (f"{grams}, min_freq {f.min_freq}, {f.weighting} weights; feature dropout "
                f"{self.dropout:g}; {valid}")


TEXT_DEFAULTS = TextRecipe()


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
    """Loaders of the split text data, the feature count and the class names.

    ``valid_loader`` is None when the recipe has no early stopping.
    """

    train_loader: Any
    test_loader: Any
    vocab_size: int
    pad_id: int | None
    classes: list[str]
    train_size: int
    test_size: int
    baseline: str | None = None
    valid_loader: Any = None
    valid_size: int = 0


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
    if test_data is not None:
        raise ValueError("test_data= (--test-data) goes with a local training file as data= "
                         "(--data-dir in `training fit`, --data in the example), but got "
                         f"dataset={dataset!r}; pass both files")
    corpora = catalog.names(kind="text")
    if dataset not in corpora:
        raise ValueError(f"dataset should be one of {corpora} (or pass data=FILE), "
                         f"but got dataset={dataset!r}")
    with distributed.main_process_first():
        return open_text_corpus(dataset, root=root, cache_dir=cache_dir)


def _carve(parts: dict[str, Any], names: list[str], recipe: TextRecipe,
           seed: int) -> tuple[Any, Any, Any]:
    """Return (train, valid or None, test): per class, seeded, from what is not published."""
    from datasets.textsplits import stratified_split

    if "all" in parts:
        full = parts["all"]
        rows = stratified_split(full.targets.numpy(), test=recipe.test_fraction, seed=seed,
                                classes=names)
        train, test = full.subset(rows["train"]), full.subset(rows["test"])
    else:
        train, test = parts["train"], parts["test"]
    if recipe.patience is None:
        return train, None, test
    counts = np.bincount(train.targets.numpy())
    if not any(round(int(n) * recipe.valid_fraction) for n in counts):  # as split_indices rounds
        log.warning("training without early stopping: %d training texts in %d classes are too "
                    "few to hold out %.0f%% of a class for validation", len(train.rows),
                    int((counts > 0).sum()), 100 * recipe.valid_fraction)
        return train, None, test
    rows = stratified_split(train.targets.numpy(), test=recipe.valid_fraction, seed=seed,
                            classes=names)
    return train.subset(rows["train"]), train.subset(rows["test"]), test


def load_text_data(
    dataset: str | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    test_data: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    read: TextReadOptions | None = None,
    recipe: TextRecipe = TEXT_DEFAULTS,
    seed: int = 0,
) -> TextData:
    """Read and pack, split per class (seeded), fit the features on train, make the loaders.

    Args:
        dataset: a registry text corpus (``sms-spam``, ``ag-news``, ``imdb``).
        data: a local CSV/TSV/JSONL file instead.
        test_data: a separate local test file (read with the training file's classes).
        root: the cache home of downloads.
        cache_dir: the cache home of packed texts (default ``root``).
        read: text/label columns and header of local files.
        recipe: features, batch size and split fractions (default :data:`TEXT_DEFAULTS`).
        seed: split and shuffle seed.

    Raises:
        ValueError: an unknown ``dataset``, or ``test_data`` without ``data``.
        datasets.DataFormatError: bad files, a split that would be empty, a class missing from
            training or seen only in test.
    """
    from datasets.textfeatures import BagOfNgrams, collate_features

    parts = _splits(dataset, data, test_data, root, cache_dir if cache_dir is not None else root,
                    read or TextReadOptions())
    names = [str(n) for n in next(iter(parts.values())).pack.names]
    train, valid, test = _carve(parts, names, recipe, seed)
    bag = BagOfNgrams(recipe.features).fit(train.pack, train.rows)
    train_x, test_x = bag.transform(train.pack, train.rows), bag.transform(test.pack, test.rows)
    sampler = distributed.shard_sampler(train_x, shuffle=True, seed=seed)
    loader = torch.utils.data.DataLoader
    train_loader = loader(train_x, batch_size=recipe.batch_size, shuffle=sampler is None,
                          sampler=sampler, collate_fn=collate_features,
                          generator=torch.Generator().manual_seed(seed))
    text = TextData(train_loader, loader(test_x, batch_size=1024, collate_fn=collate_features),
                    bag.num_features, None, names, len(train_x), len(test_x),
                    BASELINES.get(dataset or ""))
    if valid is not None:
        valid_x = bag.transform(valid.pack, valid.rows)
        text.valid_loader = loader(valid_x, batch_size=1024, collate_fn=collate_features)
        text.valid_size = len(valid_x)
    if distributed.is_main_process():
        for part in {id(p.pack): p for p in parts.values()}.values():
            log.info("read %s", part.describe_source())
        log.info("data: %d train, %d valid, %d test texts, %d classes, %d features",
                 text.train_size, text.valid_size, text.test_size, len(names), bag.num_features)
    return text


def build_text_model(text: TextData, recipe: TextRecipe = TEXT_DEFAULTS) -> LinearBagOfWords:
    """Return the recipe's model for ``text``'s features and classes."""
    return LinearBagOfWords(text.vocab_size, len(text.classes), dropout=recipe.dropout)


def text_fit_config(recipe: TextRecipe = TEXT_DEFAULTS, *, seed: int = 0,
                    device: str | torch.device = "auto") -> FitConfig:
    """Return the :class:`FitConfig` of the recipe (optimizer, lr, schedule, epochs...)."""
    return FitConfig(optimizer=recipe.optimizer, lr=recipe.lr, epochs=recipe.epochs,
                     weight_decay=recipe.weight_decay, schedule=recipe.schedule, seed=seed,
                     device=str(device))


@contextlib.contextmanager
def recipe_threads(recipe: TextRecipe = TEXT_DEFAULTS) -> Iterator[None]:
    """Run the block with ``recipe.threads`` torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    if recipe.threads is not None:
        torch.set_num_threads(recipe.threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_text(
    text: TextData, *, recipe: TextRecipe = TEXT_DEFAULTS, seed: int = 0,
    device: str | torch.device = "auto", progress: bool = False, model: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Train the recipe's model (or ``model``); return it and its test evaluation.

    Args:
        text: what :func:`load_text_data` returned (with the same ``recipe``).
        recipe: optimizer, schedule, epochs, dropout and early stopping.
        seed: seed of the weights, the shuffles and the dropout.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: a tqdm bar per epoch on stderr.
        model: another model over the same batches, instead of :func:`build_text_model`'s.

    Raises:
        TrainingError: ``model`` has another number of classes than the data.
    """
    model = model if model is not None else build_text_model(text, recipe)
    if getattr(model, "num_classes", len(text.classes)) != len(text.classes):
        raise TrainingError(
            f"expected a model with {len(text.classes)} classes ({', '.join(text.classes)}) "
            f"but it has num_classes={model.num_classes}; build it with the data's classes"
        )
    callbacks = ([EarlyStopping(patience=recipe.patience)]
                 if text.valid_loader is not None and recipe.patience is not None else [])
    with recipe_threads(recipe):
        fit(model, text.train_loader, text.valid_loader if callbacks else None,
            text_fit_config(recipe, seed=seed, device=device), callbacks=callbacks,
            progress=progress)
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
