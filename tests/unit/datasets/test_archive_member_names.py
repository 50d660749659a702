"""Image archives: zip and tar members follow one policy for outside names (issue 16 item 18)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from datasets import archivemembers
from datasets.errors import DataFormatError


def _zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, b"\x89PNG fake")
    return path


def _tar(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 9
            archive.addfile(info, io.BytesIO(b"\x89PNG fake"))
    return path


@pytest.mark.parametrize("bad", ["top/../A/x.png", "../A/x.png", "/A/x.png"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_zip_and_tar_members_share_one_policy(tmp_path: Path, kind: str, bad: str) -> None:
    # zip members with '..' were dropped silently while tar refused them (issue 16 item 18)
    write = _zip if kind == "zip" else _tar
    archive = write(tmp_path / f"images.{kind}", ["top/A/ok.png", bad])
    with pytest.raises(DataFormatError, match=r"has a '\.\.' part|absolute path") as err:
        list(archivemembers.iter_members(archive))
    assert repr(bad) in str(err.value) and str(err.value).count(str(archive)) == 1


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_plain_members_are_read_from_zip_and_tar_alike(tmp_path: Path, kind: str) -> None:
    write = _zip if kind == "zip" else _tar
    archive = write(tmp_path / f"images.{kind}", ["top/A/ok.png", "./top/B/x.png", "README"])
    assert [name for name, _ in archivemembers.iter_members(archive)] == ["top/A/ok.png",
                                                                          "top/B/x.png"]
