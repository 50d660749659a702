"""The text corpora of the registry, with their reading defaults: :func:`open_text_corpus`.

Each :class:`TextCorpus` says which files of the fetched dataset hold which split and how to
read them: AG News is ``train.csv``/``test.csv`` (label 1..4, title + description, classes
named World, Sports, Business, Sci/Tech), the SMS Spam Collection one headerless
``label<TAB>text`` file (no test split: carve one with
:func:`datasets.textsplits.stratified_split`), IMDB the ``aclImdb_v1.tar.gz`` archive read
without extracting (:class:`~datasets.textfolder.TextFolderDataset`). Every split is packed
once (:mod:`datasets.textpack`); the test split is read with the training split's classes,
so a class seen only in test is an error naming it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from datasets.textfolder import TextFolderDataset
from datasets.textpack import PackedTextDataset
from datasets.vocab import WordTokenizer

log = logging.getLogger(__name__)

__all__ = ["TEXT_CORPORA", "TextCorpus", "open_text_corpus"]


@dataclass(frozen=True)
class TextCorpus:
    """How to read one registry text dataset.

    Attributes:
        name: the registry name.
        files: split name -> file in the dataset folder (``"all"`` when there is no split).
        read: options of :func:`datasets.textfiles.read_records` (text/label columns, header).
        names: display names of the sorted classes, or None for the label values.
        archive: the split files are folders inside this tar archive (IMDB).
    """

    name: str
    files: dict[str, str] = field(default_factory=dict)
    read: dict[str, Any] = field(default_factory=dict)
    names: tuple[str, ...] | None = None
    archive: str | None = None


TEXT_CORPORA: dict[str, TextCorpus] = {
    "ag-news": TextCorpus(
        "ag-news", files={"train": "train.csv", "test": "test.csv"},
        read={"label_column": 0, "text_columns": [1, 2], "header": "auto", "format": "csv"},
        names=("World", "Sports", "Business", "Sci/Tech"),
    ),
    "sms-spam": TextCorpus(
        "sms-spam", files={"all": "SMSSpamCollection"},
        read={"label_column": 0, "text_columns": [1], "header": False, "format": "tsv"},
    ),
    "imdb": TextCorpus("imdb", archive="aclImdb_v1.tar.gz", files={"train": "train", "test": "test"}),
}


def open_text_corpus(
    name: str, *, root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None, download: bool = True,
    tokenizer: WordTokenizer | None = None,
) -> dict[str, PackedTextDataset]:
    """Fetch (through :func:`loaders.fetch`) and pack a registry text corpus, per split.

    Args:
        name: one of :data:`TEXT_CORPORA`.
        root: the cache home of the downloads.
        cache_dir: the cache home of the packed caches (default: ``root``).
        download: fetch when not cached; else a missing dataset is an error.
        tokenizer: default ``WordTokenizer()``.

    Returns:
        ``{"train": ..., "test": ...}`` or ``{"all": ...}``.

    Raises:
        ValueError: ``name`` is not a text corpus.
        datasets.DatasetError: the files are missing or malformed.
        loaders.LoaderError: fetching failed.
    """
    if name not in TEXT_CORPORA:
        raise ValueError(f"name should be one of {sorted(TEXT_CORPORA)}, but got name={name!r}")
    import loaders

    corpus = TEXT_CORPORA[name]
    folder = loaders.fetch(name, root) if download else loaders.dataset_dir(name, root)
    cache = cache_dir if cache_dir is not None else root
    out: dict[str, PackedTextDataset] = {}
    if corpus.archive is not None:
        archive = folder / corpus.archive
        train = TextFolderDataset(archive, split="train", cache_dir=cache, tokenizer=tokenizer)
        out["train"] = train
        out["test"] = TextFolderDataset(archive, split="test", cache_dir=cache,
                                        tokenizer=tokenizer, classes=train.classes)
        return out
    encoder = None
    for split, filename in corpus.files.items():  # train first: test uses its classes
        out[split] = PackedTextDataset.from_file(
            folder / filename, cache_dir=cache, tokenizer=tokenizer, label_encoder=encoder,
            names=corpus.names, **corpus.read)
        encoder = out[split].label_encoder
    return out
