"""Issue 16 (text side): header detection, unknown encodings, FIFOs and oversized files."""

from __future__ import annotations

import os
import socket
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


def test_a_codec_that_reads_nothing_is_refused_up_front(spam_file: Path) -> None:
    with pytest.raises(ValueError, match="but got encoding='undefined'"):  # review 9
        read_records(spam_file, encoding="undefined")


def test_a_utf16_file_read_as_utf8_is_named_utf16(tmp_path: Path) -> None:
    path = tmp_path / "excel.tsv"  # Excel's "Unicode Text" export
    path.write_text("ham\tsee you\nspam\twin now\n", encoding="utf-16")
    with pytest.raises(DataFormatError, match="expected UTF8 text .* UTF-16 byte-order mark"):
        read_records(path, encoding="UTF8")
    assert read_records(path, encoding="utf-16").labels == ["ham", "spam"]


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


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets on this system")
def test_text_folder_names_a_socket_and_a_dangling_link_named_txt(tmp_path: Path) -> None:
    root = _text_tree(tmp_path / "t")  # short: a Unix socket path has ~100 bytes at most
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(os.fspath(root / "train" / "pos" / "s.txt"))
        with pytest.raises(DataFormatError, match=r"s\.txt: expected a regular text file but "
                                                  "it is a socket; remove it"):
            read_text_folder(root, split="train")
    finally:
        server.close()
    (root / "train" / "pos" / "s.txt").unlink()
    (root / "train" / "pos" / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(DataFormatError, match=r"gone\.txt: expected a text file but it is a "
                                              "symlink to a missing file; remove the link"):
        read_text_folder(root, split="train")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_given_as_a_text_file_is_named_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    os.mkfifo(path)
    with pytest.raises(DataFormatError, match=r"x\.csv: expected a regular text file but it is "
                                              r"a FIFO \(named pipe\)"):
        read_records(path)


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


# item 11: header="auto" on files joined with cat, and on a headerless file with a rare first label

@pytest.mark.parametrize("head,rows,labels", [
    ("label,title,description", ["1,a,b", "2,c,d", "3,e,f"], [1, 2, 3]),
    ("sentiment,text", ["pos,good", "neg,bad", "pos,nice"], ["pos", "neg", "pos"]),
])
def test_a_repeated_header_is_skipped_counted_and_warned(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, head: str, rows: list[str],
        labels: list) -> None:
    path = tmp_path / "joined.csv"  # two CSV files joined with cat: the second header on line 4
    path.write_text("\n".join([head, *rows[:2], head, *rows[2:]]) + "\n")
    with caplog.at_level("WARNING", logger="datasets"):
        records = read_records(path)
    assert records.header == head.split(",") and records.labels == labels
    assert records.repeated_headers == [4] and records.lines == [2, 3, 5]
    assert "skipped 1 repeated header line (line 4)" in caplog.text


def test_a_repeated_header_within_the_sample_does_not_make_the_header_data(
        tmp_path: Path) -> None:
    path = tmp_path / "joined.csv"
    path.write_text("label,text\n" + "1,a\n" * 3 + "label,text\n" + "2,b\n" * 3)
    records = read_records(path)
    assert records.labels == [1] * 3 + [2] * 3 and records.repeated_headers == [5]


@pytest.mark.parametrize("first,rest", [
    ("spam\twin cash now", "ham\tsee you at lunch"),  # a word label never seen below
    ("3\twin cash now", "1\tsee you at lunch"),  # an integer label never seen below
])
def test_a_headerless_file_keeps_a_first_record_with_a_rare_label(
        tmp_path: Path, first: str, rest: str) -> None:
    path = tmp_path / "sms.tsv"
    path.write_text("\n".join([first, *[rest] * 40, rest.replace("1", "2")]) + "\n")
    records = read_records(path)
    assert records.header is None and len(records.texts) == 42
    assert str(records.labels[0]) == first.split("\t")[0] and records.lines[0] == 1


def test_a_header_above_numbers_in_any_column_is_a_header(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("grade,score,words\na,0.5,good\nb,1e-3,bad\na,2,fine\n")
    records = read_records(path, label_column=0, text_columns=[2])
    assert records.header == ["grade", "score", "words"] and records.labels == ["a", "b", "a"]


def test_header_auto_on_the_real_text_files(shared_data: Path) -> None:
    sms = read_records(shared_data / "sms-spam" / "SMSSpamCollection")
    assert sms.header is None and len(sms.texts) == 5574 and sms.repeated_headers == []
    assert sms.labels.count("ham") == 4827 and sms.labels.count("spam") == 747
    ag = read_records(shared_data / "ag-news-half" / "ag_news_half.csv")
    assert ag.header == ["label", "title", "description"] and len(ag.texts) == 3800
    assert sorted(set(ag.labels)) == [1, 2, 3, 4] and ag.repeated_headers == []


# review of item 11: headers over text-only columns, BOM/space repeats, missing-value cells

def _tweets(head: str, n: int = 60) -> str:
    labels = ["positive", "negative", "neutral"]
    return head + "\n" + "".join(f"{labels[i % 3]},@united flight {i} was late\n" for i in range(n))


@pytest.mark.parametrize("head", ["airline_sentiment,tweet_text", "0,1"])
def test_a_header_over_text_only_columns_is_a_header(tmp_path: Path, head: str) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text(_tweets(head))
    records = read_records(path)
    assert records.header == head.split(",")
    assert sorted(set(records.labels)) == ["negative", "neutral", "positive"]


def test_a_header_read_as_data_is_named_in_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text(_tweets("airline sentiment,tweet text"))  # nothing tells it from data
    with caplog.at_level("WARNING", logger="datasets"):
        records = read_records(path)
    assert records.header is None and records.labels[0] == "airline sentiment"
    assert "label 'airline sentiment' occurs nowhere else; pass header=True" in caplog.text


@pytest.mark.parametrize("again", ["\ufefflabel,text", "label, text", " label ,text "])
def test_a_repeated_header_with_a_bom_or_spaces_is_skipped(tmp_path: Path, again: str) -> None:
    path = tmp_path / "joined.csv"  # the second file saved by Excel as "CSV UTF-8"
    path.write_bytes(f"label,text\n1,a b\n2,c d\n{again}\n3,e f\n".encode())
    records = read_records(path)
    assert records.labels == [1, 2, 3] and records.repeated_headers == [4]


@pytest.mark.parametrize("cell", ["NA", "5%", "nan", "-"])
def test_a_first_row_whose_label_occurs_below_is_data_whatever_its_other_cells(
        tmp_path: Path, cell: str) -> None:
    path = tmp_path / "sms.csv"
    path.write_text(f"ham,hello there,{cell}\nspam,msg 1,0.123\nham,msg 2,0.5\n")
    records = read_records(path, text_columns=[1])
    assert records.header is None and records.labels == ["ham", "spam", "ham"]
