"""``locked(remove=True)``: no lock file left behind, and still one holder at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from loaders.errors import LockTimeoutError
from loaders.lock import locked


def test_removed_lock_file_is_relocked_by_the_waiter_so_one_holder_at_a_time(
        tmp_path: Path) -> None:
    target = tmp_path / "data"
    events: list[str] = []
    waiter_holds = threading.Event()
    release_waiter = threading.Event()

    def waiter() -> None:
        with locked(target, timeout_s=10, remove=True):
            events.append("waiter")
            waiter_holds.set()
            release_waiter.wait(10)

    with locked(target, timeout_s=5, remove=True) as lock_file:
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)  # the waiter now blocks on the file we are about to remove
        events.append("first")
    assert waiter_holds.wait(10)
    # The waiter holds the lock although the file it first waited on was removed: a newcomer
    # must wait for it, not take a fresh file of the same name.
    with pytest.raises(LockTimeoutError), locked(target, timeout_s=0.3, remove=True):
        pass
    release_waiter.set()
    thread.join(10)
    assert events == ["first", "waiter"]
    assert not lock_file.exists()  # removed by the last holder


def test_plain_lock_keeps_its_file(tmp_path: Path) -> None:
    with locked(tmp_path / "data", timeout_s=5) as lock_file:
        pass
    assert lock_file.exists()
