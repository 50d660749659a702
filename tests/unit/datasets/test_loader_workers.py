"""datasets.DataLoader's workers (issue 19): ``"auto"``, stepping aside, forcing; batch_size."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.utils.data
from image_factory import make_image_tree
from torch.utils.data import Subset, TensorDataset

import datasets.loader
from datasets import DataLoader, ImageFolderDataset, VariableImageFolder
from datasets.loader import auto_workers


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make_image_tree(tmp_path / "t", classes=tuple("ABCD"), per_class=25)
    return tmp_path / "t"


@pytest.fixture
def packed(tree: Path) -> Any:
    return ImageFolderDataset.pack(tree)


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets.loader.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3},
                        raising=False)


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a process that has not yet said it steps aside."""
    monkeypatch.setattr(datasets.loader, "_STEPPED_ASIDE", set(), raising=False)


def _epoch(ds: Any, **kwargs: Any) -> list[Any]:
    loader = DataLoader(ds, batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(7), **kwargs)
    return list(loader)


def _stepped_aside(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "datasets.loader" and "steps aside" in r.getMessage()]


def test_auto_chooses_no_workers_for_a_packed_store(packed: Any, four_cpus: None) -> None:
    assert DataLoader(packed, batch_size=8, num_workers="auto").num_workers == 0
    assert DataLoader(Subset(packed, range(40)), batch_size=8).num_workers == 0  # the default
    assert auto_workers(packed) == 0
    assert auto_workers(TensorDataset(torch.zeros(4))) == 0  # unknown: torch's default


def test_auto_chooses_workers_for_decoding(tree: Path, tmp_path: Path, four_cpus: None) -> None:
    decoding = [ImageFolderDataset(tree),
                VariableImageFolder(tree, cache_dir=tmp_path / "cache"),
                ImageFolderDataset.pack(tree, transform=lambda image: image.float())]
    for ds in decoding:
        assert auto_workers(ds) == 4
        assert auto_workers(Subset(ds, range(10))) == 4
        assert DataLoader(ds, batch_size=8).num_workers == 4  # no process starts before iter


def test_auto_chooses_none_with_a_single_cpu(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets.loader.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert auto_workers(ImageFolderDataset(tree)) == 0


def test_explicit_workers_step_aside_once_with_the_reason(
        packed: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="datasets.loader")
    loader = DataLoader(packed, batch_size=16, num_workers=2, persistent_workers=True,
                        prefetch_factor=4)  # worker-only options go with the workers
    assert loader.num_workers == 0
    for _ in range(2):
        assert sum(len(y) for _, y in loader) == 100
    said = _stepped_aside(caplog)
    assert len(said) == 1 and said[0].levelno == logging.INFO
    message = said[0].getMessage()
    assert message.startswith("num_workers=2 steps aside: PackedImageFolder is a small packed")
    assert "force_workers=True" in message


def test_stepping_aside_gives_the_same_batches(packed: Any) -> None:
    assert DataLoader(packed, batch_size=16, num_workers=2).num_workers == 0  # it stepped aside
    ours = _epoch(packed, num_workers=2)
    alone = _epoch(packed, num_workers=0)
    theirs = list(torch.utils.data.DataLoader(packed, batch_size=16, shuffle=True,
                                              generator=torch.Generator().manual_seed(7)))
    for a, b, c in zip(ours, alone, theirs, strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])


def test_force_workers_keeps_them(packed: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="datasets.loader")
    assert DataLoader(packed, batch_size=16, num_workers=2, force_workers=True).num_workers == 2
    assert not _stepped_aside(caplog)


def test_a_large_packed_store_keeps_its_workers(packed: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets.loader, "STEP_ASIDE_MAX_BYTES", 100 * 28 * 28 - 1)
    assert DataLoader(packed, batch_size=16, num_workers=2).num_workers == 2
    monkeypatch.setattr(datasets.loader, "STEP_ASIDE_MAX_BYTES", 100 * 28 * 28)
    assert DataLoader(packed, batch_size=16, num_workers=2).num_workers == 0


