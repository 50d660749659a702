"""Downloads against a real loopback server that misbehaves on purpose, and CLI subprocesses."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from child_signals import default_sigint
from loopback_server import LoopbackServer, payload

from loaders import DownloadError, fetch, transfer
from loaders.transfer import RetryPolicy, download
from loaders.verify import Expected

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DATA = payload(3 * 1024 * 1024 + 123, seed=1)
SHA = hashlib.sha256(DATA).hexdigest()
GOOD = Expected(size_bytes=len(DATA), sha256=SHA)


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(transfer, "_sleep", waited.append)
    return waited


def _cli(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "loaders.download", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint, **kwargs,  # type: ignore[call-overload]
    )


def test_reset_connection_resumes_and_refetches_only_the_rest(
    loopback_server: LoopbackServer, tmp_path: Path
) -> None:
    url = loopback_server.serve("/data.bin", DATA, reset_after=[1_000_000])
    target = tmp_path / "data.bin"
    assert download([url], target, expected=GOOD) == SHA
    assert target.read_bytes() == DATA
    stats = loopback_server.stats("/data.bin")
    assert stats.ranges == [None, "bytes=1000000-"]
    assert stats.statuses == [200, 206]
    assert stats.body_bytes == len(DATA)  # not one byte fetched twice


def test_503_then_200_with_retry_after(
    loopback_server: LoopbackServer, tmp_path: Path, _fast_backoff: list[float]
) -> None:
    url = loopback_server.serve("/data.bin", DATA, statuses=[503, 503], retry_after="2")
    assert download([url], tmp_path / "data.bin", expected=GOOD) == SHA
    assert loopback_server.stats("/data.bin").statuses == [503, 503, 200]
    assert _fast_backoff == [2.0, 2.0]


def test_server_ignoring_range_starts_over(loopback_server: LoopbackServer, tmp_path: Path) -> None:
    url = loopback_server.serve("/data.bin", DATA, reset_after=[500_000], ignore_range=True)
    assert download([url], tmp_path / "data.bin", expected=GOOD) == SHA
    stats = loopback_server.stats("/data.bin")
    assert stats.statuses == [200, 200] and stats.ranges[1] == "bytes=500000-"
    assert stats.body_bytes == 500_000 + len(DATA)


def test_wrong_bytes_fall_back_to_next_mirror(loopback_server: LoopbackServer, tmp_path: Path) -> None:
    bad = loopback_server.serve("/bad/data.bin", DATA, wrong_bytes=True)
    good = loopback_server.serve("/good/data.bin", DATA)
    assert download([bad, good], tmp_path / "data.bin", expected=GOOD) == SHA


def test_wrong_bytes_everywhere_fail_and_leave_nothing(loopback_server: LoopbackServer, tmp_path: Path) -> None:
    bad = loopback_server.serve("/bad/data.bin", DATA, wrong_bytes=True)
    gone = loopback_server.base_url + "/missing.bin"
    with pytest.raises(DownloadError) as info:
        download([bad, gone], tmp_path / "data.bin", expected=GOOD)
    message = str(info.value)
    assert "Deleted download for safety" in message and f"{gone} (HTTP 404" in message
    assert list(tmp_path.iterdir()) == []


def test_html_page_falls_back(loopback_server: LoopbackServer, tmp_path: Path) -> None:
    portal = loopback_server.serve("/portal", b"<html><body>Log in to Wi-Fi</body></html>",
                                   content_type="text/html; charset=utf-8")
    good = loopback_server.serve("/good/data.bin", DATA)
    assert download([portal, good], tmp_path / "data.bin", expected=GOOD) == SHA


def test_fetch_url_with_tofu_through_the_server(loopback_server: LoopbackServer, tmp_path: Path) -> None:
    url = loopback_server.serve("/file.csv", b"a,b\n1,2\n")
    path = fetch(url, tmp_path)
    assert path.read_bytes() == b"a,b\n1,2\n"
    assert fetch(url, tmp_path) == path
    assert loopback_server.stats("/file.csv").requests == 1


def _wait_for(predicate: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_sigint_then_rerun_resumes(loopback_server: LoopbackServer, tmp_path: Path) -> None:
    url = loopback_server.serve("/big.bin", DATA, delay_s=0.05)
    root = tmp_path / "home"
    args = (url, "--sha256", SHA, "--root", str(root), "-q")
    first = _cli(*args)
    parts: list[Path] = []

    def part_has_bytes() -> bool:
        parts[:] = [p for p in root.rglob("big.bin.part") if p.stat().st_size >= 1 << 20]
        return bool(parts)

    try:
        _wait_for(part_has_bytes)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=20)
    finally:
        first.kill()
    assert first.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted; what was downloaded is kept: run "
                                                   "the same command to resume: python -m loaders.download http")
    kept = parts[0].stat().st_size
    assert kept >= 1 << 20
    loopback_server.behaviours["/big.bin"].delay_s = 0.0
    second = _cli(*args)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert Path(out.strip()).read_bytes() == DATA
    stats = loopback_server.stats("/big.bin")
    assert stats.ranges[-1] == f"bytes={kept}-" and stats.statuses[-1] == 206


def test_two_processes_one_download(loopback_server: LoopbackServer, tmp_path: Path) -> None:
    url = loopback_server.serve("/shared.bin", DATA, delay_s=0.03)
    args = (url, "--sha256", SHA, "--root", str(tmp_path / "home"), "-q")
    procs = [_cli(*args), _cli(*args)]
    results = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    assert results[0][0] == results[1][0]
    assert Path(results[0][0].strip()).read_bytes() == DATA
    assert loopback_server.stats("/shared.bin").requests == 1


def test_letters_cli_offline_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "DATAFERRY_OFFLINE": "1", "DATAFERRY_HOME": str(tmp_path / "home")}
    proc = _cli("letters", "--count", "200", env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    folder = Path(out.strip())
    assert folder == (tmp_path / "home" / "letters-200-s0").resolve()
    pngs = sorted((folder / "letters").glob("*/*.png"))
    assert len(pngs) == 200 and {p.parent.name for p in pngs} == set("ABCDEFGHIJ")


def test_retry_policy_timeouts_reach_a_silent_server(tmp_path: Path) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection, never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x.bin"
    try:
        started = time.monotonic()
        with pytest.raises(DownloadError, match="gave up after 2 attempts"):
            download([url], tmp_path / "x.bin", retry=RetryPolicy(attempts=2, read_timeout_s=0.3))
        assert time.monotonic() - started < 10
    finally:
        listener.close()


@pytest.mark.parametrize(("flags", "warned"), [(("-q",), False), ((), True)])
def test_cli_quiet_hides_retry_warnings(
    loopback_server: LoopbackServer, tmp_path: Path, flags: tuple[str, ...], warned: bool
) -> None:
    url = loopback_server.serve("/flaky.bin", DATA, statuses=[503], retry_after="0")
    proc = _cli(url, "--sha256", SHA, "--root", str(tmp_path / "home"), *flags)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert Path(out.strip()).read_bytes() == DATA
    assert ("WARNING:" in err and "HTTP 503" in err and "retry 1/" in err) == warned, err
    if not warned:
        assert err == ""


def test_refused_connection_is_retried_and_named_with_its_port(
    tmp_path: Path, _fast_backoff: list[float]
) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.bin"
    with pytest.raises(DownloadError) as info:
        download([url], tmp_path / "x.bin", retry=RetryPolicy(attempts=2))
    assert f"{url} (cannot connect to 127.0.0.1:{port} (Connection refused); gave up after 2 attempts)" in str(
        info.value
    )
    assert len(_fast_backoff) == 1 and "looks offline" not in str(info.value)


def test_list_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """``--list | head -1``: exit 141 as under SIGPIPE, no ``error:`` line, no traceback."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the reader is gone before the first write
    try:
        run = subprocess.run([sys.executable, "-m", "loaders.download", "--list"], cwd=REPO,
                             stdout=write_fd, stderr=subprocess.PIPE, text=True, timeout=60,
                             env={**os.environ, "DATAFERRY_HOME": str(tmp_path / "home")})
    finally:
        os.close(write_fd)
    assert (run.returncode, run.stderr) == (141, "")


