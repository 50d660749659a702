"""The torchvision mirror classes against torchvision itself, on fake data in its layouts.

Part 1 runs torchvision's documented examples twice, once with ``torchvision.datasets`` and
once with ``datasets`` (only the import changed), and compares every sample. Part 2 holds our
own versions of the generic cases torchvision's ``test/test_datasets.py`` runs on these classes
(not found, smoke, repr, feature types, number of examples, transforms, classes, allow_empty,
is_valid_file), written against our classes; the cases left out are listed at the end.
"""

from __future__ import annotations

import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import responses
import torch
import torchvision
from cifar_factory import make_cifar_archive
from idx_factory import write_idx
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import v2

import datasets
from datasets import DataFormatError, DatasetNotFoundError, mirror
from datasets.cifar import CIFAR10_LAYOUT, CIFAR100_LAYOUT

IDX_CLASSES = ("MNIST", "FashionMNIST", "KMNIST")
EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")


@pytest.fixture
def unpublished(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake files are not the published ones: no md5 to check them against (both libraries)."""
    monkeypatch.setattr(mirror, "published_resource", lambda name, filename: None)
    for layout in (CIFAR10_LAYOUT, CIFAR100_LAYOUT):
        for member in list(layout.member_md5):
            monkeypatch.delitem(layout.member_md5, member)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


def fake_idx_root(root: Path, folder: str, prefixes: tuple[str, ...] = ("train", "t10k"), *,
                  n: int = 6, seed: int = 0, gz: bool = False) -> dict[str, np.ndarray]:
    """Write ``root/<folder>/raw/<prefix>-*-ubyte`` as torchvision leaves them; return images."""
    rng = np.random.default_rng(seed)
    written = {}
    for i, prefix in enumerate(prefixes):
        images = rng.integers(0, 256, (n + i, 28, 28), dtype=np.uint8)
        write_idx(root / folder / "raw", prefix, images, rng.integers(0, 10, n + i), gz=gz)
        written[prefix] = images
    return written


def fake_cifar_root(root: Path, variant: str = "cifar10") -> Any:
    """torchvision's CIFAR root: the archive extracted into ``root``."""
    fake = make_cifar_archive(root, variant, per_batch=3, test_count=5)
    with tarfile.open(fake.path) as tar:
        tar.extractall(root, filter="data")
    return fake


def fake_image_root(root: Path) -> None:
    """Two classes of small PNG and JPEG files, one in a nested folder (walk order matters)."""
    rng = np.random.default_rng(0)
    for cls, names in {"ants": ["b.png", "a.jpg", "sub/c.png", "z.jpeg"],
                       "bees": ["x.png", "y.JPG"]}.items():
        for name in names:
            path = root / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (20 + len(name), 24, 3), dtype=np.uint8)).save(path)
    (root / "bees" / "notes.txt").write_text("not an image")


