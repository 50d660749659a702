"""loaders.extract: round trips, idempotence, atomicity, corrupt and malicious archives."""

from __future__ import annotations

import concurrent.futures
import errno
import gzip
import hashlib
import importlib
import json
import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from archive_factory import (
    HONEST_FILES,
    Member,
    snapshot,
    write_honest,
    write_tar,
    write_zip,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from loaders import sniff_archive
from loaders.errors import ArchiveError, LoaderError, StorageError, UnsafeArchiveError
from loaders.extract import detect_kind, extract, is_extracted, manifest_path

# The module, not the function of the same name that loaders/__init__ may export.
extract_module = importlib.import_module("loaders.extract")
readers = importlib.import_module("loaders.archive_readers")
ALL_KINDS = ["tar", "tar.gz", "tar.bz2", "tar.xz", "zip"]


def assert_honest_tree(dest: Path) -> None:
    for name, data in HONEST_FILES.items():
        assert (dest / name).read_bytes() == data, name


def own_entries(dest: Path) -> list[str]:
    """What is in dest besides the archive, dataferry's lock file and manifests."""
    return sorted(
        p.name for p in dest.iterdir()
        if not p.name.endswith((".extract.lock", ".extracted.json")) and not p.name.startswith("honest.")
    )


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_extract_round_trips_every_kind(tmp_path: Path, kind: str) -> None:
    archive = write_honest(tmp_path, kind)
    dest = tmp_path / "out"

    top = extract(archive, dest)

    assert top == [dest / "data", dest / "top.txt"]
    assert_honest_tree(dest)
    manifest = json.loads(manifest_path(archive, dest).read_text())
    assert manifest["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert manifest["top_level"] == ["data", "top.txt"]
    assert manifest["total_bytes"] == sum(len(d) for d in HONEST_FILES.values())
    assert manifest["members"] >= len(HONEST_FILES)
    assert not [p for p in dest.iterdir() if p.name.startswith(".extract-")]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_detect_kind_by_magic_bytes(tmp_path: Path, kind: str) -> None:
    archive = write_honest(tmp_path, kind)
    anonymous = archive.rename(tmp_path / "download.bin")
    assert detect_kind(anonymous) == kind
    extract(anonymous, tmp_path / "out")
    assert_honest_tree(tmp_path / "out")


def test_extract_single_gz_file(tmp_path: Path) -> None:
    archive = tmp_path / "train-images-idx3-ubyte.gz"
    payload = bytes(range(256)) * 1000
    archive.write_bytes(gzip.compress(payload))

    assert extract(archive, tmp_path) == [tmp_path / "train-images-idx3-ubyte"]
    assert (tmp_path / "train-images-idx3-ubyte").read_bytes() == payload
    assert archive.exists()  # the archive beside the output is left alone


def test_extract_rerun_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_honest(tmp_path, "tar.gz")
    dest = tmp_path / "out"
    first = extract(archive, dest)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()

    def boom(*args: object) -> None:
        raise AssertionError("the archive was read again")

    monkeypatch.setattr(extract_module, "read_archive", boom)
    assert extract(archive, dest) == first
    assert extract(archive, dest, archive_sha256=sha) == first
    assert is_extracted(archive, dest)
    assert is_extracted(archive, dest, archive_sha256=sha.upper())


def test_is_extracted_false_before_after_removal_and_for_other_hash(tmp_path: Path) -> None:
    archive = write_honest(tmp_path, "zip")
    dest = tmp_path / "out"
    assert not is_extracted(archive, dest)
    extract(archive, dest)
    assert not is_extracted(archive, dest, archive_sha256="0" * 64)
    (dest / "top.txt").unlink()
    assert not is_extracted(archive, dest)
    extract(archive, dest)  # a missing entry makes the next run extract again
    assert_honest_tree(dest)


def test_extract_concurrent_callers_extract_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_honest(tmp_path, "tar.gz")
    dest = tmp_path / "out"
    real_read, calls = extract_module.read_archive, []

    def slow_read(*args: object, **kwargs: object) -> object:
        calls.append(1)
        time.sleep(0.2)  # hold the lock long enough for the other caller to wait on it
        return real_read(*args, **kwargs)

    monkeypatch.setattr(extract_module, "read_archive", slow_read)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: extract(archive, dest), range(2)))
    assert results[0] == results[1] == [dest / "data", dest / "top.txt"]
    assert len(calls) == 1
    assert_honest_tree(dest)


