"""The one text recipe (training.text): the CLI and the example run it alike; its defaults."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.cli import main as cli_main
from training.examples import text_classification
from training.text import TEXT_DEFAULTS, TextRecipe, load_text_data, train_text


def _example_accuracy(argv: list[str], capsys: pytest.CaptureFixture[str]) -> float:
    assert text_classification.main([*argv, "--device", "cpu", "-q"]) == 0
    return float(capsys.readouterr().out.strip().splitlines()[-1].split()[1])


def _cli_metrics(argv: list[str], out: Path) -> dict:
    assert cli_main(["fit", "--model", "bow", *argv, "--out", str(out), "--device", "cpu",
                     "-q"]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_fit_bow_and_the_example_give_the_same_result(
        spam_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = _example_accuracy(["--data", str(spam_file), "--seed", "3"], capsys)
    metrics = _cli_metrics(["--data-dir", str(spam_file), "--seed", "3"], tmp_path / "run")
    assert metrics["test_accuracy"] == example
    config = metrics["config"]
    assert (config["optimizer"], config["lr"], config["schedule"]) == (
        TEXT_DEFAULTS.optimizer, TEXT_DEFAULTS.lr, TEXT_DEFAULTS.schedule)
    assert (config["batch_size"], config["epochs"], config["patience"]) == (
        TEXT_DEFAULTS.batch_size, TEXT_DEFAULTS.epochs, TEXT_DEFAULTS.patience)
    assert all(v is not None for v in metrics["history"]["valid_loss"])  # early stopping on


def test_fit_takes_test_data_for_text_and_refuses_it_for_images(
        tmp_path: Path, idx_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.datasets.text_factory import write_ag_news_csv

    train = write_ag_news_csv(tmp_path / "train.csv", 60, seed=1)
    test = write_ag_news_csv(tmp_path / "test.csv", 10, seed=2)
    metrics = _cli_metrics(["--data-dir", str(train), "--test-data", str(test)], tmp_path / "r")
    assert metrics["test_count"] == 40 and metrics["test_accuracy"] >= 0.8
    example = _example_accuracy(["--data", str(train), "--test-data", str(test)], capsys)
    assert metrics["test_accuracy"] == example
    assert cli_main(["fit", "--data-dir", str(idx_folder), "--test-data", str(test), "--out",
                     str(tmp_path / "img"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --test-data {test} goes with a text file as --data-dir")


def test_the_library_does_not_import_the_examples() -> None:
    code = ("import sys, training.cli, training.text\n"
            "print(sorted(m for m in sys.modules if m.startswith('training.examples')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_recipe_without_patience_has_no_validation_split(spam_file: Path) -> None:
    recipe = dataclasses.replace(TEXT_DEFAULTS, patience=None, epochs=2)
    text = load_text_data(data=spam_file, recipe=recipe)
    assert text.valid_loader is None and text.valid_size == 0
    assert text.train_size == 160 and text.test_size == 40
    with pytest.raises(ValueError, match="patience needs a validation split, but got "
                       "valid_fraction=0.0"):
        TextRecipe(valid_fraction=0.0)


def test_defaults_within_half_a_point_of_scikit_learn_on_real_ag_news(shared_data: Path) -> None:
    svm = pytest.importorskip("sklearn.svm")
    from sklearn.feature_extraction.text import TfidfVectorizer

    from datasets.text import TextClassificationDataset
    from datasets.textsplits import stratified_split

    data = shared_data / "ag-news-half" / "ag_news_half.csv"
    if not data.is_file():
        pytest.skip(f"AG News half not available at {data}")
    texts_ds = TextClassificationDataset.from_file(data)
    texts, y = texts_ds.texts, texts_ds.targets.numpy()
    scores = []
    for seed in (0, 1):  # two splits: the defaults are not tuned to one
        parts = stratified_split(y, test=0.2, seed=seed)
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        clf = svm.LinearSVC().fit(vec.fit_transform([texts[i] for i in parts["train"]]),
                                  y[parts["train"]])
        theirs = clf.score(vec.transform([texts[i] for i in parts["test"]]), y[parts["test"]])
        text = load_text_data(data=data, seed=seed)
        assert text.test_size == len(parts["test"])
        _, result = train_text(text, seed=seed, device="cpu")
        scores.append((result["accuracy"], theirs))
    mean_ours = sum(s[0] for s in scores) / 2
    mean_theirs = sum(s[1] for s in scores) / 2
    assert mean_ours >= mean_theirs - 0.005, scores


def test_recipe_threads_trains_on_one_thread_and_restores_the_count() -> None:
    import torch

    from training.text import recipe_threads

    before = torch.get_num_threads()
    with recipe_threads(TextRecipe(threads=1)):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with recipe_threads(TextRecipe(threads=None)):
        assert torch.get_num_threads() == before


def test_classes_too_small_for_a_validation_split_train_without_early_stopping(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # 3 training texts per class: 10% of a class rounds to 0, so no validation text exists;
    # the recipe trains without early stopping and says so, instead of refusing the data.
    lines = [f"c{label}\tword{label} filler {i}" for label in range(6) for i in range(4)]
    data = tmp_path / "tiny.tsv"
    data.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="training.text"):
        assert cli_main(["fit", "--data-dir", str(data), "--model", "bow", "--epochs", "1",
                         "--out", str(tmp_path / "run"), "--device", "cpu", "-q"]) == 0
    assert "training without early stopping" in caplog.text


def test_an_empty_split_error_lists_at_most_twenty_classes() -> None:
    from datasets.errors import DataFormatError
    from datasets.textsplits import stratified_split

    with pytest.raises(DataFormatError, match=r"… 280 more:") as info:
        stratified_split(np.repeat(np.arange(300), 2), test=0.1)
    assert len(str(info.value)) < 600


def test_test_data_without_a_training_file_names_each_flag(tmp_path: Path) -> None:
    # review 19 item 8: "--data / --data-dir" was shown to CLI users, where fit has no --data
    with pytest.raises(ValueError, match=r"test_data= \(--test-data\) goes with a local training "
                       r"file as data= \(--data-dir in `training fit`, --data in the example\), "
                       r"but got dataset='sms-spam'; pass both files"):
        load_text_data("sms-spam", test_data=tmp_path / "test.csv")


def test_metrics_record_the_workers_used(spam_file: Path, idx_folder: Path, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    # review 19 item 6: "auto" was recorded, and bow ignored --num-workers without a word
    caplog.set_level(logging.INFO, logger="training.cli")
    assert cli_main(["fit", "--model", "bow", "--data-dir", str(spam_file), "--epochs", "1",
                     "--num-workers", "2", "--out", str(tmp_path / "t"), "--device", "cpu"]) == 0
    assert [r for r in caplog.records
            if r.getMessage().startswith("--num-workers 2 does not apply to --model bow")]
    config = json.loads((tmp_path / "t" / "metrics.json").read_text())["config"]
    assert (config["num_workers"], config["num_workers_asked"]) == (0, 2)
    assert cli_main(["fit", "--data-dir", str(idx_folder), "--epochs", "1", "--out",
                     str(tmp_path / "i"), "--device", "cpu", "-q"]) == 0  # auto on a pack
    config = json.loads((tmp_path / "i" / "metrics.json").read_text())["config"]
    assert (config["num_workers"], config["num_workers_asked"]) == (0, "auto")
