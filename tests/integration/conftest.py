"""Fixtures for integration tests: a misbehaving loopback HTTP server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback_server import LoopbackServer  # noqa: E402


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    """A started :class:`loopback_server.LoopbackServer` on 127.0.0.1; stopped afterwards."""
    with LoopbackServer() as server:
        yield server
