"""Issue 16 (text side): header detection, unknown encodings, FIFOs and oversized files."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.textfiles import read_records


@pytest.fixture
def spam_file(tmp_path: Path) -> Path:
    path = tmp_path / "spam.tsv"
    path.write_text("ham\tsee you later\nspam\twin cash now\n")
    return path


def test_read_records_refuses_an_unknown_encoding_as_a_value_error(spam_file: Path) -> None:
    with pytest.raises(ValueError, match="but got encoding='nosuchcodec'"):
        read_records(spam_file, encoding="nosuchcodec")
