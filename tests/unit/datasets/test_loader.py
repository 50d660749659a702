"""datasets.DataLoader: the batched path, equality with torch's loader, workers, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.utils.data
from image_factory import make_image_tree
from torch.utils.data import Dataset, Subset

import datasets.images
import datasets.loader
from datasets import CollateError, DataLoader, ImageFolderDataset
from datasets.loader import IndexBatchSampler


@pytest.fixture
def image_ds(tmp_path: Path) -> ImageFolderDataset:
    make_image_tree(tmp_path / "t", classes=tuple("ABCD"), per_class=25)
    return ImageFolderDataset.pack(tmp_path / "t")


def _epoch(loader_cls: Any, ds: Any, **kwargs: Any) -> list[Any]:
    generator = torch.Generator().manual_seed(1234)
    loader = loader_cls(ds, batch_size=16, shuffle=True, generator=generator, **kwargs)
    return list(loader)


def _same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True)
    )


def test_loader_yields_float_images_and_int64_labels(image_ds: ImageFolderDataset) -> None:
    x, y = next(iter(DataLoader(image_ds, batch_size=8)))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == [0] * 8
    assert torch.equal(x[3], image_ds[3][0])


def test_loader_takes_batched_path_without_per_sample_calls(
        image_ds: ImageFolderDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_per_sample(self: Any, index: int) -> None:
        raise AssertionError("per-sample __getitem__ called on the batched path")

    monkeypatch.setattr(datasets.images.PackedImageDataset, "__getitem__", no_per_sample)
    batches = list(DataLoader(image_ds, batch_size=32, shuffle=True))
    assert sum(len(y) for _, y in batches) == 100


def test_plain_torch_loader_gives_the_same_batches(image_ds: ImageFolderDataset) -> None:
    ours = _epoch(DataLoader, image_ds)
    theirs = _epoch(torch.utils.data.DataLoader, image_ds)
    assert _same(ours, theirs)


def test_same_batches_as_torch_epoch_after_epoch(image_ds: ImageFolderDataset) -> None:
    def epochs(cls: Any) -> list[Any]:
        loader = cls(image_ds, batch_size=16, shuffle=True,
                     generator=torch.Generator().manual_seed(7))
        return list(loader) + list(loader) + list(loader)

    assert _same(epochs(DataLoader), epochs(torch.utils.data.DataLoader))


@pytest.mark.integration  # worker processes pass tensors over local unix sockets
def test_two_workers_give_the_same_batches_as_none(image_ds: ImageFolderDataset) -> None:
    assert _same(_epoch(DataLoader, image_ds),
                 _epoch(DataLoader, image_ds, num_workers=2, force_workers=True))


@pytest.mark.integration
def test_plain_torch_loader_with_workers(image_ds: ImageFolderDataset) -> None:
    assert _same(_epoch(torch.utils.data.DataLoader, image_ds, num_workers=2),
                 _epoch(DataLoader, image_ds))


def test_subset_keeps_the_batched_path(image_ds: ImageFolderDataset) -> None:
    subset = Subset(image_ds, list(range(50, 100)))
    x, y = next(iter(DataLoader(subset, batch_size=10)))
    assert torch.equal(x, image_ds.__getitems__(list(range(50, 60))).images)
    assert y.tolist() == [2] * 10


def test_loader_dataset_attribute_is_the_users(image_ds: ImageFolderDataset) -> None:
    loader = DataLoader(image_ds, batch_size=4)
    next(iter(loader))
    assert loader.dataset is image_ds


class _Ragged(Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> Any:
        return None if i in (2, 3) else torch.zeros(i + 1)


def test_collate_error_names_dataset_indices() -> None:
    def failing(batch: Any) -> Any:
        raise CollateError("shapes differ: [1] and [2]")

    loader = DataLoader(_Ragged(), batch_size=2, collate_fn=failing)
    with pytest.raises(CollateError, match=r"shapes differ.*dataset indices \[0, 1\]"):
        next(iter(loader))


def test_default_collate_error_is_a_collate_error() -> None:
    loader = DataLoader(_Ragged(), batch_size=2)
    with pytest.raises(CollateError, match=r"\[0, 1\]|0.*1"):
        next(iter(loader))


def test_none_batches_are_skipped() -> None:
    def drop_none(batch: Any) -> Any:
        kept = [x for x in batch if x is not None]
        return kept or None

    loader = DataLoader(_Ragged(), batch_size=2, collate_fn=drop_none)
    batches = list(loader)
    assert len(batches) == 2 and loader.skipped_batches == 1


def test_no_auto_batching_still_works(image_ds: ImageFolderDataset) -> None:
    x, y = next(iter(DataLoader(image_ds, batch_size=None)))
    assert x.shape == (1, 28, 28) and int(y) == 0


def test_getitems_negative_and_out_of_range_indices(image_ds: ImageFolderDataset) -> None:
    batch = image_ds.__getitems__([-1, 0])
    assert torch.equal(batch.images[0], image_ds[99][0]) and batch.targets.tolist() == [3, 0]
    with pytest.raises(IndexError):
        image_ds.__getitems__([0, 100])


@pytest.mark.parametrize("drop_last", [False, True])
def test_tensor_batches_match_torch_batch_sampler(image_ds: ImageFolderDataset,
                                                  drop_last: bool) -> None:
    kwargs = {"batch_size": 7, "shuffle": True, "drop_last": drop_last}
    ours = DataLoader(image_ds, generator=torch.Generator().manual_seed(5), **kwargs)
    theirs = torch.utils.data.DataLoader(image_ds, generator=torch.Generator().manual_seed(5),
                                         **kwargs)
    assert len(ours) == len(theirs) == (14 if drop_last else 15)
    assert _same(list(ours), list(theirs))
    batches = list(ours.batch_sampler)
    assert isinstance(ours.batch_sampler, datasets.loader.IndexBatchSampler)
    assert all(isinstance(b, torch.Tensor) and b.dtype == torch.int64 for b in batches)


@pytest.mark.integration
def test_spawned_workers_reopen_the_cache(image_ds: ImageFolderDataset) -> None:
    """With spawn (macOS, Windows) the dataset is pickled: without pixels, reopened there."""
    spawned = _epoch(DataLoader, image_ds, num_workers=1, multiprocessing_context="spawn",
                     force_workers=True)
    assert _same(spawned, _epoch(DataLoader, image_ds))


@pytest.mark.parametrize("shuffle", [False, True])
def test_tensor_batches_match_torch_without_a_generator(image_ds: ImageFolderDataset,
                                                        shuffle: bool) -> None:
    torch.manual_seed(3)
    ours = list(DataLoader(image_ds, batch_size=9, shuffle=shuffle))
    after_ours = torch.rand(1)
    torch.manual_seed(3)
    theirs = list(torch.utils.data.DataLoader(image_ds, batch_size=9, shuffle=shuffle))
    assert _same(ours, theirs)
    assert torch.equal(torch.rand(1), after_ours)  # the global RNG was used alike


def test_tensor_batches_with_num_samples_and_custom_sampler(image_ds: ImageFolderDataset) -> None:
    from torch.utils.data import RandomSampler

    def make(cls: Any, sampler: Any) -> list[Any]:
        return list(cls(image_ds, batch_size=16, sampler=sampler))

    for num_samples in (30, 250):
        sampler = RandomSampler(image_ds, num_samples=num_samples,
                                generator=torch.Generator().manual_seed(1))
        ours = make(DataLoader, sampler)
        sampler.generator.manual_seed(1)
        assert _same(ours, make(torch.utils.data.DataLoader, sampler))
    odd = [5, 3, 99, 0] * 10  # any other sampler: a plain list of indices
    assert _same(make(DataLoader, odd), make(torch.utils.data.DataLoader, odd))


@pytest.mark.integration  # the collate runs in a worker process
def test_collate_error_in_a_worker_names_dataset_indices() -> None:
    def loader(ds: Any, **kwargs: Any) -> Any:
        return DataLoader(ds, batch_size=2, shuffle=True,
                          generator=torch.Generator().manual_seed(0), **kwargs)

    expected = next(iter(loader(list(range(6))))).tolist()  # the first batch's indices
    with pytest.raises(CollateError, match=rf"batch of dataset indices \{expected}") as caught:
        next(iter(loader(_Ragged(), num_workers=1)))
    assert caught.value.indices == expected  # type: ignore[attr-defined]


def test_index_batch_sampler_matches_torch_batch_sampler() -> None:
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    for drop_last in (False, True):
        ours = IndexBatchSampler(23, 5, shuffle=True, drop_last=drop_last,
                                 generator=torch.Generator().manual_seed(9))
        theirs = BatchSampler(RandomSampler(range(23), generator=torch.Generator().manual_seed(9)),
                              5, drop_last)
        for _ in range(2):  # two epochs from one generator
            assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)
        plain = BatchSampler(SequentialSampler(range(23)), 5, drop_last)
        assert list(IndexBatchSampler(23, 5, drop_last=drop_last)) == list(plain)
    with pytest.raises(ValueError, match="batch_size should be a positive int"):
        IndexBatchSampler(3, 0)


def test_loader_uses_only_public_extension_points(image_ds: ImageFolderDataset) -> None:
    loader = DataLoader(image_ds, batch_size=8, shuffle=True)
    methods = {name for name, value in vars(DataLoader).items() if callable(value)}
    assert methods == {"__init__", "__iter__"}  # no private method of torch's is overridden
    assert isinstance(loader.batch_sampler, IndexBatchSampler) and loader.batch_size == 8
    assert loader.batch_sampler.batch_size == 8 and len(loader) == 13
