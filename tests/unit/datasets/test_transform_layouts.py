"""Batch transforms give torchvision's pixels whatever the input's memory layout.

The packed stores hand the transforms ``[B, C, H, W]`` views of ``[N, H, W, C]`` memory
(channels last); users may pass contiguous ``[B, C, H, W]`` or a strided slice. Each case must
give, per sample, what ``torchvision.transforms.v2.functional`` gives, and a dense result.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torchvision.transforms.v2 import functional as F

from datasets import Normalize, RandomCrop, RandomHorizontalFlip, RandomResizedCrop
from datasets.transforms import Compose


def _channels_last(b: int, c: int, h: int, w: int) -> torch.Tensor:
    """A [b, c, h, w] view of [b, h, w, c] memory, as the packed stores give it."""
    pixels = torch.randint(0, 256, (b, h, w, c), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(c))
    return pixels.permute(0, 3, 1, 2)


def _contiguous(b: int, c: int, h: int, w: int) -> torch.Tensor:
    return _channels_last(b, c, h, w).contiguous()


def _strided(b: int, c: int, h: int, w: int) -> torch.Tensor:
    """Every other sample of a bigger batch, cut out of a larger image: no dense layout."""
    return _contiguous(2 * b, c, h + 3, w + 5)[::2, :, 1 : h + 1, 2 : w + 2]


LAYOUTS = [_channels_last, _contiguous, _strided]
Layout = Callable[[int, int, int, int], torch.Tensor]


def _dense(x: torch.Tensor) -> bool:
    return x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("c", [1, 3, 4])
def test_random_resized_crop_matches_torchvision_in_every_layout(layout: Layout, c: int) -> None:
    x = layout(5, c, 36, 44)
    before = x.clone()
    boxes = RandomResizedCrop(16, generator=torch.Generator().manual_seed(3)).boxes(5, 36, 44)
    out = RandomResizedCrop(16, generator=torch.Generator().manual_seed(3))(x)
    assert out.shape == (5, c, 16, 16) and out.dtype == torch.uint8 and _dense(out)
    for i in range(5):
        x1, y1, x2, y2 = (int(v) for v in boxes[i])
        assert torch.equal(out[i], F.resize(x[i, :, y1:y2, x1:x2].contiguous(), [16, 16],
                                            antialias=True))
    assert torch.equal(x, before)  # the input (a read-only memory map, in a dataset) is kept
    if layout is _channels_last:  # the store's layout is kept: no transposing copy
        assert out.permute(0, 2, 3, 1).is_contiguous()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_random_crop_and_flip_match_their_draws_in_every_layout(layout: Layout) -> None:
    x = layout(6, 3, 20, 24)
    before = x.clone()
    g = torch.Generator().manual_seed(5)
    top, left = torch.randint(0, 13, (6,), generator=g), torch.randint(0, 17, (6,), generator=g)
    out = RandomCrop(8, generator=torch.Generator().manual_seed(5))(x)
    assert _dense(out)
    for i in range(6):
        assert torch.equal(out[i], F.crop(x[i], int(top[i]), int(left[i]), 8, 8))
    chosen = torch.rand(6, generator=torch.Generator().manual_seed(7)) < 0.5
    flipped = RandomHorizontalFlip(generator=torch.Generator().manual_seed(7))(x)
    assert _dense(flipped)
    for i in range(6):
        assert torch.equal(flipped[i], F.horizontal_flip(x[i]) if chosen[i] else x[i])
    assert torch.equal(x, before)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_compose_flips_in_place_only_what_it_made(layout: Layout) -> None:
    x = layout(8, 3, 30, 30)
    before = x.clone()
    g = torch.Generator().manual_seed(11)
    crop, flip = RandomResizedCrop(12, generator=g), RandomHorizontalFlip(generator=g)
    fused = Compose([crop, flip])(x)
    g.manual_seed(11)
    stepwise = flip(crop(x))  # the same draws, one transform after the other
    assert torch.equal(fused, stepwise) and _dense(fused)
    g.manual_seed(11)
    only_flip = Compose([flip])(x)  # the caller's batch: never flipped in place
    assert torch.equal(x, before) and torch.equal(only_flip, RandomHorizontalFlip(
        generator=torch.Generator().manual_seed(11))(x))


def test_compose_on_one_image_and_with_a_subclass_keeps_its_call() -> None:
    class Mirror(RandomHorizontalFlip):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return x.flip(-1)

    image = _channels_last(1, 3, 20, 20)[0]
    out = Compose([RandomResizedCrop(10, generator=torch.Generator().manual_seed(0)),
                   Mirror()])(image)
    reference = RandomResizedCrop(10, generator=torch.Generator().manual_seed(0))(image)
    assert out.shape == (3, 10, 10) and torch.equal(out, reference.flip(-1))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_normalize_is_the_same_in_every_layout(layout: Layout) -> None:
    x = layout(4, 3, 10, 12)
    t = Normalize([0.1, 0.2, 0.3], [0.5, 0.25, 0.125])
    assert torch.equal(t(x), t(x.contiguous()))
    assert torch.equal(t(x[1]), t(x)[1])


class _Doubled(RandomCrop):
    """A subclass that only overrides ``__call__``: ``take`` must still go through it."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return super().__call__(x) * 2


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("make", [
    lambda g, c: RandomResizedCrop(8, generator=g),
    lambda g, c: RandomCrop((6, 9), generator=g),
    lambda g, c: Compose([RandomResizedCrop(8, generator=g), RandomHorizontalFlip(generator=g)]),
    lambda g, c: Compose([RandomCrop(5, generator=g), Normalize([0.5] * c, [0.2] * c)]),
    lambda g, c: Compose([Normalize([0.5] * c, [0.2] * c)]),
    lambda g, c: Compose([]),
    lambda g, c: _Doubled(4, generator=g),
])
@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("rows", [[7, 0, 11, 7, 3], [-1, 2, -12], [5], []])
def test_take_equals_the_transform_of_the_gathered_rows(layout: Layout, make: Callable, c: int,
                                                        rows: list[int]) -> None:
    source = layout(12, c, 11, 13)
    indices = torch.tensor(rows, dtype=torch.int64)  # repeats, any order, negatives, none
    taken = make(torch.Generator().manual_seed(1), c).take(source, indices)
    reference = make(torch.Generator().manual_seed(1), c)(source[indices].contiguous())
    assert torch.equal(taken, reference)
    assert taken.shape[0] == len(rows) and _dense(taken)