def same(a: Any, b: Any) -> bool:
    if isinstance(a, Image.Image):
        return isinstance(b, Image.Image) and a.mode == b.mode and np.array_equal(
            np.asarray(a), np.asarray(b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def samples(ds: Any, seed: int = 0) -> list[Any]:
    """Every sample, with the global RNG seeded alike for random transforms."""
    torch.manual_seed(seed)
    return [ds[i] for i in range(len(ds))]


# --- Part 1: torchvision's documented examples, only the import changed -------------------


def mnist_example(ns: Any, root: Path) -> tuple[Any, Any]:
    # pytorch/examples mnist/main.py
    transform = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    dataset1 = ns.MNIST(root, train=True, download=True, transform=transform)
    dataset2 = ns.MNIST(root, train=False, transform=transform)
    return dataset1, dataset2


def cifar_example(ns: Any, root: Path) -> tuple[Any, Any]:
    # the "Training a classifier" tutorial, plus the classic augmentation recipe
    transform = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    augment = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                         T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    trainset = ns.CIFAR10(root=root, train=True, download=True, transform=augment)
    testset = ns.CIFAR10(root=root, train=False, download=True, transform=transform)
    return trainset, testset


def folder_example(ns: Any, root: Path) -> dict[str, Any]:
    # the transfer-learning tutorial's data_transforms
    data_transforms = {
        "train": T.Compose([T.RandomResizedCrop(16), T.RandomHorizontalFlip(), T.ToTensor(),
                            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]),
        "val": T.Compose([T.Resize(18), T.CenterCrop(16), T.ToTensor(),
                          T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]),
    }
    return {x: ns.ImageFolder(root, data_transforms[x]) for x in ["train", "val"]}


def test_mnist_example_gives_torchvision_samples(tmp_path: Path, unpublished: None) -> None:
    fake_idx_root(tmp_path, "MNIST")
    for ours, theirs in zip(mnist_example(datasets, tmp_path),
                            mnist_example(torchvision.datasets, tmp_path), strict=True):
        assert same(samples(ours), samples(theirs))
        assert str(ours) == str(theirs)  # VisionDataset's repr, transforms included
        loader = torch.utils.data.DataLoader
        assert same(list(loader(ours, batch_size=4)), list(loader(theirs, batch_size=4)))


def test_cifar_example_gives_torchvision_samples(tmp_path: Path, unpublished: None) -> None:
    fake_cifar_root(tmp_path)
    for ours, theirs in zip(cifar_example(datasets, tmp_path),
                            cifar_example(torchvision.datasets, tmp_path), strict=True):
        assert same(samples(ours, seed=3), samples(theirs, seed=3))
        assert str(ours) == str(theirs)


def test_image_folder_example_gives_torchvision_samples(tmp_path: Path) -> None:
    fake_image_root(tmp_path)
    ours, theirs = folder_example(datasets, tmp_path), folder_example(torchvision.datasets, tmp_path)
    for split in ("train", "val"):
        assert ours[split].samples == theirs[split].samples  # the same files, in the same order
        assert same(samples(ours[split], seed=5), samples(theirs[split], seed=5))
        assert str(ours[split]) == str(theirs[split])


@pytest.mark.parametrize("name", [*IDX_CLASSES, "CIFAR10", "CIFAR100", "EMNIST"])
def test_v1_and_v2_pipelines_and_no_transform_match(tmp_path: Path, unpublished: None,
                                                    name: str) -> None:
    if name == "EMNIST":
        fake_idx_root(tmp_path, "EMNIST", ("emnist-letters-train",))
        args: dict[str, Any] = {"split": "letters"}
    elif name.startswith("CIFAR"):
        fake_cifar_root(tmp_path, name.lower())
        args = {}
    else:
        fake_idx_root(tmp_path, name)
        args = {}
    pipelines = [None, T.PILToTensor(), T.Compose([T.Pad(2), T.Grayscale(), T.ToTensor()]),
                 v2.Compose([v2.ToImage(), v2.RandomCrop(24), v2.ToDtype(torch.float32, scale=True)])]
    for tf in pipelines:
        ours = getattr(datasets, name)(tmp_path, transform=tf, **args)
        theirs = getattr(torchvision.datasets, name)(tmp_path, transform=tf, **args)
        assert same(samples(ours, seed=1), samples(theirs, seed=1)), tf
        batch = list(ours.__getitems__([2, 0, 1]))  # what a DataLoader fetches (maybe batched)
        one_by_one = [ours[2], ours[0], ours[1]]
        if tf is pipelines[-1]:  # random: batched draws come from the batch transforms' own RNG
            assert [(x.shape, x.dtype, y) for x, y in batch] == \
                [(x.shape, x.dtype, y) for x, y in one_by_one]
        else:
            assert same(batch, one_by_one), tf


@pytest.mark.parametrize("name", [*IDX_CLASSES, "CIFAR10", "CIFAR100"])
def test_attributes_have_torchvision_values_and_types(tmp_path: Path, unpublished: None,
                                                      name: str) -> None:
    if name.startswith("CIFAR"):
        fake_cifar_root(tmp_path, name.lower())
    else:
        fake_idx_root(tmp_path, name)
    for train in (True, False):
        ours = getattr(datasets, name)(tmp_path, train=train)
        theirs = getattr(torchvision.datasets, name)(tmp_path, train=train)
        assert isinstance(ours, torchvision.datasets.VisionDataset)
        assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
        assert type(ours.data) is type(theirs.data) or isinstance(ours.data, type(theirs.data))
        assert np.array_equal(np.asarray(ours.data), np.asarray(theirs.data))
        assert type(ours.targets) is type(theirs.targets)
        assert np.array_equal(np.asarray(ours.targets), np.asarray(theirs.targets))
        assert ours.train is theirs.train and ours.transform is None


def test_emnist_matches_torchvision_in_every_split(tmp_path: Path, unpublished: None) -> None:
    prefixes = tuple(f"emnist-{s}-{p}" for s in EMNIST_SPLITS for p in ("train", "test"))
    fake_idx_root(tmp_path, "EMNIST", prefixes, n=3)
    for split in EMNIST_SPLITS:
        for train in (True, False):
            ours = datasets.EMNIST(tmp_path, split=split, train=train)
            theirs = torchvision.datasets.EMNIST(tmp_path, split=split, train=train)
            assert ours.classes == theirs.classes and same(samples(ours), samples(theirs))


def test_replacing_data_and_targets_subsets_as_in_torchvision(tmp_path: Path, unpublished: None) -> None:
    fake_idx_root(tmp_path, "MNIST")
    ours, theirs = datasets.MNIST(tmp_path), torchvision.datasets.MNIST(tmp_path)
    for ds in (ours, theirs):
        keep = ds.targets < 5
        ds.data, ds.targets = ds.data[keep], ds.targets[keep]
    assert len(ours) == len(theirs) and same(samples(ours), samples(theirs))


def test_joint_transforms_and_batch_transforms(tmp_path: Path, unpublished: None) -> None:
    fake_idx_root(tmp_path, "MNIST")
    joint = mock.Mock(side_effect=lambda image, target: (np.asarray(image).sum(), target + 100))
    ds = datasets.MNIST(tmp_path, transforms=joint)
    assert ds[0][1] == int(ds.targets[0]) + 100 and joint.call_count == 1
    with pytest.raises(ValueError, match="Only transforms or transform/target_transform"):
        datasets.MNIST(tmp_path, transform=T.ToTensor(), transforms=joint)
    batched = datasets.MNIST(tmp_path, transform=datasets.ToFloat())  # our batch transforms
    x, _ = batched[1]
    assert torch.allclose(x, ds.data[1][None].float() / 127.5 - 1, atol=1e-6)


# --- dataferry's forms beside torchvision's, and bad input -----------------------------------


def test_dataferry_forms_still_work(tmp_path: Path, unpublished: None) -> None:
    fake_idx_root(tmp_path, "MNIST")
    fake_idx_root(tmp_path, "EMNIST", ("emnist-digits-test",))
    assert same(samples(datasets.MNIST(tmp_path, split="test")),
                samples(datasets.MNIST(tmp_path, train=False)))
    assert same(samples(datasets.EMNIST(tmp_path, split="test", subset="digits")),
                samples(datasets.EMNIST(tmp_path, "digits", train=False)))
    assert datasets.MNIST(tmp_path, split="train", train=True).train


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"split": "test", "train": True}, r"train=True and split='test' disagree"),
    ({"split": "train", "train": False}, r"train=False and split='train' disagree"),
    ({"split": "valid"}, r"split should be one of \['train', 'test'\]"),
])
def test_train_and_split_disagreeing_is_a_value_error(tmp_path: Path, unpublished: None,
                                                      kwargs: dict[str, Any], match: str) -> None:
    fake_idx_root(tmp_path, "MNIST")
    with pytest.raises(ValueError, match=match):
        datasets.MNIST(tmp_path, **kwargs)
    fake_cifar_root(tmp_path)
    with pytest.raises(ValueError, match=match):
        datasets.CIFAR10(tmp_path, **kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"split": "test", "train": True}, "disagree"),
    ({"split": "letters", "subset": "digits"}, "name two EMNIST splits"),
    ({"split": "bogus"}, r"split should be one of \['byclass'.*or \['train', 'test'\]"),
    ({"split": "train", "subset": "bogus"}, "subset should be one of"),
])
def test_emnist_refuses_contradictions(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        datasets.EMNIST(tmp_path, **kwargs)


@pytest.mark.parametrize("name", ["MNIST", "EMNIST", "CIFAR10"])
def test_unsupported_torchvision_keyword_is_a_one_line_type_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'what': QMNIST's "
                                        r"what= is not supported; use train=True/False") as info:
        getattr(datasets, name)(tmp_path, what="test10k")
    assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match="'colour'.*it takes root, train"):
        getattr(datasets, name)(tmp_path, colour=True)


