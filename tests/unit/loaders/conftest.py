"""Fixtures shared by the loaders unit tests."""

from __future__ import annotations

import pytest

from loaders import transfer


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait for nothing; a test that checks the waits records them (``sleeps``)."""
    monkeypatch.setattr(transfer, "_sleep", lambda seconds: None)