def test_extract_new_archive_version_replaces_old_entries(tmp_path: Path) -> None:
    archive = tmp_path / "v.tar.gz"
    dest = tmp_path / "out"
    write_tar(archive, [Member("old/x.txt", b"old"), Member("keep.txt", b"v1")])
    extract(archive, dest)
    write_tar(archive, [Member("keep.txt", b"v2")])

    assert extract(archive, dest) == [dest / "keep.txt"]
    assert (dest / "keep.txt").read_bytes() == b"v2"
    assert not (dest / "old").exists()


def test_extract_ignores_hostile_names_in_an_old_manifest(tmp_path: Path) -> None:
    archive = write_honest(tmp_path, "tar")
    dest = tmp_path / "box" / "dest"
    dest.mkdir(parents=True)
    (tmp_path / "box" / "victim.txt").write_text("keep")
    manifest_path(archive, dest).write_text(json.dumps(
        {"format": 1, "sha256": "0" * 64, "top_level": ["../victim.txt", "..", archive.name]}
    ))
    extract(archive, dest)
    assert (tmp_path / "box" / "victim.txt").read_text() == "keep"
    assert_honest_tree(dest)


def test_extract_failure_midway_leaves_dest_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = write_honest(tmp_path, "tar.gz")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "mine.txt").write_text("not the archive's")
    before = snapshot(dest)
    real_file = readers.Writer.file
    calls = []

    def failing_file(self: object, *args: object, **kwargs: object) -> None:
        calls.append(args[0])
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-way
        real_file(self, *args, **kwargs)

    monkeypatch.setattr(readers.Writer, "file", failing_file)
    with pytest.raises(KeyboardInterrupt):
        extract(archive, dest)
    assert snapshot(dest) == before  # the extract lock file is gone too
    assert not is_extracted(archive, dest)

    monkeypatch.setattr(readers.Writer, "file", real_file)
    extract(archive, dest)
    assert_honest_tree(dest)
    assert (dest / "mine.txt").read_text() == "not the archive's"


def test_extract_refuses_entries_it_did_not_write_and_changes_nothing(tmp_path: Path) -> None:
    archive = write_honest(tmp_path, "tar.gz")
    dest = tmp_path / "out"
    (dest / "data" / "A").mkdir(parents=True)
    (dest / "data" / "A" / "stale.png").write_bytes(b"no manifest vouches for me")
    (dest / "top.txt").write_bytes(b"partial")
    staging = dest / f".extract-{archive.name}.tmp-dead"
    staging.mkdir()
    (staging / "junk").write_bytes(b"x")
    before = {k: v for k, v in snapshot(dest).items() if not k.startswith(".extract-")}

    with pytest.raises(ArchiveError, match=r"out/data, .*out/top.txt already exist and no earlier "
                       r"extraction of honest.tar.gz wrote them; nothing was changed. Move them"):
        extract(archive, dest)

    assert snapshot(dest) == before and not is_extracted(archive, dest)  # no lock file left
    assert not staging.exists()  # our own staging leftovers are ours to clean


def test_extract_keeps_the_users_files_in_a_folder_of_the_same_name(tmp_path: Path) -> None:
    """Issue 9.3: an archive whose top folder is data/ must not delete the user's data/notes.txt."""
    archive = write_tar(tmp_path / "a.tar.gz", [Member("data/x.txt", b"archive's")])
    dest = tmp_path / "work"
    (dest / "data").mkdir(parents=True)
    (dest / "data" / "notes.txt").write_text("the user's notes")

    with pytest.raises(ArchiveError, match=r"work/data already exists and no earlier extraction of a.tar.gz wrote it; "
                       r"nothing was changed. Move it away"):
        extract(archive, dest)
    assert (dest / "data" / "notes.txt").read_text() == "the user's notes"
    assert not (dest / "data" / "x.txt").exists()

    elsewhere = tmp_path / "fresh"
    assert extract(archive, elsewhere) == [elsewhere / "data"]
    assert extract(archive, elsewhere) == [elsewhere / "data"]  # ours: idempotent
    write_tar(archive, [Member("data/y.txt", b"v2")])
    extract(archive, elsewhere)  # a new version replaces what our manifest lists
    assert sorted(p.name for p in (elsewhere / "data").iterdir()) == ["y.txt"]


def test_extract_interrupted_while_moving_entries_in_resumes_over_its_own_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = write_honest(tmp_path, "tar.gz")
    dest = tmp_path / "out"
    real_replace, moved = os.replace, []

    def cut_after_first(src: object, dst: object) -> None:
        if ".extract-" in str(src):
            if moved:
                raise KeyboardInterrupt
            moved.append(dst)
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(extract_module.os, "replace", cut_after_first)
    with pytest.raises(KeyboardInterrupt):
        extract(archive, dest)
    monkeypatch.setattr(extract_module.os, "replace", real_replace)
    assert not is_extracted(archive, dest) and (dest / "data").exists()
    extract(archive, dest)  # the pending manifest vouches for what the cut run moved in
    assert_honest_tree(dest)


