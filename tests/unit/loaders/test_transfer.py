"""One resource from an ordered list of URLs, with `responses` standing in for the servers."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
from pathlib import Path

import pytest
import requests
import responses
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from responses import Call

from loaders import DownloadError, StorageError, stream, transfer
from loaders.partfile import PartFile
from loaders.retry import retry_after_s
from loaders.transfer import RetryPolicy, download
from loaders.verify import Expected

DATA = bytes(range(256)) * 400  # 102,400 bytes
SHA = hashlib.sha256(DATA).hexdigest()
URL = "https://a.example/data.tar.gz"
URL2 = "https://b.example/data.tar.gz"
GOOD = Expected(size_bytes=len(DATA), sha256=SHA)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(transfer, "_sleep", waited.append)
    return waited


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "data.tar.gz"


def _serve_ranges(url: str, data: bytes, *, etag: str = '"v1"', seen: list[dict] | None = None) -> None:
    """A server that honours Range (and If-Range against its ETag)."""

    def callback(request: requests.PreparedRequest) -> tuple[int, dict, bytes]:
        if seen is not None:
            seen.append(dict(request.headers))
        wanted = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if wanted and (if_range is None or if_range == etag):
            assert isinstance(wanted, str)
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                return 416, {"Content-Range": f"bytes */{len(data)}"}, b""
            body = data[start:]
            return 206, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}", "ETag": etag}, body
        return 200, {"ETag": etag}, data

    responses.add_callback(responses.GET, url, callback=callback)


def _sidecar(target: Path, *, url: str = URL, etag: str | None = '"v1"', total: int | None = len(DATA)) -> None:
    """Write the validator a cut download leaves beside its part."""
    meta = {"url": url, "etag": etag, "last_modified": None, "total_bytes": total}
    target.with_name(f".{target.name}.part.json").write_text(json.dumps(meta))


def _status(call: Call) -> int:
    assert isinstance(call.response, requests.Response)
    return call.response.status_code


@responses.activate
def test_download_streams_verifies_and_renames(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, body=DATA)
    assert download([URL], target, expected=GOOD) == SHA
    assert target.read_bytes() == DATA
    assert not target.with_name(target.name + ".part").exists()
    assert responses.calls[0].request.headers["Accept-Encoding"] == "identity"
    assert sleeps == []


@responses.activate
def test_download_retries_5xx_with_exponential_backoff(target: Path, sleeps: list[float]) -> None:
    for _ in range(3):
        responses.add(responses.GET, URL, status=503)
    responses.add(responses.GET, URL, body=DATA)
    download([URL], target, expected=GOOD, retry=RetryPolicy(attempts=4, backoff_s=1.0))
    assert len(sleeps) == 3
    assert 1.0 <= sleeps[0] <= 1.5 and 2.0 <= sleeps[1] <= 3.0 and 4.0 <= sleeps[2] <= 6.0


@responses.activate
def test_download_honours_retry_after(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, status=429, headers={"Retry-After": "7"})
    responses.add(responses.GET, URL, body=DATA)
    download([URL], target, expected=GOOD)
    assert sleeps == [7.0]


@responses.activate
def test_download_retries_connection_errors_then_gives_up_to_next_mirror(
    target: Path, sleeps: list[float]
) -> None:
    responses.add(responses.GET, URL, body=requests.ConnectionError("connection refused"))
    responses.add(responses.GET, URL2, body=DATA)
    download([URL, URL2], target, expected=GOOD, retry=RetryPolicy(attempts=3))
    assert len(sleeps) == 2
    assert [c.request.url for c in responses.calls] == [URL, URL, URL, URL2]


def _dns_failure(host: str) -> requests.ConnectionError:
    """What requests raises when a host name does not resolve (urllib3 2's exception chain)."""
    reason = urllib3.exceptions.NameResolutionError(
        host, None, socket.gaierror(socket.EAI_NONAME, "Name or service not known")  # type: ignore[arg-type]
    )
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, f"https://{host}/", reason))  # type: ignore[arg-type]


@responses.activate
def test_download_unresolvable_host_moves_to_next_mirror_without_retrying(
    target: Path, sleeps: list[float]
) -> None:
    responses.add(responses.GET, URL, body=_dns_failure("a.example"))
    responses.add(responses.GET, URL2, body=DATA)
    assert download([URL, URL2], target, expected=GOOD, retry=RetryPolicy(attempts=4)) == SHA
    assert sleeps == [] and [c.request.url for c in responses.calls] == [URL, URL2]


