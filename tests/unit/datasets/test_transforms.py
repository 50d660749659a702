"""ToFloat and Compose: one transform for a sample and for a batch."""

from __future__ import annotations

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