@pytest.mark.parametrize("crop", [RandomCrop(5), RandomResizedCrop(8)])
def test_crops_take_their_boxes_without_gathering_rows(crop: RandomCrop | RandomResizedCrop,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.transforms

    def no_gather(*args: object) -> None:
        raise AssertionError("gathered whole rows")

    monkeypatch.setattr(datasets.transforms, "gather", no_gather)
    taken = Compose([crop, RandomHorizontalFlip()]).take(_channels_last(6, 3, 11, 13),
                                                        torch.tensor([4, 1]))
    assert taken.stride(1) == 1  # channels last, as the store's pixels are


@pytest.mark.parametrize("make", [lambda: RandomCrop(5), lambda: RandomResizedCrop(8),
                                  lambda: Compose([Normalize([0.5] * 3, [0.2] * 3)])])
def test_take_names_an_index_out_of_range(make: Callable) -> None:
    source = _channels_last(4, 3, 11, 13)
    with pytest.raises(IndexError, match="index 4 is out of range for 4 images"):
        make().take(source, torch.tensor([0, 4]))
    with pytest.raises(IndexError, match="index -5 is out of range"):
        make().take(source, torch.tensor([-5]))


def test_take_refuses_a_mask_or_float_indices() -> None:
    source = _channels_last(4, 3, 11, 13)
    for bad in (torch.tensor([True, False, True, False]), torch.tensor([0.0, 1.0])):
        with pytest.raises(TypeError, match="integer row indices"):
            RandomCrop(5).take(source, bad)
