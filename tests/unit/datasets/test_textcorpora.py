"""The text corpora rows: AG News (title + description, named classes) and IMDB from the archive."""

from __future__ import annotations

from pathlib import Path

import pytest

import loaders
from datasets import catalog
from datasets.errors import DatasetNotFoundError
from datasets.textcorpora import open_text_corpus
from tests.unit.datasets.text_factory import AG_CLASSES, write_aclimdb_tar, write_ag_news_csv


def test_ag_news_rows_read_title_and_description_with_names(tmp_path: Path) -> None:
    folder = loaders.dataset_dir("ag-news", tmp_path)
    folder.mkdir(parents=True)
    write_ag_news_csv(folder / "train.csv", 30, header=False, seed=1)  # as the registry's files
    write_ag_news_csv(folder / "test.csv", 5, header=True, bom=True, seed=2)  # as Excel saves it
    splits = open_text_corpus("ag-news", root=tmp_path, download=False)
    assert sorted(splits) == ["test", "train"]
    train, test = splits["train"], splits["test"]
    assert len(train) == 120 and len(test) == 20
    assert train.classes == test.classes == [1, 2, 3, 4]
    assert train.pack.names == list(AG_CLASSES)
    assert catalog.get("ag-news").classes == AG_CLASSES  # the names come from the catalog row
    assert "|" in train.pack.tokens  # the separator between title and description


def test_imdb_rows_come_from_the_archive(tmp_path: Path) -> None:
    folder = loaders.dataset_dir("imdb", tmp_path)
    folder.mkdir(parents=True)
    write_aclimdb_tar(folder / "aclImdb_v1.tar.gz", 5)
    splits = open_text_corpus("imdb", root=tmp_path, download=False)
    assert [len(splits[s]) for s in ("train", "test")] == [10, 10]
    assert splits["test"].classes == ["neg", "pos"]


def test_missing_corpus_files_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="text file not found"):
        open_text_corpus("sms-spam", root=tmp_path, download=False)
    with pytest.raises(ValueError, match="name should be one of"):
        open_text_corpus("mnist", root=tmp_path, download=False)


def test_the_catalog_is_the_one_table_of_corpora(monkeypatch, tmp_path: Path) -> None:
    import dataclasses

    import datasets.textcorpora as textcorpora

    assert not any(isinstance(v, dict) for k, v in vars(textcorpora).items() if k.isupper())
    row = catalog.get("sms-spam")
    # a changed catalog row changes what open_text_corpus reads: no second table
    changed = dataclasses.replace(row, text=dataclasses.replace(row.text, files={"all": "sms.tsv"}))
    monkeypatch.setitem(catalog.CATALOG, "sms-spam", changed)
    folder = loaders.dataset_dir("sms-spam", tmp_path)
    folder.mkdir(parents=True)
    (folder / "sms.tsv").write_text("ham\thello there\nspam\tWIN cash now\nham\tsee you\n")
    packed = open_text_corpus("sms-spam", root=tmp_path, download=False)["all"]
    assert len(packed) == 3 and packed.pack.names == ["ham", "spam"]
    with pytest.raises(ValueError, match="text should be given for text rows only"):
        dataclasses.replace(row, text=None)
