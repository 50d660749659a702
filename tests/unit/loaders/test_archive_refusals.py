"""Archives dataferry cannot or must not write: clear ArchiveErrors naming the member, no traceback.

Encrypted and Deflate64 zips, names longer than the file system allows, a full disk; and the
names that are fine (``a:b`` is a plain relative name on POSIX).
"""

from __future__ import annotations

import errno
import importlib
import os
import zipfile
from pathlib import Path

import pytest
from archive_factory import Member, patch_zip, snapshot, write_tar, write_zip

from loaders.errors import ArchiveError, StorageError
from loaders.extract import extract, is_extracted

readers = importlib.import_module("loaders.archive_readers")


def _assert_untouched(tmp_path: Path, dest: Path, before: dict[str, bytes | str]) -> None:
    assert snapshot(tmp_path) == before  # the extract lock file is gone too


def _zip(tmp_path: Path) -> Path:
    return write_zip(tmp_path / "set.zip", [Member("data/a.txt", b"alpha" * 100), Member("data/b.txt", b"beta" * 100)])


def test_encrypted_zip_is_an_archive_error_naming_the_member(tmp_path: Path) -> None:
    archive = patch_zip(_zip(tmp_path), flag_bits=0x1)
    with zipfile.ZipFile(archive) as zf, pytest.raises(RuntimeError):
        zf.read("data/a.txt")  # what the stdlib does with it
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError, match=r"member 'data/a.txt' is encrypted.*unzip or 7z x"):
        extract(archive, dest)
    assert not (dest / "data").exists() and not is_extracted(archive, dest)


def test_deflate64_zip_is_an_archive_error_naming_the_member(tmp_path: Path) -> None:
    archive = patch_zip(_zip(tmp_path), method=9)
    with zipfile.ZipFile(archive) as zf, pytest.raises(NotImplementedError):
        zf.read("data/a.txt")
    with pytest.raises(ArchiveError, match=r"'data/a.txt' is compressed with Deflate64 \(zip method 9\).*7z x.*Deflate"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "data").exists()


def test_unknown_zip_method_is_an_archive_error(tmp_path: Path) -> None:
    archive = patch_zip(_zip(tmp_path), method=77)
    with pytest.raises(ArchiveError, match="an unknown method \\(zip method 77\\)"):
        extract(archive, tmp_path / "out")


LONG = "n" * 300  # one component over NAME_MAX (255 bytes)


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
@pytest.mark.parametrize("where", ["file", "folder"])
def test_name_longer_than_the_file_system_allows(tmp_path: Path, kind: str, where: str) -> None:
    name = f"data/{LONG}.txt" if where == "file" else f"data/{LONG}/x.txt"
    members = [Member("data/ok.txt", b"ok"), Member(name, b"x")]
    archive = (write_zip(tmp_path / "long.zip", members) if kind == "zip"
               else write_tar(tmp_path / "long.tar.gz", members, kind))
    dest = tmp_path / "out"
    dest.mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError, match=rf"member '{name}' has a name longer than the file system allows \(255 bytes"):
        extract(archive, dest)
    _assert_untouched(tmp_path, dest, before)


def test_colon_in_a_name_is_relative_on_posix(tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("':' names a drive or stream on Windows")
    archive = write_tar(tmp_path / "c.tar", [Member("a:b", b"colon"), Member("d/10:30.txt", b"time")], "tar")
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "a:b").read_bytes() == b"colon"
    assert (tmp_path / "out" / "d" / "10:30.txt").read_bytes() == b"time"


@pytest.mark.parametrize("name", ["C:\\evil.txt", "c:/evil.txt", "/abs.txt", "\\\\server\\share"])
def test_drive_and_absolute_names_stay_refused(tmp_path: Path, name: str) -> None:
    archive = write_tar(tmp_path / "abs.tar", [Member(name, b"x")], "tar")
    with pytest.raises(ArchiveError, match="absolute path"):
        extract(archive, tmp_path / "out")


def test_full_disk_names_the_member_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_tar(tmp_path / "a.tar.gz", [Member("data/a.txt", b"a"), Member("data/b.txt", b"b")])
    dest = tmp_path / "out"
    dest.mkdir()
    before = snapshot(tmp_path)

    def full(fd: int, data: bytes) -> None:  # the write fails, after the file was created
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(readers, "write_all", full)
    with pytest.raises(StorageError, match=r"No space left on device \(writing .*/\.extract-a\.tar\.gz\.tmp-\w+/data/a\.txt\); free space") as caught:
        extract(archive, dest)
    assert caught.value.errno == errno.ENOSPC
    _assert_untouched(tmp_path, dest, before)
