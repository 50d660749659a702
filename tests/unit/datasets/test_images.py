"""ImageFolderDataset, archives and NotMNIST on fake trees built in tmp_path."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from image_factory import image_for, make_image_archive, make_image_tree

import datasets.packing
from datasets import (
    DataFormatError,
    DataLoader,
    DatasetNotFoundError,
    ImageFolderDataset,
    NotMNIST,
    PackedImageFolder,
    ToFloat,
)
from datasets.notmnist import split_indices

CORRUPT = [("A", "empty"), ("B", "not-png"), ("C", "truncated"), ("A", "truncated")]


def test_image_folder_classes_labels_and_pixels(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", classes=("B", "A", "C"), per_class=3)
    ds = ImageFolderDataset.pack(tmp_path / "t")
    assert ds.classes == ["A", "B", "C"]
    assert len(ds) == 9
    assert ds.targets.dtype == torch.int64
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # factory: classes given as (B, A, C) so folder "A" was written with label index 1
    assert np.array_equal(ds.data[0].numpy(), image_for(1, 0))
    assert ds.data.dtype == torch.uint8 and ds.data.shape == (9, 28, 28)


def test_image_folder_item_is_normalized_float(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=2)
    ds = ImageFolderDataset.pack(tmp_path / "t")
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    expected = (torch.from_numpy(image_for(1, 1)).float() / 255 - 0.5) / 0.5
    assert torch.allclose(x[0], expected, atol=1e-6)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def test_image_folder_skips_and_lists_corrupt_images(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    make_image_tree(tmp_path / "t", per_class=4, corrupt=CORRUPT)
    with caplog.at_level(logging.WARNING):
        ds = ImageFolderDataset.pack(tmp_path / "t")
    assert len(ds) == 12
    reasons = dict(ds.skipped)
    assert set(reasons) == {"A/bad-0-empty.png", "B/bad-1-not-png.png",
                            "C/bad-2-truncated.png", "A/bad-3-truncated.png"}
    assert reasons["A/bad-0-empty.png"] == "empty file (0 bytes)"
    assert reasons["B/bad-1-not-png.png"].startswith("not an image Pillow can read")
    assert reasons["C/bad-2-truncated.png"].startswith("corrupt or truncated PNG")
    assert ds.manifest["num_skipped"] == 4
    assert ds.manifest["counts"] == {"A": 4, "B": 4, "C": 4}
    assert "skipped 4 unreadable image(s)" in caplog.text


def test_image_folder_empty_class_folder_needs_allow_empty(tmp_path: Path) -> None:
    root = make_image_tree(tmp_path / "t", classes=("A", "C"), per_class=2)
    (root / "B").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"class folder\(s\) B of .*allow_empty=True"):
        ImageFolderDataset.pack(root)
    with pytest.raises(DatasetNotFoundError, match="allow_empty=True"):
        ImageFolderDataset(root)
    ds = ImageFolderDataset.pack(root, allow_empty=True)
    assert ds.classes == ["A", "B", "C"] and ds.targets.tolist() == [0, 0, 2, 2]
    assert ds.manifest["counts"] == {"A": 2, "B": 0, "C": 2}
    plain = ImageFolderDataset(root, allow_empty=True)
    assert plain.classes == ["A", "B", "C"] and plain.targets == [0, 0, 2, 2]


def test_image_folder_data_is_memory_mapped(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=2)
    ds = ImageFolderDataset.pack(tmp_path / "t")
    assert isinstance(ds, PackedImageFolder)
    pointer = ds.data.data_ptr()  # opens the map (lazily, on first use)
    images_file = str(ds.packed.path / "images.u8")
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith(images_file):
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            ranges.append((start, end))
    assert ranges, "the cache file is not mapped into this process"
    assert any(start <= pointer < end for start, end in ranges)


def test_image_folder_per_sample_torchvision_transform(tmp_path: Path) -> None:
    from torchvision.transforms import v2

    make_image_tree(tmp_path / "t", per_class=2)
    seen = []

    def spy(image: Any) -> Any:
        seen.append((type(image).__module__, image.mode, image.size))
        return image

    transform = v2.Compose([spy, v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    ds = ImageFolderDataset.pack(tmp_path / "t", transform=transform, target_transform=lambda y: -y)
    x, y = ds[2]
    assert seen == [("PIL.Image", "L", (28, 28))] and y == -1  # as torchvision's datasets give
    assert torch.allclose(x[0], torch.from_numpy(image_for(1, 0)).float() / 255)
    batch = ds.__getitems__([0, 2])
    assert isinstance(batch, list) and len(batch) == 2


def test_image_folder_uncached_matches_packed(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=3)
    cached = ImageFolderDataset.pack(tmp_path / "t")
    plain = ImageFolderDataset(tmp_path / "t", mode=None)
    assert len(plain) == len(cached) and plain.classes == cached.classes
    assert plain.targets == cached.targets.tolist()
    assert [p for p, _ in plain.samples] == [p for p, _ in cached.samples]
    assert torch.equal(plain[4][0], cached[4][0])
    x, y = next(iter(DataLoader(plain, batch_size=5)))
    assert torch.equal(x, cached.__getitems__(range(5)).images) and y.tolist() == [0] * 3 + [1] * 2
    rgb = ImageFolderDataset(tmp_path / "t")  # torchvision's default: RGB
    assert rgb[0][0].shape == (3, 28, 28) and torch.equal(rgb[0][0][2], cached[0][0][0])


def test_image_folder_uncached_raises_on_unreadable_file(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=1, corrupt=[("A", "not-png")])
    ds = ImageFolderDataset(tmp_path / "t")
    with pytest.raises(DataFormatError, match=r"bad-0-not-png\.png: not an image"):
        [ds[i] for i in range(len(ds))]


def test_image_folder_missing_root_says_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nowhere but it does not exist"):
        ImageFolderDataset(tmp_path / "nowhere")
    archive = make_image_archive(tmp_path / "t.tar.gz", top="t", classes=("A",), per_class=1)
    with pytest.raises(DatasetNotFoundError, match=r"t.tar.gz but it is a file; .*from_archive"):
        ImageFolderDataset(archive)


def test_image_folder_one_level_too_high_says_where_to_point(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "notmnist" / "notMNIST_small", per_class=1)
    with pytest.raises(DatasetNotFoundError, match=r"point root at .*notMNIST_small"):
        ImageFolderDataset(tmp_path / "notmnist")


def test_from_archive_equals_extracted_folder(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=6, corrupt=CORRUPT)
    archive = make_image_archive(tmp_path / "a.tar.gz", per_class=6, corrupt=CORRUPT)
    folder = ImageFolderDataset.pack(tmp_path / "t")
    packed = ImageFolderDataset.from_archive(archive)
    assert packed.classes == folder.classes
    assert torch.equal(packed.data, folder.data) and torch.equal(packed.targets, folder.targets)
    assert [p.split("/", 1)[1] for p, _ in packed.skipped] == [p for p, _ in folder.skipped]
    assert [r for _, r in packed.skipped] == [r for _, r in folder.skipped]
    assert packed.manifest["source"]["type"] == "archive"
    assert isinstance(packed, PackedImageFolder) and packed.root == archive


def test_from_archive_with_two_worker_processes(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets.packing, "CHUNK_SIZE", 16)  # several chunks for the pool
    archive = make_image_archive(tmp_path / "a.tar.gz", per_class=40, corrupt=CORRUPT)
    serial = ImageFolderDataset.from_archive(archive, workers=0, cache_dir=tmp_path / "h0")
    parallel = ImageFolderDataset.from_archive(archive, workers=2, cache_dir=tmp_path / "h2")
    assert torch.equal(serial.data, parallel.data)
    assert serial.skipped == parallel.skipped and len(serial.skipped) == 4


def test_from_archive_fabricated_notmnist_shape(tmp_path: Path) -> None:
    """An archive shaped like notMNIST_small: A-J, its two unreadable files by their names."""
    classes = tuple("ABCDEFGHIJ")
    bad_a = "RGVtb2NyYXRpY2FCb2xkT2xkc3R5bGUgQm9sZC50dGY=.png"
    bad_f = "Q3Jvc3NvdmVyIEJvbGRPYmxpcXVlLnR0Zg==.png"
    corrupt = [("A", "empty", bad_a), ("F", "not-png", bad_f)]
    archive = make_image_archive(tmp_path / "notMNIST_small.tar.gz", top="notMNIST_small",
                                 classes=classes, per_class=12, corrupt=corrupt)
    ds = ImageFolderDataset.from_archive(archive)
    assert len(ds) == 120 and ds.classes == list(classes)
    assert ds.skipped == [
        (f"notMNIST_small/A/{bad_a}", "empty file (0 bytes)"),
        (f"notMNIST_small/F/{bad_f}",
         "not an image Pillow can read (starts with b'<html>th')"),
    ]
    assert ds.manifest["num_skipped"] == 2
    assert set(ds.manifest["counts"].values()) == {12}
    assert ds.targets.bincount().tolist() == [12] * 10


def test_folder_packing_with_two_worker_processes(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets.packing, "CHUNK_SIZE", 16)  # several chunks for the pool
    make_image_tree(tmp_path / "t", per_class=30, corrupt=CORRUPT)
    serial = ImageFolderDataset.pack(tmp_path / "t", workers=0, cache_dir=tmp_path / "h0")
    parallel = ImageFolderDataset.pack(tmp_path / "t", workers=2, cache_dir=tmp_path / "h2")
    assert torch.equal(serial.data, parallel.data) and serial.skipped == parallel.skipped


def test_from_archive_without_images_raises(tmp_path: Path) -> None:
    archive = tmp_path / "empty.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    with pytest.raises(DataFormatError, match="found none"):
        ImageFolderDataset.from_archive(archive)


def test_dataset_pickles_without_pixels(tmp_path: Path) -> None:
    import pickle

    make_image_tree(tmp_path / "t", per_class=50)
    ds = ImageFolderDataset.pack(tmp_path / "t")
    _ = ds.data
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000  # 150 images of 784 bytes would not fit
    clone = pickle.loads(blob)
    assert torch.equal(clone.data, ds.data)


def test_split_indices_are_stratified_disjoint_and_seeded() -> None:
    labels = np.repeat(np.arange(3), [20, 30, 50])
    a = split_indices(labels, valid=0.1, test=0.2, seed=0)
    b = split_indices(labels, valid=0.1, test=0.2, seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    joined = np.concatenate([a["train"], a["val"], a["test"]])
    assert sorted(joined.tolist()) == list(range(100))
    assert np.bincount(labels[a["test"]]).tolist() == [4, 6, 10]


def _put_letters_archive(home: Path, name: str, top: str, per_class: int) -> None:
    folder = home / name
    folder.mkdir(parents=True)
    make_image_archive(folder / f"{top}.tar.gz", top=top, classes=tuple("ABCDEFGHIJ"),
                       per_class=per_class, corrupt=[("A", "empty")])


def test_notmnist_small_splits_from_archive(tmp_path: Path) -> None:
    _put_letters_archive(tmp_path, "notmnist", "notMNIST_small", per_class=20)
    parts = {s: NotMNIST(tmp_path, split=s) for s in ("train", "val", "test", "all")}
    assert [len(parts[s]) for s in ("train", "val", "test", "all")] == [160, 20, 20, 200]
    assert parts["train"].classes == list("ABCDEFGHIJ")
    assert parts["test"].skipped == [("notMNIST_small/A/bad-0-empty.png", "empty file (0 bytes)")]
    rows = {s: {parts[s].data[i].numpy().tobytes() for i in range(len(parts[s]))}
            for s in ("train", "val", "test")}
    assert not rows["train"] & rows["test"] and not rows["val"] & rows["test"]
    again = NotMNIST(tmp_path, split="train")
    assert torch.equal(again.data, parts["train"].data)


def test_notmnist_large_variant_tests_on_small(tmp_path: Path) -> None:
    _put_letters_archive(tmp_path, "notmnist", "notMNIST_small", per_class=5)
    _put_letters_archive(tmp_path, "notmnist-large", "notMNIST_large", per_class=20)
    train = NotMNIST(tmp_path, split="train", variant="large")
    valid = NotMNIST(tmp_path, split="val", variant="large")
    test = NotMNIST(tmp_path, split="test", variant="large")
    assert (len(train), len(valid), len(test)) == (180, 20, 50)


def test_notmnist_missing_data_names_folder_and_command(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        NotMNIST(tmp_path, split="train")
    message = str(info.value)
    assert str(tmp_path / "notmnist") in message
    assert "python -m loaders.download notmnist" in message
    with pytest.raises(DatasetNotFoundError, match=r"^NotMNIST\(variant='idx'\) test files not "
                       r"found: looked for t10k-images-idx3-ubyte.gz"):
        NotMNIST(tmp_path, split="test", variant="idx")


def test_notmnist_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant should be one of"):
        NotMNIST(tmp_path, variant="huge")
    with pytest.raises(ValueError, match="split should be one of"):
        NotMNIST(tmp_path, split="validation")


def test_tofloat_custom_transform_on_dataset(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "t", per_class=2)
    ds = ImageFolderDataset.pack(tmp_path / "t", transform=ToFloat(mean=0.0, std=1.0))
    x, _ = ds[0]
    assert torch.allclose(x[0], torch.from_numpy(image_for(0, 0)).float() / 255)


def test_notmnist_download_fetches_the_archive_unextracted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loaders

    calls = []

    def fake_fetch(name: str, root: object = None, **kwargs: object) -> Path:
        calls.append((name, kwargs))
        _put_letters_archive(tmp_path, "notmnist", "notMNIST_small", per_class=10)
        return tmp_path / "notmnist"

    monkeypatch.setattr(loaders, "fetch", fake_fetch)
    ds = NotMNIST(tmp_path, split="all", download=True)
    assert calls == [("notmnist", {"extract": False})]
    assert len(ds) == 100
    NotMNIST(tmp_path, split="test", download=True)  # present now: no second fetch
    assert len(calls) == 1


def test_notmnist_packs_an_extracted_folder_too(tmp_path: Path) -> None:
    make_image_tree(tmp_path / "notmnist" / "notMNIST_small", classes=tuple("ABCDEFGHIJ"),
                    per_class=10)
    assert len(NotMNIST(tmp_path, split="val")) == 10


@pytest.mark.integration
def test_notmnist_letters_variant_end_to_end(tmp_path: Path) -> None:
    """The built-in letters data: loaders generates the archive, we pack it unextracted."""
    train = NotMNIST(tmp_path, split="train", variant="letters", download=True)
    test = NotMNIST(tmp_path, split="test", variant="letters")
    assert len(train) + len(test) + len(NotMNIST(tmp_path, split="val", variant="letters")) \
        == 20_000
    assert train.classes == list("ABCDEFGHIJ") and train.skipped == []
    assert not (tmp_path / "letters" / "letters").exists()  # never extracted
    x, y = next(iter(DataLoader(train, batch_size=256, shuffle=True,
                                generator=torch.Generator().manual_seed(0))))
    assert x.shape == (256, 1, 28, 28) and y.max() <= 9


def test_loader_and_is_valid_file_behave_as_torchvision_image_folder(tmp_path: Path) -> None:
    from PIL import Image
    from torchvision import datasets as tv_datasets

    for cls in ("bee", "ant"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (4 + i, 5), (40 * i, 0, 0)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")

    def keep(path: str) -> bool:  # drops image 1 and the text file
        return path.endswith(".png") and not path.endswith("1.png")

    def loader(path: str) -> tuple[str, int]:  # anything: what __getitem__ hands back
        return Path(path).name, Image.open(path).size[0]

    ours = ImageFolderDataset(tmp_path, loader=loader, is_valid_file=keep)
    theirs = tv_datasets.ImageFolder(str(tmp_path), loader=loader, is_valid_file=keep)
    assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
    assert [(Path(p).relative_to(tmp_path), t) for p, t in ours.samples] == [
        (Path(p).relative_to(tmp_path), t) for p, t in theirs.samples]
    assert ours.targets == theirs.targets
    assert [ours[i] for i in range(len(ours))] == [theirs[i] for i in range(len(theirs))]