def test_extract_disk_full_names_the_folder_and_leaves_dest_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = write_honest(tmp_path, "tar.gz")
    dest = tmp_path / "out"
    dest.mkdir()
    real_open = os.open

    def disk_full(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if "/.extract-" in os.fspath(path) and flags & os.O_CREAT:  # a new file in the staging folder
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", disk_full)
    with pytest.raises(StorageError, match=rf"could not extract honest.tar.gz into {dest}: No space "
                       r"left on device.*; free space there or extract into another folder") as info:
        extract(archive, dest)
    assert info.value.errno == errno.ENOSPC and str(info.value).startswith("could not extract")
    assert [p.name for p in dest.iterdir() if not p.name.endswith(".lock")] == []


def test_extract_refuses_to_overwrite_itself(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    archive = inner / "self.tar"
    write_tar(archive, [Member("self.tar", b"evil twin")], "tar")
    with pytest.raises(UnsafeArchiveError, match="archive itself"):
        extract(archive, inner)
    assert archive.stat().st_size > len(b"evil twin")


def test_extract_keeps_safe_symlinks_and_hardlinks(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "links.tar.gz", [
        Member("d/v1/x.txt", b"payload"),
        Member("d/latest", kind="symlink", target="v1"),
        Member("d/copy.txt", kind="hardlink", target="d/v1/x.txt"),
    ])
    dest = tmp_path / "out"
    extract(archive, dest)
    assert os.readlink(dest / "d" / "latest") == "v1"
    assert (dest / "d" / "latest" / "x.txt").read_bytes() == b"payload"
    assert (dest / "d" / "copy.txt").read_bytes() == b"payload"


def test_extract_progress_bar_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = write_honest(tmp_path, "tar.gz")
    extract(archive, tmp_path / "out", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "extract honest.tar.gz" in captured.err


# ---------------------------------------------------------------- corrupt archives


def test_extract_truncated_tar_gz_raises_archive_error(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "big.tar.gz", [Member(f"d/{i}.bin", os.urandom(3000)) for i in range(20)])
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError, match="corrupt or truncated.*--force") as info:
        extract(archive, dest)
    assert not isinstance(info.value, UnsafeArchiveError)
    assert str(archive) in str(info.value)
    assert own_entries(dest) == []


@pytest.mark.parametrize("name", ["page.tar.gz", "page.zip", "page.tar.xz", "page.tar.bz2", "page.gz"])
def test_extract_html_instead_of_archive_raises_archive_error(tmp_path: Path, name: str) -> None:
    archive = tmp_path / name
    archive.write_bytes(b"<!DOCTYPE html><html><body>Quota exceeded</body></html>\n" * 20)
    with pytest.raises(ArchiveError, match=r"--force"):
        extract(archive, tmp_path / "out")
    assert own_entries(tmp_path / "out") == []


def test_extract_unknown_kind_says_what_it_saw(tmp_path: Path) -> None:
    archive = tmp_path / "mystery.bin"
    archive.write_bytes(b"<html>not an archive</html>" * 30)
    with pytest.raises(ArchiveError, match="cannot tell what kind of archive"):
        extract(archive, tmp_path / "out")


def test_extract_missing_archive_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        extract(tmp_path / "nope.tar.gz", tmp_path / "out")
    archive = write_honest(tmp_path, "tar")
    with pytest.raises(ValueError, match="kind should be one of"):
        extract(archive, tmp_path / "out", kind="rar")
    with pytest.raises(ValueError, match="max_ratio=0"):
        extract(archive, tmp_path / "out", max_ratio=0)


# ---------------------------------------------------------------- malicious archives

OUTSIDE = "outside"  # a sibling of the target folder that must stay untouched


def refuse(tmp_path: Path, archive: Path, match: str, **limits: object) -> None:
    """Extract ``archive`` into tmp_path/box/dest; assert refusal and that nothing leaked."""
    (tmp_path / OUTSIDE).mkdir(exist_ok=True)
    (tmp_path / OUTSIDE / "victim.txt").write_text("keep me")
    dest = tmp_path / "box" / "dest"
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError, match=match):
        extract(archive, dest, **limits)  # type: ignore[arg-type]
    after = snapshot(tmp_path)
    new = {k for k in after if k not in before}
    # Only the target folder itself may have appeared (the lock file is removed).
    assert new <= {"box", "box/dest"}, new
    assert all(after[k] == v for k, v in before.items())
    assert not is_extracted(archive, dest)


TAR_ATTACKS = {
    "dotdot": ([Member("../outside/evil.txt", b"pwned")], r"'\.\.'"),
    "dotdot-deep": ([Member("a/b/../../../outside/evil.txt", b"pwned")], r"'\.\.'"),
    "absolute": ([Member("/tmp/dataferry-evil-abs.txt", b"pwned")], "absolute path"),
    "symlink-out": ([Member("esc", kind="symlink", target="../outside"),
                     Member("esc/evil.txt", b"pwned")], "symlink"),
    "symlink-abs": ([Member("passwd", kind="symlink", target="/etc/passwd")], "symlink"),
    "symlink-dot-chain": ([Member("here", kind="symlink", target="."),
                           Member("up", kind="symlink", target="here/..")], "symlink"),
    "hardlink-out": ([Member("h", kind="hardlink", target="../outside/victim.txt")], "hard link|'\\.\\.'"),
    "hardlink-abs": ([Member("h", kind="hardlink", target="/etc/passwd")], "hard link|absolute"),
    "hardlink-unknown": ([Member("h", kind="hardlink", target="not/there")], "hard link"),
    "chardev": ([Member("null", kind="chardev")], "character device"),
    "fifo": ([Member("pipe", kind="fifo")], "FIFO"),
}


@pytest.mark.parametrize("attack", sorted(TAR_ATTACKS))
@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
@pytest.mark.parametrize("stdlib_filter", [True, False], ids=["with-data-filter", "old-python"])
def test_extract_refuses_malicious_tar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attack: str, kind: str, stdlib_filter: bool
) -> None:
    if not stdlib_filter:  # as on a Python without tarfile.data_filter: our own checks only
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    members, match = TAR_ATTACKS[attack]
    archive = write_tar(tmp_path / f"evil.{kind}", [Member("ok.txt", b"fine"), *members], kind)
    refuse(tmp_path, archive, match)
    assert not Path("/tmp/dataferry-evil-abs.txt").exists()


