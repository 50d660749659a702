"""fetch() orchestration: cache reuse, splits, TOFU pins, offline, mirrors, URLs, generators, locks."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import time
import types
from pathlib import Path

import filelock
import pytest
import responses

from loaders import (
    ChecksumMismatchError,
    DownloadError,
    LockTimeoutError,
    OfflineError,
    RetryPolicy,
    StorageError,
    UnknownDatasetError,
    cache_root,
    dataset_dir,
    fetch,
    lock,
    registry,
)
from loaders.lock import lock_path
from loaders.manifest import MANIFEST_NAME, pinned_sha256
from loaders.registry import DatasetInfo, Resource

TRAIN = b"train-bytes " * 1000
TEST = b"test-bytes " * 900
BASE = "https://data.example/tiny/"
# The package attribute ``loaders.fetch`` is the function; the module lives in sys.modules.
fetch_module = importlib.import_module("loaders.fetch")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> DatasetInfo:
    """A registry entry with a hashed train file and an unhashed (TOFU) test file."""
    info = DatasetInfo(
        name="tiny", description="test entry", homepage="", license="",
        resources=(
            Resource("train.bin", urls=(BASE + "train.bin",), size_bytes=len(TRAIN),
                     sha256=_sha(TRAIN), split="train"),
            Resource("test.bin", urls=(BASE + "test.bin",), split="test"),
        ),
    )
    monkeypatch.setitem(registry.REGISTRY, "tiny", info)
    return info


def _serve(train: bytes = TRAIN, test: bytes = TEST) -> None:
    responses.add(responses.GET, BASE + "train.bin", body=train)
    responses.add(responses.GET, BASE + "test.bin", body=test)


@responses.activate
def test_fetch_downloads_into_dataset_dir_and_reuses_cache(tiny: DatasetInfo) -> None:
    _serve()
    folder = fetch("tiny")
    assert folder == cache_root() / "tiny" == dataset_dir("tiny")
    assert (folder / "train.bin").read_bytes() == TRAIN and (folder / "test.bin").read_bytes() == TEST
    assert fetch("tiny") == folder
    assert len(responses.calls) == 2  # the second call touched no network


@responses.activate
def test_fetch_root_argument_wins(tiny: DatasetInfo, tmp_path: Path) -> None:
    _serve()
    assert fetch("tiny", tmp_path / "home") == (tmp_path / "home" / "tiny").resolve()


@responses.activate
def test_fetch_split_fetches_only_that_split(tiny: DatasetInfo) -> None:
    _serve()
    folder = fetch("tiny", split="train")
    assert (folder / "train.bin").exists() and not (folder / "test.bin").exists()
    with pytest.raises(ValueError, match="split should be 'train', 'test' or None"):
        fetch("tiny", split="valid")


@responses.activate
def test_fetch_pins_first_download_and_refuses_a_changed_file(tiny: DatasetInfo) -> None:
    _serve()
    folder = fetch("tiny")
    assert pinned_sha256(folder, "test.bin") == _sha(TEST)
    assert json.loads((folder / MANIFEST_NAME).read_text())["files"]["test.bin"]["pinned"] is True
    (folder / "test.bin").unlink()
    responses.replace(responses.GET, BASE + "test.bin", body=b"tampered " * 100)
    with pytest.raises(DownloadError, match=f"expected sha256 {_sha(TEST)} but got"):
        fetch("tiny", split="test")
    assert not (folder / "test.bin").exists()


@responses.activate
def test_fetch_force_repins(tiny: DatasetInfo) -> None:
    _serve()
    folder = fetch("tiny", split="test")
    responses.replace(responses.GET, BASE + "test.bin", body=b"new version")
    fetch("tiny", split="test", force=True)
    assert pinned_sha256(folder, "test.bin") == _sha(b"new version")


@responses.activate
def test_fetch_redownloads_a_corrupted_cached_file(tiny: DatasetInfo) -> None:
    _serve()
    folder = fetch("tiny", split="train")
    (folder / "train.bin").write_bytes(b"x" * len(TRAIN))
    fetch("tiny", split="train")
    assert (folder / "train.bin").read_bytes() == TRAIN and len(responses.calls) == 2


def test_fetch_offline_says_what_to_place_where(tiny: DatasetInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OfflineError) as info:
        fetch("tiny", offline=True, split="train")
    message = str(info.value)
    target = dataset_dir("tiny") / "train.bin"
    assert str(target) in message and f"{len(TRAIN):,} bytes" in message and _sha(TRAIN) in message
    assert BASE + "train.bin" in message
    monkeypatch.setenv("DATAFERRY_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"offline mode is on.*drop offline=True / --offline\), "
                       r"or point mirror= / --mirror at a folder"):
        fetch("tiny", split="train")


def test_fetch_offline_uses_a_placed_file(tiny: DatasetInfo) -> None:
    target = dataset_dir("tiny") / "train.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(TRAIN)
    assert fetch("tiny", offline=True, split="train") == target.parent


def test_fetch_offline_keeps_a_placed_file_that_does_not_verify(tiny: DatasetInfo) -> None:
    target = dataset_dir("tiny") / "train.bin"
    target.parent.mkdir(parents=True)
    bad = b"y" * len(TRAIN)  # the right size, the wrong bytes: only the hash tells
    target.write_bytes(bad)
    with pytest.raises(ChecksumMismatchError) as info:
        fetch("tiny", offline=True, split="train")
    message = str(info.value)
    assert target.read_bytes() == bad  # left for the user to inspect, not deleted
    assert message.startswith(f"the file at {target} does not match: ")
    assert f"expected sha256 {_sha(TRAIN)} but got {_sha(bad)}" in message
    assert f"its size is {len(bad):,} bytes" in message and "replace it with a good copy" in message
    assert f"{len(TRAIN):,} bytes" in message and "not in the cache" not in message


def test_fetch_offline_local_mirror_still_replaces_a_bad_cached_file(
    tiny: DatasetInfo, tmp_path: Path
) -> None:
    mirror = tmp_path / "airgap"
    mirror.mkdir()
    (mirror / "train.bin").write_bytes(TRAIN)
    target = dataset_dir("tiny") / "train.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"y" * len(TRAIN))
    fetch("tiny", split="train", mirror=str(mirror), offline=True)
    assert target.read_bytes() == TRAIN


@responses.activate
def test_fetch_mirror_replaces_base_url(tiny: DatasetInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    responses.add(responses.GET, "https://mirror.example/m/train.bin", body=TRAIN)
    fetch("tiny", split="train", mirror="https://mirror.example/m/")
    assert responses.calls[0].request.url == "https://mirror.example/m/train.bin"
    monkeypatch.setenv("DATAFERRY_MIRROR", "https://mirror.example/m")
    fetch("tiny", split="train", force=True)
    assert responses.calls[1].request.url == "https://mirror.example/m/train.bin"


def test_fetch_local_folder_mirror_works_offline(tiny: DatasetInfo, tmp_path: Path) -> None:
    mirror = tmp_path / "airgap"
    mirror.mkdir()
    (mirror / "train.bin").write_bytes(TRAIN)
    folder = fetch("tiny", split="train", mirror=str(mirror), offline=True)
    assert (folder / "train.bin").read_bytes() == TRAIN


@responses.activate
def test_fetch_plain_url_with_sha256(tmp_path: Path) -> None:
    url = "https://files.example/some/file.csv"
    responses.add(responses.GET, url, body=TRAIN)
    path = fetch(url, tmp_path, sha256=_sha(TRAIN).upper())
    assert path.name == "file.csv" and path.read_bytes() == TRAIN
    assert path.parent.parent == tmp_path.resolve() / "urls"
    other = "https://files.example/other/file.csv"
    responses.add(responses.GET, other, body=TRAIN)
    with pytest.raises(DownloadError, match="expected md5 0{32}"):
        fetch(other, tmp_path, md5="0" * 32)


def test_fetch_unknown_name_and_bad_arguments() -> None:
    with pytest.raises(UnknownDatasetError, match="did you mean 'mnist'"):
        fetch("mnsit")
    with pytest.raises(ValueError, match="sha256/md5 apply to plain URLs only"):
        fetch("mnist", sha256="0" * 64)
    with pytest.raises(ValueError, match="count and seed only apply"):
        dataset_dir("mnist", count=3)


def test_dataset_dir_letters_naming(tmp_path: Path) -> None:
    assert dataset_dir("letters", tmp_path) == tmp_path.resolve() / "letters"
    assert dataset_dir("letters", tmp_path, count=20_000, seed=0).name == "letters"
    assert dataset_dir("letters", tmp_path, count=200).name == "letters-200-s0"
    assert dataset_dir("letters", tmp_path, seed=3).name == "letters-20000-s3"
    with pytest.raises(ValueError, match="count should be a positive int"):
        dataset_dir("letters", tmp_path, count=0)


@pytest.fixture
def fake_generator(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []

    def generate(out: Path, *, count: int = 20000, seed: int = 0, progress: bool = False) -> Path:
        calls.append((count, seed))
        Path(out).write_bytes(f"archive {count} {seed}".encode())
        return Path(out)

    module = types.ModuleType("loaders.letters")
    module.generate = generate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "loaders.letters", module)
    import loaders

    monkeypatch.setattr(loaders, "letters", module, raising=False)
    extracted: list[tuple[Path, Path, str]] = []
    monkeypatch.setattr(fetch_module, "_extract",
                        lambda archive, folder, digest, progress: extracted.append((archive, folder, digest)))
    return calls


def test_fetch_letters_generates_once_pins_and_extracts(fake_generator: list[tuple[int, int]]) -> None:
    folder = fetch("letters", count=200, offline=True)
    assert folder.name == "letters-200-s0"
    assert (folder / "letters.tar.gz").read_bytes() == b"archive 200 0"
    assert pinned_sha256(folder, "letters.tar.gz") == _sha(b"archive 200 0")
    fetch("letters", count=200)
    assert fake_generator == [(200, 0)]
    fetch("letters", count=200, force=True)
    assert fake_generator == [(200, 0), (200, 0)]


def test_fetch_extract_false_leaves_archive(fake_generator: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("extract called")

    monkeypatch.setattr(fetch_module, "_extract", refuse)
    folder = fetch("letters", seed=1, extract=False)
    assert (folder / "letters.tar.gz").exists()


def test_fetch_waits_for_the_lock_and_times_out_clearly(
    tiny: DatasetInfo, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "QUIET_WAIT_S", 0.05)
    folder = dataset_dir("tiny")
    folder.mkdir(parents=True)
    holder = filelock.FileLock(str(lock_path(folder / "train.bin")))
    with holder:
        with pytest.raises(LockTimeoutError, match=r"waited 0.1 s for the lock .*train.bin"):
            fetch("tiny", split="train", lock_timeout_s=0.1)
    waiting = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert waiting == [
        f"another process is fetching train.bin; waiting for it (up to 0.1 s, lock "
        f"{lock_path(folder / 'train.bin')})"
    ]


def _tar_gz(members: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@responses.activate
def test_fetch_extracts_archives_into_the_dataset_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("loaders.extract")
    blob = _tar_gz({"tiny_small/A/0.png": b"png-a", "tiny_small/B/0.png": b"png-b"})
    url = BASE + "tiny_small.tar.gz"
    monkeypatch.setitem(registry.REGISTRY, "tinyarc", DatasetInfo(
        name="tinyarc", description="", homepage="", license="",
        resources=(Resource("tiny_small.tar.gz", urls=(url,), sha256=_sha(blob),
                            archive="tar.gz", extract=True),),
    ))
    responses.add(responses.GET, url, body=blob)
    packed = fetch("tinyarc", extract=False)
    assert (packed / "tiny_small.tar.gz").exists() and not (packed / "tiny_small").exists()
    folder = fetch("tinyarc")
    assert (folder / "tiny_small" / "A" / "0.png").read_bytes() == b"png-a"
    assert fetch("tinyarc") == folder and len(responses.calls) == 1


@responses.activate
def test_fetch_force_keeps_the_old_file_when_the_new_download_fails(tiny: DatasetInfo) -> None:
    _serve()
    folder = fetch("tiny", split="test")
    responses.replace(responses.GET, BASE + "test.bin", status=404)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch("tiny", split="test", force=True)
    assert (folder / "test.bin").read_bytes() == TEST
    assert pinned_sha256(folder, "test.bin") == _sha(TEST)


@responses.activate
def test_fetch_url_of_a_web_page_is_allowed_to_be_html(tmp_path: Path) -> None:
    url = "https://files.example/docs/index.html"
    responses.add(responses.GET, url, body=b"<html>docs</html>", content_type="text/html")
    assert fetch(url, tmp_path).read_bytes() == b"<html>docs</html>"


def test_a_short_wait_for_a_lock_is_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import threading

    held = threading.Event()

    def hold_briefly() -> None:  # like another process updating a manifest
        with filelock.FileLock(str(lock_path(tmp_path / "f.bin"))):
            held.set()
            time.sleep(0.1)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    held.wait(5)
    started = time.monotonic()
    with lock.locked(tmp_path / "f.bin", timeout_s=5):
        waited_s = time.monotonic() - started
    holder.join()
    assert 0.02 < waited_s < lock.QUIET_WAIT_S
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


def _refuse_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the cache read-only as far as dataferry can tell (tests run as root: chmod won't)."""
    import errno
    import os

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(filelock.FileLock, "acquire", read_only)
    monkeypatch.setattr(os, "replace", read_only)