def test_decoding_datasets_get_the_workers_asked_for(tree: Path) -> None:
    assert DataLoader(ImageFolderDataset(tree), batch_size=8, num_workers=2).num_workers == 2


@pytest.mark.integration  # worker processes pass tensors over local unix sockets
def test_forced_workers_give_the_same_batches(packed: Any) -> None:
    forced = _epoch(packed, num_workers=2, force_workers=True)
    for a, b in zip(forced, _epoch(packed, num_workers=2), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_bad_num_workers_is_refused(packed: Any) -> None:
    for bad in ("many", -1, 1.5, True):
        with pytest.raises(ValueError, match=r"num_workers should be a non-negative int or "
                                             r"'auto', but got num_workers="):
            DataLoader(packed, batch_size=4, num_workers=bad)


def test_batch_size_is_the_batch_size(packed: Any) -> None:
    loader = DataLoader(packed, batch_size=16, shuffle=True)
    assert loader.batch_size == 16 and loader.batch_sampler.batch_size == 16
    assert DataLoader(TensorDataset(torch.zeros(5)), batch_size=2).batch_size == 2
    assert DataLoader(packed, batch_size=16, sampler=range(30)).batch_size == 16
    assert DataLoader(packed, batch_size=None).batch_size is None  # as torch: no batching
    given = torch.utils.data.BatchSampler(range(30), 4, False)
    assert DataLoader(packed, batch_sampler=given).batch_size is None  # as torch
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 4


def test_drop_last_and_sampler_are_torchs(packed: Any) -> None:
    # review 19, item 1: Lightning and Accelerate read loader.drop_last / loader.sampler
    for shuffle in (False, True):
        for drop_last in (False, True):
            ours = DataLoader(packed, batch_size=16, shuffle=shuffle, drop_last=drop_last)
            theirs = torch.utils.data.DataLoader(packed, batch_size=16, shuffle=shuffle,
                                                 drop_last=drop_last)
            assert ours.drop_last is theirs.drop_last is drop_last
            assert type(ours.sampler) is type(theirs.sampler)
            assert len(ours) == len(theirs)
    given = torch.utils.data.BatchSampler(range(30), 4, True)
    assert DataLoader(packed, batch_sampler=given).drop_last is False  # as torch
    with pytest.raises(ValueError, match="drop_last attribute should not be set"):
        DataLoader(packed, batch_size=4).drop_last = True


def test_concat_datasets_count_as_their_parts(tree: Path, packed: Any, four_cpus: None,
                                               caplog: pytest.LogCaptureFixture) -> None:
    # review 19, item 2: ConcatDataset was an unknown dataset to "auto" and to stepping aside
    caplog.set_level(logging.INFO, logger="datasets.loader")
    both = torch.utils.data.ConcatDataset([packed, Subset(packed, range(30))])
    assert DataLoader(both, batch_size=8, num_workers=2).num_workers == 0
    assert len(_stepped_aside(caplog)) == 1
    decoding = torch.utils.data.ConcatDataset([ImageFolderDataset(tree), ImageFolderDataset(tree)])
    assert auto_workers(decoding) == 4 and DataLoader(decoding, batch_size=8).num_workers == 4
    mixed = torch.utils.data.ConcatDataset([packed, ImageFolderDataset(tree)])
    assert auto_workers(mixed) == 0  # not all of one kind: torch's default
    assert DataLoader(mixed, batch_size=8, num_workers=2).num_workers == 2  # as asked


def test_stepping_aside_is_said_once_per_process_and_kind(
        packed: Any, caplog: pytest.LogCaptureFixture) -> None:
    # review 19 item 7: a train and a test loader (or one loader per epoch) said it each time
    caplog.set_level(logging.DEBUG, logger="datasets.loader")
    for part in (Subset(packed, range(80)), Subset(packed, range(80, 100)), packed):
        assert DataLoader(part, batch_size=8, num_workers=2).num_workers == 0
    said = _stepped_aside(caplog)
    assert [r.levelno for r in said] == [logging.INFO, logging.DEBUG, logging.DEBUG]