@responses.activate
def test_download_no_network_fails_fast_naming_every_url_and_the_offline_options(
    target: Path, sleeps: list[float]
) -> None:
    unreachable = requests.ConnectionError(OSError(errno.ENETUNREACH, "Network is unreachable"))
    responses.add(responses.GET, URL, body=_dns_failure("a.example"))
    responses.add(responses.GET, URL2, body=unreachable)
    with pytest.raises(DownloadError) as info:
        download([URL, URL2], target, expected=GOOD, retry=RetryPolicy(attempts=4))
    message = str(info.value)
    assert sleeps == [] and len(responses.calls) == 2
    assert f"{URL} (cannot resolve host a.example (Name or service not known))" in message
    assert f"{URL2} (cannot reach host b.example (Network is unreachable))" in message
    assert "looks offline" in message and "--mirror" in message and "--offline" in message
    assert "mirror=FOLDER / --mirror FOLDER" in message and "offline=True / --offline" in message
    assert SHA in message and str(target) in message


@responses.activate
def test_download_unreachable_proxy_is_named_as_the_proxy(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, body=requests.exceptions.ProxyError(_dns_failure("proxy.corp")))
    with pytest.raises(DownloadError, match=r"cannot resolve host the proxy for a\.example \(check HTTPS_PROXY"):
        download([URL], target, expected=GOOD)
    assert sleeps == []


@responses.activate
def test_download_failure_message_is_not_offline_when_a_host_answered(
    target: Path, sleeps: list[float]
) -> None:
    responses.add(responses.GET, URL, body=_dns_failure("a.example"))
    responses.add(responses.GET, URL2, status=404)
    with pytest.raises(DownloadError, match=r"from any of its 2 URL\(s\).*HTTP 404") as info:
        download([URL, URL2], target, expected=GOOD)
    assert "looks offline" not in str(info.value)


@responses.activate
def test_download_connection_refused_is_retried_with_a_short_reason(
    target: Path, sleeps: list[float]
) -> None:
    refused = requests.ConnectionError(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    responses.add(responses.GET, URL, body=refused)
    with pytest.raises(DownloadError, match=r"cannot connect to a\.example \(Connection refused\); gave up after 2"):
        download([URL], target, expected=GOOD, retry=RetryPolicy(attempts=2))
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (requests.ConnectTimeout("slow"), "no connection to a.example:8443 within 10 s"),
        (requests.ReadTimeout("silent"), "a.example:8443 sent nothing for 60 s"),
        (requests.ConnectionError(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")),
         "cannot connect to a.example:8443 (Connection reset by peer)"),
    ],
)
@responses.activate
def test_download_timeouts_and_resets_are_retried_with_the_host_and_port(
    target: Path, sleeps: list[float], error: Exception, reason: str
) -> None:
    url = "https://a.example:8443/data.tar.gz"
    responses.add(responses.GET, url, body=error)
    with pytest.raises(DownloadError, match=f"{re.escape(reason)}; gave up after 3 attempts"):
        download([url], target, expected=GOOD, retry=RetryPolicy(attempts=3))
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [403, 404, 410])
@responses.activate
def test_download_gone_moves_to_next_mirror_at_once(target: Path, sleeps: list[float], status: int) -> None:
    responses.add(responses.GET, URL, status=status)
    responses.add(responses.GET, URL2, body=DATA)
    download([URL, URL2], target, expected=GOOD)
    assert sleeps == [] and len(responses.calls) == 2


@responses.activate
def test_download_html_page_moves_to_next_mirror(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, body=b"<!DOCTYPE html><html>Sign in</html>",
                  content_type="text/html")
    responses.add(responses.GET, URL2, body=DATA)
    download([URL, URL2], target, expected=Expected(sha256=SHA))
    assert target.read_bytes() == DATA and sleeps == []


@responses.activate
def test_download_checksum_mismatch_deletes_and_lists_every_url(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, body=DATA[:-1] + b"x")
    responses.add(responses.GET, URL2, status=404)
    with pytest.raises(DownloadError) as info:
        download([URL, URL2], target, expected=GOOD)
    message = str(info.value)
    assert f"expected sha256 {SHA} but got" in message and "Deleted download for safety" in message
    assert URL in message and f"{URL2} (HTTP 404" in message and str(target) in message
    assert not target.exists() and not target.with_name(target.name + ".part").exists()


@responses.activate
def test_download_wrong_announced_size_moves_on(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, body=DATA + b"extra")
    responses.add(responses.GET, URL2, body=DATA)
    download([URL, URL2], target, expected=GOOD)
    assert target.read_bytes() == DATA


