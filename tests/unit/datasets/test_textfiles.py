"""Reading real-world text files: BOM, header guess, several text columns, quoting, bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from datasets.errors import DataFormatError
from datasets.text import TextClassificationDataset
from datasets.textfiles import SEPARATOR, read_records
from tests.unit.datasets.text_factory import AG_CLASSES, write_ag_news_csv


def test_ag_news_header_is_detected_and_both_text_columns_joined(tmp_path: Path, caplog) -> None:
    path = write_ag_news_csv(tmp_path / "test.csv", 20)
    with caplog.at_level(logging.INFO, logger="datasets.textfiles"):
        ds = TextClassificationDataset.from_file(path)
    assert "header=auto reads line 1 as a header: cell 'label' is a column name" in caplog.text
    assert "text from column(s) ['title', 'description'], label from column label" in caplog.text
    assert len(ds) == 80 and ds.classes == [1, 2, 3, 4]  # no fifth class named "label"
    assert sorted(set(ds.labels)) == [0, 1, 2, 3]
    assert all(SEPARATOR in t for t in ds.texts)
    assert any("\\" in t for t in ds.texts)  # AG News's backslashes stay in the text


def test_ag_news_without_header_and_with_bom(tmp_path: Path) -> None:
    plain = TextClassificationDataset.from_file(write_ag_news_csv(tmp_path / "a.csv", 10))
    bare = TextClassificationDataset.from_file(
        write_ag_news_csv(tmp_path / "b.csv", 10, header=False))
    excel = write_ag_news_csv(tmp_path / "c.csv", 10, bom=True)
    assert excel.read_bytes().startswith(b"\xef\xbb\xbflabel,")
    with_bom = TextClassificationDataset.from_file(excel)
    for ds in (bare, with_bom):
        assert ds.texts == plain.texts and ds.labels == plain.labels and ds.classes == [1, 2, 3, 4]


def test_class_index_header_and_label_names(tmp_path: Path) -> None:
    path = tmp_path / "kaggle.csv"
    path.write_text('Class Index,Title,Description\n3,"Oil, again",up\n1,War,talks\n3,Oil,down\n')
    records = read_records(path)
    assert records.header == ["Class Index", "Title", "Description"]
    assert records.labels == [3, 1, 3] and records.texts[0] == f"Oil, again{SEPARATOR}up"
    ds = TextClassificationDataset.from_records(records)
    assert ds.classes == [1, 3] and ds.labels == [1, 0, 1]


def test_header_forced_either_way(tmp_path: Path) -> None:
    path = tmp_path / "two.tsv"
    path.write_text("ham\thello\nspam\twin\nham\tok\n")
    assert read_records(path, header=True).texts == ["win", "ok"]
    assert read_records(path, header=False).texts == ["hello", "win", "ok"]
    assert read_records(path).header is None  # 'ham' is a label seen below
    with pytest.raises(ValueError, match="header should be 'auto', True or False"):
        read_records(path, header="yes")


def test_header_rules_integer_labels_and_repeating_labels(tmp_path: Path) -> None:
    numeric = tmp_path / "n.csv"
    numeric.write_text("y,words\n-1,bad\n1,good\n1,fine\n")
    assert read_records(numeric).labels == [-1, 1, 1]
    words = tmp_path / "w.csv"
    words.write_text("stars,comment\npos,good\nneg,bad\npos,fine\n")
    # words above words: nothing in the column types tells a header from a first record whose
    # label is rare (issue 16 item 11), so auto keeps it as data and header=True says otherwise
    assert read_records(words).header is None
    assert read_records(words, header=True).header == ["stars", "comment"]
    words.write_text("stars,review\npos,good\nneg,bad\npos,fine\n")  # 'review' names a column
    with pytest.raises(DataFormatError, match="has no label column"):
        read_records(words)
    assert read_records(words, label_column="stars").labels == ["pos", "neg", "pos"]


def test_text_columns_by_name_index_and_several(tmp_path: Path) -> None:
    path = write_ag_news_csv(tmp_path / "ag.csv", 5)
    by_name = read_records(path, text_columns=["title", "description"], label_column="label")
    by_index = read_records(path, text_columns=[1, 2], label_column=0)
    title_only = read_records(path, text_columns="title")
    assert by_name.texts == by_index.texts == read_records(path).texts
    assert all(SEPARATOR not in t for t in title_only.texts)
    with pytest.raises(DataFormatError, match=r"ag.csv:1: expected column 5 but the rows have 3"):
        read_records(path, text_columns=5)
    with pytest.raises(DataFormatError, match=r"expected text columns apart from the label.*; pass "
                       r"text_columns= \(--text-column\) and label_column= \(--label-column\)"):
        read_records(path, text_columns=0, label_column=0)


def test_quoted_fields_with_newlines_commas_and_escapes(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('label,text\npos,"line one\nline two, with a comma"\nneg,"say ""hi"""\n'
                    "pos,plain\n")
    records = read_records(path)
    assert records.texts == ["line one\nline two, with a comma", 'say "hi"', "plain"]
    assert records.lines == [2, 4, 5]
    escaped = tmp_path / "e.csv"
    escaped.write_text('label,text\npos,"he said \\"hi\\", then left"\nneg,no\npos,ok\n')
    with pytest.raises(DataFormatError, match=r"e.csv:2: text follows a closing quote.*"
                       r"escapechar="):
        read_records(escaped)
    assert read_records(escaped, escapechar="\\").texts[0] == 'he said "hi", then left'


