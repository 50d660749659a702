"""A lock that tells whether its holder lives: loaders.lock.hold and is_held (pins of the streaming cache)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from loaders.errors import LockTimeoutError
from loaders.lock import hold, is_held


def _hold_until_told(path: Path, ready: object, done: object) -> None:
    _held = hold(path, what="testing")  # kept referenced: freeing it would release the lock
    ready.set()  # type: ignore[attr-defined]
    done.wait(30)  # type: ignore[attr-defined]
    os._exit(0)  # no release: the OS drops the lock of an exited process


def test_a_lock_is_held_while_its_process_lives_and_not_after(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    ready, done = context.Event(), context.Event()
    child = context.Process(target=_hold_until_told, args=(tmp_path / "pin", ready, done))
    child.start()
    try:
        assert ready.wait(30)
        assert is_held(tmp_path / "pin")
        with pytest.raises(LockTimeoutError):
            hold(tmp_path / "pin", what="testing")
    finally:
        done.set()
        child.join(30)
    assert child.exitcode == 0 and not is_held(tmp_path / "pin")


def test_a_lock_held_in_this_process_counts(tmp_path: Path) -> None:
    held = hold(tmp_path / "pin", what="testing")
    assert is_held(tmp_path / "pin")
    held.release()
    assert not is_held(tmp_path / "pin")


def _release_inherited(held: object) -> None:
    held.release()  # type: ignore[attr-defined]
    os._exit(0)


def test_a_forked_child_releasing_its_copy_leaves_the_parent_holding(tmp_path: Path) -> None:
    # LOCK_UN through an inherited descriptor would unlock the parent's lock (DataLoader
    # workers inherit the dataset, and with it its pin's lock)
    held = hold(tmp_path / "pin", what="testing")
    child = multiprocessing.get_context("fork").Process(target=_release_inherited, args=(held,))
    child.start()
    child.join(30)
    assert child.exitcode == 0 and is_held(tmp_path / "pin")
    held.release()
    assert not is_held(tmp_path / "pin")
