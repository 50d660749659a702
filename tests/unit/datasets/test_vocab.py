"""Tokenizer and Vocab: ids, specials, frequency cut-offs, save/load round trips."""

from __future__ import annotations

import json

import pytest

from datasets.errors import DataFormatError
from datasets.vocab import Vocab, tokenize


def test_tokenize_lowercases_and_splits_punctuation() -> None:
    assert tokenize("Hello, World! Don't  panic.") == [
        "hello", ",", "world", "!", "don't", "panic", ".",
    ]


def test_tokenize_can_keep_case_and_rejects_non_str() -> None:
    assert tokenize("Big Cat", lowercase=False) == ["Big", "Cat"]
    with pytest.raises(TypeError, match="text should be a str"):
        tokenize(3)  # type: ignore[arg-type]


def test_vocab_build_orders_by_frequency_then_alphabet() -> None:
    vocab = Vocab.build(["b a c", "b a", "b"])
    assert vocab.itos == ["<pad>", "<unk>", "b", "a", "c"]
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    assert vocab.encode("B zebra a") == [2, 1, 3]
    assert vocab.decode([2, 3, 0]) == ["b", "a", "<pad>"]


def test_vocab_min_freq_and_max_size() -> None:
    texts = ["a a a b b c", "d"]
    assert Vocab.build(texts, min_freq=2).itos[2:] == ["a", "b"]
    assert Vocab.build(texts, max_size=3).itos == ["<pad>", "<unk>", "a"]
    with pytest.raises(ValueError, match="min_freq should be a positive int"):
        Vocab.build(texts, min_freq=0)
    with pytest.raises(ValueError, match="max_size should be at least 2"):
        Vocab.build(texts, max_size=1)


def test_vocab_accepts_pretokenized_and_custom_tokenizer() -> None:
    assert Vocab.build([["x", "y"], ["x"]]).itos[2:] == ["x", "y"]
    vocab = Vocab.build(["a-b a-b"], tokenizer=str.split)
    assert vocab.itos[2:] == ["a-b"]
    assert vocab.encode("a-b", tokenizer=str.split) == [2]


def test_vocab_save_load_and_state_dict_round_trip(tmp_path) -> None:
    vocab = Vocab.build(["the cat sat on the mat", "ça va"])
    path = vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(path)
    assert loaded == vocab and loaded.itos == vocab.itos
    assert Vocab.from_state_dict(json.loads(json.dumps(vocab.state_dict()))) == vocab


def test_vocab_load_rejects_bad_files(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataFormatError, match=r"bad.json: expected a JSON vocabulary"):
        Vocab.load(bad)
    bad.write_text(json.dumps({"itos": ["a"]}))
    with pytest.raises(DataFormatError, match="expected a Vocab state"):
        Vocab.load(bad)


def test_vocab_decode_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"token id should be in \[0, 3\), but got 7"):
        Vocab.build(["a"]).decode([7])