def test_stray_quote_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "stray.csv"
    path.write_text('label,text\npos,fine\nneg,"never closed\npos,more\n')
    with pytest.raises(DataFormatError, match=r"stray.csv:3: a quoted field opened on this line "
                       r"is never closed \(read to line 4\)"):
        read_records(path)
    closed_late = tmp_path / "late.csv"
    closed_late.write_text('label,text\npos,"a\nneg,b"\npos,c,d\n')
    with pytest.raises(DataFormatError, match=r"late.csv:4: expected 2 CSV columns as on line 1 "
                       r"but got 3"):
        read_records(closed_late)
    inner = tmp_path / "inner.csv"  # a quote inside an unquoted field is an ordinary character
    inner.write_text('label,text\npos,5" screen\nneg,ok\npos,x\n')
    assert read_records(inner).texts[0] == '5" screen'


def test_header_whose_label_column_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "nolabel.csv"
    path.write_text("title,description\nA,b\nC,d\n")
    with pytest.raises(DataFormatError, match=r"nolabel.csv:1: the header \['title', "
                       r"'description'\] has no label column .*label_column="):
        read_records(path)
    missing = r"nolabel.csv:1: no column 'label' among the header's \['title', 'description'\]"
    with pytest.raises(DataFormatError, match=missing):  # review 19 item 5: not "row is data"
        read_records(path, label_column="label")
    with pytest.raises(DataFormatError, match=missing):
        read_records(path, label_column="label", header=True)
    tsv = tmp_path / "hdr.tsv"
    tsv.write_text("label\ttext\npos\tgood\nneg\tbad\n")
    with pytest.raises(DataFormatError, match=r"no column 'nope' among the header's "
                       r"\['label', 'text'\]; pass text_columns="):
        read_records(tsv, text_columns="nope")
    headerless = tmp_path / "data.csv"
    headerless.write_text("pos,good\nneg,bad\n")
    with pytest.raises(DataFormatError, match=r"expected a header row naming 'label' but the "
                       r"first row is data; pass header=True \(--header yes\)"):
        read_records(headerless, label_column="label")