def test_extract_refuses_absolute_name_on_windows_drive(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "evil.tar", [Member("C:\\evil.txt", b"x")], "tar")
    refuse(tmp_path, archive, "absolute path")


ZIP_ATTACKS = {
    "zip-slip": ([Member("../outside/evil.txt", b"pwned")], r"'\.\.'"),
    "zip-slip-backslash": ([Member("..\\outside\\evil.txt", b"pwned")], r"'\.\.'"),
    "absolute": ([Member("/tmp/dataferry-evil-zip.txt", b"pwned")], "absolute path"),
    "symlink-out": ([Member("esc", kind="symlink", target="../outside")], "symlink"),
    "fifo": ([Member("pipe", kind="fifo")], "special file"),
}


@pytest.mark.parametrize("attack", sorted(ZIP_ATTACKS))
def test_extract_refuses_malicious_zip(tmp_path: Path, attack: str) -> None:
    members, match = ZIP_ATTACKS[attack]
    archive = write_zip(tmp_path / "evil.zip", [Member("ok.txt", b"fine"), *members])
    refuse(tmp_path, archive, match)
    assert not Path("/tmp/dataferry-evil-zip.txt").exists()


BOMB_BYTES = 24 * 1024**2  # zeros: deflates over 1000:1, far past the default max_ratio=200


def test_extract_refuses_tar_gz_bomb_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_tar(tmp_path / "bomb.tar.gz", [Member("zeros.bin", bytes(BOMB_BYTES))])
    assert archive.stat().st_size * 200 < BOMB_BYTES
    written = []
    monkeypatch.setattr(readers, "write_all", lambda fd, data: written.append(len(data)))
    refuse(tmp_path, archive, "max_ratio=200")
    assert written == []  # refused on the header, before any byte was written


