"""Hashing and verification, including the re-gzipped IDX case and TOFU records."""

from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path

import pytest

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