@responses.activate
def test_download_refuses_https_to_http_redirect(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, status=302, headers={"Location": "http://a.example/plain"})
    responses.add(responses.GET, "http://a.example/plain", body=DATA)
    with pytest.raises(DownloadError, match="refused a redirect from https to http://a.example/plain"):
        download([URL], target, expected=GOOD)
    assert len(responses.calls) == 1


@responses.activate
def test_download_takes_an_explicitly_listed_http_mirror(target: Path, sleeps: list[float]) -> None:
    # Not a downgrade: the registry lists the original http mirror itself, and its bytes must
    # still match the published size and sha256 before they are used.
    plain = "http://mirror.example/data.tar.gz"
    responses.add(responses.GET, URL, status=404)
    responses.add(responses.GET, plain, body=DATA)
    assert download([URL, plain], target, expected=GOOD) == SHA
    responses.replace(responses.GET, plain, body=DATA[:-1] + b"!")
    with pytest.raises(DownloadError, match=f"{plain} .*expected sha256 {SHA}"):
        download([plain], target.with_name("again.tar.gz"), expected=GOOD)


@responses.activate
def test_download_follows_https_redirect(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, status=301, headers={"Location": "/moved/data.tar.gz"})
    responses.add(responses.GET, "https://a.example/moved/data.tar.gz", body=DATA)
    assert download([URL], target, expected=GOOD) == SHA


@responses.activate
def test_download_resumes_part_with_range_and_if_range(target: Path, sleeps: list[float]) -> None:
    part = target.with_name(target.name + ".part")
    part.write_bytes(DATA[:40_000])
    target.with_name(f".{target.name}.part.json").write_text(f'{{"url": "{URL}", "etag": "\\"v1\\""}}')
    seen: list[dict] = []
    _serve_ranges(URL, DATA, seen=seen)
    assert download([URL], target, expected=GOOD) == SHA
    assert seen[0]["Range"] == "bytes=40000-" and seen[0]["If-Range"] == '"v1"'
    assert target.read_bytes() == DATA


@responses.activate
def test_download_200_to_a_range_request_starts_over(target: Path, sleeps: list[float]) -> None:
    target.with_name(target.name + ".part").write_bytes(b"garbage" * 1000)
    _sidecar(target)
    responses.add(responses.GET, URL, body=DATA)  # ignores Range
    assert download([URL], target, expected=GOOD) == SHA
    assert responses.calls[0].request.headers["Range"] == "bytes=7000-"
    assert target.read_bytes() == DATA


@responses.activate
def test_download_206_with_wrong_content_range_is_not_appended(target: Path, sleeps: list[float]) -> None:
    target.with_name(target.name + ".part").write_bytes(DATA[:1000])
    responses.add(responses.GET, URL, status=206, body=DATA[500:],
                  headers={"Content-Range": f"bytes 500-{len(DATA) - 1}/{len(DATA)}"})
    responses.add(responses.GET, URL, body=DATA)
    assert download([URL], target, expected=GOOD) == SHA
    assert "Range" not in responses.calls[1].request.headers  # the part was dropped


@responses.activate
def test_download_416_reverifies_a_complete_part(target: Path, sleeps: list[float]) -> None:
    target.with_name(target.name + ".part").write_bytes(DATA)
    _sidecar(target)
    _serve_ranges(URL, DATA)
    assert download([URL], target, expected=GOOD) == SHA
    assert _status(responses.calls[0]) == 416 and len(responses.calls) == 1


@responses.activate
def test_download_truncated_body_is_resumed(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, body=DATA[:30_000], headers={"Content-Length": str(len(DATA)), "ETag": '"v1"'},
                  auto_calculate_content_length=False)
    _serve_ranges(URL, DATA)
    assert download([URL], target, expected=GOOD) == SHA
    assert responses.calls[1].request.headers["Range"] == "bytes=30000-"
    assert len(sleeps) == 1


@responses.activate
def test_download_without_hash_accepts_any_file(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, body=DATA)
    assert download([URL], target) == SHA


def test_download_copies_from_a_local_mirror(tmp_path: Path, target: Path) -> None:
    source = tmp_path / "mirror" / "data.tar.gz"
    source.parent.mkdir()
    source.write_bytes(DATA)
    assert download([str(source)], target, expected=GOOD) == SHA
    target.unlink()
    assert download([source.as_uri()], target, expected=GOOD) == SHA


