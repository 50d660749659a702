"""The registry table: entries, fields, lookups."""

from __future__ import annotations

import dataclasses

import pytest

from loaders import UnknownDatasetError
from loaders.registry import ARCHIVE_KINDS, DatasetInfo, Resource, get, names

REQUIRED = {"letters", "notmnist", "notmnist-large", "notmnist-idx", "mnist", "fashion-mnist",
            "kmnist", "emnist", "sms-spam", "ag-news"}


def test_registry_names_are_sorted_and_complete() -> None:
    assert names() == sorted(names())
    assert REQUIRED <= set(names())


def test_registry_notmnist_entries_match_the_published_facts() -> None:
    small = get("notmnist").resources[0]
    assert small.filename == "notMNIST_small.tar.gz"
    assert small.size_bytes == 8_458_043
    assert small.sha256 == "76b2ef7ccc56452964780569db37b279c9cbe1bf442c3b38be784752683b3cec"
    assert small.md5 == "c9890a473a9769fda4bdf314aaf500dd"
    assert small.urls == (
        "https://commondatastorage.googleapis.com/books1000/notMNIST_small.tar.gz",
        "http://yaroslavvb.com/upload/notMNIST/notMNIST_small.tar.gz",
    )
    large = get("notmnist-large").resources[0]
    assert large.size_bytes == 247_336_696
    assert large.sha256 is not None and large.sha256.endswith("b61c") and large.md5 == "70a95b805ecfb6592c48e196df7c1499"


def test_registry_entries_are_frozen_and_well_formed() -> None:
    for name in names():
        info = get(name)
        assert isinstance(info, DatasetInfo) and info.name == name and info.description
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.name = "x"  # type: ignore[misc]
        for resource in info.resources:
            assert resource.archive in (*ARCHIVE_KINDS, None)
            assert resource.split in (None, "train", "test")
            assert bool(resource.urls) == (info.generator is None)
            for url in resource.urls:
                assert url.startswith(("http://", "https://"))
            # Plain-http mirrors are explicit fallbacks after an https one, for hashed files only.
            schemes = [url.partition(":")[0] for url in resource.urls]
            assert schemes == sorted(schemes, reverse=True), resource.urls
            assert "http" not in schemes or resource.sha256 or resource.md5, resource.urls
            for digest, width in ((resource.sha256, 64), (resource.md5, 32)):
                assert digest is None or (len(digest) == width and digest == digest.lower())


def test_registry_mnist_family_is_split_and_kept_compressed() -> None:
    for name in ("mnist", "fashion-mnist", "kmnist", "notmnist-idx"):
        resources = get(name).resources
        assert {r.split for r in resources} == {"train", "test"}
        assert all(r.archive == "gz" and not r.extract for r in resources)
    t10k = get("mnist").resources[2]
    assert t10k.filename == "t10k-images-idx3-ubyte.gz"
    assert t10k.md5 == "9fb629c4189551a2d022fa330f9573f3" and t10k.content_sha256


def test_registry_unknown_name_suggests_nearest() -> None:
    with pytest.raises(UnknownDatasetError, match="did you mean 'notmnist'"):
        get("notmnst")
    with pytest.raises(LookupError, match="known names: ag-news"):
        get("zzzz")


def test_resource_rejects_unknown_archive_kind() -> None:
    with pytest.raises(ValueError, match="archive should be one of"):
        Resource("x.rar", archive="rar")


def test_dataset_size_is_sum_or_none() -> None:
    assert get("notmnist").size_bytes == 8_458_043
    assert get("sms-spam").size_bytes is None


def test_registry_colour_image_entries_match_the_published_facts() -> None:
    cifar10 = get("cifar10").resources[0]
    assert cifar10.urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
    assert (cifar10.size_bytes, cifar10.md5) == (170_498_071, "c58f30108f718f92721af3b95e74349a")
    assert get("cifar100").resources[0].md5 == "eb9058c3a382ffc7106e4002c42a8d85"
    for name, md5 in (("imagenette-160", "e793b78cc4c9e9a4ccc0c1155377a412"),
                      ("imagenette-320", "3df6f0d01a2c9592104656642f5e78a3")):
        (resource,) = get(name).resources
        assert resource.md5 == md5 and resource.archive == "tar.gz"
        assert resource.urls == (
            f"https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-{name[-3:]}.tgz",)
    hymenoptera = get("hymenoptera").resources[0]
    assert hymenoptera.urls == ("https://download.pytorch.org/tutorial/hymenoptera_data.zip",)
    assert hymenoptera.sha256 is None and hymenoptera.md5 is None  # pinned on first use
    # CIFAR is read from its tar.gz; the image folders are extracted, then packed
    assert not get("cifar10").resources[0].extract and not get("cifar100").resources[0].extract
    assert all(get(n).resources[0].extract
               for n in ("imagenette-160", "imagenette-320", "hymenoptera"))
