"""Subprocess runs of the training front doors: the CLI's exit codes and the offline quickstart."""

from __future__ import annotations

import gzip
import json
import os
import shlex
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from child_signals import default_sigint
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAFERRY_")}
    env["DATAFERRY_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=_env(home), capture_output=True,
                          text=True, timeout=240)


def _idx(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    images = rng.integers(0, 50, size=(200, 28, 28))
    images[labels == 1, 10:14, :] = 255
    folder.mkdir(parents=True)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 200, 28, 28) + images.astype(np.uint8).tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, 200) + labels.astype(np.uint8).tobytes())
    return folder


@pytest.mark.integration
def test_cli_exit_codes_and_final_line(tmp_path: Path) -> None:
    data = _idx(tmp_path / "idx")
    ok = _run(["-m", "training", "fit", "--data-dir", str(data), "--epochs", "2",
               "--out", str(tmp_path / "run")], tmp_path / "home")
    assert ok.returncode == 0, ok.stderr
    accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["test_accuracy"]
    assert ok.stdout.strip().splitlines()[-1].startswith(f"test accuracy: {accuracy:.4f}")
    assert "epoch 2/2" in ok.stderr  # logging, not prints, for progress
    missing = _run(["-m", "training", "fit", "--data-dir", str(tmp_path / "none"),
                    "--out", str(tmp_path / "x")], tmp_path / "home")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in missing.stderr
    usage = _run(["-m", "training", "fit", "--model", "tree", "--out", str(tmp_path / "y")],
                 tmp_path / "home")
    assert usage.returncode == 2


@pytest.mark.integration
def test_quickstart_runs_offline(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    result = _run(["-m", "training.quickstart", "--out", str(out), "--epochs", "3"],
                  tmp_path / "home")
    assert result.returncode == 0, result.stderr
    # for a person: a line per step and per epoch, no timestamps or other packages' chatter
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["data", "training", "epoch 1/3",
                                                      "epoch 2/3", "epoch 3/3"], lines
    printed = result.stdout.strip().splitlines()
    assert printed[-1].startswith("test accuracy: ") and float(printed[-1].split()[-1]) > 0.6
    wrote = next(line for line in printed if line.startswith("wrote "))
    # the line names every file the run wrote, the checkpoint included
    assert sorted(Path(p).name for p in wrote.removeprefix("wrote ").split(", ")) == sorted(
        p.name for p in out.iterdir())
    assert (out / "checkpoint.pt").is_file()
    for name in ("samples.png", "curves.png"):
        with Image.open(out / name) as image:
            assert image.size[0] > 200
    assert json.loads((out / "metrics.json").read_text())["dataset"] == "letters"


@pytest.fixture(scope="module")
def letters_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache home in which the letters data (generated offline) are already packed."""
    home = tmp_path_factory.mktemp("home")
    warm = _run(["-m", "training", "fit", "--dataset", "letters", "--epochs", "1", "-q",
                 "--out", str(home / "warm-up")], home)
    assert warm.returncode == 0, warm.stderr
    return home


def _start(args: list[str], home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=_env(home), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=default_sigint)


def _wait_for_line(proc: subprocess.Popen[str], prefix: str) -> list[str]:
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line.rstrip("\n"))
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"the run ended before a line starting {prefix!r}: {seen}")


def _letters_fit(out: Path, epochs: int = 40) -> list[str]:
    return ["-m", "training", "fit", "--dataset", "letters", "--epochs", str(epochs),
            "--out", str(out)]


@pytest.mark.integration
def test_ctrl_c_after_an_epoch_exits_130_keeps_the_checkpoint_and_resumes(
        tmp_path: Path, letters_home: Path) -> None:
    out = tmp_path / "run"
    proc = _start(_letters_fit(out, epochs=3), letters_home)
    _wait_for_line(proc, "epoch 1/3")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) <= 2, lines  # maybe "epoch 2/3", then ours
    assert lines[-1].startswith(f"interrupted: the last finished epoch is kept in {out}")
    command = lines[-1].split("; to continue, run: ", 1)[1]
    assert command.endswith(" --resume") and "--epochs 3" in command
    kept = torch.load(out / "checkpoint.pt", weights_only=True)["epoch"]
    assert kept in (1, 2) and not list(out.glob(".checkpoint.pt.tmp-*"))
    resumed = _run(shlex.split(command)[1:], letters_home)  # "python" is this interpreter
    assert resumed.returncode == 0, resumed.stderr
    epochs_run = [line.split()[1].rstrip(":") for line in resumed.stderr.splitlines()
                  if line.startswith("epoch ")]
    assert epochs_run == [f"{e}/3" for e in range(kept + 1, 4)]
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history["epoch"] == [1, 2, 3]


@pytest.mark.integration
def test_a_second_run_into_the_same_folder_is_refused(tmp_path: Path, letters_home: Path) -> None:
    out = tmp_path / "run"
    first = _start(_letters_fit(out), letters_home)
    try:
        _wait_for_line(first, "epoch 1/40")  # it holds the folder now
        second = _run(_letters_fit(out, epochs=1), letters_home)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: the run folder {out} is in use by another training "
                                   f"run (pid {first.pid} on ")
        assert "--out" in lines[0]
        assert not (out / "metrics.json").exists()  # the second run wrote nothing
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
    again = _run(_letters_fit(out, epochs=1) + ["-q"], letters_home)  # the folder is free again
    assert again.returncode == 0, again.stderr