def test_mixed_label_types(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("1,a\n2,b\nspam,c\n1,d\n")
    with pytest.raises(DataFormatError, match=r"mixed.csv: labels mix integers \('1' at line 1\) "
                       r"and words \('spam' at line 3\); fix the labels"):
        read_records(path)
    path.write_text("label,text\n1,a\n2,b\n")
    with pytest.raises(DataFormatError, match=r"pass header=True \(--header yes\): line 1 looks like a header"):
        read_records(path, header=False)
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": "spam"}\n')
    with pytest.raises(DataFormatError, match="labels mix integers"):
        read_records(jsonl)
    jsonl.write_text('{"text": "a", "label": 1.5}\n')
    with pytest.raises(DataFormatError, match=r"mixed.jsonl:1: expected a string or integer "
                       r"label but got float"):
        read_records(jsonl)


def test_blank_lines_are_skipped_and_lines_counted(tmp_path: Path) -> None:
    path = tmp_path / "blank.tsv"
    path.write_text("\nham\thi\n\n\nspam\twin\n   \nham\tok\n")
    records = read_records(path)
    assert records.texts == ["hi", "win", "ok"] and records.lines == [2, 5, 7]


def test_latin1_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("label,text\npos,ok\nneg,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin.csv:3: expected utf-8 text but byte "
                       r"0xe9 .*encoding="):
        read_records(path)
    assert read_records(path, encoding="latin-1").texts == ["ok", "caf\xe9"]


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n["text", "b"]\n')
    with pytest.raises(DataFormatError, match=r"list.jsonl:2: expected an object with keys "
                       r"\['text', 'label'\] but got 'a JSON list'"):
        read_records(path)
    path.write_text('{"title": "a", "body": "b", "y": -1}\n{"title": "c", "body": "", "y": 1}\n')
    records = read_records(path, text_columns=["title", "body"], label_column="y")
    assert records.texts == [f"a{SEPARATOR}b", "c"] and records.labels == [-1, 1]


def test_empty_text_is_skipped_and_counted(tmp_path: Path, caplog) -> None:
    path = tmp_path / "empty.csv"
    path.write_text('label,text\npos,good\nneg,""\npos,  \nneg,bad\n')
    with caplog.at_level(logging.WARNING, logger="datasets.textfiles"):
        records = read_records(path)
    assert records.texts == ["good", "bad"] and records.skipped_empty == 2
    assert "skipped 2 records with an empty text" in caplog.text


def test_label_with_trailing_spaces_is_stripped_and_logged(tmp_path: Path, caplog) -> None:
    path = tmp_path / "spaces.tsv"
    path.write_text("ham \thi\nham\tyo\nspam\twin\n")
    with caplog.at_level(logging.INFO, logger="datasets.textfiles"):
        ds = TextClassificationDataset.from_file(path)
    assert ds.classes == ["ham", "spam"] and ds.labels == [0, 0, 1]
    assert "removed surrounding spaces from 1 labels" in caplog.text
    empty = tmp_path / "nolabel.tsv"
    empty.write_text("ham\thi\n \tyo\n")
    with pytest.raises(DataFormatError, match=r"nolabel.tsv:2: expected a label but the label "
                       r"is empty"):
        read_records(empty)


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl"])
def test_one_megabyte_single_line(tmp_path: Path, suffix: str) -> None:
    big = "word " * 200_000
    path = tmp_path / f"big.{suffix}"
    if suffix == "jsonl":
        path.write_text(json.dumps({"text": big, "label": "a"}) + "\n")
    else:
        sep = "," if suffix == "csv" else "\t"
        path.write_text(f"a{sep}{big}\nb{sep}short\n")
    assert read_records(path).texts[0] == big


def test_file_of_only_headers_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "head.csv"
    path.write_text("label,title,description\n")
    with pytest.raises(DataFormatError, match="head.csv: expected labelled texts but found no "
                       "record after the header"):
        read_records(path)
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n\n")
    with pytest.raises(DataFormatError, match="found no record in it"):
        read_records(empty)


def test_text_in_the_label_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "swapped.tsv"
    path.write_text("".join(f"message number {i}\tham\n" for i in range(300)))
    with pytest.raises(DataFormatError, match=r"swapped.tsv: the label column has 300 distinct "
                       r"values in 300 records: it looks like text"):
        read_records(path)


def test_labels_of_any_kind_map_to_ids_with_names_kept(tmp_path: Path) -> None:
    for labels, classes in (([1, 2, 4, 2], [1, 2, 4]), ([-1, 1, 1, -1], [-1, 1]),
                            ([0, 1, 0, 1], [0, 1]), (["b", "a", "a", "b"], ["a", "b"])):
        path = tmp_path / "l.jsonl"
        path.write_text("".join(json.dumps({"text": f"t{i}", "label": y}) + "\n"
                                for i, y in enumerate(labels)))
        ds = TextClassificationDataset.from_file(path)
        assert ds.classes == classes and ds.label_encoder is not None
        assert ds.label_encoder.decode(ds.labels) == labels
        assert sorted(set(ds.labels)) == list(range(len(classes)))


def test_class_seen_only_in_test_is_an_error_naming_it(tmp_path: Path) -> None:
    train = TextClassificationDataset.from_file(write_ag_news_csv(tmp_path / "train.csv", 5))
    test = tmp_path / "test.csv"
    test.write_text("label,title,description\n1,a,b\n5,c,d\n")
    with pytest.raises(DataFormatError, match=r"test.csv:3: class 5 is not among the training "
                       r"classes \[1, 2, 3, 4\]"):
        TextClassificationDataset.from_file(test, label_encoder=train.label_encoder)
    assert len(AG_CLASSES) == len(train.classes or [])
