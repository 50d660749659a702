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