@responses.activate
def test_fetch_reads_a_verified_read_only_cache_without_locks(
    tiny: DatasetInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9.6: verified data in a read-only cache is served: no lock file, no write."""
    _serve()
    folder = fetch("tiny")
    url = "https://files.example/a/table.csv"
    responses.add(responses.GET, url, body=b"a,b\n")
    url_file = fetch(url, sha256=_sha(b"a,b\n"))
    before = sorted(p.name for p in folder.iterdir())
    _refuse_writes(monkeypatch)

    assert fetch("tiny") == folder
    assert fetch("tiny", offline=True) == folder
    assert fetch(url, sha256=_sha(b"a,b\n"), offline=True) == url_file
    assert sorted(p.name for p in folder.iterdir()) == before
    assert len(responses.calls) == 3


@responses.activate
def test_fetch_needing_a_write_in_a_read_only_cache_says_so(
    tiny: DatasetInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = dataset_dir("tiny")
    folder.mkdir(parents=True)
    _refuse_writes(monkeypatch)
    with pytest.raises(StorageError, match=r"cannot create the lock file .*\.train\.bin\.lock "
                       r"\(Read-only file system\) for fetching train.bin: .* is not writable"):
        fetch("tiny", split="train")


@pytest.mark.parametrize("kwargs", [{"sha256": "abc"}, {"sha256": "z" * 64}, {"md5": "0" * 31}])
def test_fetch_malformed_hash_is_a_value_error_before_any_work(kwargs: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"should be (64|32) hexadecimal digits, but got"):
        fetch("https://files.example/x.bin", tmp_path, **kwargs)
    assert not (tmp_path / "urls").exists()


@responses.activate
def test_fetch_cached_file_that_no_longer_verifies_stays_until_replaced(tiny: DatasetInfo) -> None:
    """Issue 9.2: never delete a cached copy before a verified replacement is in hand."""
    _serve()
    folder = fetch("tiny", split="train")
    (folder / "train.bin").write_bytes(TRAIN[:-1] + b"!")  # corrupted in place
    responses.replace(responses.GET, BASE + "train.bin", status=503)
    with pytest.raises(DownloadError, match="HTTP 503"):
        fetch("tiny", split="train", retry=RetryPolicy(attempts=1))
    assert (folder / "train.bin").read_bytes() == TRAIN[:-1] + b"!"  # still there to inspect
    responses.replace(responses.GET, BASE + "train.bin", body=TRAIN)
    fetch("tiny", split="train")
    assert (folder / "train.bin").read_bytes() == TRAIN


@pytest.mark.parametrize("name", ["dataferry-manifest.json", ".dataferry-manifest.json", "f.lock"])
def test_fetch_url_named_like_our_bookkeeping_is_a_value_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"the file name '{name}' is reserved"):
        fetch(f"https://files.example/{name}", tmp_path, lock_timeout_s=1)
