"""Ctrl-C during ``datasets.report/preview NAME --download``: one line, exit 130, resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from child_signals import default_sigint
from loopback_server import LoopbackServer, payload

REPO = Path(__file__).resolve().parents[2]
DATA = payload(8_458_043, seed=3)  # notMNIST_small.tar.gz's size (only a part is sent)


def _wait_for_part(root: Path, proc: subprocess.Popen[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(p.stat().st_size > 0 for p in root.rglob("*.part")):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no .part file appeared: {proc.communicate()}")
        time.sleep(0.02)


@pytest.mark.integration
@pytest.mark.parametrize("module, extra", [("datasets.report", []),
                                           ("datasets.preview", ["--out", "grid.png"])])
def test_ctrl_c_during_download_prints_one_line_and_exits_130(
        loopback_server: LoopbackServer, tmp_path: Path, module: str, extra: list[str]) -> None:
    base = loopback_server.serve("/notMNIST_small.tar.gz", DATA, delay_s=0.05)
    root = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "DATAFERRY_MIRROR": base.rsplit("/", 1)[0], "DATAFERRY_HOME": str(tmp_path / "c")}
    env.pop("DATAFERRY_OFFLINE", None)
    proc = subprocess.Popen([sys.executable, "-m", module, "notmnist", "--download", "--root",
                             str(root), "-q", *extra], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=default_sigint)
    try:
        _wait_for_part(root, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == ("interrupted; what was downloaded is kept: run the same command to "
                        f"resume: python -m {module} notmnist --download --root {root} -q"
                        + "".join(f" {a}" for a in extra))
    assert list(root.rglob("*.part"))  # kept for the next run
