"""The command lines' shared parts: checked numbers, readable logging, error lines."""

from __future__ import annotations

import logging

import pytest
import torch

from loaders.errors import DownloadError
from training import History, quickstart
from training.cli import main
from training.console import configure_logging, describe_error, positive_float, positive_int
from training.examples import text_classification


@pytest.mark.parametrize("flag,value", [("--epochs", "0"), ("--batch-size", "-3"),
                                        ("--lr", "-1"), ("--lr", "0"), ("--lr", "nan"),
                                        ("--momentum", "-0.5"), ("--weight-decay", "-1"),
                                        ("--num-workers", "-1"), ("--patience", "-1"),
                                        ("--epochs", "two")])
def test_fit_bad_numbers_are_usage_errors_naming_flag_and_value(
        flag: str, value: str, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", flag, value, "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: should be " in err and value in err


@pytest.mark.parametrize("entry", [quickstart.main, text_classification.main])
def test_other_clis_check_numbers_the_same_way(entry, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        entry(["--epochs", "0"])
    assert info.value.code == 2
    assert "argument --epochs: should be a positive int, but got '0'" in capsys.readouterr().err


def test_number_parsers_accept_good_values() -> None:
    assert positive_int("3") == 3 and positive_float("1e-3") == 0.001


def test_bad_device_is_one_error_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--device", "gpu", "--out", str(tmp_path), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: device should be 'auto', 'cpu', 'cuda' or 'cuda:N', but got "
                   "device='gpu'"]


@pytest.mark.parametrize("entry,args", [
    (main, ["fit", "--dataset", "letters"]), (quickstart.main, []),
    (text_classification.main, ["--data", "never-read.tsv"])])
def test_cuda_without_cuda_names_the_flag(entry, args, tmp_path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = [] if entry is text_classification.main else ["--out", str(tmp_path / "out")]
    assert entry([*args, "--device", "cuda", *out, "-q"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: expected an available device but got device='cuda' and "
        "torch.cuda.is_available() is False; pass --device cpu or auto"]


def test_download_errors_get_an_offline_hint() -> None:
    line = describe_error(DownloadError("could not download x"), offline_hint="use --dataset letters")
    assert line == "error: could not download x; without network access, use --dataset letters"
    assert describe_error(ValueError("bad"), offline_hint="never shown") == "error: bad"


def test_console_logging_is_bare_for_training_and_quiet_for_other_packages(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # pytest's own handlers would make this a no-op
    monkeypatch.setattr(root, "level", root.level)
    configure_logging()
    try:
        logging.getLogger("training.fit").info("epoch 1/1: train loss 0.1")
        logging.getLogger("datasets.packed").info("packed cache /x built")
        logging.getLogger("loaders.transfer").warning("retry 1/3")
        logging.getLogger("datasets.loader").info("num_workers=2 steps aside: ...")
        logging.getLogger("datasets.loader").debug("num_workers='auto' chose 0")
    finally:
        for handler in root.handlers:
            handler.flush()
    err = capsys.readouterr().err.splitlines()
    assert err == ["epoch 1/1: train loss 0.1", "warning: retry 1/3",
                   "num_workers=2 steps aside: ..."]


def test_unwritable_out_fails_before_the_data_with_one_line(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["fit", "--dataset", "notmnist", "--out", str(blocker / "run"), "-q"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: cannot create the output folder {blocker / 'run'} (Not a directory); "
        "pass --out a folder you can write to"]


def test_text_file_as_image_data_dir_says_add_model_bow(
        spam_file, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--data-dir", str(spam_file), "--out", str(tmp_path / "o"), "-q"]) == 1
    assert "it is a file; for a CSV/TSV/JSONL text file add --model bow" in capsys.readouterr().err


def test_quickstart_lr_defaults_follow_the_optimizer() -> None:
    from training.cli import default_lr

    assert default_lr("adam", "logistic") == 0.01 and default_lr("lbfgs", "logistic") == 1.0
    assert quickstart._parser().parse_args([]).lr is None  # filled in by default_lr


def test_quickstart_summary_says_1_epoch(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    history = History()
    history.record(1, train_loss=0.5, train_accuracy=0.8, valid=None, lr=0.01, data_time_s=0.0,
                   compute_time_s=0.0, epoch_time_s=0.0, skipped_batches=0)
    result = {"accuracy": 0.8, "macro_f1": 0.8, "confusion_matrix": [[1]]}
    data = {"classes": ["A"], "sizes": {"train": 8, "val": 1, "test": 1}}
    monkeypatch.setattr(quickstart, "_run", lambda args, out: (data, history, result))
    assert quickstart.main(["--epochs", "1", "--out", str(tmp_path / "qs"), "-q"]) == 0
    assert "test images, 1 epoch in " in capsys.readouterr().out
