"""Issue 16 (training side): refusals up front, one line each, instead of crashes or wrong scores.

Every refusal is one ``error: …`` line with exit 1, or an argparse usage error with exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from training import DivergenceError, FitConfig, LinearRegression, fit
from training.cli import main


def _photos(root: Path, classes: list[str], per_class: int, size: int = 12) -> Path:
    rng = np.random.default_rng(len(classes) * 100 + per_class)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{i}.png")
    return root


def _fit(data: Path, out: Path, *extra: str) -> int:
    return main(["fit", "--data-dir", str(data), "--epochs", "1", "--out", str(out),
                 "--device", "cpu", "-q", *extra])


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# item 3: train/ and val/ with different class lists ---------------------------------------------

@pytest.mark.parametrize("val_classes", [["ants", "bees"], ["ants", "bees", "wasps"]])
def test_fit_refuses_split_folders_with_other_classes(tmp_path: Path, val_classes: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _photos(tmp_path / "data" / "train", ["ants", "wasps"], 6)
    _photos(tmp_path / "data" / "val", val_classes, 3)
    out = tmp_path / "run"
    assert _fit(tmp_path / "data", out) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "['ants', 'wasps']" in line and repr(val_classes) in line
    assert not (out / "checkpoint.pt").exists()  # refused before training


def test_fit_accepts_split_folders_with_the_same_classes(tmp_path: Path) -> None:
    _photos(tmp_path / "data" / "train", ["ants", "bees"], 6)
    _photos(tmp_path / "data" / "val", ["ants", "bees"], 3)
    out = tmp_path / "run"
    assert _fit(tmp_path / "data", out) == 0
    assert json.loads((out / "metrics.json").read_text())["classes"] == ["ants", "bees"]


# item 7: classes too small to carve a split -------------------------------------------------------

def test_fit_with_five_images_per_class_trains_without_validation(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _photos(tmp_path / "photos", ["ants", "bees"], 5)
    out = tmp_path / "run"
    with caplog.at_level("WARNING", logger="training"):
        assert _fit(folder, out) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_count"] == 2 and metrics["history"]["valid_loss"] == [None]
    assert any("training without a validation split" in r.getMessage()
               and "10 images in 2 classes (5 per class)" in r.getMessage()
               for r in caplog.records), caplog.text


def test_fit_with_one_image_per_class_is_refused_naming_the_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _photos(tmp_path / "photos", [f"c{i:03d}" for i in range(1000)], 1, size=4)
    assert _fit(folder, tmp_path / "run") == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "1000 images in 1000 classes (1 per class)" in line and "add images" in line


# item 12: a non-finite loss or weight stops training ----------------------------------------------

def test_fit_names_the_step_and_value_of_a_nan_loss() -> None:
    x = torch.ones(40, 2)
    x[25] = float("nan")  # in the third batch of 10
    loader = DataLoader(TensorDataset(x, torch.zeros(40, 1)), batch_size=10)
    with pytest.raises(DivergenceError, match=r"got nan at step 3 of epoch 1 \(lr=0.1\)") as info:
        fit(LinearRegression(2, 1), loader, config=FitConfig(lr=0.1, epochs=2, device="cpu"))
    assert "check the inputs and labels for NaN/inf" in str(info.value)  # review 6: not only lr


def test_fit_stops_on_an_infinite_weight_behind_a_finite_loss() -> None:
    # one step: the loss is 1.0, its gradient -2e20 times lr 1e20 overflows float32
    loader = DataLoader(TensorDataset(torch.full((1, 1), 1e20), torch.ones(1, 1)), batch_size=1)
    model = LinearRegression(1, 1, init="zeros")
    with pytest.raises(DivergenceError, match=r"weights but \S*weight holds -?inf after epoch 1"):
        fit(model, loader, config=FitConfig(lr=1e20, epochs=1, device="cpu"))


def test_another_rank_s_bad_step_stops_this_rank_too() -> None:
    from training.divergence import check_finite

    model = LinearRegression(1, 1)
    check_finite(model, [torch.tensor(0.5)], epoch=2, lr=0.1, mean_loss=0.5)
    with pytest.raises(DivergenceError, match=r"got inf at epoch 2 \(lr=0.1\)"):
        check_finite(model, [torch.tensor(0.5)], epoch=2, lr=0.1, mean_loss=float("inf"))


def test_linear_regression_example_fails_on_divergence(capsys: pytest.CaptureFixture[str]) -> None:
    from training.examples.linear_regression import main as example

    assert example(["--lr", "1e6", "--epochs", "50"]) == 1
    captured = capsys.readouterr()
    assert "ok" not in captured.out
    line = _one_error_line(captured.err)
    assert "expected a finite training loss but got inf at epoch 4 (lr=1000000.0)" in line


# item 15: an unknown --encoding -------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["nosuchcodec", "base64"])
def test_an_unknown_encoding_is_a_usage_error(spam_file: Path, tmp_path: Path, codec: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from training.examples.text_classification import main as example

    for run in (lambda: main(["fit", "--data-dir", str(spam_file), "--model", "bow",
                              "--encoding", codec, "--out", str(tmp_path / "run")]),
                lambda: example(["--data", str(spam_file), "--encoding", codec])):
        with pytest.raises(SystemExit) as exit_info:
            run()
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "argument --encoding: encoding should be a text codec" in err
        assert f"but got {codec!r}" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()



# items 9 and 18: --image-size above the pixel limit, --out "" -------------------------------------

def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("side", ["100000", "9460"])
def test_image_size_above_the_pixel_limit_is_a_usage_error(
        tmp_path: Path, side: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error(["fit", "--image-size", side, "--out", str(tmp_path / "run")], capsys)
    assert "argument --image-size: should be at most 9459" in line and repr(side) in line
    assert "MAX_IMAGE_PIXELS = 89,478,485" in line
    assert not (tmp_path / "run").exists()


def test_image_size_follows_a_changed_pixel_limit(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    line = _usage_error(["fit", "--image-size", "101", "--out", str(tmp_path / "r")], capsys)
    assert "should be at most 100 " in line


@pytest.mark.parametrize("out", [""])  # "   " is a valid folder name (review 11)
def test_an_empty_out_is_a_usage_error(out: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = _usage_error(["fit", "--out", out], capsys)
    assert f"argument --out: should be a folder path, but got {out!r}" in line
    assert list(tmp_path.iterdir()) == []  # nothing written into the current folder


# item 17: a garbage checkpoint.pt; torch's "retry with weights_only=False" is never relayed -----

class _Payload:
    def __reduce__(self) -> tuple:
        return (print, ("this must never run",))


@pytest.mark.parametrize("content", ["garbage", "pickle", "torch-object"])
def test_a_garbage_checkpoint_is_named_without_unsafe_advice(
        idx_folder: Path, tmp_path: Path, content: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import pickle

    out = tmp_path / "run"
    out.mkdir()
    if content == "garbage":
        data = b"not a checkpoint at all\x00\x01\x02"
    elif content == "pickle":
        data = pickle.dumps({"epoch": _Payload()})
    else:
        buffer = io.BytesIO()
        torch.save({"format": 1, "epoch": _Payload()}, buffer)
        data = buffer.getvalue()
    (out / "checkpoint.pt").write_bytes(data)
    assert main(["fit", "--data-dir", str(idx_folder), "--epochs", "1", "--out", str(out),
                 "--device", "cpu", "-q", "--resume"]) == 1
    captured = capsys.readouterr()
    assert "weights_only=False" not in captured.err
    assert "weights_only` set to `False" not in captured.err
    line = _one_error_line(captured.err)
    assert f"cannot read checkpoint {out / 'checkpoint.pt'}" in line
    assert "not a dataferry checkpoint" in line and "delete it" in line
    assert "this must never run" not in captured.out + captured.err


# item 8: many classes: the confusion matrix is kept as its nonzero cells --------------------------

class _Constant(torch.nn.Module):
    """Logits that predict ``(label + shift) % classes`` from an input that is the label."""

    def __init__(self, classes: int, shift: int) -> None:
        super().__init__()
        self.classes, self.shift = classes, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot((x.long() + self.shift) % self.classes,
                                           self.classes).float()


def test_evaluate_many_classes_keeps_cells_not_a_dense_matrix() -> None:
    from training import evaluate

    k = 2000  # dense: 4 million cells; the old code built them per batch and listed them
    labels = torch.arange(600) * 7 % k
    loader = DataLoader(TensorDataset(labels, labels), batch_size=128)
    result = evaluate(_Constant(k, shift=0), loader, device="cpu", report=True)
    assert result["confusion_matrix"] is None
    cells = result["confusion_cells"]
    assert len(cells) == 600 and all(t == p and n == 1 for t, p, n in cells)
    assert len(result["recall"]) == k and result["support"][7] == 1 and result["recall"][7] == 1.0
    assert result["accuracy"] == 1.0


def test_evaluate_cells_agree_with_the_dense_matrix_for_few_classes() -> None:
    from training import confusion_matrix, evaluate, precision_recall_f1

    labels = torch.tensor([0, 1, 2, 2, 1, 0, 2, 2, 1])
    model = _Constant(3, shift=1)
    result = evaluate(model, DataLoader(TensorDataset(labels, labels), batch_size=4),
                      device="cpu", report=True)
    dense = confusion_matrix(labels, (labels + 1) % 3, 3)
    assert result["confusion_matrix"] == dense.tolist()
    assert result["confusion_cells"] == [[0, 1, 2], [1, 2, 3], [2, 0, 4]]
    expected = precision_recall_f1(dense)
    assert all(result[key] == value for key, value in expected.items())


def test_fit_with_300_text_classes_writes_a_small_metrics_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = [f"c{label:03d}\tword{label} " + " ".join(rng.choice(["a", "b", "c"], 4))
             for label in range(300) for _ in range(4)]
    data = tmp_path / "many.tsv"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert main(["fit", "--data-dir", str(data), "--model", "bow", "--epochs", "1",
                 "--out", str(out), "--device", "cpu", "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["classes"]) == 300 and metrics["confusion_matrix"] is None
    assert sum(n for _, _, n in metrics["confusion_cells"]) == metrics["test_count"]
    assert (out / "metrics.json").stat().st_size < 200_000  # dense: 90,000 cells, ~1 MB


_SHARDED_EVALUATE = r"""
import json, sys
import torch, torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from training import evaluate
rank, init, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=2)
class Shift(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.one_hot((x + (x % 3 == 0).long()) % 500, 500).float()
labels = torch.arange(90) * 5 % 500
data = TensorDataset(labels, labels)
loader = DataLoader(data, batch_size=16, sampler=DistributedSampler(data, shuffle=False))
result = evaluate(Shift(), loader, device="cpu", report=True)
with open(f"{out}.{rank}", "w") as f:
    json.dump(result, f)
dist.destroy_process_group()
"""


@pytest.mark.integration  # two real processes in a gloo process group
def test_sharded_evaluate_gathers_every_rank_s_cells(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    ranks = [subprocess.Popen([sys.executable, "-c", _SHARDED_EVALUATE, str(r),
                               str(tmp_path / "init"), str(tmp_path / "result")], env=env, cwd=root)
             for r in (0, 1)]
    assert [p.wait(timeout=120) for p in ranks] == [0, 0]
    results = [json.loads((tmp_path / f"result.{r}").read_text()) for r in (0, 1)]
    assert results[0] == results[1] and results[0]["confusion_matrix"] is None
    labels = [i * 5 % 500 for i in range(90)]
    expected = sorted([t, (t + (t % 3 == 0)) % 500, 1] for t in labels)
    assert results[0]["confusion_cells"] == expected and results[0]["count"] == 90


# item 14: a failing shard read by DataLoader workers is one error line, as without workers -------

def _colour_pack(folder: Path, n: int = 48, *, size: int = 8,
                 classes: tuple[str, ...] = ("r", "g", "b")) -> Path:
    from datasets import write_shards

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=generator)
    samples = [{"image": images[i].numpy(), "label": i % len(classes)} for i in range(n)]
    write_shards(samples, folder, shard_size_bytes=4000, classes=list(classes))
    return folder


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_failing_shard_is_one_error_line_with_any_worker_count(
        tmp_path: Path, workers: str, capsys: pytest.CaptureFixture[str]) -> None:
    pack = _colour_pack(tmp_path / "pack")
    shard = sorted(pack.glob("shard-*"))[-1]
    shard.write_bytes(shard.read_bytes()[:-10] + b"\xff" * 10)  # its sha256 no longer matches
    code = main(["fit", "--stream", str(pack), "--stream-test", str(pack), "--epochs", "1",
                 "--batch-size", "16", "--device", "cpu", "--root", str(tmp_path / "home"),
                 "--out", str(tmp_path / "run"), "-q", "--num-workers", workers])
    assert code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and "Traceback" not in err and "DataLoader worker" not in err, err
    assert lines[0].startswith(f"error: shard {shard.name!r} from ") and "failed twice" in lines[0]


# item 17: an incompatible --stream-test pack is refused before training --------------------------

@pytest.mark.parametrize("size,classes,what", [
    (16, ("r", "g", "b"), "fields"),
    (8, ("r", "g", "x"), "classes"),
])
def test_an_incompatible_stream_test_pack_is_refused_before_training(
        tmp_path: Path, size: int, classes: tuple[str, ...], what: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    train = _colour_pack(tmp_path / "train")
    test = _colour_pack(tmp_path / "test", 12, size=size, classes=classes)
    out = tmp_path / "run"
    assert main(["fit", "--stream", str(train), "--stream-test", str(test), "--epochs", "1",
                 "--batch-size", "16", "--device", "cpu", "--root", str(tmp_path / "home"),
                 "--out", str(out), "-q"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"expected --stream-test {test} to have the {what}" in line and str(train) in line
    assert not (out / "checkpoint.pt").exists()  # refused before the first epoch


@pytest.mark.parametrize("command", ["training.quickstart", "datasets.preview"])
def test_an_empty_out_is_a_usage_error_in_the_other_commands(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.chdir(tmp_path)
    argv = ["--out", ""] if command == "training.quickstart" else ["letters", "--out", ""]
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(command).main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--out" in err.strip().splitlines()[-1] and "but got ''" in err
    assert list(tmp_path.iterdir()) == []


# review 4 (item 14): worker errors torch cannot rebuild, and multi-line messages ----------------

class _Failing(torch.utils.data.Dataset):
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        raise self.error


def _worker_error(error: Exception) -> Exception:
    from torch.utils.data import DataLoader

    with pytest.raises(Exception) as info:  # noqa: PT011 - the point is what torch raises
        list(DataLoader(_Failing(error), num_workers=1))
    return info.value


def test_worker_errors_torch_cannot_rebuild_or_of_several_lines_are_one_line() -> None:
    from datasets.errors import ShardError
    from loaders.errors import UnsafeNameError
    from training.console import describe_error, is_worker_error

    unsafe = _worker_error(UnsafeNameError("'../x'", "has a separator"))
    assert is_worker_error(unsafe)
    assert describe_error(unsafe) == "error: UnsafeNameError: '../x' has a separator"
    several = _worker_error(ShardError("shard 3 failed\nits header says 7 records"))
    assert describe_error(several) == "error: shard 3 failed its header says 7 records"


def test_fit_turns_a_wrapped_worker_runtime_error_and_a_memory_error_into_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from loaders.errors import UnsafeNameError
    from training import cli

    wrapped = _worker_error(UnsafeNameError("'../x'", "has a separator"))
    for error in (wrapped, MemoryError()):
        def fail(*args: object, error: BaseException = error) -> int:
            raise error
        monkeypatch.setattr(cli, "_fit_command", fail)
        assert main(["fit", "--image-size", "600", "--out", str(tmp_path / "r")]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "out of memory with --image-size 600" in lines[0] and "--batch-size" in lines[0]


    def bug(*args: object) -> int:
        raise RuntimeError("a bug, not a worker's error")
    monkeypatch.setattr(cli, "_fit_command", bug)  # a bug keeps its traceback
    with pytest.raises(RuntimeError, match="a bug"):
        main(["fit", "--out", str(tmp_path / "r")])


# review 11 (item 18): datasets.shard OUT "" is refused; a blank but valid --out is a folder ------

def test_shard_refuses_an_empty_out_and_fit_accepts_a_blank_folder_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import shard
    from training.console import output_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "src.txt").write_text("ham\thi there\nspam\twin now\n")
    with pytest.raises(SystemExit) as exit_info:
        shard.main(["src.txt", ""])
    assert exit_info.value.code == 2
    assert "argument out: should be a folder or s3:// URL, but got ''" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.txt"]
    assert output_folder(" ") == " "


# review 12: --patience without a validation split says what to do --------------------------------

def test_patience_without_a_validation_split_says_what_to_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = _colour_pack(tmp_path / "pack")  # a streamed pack has no validation split
    code = main(["fit", "--stream", str(pack), "--patience", "2", "--epochs", "1",
                 "--device", "cpu", "--root", str(tmp_path / "home"),
                 "--out", str(tmp_path / "run"), "-q"])
    assert code == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--patience needs a validation split" in line and "drop --patience" in line, line


# review 7: a split lacking the LAST class is one rule for folders and --stream-test: warned --------

def test_a_val_folder_lacking_the_last_class_is_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _photos(tmp_path / "data" / "train", ["ants", "bees", "wasps"], 6)
    _photos(tmp_path / "data" / "val", ["ants", "bees"], 3)
    with caplog.at_level("WARNING", logger="training"):
        assert _fit(tmp_path / "data", tmp_path / "run") == 0
    assert "val lacks the last class(es) of train: ['wasps']" in caplog.text


def test_a_stream_test_pack_lacking_the_last_class_is_accepted_and_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train = _colour_pack(tmp_path / "train")
    test = _colour_pack(tmp_path / "test", 12, classes=("r", "g"))
    with caplog.at_level("WARNING", logger="training"):
        assert main(["fit", "--stream", str(train), "--stream-test", str(test), "--epochs", "1",
                     "--batch-size", "16", "--device", "cpu", "--root", str(tmp_path / "home"),
                     "--out", str(tmp_path / "run"), "-q"]) == 0
    assert f"--stream-test {test} lacks the last class(es) of --stream {train}: ['b']" in (
        caplog.text)


# review 3 (item 9): a batch larger than the memory left is refused before training ---------------

def test_a_batch_larger_than_the_memory_left_is_refused_before_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from training import console

    _photos(tmp_path / "data" / "train", ["ants", "bees"], 8)
    _photos(tmp_path / "data" / "val", ["ants", "bees"], 3)
    # 16 images of 3 x 32 x 32 float32 are 196,608 bytes: say 100,000 are left
    monkeypatch.setattr(console, "available_memory_bytes", lambda: 100_000)
    out = tmp_path / "run"
    assert _fit(tmp_path / "data", out, "--image-size", "32", "--batch-size", "16") == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "with --image-size 32 it needs" in line and "pass a smaller --image-size" in line
    assert not (out / "checkpoint.pt").exists()