# --- reading a torchvision root as it is -------------------------------------------------------


def test_test_split_needs_only_the_test_files_and_a_missing_one_is_named(
        tmp_path: Path, unpublished: None) -> None:
    fake_idx_root(tmp_path, "MNIST", ("t10k",), gz=True)  # .gz only, train files absent
    assert len(datasets.MNIST(tmp_path, train=False)) == 6
    with pytest.raises(DatasetNotFoundError, match=r"MNIST train files not found: looked for "
                       r"train-images-idx3-ubyte, train-labels-idx1-ubyte \(or .gz\) in "
                       rf"{tmp_path / 'MNIST' / 'raw'}; pass download=True"):
        datasets.MNIST(tmp_path, train=True)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"looked for t10k-labels-idx1-ubyte \(or"):
        datasets.MNIST(tmp_path, train=False)
    fake_cifar_root(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    assert len(datasets.CIFAR10(tmp_path, train=False)) == 5
    with pytest.raises(DatasetNotFoundError, match=r"looked for data_batch_3 in .*cifar-10-batches-py"):
        datasets.CIFAR10(tmp_path, train=True)


def test_files_failing_their_published_md5_are_named_with_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loaders.registry import Resource

    fake_idx_root(tmp_path, "MNIST", ("t10k",), gz=True)
    monkeypatch.setattr(mirror, "published_resource", lambda name, filename: Resource(
        filename, md5="0" * 32) if filename.startswith("t10k-images") else None)
    with pytest.raises(DataFormatError, match=r"t10k-images-idx3-ubyte.gz: expected the published "
                       r"md5 0{32} but got [0-9a-f]{32}.*pass download=True to fetch it again"):
        datasets.MNIST(tmp_path, train=False)
    fake_cifar_root(tmp_path)
    monkeypatch.setitem(CIFAR10_LAYOUT.member_md5, "test_batch", "1" * 32)
    with pytest.raises(DataFormatError, match=r"test_batch: expected the published md5 1{32}"):
        datasets.CIFAR10(tmp_path, train=False)


def test_real_mnist_t10k_passes_its_published_md5_and_matches_torchvision(
        shared_data: Path, tmp_path: Path) -> None:
    import gzip
    import shutil

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared_data / "mnist-t10k" / name, raw / name)
        with gzip.open(raw / name) as src, open(raw / name[:-3], "wb") as dst:
            dst.write(src.read())  # torchvision reads the uncompressed copy
    ours = datasets.MNIST(tmp_path, train=False)  # the test files are all it needs
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).touch()  # torchvision insists that all four files exist
    ours, theirs = datasets.MNIST(tmp_path, train=False), torchvision.datasets.MNIST(tmp_path, train=False)
    assert len(ours) == 10_000 and ours[0][1] == 7
    assert all(same(ours[i], theirs[i]) for i in range(0, 10_000, 97))


