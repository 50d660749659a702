"""Fuzz: random and mutated tar, tar.gz and zip bytes through the tar reader, zip reader and policy.

Property: the result is data or a :class:`~loaders.errors.LoaderError`, never another exception,
and nothing is ever written outside the target folder (the tree around it is compared after
each example).
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from archive_factory import Member, honest_members, snapshot, write_tar, write_zip
from hypothesis import given
from hypothesis import strategies as st

from loaders.archive_policy import Limits
from loaders.errors import LoaderError
from loaders.extract import extract
from loaders.tar_stream import iter_members

pytestmark = [pytest.mark.fuzz, pytest.mark.filterwarnings("ignore:Duplicate name")]

SMALL = Limits(max_total_bytes=8 * 1024**2, max_ratio=1e6, max_members=10_000)


def _seeds() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        members = [*honest_members(), Member("data/link", kind="symlink", target="A"),
                   Member("data/hard.png", kind="hardlink", target="data/A/0.png"),
                   Member("x" * 120 + "/long.txt", b"long name")]
        out = {
            "tar": write_tar(Path(tmp) / "a.tar", members, "tar").read_bytes(),
            "tar.gz": write_tar(Path(tmp) / "a.tar.gz", members, "tar.gz").read_bytes(),
            "zip": write_zip(Path(tmp) / "a.zip", honest_members()).read_bytes(),
        }
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """The seed archive of ``kind`` with a few bytes flipped, cut short or spliced."""
    data = bytearray(SEEDS[kind])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.sampled_from([0, 0x30, 0x37, 0x80, 0xFF, ord("/"), ord(".")]))
        elif action == "cut":
            del data[at:]
            if not data:
                data.append(0)
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def _consume(source: bytes, kind: str) -> None:
    for member, reader in iter_members(io.BytesIO(source), kind=kind, limits=SMALL):
        assert member.name and not member.name.startswith("/") and ".." not in member.name.split("/")
        data = reader.read()
        assert len(data) == member.size


@given(data=st.binary(max_size=4096), kind=st.sampled_from(["tar", "tar.gz"]))
def test_random_bytes_through_the_tar_reader(data: bytes, kind: str) -> None:
    if kind == "tar.gz":
        data = gzip.compress(data, mtime=0)
    try:
        _consume(data, kind)
    except LoaderError:
        pass


@given(data=st.one_of(mutated("tar"), mutated("tar.gz")))
def test_mutated_tars_through_the_tar_reader(data: bytes) -> None:
    kind = "tar.gz" if data[:2] == b"\x1f\x8b" else "tar"
    try:
        _consume(data, kind)
    except LoaderError:
        pass


_OURS = ("box", "fuzz.", "names.")  # the target and the archive itself


@contextmanager
def _sandbox() -> Iterator[tuple[Path, Path]]:
    """A fresh folder with a victim beside the target; after use, only the target may differ."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "outside").mkdir()
        (root / "outside" / "victim.txt").write_text("keep me")
        before = snapshot(root)
        yield root, root / "box" / "dest"
        after = {k: v for k, v in snapshot(root).items() if not k.startswith(_OURS)}
        assert after == {k: v for k, v in before.items() if not k.startswith(_OURS)}


def _extract_or_refuse(archive: Path, dest: Path) -> None:
    try:
        extract(archive, dest, max_total_bytes=SMALL.max_total_bytes, max_ratio=SMALL.max_ratio)
    except LoaderError:
        return
    for path in dest.rglob("*"):  # whatever was written is inside dest, links included
        assert os.path.realpath(path).startswith(os.path.realpath(dest) + os.sep) or path.is_symlink()


@given(data=st.one_of(mutated("tar"), mutated("tar.gz"), mutated("zip")))
def test_mutated_archives_through_extraction(data: bytes) -> None:
    suffix = "zip" if data[:2] == b"PK" else "tar.gz" if data[:2] == b"\x1f\x8b" else "tar"
    with _sandbox() as (root, dest):
        archive = root / f"fuzz.{suffix}"
        archive.write_bytes(data)
        _extract_or_refuse(archive, dest)


NAME_PARTS = st.sampled_from(["a", "b", "..", ".", "", "/", "\\", "C:", "a:b", "\x00", "é", "x" * 300])
KINDS = st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo"])


@given(
    members=st.lists(
        st.tuples(st.lists(NAME_PARTS, min_size=1, max_size=4), KINDS, st.lists(NAME_PARTS, max_size=3)),
        min_size=1, max_size=6,
    ),
    kind=st.sampled_from(["tar", "zip"]),
)
def test_hostile_names_and_links_through_the_policy(
    members: list[tuple[list[str], str, list[str]]], kind: str
) -> None:
    built = [Member("/".join(name), b"data", member_kind, "/".join(target))
             for name, member_kind, target in members]
    with _sandbox() as (root, dest):
        try:
            archive = (write_zip(root / "names.zip", [m for m in built if m.kind in ("file", "symlink", "fifo")])
                       if kind == "zip" else write_tar(root / "names.tar", built, "tar"))
        except (ValueError, OSError):  # a name tarfile or zipfile itself cannot store
            return
        _extract_or_refuse(archive, dest)
