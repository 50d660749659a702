"""``python -m training fit``: outputs, exit codes, resume; run in-process through ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from training.cli import main


def test_fit_writes_metrics_checkpoint_and_curves(idx_folder: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["fit", "--data-dir", str(idx_folder), "--model", "logistic", "--epochs", "3",
                 "--lr", "0.1", "--batch-size", "32", "--out", str(out), "--device", "cpu", "-q"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.9 <= metrics["test_accuracy"] <= 1.0
    assert metrics["test_count"] == 90
    assert len(metrics["confusion_matrix"]) == 3
    assert metrics["history"]["epoch"] == [1, 2, 3]
    assert (out / "checkpoint.pt").is_file()
    with Image.open(out / "curves.png") as image:
        assert image.size[0] > 400 and image.size[1] > 200
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"test accuracy: {metrics['test_accuracy']:.4f}")


@pytest.mark.parametrize("model,optimizer", [("linear", "sgd"), ("logistic", "lbfgs"),
                                             ("logistic", "adam")])
def test_fit_models_and_optimizers(idx_folder: Path, tmp_path: Path, model: str,
                                   optimizer: str) -> None:
    out = tmp_path / "run"
    assert main(["fit", "--data-dir", str(idx_folder), "--model", model, "--optimizer", optimizer,
                 "--epochs", "2", "--out", str(out), "--device", "cpu", "-q"]) == 0
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] >= 0.8


def test_resume_continues_the_run(idx_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["fit", "--data-dir", str(idx_folder), "--out", str(out), "--device", "cpu", "-q"]
    assert main([*common, "--epochs", "1"]) == 0
    assert main([*common, "--epochs", "3", "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["history"]["epoch"] == [1, 2, 3]


def test_resume_after_early_stopping_trains_no_more(noise_idx_folder: Path,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["fit", "--data-dir", str(noise_idx_folder), "--out", str(out), "--device", "cpu",
            "-q", "--epochs", "20", "--patience", "0", "--resume"]
    histories = []
    for _ in range(3):
        assert main(args) == 0
        histories.append(json.loads((out / "metrics.json").read_text())["history"])
    assert histories[0]["stopped_early"] and len(histories[0]["epoch"]) < 20
    assert histories[1] == histories[0] and histories[2] == histories[0]


def test_one_epoch_is_said_in_the_singular(idx_folder: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="training"):
        assert main(["fit", "--data-dir", str(idx_folder), "--epochs", "1", "--out",
                     str(tmp_path / "run"), "--device", "cpu"]) == 0
    assert " (90 samples, 1 epoch, " in capsys.readouterr().out.strip().splitlines()[-1]
    assert any(r.getMessage().startswith("training: ") and ", 1 epoch on cpu" in r.getMessage()
               for r in caplog.records), caplog.text


def test_bow_on_a_text_file(spam_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["fit", "--data-dir", str(spam_file), "--model", "bow", "--optimizer", "adam",
                 "--lr", "0.05", "--epochs", "5", "--batch-size", "16", "--out", str(out),
                 "--device", "cpu", "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == ["ham", "spam"] and metrics["test_accuracy"] >= 0.9


def test_missing_data_dir_exits_1_with_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fit", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("error: ") and "nowhere" in err[-1]


def test_idx_images_without_labels_exit_1_naming_the_missing_file(
        idx_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in idx_folder.glob("*labels*"):
        path.unlink()
    for path in idx_folder.glob("t10k*"):
        path.unlink()
    code = main(["fit", "--data-dir", str(idx_folder), "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("error: expected a labels file train-labels-idx1-ubyte.gz beside "
                             "train-images-idx3-ubyte.gz in ")
    assert err[0].endswith("put the matching labels file there")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--dataset", "no-such-data", "--out", str(tmp_path)])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["fit", "--epochs", "0", "--out", str(tmp_path)])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["fit"])  # --out is required
    assert info.value.code == 2


def test_fit_on_a_png_class_folder(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for label, cls in enumerate(["A", "B", "C"]):
        (tmp_path / "png" / cls).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 60, size=(28, 28), dtype=np.uint8)
            pixels[4 + 8 * label: 8 + 8 * label, :] = 255
            Image.fromarray(pixels, mode="L").save(tmp_path / "png" / cls / f"{i}.png")
    out = tmp_path / "run"
    assert main(["fit", "--data-dir", str(tmp_path / "png"), "--epochs", "5", "--batch-size", "8",
                 "--out", str(out), "--device", "cpu", "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == ["A", "B", "C"] and metrics["test_accuracy"] >= 0.8


def test_bow_on_image_data_is_a_clear_error(idx_folder: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--data-dir", str(idx_folder), "--model", "logistic", "--epochs", "1",
                 "--patience", "1", "--out", str(tmp_path / "ok"), "-q"]) == 0
    assert main(["fit", "--dataset", "sms-spam", "--model", "logistic",
                 "--out", str(tmp_path / "o"), "-q"]) == 1
    assert "use --model bow for text" in capsys.readouterr().err


def test_bow_with_text_columns_label_column_and_header(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.datasets.text_factory import write_ag_news_csv

    data = write_ag_news_csv(tmp_path / "ag.csv", 40)
    out = tmp_path / "run"
    assert main(["fit", "--data-dir", str(data), "--model", "bow", "--text-column", "title",
                 "--text-column", "description", "--label-column", "label", "--header", "yes",
                 "--batch-size", "16", "--out", str(out), "--device", "cpu", "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == ["1", "2", "3", "4"] and metrics["test_count"] == 32
    assert metrics["config"]["optimizer"] == "adamw" and metrics["test_accuracy"] >= 0.6  # chance 0.25
    tiny = tmp_path / "tiny.tsv"
    tiny.write_text("ham\thi\nspam\twin\n")
    assert main(["fit", "--data-dir", str(tiny), "--model", "bow", "--out",
                 str(tmp_path / "tiny-run"), "--device", "cpu", "-q"]) == 1
    assert "test split of 2 rows is empty" in capsys.readouterr().err


def test_bow_reads_a_latin1_file_with_encoding_and_the_error_names_the_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cafe.csv"
    rows = [f"{'spam' if i % 2 else 'ham'},caf\xe9 {'win prize' if i % 2 else 'see you'} {i}"
            for i in range(40)]
    data.write_bytes(("label,text\n" + "\n".join(rows) + "\n").encode("latin-1"))
    assert main(["fit", "--data-dir", str(data), "--model", "bow", "--epochs", "1",
                 "--out", str(tmp_path / "bad"), "--device", "cpu", "-q"]) == 1
    assert "pass the file's encoding= / --encoding (e.g. 'latin-1')" in capsys.readouterr().err
    assert main(["fit", "--data-dir", str(data), "--model", "bow", "--epochs", "1",
                 "--encoding", "latin-1", "--out", str(tmp_path / "ok"), "--device", "cpu",
                 "-q"]) == 0


def test_a_run_that_measured_nothing_exits_1(idx_folder: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import training.cli

    monkeypatch.setattr(training.cli, "evaluate",
                        lambda *a, **k: {"accuracy": 0.0, "loss": 0.0, "count": 0})
    assert main(["fit", "--data-dir", str(idx_folder), "--epochs", "1", "--out",
                 str(tmp_path / "run"), "--device", "cpu", "-q"]) == 1
    assert "error: expected test samples to measure but the test split is empty" in \
        capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.json").exists()
