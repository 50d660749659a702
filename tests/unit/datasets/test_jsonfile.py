"""State files are written whole, into folders that may not exist yet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datasets import LabelEncoder, Vocab
from datasets.jsonfile import save_json


def test_save_json_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    path = save_json(tmp_path / "new" / "deeper" / "state.json", {"a": [1, 2]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_save_json_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = save_json(tmp_path / "state.json", {"version": 1})
    with pytest.raises(TypeError):
        save_json(path, {"version": object()})  # not JSON: fails mid-write
    assert json.loads(path.read_text(encoding="utf-8")) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_vocab_and_label_encoder_save_into_missing_folder(tmp_path: Path) -> None:
    vocab = Vocab.build(["a b b", "c"])
    encoder = LabelEncoder().fit(["ham", "spam"])
    assert Vocab.load(vocab.save(tmp_path / "runs" / "vocab.json")) == vocab
    loaded = LabelEncoder.load(encoder.save(tmp_path / "runs" / "labels.json"))
    assert loaded.classes == encoder.classes
