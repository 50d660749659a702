"""Hashing and verification, including the re-gzipped IDX case and TOFU records."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loaders import ChecksumMismatchError, manifest
from loaders.registry import get
from loaders.verify import Expected, check_file, gunzip_sha256, hash_file

PAYLOAD = bytes(range(256)) * 64


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(PAYLOAD)
    return path


def test_hash_file_matches_hashlib(plain: Path) -> None:
    got = hash_file(plain, ("sha256", "md5"))
    assert got == {"sha256": hashlib.sha256(PAYLOAD).hexdigest(), "md5": hashlib.md5(PAYLOAD).hexdigest()}


def test_check_file_accepts_matching_and_returns_sha256(plain: Path) -> None:
    expected = Expected(size_bytes=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest().upper(),
                        md5=hashlib.md5(PAYLOAD).hexdigest())
    assert check_file(plain, expected) == hashlib.sha256(PAYLOAD).hexdigest()


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (Expected(size_bytes=5), "expected 5 bytes but got 16,384 bytes"),
        (Expected(sha256="0" * 64), "expected sha256 0{64} but got"),
        (Expected(md5="0" * 32), "expected md5 0{32} but got"),
    ],
)
def test_check_file_mismatch_names_both_values(plain: Path, expected: Expected, message: str) -> None:
    with pytest.raises(ChecksumMismatchError, match=message):
        check_file(plain, expected)
    assert plain.exists()  # the caller decides what to delete


def _regzipped(tmp_path: Path, content: bytes) -> tuple[Path, str]:
    original = gzip.compress(content, compresslevel=9, mtime=0)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))
    return path, hashlib.md5(original).hexdigest()


def test_check_file_accepts_recompressed_gz_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, md5 = _regzipped(tmp_path, PAYLOAD)
    expected = Expected(md5=md5, content_sha256=hashlib.sha256(PAYLOAD).hexdigest())
    with caplog.at_level(logging.WARNING, logger="loaders.verify"):
        check_file(path, expected)
    assert "decompressed content matches" in caplog.text


def test_check_file_strict_refuses_recompressed_gz_and_says_content_matches(tmp_path: Path) -> None:
    path, md5 = _regzipped(tmp_path, PAYLOAD)
    expected = Expected(md5=md5, content_sha256=hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(ChecksumMismatchError, match="decompressed content matches the canonical"):
        check_file(path, expected, allow_recompressed=False)


def test_check_file_gz_with_other_content_says_content_differs(tmp_path: Path) -> None:
    path, md5 = _regzipped(tmp_path, PAYLOAD[:-1] + b"x")
    expected = Expected(md5=md5, content_sha256=hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(ChecksumMismatchError, match="decompressed content differs too"):
        check_file(path, expected)


def test_check_file_gz_without_content_hash_says_it_cannot_tell(tmp_path: Path) -> None:
    path, md5 = _regzipped(tmp_path, PAYLOAD)
    with pytest.raises(ChecksumMismatchError, match="no sha256 of the decompressed content"):
        check_file(path, Expected(md5=md5))


def test_real_recompressed_mnist_t10k_is_recognised(shared_data: Path) -> None:
    resource = get("mnist").resources[2]
    path = shared_data / "mnist-t10k" / resource.filename
    expected = Expected(size_bytes=resource.size_bytes, md5=resource.md5,
                        content_sha256=resource.content_sha256)
    assert gunzip_sha256(path) == resource.content_sha256
    with pytest.raises(ChecksumMismatchError, match=r"md5 9fb629c4.*decompressed content matches"):
        check_file(path, expected, allow_recompressed=False)
    check_file(path, expected)  # accepted (with a warning) by default
    labels = get("mnist").resources[3]
    check_file(shared_data / "mnist-t10k" / labels.filename, Expected(md5=labels.md5),
               allow_recompressed=False)


def test_gunzip_sha256_of_non_gzip_is_none(plain: Path) -> None:
    assert gunzip_sha256(plain) is None


def test_manifest_records_pins_and_detects_changes(tmp_path: Path, plain: Path) -> None:
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    manifest.record_file(tmp_path, plain.name, sha256=digest, pinned=True, source="http://x")
    assert manifest.pinned_sha256(tmp_path, plain.name) == digest
    assert manifest.is_unchanged(tmp_path, plain.name, digest)
    plain.write_bytes(PAYLOAD + b"!")
    assert not manifest.is_unchanged(tmp_path, plain.name, digest)
    manifest.forget_file(tmp_path, plain.name)
    assert manifest.pinned_sha256(tmp_path, plain.name) is None


def test_manifest_unreadable_is_ignored(tmp_path: Path) -> None:
    manifest.manifest_path(tmp_path).write_text("{not json", encoding="utf-8")
    assert manifest.read_manifest(tmp_path)["files"] == {}


_RECORD = {"sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size_bytes": len(PAYLOAD),
           "mtime_ns": 0, "pinned": True, "source": "https://data.example/data.bin"}
_MANIFEST_TEXT = json.dumps({"version": 1, "files": {"data.bin": _RECORD}})


def _json_values() -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
        max_leaves=10,
    )


@pytest.mark.fuzz
@given(raw=st.one_of(
    st.binary(max_size=400),
    st.builds(lambda at, value: _MANIFEST_TEXT[:at] + value + _MANIFEST_TEXT[at + 1:],
              st.integers(0, len(_MANIFEST_TEXT) - 1), st.text(max_size=3)).map(str.encode),
    st.builds(lambda record: json.dumps({"version": 1, "files": {"data.bin": record}}),
              st.dictionaries(st.sampled_from(sorted(_RECORD)), _json_values())).map(str.encode),
    st.just(b"[" * 100_000),
))
def test_fuzz_manifest_reader_gives_records_or_nothing(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    """Random and mutated manifests: a well-formed record or none, never another exception."""
    folder = tmp_path_factory.mktemp("manifest")
    (folder / "data.bin").write_bytes(PAYLOAD)
    manifest.manifest_path(folder).write_bytes(raw)
    data = manifest.read_manifest(folder)
    assert isinstance(data, dict) and isinstance(data["files"], dict)
    record = manifest.file_record(folder, "data.bin")
    assert record is None or (isinstance(record["sha256"], str) and type(record["size_bytes"]) is int)
    pinned = manifest.pinned_sha256(folder, "data.bin")
    assert pinned is None or len(pinned) == 64
    manifest.is_unchanged(folder, "data.bin", None)
    try:  # a well-formed pin is a usable hash: the file verifies against it or not
        check_file(folder / "data.bin", Expected(sha256=pinned))
    except ChecksumMismatchError:
        assert pinned != hashlib.sha256(PAYLOAD).hexdigest()
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    manifest.record_file(folder, "data.bin", sha256=digest, pinned=True)
    assert manifest.is_unchanged(folder, "data.bin", digest)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["data.bin", manifest.MANIFEST_NAME, f"{manifest.MANIFEST_NAME}.lock"])
