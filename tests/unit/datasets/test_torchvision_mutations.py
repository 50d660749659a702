"""The mirror classes after construction: what a torchvision user changes is honoured as there.

Targets replaced or edited in place, ``transform``/``target_transform`` set later, and the
other review findings on the drop-in classes; each compared with torchvision itself.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import responses
import torch
import torchvision
from cifar_factory import make_cifar_archive
from PIL import Image
from test_torchvision_dropin import (
    fake_cifar_root,
    fake_idx_root,
    fake_image_root,
    same,
    samples,
    unpublished,
)
from torch.utils.data import DataLoader as TorchLoader
from torchvision import transforms as T

import datasets

__all__ = ["unpublished"]  # the fixture, imported for its use below


def pair(name: str, root: Path, **kwargs: Any) -> tuple[Any, Any]:
    """Ours and torchvision's dataset of ``name`` over the fake root ``root``."""
    if name.startswith("CIFAR"):
        fake_cifar_root(root, name.lower())
    else:
        fake_idx_root(root, name)
    return getattr(datasets, name)(root, **kwargs), getattr(torchvision.datasets, name)(root, **kwargs)


def loader_targets(ds: Any) -> list[list[int]]:
    """The targets of every batch, through torch's DataLoader and through ours."""
    return [torch.cat([y for _, y in loader(ds, batch_size=4)]).tolist()
            for loader in (TorchLoader, datasets.DataLoader)]


@pytest.mark.parametrize("name", ["MNIST", "CIFAR10"])
def test_targets_replaced_alone_are_used_per_sample_and_per_batch(
        tmp_path: Path, unpublished: None, name: str) -> None:
    ours, theirs = pair(name, tmp_path, transform=T.ToTensor())
    for ds in (ours, theirs):
        ds.targets = [3] * len(ds) if isinstance(ds.targets, list) else ds.targets * 0 + 3
    assert [ours[i][1] for i in range(len(ours))] == [3] * len(ours)
    assert loader_targets(ours) == loader_targets(theirs) == [[3] * len(ours)] * 2


@pytest.mark.parametrize("name", ["MNIST", "CIFAR10"])
def test_targets_edited_in_place_are_used_per_sample_and_per_batch(
        tmp_path: Path, unpublished: None, name: str) -> None:
    ours, theirs = pair(name, tmp_path, transform=T.ToTensor())
    ours[0]  # a sample read before the edit: nothing is frozen by it
    for ds in (ours, theirs):
        ds.targets[1] = 9 - int(ds.targets[1])
    assert ours[1][1] == theirs[1][1]
    assert loader_targets(ours) == loader_targets(theirs)


@pytest.mark.parametrize("name", ["MNIST", "CIFAR10"])
def test_transform_and_target_transform_set_after_construction_apply(
        tmp_path: Path, unpublished: None, name: str) -> None:
    ours, theirs = pair(name, tmp_path, transform=T.ToTensor())
    for ds in (ours, theirs):
        ds.transform = None
    assert isinstance(ours[0][0], Image.Image) and same(samples(ours), samples(theirs))
    for ds in (ours, theirs):
        ds.transform, ds.target_transform = T.ToTensor(), (lambda y: y + 100)
    assert same(samples(ours), samples(theirs)) and ours[0][1] >= 100
    assert loader_targets(ours) == loader_targets(theirs)


