"""The packed text cache is built as the image caches are: umask's mode, and a key that
notices a file rewritten with its mtime put back."""

from __future__ import annotations

import os
from pathlib import Path

from datasets.textpack import PackedTextDataset


def test_text_cache_folder_gets_the_umasks_mode(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("ham\thello there\nspam\twin money now\n", encoding="utf-8")
    old = os.umask(0o022)
    try:
        ds = PackedTextDataset.from_file(path, cache_dir=tmp_path / "cache")
    finally:
        os.umask(old)
    assert ds.pack.path.stat().st_mode & 0o777 == 0o755


def test_text_file_rewritten_with_its_mtime_put_back_is_packed_again(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("ham\thello there\nspam\twin money now\n", encoding="utf-8")
    first = PackedTextDataset.from_file(path, cache_dir=tmp_path / "cache")
    stat = path.stat()
    path.write_text("spam\thello there\nham\twin money now\n", encoding="utf-8")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = PackedTextDataset.from_file(path, cache_dir=tmp_path / "cache")
    assert second.pack.path != first.pack.path
    assert [second.classes[second[i]["label"]] for i in range(2)] == ["spam", "ham"]
