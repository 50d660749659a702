"""Seeded random transforms in DataLoader workers: own draws per worker and epoch, reproducible."""

from __future__ import annotations

import torch

from datasets.transforms import RandomCrop, worker_generator


class _Crops(torch.utils.data.Dataset[torch.Tensor]):
    """Each item is the random crop of one fixed ramp image: what it holds is the draw."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.image = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8).expand(1, 1, 8, 8)
        self.crop = RandomCrop(2, generator=torch.Generator().manual_seed(7))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.crop(self.image.clone())[0, 0, 0, 0]  # the crop's top-left pixel: its box


def _epoch(loader: torch.utils.data.DataLoader[torch.Tensor]) -> list[int]:
    return [int(v) for batch in loader for v in batch]


def _loader(seed: int) -> torch.utils.data.DataLoader[torch.Tensor]:
    return torch.utils.data.DataLoader(_Crops(64), batch_size=16, num_workers=2,
                                       generator=torch.Generator().manual_seed(seed))


def test_workers_draw_different_boxes_and_epochs_differ() -> None:
    loader = _loader(0)
    first, second = _epoch(loader), _epoch(loader)
    by_worker = [first[0:16], first[16:32]]  # batches 0 and 1 come from workers 0 and 1
    assert by_worker[0] != by_worker[1]
    assert first != second


def test_the_same_seeds_give_the_same_epoch() -> None:
    assert _epoch(_loader(3)) == _epoch(_loader(3))
    assert _epoch(_loader(3)) != _epoch(_loader(4))


def test_outside_a_worker_the_generator_is_used_as_it_is() -> None:
    g = torch.Generator().manual_seed(0)
    assert worker_generator(g) is g
    assert worker_generator(None) is None