def test_import_datasets_does_not_import_torchvision_until_a_mirror_class_is_used() -> None:
    code = ("import sys, datasets; before = 'torchvision' in sys.modules; "
            "mnist = datasets.MNIST; print(before, 'torchvision' in sys.modules, "
            "'MNIST' in dir(datasets), mnist.__module__, datasets.ImageFolder.__module__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "True", "True", "datasets.mnist", "datasets.imagefolder"]
    with pytest.raises(AttributeError, match="no attribute 'NoSuchClass'"):
        datasets.NoSuchClass  # noqa: B018


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST", "KMNIST", "EMNIST", "CIFAR10", "CIFAR100"])
def test_missing_data_is_a_runtime_error_as_in_torchvision(tmp_path: Path, name: str) -> None:
    kwargs = {"split": "digits"} if name == "EMNIST" else {}
    for cls in (getattr(torchvision.datasets, name), getattr(datasets, name)):
        with pytest.raises(RuntimeError):  # what code written for torchvision catches
            cls(tmp_path, **kwargs)
    with pytest.raises(datasets.DatasetNotFoundError, match="download=True"):
        getattr(datasets, name)(tmp_path, **kwargs)


def test_a_root_under_home_written_with_a_tilde_is_read(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_image_root(tmp_path / "photos")
    monkeypatch.setenv("HOME", str(tmp_path))
    ours, theirs = datasets.ImageFolder("~/photos"), torchvision.datasets.ImageFolder("~/photos")
    assert ours.samples == theirs.samples and ours.root == theirs.root
    assert same(samples(ours), samples(theirs))
    assert len(datasets.ImageFolderDataset("~/photos")) == len(theirs)
    packed = datasets.ImageFolderDataset.pack("~/photos", cache_dir=tmp_path / "cache", workers=1)
    assert sorted(packed.samples) == sorted(theirs.samples)  # its own order: by class, name


MNIST_ATTRIBUTES = ["mirrors", "resources", "training_file", "test_file", "raw_folder",
                    "processed_folder", "class_to_idx"]
CIFAR_ATTRIBUTES = ["base_folder", "url", "filename", "tgz_md5", "train_list", "test_list", "meta"]


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST", "KMNIST", "EMNIST", "CIFAR10", "CIFAR100"])
def test_torchvision_attributes_are_there_with_its_values(tmp_path: Path, unpublished: None,
                                                          name: str) -> None:
    if name == "EMNIST":
        fake_idx_root(tmp_path, "EMNIST", ("emnist-digits-train",))
        ours = datasets.EMNIST(tmp_path, "digits")
        theirs = torchvision.datasets.EMNIST(tmp_path, "digits")
        names = [*MNIST_ATTRIBUTES, "url", "md5"]
    else:
        ours, theirs = pair(name, tmp_path)
        names = CIFAR_ATTRIBUTES if name.startswith("CIFAR") else MNIST_ATTRIBUTES
    for attr in names:
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    if not name.startswith("CIFAR"):
        for old, new in [("train_labels", "targets"), ("test_labels", "targets"),
                         ("train_data", "data"), ("test_data", "data")]:
            with pytest.warns(UserWarning, match=f"{old} has been renamed {new}"):
                assert torch.equal(getattr(ours, old), getattr(theirs, new))


@responses.activate
@pytest.mark.parametrize("patched", ["mirrors", "mirrors and resources"])
def test_download_honours_patched_mirrors_and_resources(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unpublished: None, patched: str) -> None:
    served = tmp_path / "served"
    fake_idx_root(served, "MNIST", ("t10k",), gz=True)
    files = {p.name: p.read_bytes() for p in (served / "MNIST" / "raw").iterdir()}
    for gz, data in files.items():
        responses.add(responses.GET, f"https://mirror.test/mnist/{gz}", body=data)
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["https://mirror.test/mnist/"])
    if patched == "mirrors and resources":
        monkeypatch.setattr(datasets.MNIST, "resources",
                            [(gz, hashlib.md5(data).hexdigest()) for gz, data in files.items()])
    ours = datasets.MNIST(tmp_path / "root", train=False, download=True)
    assert sorted(call.request.url for call in responses.calls) == [
        f"https://mirror.test/mnist/{gz}" for gz in sorted(files)]
    assert np.array_equal(ours.data.numpy(), fake_idx_root(tmp_path / "again", "MNIST",
                                                           ("t10k",))["t10k"])


@responses.activate
@pytest.mark.parametrize("patched", ["url", "url and tgz_md5"])
def test_cifar_download_honours_a_patched_url_and_md5(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unpublished: None, patched: str) -> None:
    fake = make_cifar_archive(tmp_path / "served", "cifar10", per_batch=2, test_count=3)
    data = fake.path.read_bytes()
    responses.add(responses.GET, "https://mirror.test/c10.tar.gz", body=data)
    monkeypatch.setattr(datasets.CIFAR10, "url", "https://mirror.test/c10.tar.gz")
    if patched == "url and tgz_md5":
        monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", hashlib.md5(data).hexdigest())
    ours = datasets.CIFAR10(tmp_path / "root", train=False, download=True)
    theirs = torchvision.datasets.CIFAR10(tmp_path / "root", train=False)
    assert same(samples(ours), samples(theirs)) and len(responses.calls) == 1


def only_bees(self: Any, directory: str) -> tuple[list[str], dict[str, int]]:
    return ["bees"], {"bees": 0}


def png_only(directory: str, class_to_idx: dict[str, int], extensions: Any = None,
             is_valid_file: Any = None, allow_empty: bool = False) -> list[tuple[str, int]]:
    listed = torchvision.datasets.folder.make_dataset(directory, class_to_idx, extensions,
                                                      is_valid_file, allow_empty)
    return [(path, label) for path, label in listed if path.endswith(".png")]


@pytest.mark.parametrize("hooks", [{"find_classes": only_bees},
                                   {"make_dataset": staticmethod(png_only)},
                                   {"find_classes": only_bees, "make_dataset": staticmethod(png_only)}])
def test_image_folder_subclass_hooks_are_used_as_in_torchvision(tmp_path: Path,
                                                                hooks: dict[str, Any]) -> None:
    fake_image_root(tmp_path)
    ours = type("Ours", (datasets.ImageFolder,), hooks)(tmp_path)
    theirs = type("Theirs", (torchvision.datasets.ImageFolder,), hooks)(tmp_path)
    assert isinstance(ours, torchvision.datasets.DatasetFolder)
    assert (ours.classes, ours.class_to_idx) == (theirs.classes, theirs.class_to_idx)
    assert ours.samples == theirs.samples and ours.targets == theirs.targets
    assert same(samples(ours), samples(theirs))


def test_emnist_needs_its_split_and_a_string_train_is_refused(tmp_path: Path, unpublished: None) -> None:
    fake_idx_root(tmp_path, "MNIST")
    for cls in (torchvision.datasets.EMNIST, datasets.EMNIST):
        with pytest.raises(TypeError, match="split"):
            cls(tmp_path)
    with pytest.raises(TypeError, match=r"train='test'.*pass split='test'"):
        datasets.MNIST(tmp_path, "test")  # torchvision: the train split ("test" is true)
    with pytest.raises(TypeError, match=r"train='test'.*pass split='test'"):
        datasets.CIFAR10(tmp_path, train="test")  # type: ignore[arg-type]
    assert datasets.MNIST(tmp_path, train=0).train == torchvision.datasets.MNIST(tmp_path, train=0).train == 0
    assert datasets.MNIST(tmp_path, train=0).train is not False
