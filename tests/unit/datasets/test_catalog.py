"""The catalog: one table that names datasets, open_dataset, and local paths it recognises."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from idx_factory import write_idx
from image_factory import make_image_tree

import loaders
from datasets import catalog, open_dataset
from datasets.errors import DatasetError, DatasetNotFoundError
from loaders.errors import UnknownDatasetError


def test_catalog_and_registry_name_the_same_datasets() -> None:
    # adding a dataset = one registry entry (its files) + one catalog row (how to read them)
    assert catalog.names() == loaders.registry.names()
    assert set(catalog.names(kind="image")) | set(catalog.names(kind="text")) == set(catalog.names())
    assert {"cifar10", "cifar100", "imagenette-160", "imagenette-320", "hymenoptera"} <= set(
        catalog.names(kind="image"))


def test_every_row_is_well_formed() -> None:
    for name in catalog.names():
        row = catalog.get(name)
        assert row.name == name and row.kind in catalog.KINDS and row.description
        assert row.splits and row.held_out in row.splits and callable(row.build)
        assert row.classes is None or len(row.classes) >= 2
    with pytest.raises(ValueError, match="held_out should be one of \\['train'\\]"):
        catalog.CatalogEntry("x", "image", ("train",), catalog.CATALOG["mnist"].build, "x")


def test_unknown_names_splits_and_options_say_what_to_pass() -> None:
    with pytest.raises(UnknownDatasetError, match="did you mean 'cifar10' or 'cifar100'"):
        open_dataset("cifar", split="train")
    with pytest.raises(ValueError, match=r"split should be one of \['train', 'test'\] for "
                       r"cifar10, but got split='dev'"):
        open_dataset("cifar10", split="dev")
    with pytest.raises(TypeError, match=r"options should be among \['subset'\] for emnist, "
                       r"but got size"):
        open_dataset("emnist", split="train", size=32)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'split'"):
        open_dataset("mnist")  # type: ignore[call-arg]


def test_missing_registry_data_names_the_folder_and_the_command() -> None:
    with pytest.raises(DatasetNotFoundError, match=r"cifar10 not found: looked for "
                       r"cifar-10-python.tar.gz .*`python -m loaders.download cifar10`"):
        open_dataset("cifar10", split="train")
    with pytest.raises(DatasetNotFoundError, match="python -m loaders.download hymenoptera"):
        open_dataset("hymenoptera", split="train")


def test_open_dataset_by_name_on_generated_letters() -> None:
    from loaders.letters import generate

    generate(loaders.dataset_dir("letters") / "letters.tar.gz", count=60, seed=0)
    train = open_dataset("letters", split="train")
    x, y = train[0]
    assert x.shape == (1, 28, 28) and train.classes == list("ABCDEFGHIJ") and 0 <= y < 10
    splits = catalog.open_splits("letters")
    assert list(splits) == ["train", "val", "test"]  # "all" repeats them: left out
    assert sum(len(s) for s in splits.values()) == 60


def test_a_folder_of_split_folders_opens_one_split_each(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    make_image_tree(root / "train", classes=("ants", "bees"), per_class=4)
    make_image_tree(root / "val", classes=("ants", "bees"), per_class=2)
    splits = catalog.open_splits(root)
    assert {k: len(v) for k, v in splits.items()} == {"train": 8, "val": 4}
    assert open_dataset(root, split="val").classes == ["ants", "bees"]
    with pytest.raises(DatasetNotFoundError, match=r"expected split 'test' of .* but found only "
                       r"\['train', 'val'\]"):
        open_dataset(root, split="test")
    # a class named like a split does not make a split folder
    single = make_image_tree(tmp_path / "single", classes=("train", "cats"), per_class=2)
    assert list(catalog.open_splits(single)) == ["all"]


def test_notmnist_idx_files_are_recognised_and_labelled_a_to_j(shared_data: Path,
                                                               tmp_path: Path) -> None:
    test = open_dataset(shared_data / "notmnist-idx", split="test")
    assert test.classes == list("ABCDEFGHIJ")
    # the same layout with other bytes is not notMNIST: digits, as any IDX pair
    copy = tmp_path / "look-alike"
    copy.mkdir()
    shutil.copy(shared_data / "notmnist-idx" / "t10k-images-idx3-ubyte.gz", copy)
    labels = shared_data / "notmnist-idx" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(labels.read_bytes())
    data[-20] ^= 0xFF  # one byte of the gzip trailer area changed: another file
    (copy / labels.name).write_bytes(bytes(data))
    from datasets.local import recognised_classes

    assert recognised_classes([copy / labels.name]) is None


def test_an_image_archive_without_a_suffix_is_recognised_by_content(tmp_path: Path) -> None:
    from image_factory import make_image_archive

    archive = make_image_archive(tmp_path / "download.tar.gz", per_class=2)
    saved = archive.rename(tmp_path / "download")  # as a browser may save it: no suffix
    ds = open_dataset(saved, split="all")
    assert len(ds) == 2 * len(ds.classes) and len(ds.classes) > 1
    (tmp_path / "notes.csv.gz").write_bytes(gzip.compress(b"label,text\n"))
    from datasets.local import is_archive

    assert not is_archive(tmp_path / "notes.csv.gz") and is_archive(saved)


def test_an_idx_folder_of_unknown_files_keeps_digit_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "idx", "t10k", rng.integers(0, 256, (6, 28, 28)), np.arange(6) % 3)
    assert open_dataset(tmp_path / "idx", split="test").classes == ["0", "1", "2"]
    with pytest.raises(TypeError, match="apply to image folders, not to the IDX files"):
        open_dataset(tmp_path / "idx", split="test", size=32)


def test_text_rows_read_their_published_files() -> None:
    # the catalog's text rows call datasets.textcorpora.open_text_corpus
    folder = loaders.dataset_dir("ag-news")
    with pytest.raises(DatasetNotFoundError, match="ag-news"):
        open_dataset("ag-news", split="test")
    folder.mkdir(parents=True)
    rows = '"1","Talks","Leaders met."\n"2","Cup","A goal."\n"3","Oil","Prices fell."\n' \
        '"4","Chips","A new CPU."\n'
    (folder / "train.csv").write_text(rows)
    (folder / "test.csv").write_text(rows)
    test = open_dataset("ag-news", split="test")
    assert len(test) == 4 and len(test.classes) == 4
    assert set(catalog.open_splits("ag-news")) == {"train", "test"}


def test_a_registry_name_without_a_row_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delitem(catalog.CATALOG, "kmnist")
    with pytest.raises(DatasetError, match="'kmnist' is in the registry but has no catalog row"):
        catalog.get("kmnist")


def test_archived_image_folders_are_extracted_once_and_packed_per_split(tmp_path: Path) -> None:
    import zipfile

    tree = tmp_path / "hymenoptera_data"
    make_image_tree(tree / "train", classes=("ants", "bees"), per_class=3, size=20)
    make_image_tree(tree / "val", classes=("ants", "bees"), per_class=2, size=20)
    folder = loaders.dataset_dir("hymenoptera")
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "hymenoptera_data.zip", "w") as archive:
        for path in sorted(tree.rglob("*.png")):
            archive.write(path, path.relative_to(tmp_path).as_posix())
    # the downloaded zip is there (no network needed): verified, pinned, extracted, packed
    val = open_dataset("hymenoptera", split="val")
    assert len(val) == 4 and val.classes == ["ants", "bees"]
    assert (folder / "hymenoptera_data" / "train" / "bees").is_dir()
    x, _ = val[0]
    assert x.shape == (1, 20, 20)  # mode=None keeps what the data have: these PNGs are grey
    assert {k: len(v) for k, v in catalog.open_splits("hymenoptera").items()} == {"train": 6,
                                                                                  "val": 4}
    small = open_dataset("hymenoptera", split="train", size=8)
    assert small[0][0].shape == (1, 8, 8)
    assert open_dataset("hymenoptera", split="val", mode="RGB")[0][0].shape == (3, 20, 20)


def test_imagenette_splits_are_its_train_and_val_folders() -> None:
    # laid out as imagenette2-160.tgz extracts (its md5 would refuse a fabricated archive;
    # verify-and-extract is the hymenoptera test's)
    wnids = ("n01440764", "n02102040")
    top = loaders.dataset_dir("imagenette-160") / "imagenette2-160"
    for split, count in (("train", 3), ("val", 2)):
        make_image_tree(top / split, classes=wnids, per_class=count, size=16)
    (top / "noisy_imagenette.csv").write_text("path,noisy_labels_0\n")
    splits = catalog.open_splits("imagenette-160", size=8)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 4}
    assert splits["val"].classes == list(wnids) and splits["val"][0][0].shape[-2:] == (8, 8)
    assert catalog.get("imagenette-160").held_out == "val"


def test_valid_is_the_deprecated_spelling_of_val_everywhere() -> None:
    from datasets import NotMNIST
    from loaders.letters import generate

    generate(loaders.dataset_dir("letters") / "letters.tar.gz", count=60, seed=0)
    val = open_dataset("letters", split="val")
    with pytest.warns(DeprecationWarning, match="split='valid' is deprecated.*pass split='val'"):
        old = open_dataset("letters", split="valid")
    assert torch.equal(old.data, val.data)
    with pytest.warns(DeprecationWarning):
        assert torch.equal(NotMNIST(split="valid", variant="letters").data, val.data)


def test_open_dataset_takes_target_transform() -> None:
    from loaders.letters import generate

    generate(loaders.dataset_dir("letters") / "letters.tar.gz", count=60, seed=0)
    ds = open_dataset("letters", split="test", target_transform=lambda y: y + 100)
    assert ds[0][1] == int(ds.targets[0]) + 100
    from datasets import DataLoader

    images, labels = next(iter(DataLoader(ds, batch_size=4)))
    assert labels.tolist() == [int(t) + 100 for t in ds.targets[:4]]
