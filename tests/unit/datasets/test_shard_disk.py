"""A shard write on a full disk: checked before the first shard, and one line naming OUT."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from image_factory import make_image_tree

import datasets.packed
from datasets import ShardError, write_shards
from datasets.shard import main


class _Images:
    """Fixed-size records: ``uint8`` ``[8, 8]`` images and labels."""

    data = torch.zeros((50, 8, 8), dtype=torch.uint8)
    targets = torch.arange(50) % 2
    classes = ["a", "b"]

    def __len__(self) -> int:
        return 50

    def __getitem__(self, i: int) -> tuple[Any, int]:
        return self.data[i], int(self.targets[i])


def test_too_little_free_disk_is_refused_before_the_first_shard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(datasets.packed.shutil, "disk_usage",
                        lambda path: real(path)._replace(free=1000))
    out = tmp_path / "out"
    with pytest.raises(ShardError, match=rf"writing 50 samples needs at least 3,\d\d\d bytes in "
                                         rf"{out} but only 1,000 bytes are free; .*another OUT"):
        write_shards(_Images(), out, shard_size_bytes=256)
    assert not list(out.glob("shard-*"))


def test_a_full_disk_while_writing_is_one_line_naming_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    src = make_image_tree(tmp_path / "src", per_class=4)
    out = tmp_path / "out"
    real_fsync = os.fsync
    calls = []

    def full_after_two(fd: int) -> None:  # the third file written finds the disk full
        calls.append(fd)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_after_two)
    rc = main([str(src), str(out), "--root", str(tmp_path / "cache"), "-q",
               "--shard-size", "2KB"])
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert err.startswith(f"error: cannot write the pack {out} (No space left on device")
    assert "free space there or write to another OUT" in err and len(err.splitlines()) == 1
