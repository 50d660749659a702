"""loaders.tar_stream.iter_members: the streaming member API that extraction and packing share."""

from __future__ import annotations

import gzip
import io
import logging
import os
import shutil
import subprocess
import tarfile
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest
from archive_factory import Member, write_tar

from loaders.archive_policy import Limits
from loaders.errors import ArchiveError, UnsafeArchiveError
from loaders.extract import extract
from loaders.tar_stream import iter_members

HUGE = 2**40
NO_CAPS = Limits(max_total_bytes=2**62, max_ratio=1e30)


def _header_only(path: Path, fmt: int, size: int) -> Path:
    """A gzipped tar whose one member declares ``size`` bytes and carries none."""
    info = tarfile.TarInfo("huge.bin")
    info.size = size
    path.write_bytes(gzip.compress(info.tobuf(format=fmt), mtime=0))
    return path


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["base256", "pax-size"])
def test_tiny_file_declaring_a_terabyte_is_refused_on_its_header(tmp_path: Path, fmt: int) -> None:
    archive = _header_only(tmp_path / "liar.tar.gz", fmt, HUGE)
    assert archive.stat().st_size < 200
    with pytest.raises(UnsafeArchiveError, match="huge.bin.*max_total_bytes"):
        next(iter_members(archive))
    with pytest.raises(UnsafeArchiveError, match="huge.bin"):
        extract(archive, tmp_path / "out")


def test_terabyte_member_without_caps_is_truncated_not_memory_error(tmp_path: Path) -> None:
    archive = _header_only(tmp_path / "liar.tar.gz", tarfile.GNU_FORMAT, HUGE)
    members = iter_members(archive, limits=NO_CAPS)
    member, reader = next(members)
    assert (member.name, member.size) == ("huge.bin", HUGE)
    with pytest.raises(ArchiveError, match="truncated inside member 'huge.bin'"):
        reader.read()  # everything that is left: the stream ends long before 2**40 bytes
    members.close()