def test_derived_caches_stay_out_of_the_root(tmp_path: Path, unpublished: None) -> None:
    fake_idx_root(tmp_path / "root", "MNIST")
    fake_cifar_root(tmp_path / "root")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    datasets.MNIST(tmp_path / "root")[0]
    datasets.CIFAR10(tmp_path / "root", train=False)[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


# --- Part 2: our versions of torchvision's dataset test cases ---------------------------------


def _builders() -> dict[str, tuple[Callable[[Path, dict[str, Any]], int], list[dict[str, Any]]]]:
    """Per class: a fake-data injector returning the number of examples, and the configs."""

    def idx(folder: str) -> Callable[[Path, dict[str, Any]], int]:
        def inject(root: Path, config: dict[str, Any]) -> int:
            prefix = "train" if config["train"] else "t10k"
            if folder == "EMNIST":
                prefix = f"emnist-{config['split']}-{'train' if config['train'] else 'test'}"
            return len(fake_idx_root(root, folder, (prefix,), n=2 if config["train"] else 1)[prefix])
        return inject

    def cifar(variant: str) -> Callable[[Path, dict[str, Any]], int]:
        def inject(root: Path, config: dict[str, Any]) -> int:
            fake = fake_cifar_root(root, variant)
            return len(fake.images["train" if config["train"] else "test"])
        return inject

    trains = [{"train": True}, {"train": False}]
    return {
        **{name: (idx(name), trains) for name in IDX_CLASSES},
        "EMNIST": (idx("EMNIST"), [{"split": s, "train": t} for s in EMNIST_SPLITS
                                   for t in (True, False)]),
        "CIFAR10": (cifar("cifar10"), trains),
        "CIFAR100": (cifar("cifar100"), trains),
    }


CASES = [(name, config) for name, (_, configs) in _builders().items() for config in configs]


@pytest.mark.parametrize(("name", "config"), CASES)
def test_case_every_config(tmp_path: Path, unpublished: None, name: str,
                           config: dict[str, Any]) -> None:
    """num_examples, smoke (VisionDataset), str smoke, feature types, transforms called."""
    inject, _ = _builders()[name]
    count = inject(tmp_path, config)
    cls = getattr(datasets, name)
    ds = cls(tmp_path, **config)
    assert isinstance(ds, torchvision.datasets.VisionDataset) and len(ds) == count
    assert isinstance(str(ds), str)
    image, target = ds[0]
    assert isinstance(image, Image.Image) and type(target) is int
    for kwarg in ("transform", "target_transform", "transforms"):
        spy = mock.Mock(wraps=lambda *args: args[0] if len(args) == 1 else args)
        cls(tmp_path, **config, **{kwarg: spy})[0]
        spy.assert_called()


@pytest.mark.parametrize("name", [*IDX_CLASSES, "EMNIST", "CIFAR10", "CIFAR100"])
def test_case_not_found(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError):
        getattr(datasets, name)(tmp_path, **({"split": "balanced"} if name == "EMNIST" else {}))


@pytest.mark.parametrize("name", ["CIFAR10", "CIFAR100"])
def test_case_cifar_class_to_idx_from_the_meta_file(tmp_path: Path, unpublished: None,
                                                    name: str) -> None:
    fake = fake_cifar_root(tmp_path, name.lower())
    names = next(iter(fake.names.values()))
    assert getattr(datasets, name)(tmp_path).class_to_idx == {c: i for i, c in enumerate(names)}


def test_case_cifar_batches_pickled_with_a_newer_protocol(tmp_path: Path, unpublished: None) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {"data": rng.integers(0, 256, (1, 3072), dtype=np.uint8), "labels": [3]}
        (folder / name).write_bytes(pickle.dumps(batch))  # today's default protocol, str keys
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"{i}" for i in range(10)]}))
    ours, theirs = datasets.CIFAR10(tmp_path), torchvision.datasets.CIFAR10(tmp_path)
    assert same(samples(ours), samples(theirs)) and ours.classes == theirs.classes