def test_extract_refuses_zip_bomb(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "bomb.zip", [Member(f"z{i}.bin", bytes(BOMB_BYTES // 4)) for i in range(4)])
    refuse(tmp_path, archive, "compression bomb")


def test_extract_refuses_gz_bomb_while_streaming(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.gz"
    archive.write_bytes(gzip.compress(bytes(BOMB_BYTES)))
    refuse(tmp_path, archive, "max_ratio")


def test_extract_refuses_too_many_members(tmp_path: Path) -> None:
    members = [Member(f"d/{i}.txt", b"x") for i in range(11)]
    refuse(tmp_path, write_tar(tmp_path / "many.tar.gz", members), "max_members=10", max_members=10)
    refuse(tmp_path, write_zip(tmp_path / "many.zip", members), "max_members=10", max_members=10)


def test_extract_refuses_more_than_max_total_bytes(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "big.tar", [Member("a.bin", os.urandom(600)), Member("b.bin", os.urandom(600))], "tar")
    refuse(tmp_path, archive, "max_total_bytes=1000", max_total_bytes=1000)


def test_extract_data_filter_also_guards_when_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Our own checks come first; with them disabled the stdlib data filter must still refuse.
    if not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python's tarfile has no data filter")
    monkeypatch.setattr(importlib.import_module("loaders.archive_policy"), "check_symlink", lambda *args: None)
    archive = write_tar(tmp_path / "evil.tar", [Member("esc", kind="symlink", target="/etc")], "tar")
    refuse(tmp_path, archive, "data filter")


def test_zip_written_by_stdlib_round_trips_with_folders(tmp_path: Path) -> None:
    archive = tmp_path / "dirs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/", b"")
        zf.writestr("pkg/sub/file.txt", b"in a folder")
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "sub" / "file.txt").read_bytes() == b"in a folder"


@pytest.mark.parametrize("name", [".dataferry-manifest.json", ".other.tar.gz.extracted.json"])
def test_extract_refuses_members_named_like_bookkeeping_files(tmp_path: Path, name: str) -> None:
    archive = write_tar(tmp_path / "evil.tar.gz", [Member(name, b"{}")])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="bookkeeping"):
        extract(archive, dest)
    assert not (dest / name).exists()


_GZ = gzip.compress(b"line of text\n" * 200, mtime=0)


def _mutated(blob: bytes) -> st.SearchStrategy[bytes]:
    """``blob`` with a few bytes overwritten and maybe cut short or extended."""
    flips = st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)), max_size=6)
    return st.builds(
        lambda changes, cut, tail: _apply(blob, changes)[:cut] + tail,
        flips, st.integers(0, len(blob)), st.binary(max_size=16),
    )


def _apply(blob: bytes, changes: list[tuple[int, int]]) -> bytes:
    out = bytearray(blob)
    for at, value in changes:
        out[at] = value
    return bytes(out)


@pytest.mark.fuzz
@given(blob=st.one_of(_mutated(_GZ), st.binary(max_size=1024)))
def test_fuzz_single_gz_gives_its_data_or_a_loader_error(
    tmp_path_factory: pytest.TempPathFactory, blob: bytes
) -> None:
    box = tmp_path_factory.mktemp("gz")
    archive = box / "notes.txt.gz"
    archive.write_bytes(blob)
    try:
        entries = extract(archive, box / "dest", kind="gz")
    except LoaderError:
        entries = None
    else:
        assert entries == [box / "dest" / "notes.txt"]
        assert (box / "dest" / "notes.txt").read_bytes() == gzip.decompress(blob)
    assert {p.name for p in box.iterdir()} <= {"notes.txt.gz", "dest"}  # nothing written outside
    leftovers = {p.name for p in (box / "dest").iterdir()} if (box / "dest").exists() else set()
    assert leftovers <= {"notes.txt", ".notes.txt.gz.extracted.json"}
    assert ("notes.txt" in leftovers) == (entries is not None)


@pytest.mark.fuzz
@given(head=st.one_of(st.binary(max_size=600), _mutated(_GZ)))
def test_fuzz_sniff_archive_never_raises_on_bytes(head: bytes) -> None:
    assert sniff_archive(head) in (None, "gz", "tar.gz", "tar", "zip", "bz2", "xz")


@pytest.mark.fuzz
@settings(max_examples=max(settings.default.max_examples // 2, 1))  # an extraction per example
@given(text=st.one_of(
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                 max_leaves=12).map(json.dumps),
    st.fixed_dictionaries({"format": st.just(1), "sha256": st.text(max_size=64),
                           "complete": st.none() | st.booleans(),
                           "top_level": st.lists(st.sampled_from(["..", "/etc", "a/b", "", "x", 7]))}
                          ).map(json.dumps),
))
def test_fuzz_extraction_manifest_never_breaks_extract(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    box = tmp_path_factory.mktemp("m")
    archive = write_tar(box / "a.tar", [Member("x/y.txt", b"y")], "tar")
    dest = box / "dest"
    dest.mkdir()
    manifest_path(archive, dest).write_text(text, encoding="latin-1")
    try:
        extract(archive, dest)
    except LoaderError:  # a hostile manifest may not vouch for a clash; it must not crash
        assert not (dest / "x" / "y.txt").exists()
    else:
        assert (dest / "x" / "y.txt").read_bytes() == b"y"
    assert {p.name for p in box.iterdir()} == {"a.tar", "dest"}