def test_download_missing_file_in_a_mirror_folder_says_where_to_put_it(tmp_path: Path, target: Path) -> None:
    with pytest.raises(DownloadError, match="could not copy data.tar.gz from the mirror folder") as info:
        download([str(tmp_path / "mirror" / "data.tar.gz")], target, expected=GOOD)
    assert f"no such file {tmp_path / 'mirror' / 'data.tar.gz'}" in str(info.value)
    assert "Check the network" not in str(info.value) and SHA in str(info.value)


def test_download_local_mirror_bad_file_is_refused(tmp_path: Path, target: Path) -> None:
    source = tmp_path / "data.tar.gz"
    source.write_bytes(DATA[:-1])
    with pytest.raises(DownloadError, match="expected 102,400 bytes but got 102,399"):
        download([str(source)], target, expected=GOOD)
    with pytest.raises(DownloadError, match="no such file"):
        download([str(tmp_path / "absent")], target, expected=GOOD)


def test_retry_policy_backoff_is_capped() -> None:
    policy = RetryPolicy(backoff_s=10, backoff_max_s=15)
    assert policy.backoff(5) == 15 and policy.backoff(0, retry_after_s=100) == 15
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_s("soon") is None


@responses.activate
def test_download_206_to_a_plain_get_is_never_the_whole_file(target: Path, sleeps: list[float]) -> None:
    half = len(DATA) // 2
    responses.add(responses.GET, URL, status=206, body=DATA[:half],
                  headers={"Content-Range": f"bytes 0-{half - 1}/{len(DATA)}"})
    responses.add(responses.GET, URL, body=DATA)
    assert download([URL], target) == SHA  # no hash known: the half must not be pinned
    assert "Range" not in responses.calls[0].request.headers
    assert [_status(c) for c in responses.calls] == [206, 200] and target.read_bytes() == DATA


@responses.activate
def test_download_only_206_to_plain_gets_fails_and_keeps_nothing(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, status=206, body=DATA,
                  headers={"Content-Range": f"bytes 0-{len(DATA) - 1}/{len(DATA)}"})
    with pytest.raises(DownloadError, match="a part is never taken for the whole file"):
        download([URL], target, retry=RetryPolicy(attempts=2))
    assert not target.exists()


@responses.activate
def test_download_unexpected_status_moves_on(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, status=204)
    responses.add(responses.GET, URL2, body=DATA)
    download([URL, URL2], target, expected=GOOD)
    assert sleeps == []


@responses.activate
def test_download_tls_error_moves_on_without_retry(target: Path, sleeps: list[float]) -> None:
    responses.add(responses.GET, URL, body=requests.exceptions.SSLError("certificate verify failed"))
    responses.add(responses.GET, URL2, body=DATA)
    download([URL, URL2], target, expected=GOOD)
    assert sleeps == [] and len(responses.calls) == 2


@responses.activate
def test_download_416_with_a_corrupt_part_starts_over_on_the_same_url(
    target: Path, sleeps: list[float]
) -> None:
    target.with_name(target.name + ".part").write_bytes(b"\0" * len(DATA))
    _sidecar(target)
    _serve_ranges(URL, DATA)
    assert download([URL], target, expected=GOOD) == SHA
    assert [_status(c) for c in responses.calls] == [416, 200]


@responses.activate
def test_download_part_longer_than_the_file_is_dropped(target: Path, sleeps: list[float]) -> None:
    target.with_name(target.name + ".part").write_bytes(DATA + b"tail")
    responses.add(responses.GET, URL, body=DATA)
    assert download([URL], target, expected=GOOD) == SHA
    assert "Range" not in responses.calls[0].request.headers


@responses.activate
def test_download_disk_full_is_a_storage_error_naming_the_part(
    target: Path, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    responses.add(responses.GET, URL, body=DATA)

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stream.os, "write", disk_full)
    monkeypatch.setattr(stream.os, "writev", disk_full)
    with pytest.raises(StorageError, match=r"No space left on device: '.*data.tar.gz.part'; check free space") as info:
        download([URL], target, expected=GOOD)
    assert info.value.errno == errno.ENOSPC and not target.exists()


@responses.activate
def test_download_failing_fsync_is_a_storage_error(
    target: Path, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    responses.add(responses.GET, URL, body=DATA)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transfer, "_sync", disk_full)
    with pytest.raises(StorageError, match=r"No space left on device; check free space"):
        download([URL], target, expected=GOOD)