def test_case_image_folder_classes_allow_empty_and_is_valid_file(tmp_path: Path) -> None:
    fake_image_root(tmp_path)
    ds = datasets.ImageFolder(tmp_path)
    assert ds.classes == ["ants", "bees"] and len(ds) == 6
    assert isinstance(ds, torchvision.datasets.VisionDataset)
    image, target = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and type(target) is int
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        datasets.ImageFolder(tmp_path)
    assert "empty" in datasets.ImageFolder(tmp_path, allow_empty=True).classes
    pngs = datasets.ImageFolder(tmp_path, is_valid_file=lambda p: p.endswith(".png"),
                                allow_empty=True)
    theirs = torchvision.datasets.ImageFolder(tmp_path, is_valid_file=lambda p: p.endswith(".png"),
                                              allow_empty=True)
    assert pngs.samples == theirs.samples and pngs.extensions is None
    with pytest.raises(FileNotFoundError):
        datasets.ImageFolder(tmp_path / "missing")


# Cases of torchvision's test_datasets.py left out, and why:
# - test_transforms_v2_wrapper(_spawn): wrap_dataset_for_transforms_v2 looks classes up in
#   torchvision's private registry by type, which holds only torchvision's own classes.
# - QMNIST cases: QMNIST is not mirrored (what=/compat= are refused with a TypeError, tested).
# - CIFAR's fake batches pickle torch tensors as 'data'; a real batch holds a numpy array and
#   our restricted unpickler refuses anything else, by design: the case above uses numpy.
# - DatasetFolder cases with extensions=: only ImageFolder is mirrored.


