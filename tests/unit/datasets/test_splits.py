"""overlap_report and random_split(dedup=True) on planted duplicates and on real notMNIST."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, Subset

from datasets.splits import content_hashes, overlap_report, random_split


class Images(Dataset):
    """A tiny image dataset with the B1 contract: uint8 ``.data`` and ``.targets``."""

    def __init__(self, data: torch.Tensor, targets: torch.Tensor | None = None) -> None:
        self.data = data
        self.targets = targets if targets is not None else torch.zeros(len(data), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.data[i].float().unsqueeze(0) / 255, int(self.targets[i])


class NoData(Dataset):
    """Same samples, but no ``.data``: forces the per-sample fallback."""

    def __init__(self, inner: Images) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.inner[i]


def planted(n_unique: int = 300, seed: int = 0) -> tuple[Images, int]:
    """``n_unique`` random 8x8 images, then copies of some of them (groups up to 4 big)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (n_unique, 8, 8), generator=g, dtype=torch.uint8)
    copies = torch.randint(0, n_unique, (120,), generator=g)
    data = torch.cat([base, base[copies]])
    data = data[torch.randperm(len(data), generator=g)]
    return Images(data, torch.randint(0, 3, (len(data),), generator=g)), n_unique


def test_overlap_report_counts_within_and_across() -> None:
    ds, n_unique = planted()
    report = overlap_report(ds)
    assert report.splits[0].size == len(ds) and report.splits[0].unique == n_unique
    assert report.splits[0].duplicates == len(ds) - n_unique
    train, test = Subset(ds, range(0, 300)), Subset(ds, range(300, len(ds)))
    report = overlap_report(train, test)
    hashes = content_hashes(ds)
    shared = set(hashes[:300]) & set(hashes[300:])
    assert report.pairs[0].shared_unique == len(shared) > 0
    assert report.pairs[0].second_items == sum(h in shared for h in hashes[300:])
    text = str(report)
    assert "train" in text and "test" in text and "shared distinct items" in text


def test_overlap_report_fallback_equals_fast_path() -> None:
    ds, _ = planted(50)
    fast = overlap_report(Subset(ds, range(60)), Subset(Subset(ds, range(40, 170)), range(10, 130)))
    slow = overlap_report(Subset(NoData(ds), range(60)),
                          Subset(Subset(NoData(ds), range(40, 170)), range(10, 130)))
    assert [(s.size, s.unique) for s in fast.splits] == [(s.size, s.unique) for s in slow.splits]
    assert fast.pairs[0].shared_unique == slow.pairs[0].shared_unique > 0


def test_overlap_report_on_text_and_names() -> None:
    from datasets.text import TextClassificationDataset

    a = TextClassificationDataset(["hi", "hi", "yo"], [0, 1, 0])
    b = TextClassificationDataset(["yo", "new"], [1, 1])
    report = overlap_report(a, b, names=["a", "b"])
    assert report.splits[0].duplicates == 1 and report.pairs[0].shared_unique == 1
    with pytest.raises(ValueError, match="one name per split"):
        overlap_report(a, b, names=["only"])


def test_random_split_like_torch_and_seeded() -> None:
    ds, _ = planted()
    parts = random_split(ds, [0.7, 0.2, 0.1], seed=1)
    assert [len(p) for p in parts] == [294, 84, 42]
    assert sorted(i for p in parts for i in p.indices) == list(range(len(ds)))
    again = random_split(ds, [294, 84, 42], seed=1)
    assert [p.indices for p in parts] == [p.indices for p in again]
    assert random_split(ds, [0.5, 0.5], seed=2)[0].indices != random_split(ds, [0.5, 0.5], seed=3)[0].indices
    with pytest.raises(ValueError, match="summing to the dataset size 420"):
        random_split(ds, [10, 10])
    with pytest.raises(ValueError, match="fractions summing to 1"):
        random_split(ds, [0.5, 0.4])


def test_random_split_plain_leaks_but_dedup_does_not() -> None:
    ds, _ = planted()
    leaky = overlap_report(*random_split(ds, [0.8, 0.2], seed=0))
    assert leaky.pairs[0].shared_unique > 0  # the planted copies straddle the split
    train, test = random_split(ds, [0.8, 0.2], seed=0, dedup=True)
    report = overlap_report(train, test)
    assert report.pairs[0].shared_unique == 0
    assert sorted(train.indices + test.indices) == list(range(len(ds)))
    assert abs(len(test) - 84) <= 4  # a group never splits, so sizes are approximate


def test_real_notmnist_idx_has_196_duplicate_rows(shared_data) -> None:
    folder = shared_data / "notmnist-idx"
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    ds = Images(torch.from_numpy(images.copy()))
    try:  # B1's reader when present: the same answer through the real class
        from datasets import IDXDataset

        ds = IDXDataset(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
    except ImportError:
        pass
    report = overlap_report(ds, names=["notmnist-idx"])
    assert (report.splits[0].size, report.splits[0].unique) == (10_000, 9_804)
    train, test = random_split(ds, [0.8, 0.2], seed=0, dedup=True)
    assert overlap_report(train, test).pairs[0].shared_unique == 0