@responses.activate
def test_download_keeps_a_gz_served_with_content_encoding_gzip_as_sent(target: Path, sleeps: list[float]) -> None:
    import gzip

    blob = gzip.compress(DATA, mtime=0)
    responses.add(responses.GET, URL, body=blob, headers={"Content-Encoding": "gzip"})
    assert download([URL], target, expected=Expected(sha256=hashlib.sha256(blob).hexdigest())) == hashlib.sha256(blob).hexdigest()
    assert target.read_bytes() == blob


@responses.activate
def test_download_resume_without_a_validator_starts_over(target: Path, sleeps: list[float]) -> None:
    """Issue 9.1: a part with no stored validator cannot be checked against the server's file."""
    target.with_name(target.name + ".part").write_bytes(DATA[:40_000])
    _serve_ranges(URL, DATA)
    assert download([URL], target, expected=GOOD) == SHA
    assert "Range" not in responses.calls[0].request.headers


@pytest.mark.parametrize(("etag", "content_range"), [
    ('"v2"', f"bytes 40000-{len(DATA) - 1}/{len(DATA)}"),        # another version
    ('"v1"', f"bytes 40000-{len(DATA) - 2}/{len(DATA) - 1}"),    # another total
    ('"v1"', f"bytes 40000-50000/{len(DATA)}"),                  # not to the end
    ('"v1"', None),                                              # no Content-Range
])
@responses.activate
def test_download_206_that_does_not_continue_the_part_starts_over(
    target: Path, sleeps: list[float], etag: str, content_range: str | None
) -> None:
    target.with_name(target.name + ".part").write_bytes(DATA[:40_000])
    _sidecar(target)
    headers = {"ETag": etag} | ({"Content-Range": content_range} if content_range else {})
    responses.add(responses.GET, URL, status=206, body=b"x" * 1000, headers=headers)
    responses.add(responses.GET, URL, body=DATA, headers={"ETag": '"v1"'})
    assert download([URL], target) == SHA  # no hash: only the rule stands between us and a splice
    assert "Range" not in responses.calls[1].request.headers
    assert target.read_bytes() == DATA


@pytest.mark.fuzz
@given(raw=st.binary(max_size=200) | st.text(max_size=120).map(str.encode))
def test_fuzz_part_sidecar_gives_a_validator_or_none(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    target = tmp_path_factory.mktemp("part") / "data.bin"
    target.with_name(".data.bin.part.json").write_bytes(raw)
    stored = PartFile(target).load(URL)
    assert stored is None or (stored.url == URL and isinstance(stored.if_range, str))


def test_stall_rule_counts_bytes_per_window() -> None:
    from loaders.connection import Transient
    from loaders.stream import Stall

    now = [0.0]
    stall = Stall(RetryPolicy(stall_bytes=1024, stall_window_s=30), clock=lambda: now[0])
    for _ in range(29):  # 1 byte a second: nothing to say until the window is over
        now[0] += 1
        stall.add(1, 0)
    now[0] += 1
    with pytest.raises(Transient, match=r"stalled after 5 bytes: only 30 bytes in 30 s"):
        stall.add(1, 5)
    fast = Stall(RetryPolicy(stall_bytes=1024, stall_window_s=30), clock=lambda: now[0])
    for _ in range(100):  # 2 KiB per 30 s window is no stall
        now[0] += 1
        fast.add(70, 0)


@pytest.mark.parametrize("write_on_thread", [True, False])
def test_sink_writes_and_hashes_in_order_either_way(tmp_path: Path, write_on_thread: bool) -> None:
    from loaders.stream import Sink

    path = tmp_path / "out.part"
    hashers = {"sha256": hashlib.sha256()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        sink = Sink(fd, path, hashers, write_on_thread=write_on_thread)
        for start in range(0, len(DATA), 3000):
            sink.put([DATA[start:start + 1000], DATA[start + 1000:start + 3000]])
        sink.finish()
    finally:
        os.close(fd)
    assert path.read_bytes() == DATA and hashers["sha256"].hexdigest() == SHA


def test_retry_is_the_keyword_and_policy_its_deprecated_name(tmp_path: Path) -> None:
    import loaders

    with pytest.raises(TypeError, match=r"download\(\) got retry= and policy=; pass only retry="):
        download([URL], tmp_path / "x", retry=RetryPolicy(), policy=RetryPolicy())
    with pytest.raises(TypeError, match=r"fetch\(\) got retry= and policy="):
        loaders.fetch("letters", tmp_path, retry=RetryPolicy(), policy=RetryPolicy())
    with pytest.warns(DeprecationWarning, match=r"fetch\(policy=...\) is deprecated: the keyword "
                      "is retry="):
        loaders.fetch("letters", tmp_path, count=20, policy=RetryPolicy())