@responses.activate
def test_download_fetches_only_what_is_missing_or_wrong_into_torchvision_layout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from loaders.registry import Resource

    served = tmp_path / "served"
    fake_idx_root(served, "MNIST", ("t10k",), gz=True)
    files = {p.name: p.read_bytes() for p in (served / "MNIST" / "raw").iterdir()}
    published = {name: Resource(name, urls=(f"https://example.test/{name}",),
                                md5=hashlib.md5(data).hexdigest()) for name, data in files.items()}
    monkeypatch.setattr(mirror, "published_resource", lambda name, filename: published.get(filename))
    for name, data in files.items():
        responses.add(responses.GET, f"https://example.test/{name}", body=data)
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(files["t10k-images-idx3-ubyte.gz"])
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"half a download")
    with pytest.raises(DataFormatError, match="t10k-labels-idx1-ubyte.gz: expected the published md5"):
        datasets.MNIST(tmp_path / "root", train=False)
    ours = datasets.MNIST(tmp_path / "root", train=False, download=True)
    assert [call.request.url for call in responses.calls] == [
        "https://example.test/t10k-labels-idx1-ubyte.gz"]  # the intact file was kept
    assert sorted(p.name for p in raw.iterdir()) == [  # torchvision's layout: .gz and raw
        "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz"]
    assert np.array_equal(ours.data.numpy(), fake_idx_root(tmp_path / "again", "MNIST",
                                                           ("t10k",))["t10k"])


@responses.activate
def test_cifar_download_extracts_into_root_for_torchvision_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unpublished: None) -> None:
    from loaders.registry import Resource

    fake = make_cifar_archive(tmp_path / "served", "cifar10", per_batch=2, test_count=3)
    url = "https://example.test/cifar-10-python.tar.gz"
    monkeypatch.setattr(mirror, "published_resource",
                        lambda name, filename: Resource(filename, urls=(url,)))
    responses.add(responses.GET, url, body=fake.path.read_bytes())
    ours = datasets.CIFAR10(tmp_path / "root", train=False, download=True)
    theirs = torchvision.datasets.CIFAR10(tmp_path / "root", train=False)
    assert same(samples(ours), samples(theirs)) and len(responses.calls) == 1
    datasets.CIFAR10(tmp_path / "root", train=True, download=True)  # present: no second fetch
    assert len(responses.calls) == 1