def _zeros_tar_gz(path: Path, size: int) -> Path:
    """A tar.gz of one ``size``-byte member of zeros then a small file, streamed to disk."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    tail = tarfile.TarInfo("after.txt")
    tail.size = 5
    comp = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    piece = bytes(4 * 1024**2)
    with open(path, "wb") as out:
        out.write(comp.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
        for _ in range(size // len(piece)):
            out.write(comp.compress(piece))
        out.write(comp.compress(tail.tobuf(format=tarfile.GNU_FORMAT) + b"after" + bytes(507 + 1024)))
        out.write(comp.flush())
    return path


def test_big_member_is_skipped_without_buffering_it(tmp_path: Path) -> None:
    size = 128 * 1024**2
    archive = _zeros_tar_gz(tmp_path / "big.tar.gz", size)
    seen = []
    tracemalloc.start()
    try:
        for member, reader in iter_members(archive, limits=NO_CAPS):
            seen.append((member.name, member.size))
            if member.size <= 1024:  # the caller refuses the big one by its declared size
                assert reader.read(member.size) == b"after"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == [("zeros.bin", size), ("after.txt", 5)]
    assert peak < 32 * 1024**2, f"peak {peak / 1e6:.0f} MB while skipping a {size / 1e6:.0f} MB member"


def test_big_member_breaks_the_ratio_cap_by_default(tmp_path: Path) -> None:
    archive = _zeros_tar_gz(tmp_path / "big.tar.gz", 64 * 1024**2)
    with pytest.raises(UnsafeArchiveError, match="zeros.bin.*max_ratio"):
        next(iter_members(archive))


def test_reader_reads_at_most_the_member_and_the_next_member_follows(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "a.tar.gz", [Member("a.txt", b"0123456789"), Member("b.txt", b"bee")])
    members = iter_members(archive)
    member, reader = next(members)
    assert reader.read(4) == b"0123" and reader.remaining == 6
    assert reader.read(100) == b"456789" and reader.read(1) == b""
    member, reader = next(members)
    assert (member.name, reader.read()) == ("b.txt", b"bee")
    assert next(members, None) is None


def test_reader_of_a_previous_member_is_spent(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "a.tar", [Member("a.txt", b"aaa"), Member("b.txt", b"bbb")], "tar")
    members = iter_members(archive)
    _, first = next(members)
    next(members)
    assert first.read() == b""  # never the bytes of the next member


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_file_object_sources_and_names_are_cleaned(tmp_path: Path, kind: str) -> None:
    archive = write_tar(tmp_path / f"a.{kind}", [
        Member("./", kind="dir"), Member("./d//x.txt", b"x"), Member("d/l", kind="symlink", target="x.txt"),
    ], kind)
    data = io.BytesIO(archive.read_bytes())
    found = [(m.name, m.kind, reader.read()) for m, reader in iter_members(data)]
    assert found == [("d/x.txt", "file", b"x"), ("d/l", "symlink", b"")]


def test_unseekable_stream_needs_kind(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "a.tar.gz", [Member("x.txt", b"x")])
    with open(archive, "rb") as f:
        raw = io.BufferedReader(_Unseekable(f))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="pass kind="):
            next(iter_members(raw))
        assert [m.name for m, _ in iter_members(raw, kind="tar.gz")] == ["x.txt"]


class _Unseekable(io.RawIOBase):
    def __init__(self, f: io.BufferedReader) -> None:
        self.f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.f.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


DUPLICATES = {
    "same-name": [Member("d/x.txt", b"one"), Member("d/x.txt", b"two")],
    "dot-slash": [Member("d/x.txt", b"one"), Member("./d/x.txt", b"two")],
    "file-then-link": [Member("d/x.txt", b"one"), Member("d/x.txt", kind="symlink", target="y")],
    "folder-over-file": [Member("d/x", b"one"), Member("d/x", kind="dir")],
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_names_are_refused_alike_by_packing_and_extraction(tmp_path: Path, case: str) -> None:
    archive = write_tar(tmp_path / "dup.tar.gz", DUPLICATES[case])
    with pytest.raises(ArchiveError, match="member 'd/x(.txt)?' appears twice"):
        [m for m, _ in iter_members(archive)]
    with pytest.raises(ArchiveError, match="member 'd/x(.txt)?' appears twice"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "d").exists()


def test_repeated_folder_is_allowed(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "dirs.tar", [
        Member("d", kind="dir"), Member("d/x.txt", b"x"), Member("d/", kind="dir"),
    ], "tar")
    assert [m.name for m, _ in iter_members(archive)] == ["d", "d/x.txt", "d"]
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "x.txt").read_bytes() == b"x"


@pytest.mark.parametrize("parent", ["file", "symlink"])
def test_member_under_a_file_or_link_is_refused(tmp_path: Path, parent: str) -> None:
    first = Member("a", b"data") if parent == "file" else Member("a", kind="symlink", target="sub")
    archive = write_tar(tmp_path / "under.tar", [Member("sub", kind="dir"), first, Member("a/b.txt", b"x")], "tar")
    with pytest.raises(ArchiveError, match="'a/b.txt' lies under 'a', which is not a folder"):
        [m for m, _ in iter_members(archive)]
    with pytest.raises(ArchiveError, match="lies under 'a'"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "sub").exists()


def test_unsafe_members_are_refused_before_they_are_yielded(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "evil.tar", [Member("ok.txt", b"ok"), Member("../up.txt", b"x")], "tar")
    names = []
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./up\.txt'.*'\.\.'"):
        for member, _ in iter_members(archive):
            names.append(member.name)
    assert names == ["ok.txt"]


def test_member_count_cap_applies(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "many.tar", [Member(f"{i}.txt", b"x") for i in range(5)], "tar")
    with pytest.raises(UnsafeArchiveError, match="max_members=3"):
        [m for m, _ in iter_members(archive, limits=Limits(max_members=3))]


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write a sparse member")
def test_sparse_member_hands_over_to_tarfile_mid_stream(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"first")
    with open(src / "m-sparse.bin", "wb") as f:
        f.truncate(4 * 1024**2)
        f.seek(1024**2)
        f.write(b"island")
    (src / "z.txt").write_bytes(b"last")
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=pax", "-cf", str(archive), "-C", str(src),
                    "a.txt", "m-sparse.bin", "z.txt"], check=True)
    caplog.set_level(logging.DEBUG, logger="loaders.tar_stream")
    found = {m.name: reader.read() for m, reader in iter_members(archive, limits=NO_CAPS)}
    assert "with tarfile from member 2 on" in caplog.text
    assert list(found) == ["a.txt", "m-sparse.bin", "z.txt"]  # each once, in order
    assert found["a.txt"] == b"first" and found["z.txt"] == b"last"
    sparse = found["m-sparse.bin"]
    assert len(sparse) == 4 * 1024**2 and sparse[1024**2:1024**2 + 6] == b"island"
    assert sparse.count(0) == len(sparse) - 6


def test_base256_size_is_read(tmp_path: Path) -> None:
    data = os.urandom(700)
    info = tarfile.TarInfo("b256.bin")
    info.size = len(data)
    block = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    block[124:136] = b"\x80" + len(data).to_bytes(11, "big")  # what GNU tar writes past 8 GiB
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\x00 ".encode()
    tail = bytes(-len(data) % 512) + bytes(1024)
    (tmp_path / "b.tar").write_bytes(bytes(block) + data + tail)
    [(member, reader)] = [(m, r) for m, r in iter_members(tmp_path / "b.tar") if r.read() == data]
    assert member.size == 700


def _our_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("dataferry-")}


def test_closing_the_iterator_early_stops_its_thread(tmp_path: Path) -> None:
    # 12 MB that does not compress: more than the thread may decompress ahead, so it must wait.
    archive = write_tar(tmp_path / "a.tar.gz", [Member(f"{i}.bin", os.urandom(400_000)) for i in range(30)])
    before = _our_threads()  # an earlier test's iterator may still wait for the collector
    members = iter_members(archive)
    next(members)
    started = _our_threads() - before
    assert [t.name for t in started] == ["dataferry-tar-inflate"]
    members.close()
    assert not any(t.is_alive() for t in started)


def test_failed_extraction_leaves_no_thread_behind(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "dup.tar.gz", [Member("a.txt", b"1"), Member("b.txt", b"2"), Member("a.txt", b"3")])
    before = _our_threads()
    with pytest.raises(ArchiveError, match="appears twice") as caught:
        extract(archive, tmp_path / "out")
    assert caught.value.__traceback__ is not None  # the traceback (and its frames) still alive
    assert _our_threads() - before == set()
