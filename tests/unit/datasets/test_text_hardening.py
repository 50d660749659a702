"""Issue 16 (text side): header detection, unknown encodings, FIFOs and oversized files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from datasets import textfolder
from datasets.errors import DataFormatError
from datasets.textfiles import read_records
from datasets.textfolder import read_text_folder


@pytest.fixture
def spam_file(tmp_path: Path) -> Path:
    path = tmp_path / "spam.tsv"
    path.write_text("ham\tsee you later\nspam\twin cash now\n")
    return path


def test_read_records_refuses_an_unknown_encoding_as_a_value_error(spam_file: Path) -> None:
    with pytest.raises(ValueError, match="but got encoding='nosuchcodec'"):
        read_records(spam_file, encoding="nosuchcodec")


# item 13: a FIFO or an oversized file named *.txt in a text folder ---------------------------------

def _read_in_thread(root: Path) -> BaseException | None:
    """Read the text folder; a read that blocks fails the test after 20 s instead of hanging."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            read_text_folder(root, split="train")
            outcome.append(None)
        except BaseException as err:  # handed to the test
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=20)
    if thread.is_alive():  # unblock the reader (open a writer end) so the thread can end
        with open(root / "train" / "pos" / "b.txt", "wb"):
            pass
        pytest.fail("read_text_folder blocked on a FIFO named b.txt")
    return outcome[0]


def _text_tree(root: Path) -> Path:
    for label in ("neg", "pos"):
        (root / "train" / label).mkdir(parents=True)
        (root / "train" / label / "a.txt").write_text(f"a {label} review")
    return root


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_text_folder_refuses_a_fifo_named_txt(tmp_path: Path) -> None:
    root = _text_tree(tmp_path / "imdb")
    os.mkfifo(root / "train" / "pos" / "b.txt")
    err = _read_in_thread(root)
    assert isinstance(err, DataFormatError), err
    assert "b.txt: expected a regular text file but it is a FIFO (named pipe)" in str(err)


def test_text_folder_refuses_a_folder_named_txt(tmp_path: Path) -> None:
    root = _text_tree(tmp_path / "imdb")
    (root / "train" / "pos" / "b.txt").mkdir()
    with pytest.raises(DataFormatError, match=r"b\.txt: expected a regular text file but it is "
                                              "a folder"):
        read_text_folder(root, split="train")


def test_text_folder_caps_a_file_as_archive_members_are_capped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _text_tree(tmp_path / "imdb")
    (root / "train" / "pos" / "big.txt").write_bytes(b"x" * 101)
    monkeypatch.setattr(textfolder, "MAX_FILE_BYTES", 100)  # the archive path's one constant
    with pytest.raises(DataFormatError, match=r"big\.txt: 101 bytes, more than 100 for one text"):
        read_text_folder(root, split="train")
    (root / "train" / "pos" / "big.txt").write_bytes(b"x" * 100)
    texts, labels = read_text_folder(root, split="train")
    assert sorted(labels) == ["neg", "pos", "pos"] and "x" * 100 in texts
