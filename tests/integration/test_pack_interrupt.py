"""Ctrl-C while a folder is packed by a pool of decoding processes: one line, no worker noise."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from child_signals import default_sigint
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def _photo_folder(root: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG", quality=90)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(count // 2):
            (root / label / f"{i:05d}.jpg").write_bytes(buffer.getvalue())
    return root


@pytest.mark.integration
def test_ctrl_c_while_packing_prints_no_worker_traceback(tmp_path: Path) -> None:
    src = _photo_folder(tmp_path / "src", 3000)
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "datasets.shard", str(src), str(tmp_path / "out"), "--root",
         str(cache), "-q"], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: (default_sigint(), os.setsid()))
    try:
        deadline = time.monotonic() + 60
        while not list((cache / "packed").glob(".folder-*.tmp-*/images.u8")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"packing did not start: {proc.communicate()}")
            time.sleep(0.02)
        time.sleep(0.5)  # the first chunk is timed, then the pool starts
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "ForkPoolWorker" not in err and "Traceback" not in err, err
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "interrupted: run the same command again to continue the write"]
