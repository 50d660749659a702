"""A folder or archive whose files are all unreadable is refused with one clear error."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from datasets import DataFormatError, ImageFolderDataset, preview, report


def _bad_folder(tmp_path: Path) -> Path:
    root = tmp_path / "F"
    (root / "a").mkdir(parents=True)
    (root / "a" / "bad.jpg").write_text("not an image\n")
    (root / "a" / "worse.png").write_bytes(b"\x89PNG truncated")
    return root


def test_pack_of_only_unreadable_files_names_folder_count_and_reason(tmp_path: Path) -> None:
    root = _bad_folder(tmp_path)
    with pytest.raises(DataFormatError, match=r"no readable image in .*F: all 2 file\(s\) "
                                              r"skipped \(first: a/bad.jpg: "):
        ImageFolderDataset.pack(root, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("manifest.json"))  # no empty cache published


def test_archive_of_only_unreadable_members_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        data = b"not an image\n"
        info = tarfile.TarInfo("top/a/bad.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataFormatError, match=r"no readable image in .*bad.tar: all 1 file"):
        ImageFolderDataset.from_archive(path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("cli", [report, preview])
def test_cli_on_unreadable_folder_prints_one_error_line_and_exits_1(
        cli: object, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path / "cache"))
    root = _bad_folder(tmp_path)
    argv = [str(root)] if cli is report else [str(root), "--out", str(tmp_path / "g.png")]
    assert cli.main(argv) == 1  # type: ignore[attr-defined]
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: found no readable image in ")
    assert "Traceback" not in "\n".join(err)


def test_training_fit_on_unreadable_folder_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from training.cli import main

    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path / "cache"))
    root = _bad_folder(tmp_path)
    (root / "b").mkdir()  # two classes: one class alone is refused before any file is read
    (root / "b" / "bad.png").write_bytes(b"not an image either")
    assert main(["fit", "--data-dir", str(root), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "-q"]) == 1
    err = capsys.readouterr().err
    assert "found no readable image in " in err and "Traceback" not in err