def test_changed_file_behind_a_server_ignoring_if_range_is_not_spliced(
    loopback_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9.1: cut, then the file and its ETag change and If-Range is ignored: start over."""
    new = payload(len(DATA), seed=2)
    url = loopback_server.serve("/moving.bin", DATA, reset_after=[1_000_000])

    def file_changes_meanwhile(seconds: float) -> None:
        behaviour = loopback_server.behaviours["/moving.bin"]
        behaviour.data, behaviour.etag, behaviour.ignore_if_range = new, '"v2"', True

    monkeypatch.setattr(transfer, "_sleep", file_changes_meanwhile)
    target = tmp_path / "moving.bin"
    assert download([url], target) == hashlib.sha256(new).hexdigest()  # no hash: TOFU
    assert target.read_bytes() == new
    stats = loopback_server.stats("/moving.bin")
    assert stats.ranges[1] == "bytes=1000000-" and stats.statuses == [200, 206, 200]
    assert not (tmp_path / ".moving.bin.part.json").exists()


def test_trickling_server_counts_as_a_failed_attempt_and_resumes(
    loopback_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9.11: a body that trickles is cut by the stall rule and resumed with Range."""
    url = loopback_server.serve("/slow.bin", DATA, chunk_bytes=8, delay_s=0.05)
    waits: list[float] = []

    def server_recovers(seconds: float) -> None:
        waits.append(seconds)
        loopback_server.behaviours["/slow.bin"].delay_s = 0.0
        loopback_server.behaviours["/slow.bin"].chunk_bytes = 64 * 1024

    monkeypatch.setattr(transfer, "_sleep", server_recovers)
    policy = RetryPolicy(stall_bytes=1024, stall_window_s=0.5)
    started = time.monotonic()
    assert download([url], tmp_path / "slow.bin", expected=GOOD, retry=policy) == SHA
    assert time.monotonic() - started < 10 and len(waits) == 1
    stats = loopback_server.stats("/slow.bin")
    assert stats.ranges[0] is None and stats.ranges[1] is not None and stats.ranges[1].startswith("bytes=")
    assert stats.statuses == [200, 206]


def test_trickling_server_everywhere_fails_naming_the_stall_rule(
    loopback_server: LoopbackServer, tmp_path: Path
) -> None:
    url = loopback_server.serve("/slow.bin", DATA, chunk_bytes=8, delay_s=0.05)
    policy = RetryPolicy(attempts=2, stall_bytes=1024, stall_window_s=0.3)
    with pytest.raises(DownloadError, match=r"stalled after [\d,]+ bytes: only [\d,]+ bytes in 0\.\d s "
                       r"\(the stall rule wants 1,024 bytes per 0.3 s"):
        download([url], tmp_path / "slow.bin", expected=GOOD, retry=policy)


def _read_only_run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``home`` bind-mounted read-only (a real EROFS, even as root)."""
    script = f'mount --bind -o ro "{home}" "{home}" && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m",
                           "loaders.download", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_verified_read_only_cache_serves_fetch_offline_and_verify(
    loopback_server: LoopbackServer, tmp_path: Path
) -> None:
    """Issue 9.6 for real: a read-only mount of a verified cache (URL file, letters archive)."""
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind -o ro {tmp_path} {tmp_path} "
                            f"&& ! touch {tmp_path}/probe"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespace or read-only bind mount on this machine")
    home = tmp_path / "home"
    url = loopback_server.serve("/ro.bin", DATA)
    for args in ((url, "--sha256", SHA), ("letters", "--count", "200")):
        proc = _cli(*args, "--root", str(home), "-q", env={**os.environ, "DATAFERRY_OFFLINE": ""})
        assert proc.communicate(timeout=120)[0] and proc.returncode == 0
    before = sorted(str(p) for p in home.rglob("*"))
    for args in ((url, "--sha256", SHA), (url, "--sha256", SHA, "--offline"),
                 ("letters", "--count", "200", "--offline"), ("--verify", "letters", "--count", "200")):
        run = _read_only_run(home, *args, "--root", str(home), "-q")
        assert (run.returncode, run.stderr) == (0, ""), args
    assert sorted(str(p) for p in home.rglob("*")) == before
    assert loopback_server.stats("/ro.bin").requests == 1
