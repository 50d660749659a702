"""Packed texts, bag-of-n-grams features against scikit-learn, splits, IMDB's folder layout."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.errors import DataFormatError, PackedCacheError
from datasets.textfeatures import BagOfNgrams, FeatureConfig, collate_features
from datasets.textfolder import TextFolderDataset, read_text_folder
from datasets.textpack import PackedText, PackedTextDataset, write_packed_text
from datasets.textsplits import stratified_split
from datasets.vocab import WordTokenizer
from tests.unit.datasets.text_factory import AG_CLASSES, write_aclimdb_tar, write_ag_news_csv

DOCS = ["the cat sat on the mat", "the dog sat", "a cat and a dog and a cat", "dogs bark"]


def test_pack_layout_round_trip(tmp_path: Path) -> None:
    written = write_packed_text(tmp_path / "p", DOCS, [0, 1, 0, 1], classes=["x", "y"],
                             names=["X", "Y"])
    again = PackedText(tmp_path / "p")
    assert written.tokens == again.tokens
    assert again.tokens[:3] == ["the", "cat", "sat"] and len(again) == 4
    assert [again.tokens[i] for i in again.ids_of(1)] == ["the", "dog", "sat"]
    assert again.lengths().tolist() == [6, 3, 8, 2] and again.names == ["X", "Y"]
    assert again.ids.dtype == np.dtype("<i4") and isinstance(again.ids, np.memmap)
    (tmp_path / "p" / "ids.i32").write_bytes(b"\0" * 8)
    with pytest.raises(PackedCacheError, match=r"ids.i32 has 8 bytes, expected 76; delete"):
        PackedText(tmp_path / "p")


def test_from_file_packs_once_and_reuses_the_cache(tmp_path: Path, caplog) -> None:
    path = write_ag_news_csv(tmp_path / "train.csv", 10)
    with caplog.at_level(logging.INFO, logger="datasets.textpack"):
        first = PackedTextDataset.from_file(path, cache_dir=tmp_path / "cache", names=AG_CLASSES)
        second = PackedTextDataset.from_file(path, cache_dir=tmp_path / "cache", names=AG_CLASSES)
    assert caplog.text.count("packed 40 texts") == 1  # the second open tokenized nothing
    assert first.pack.path == second.pack.path and first.classes == [1, 2, 3, 4]
    assert first.pack.names == list(AG_CLASSES) and len(second) == 40
    assert "train.csv (header ['label', 'title', 'description'])" in second.describe_source()
    assert not list((tmp_path / "cache" / "packed").glob(".*tmp*"))
    title_only = PackedTextDataset.from_file(path, cache_dir=tmp_path / "cache",
                                             text_columns=["title"])
    assert title_only.pack.path != first.pack.path  # other options, other cache
    assert sum(title_only.lengths()) < sum(first.lengths())


def test_failed_build_leaves_no_cache(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('label,text\npos,"never closed\n')
    with pytest.raises(DataFormatError, match="never closed"):
        PackedTextDataset.from_file(bad, cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache" / "packed").iterdir()
            if not p.name.endswith(".lock")] == []


@pytest.mark.parametrize("weighting,sublinear", [("tfidf", False), ("sublinear-tfidf", True)])
def test_tfidf_weights_match_scikit_learn(tmp_path: Path, weighting: str, sublinear: bool) -> None:
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    tok = WordTokenizer()
    pack = write_packed_text(tmp_path / "p", DOCS, [0, 1, 0, 1], classes=[0, 1], tokenizer=tok)
    bag = BagOfNgrams(FeatureConfig(ngrams=1, weighting=weighting)).fit(pack, [0, 1, 2, 3])
    feats = bag.transform(pack, [0, 1, 2, 3])
    vec = sklearn_text.TfidfVectorizer(tokenizer=tok, lowercase=False, token_pattern=None,
                                       sublinear_tf=sublinear)
    expected = vec.fit_transform(DOCS).toarray()
    ours = np.zeros((4, bag.num_features))
    batch = feats.__getitems__([0, 1, 2, 3])
    doc = np.repeat(np.arange(4), np.diff(np.append(batch["offsets"].numpy(), len(batch["flat_input_ids"]))))
    np.add.at(ours, (doc, batch["flat_input_ids"].numpy()), batch["per_sample_weights"].numpy())
    token_of_feature = {int(f): pack.tokens[t] for t, f in enumerate(bag.remap) if f >= 0}
    columns = [vec.vocabulary_[token_of_feature[f]] for f in range(bag.num_features)]
    np.testing.assert_allclose(ours, expected[:, columns], rtol=1e-5, atol=1e-6)


def test_vocabulary_limits_and_unknown_words(tmp_path: Path) -> None:
    pack = write_packed_text(tmp_path / "p", DOCS, [0, 1, 0, 1], classes=[0, 1])
    bag = BagOfNgrams(FeatureConfig(ngrams=1, min_freq=2, weighting="count")).fit(pack, [0, 1, 2])
    kept = sorted(pack.tokens[t] for t in np.flatnonzero(bag.remap >= 0))
    assert kept == ["a", "and", "cat", "dog", "sat", "the"]
    assert BagOfNgrams(FeatureConfig(ngrams=1, max_size=2)).fit(pack, [0, 1, 2]).num_features == 2
    unseen = bag.transform(pack, [3])  # "dogs bark": never in training
    assert len(unseen) == 1 and unseen[0]["input_ids"].numel() == 0
    with pytest.raises(ValueError, match="weighting should be one of"):
        FeatureConfig(weighting="bm25")


def test_hashed_bigrams_stay_inside_each_text_and_are_deterministic(tmp_path: Path) -> None:
    pack = write_packed_text(tmp_path / "p", ["a b", "b a", "a b"], [0, 1, 0], classes=[0, 1])
    bag = BagOfNgrams(FeatureConfig(ngrams=2, buckets=1024, weighting="count")).fit(pack, [0, 1, 2])
    rows = [bag.transform(pack, [i])[0]["input_ids"].tolist() for i in range(3)]
    assert len(rows[0]) == 3 and rows[0] == rows[2]  # a, b, bucket(a b): no pair across texts
    assert rows[0][2] != rows[1][2] and min(rows[0][2], rows[1][2]) >= bag.unigrams
    again = BagOfNgrams(FeatureConfig(ngrams=2, buckets=1024, weighting="count")).fit(pack, [0, 1, 2])
    assert again.transform(pack, [0])[0]["input_ids"].tolist() == rows[0]


def test_feature_batches_feed_bag_of_words(tmp_path: Path) -> None:
    from training.models import BagOfWords

    pack = write_packed_text(tmp_path / "p", DOCS, [0, 1, 0, 1], classes=[0, 1])
    feats = BagOfNgrams(FeatureConfig(buckets=64)).fit(pack, [0, 1, 2, 3]).transform(pack, [0, 1, 2, 3])
    loader = torch.utils.data.DataLoader(feats, batch_size=3, collate_fn=collate_features)
    batch = next(iter(loader))
    assert batch["labels"].tolist() == [0, 1, 0] and batch["offsets"].tolist()[0] == 0
    model = BagOfWords(feats.feats.max().item() + 1, 2, 4, padding_idx=None, sparse=True)
    out = model(batch)
    by_hand = torch.stack([(model.embedding.weight[item["input_ids"]]
                            * item["weights"].unsqueeze(1)).sum(0) for item in
                           (feats[0], feats[1], feats[2])])
    torch.testing.assert_close(out, model.linear(by_hand))
    out.sum().backward()
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.is_sparse


def test_stratified_split_refuses_empty_splits_and_missing_classes() -> None:
    parts = stratified_split(np.repeat([0, 1], 10), test=0.2, seed=1)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [16, 0, 4]
    with pytest.raises(DataFormatError, match=r"a 0.2 test split of 4 rows is empty \(per "
                       r"class: ham 2, spam 2: .*add data, raise the fraction"):
        stratified_split([0, 0, 1, 1], test=0.2, classes=["ham", "spam"])
    with pytest.raises(DataFormatError, match=r"classes \['spam'\] have no training row .*"
                       r"\(per class: ham 5, spam 1\)"):
        stratified_split([0] * 5 + [1], test=0.6, classes=["ham", "spam"])
    with pytest.raises(ValueError, match="test and valid should be fractions"):
        stratified_split([0, 1], test=1.0)


def test_text_folder_reads_aclimdb_straight_from_the_archive(tmp_path: Path) -> None:
    archive = write_aclimdb_tar(tmp_path / "aclImdb_v1.tar.gz", 6)
    texts, labels = read_text_folder(archive, split="test")
    assert len(texts) == 12 and sorted(set(labels)) == ["neg", "pos"]  # unsup/, urls ignored
    assert all(t.startswith("This film.") for t in texts)
    train = TextFolderDataset(archive, split="train", cache_dir=tmp_path / "cache")
    test = TextFolderDataset(archive, split="test", cache_dir=tmp_path / "cache",
                             classes=train.classes)
    assert train.classes == ["neg", "pos"] and len(train) == len(test) == 12
    assert train.targets.tolist().count(1) == 6 and not (tmp_path / "aclImdb").exists()
    with pytest.raises(DataFormatError, match="expected valid/CLASS/.txt files|found none"):
        read_text_folder(archive, split="valid")


def test_text_folder_from_a_folder_and_bad_archives(tmp_path: Path) -> None:
    for cls, text in (("pos", "good"), ("neg", "bad")):
        (tmp_path / "data" / "train" / cls).mkdir(parents=True)
        (tmp_path / "data" / "train" / cls / "0_1.txt").write_text(text)
    assert read_text_folder(tmp_path / "data", split="train") == (["bad", "good"], ["neg", "pos"])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(write_aclimdb_tar(tmp_path / "full.tar.gz", 4).read_bytes()[:600])
    with pytest.raises(DataFormatError, match=r"cannot read .*cut.tar.gz"):
        TextFolderDataset(cut, cache_dir=tmp_path / "cache")


def test_features_of_another_pack_go_through_the_token_strings(tmp_path: Path) -> None:
    train = write_packed_text(tmp_path / "a", ["a b", "b a"], [0, 1], classes=[0, 1])
    test = write_packed_text(tmp_path / "b", ["zebra b a", "a b"], [1, 0], classes=[0, 1])
    bag = BagOfNgrams(FeatureConfig(buckets=256, weighting="count")).fit(train, [0, 1])
    seen = bag.transform(train, [1])[0]["input_ids"].tolist()  # "b a": b, a, bucket(b a)
    assert bag.transform(test, [0])[0]["input_ids"].tolist() == seen  # zebra and its pair dropped
    assert bag.transform(test, [1])[0]["input_ids"].tolist() == bag.transform(train, [0])[0][
        "input_ids"].tolist()


def test_num_features_counts_only_buckets_that_training_reached(tmp_path: Path) -> None:
    pack = write_packed_text(tmp_path / "p", ["a b c", "b c d", "x y"], [0, 1, 0], classes=[0, 1])
    bag = BagOfNgrams(FeatureConfig(ngrams=2, buckets=2**20)).fit(pack, [0, 1])
    assert bag.unigrams == 4 and bag.num_features == 4 + 3  # a b, b c, c d: not 2**20 buckets
    feats = bag.transform(pack, [0, 1, 2])
    assert sorted(set(feats.feats.tolist())) == list(range(bag.num_features))
    assert feats[2]["input_ids"].numel() == 0  # x, y and "x y" never seen in training
