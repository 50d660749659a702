"""The packed cache key covers folder, class list and rewrites; what a folder scan skips."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import datasets.packed
from datasets import DatasetError, DatasetNotFoundError, ImageFolderDataset, PackedCacheError


def _ppm(value: int) -> bytes:
    """A 4x4 grey-valued colour PPM: every image has the same size in bytes."""
    return b"P6\n4 4\n255\n" + bytes([value]) * 48


def _tree(root: Path, value: int, classes: tuple[str, ...] = ("a", "b")) -> Path:
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            path = root / name / f"{i}.ppm"
            path.write_bytes(_ppm(value + 10 * label + i))
            os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return root


def test_two_folders_with_equal_names_sizes_and_mtimes_get_two_caches(tmp_path: Path) -> None:
    v1 = _tree(tmp_path / "v1", 10)
    v2 = _tree(tmp_path / "v2", 100)  # same names, sizes, mtimes: what cp -p / tar x leave
    first = ImageFolderDataset.pack(v1, cache_dir=tmp_path / "c")
    second = ImageFolderDataset.pack(v2, cache_dir=tmp_path / "c")
    assert second.packed.path != first.packed.path
    assert int(second.data[0, 0, 0, 0]) == 100 and int(first.data[0, 0, 0, 0]) == 10
    assert second.manifest["source"]["path"] == str(v2.resolve())


def test_cp_p_copy_of_a_folder_gets_its_own_cache(tmp_path: Path) -> None:
    v1 = _tree(tmp_path / "v1", 10)
    first = ImageFolderDataset.pack(v1, cache_dir=tmp_path / "c")
    v2 = tmp_path / "v2"
    shutil.copytree(v1, v2, copy_function=shutil.copy2)  # cp -p
    assert ImageFolderDataset.pack(v2, cache_dir=tmp_path / "c").packed.path != first.packed.path


def test_file_rewritten_in_place_with_its_mtime_put_back_is_packed_again(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t", 10)
    first = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    victim = root / "a" / "0.ppm"
    before = victim.stat()
    victim.write_bytes(_ppm(200))  # same size
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))  # as rsync -t leaves it
    second = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert second.packed.path != first.packed.path
    assert int(second.data[0, 0, 0, 0]) == 200


def test_new_empty_class_folder_with_allow_empty_changes_the_class_list(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t", 10)
    first = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c", allow_empty=True)
    (root / "c").mkdir()
    second = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c", allow_empty=True)
    assert first.classes == ["a", "b"]
    assert second.classes == ["a", "b", "c"]
    assert second.manifest["counts"] == {"a": 2, "b": 2, "c": 0}


def test_unchanged_folder_reuses_its_cache(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t", 10)
    first = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert ImageFolderDataset.pack(root, cache_dir=tmp_path / "c").packed.path == first.packed.path


def test_dangling_symlink_is_listed_in_skipped(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t", 10)
    (root / "a" / "gone.ppm").symlink_to(tmp_path / "nowhere.ppm")
    for ds in (ImageFolderDataset(root), ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")):
        assert len(ds) == 4
        reasons = {name.split("/")[-1]: reason for name, reason in ds.skipped}
        assert "dangling symbolic link" in reasons["gone.ppm"]


def test_symlink_loops_are_skipped_and_listed_not_an_oserror(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t", 10)
    (root / "a" / "self.ppm").symlink_to(root / "a" / "self.ppm")  # ELOOP
    (root / "b" / "up").symlink_to("..")  # back to the root: an endless walk
    ds = ImageFolderDataset(root)
    assert len(ds) == 4
    reasons = dict(ds.skipped)
    assert "cannot be followed" in reasons["a/self.ppm"]
    assert "already read" in reasons["b/up"]
    packed = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert len(packed) == 4 and "a/self.ppm" in dict(packed.skipped)


def test_root_that_is_a_device_is_named_as_not_a_folder() -> None:
    with pytest.raises(DatasetNotFoundError, match=r"/dev/null but it is not a folder"):
        ImageFolderDataset("/dev/null")


def test_cache_folders_get_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ds = ImageFolderDataset.pack(_tree(tmp_path / "t", 10), cache_dir=tmp_path / "c")
    finally:
        os.umask(old)
    assert stat.S_IMODE(ds.packed.path.stat().st_mode) == 0o755


def test_cold_read_only_cache_raises_a_dataset_error_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "c"
    (cache / "packed").mkdir(parents=True)
    (cache / "packed").chmod(0o555)
    if os.geteuid() == 0:  # root writes into a 0555 folder: make the lock file fail as EROFS
        real_open = os.open

        def read_only(path: str, *args: object, **kwargs: object) -> int:
            if str(path).endswith(".lock"):
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "open", read_only)
    try:
        with pytest.raises(PackedCacheError, match=r"DATAFERRY_HOME") as info:
            ImageFolderDataset.pack(_tree(tmp_path / "t", 10), cache_dir=cache)
    finally:
        (cache / "packed").chmod(0o755)
    assert isinstance(info.value, DatasetError)
    assert str(cache / "packed") in str(info.value)
    assert str(info.value).count("writable folder") == 1  # the advice, once


def test_full_disk_while_packing_names_the_cache(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: object, images: np.ndarray, labels: np.ndarray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(datasets.packed.PackWriter, "append", full)
    with pytest.raises(PackedCacheError, match=r"cannot write the packed cache .*c/packed/folder-"
                                               r".*No space left on device.*free space"):
        ImageFolderDataset.pack(_tree(tmp_path / "t", 10), cache_dir=tmp_path / "c", size=4)
    assert not list((tmp_path / "c" / "packed").glob(".folder-*.tmp-*"))  # temp folder removed


def test_pack_larger_than_free_disk_is_refused_before_writing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def tiny(path: object) -> shutil._ntuple_diskusage:  # type: ignore[name-defined]
        return shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000)  # type: ignore[attr-defined]

    monkeypatch.setattr(datasets.packed.shutil, "disk_usage", tiny)
    root = _tree(tmp_path / "t", 10)
    with pytest.raises(PackedCacheError, match=r"needs at least 19,200 bytes in .*c/packed but "
                                               r"only 1,000 bytes are free"):
        ImageFolderDataset.pack(root, cache_dir=tmp_path / "c", size=40, mode="RGB")
    assert not list((tmp_path / "c" / "packed").glob(".folder-*.tmp-*"))


def test_removed_file_gives_a_new_cache(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t", 10)
    first = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    (root / "b" / "1.ppm").unlink()
    second = ImageFolderDataset.pack(root, cache_dir=tmp_path / "c")
    assert second.packed.path != first.packed.path and len(second) == 3


def test_archive_larger_than_free_disk_is_refused_before_writing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tarfile

    def tiny(path: object) -> shutil._ntuple_diskusage:  # type: ignore[name-defined]
        return shutil._ntuple_diskusage(10**9, 10**9 - 10, 10)  # type: ignore[attr-defined]

    root = _tree(tmp_path / "t", 10)
    archive = tmp_path / "t.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname="t")
    monkeypatch.setattr(datasets.packed.shutil, "disk_usage", tiny)
    with pytest.raises(PackedCacheError, match=rf"needs at least {archive.stat().st_size:,} "
                                               r"bytes in .* but only 10 bytes are free"):
        ImageFolderDataset.from_archive(archive, cache_dir=tmp_path / "c")


def test_a_rebuild_names_the_earlier_cache_of_the_same_source_and_its_size(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _tree(tmp_path / "t", 10)
    cache = tmp_path / "c"
    first = ImageFolderDataset.pack(root, cache_dir=cache)
    other_size = ImageFolderDataset.pack(root, cache_dir=cache, size=8)  # other options: kept
    os.chmod(next((root / "a").iterdir()), 0o600)  # ctime changes: a new cache
    with caplog.at_level(logging.WARNING, logger="datasets.superseded"):
        second = ImageFolderDataset.pack(root, cache_dir=cache)
    assert second.packed.path != first.packed.path
    assert str(first.packed.path) in caplog.text and "replaces 1 earlier one" in caplog.text
    assert str(other_size.packed.path) not in caplog.text
    assert first.packed.path.exists()  # named, not deleted: another process may read it
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datasets.superseded"):
        ImageFolderDataset.pack(root, cache_dir=cache)  # a warm open reads no other manifest
    assert caplog.text == ""


def test_a_split_derived_from_a_cache_is_not_named_as_an_earlier_version(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The quickstart packs an archive, then its train split as archive-KEY-train-…: the same
    # source and options, but a derived cache, not one that the rebuild replaces.
    from datasets.superseded import report_superseded

    def cache(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps(
            {"kind": "archive", "source": {"path": "/data/x.tar"}, "options": {"size": None}}))
        return folder

    cache("archive-aaaa")
    cache("archive-aaaa-train-v0.1-t0.1-s0")
    with caplog.at_level(logging.WARNING, logger="datasets.superseded"):
        assert report_superseded(tmp_path / "archive-aaaa-train-v0.1-t0.1-s0") == []
        assert report_superseded(cache("archive-bbbb-train-v0.1-t0.1-s0")) == [
            tmp_path / "archive-aaaa-train-v0.1-t0.1-s0"]
