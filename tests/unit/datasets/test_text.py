"""TextClassificationDataset: the classic CustomDataset example, files, label encoding."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
from torch.utils.data import DataLoader

from datasets.errors import DataFormatError, DatasetNotFoundError
from datasets.text import LabelEncoder, TextClassificationDataset
from datasets.textfiles import read_records
from datasets.vocab import Vocab

TEXTS = [
    "Hello, how are you?",
    "I am fine, thank you.",
    "What about you?",
    "I am doing great!",
    "That's wonderful to hear.",
]
LABELS = [1, 0, 1, 0, 1]


def test_classic_custom_dataset_yields_dict_batches() -> None:
    ds = TextClassificationDataset(TEXTS, LABELS)
    assert len(ds) == 5 and ds[2] == {"text": "What about you?", "label": 1}
    loader = DataLoader(ds, batch_size=2, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert [len(b["text"]) for b in batches] == [2, 2, 1]
    seen = []
    for batch in batches:
        assert isinstance(batch["text"], list) and isinstance(batch["text"][0], str)
        assert batch["label"].dtype == torch.int64
        for text, label in zip(batch["text"], batch["label"].tolist(), strict=True):
            assert LABELS[TEXTS.index(text)] == label
            seen.append(text)
    assert sorted(seen) == sorted(TEXTS)


def test_string_labels_are_encoded_sorted() -> None:
    ds = TextClassificationDataset(["a", "b", "c"], ["spam", "ham", "spam"])
    assert ds.classes == ["ham", "spam"]
    assert ds.labels == [1, 0, 1] and ds.targets.tolist() == [1, 0, 1]
    test = TextClassificationDataset(["d"], ["ham"], label_encoder=ds.label_encoder)
    assert test.labels == [0]
    with pytest.raises(ValueError, match="label should be one of"):
        TextClassificationDataset(["d"], ["eggs"], label_encoder=ds.label_encoder)


def test_with_vocab_yields_token_ids_and_lengths() -> None:
    ds = TextClassificationDataset(TEXTS, LABELS)
    vocab = ds.build_vocab()
    ds.vocab = vocab
    item = ds[2]
    assert item["input_ids"].dtype == torch.int64
    assert vocab.decode(item["input_ids"].tolist()) == ["what", "about", "you", "?"]
    assert ds.lengths()[2] == 4 and ds[-1]["label"] == 1
    with pytest.raises(IndexError):
        ds[5]


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="2 texts and 1 labels"):
        TextClassificationDataset(["a", "b"], [0])


def test_label_encoder_save_load(tmp_path) -> None:
    enc = LabelEncoder().fit(["b", "a", "b"])
    loaded = LabelEncoder.load(enc.save(tmp_path / "labels.json"))
    assert loaded.classes == ["a", "b"] and loaded.decode([1, 0]) == ["b", "a"]
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataFormatError, match="bad.json: expected a saved LabelEncoder"):
        LabelEncoder.load(tmp_path / "bad.json")


def test_headerless_tsv_like_sms_spam(tmp_path) -> None:
    path = tmp_path / "SMSSpamCollection"
    path.write_text('ham\tGo until "jurong" point\nspam\tFree entry!! "win"\n\nham\tOk lar\n')
    ds = TextClassificationDataset.from_file(path)
    assert ds.texts == ['Go until "jurong" point', 'Free entry!! "win"', "Ok lar"]
    assert ds.classes == ["ham", "spam"] and ds.labels == [0, 1, 0]


def test_csv_with_header_and_named_columns(tmp_path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text('id,review,sentiment\n1,"good, really",pos\n2,bad,neg\n')
    ds = TextClassificationDataset.from_file(path, text_columns="review", label_column="sentiment")
    assert ds.texts == ["good, really", "bad"] and ds.classes == ["neg", "pos"]
    records = read_records(path, text_columns=1, label_column=2, header=True)
    assert records.texts == ["good, really", "bad"] and records.labels == ["pos", "neg"]
    assert records.header == ["id", "review", "sentiment"] and records.lines == [2, 3]


def test_jsonl(tmp_path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"text": "hi", "label": 1}) + "\n"
                    + json.dumps({"text": "yo", "label": 0}) + "\n")
    ds = TextClassificationDataset.from_file(path, vocab=Vocab.build(["hi"]))
    assert ds.labels == [1, 0] and ds[0]["input_ids"].tolist() == [2]
    assert ds.classes == [0, 1]


def test_bad_files_name_file_line_and_expectation(tmp_path) -> None:
    tsv = tmp_path / "bad.tsv"
    tsv.write_text("ham\thello\nspamonly\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:2: expected 2 TSV columns as on line 1 but got 1"):
        TextClassificationDataset.from_file(tsv)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "a", "label": 0}\n{"text": "b"\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: expected one JSON object per line"):
        TextClassificationDataset.from_file(jsonl)
    jsonl.write_text('{"body": "a", "label": 0}\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:1: expected an object with keys \['text', 'label'\] but got \['body'"):
        TextClassificationDataset.from_file(jsonl)
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("body,label\nx,1\n")
    with pytest.raises(DataFormatError, match=r"bad.csv:1: no column 'text' among the header's \['body', 'label'\]"):
        TextClassificationDataset.from_file(csv_path, text_columns="text")
    with pytest.raises(DataFormatError, match=r"no column 'txt' among the header's"):
        TextClassificationDataset.from_file(csv_path, text_columns="txt", header=True)
    with pytest.raises(DatasetNotFoundError, match="text file not found"):
        TextClassificationDataset.from_file(tmp_path / "missing.csv")
    with pytest.raises(DatasetNotFoundError, match="but it is a folder; pass the CSV/TSV/JSONL"):
        TextClassificationDataset.from_file(tmp_path)


def test_binary_or_wrongly_encoded_file_is_a_data_format_error(tmp_path) -> None:
    archive = tmp_path / "letters.tar.gz"
    archive.write_bytes(gzip.compress(b"not text at all"))
    with pytest.raises(DataFormatError, match=r"letters.tar.gz:1: expected utf-8 text but "
                       r"byte 0x8b is not utf-8.*encoding="):
        TextClassificationDataset.from_file(archive)
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("ham\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match="pass the file's encoding= / --encoding "):
        TextClassificationDataset.from_file(latin)
    assert TextClassificationDataset.from_file(latin, encoding="latin-1").texts == ["caf\xe9"]


def test_real_sms_spam(shared_data) -> None:
    ds = TextClassificationDataset.from_file(shared_data / "sms-spam" / "SMSSpamCollection")
    assert len(ds) == 5574 and ds.classes == ["ham", "spam"]
    assert sum(ds.labels) == 747
    ds.vocab = ds.build_vocab(min_freq=2)
    assert max(ds.lengths()) > 100 and ds[0]["input_ids"].numel() > 10


def test_custom_dataset_example_runs(capsys) -> None:
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[3] / "examples" / "custom_dataset.py"
    runpy.run_path(str(example), run_name="__main__")
    out = capsys.readouterr().out
    assert "{'text': [" in out and "'label': tensor([" in out
    assert "'input_ids': [[" in out and "'offsets': [0," in out


def test_integer_labels_of_any_kind_are_kept() -> None:
    import numpy as np

    assert TextClassificationDataset(["a", "b"], np.array([3, 7])).labels == [3, 7]
    assert TextClassificationDataset(["a", "b"], torch.tensor([2, 0])).labels == [2, 0]
    flags = TextClassificationDataset(["a", "b"], [True, False])
    assert flags.classes == [False, True] and flags.labels == [1, 0]
