"""loaders.tar_stream: the fast tar reader agrees with tarfile, and hands over what it skips."""

from __future__ import annotations

import gzip
import io
import logging
import os
import tarfile
from pathlib import Path

import pytest
from archive_factory import snapshot

from loaders.errors import ArchiveError, UnsafeArchiveError
from loaders.extract import extract
from loaders.tar_stream import iter_members

LONG_DIR = "deep/" + "/".join(f"folder-{i:02d}-with-a-rather-long-name" for i in range(5))
FILES = {
    "plain/empty.txt": b"",
    "plain/block.bin": bytes(range(256)) * 2,  # exactly one 512-byte block
    "plain/odd.bin": os.urandom(777),
    f"{LONG_DIR}/file-at-the-bottom.txt": b"long path",
    "données/été.txt": "unicode ✓".encode(),
    "big/one-mib-plus-one.bin": os.urandom(1024**2 + 1),  # streamed, not read at once
}
LONG_TARGET = "/".join(["sub"] * 40)  # over 100 characters: needs a long-link header


def build(path: Path, fmt: int, mode: str = "w:gz", **kwargs: object) -> Path:
    with tarfile.open(path, mode, format=fmt, **kwargs) as tf:  # type: ignore[call-overload]
        folder = tarfile.TarInfo("plain")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(folder)
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("plain/link-to-deep")
        link.type, link.linkname = tarfile.SYMTYPE, LONG_TARGET
        tf.addfile(link)
        hard = tarfile.TarInfo("plain/hard.bin")
        hard.type, hard.linkname = tarfile.LNKTYPE, "plain/odd.bin"
        tf.addfile(hard)
        script = tarfile.TarInfo("plain/run.sh")
        script.size, script.mode = 3, 0o755
        tf.addfile(script, io.BytesIO(b"ls\n"))
    return path


FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_fast_reader_extracts_like_tarfile(tmp_path: Path, fmt: str, caplog: pytest.LogCaptureFixture) -> None:
    # ustar can hold neither a 200-character link target nor non-ASCII names: its own builder
    archive = _build_ustar(tmp_path) if fmt == "ustar" else build(tmp_path / f"{fmt}.tar.gz", FORMATS[fmt])
    caplog.set_level(logging.DEBUG, logger="loaders.tar_stream")
    extract(archive, tmp_path / "ours")
    assert "with tarfile" not in caplog.text  # the fast reader handled it all
    with tarfile.open(archive) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(tmp_path / "ref", filter="data")
        else:
            tf.extractall(tmp_path / "ref")
    ours = {k: v for k, v in snapshot(tmp_path / "ours").items() if not k.startswith(".")}
    assert ours == snapshot(tmp_path / "ref")
    if fmt != "ustar":
        assert os.stat(tmp_path / "ours" / "plain" / "run.sh").st_mode & 0o100


def _build_ustar(tmp_path: Path) -> Path:
    path = tmp_path / "ustar.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in FILES.items():
            if name.startswith("données"):
                continue
            info = tarfile.TarInfo(name)  # the long path goes into the ustar prefix field
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_members_reports_names_types_and_sizes(tmp_path: Path) -> None:
    archive = build(tmp_path / "gnu.tar", tarfile.GNU_FORMAT, "w")
    found = {m.name: (m.kind, m.size, m.linkname) for m, _ in iter_members(archive)}
    assert found["plain"] == ("folder", 0, "")
    assert found["plain/link-to-deep"] == ("symlink", 0, LONG_TARGET)
    assert found["plain/hard.bin"] == ("hardlink", 0, "plain/odd.bin")
    assert found[f"{LONG_DIR}/file-at-the-bottom.txt"] == ("file", 9, "")
    assert found["données/été.txt"][1] == len("unicode ✓".encode())


def test_global_pax_header_is_read_natively(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    archive = build(tmp_path / "global.tar.gz", tarfile.PAX_FORMAT, pax_headers={"comment": "made by a test"})
    caplog.set_level(logging.DEBUG, logger="loaders.tar_stream")
    extract(archive, tmp_path / "out")
    assert "with tarfile" not in caplog.text
    for name, data in FILES.items():
        assert (tmp_path / "out" / name).read_bytes() == data


def test_fallback_path_still_refuses_escapes(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tf:
        good = tarfile.TarInfo("good.txt")
        good.pax_headers = {"hdrcharset": "BINARY"}  # read by tarfile, not by our parser
        tf.addfile(good, io.BytesIO(b""))
        evil = tarfile.TarInfo("../escaped.txt")
        evil.size = 4
        tf.addfile(evil, io.BytesIO(b"evil"))
    with pytest.raises(UnsafeArchiveError, match=r"'\.\.'"):
        extract(archive, tmp_path / "box")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "box" / "good.txt").exists()


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    plain = build(tmp_path / "plain.tar", tarfile.GNU_FORMAT, "w").read_bytes()
    archive = tmp_path / "multi.tar.gz"
    cut = len(plain) // 3
    archive.write_bytes(gzip.compress(plain[:cut]) + gzip.compress(plain[cut:]))
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "big" / "one-mib-plus-one.bin").read_bytes() == FILES["big/one-mib-plus-one.bin"]


def test_bad_header_checksum_is_corrupt(tmp_path: Path) -> None:
    data = bytearray(build(tmp_path / "a.tar", tarfile.GNU_FORMAT, "w").read_bytes())
    data[600] ^= 0xFF  # inside the second member's header
    (tmp_path / "bad.tar").write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="bad checksum|corrupt"):
        extract(tmp_path / "bad.tar", tmp_path / "out")
    assert not (tmp_path / "out" / "plain").exists()


@pytest.mark.parametrize("mode,suffix", [("w:bz2", "tar.bz2"), ("w:xz", "tar.xz"), ("w:gz", "tar.gz"), ("w", "tar")])
def test_truncated_streams_are_corrupt(tmp_path: Path, mode: str, suffix: str) -> None:
    whole = build(tmp_path / f"whole.{suffix}", tarfile.GNU_FORMAT, mode).read_bytes()
    archive = tmp_path / f"cut.{suffix}"
    archive.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(ArchiveError, match="truncated|corrupt"):
        extract(archive, tmp_path / "out")


def test_missing_end_blocks_are_tolerated_like_tarfile(tmp_path: Path) -> None:
    whole = build(tmp_path / "w.tar", tarfile.GNU_FORMAT, "w").read_bytes()
    trimmed = whole.rstrip(b"\x00")
    trimmed += bytes(-len(trimmed) % 512)
    (tmp_path / "trimmed.tar").write_bytes(trimmed)
    extract(tmp_path / "trimmed.tar", tmp_path / "out")
    assert (tmp_path / "out" / "plain" / "run.sh").read_bytes() == b"ls\n"


def test_huge_long_name_header_is_refused(tmp_path: Path) -> None:
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, 2 * 1024**2
    block = header.tobuf(format=tarfile.GNU_FORMAT)
    (tmp_path / "long.tar").write_bytes(block + bytes(4096))
    with pytest.raises(UnsafeArchiveError, match="metadata"):
        extract(tmp_path / "long.tar", tmp_path / "out")


def test_a_zip_is_not_read_as_a_tar(tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("x.txt", "x")
    with pytest.raises(ArchiveError, match="is a zip archive, not a tar"):
        next(iter_members(tmp_path / "a.zip"))
