"""Per-model defaults of ``python -m training fit`` (issue 19) and its ``--num-workers``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.cli import build_parser, main
from training.defaults import MODEL_DEFAULTS, default_lr, describe_defaults


def _config(folder: Path, out: Path, *flags: str) -> dict[str, Any]:
    assert main(["fit", "--data-dir", str(folder), "--epochs", "1", "--out", str(out),
                 "--device", "cpu", "-q", *flags]) == 0
    config: dict[str, Any] = json.loads((out / "metrics.json").read_text())["config"]
    return config


def test_cnn_gets_adamw_onecycle_and_small_batches(idx_folder: Path, tmp_path: Path) -> None:
    config = _config(idx_folder, tmp_path / "run", "--model", "cnn")
    assert (config["optimizer"], config["lr"], config["weight_decay"]) == ("adamw", 0.003, 0.05)
    assert (config["batch_size"], config["schedule"]) == (32, "onecycle")


def test_flags_override_the_cnn_defaults(idx_folder: Path, tmp_path: Path) -> None:
    config = _config(idx_folder, tmp_path / "a", "--model", "cnn", "--optimizer", "sgd")
    # another optimizer brings its own settings for this model
    assert (config["lr"], config["momentum"], config["weight_decay"]) == (0.05, 0.9, 5e-4)
    config = _config(idx_folder, tmp_path / "b", "--model", "cnn", "--lr", "0.01",
                     "--batch-size", "8", "--schedule", "constant", "--weight-decay", "0")
    assert (config["optimizer"], config["lr"], config["batch_size"]) == ("adamw", 0.01, 8)
    assert (config["schedule"], config["weight_decay"]) == ("constant", 0.0)


def test_logistic_keeps_its_defaults(idx_folder: Path, tmp_path: Path) -> None:
    config = _config(idx_folder, tmp_path / "run")
    assert (config["optimizer"], config["lr"], config["momentum"]) == ("sgd", 0.1, 0.0)
    assert (config["batch_size"], config["schedule"], config["weight_decay"]) == (
        128, "constant", 0.0)
    config = _config(idx_folder, tmp_path / "lbfgs", "--optimizer", "lbfgs")
    assert config["schedule"] == "constant" and config["lr"] == 1.0


def test_default_lr_keeps_the_linear_models_rates() -> None:
    assert [default_lr(o, "logistic") for o in ("sgd", "adam", "lbfgs")] == [0.1, 0.01, 1.0]
    assert default_lr("sgd", "linear") == 0.01
    assert [default_lr(o, "bow") for o in ("sgd", "adam", "adamw", "lbfgs")] == [
        8.0, 0.02, 0.02, 1.0]
    with pytest.raises(ValueError, match="model should be one of"):
        default_lr("sgd", "resnet")


def test_fit_help_lists_each_models_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert describe_defaults() in text
    for model, row in MODEL_DEFAULTS.items():
        line = next(li for li in text.splitlines() if li.strip().startswith(model + " "))
        assert f"{row.optimizer} lr {row.settings(row.optimizer).lr:g}" in line
        assert f"batch {row.batch_size}" in line and row.schedule in line


def test_num_workers_defaults_to_auto_and_takes_a_count(tmp_path: Path) -> None:
    parser = build_parser()
    common = ["fit", "--out", str(tmp_path)]
    assert parser.parse_args(common).num_workers == "auto"
    assert parser.parse_args([*common, "--num-workers", "auto"]).num_workers == "auto"
    args = parser.parse_args([*common, "--num-workers", "2", "--force-workers"])
    assert (args.num_workers, args.force_workers) == (2, True)
    for bad in ("-1", "many"):
        with pytest.raises(SystemExit) as info:
            main([*common, "--num-workers", bad])
        assert info.value.code == 2


def test_explicit_workers_step_aside_on_a_small_pack(idx_folder: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("datasets.loader._STEPPED_ASIDE", set())  # as in a fresh process
    caplog.set_level("INFO", logger="datasets.loader")
    config = _config(idx_folder, tmp_path / "run", "--num-workers", "2")
    assert (config["num_workers"], config["num_workers_asked"]) == (0, 2)  # the loader says why
    said = [r for r in caplog.records if "steps aside" in r.getMessage()]
    assert len(said) == 1 and "force_workers=True" in said[0].getMessage()


def test_lbfgs_is_refused_for_the_cnn(idx_folder: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    # review 19 item 9: L-BFGS is for the convex models, as --help says
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--data-dir", str(idx_folder), "--model", "cnn", "--optimizer", "lbfgs",
              "--out", str(tmp_path / "r"), "-q"])
    assert exit_info.value.code == 2 and not (tmp_path / "r").exists()
    assert ("error: --optimizer lbfgs is for the convex models (linear, logistic, bow), but got "
            "--model cnn; drop --optimizer for its default (adamw) or pass adamw/sgd"
            in capsys.readouterr().err)
