"""The runnable examples: y = 2x + 1 against closed form, and text classification."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.examples import linear_regression, text_classification


def test_linear_regression_matches_closed_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert linear_regression.main([]) == 0
    result = linear_regression.train()
    assert abs(result.w - 2) < 0.003 and abs(result.b - 1) < 0.003  # what README says
    assert abs(result.w_closed_form - 2) < 1e-6 and abs(result.b_closed_form - 1) < 1e-6
    assert result.first_loss > 100 and result.last_loss < 1e-3
    out = capsys.readouterr().out
    assert "closed form: w = 2.00000, b = 1.00000" in out and "ok: within 0.003 of" in out


def test_linear_regression_from_the_seed_tutorials_random_start(
        capsys: pytest.CaptureFixture[str]) -> None:
    result = linear_regression.train(init="uniform", seed=642)
    assert abs(result.first_loss - 250.6) < 1.0  # where the seed tutorial started
    assert result.last_loss < 1e-4
    assert abs(result.w - 2) < 0.003 and abs(result.b - 1) < 0.003
    assert linear_regression.main(["--init", "uniform", "--seed", "642"]) == 0
    assert "loss: epoch 1 250.5 -> epoch 1000 " in capsys.readouterr().out


def test_linear_regression_reports_failure_when_undertrained() -> None:
    assert linear_regression.main(["--epochs", "5"]) == 1


def test_text_classification_on_a_local_file(spam_file: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert text_classification.main(["--data", str(spam_file), "--epochs", "5", "--lr", "0.05",
                                     "--batch-size", "16", "--device", "cpu", "-q"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("accuracy: ") and float(out[-1].split()[1]) >= 0.9
    assert any(line.startswith("macro F1:") for line in out)


def test_text_classification_reaches_975_on_sms_spam(shared_data: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = shared_data / "sms-spam" / "SMSSpamCollection"
    if not data.is_file():
        pytest.skip(f"SMS Spam Collection not available at {data}")
    assert text_classification.main(["--data", str(data), "--device", "cpu", "-q"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("accuracy: ")
    assert float(last.split()[1]) >= 0.975


def test_text_classification_missing_file_exits_1(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert text_classification.main(["--data", str(tmp_path / "none.tsv"), "-q"]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = text_classification.main([*argv, "--device", "cpu", "-q"])
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err


def test_ag_news_csv_with_header_uses_title_and_description(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.datasets.text_factory import write_ag_news_csv

    data = write_ag_news_csv(tmp_path / "test.csv", 60, bom=True)
    code, out, _ = _run(["--data", str(data), "--epochs", "8"], capsys)
    assert code == 0 and out[0].startswith("172 train, 20 valid, 48 test texts")
    report = "\n".join(out)
    assert "label" not in report.split("confusion matrix")[0]  # no fifth class named "label"
    assert all(f"\n{k} " in report or f" {k} " in report for k in "1234")
    assert float(out[-1].split()[1]) >= 0.8


def test_separate_test_file_and_repeated_text_columns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.datasets.text_factory import write_ag_news_csv

    train = write_ag_news_csv(tmp_path / "train.csv", 60, seed=1)
    test = write_ag_news_csv(tmp_path / "test.csv", 10, header=False, seed=2)
    code, out, err = _run(["--data", str(train), "--test-data", str(test), "--text-column", "1",
                           "--text-column", "2", "--label-column", "0", "--epochs", "8"], capsys)
    assert code == 0, err
    assert out[0].startswith("216 train, 24 valid, 40 test texts")
    assert float(out[-1].split()[1]) >= 0.8
    other = tmp_path / "other.csv"
    other.write_text('label,title,description\n1,a,b\n7,"c, d",e\n')
    code, _, err = _run(["--data", str(train), "--test-data", str(other)], capsys)
    assert code == 1 and "other.csv:3: class 7 is not among the training classes [1, 2, 3, 4]" in err


@pytest.mark.parametrize("labels", [(1, 2, 3), (-1, 1, 1)])
def test_integer_labels_of_any_base_train(tmp_path: Path, labels: tuple[int, ...],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import json

    words = {y: f"word{i} other{i}" for i, y in enumerate(sorted(set(labels)))}
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"text": f"{words[y]} common {n}", "label": y}) + "\n"
                            for n in range(30) for y in labels))
    # 90 texts: batches of 8 give the steps the recipe (tuned on thousands of texts) needs
    code, out, err = _run(["--data", str(path), "--batch-size", "8"], capsys)
    assert code == 0, err  # was: IndexError: Target 2 is out of bounds
    assert float(out[-1].split()[1]) == 1.0


def test_a_file_too_small_for_a_test_split_exits_1(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiny.tsv"
    path.write_text("ham\thello there\nspam\twin cash\nham\tsee you\nspam\tfree prize\n")
    code, out, err = _run(["--data", str(path)], capsys)
    assert code == 1 and out == []
    assert err.startswith("error: a 0.2 test split of 4 rows is empty (per class: ham 2, spam 2")


def test_model_class_count_is_checked(spam_file: Path) -> None:
    from training.errors import TrainingError
    from training.models import BagOfWords

    text = text_classification.load_text_data(data=spam_file)
    with pytest.raises(TrainingError, match=r"expected a model with 2 classes \(ham, spam\) but "
                       r"it has num_classes=3"):
        text_classification.train_text(text, model=BagOfWords(text.vocab_size, 3, 4))


def test_bag_of_words_within_a_point_of_scikit_learn_on_sms_spam(shared_data: Path) -> None:
    svm = pytest.importorskip("sklearn.svm")
    from sklearn.feature_extraction.text import TfidfVectorizer

    from datasets.text import TextClassificationDataset
    from datasets.textsplits import stratified_split

    data = shared_data / "sms-spam" / "SMSSpamCollection"
    if not data.is_file():
        pytest.skip(f"SMS Spam Collection not available at {data}")
    ds = TextClassificationDataset.from_file(data)
    parts = stratified_split(ds.targets.numpy(), test=0.2, seed=0)
    texts, y = ds.texts, ds.targets.numpy()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vec.fit_transform([texts[i] for i in parts["train"]])
    clf = svm.LinearSVC().fit(x_train, y[parts["train"]])
    sklearn_acc = clf.score(vec.transform([texts[i] for i in parts["test"]]), y[parts["test"]])
    text = text_classification.load_text_data(data=data, seed=0)
    assert text.test_size == len(parts["test"])
    _, result = text_classification.train_text(text, device="cpu")
    assert result["accuracy"] >= sklearn_acc - 0.01, (result["accuracy"], sklearn_acc)
