"""Hostile tars fail alike in extraction and in every reader that streams a tar (issue 9 item 7).

CIFAR, the IMDB text folder and image packing read tars through the one reader,
:func:`loaders.tar_stream.iter_members`: a bad header checksum, a member declaring 2**40 bytes
or a name stored twice gives extraction's own ArchiveError, wrapped in the dataset's
DataFormatError, never a MemoryError, a traceback or a silently chosen copy.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cifar_factory import make_cifar_archive
from text_factory import write_aclimdb_tar

from datasets import archivemembers, cifar, textfolder
from datasets.cifar import CIFAR10_LAYOUT, read_split
from datasets.errors import DataFormatError
from datasets.textfolder import TextFolderDataset, read_text_folder
from loaders.errors import ArchiveError
from loaders.extract import extract

HUGE = 2**40
README = b"a harmless first member\n"


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _member(name: str, data: bytes) -> bytes:
    return _header(name, len(data)) + data + bytes(-len(data) % 512)


def bad_checksum(name: str) -> bytes:
    header = bytearray(_header(name, 5))
    header[120] ^= 0x01  # inside the gid field: the stored checksum no longer matches
    return _member("README", README) + bytes(header) + b"hello" + bytes(507 + 1024)


def declares_a_terabyte(name: str) -> bytes:
    return _member("README", README) + _header(name, HUGE)  # and no data: a 200-byte file


def duplicate(name: str) -> bytes:
    return _member(name, b"first") + _member(name, b"second") + bytes(1024)


def _write(path: Path, plain: bytes) -> Path:
    path.write_bytes(gzip.compress(plain, mtime=0))
    return path


# reader: (a member name it wants, how it reads an archive)
READERS: dict[str, tuple[str, Callable[[Path, Path], object]]] = {
    "cifar": ("cifar-10-batches-py/data_batch_1",
              lambda archive, tmp: read_split(archive, CIFAR10_LAYOUT, "train")),
    "imdb": ("aclImdb/train/pos/0_1.txt",
             lambda archive, tmp: TextFolderDataset(archive, cache_dir=tmp / "cache")),
    "images": ("notMNIST_small/A/x.png",
               lambda archive, tmp: list(archivemembers.iter_members(archive))),
}


HOSTILE = [bad_checksum, declares_a_terabyte, duplicate]
# packing refuses one oversized image and goes on (test_packing_refuses_a_terabyte_image_unread)
CASES = [(r, h) for r in sorted(READERS) for h in HOSTILE
         if (r, h) != ("images", declares_a_terabyte)]


@pytest.mark.parametrize(("reader", "hostile"), CASES,
                         ids=[f"{r}-{h.__name__}" for r, h in CASES])
def test_hostile_tar_gives_extractions_error_through_each_reader(
        tmp_path: Path, reader: str, hostile: Callable[[str], bytes]) -> None:
    name, read = READERS[reader]
    archive = _write(tmp_path / "hostile.tar.gz", hostile(name))
    with pytest.raises(ArchiveError) as extracted:
        extract(archive, tmp_path / "out")
    with pytest.raises(DataFormatError) as through_reader:
        read(archive, tmp_path)
    assert str(extracted.value) in str(through_reader.value)  # the same words, with the context
    assert type(through_reader.value.__cause__) is type(extracted.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.bin"))


def test_hostile_tar_messages_name_what_is_wrong(tmp_path: Path) -> None:
    cases = {bad_checksum: "checksum|corrupt", declares_a_terabyte: "max_total_bytes",
             duplicate: "twice|more than once|duplicate"}
    for hostile, words in cases.items():
        archive = _write(tmp_path / f"{hostile.__name__}.tar.gz",
                         hostile("aclImdb/train/pos/0_1.txt"))
        with pytest.raises(ArchiveError, match=words):
            read_text_folder(archive, split="train")  # documented: the LoaderError itself


def test_packing_refuses_a_terabyte_image_unread(tmp_path: Path) -> None:
    archive = _write(tmp_path / "liar.tar.gz", declares_a_terabyte("top/A/x.png"))
    with pytest.raises(ArchiveError, match="max_total_bytes"):
        extract(archive, tmp_path / "out")  # extraction's whole-archive cap
    members = archivemembers.iter_members(archive)  # packing's looser Limits: a per-image cap
    name, refused = next(members)
    assert name == "top/A/x.png" and isinstance(refused, str)
    assert refused.startswith("!member of 1,099,511,627,776 bytes exceeds the per-image limit")
    with pytest.raises(DataFormatError, match="liar.tar.gz is truncated inside a member"):
        next(members)  # its data is skipped, not read: the file ends long before 2**40 bytes


def test_cifar_refuses_a_batch_larger_than_its_cap_before_reading_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_cifar_archive(tmp_path, "cifar10", per_batch=2, test_count=2)
    read_split(fake.path, CIFAR10_LAYOUT, "test")
    monkeypatch.setattr(cifar, "MAX_MEMBER_BYTES", 1000)  # a 2-image batch is ~6 KB
    with pytest.raises(DataFormatError, match=r"member 'cifar-10-batches-py/(batches.meta|"
                       r"test_batch)' declares [\d,]+ bytes, more than 1,000 for one CIFAR batch"):
        read_split(fake.path, CIFAR10_LAYOUT, "test")


def test_text_folder_refuses_a_text_larger_than_its_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_aclimdb_tar(tmp_path / "aclImdb_v1.tar.gz", 2)
    monkeypatch.setattr(textfolder, "MAX_FILE_BYTES", 10)
    with pytest.raises(DataFormatError, match=r"member aclImdb/train/\w+/\d+_\d+.txt declares "
                       r"\d+ bytes, more than 10 for one text"):
        read_text_folder(archive, split="train")


def test_text_folder_reads_members_in_archive_order(tmp_path: Path) -> None:
    plain = _member("aclImdb/train/pos/0_1.txt", b"good") + _member(
        "aclImdb/train/neg/0_1.txt", b"bad") + bytes(1024)
    archive = _write(tmp_path / "small.tar.gz", plain)
    assert read_text_folder(archive, split="train") == (["good", "bad"], ["pos", "neg"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive.read_bytes()))) as tar:
        assert tar.getnames() == ["aclImdb/train/pos/0_1.txt", "aclImdb/train/neg/0_1.txt"]
