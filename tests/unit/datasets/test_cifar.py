"""CIFAR-10/100: the python batches read from a real (fake) tar.gz, pixels, labels, safety."""

from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest
import responses
from cifar_factory import CIFAR10_NAMES, make_cifar_archive

from datasets.cifar import CIFAR10_LAYOUT, CIFAR100_LAYOUT, batch_images, load_batch, read_split
from datasets.errors import DataFormatError


def test_read_split_returns_every_train_batch_in_published_order(tmp_path) -> None:
    fake = make_cifar_archive(tmp_path, "cifar10", per_batch=4, test_count=5)
    images, labels, names = read_split(fake.path, CIFAR10_LAYOUT, "train")
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, fake.images["train"])
    np.testing.assert_array_equal(labels["labels"], fake.labels["train"]["labels"])
    assert names == {"labels": CIFAR10_NAMES}
    images, labels, _ = read_split(fake.path, CIFAR10_LAYOUT, "test")
    assert len(images) == 5 and np.array_equal(labels["labels"], fake.labels["test"]["labels"])


def test_cifar100_has_fine_and_coarse_labels(tmp_path) -> None:
    fake = make_cifar_archive(tmp_path, "cifar100", per_batch=3, test_count=4)
    images, labels, names = read_split(fake.path, CIFAR100_LAYOUT, "train")
    np.testing.assert_array_equal(images, fake.images["train"])
    for key in ("fine_labels", "coarse_labels"):
        np.testing.assert_array_equal(labels[key], fake.labels["train"][key])
    assert len(names["fine_labels"]) == 100 and len(names["coarse_labels"]) == 20


def test_rows_are_red_green_blue_planes_each_row_major() -> None:
    # built by hand, not by the factory: a lone bright red pixel at index 5 of the red plane
    # is row 0, column 5 (the top edge, not the left one); green at 32 is row 1, column 0
    row = np.zeros(3072, dtype=np.uint8)
    row[5] = 200
    row[1024 + 32] = 100
    row[2048 + 1023] = 50  # blue, bottom-right corner
    image = batch_images({"data": row[None]}, "b")[0]
    assert image.shape == (32, 32, 3)
    assert image[0, 5].tolist() == [200, 0, 0] and image[1, 0].tolist() == [0, 100, 0]
    assert image[31, 31].tolist() == [0, 0, 50] and int(image.sum()) == 350


def test_a_pickle_that_asks_for_code_is_refused(tmp_path) -> None:
    class Evil:
        def __reduce__(self):  # what a hostile "batch" would do on load
            import os

            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    with pytest.raises(DataFormatError, match=r"refused global (posix|os)\.system"):
        load_batch(pickle.dumps({"data": Evil()}, protocol=2), "data_batch_1")
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(DataFormatError, match="expected a pickled dict"):
        load_batch(pickle.dumps([1, 2], protocol=2), "data_batch_1")
    with pytest.raises(DataFormatError, match="cannot read it as a CIFAR batch"):
        load_batch(b"\x80\x02}q\x00(X", "data_batch_1")  # cut short


