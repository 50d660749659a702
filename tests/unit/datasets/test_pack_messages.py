"""Packing messages: what the CLIs print about odd sources, and what packing refuses up front."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from image_factory import make_image_tree

from datasets import report


def test_report_on_a_device_says_it_is_not_a_folder(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path / "home"))
    assert report.main([os.devnull]) == 1
    err = capsys.readouterr().err
    assert "/dev/null but it is not a folder" in err and "does not exist" not in err
    assert len(err.strip().splitlines()) == 1


def test_report_escapes_newlines_in_file_and_class_names(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path / "home"))
    root = make_image_tree(tmp_path / "t", classes=("A", "B\nfake: 999"), per_class=2)
    (root / "A" / "x.png\n    A-1.png: looks fine").write_bytes(b"not an image")
    assert report.main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "  'B\\nfake: 999'  " in out
    assert "    'A/x.png\\n    A-1.png: looks fine': " in out
    assert "\nfake" not in out and "\n    A-1.png: looks fine" not in out


def test_one_class_folder_is_refused_before_packing(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.packing
    from training.data import load_image_splits

    def no_packing(*args: object, **kwargs: object) -> None:
        raise AssertionError("packed a folder that is refused anyway")

    monkeypatch.setattr(datasets.packing, "pack_folder", no_packing)
    root = make_image_tree(tmp_path / "one", classes=("A",), per_class=12)
    with pytest.raises(ValueError, match=r"at least 2 classes, but .*one holds one class "
                                         r"folder, 'A'"):
        load_image_splits(data_dir=root, root=tmp_path / "home")


@pytest.mark.parametrize("decode_size", [0, -5, 2.5, True, "3"])
def test_decode_size_that_is_not_a_positive_int_is_refused_before_packing(
        tmp_path: Path, decode_size: object) -> None:
    from datasets import ImageFolderDataset

    root = make_image_tree(tmp_path / "t", per_class=2)
    with pytest.raises(ValueError, match=rf"^decode_size should be a positive int or None, but "
                                         rf"got decode_size={re.escape(repr(decode_size))}$"):
        ImageFolderDataset.pack(root, cache_dir=tmp_path / "c", decode_size=decode_size)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("size", [(10, 10, 10), (10,), "10", True, (10.7, 10), (10, None),
                                  {1, 2}, 0, (0, 5), 2.0])
def test_size_that_is_not_a_pair_is_refused(tmp_path: Path, size: object) -> None:
    from datasets import ImageFolderDataset

    root = make_image_tree(tmp_path / "t", per_class=2)
    with pytest.raises(ValueError, match=r"^size should be a positive int or a \(height, width\) "
                                         r"pair of them, but got size="):
        ImageFolderDataset.pack(root, cache_dir=tmp_path / "c", size=size)  # type: ignore[arg-type]


def test_cli_error_naming_a_crafted_file_name_stays_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path / "home"))
    root = tmp_path / "t"
    (root / "A").mkdir(parents=True)
    (root / "A" / "x.png\nerror: fake second line").write_bytes(b"not an image")
    assert report.main([str(root)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "'A/x.png\\nerror: fake second line'" in err


def test_preview_draws_a_class_name_with_a_newline_escaped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageDraw

    from datasets import ImageFolderDataset, preview

    drawn: list[str] = []
    real = ImageDraw.ImageDraw.text

    def record(self, xy, text, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append(text)
        return real(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", record)
    root = make_image_tree(tmp_path / "t", classes=("A", "B\nC"), per_class=1)
    preview.save_grid(ImageFolderDataset(root), tmp_path / "g.png", count=2)
    assert sorted(drawn) == ["'B\\nC'", "A"]


CRAFTED = "x\n\x1b[32mok"  # a newline and a terminal colour code in a folder name


@pytest.mark.parametrize("cli", ["report", "shard"])
def test_cli_errors_escape_a_crafted_root_and_class_name(
        cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import shard

    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path / "home"))
    root = tmp_path / CRAFTED
    (root / "only\x1b[31m" / "sub").mkdir(parents=True)
    make_image_tree(root / "only\x1b[31m" / "sub", classes=("c",), per_class=1)
    argv = [str(root)] if cli == "report" else [str(root), str(tmp_path / "o"), "-q"]
    assert (report.main(argv) if cli == "report" else shard.main(argv)) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and len(err.strip().splitlines()) == 1
    assert repr(str(root)) in err and "'only\\x1b[31m'" in err


@pytest.mark.parametrize("layout", ["missing", "empty-class", "no-class"])
def test_folder_errors_escape_the_root_and_class_names(layout: str, tmp_path: Path) -> None:
    from datasets import DatasetNotFoundError, ImageFolderDataset

    root = tmp_path / CRAFTED
    if layout == "empty-class":
        make_image_tree(root, classes=("A",), per_class=1)
        (root / "B\x1b[0m").mkdir()
    elif layout == "no-class":
        root.mkdir()
    with pytest.raises(DatasetNotFoundError) as caught:
        ImageFolderDataset(root)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)
    assert repr(str(root)) in str(caught.value)


def test_report_header_escapes_a_crafted_root(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path / "home"))
    root = make_image_tree(tmp_path / CRAFTED, per_class=2)
    assert report.main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and out.startswith(f"dataset: {str(root)!r}")


@pytest.mark.parametrize("max_side", [0, 2.5, True, "64"])
def test_max_side_that_is_not_a_positive_int_is_refused(max_side: object) -> None:
    from datasets.packing import PackOptions

    with pytest.raises(ValueError, match=r"^max_side should be a positive int, but got "
                                         r"max_side="):
        PackOptions(max_side=max_side)  # type: ignore[arg-type]


def test_numpy_ints_are_sizes() -> None:
    import numpy as np

    from datasets.packing import PackOptions

    options = PackOptions(size=np.int64(5), max_side=None)  # type: ignore[arg-type]
    assert options.size == (5, 5) and type(options.size[0]) is int
    assert PackOptions(size=(np.int32(4), 6)).size == (4, 6)  # type: ignore[arg-type]
    assert PackOptions(max_side=np.int64(64)).max_side == 64  # type: ignore[arg-type]