def test_where_torchvision_loses_data_ours_differs_as_the_readme_says(tmp_path: Path) -> None:
    grey16 = np.full((4, 4), 40000, dtype=np.uint16)
    (tmp_path / "a").mkdir()
    Image.fromarray(grey16).save(tmp_path / "a" / "deep.png")  # 16-bit grey PNG
    photo = Image.fromarray(np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90° to display
    photo.save(tmp_path / "a" / "turned.png", exif=exif)
    ours, theirs = datasets.ImageFolder(tmp_path), torchvision.datasets.ImageFolder(tmp_path)
    assert np.asarray(theirs[0][0]).max() == 255  # clipped
    assert np.asarray(ours[0][0]).max() == round(40000 / 257)  # scaled
    assert theirs[1][0].size == (3, 2) and ours[1][0].size == (2, 3)  # upright as displayed


def test_cifar_download_repairs_only_the_damaged_batch_from_the_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from loaders.registry import Resource

    fake_cifar_root(tmp_path)  # archive and extracted folder, as torchvision leaves them
    folder = tmp_path / "cifar-10-batches-py"
    for name in CIFAR10_LAYOUT.member_md5:
        monkeypatch.setitem(CIFAR10_LAYOUT.member_md5, name,
                            hashlib.md5((folder / name).read_bytes()).hexdigest())
    monkeypatch.setattr(mirror, "published_resource",
                        lambda name, filename: Resource(filename, urls=("https://unused.test/x",)))
    intact = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(intact[: len(intact) // 2])  # a half-written file
    kept = (folder / "data_batch_1").stat().st_mtime_ns
    with pytest.raises(DataFormatError, match=r"test_batch: expected the published md5 .* pass "
                       "download=True to fetch the archive again"):
        datasets.CIFAR10(tmp_path, train=False)
    ds = datasets.CIFAR10(tmp_path, train=False, download=True)  # the archive is intact: no fetch
    assert (folder / "test_batch").read_bytes() == intact and len(ds) == 5
    assert (folder / "data_batch_1").stat().st_mtime_ns == kept  # intact files left alone


def test_emnist_reads_the_split_out_of_raw_gzip_zip_after_checking_its_md5(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import zipfile

    from loaders.registry import Resource

    written = fake_idx_root(tmp_path / "gz", "EMNIST", ("emnist-digits-test",), gz=True)
    raw = tmp_path / "root" / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    with zipfile.ZipFile(raw / "gzip.zip", "w") as zf:  # as NIST publishes it: gzip/<name>.gz
        for path in (tmp_path / "gz" / "EMNIST" / "raw").iterdir():
            zf.write(path, f"gzip/{path.name}")
    md5 = hashlib.md5((raw / "gzip.zip").read_bytes()).hexdigest()
    published = {"gzip.zip": Resource("gzip.zip", md5="f" * 32)}
    monkeypatch.setattr(mirror, "published_resource", lambda name, filename: published.get(filename))
    with pytest.raises(DataFormatError, match=r"gzip.zip: expected the published md5 f{32}"):
        datasets.EMNIST(tmp_path / "root", split="digits", train=False)
    published["gzip.zip"] = Resource("gzip.zip", md5=md5)
    ds = datasets.EMNIST(tmp_path / "root", split="digits", train=False)
    assert np.array_equal(ds.data.numpy(), written["emnist-digits-test"])  # as stored, as torchvision
    assert (raw / "emnist-digits-test-images-idx3-ubyte").is_file()  # torchvision's layout


def test_real_mnist_gz_recompressed_by_its_publisher_is_read_with_a_warning(
        shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # ../shared's t10k images .gz was re-compressed: its md5 is not torchvision's, but its
    # decompressed bytes are the canonical ones (the registry's content sha256): not damaged.
    import logging
    import shutil

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared_data / "mnist-t10k" / name, raw / name)
    with caplog.at_level(logging.WARNING, logger="datasets.mirror"):
        ds = datasets.MNIST(tmp_path, train=False)
    assert len(ds) == 10_000 and ds[0][1] == 7
    assert "re-compressed copy" in caplog.text