def test_damaged_archives_say_what_is_wrong(tmp_path) -> None:
    fake = make_cifar_archive(tmp_path / "ok", "cifar10", per_batch=2, test_count=2)
    # a member missing
    partial = tmp_path / "partial" / "cifar-10-python.tar.gz"
    partial.parent.mkdir()
    with tarfile.open(fake.path) as src, tarfile.open(partial, "w:gz") as dst:
        for member in src.getmembers():
            if not member.name.endswith("data_batch_4"):
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(DataFormatError, match="expected .*data_batch_4.* but it is missing"):
        read_split(partial, CIFAR10_LAYOUT, "train")
    read_split(partial, CIFAR10_LAYOUT, "test")  # the test split does not need it
    # truncated download
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(fake.path.read_bytes()[: fake.path.stat().st_size // 2])
    with pytest.raises(DataFormatError, match="cannot read the CIFAR archive .*cut.tar.gz"):
        read_split(cut, CIFAR10_LAYOUT, "train")
    # a batch whose data is not [N, 3072]
    with pytest.raises(DataFormatError, match=r"expected 'data' as uint8 \[N, 3072\] but got "
                       r"uint8 \[2, 1024\]"):
        batch_images({"data": np.zeros((2, 1024), np.uint8)}, "data_batch_1")


def test_cifar10_packs_once_and_serves_channel_first_colour(tmp_path) -> None:
    import time

    import torch

    import loaders
    from datasets import DataLoader, open_dataset
    from datasets.cifar import CIFAR10Split

    fake = make_cifar_archive(loaders.dataset_dir("cifar10"), per_batch=4, test_count=6)
    train = CIFAR10Split(split="train")
    assert len(train) == 20 and train.mode == "RGB" and train.classes == CIFAR10_NAMES
    assert torch.equal(train.data, torch.from_numpy(fake.images["train"]))  # [N, 32, 32, 3]
    assert train.targets.tolist() == fake.labels["train"]["labels"].tolist()
    x, y = train[3]
    expected = torch.from_numpy(fake.images["train"][3]).permute(2, 0, 1).float() / 127.5 - 1
    assert x.shape == (3, 32, 32) and torch.allclose(x, expected, atol=1e-6) and y == train.targets[3]
    images, labels = next(iter(DataLoader(train, batch_size=8)))
    assert images.shape == (8, 3, 32, 32) and torch.allclose(images[3], expected, atol=1e-6)
    means = fake.images["train"].reshape(-1, 3).mean(0) / 255
    assert train.mean == pytest.approx(means.tolist(), abs=1e-4)  # recorded while packing
    started = time.perf_counter()
    again = open_dataset("cifar10", split="train")
    assert time.perf_counter() - started < 1.0 and again.packed.path == train.packed.path
    assert len(open_dataset("cifar10", split="test")) == 6


def test_cifar_reads_torchvision_layouts_and_coarse_labels(tmp_path, monkeypatch) -> None:
    from datasets import CIFAR10, CIFAR100, mirror
    from datasets.cifar import CIFAR10_LAYOUT, CIFAR100_LAYOUT

    # the fakes are not the published files: no md5 to check them against here
    monkeypatch.setattr(mirror, "published_resource", lambda name, filename: None)
    for layout in (CIFAR10_LAYOUT, CIFAR100_LAYOUT):
        for member in list(layout.member_md5):
            monkeypatch.delitem(layout.member_md5, member)

    # torchvision's root: the archive, or the extracted folder, right inside root
    fake = make_cifar_archive(tmp_path / "tv", "cifar10", per_batch=2, test_count=3)
    assert len(CIFAR10(tmp_path / "tv", split="test")) == 3
    with tarfile.open(fake.path) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    extracted = CIFAR10(tmp_path / "extracted", split="train")
    np.testing.assert_array_equal(extracted.data, fake.images["train"])  # numpy, as torchvision
    fake100 = make_cifar_archive(tmp_path / "c100", "cifar100", per_batch=2, test_count=4)
    coarse = CIFAR100(tmp_path / "c100", split="test", label="coarse_labels")
    assert len(coarse.classes) == 20
    assert coarse.targets == fake100.labels["test"]["coarse_labels"].tolist()  # a list of int
    assert coarse.labels_of("fine_labels").tolist() == fake100.labels["test"]["fine_labels"].tolist()
    with pytest.raises(ValueError, match=r"label should be one of \['labels'\]"):
        CIFAR10(tmp_path / "tv", split="test", label="coarse_labels")


@responses.activate
def test_download_fetches_the_published_archive_and_checks_its_md5(tmp_path) -> None:
    import loaders
    from datasets import CIFAR10

    fake = make_cifar_archive(tmp_path / "served", "cifar10", per_batch=2, test_count=2)
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    responses.add(responses.GET, url, body=fake.path.read_bytes())
    # the fake is not the published file: refused by size and md5, nothing half-written kept
    with pytest.raises(loaders.LoaderError, match="170,498,071 bytes"):
        CIFAR10(split="train", download=True)
    assert responses.calls[0].request.url == url
    assert not (loaders.dataset_dir("cifar10") / "cifar-10-python.tar.gz").exists()
