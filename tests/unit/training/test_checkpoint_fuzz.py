"""Fuzz: random and mutated checkpoint files load or raise CheckpointError, nothing else."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from training import CheckpointError
from training.checkpoint import load_checkpoint, save_checkpoint


def _valid_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as temp:
        path = save_checkpoint(Path(temp) / "checkpoint.pt",
                               {"epoch": 1, "model": {"w": torch.ones(3)}, "history": {}})
        return path.read_bytes()


VALID = _valid_bytes()


def _load(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="ckpt-fuzz-") as temp:
        path = Path(temp) / "checkpoint.pt"
        path.write_bytes(data)
        try:
            payload = load_checkpoint(path)
        except CheckpointError as err:
            assert str(err).strip()
            return
        assert isinstance(payload, dict) and payload["format"] == 1


@pytest.mark.fuzz
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_checkpoint_error(data: bytes) -> None:
    _load(data)


@pytest.mark.fuzz
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)),
                      max_size=8),
       cut=st.none() | st.integers(0, len(VALID)))
def test_mutated_checkpoints_load_or_raise_checkpoint_error(edits: list[tuple[int, int]],
                                                            cut: int | None) -> None:
    data = bytearray(VALID)
    for position, value in edits:
        data[position] = value
    _load(bytes(data[:cut] if cut is not None else data))


def test_the_fuzz_seed_is_a_real_checkpoint() -> None:
    payload = torch.load(io.BytesIO(VALID), weights_only=True)
    assert payload["epoch"] == 1 and torch.equal(payload["model"]["w"], torch.ones(3))
