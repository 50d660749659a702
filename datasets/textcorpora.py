"""Fetch and pack a catalog text corpus, per split: :func:`open_text_corpus`.

The catalog (:mod:`datasets.catalog`) is the one table that names the corpora; each text row's
:class:`~datasets.catalog.TextFiles` says which files of the fetched dataset hold which split
and how to read them: AG News is ``train.csv``/``test.csv`` (label 1..4, title + description,
classes named World, Sports, Business, Sci/Tech), the SMS Spam Collection one headerless
``label<TAB>text`` file (no test split: carve one with
:func:`datasets.textsplits.stratified_split`), IMDB the ``aclImdb_v1.tar.gz`` archive read
without extracting (:class:`~datasets.textfolder.TextFolderDataset`). Every split is packed
once (:mod:`datasets.textpack`); the test split is read with the training split's classes,
so a class seen only in test is an error naming it.
"""

from __future__ import annotations

import logging
import os

from datasets.textfolder import TextFolderDataset
from datasets.textpack import PackedTextDataset
from datasets.vocab import WordTokenizer

log = logging.getLogger(__name__)

__all__ = ["open_text_corpus"]


def open_text_corpus(
    name: str, *, root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None, download: bool = True,
    tokenizer: WordTokenizer | None = None,
) -> dict[str, PackedTextDataset]:
    """Fetch (through :func:`loaders.fetch`) and pack a registry text corpus, per split.

    Args:
        name: a text row of the catalog (``datasets.catalog.names(kind="text")``).
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
    import loaders
    from datasets import catalog

    row = catalog.get(name)
    corpus = row.text
    if corpus is None:
        raise ValueError(f"name should be one of {catalog.names(kind='text')}, but got "
                         f"name={name!r}")
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
            names=row.classes, **corpus.read)
        encoder = out[split].label_encoder
    return out
