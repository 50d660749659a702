"""Shared fixtures: no network for unit tests, a private cache home, clean environment."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Fuzz tests (``@pytest.mark.fuzz``) stay bounded in the default run; ``--fuzz-long`` runs more.
settings.register_profile(
    "default-run",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz-long",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("default-run")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        help="run the fuzz tests with many more examples (minutes, not seconds)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--fuzz-long"):
        settings.load_profile("fuzz-long")


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Environment variables the code reads; each test starts without them.
_ENV_VARS = (
    "DATAFERRY_HOME",
    "DATAFERRY_MIRROR",
    "DATAFERRY_OFFLINE",
    "XDG_CACHE_HOME",
)


def _is_loopback(address: object) -> bool:
    if not (isinstance(address, tuple) and address):
        return False
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never connect anywhere; integration tests may reach loopback only."""
    real_connect = socket.socket.connect
    allow_loopback = request.node.get_closest_marker("integration") is not None

    def guarded_connect(self: socket.socket, address: object) -> object:
        if self.family == socket.AF_UNIX:
            # DataLoader workers talk over Unix sockets; they never leave the machine.
            return real_connect(self, address)  # type: ignore[arg-type]
        if allow_loopback and _is_loopback(address):
            return real_connect(self, address)  # type: ignore[arg-type]
        raise RuntimeError(f"test tried to open a network connection to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Clear the variables the code reads and point the cache home at a private folder."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path_factory.mktemp("dataferry-home")))


class _SharedData(type(Path())):  # type: ignore[misc]  # Path's concrete class (3.10/3.11)
    """``shared_data / "name"`` skips the test when that part of the data is absent."""

    def __truediv__(self, name: str | os.PathLike[str]) -> Path:
        path = Path(super().__truediv__(name))  # a plain path: only the test's own "/" skips
        if not path.exists():
            pytest.skip(f"real data not available: {path} does not exist (only on dev machines)")
        return path


@pytest.fixture
def shared_data() -> Iterator[Path]:
    """The read-only real datasets beside the checkout; skips when they (or the part a test
    names with ``/``) are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} does not exist (only on dev machines)")
    yield _SharedData(SHARED_DATA)
