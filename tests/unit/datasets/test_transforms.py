"""Transforms for a sample and for a batch: ToFloat, Normalize, random crops and flips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datasets.transforms import Compose, ToFloat, is_batch_transform


def test_tofloat_default_maps_to_minus_one_one() -> None:
    x = torch.tensor([[0, 51, 255]], dtype=torch.uint8)
    assert torch.allclose(ToFloat()(x), torch.tensor([[-1.0, -0.6, 1.0]]), atol=1e-6)


def test_tofloat_batch_equals_stacked_samples() -> None:
    batch = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    t = ToFloat(mean=0.1307, std=0.3081)
    assert torch.equal(t(batch), torch.stack([t(sample) for sample in batch]))
    assert torch.allclose(t(batch), (batch.float() / 255 - 0.1307) / 0.3081, atol=1e-5)
    assert t(batch).dtype == torch.float32


def test_tofloat_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="std should be a positive float, but got std=0"):
        ToFloat(std=0)
    with pytest.raises(TypeError, match="expects a uint8 tensor"):
        ToFloat()(torch.zeros(2))


def test_compose_chains_batch_transforms_only() -> None:
    class Invert(ToFloat):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return 255 - x

    t = Compose([Invert(), ToFloat(0.0, 1.0)])
    assert is_batch_transform(t)
    assert torch.allclose(t(torch.tensor([255], dtype=torch.uint8)), torch.tensor([0.0]))
    with pytest.raises(TypeError, match="torchvision.transforms.v2.Compose"):
        Compose([lambda x: x])
    assert not is_batch_transform(lambda x: x)


def _batch(b: int = 6, c: int = 3, h: int = 20, w: int = 24) -> torch.Tensor:
    return torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(1))


def test_normalize_per_channel_on_batch_and_sample() -> None:
    from datasets import Normalize

    x = _batch()
    t = Normalize([0.1, 0.2, 0.3], [0.5, 0.25, 0.125])
    out = t(x)
    mean = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.5, 0.25, 0.125]).view(1, 3, 1, 1)
    assert torch.allclose(out, (x.float() / 255 - mean) / std, atol=1e-5)
    assert torch.allclose(t(x[2]), out[2], atol=1e-6)
    with pytest.raises(ValueError, match="3 channel values"):
        t(torch.zeros(1, 1, 2, 2, dtype=torch.uint8))


def test_random_crop_and_flip_are_seeded_and_per_sample() -> None:
    from datasets import RandomCrop, RandomHorizontalFlip

    x = _batch()
    crop = RandomCrop(8, generator=torch.Generator().manual_seed(0))
    out = crop(x)
    again = RandomCrop(8, generator=torch.Generator().manual_seed(0))(x)
    assert out.shape == (6, 3, 8, 8) and out.dtype == torch.uint8 and torch.equal(out, again)
    for i in range(6):  # each crop is a window of its own image
        windows = x[i].unfold(1, 8, 1).unfold(2, 8, 1)  # [C, h', w', 8, 8]
        assert (windows == out[i].view(3, 1, 1, 8, 8)).all(dim=(0, 3, 4)).any()
    flip = RandomHorizontalFlip(p=0.5, generator=torch.Generator().manual_seed(0))(x)
    flipped = [torch.equal(flip[i], x[i].flip(-1)) for i in range(6)]
    kept = [torch.equal(flip[i], x[i]) for i in range(6)]
    assert all(a or b for a, b in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


def test_random_resized_crop_batch_matches_a_direct_resize_of_its_box() -> None:
    from torchvision.transforms.v2 import functional as F

    from datasets import RandomResizedCrop

    x = _batch(b=4, h=60, w=80)
    t = RandomResizedCrop(16, scale=(0.5, 1.0), generator=torch.Generator().manual_seed(0))
    boxes = t.boxes(4, 60, 80)
    out = RandomResizedCrop(16, scale=(0.5, 1.0),
                            generator=torch.Generator().manual_seed(0))(x)
    assert out.shape == (4, 3, 16, 16) and out.dtype == torch.uint8
    assert ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) >= 0.5 * 60 * 80 - 200).all()
    for i in range(4):
        x1, y1, x2, y2 = (int(v) for v in boxes[i])
        reference = F.resize(x[i, :, y1:y2, x1:x2], [16, 16], antialias=True)
        assert torch.equal(out[i], reference)  # the same kernel as torchvision


def test_batch_transforms_through_the_loader_on_a_colour_fixed_store(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from datasets import (
        DataLoader,
        ImageFolderDataset,
        Normalize,
        RandomCrop,
        RandomHorizontalFlip,
    )

    for c in ("a", "b"):
        (tmp_path / "t" / c).mkdir(parents=True)
        for i in range(5):
            rgb = np.random.default_rng(i).integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(tmp_path / "t" / c / f"{i}.png")
    ds = ImageFolderDataset.pack(tmp_path / "t", cache_dir=tmp_path / "c")
    g = torch.Generator().manual_seed(0)
    ds.transform = Compose([RandomCrop(8, generator=g), RandomHorizontalFlip(generator=g),
                            Normalize(ds.mean, ds.std)])
    assert ds.batched
    x, y = next(iter(DataLoader(ds, batch_size=10)))
    assert x.shape == (10, 3, 8, 8) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.3  # normalized with the manifest's own statistics


def test_torchvision_v2_per_sample_on_packed_colour(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image
    from torchvision.transforms import v2

    from datasets import DataLoader, ImageFolderDataset

    (tmp_path / "t" / "a").mkdir(parents=True)
    for i in range(4):
        rgb = np.random.default_rng(i).integers(0, 256, (20, 30, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(tmp_path / "t" / "a" / f"{i}.png")
    transform = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(8, antialias=True), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)])
    ds = ImageFolderDataset.pack(tmp_path / "t", transform, cache_dir=tmp_path / "c")
    x, _ = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32


@pytest.mark.parametrize("kwargs", [{"scale": (1.0, 0.5)}, {"scale": (0.0, 1.0)},
                                    {"ratio": (4 / 3, 3 / 4)}, {"ratio": (-1.0, 1.0)}])
def test_random_resized_crop_refuses_ranges_that_are_not_increasing_and_positive(
        kwargs: dict[str, tuple[float, float]]) -> None:
    from datasets import DecodeRandomResizedCrop, RandomResizedCrop

    for make in (RandomResizedCrop, DecodeRandomResizedCrop):
        with pytest.raises(ValueError, match="increasing positive ranges"):
            make(8, **kwargs)
