"""Models: shapes, parameters, default losses, and BagOfWords' batch forms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training import BagOfWords, FitConfig, LinearRegression, LogisticRegression
from training.models import BinaryCrossEntropyWithLogits


def test_linear_regression_is_x_at_w_plus_b() -> None:
    model = LinearRegression(3, 2)
    assert isinstance(model.weight, nn.Parameter) and model.weight.shape == (3, 2)
    x = torch.randn(5, 3)
    torch.testing.assert_close(model(x), x @ model.weight + model.bias)
    assert isinstance(model.default_loss(), nn.MSELoss)


def test_logistic_regression_flattens_images_and_picks_its_loss() -> None:
    multi = LogisticRegression(784, 10)
    assert multi(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert isinstance(multi.default_loss(), nn.CrossEntropyLoss)
    binary = LogisticRegression(5, 2)
    assert binary.weight.shape == (5, 1) and binary(torch.zeros(3, 5)).shape == (3,)
    assert isinstance(binary.default_loss(), BinaryCrossEntropyWithLogits)


def test_binary_loss_equals_bce_with_logits() -> None:
    logits = torch.tensor([0.3, -1.2, 2.0])
    labels = torch.tensor([1, 0, 0])
    expected = nn.BCEWithLogitsLoss()(logits, labels.float())
    torch.testing.assert_close(BinaryCrossEntropyWithLogits()(logits, labels), expected)


def test_models_reject_bad_sizes_with_torch_style_messages() -> None:
    with pytest.raises(ValueError, match="num_classes should be an int >= 2, but got num_classes=1"):
        LogisticRegression(4, 1)
    with pytest.raises(ValueError, match="in_features should be an int >= 1"):
        LinearRegression(0, 1)
    with pytest.raises(ValueError, match="build the model with in_features=3"):
        LinearRegression(4, 1)(torch.zeros(2, 3))


def test_bag_of_words_mask_lengths_and_offsets_agree() -> None:
    torch.manual_seed(0)
    model = BagOfWords(30, 3, 8, padding_idx=0)
    ids = torch.tensor([[4, 5, 6, 0], [7, 8, 0, 0]])
    lengths = torch.tensor([3, 2])
    mask = torch.arange(4).unsqueeze(0) < lengths.unsqueeze(1)
    by_mask = model({"input_ids": ids, "attention_mask": mask})
    by_lengths = model({"input_ids": ids, "lengths": lengths})
    by_offsets = model({"flat_input_ids": torch.tensor([4, 5, 6, 7, 8]),
                        "offsets": torch.tensor([0, 3]), "input_ids": ids})
    manual = torch.stack([model.embedding.weight[[4, 5, 6]].mean(0),
                          model.embedding.weight[[7, 8]].mean(0)])
    torch.testing.assert_close(by_mask, model.linear(manual))
    torch.testing.assert_close(by_lengths, by_mask)
    torch.testing.assert_close(by_offsets, by_mask)
    assert model(ids).shape == (2, 3)


def test_bag_of_words_needs_input_ids() -> None:
    with pytest.raises(KeyError, match="pad_collate"):
        BagOfWords(10, 2, 4)({"labels": torch.zeros(1)})


def test_zero_init_for_convex_problems() -> None:
    model = LogisticRegression(4, 3, init="zeros")
    assert not model.weight.any() and not model.bias.any()
    with pytest.raises(ValueError, match="init should be 'uniform' or 'zeros'"):
        LinearRegression(2, 1, init="normal")


def test_small_cnn_reads_any_size_and_channel_count() -> None:
    from training import SmallCNN

    colour, grey = SmallCNN(3, 10), SmallCNN(1, 4)
    for h, w in ((32, 32), (1, 1), (97, 61), (224, 160)):
        assert colour(torch.zeros(2, 3, h, w)).shape == (2, 10)
    assert grey(torch.zeros(5, 28, 28)).shape == (5, 4)  # [B,H,W] greyscale batches too
    assert sum(p.numel() for p in colour.parameters()) == 93_472 + 129 * 10
    assert isinstance(colour.default_loss(), nn.CrossEntropyLoss) and colour.task == "multiclass"
    with pytest.raises(ValueError, match=r"expected images \[B, 3, H, W\] but got shape "
                       r"\(2, 1, 8, 8\); build the model with in_channels=1"):
        colour(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="num_classes should be an int >= 2"):
        SmallCNN(3, 1)


def test_small_cnn_learns_where_colour_and_place_matter() -> None:
    # class = which quadrant holds a red 3x3 blob, at a random place inside it, over noise
    from training import SmallCNN, fit

    g = torch.Generator().manual_seed(0)
    n = 512
    labels = torch.randint(0, 4, (n,), generator=g)
    images = torch.rand(n, 3, 16, 16, generator=g) * 0.3
    for i, label in enumerate(labels.tolist()):
        top, left = (label // 2) * 8, (label % 2) * 8
        y, x = torch.randint(0, 5, (2,), generator=g).tolist()
        images[i, 0, top + y: top + y + 3, left + x: left + x + 3] = 1.0
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                         batch_size=64, shuffle=True, generator=g)
    torch.manual_seed(0)
    model = SmallCNN(3, 4, widths=(8, 16))
    history = fit(model, loader, config=FitConfig(optimizer="adam", lr=0.01, epochs=8, device="cpu", seed=0))
    assert history.train_accuracy[-1] is not None and history.train_accuracy[-1] > 0.95


_SPARSE_STEP = """
import sys, torch
from training import BagOfWords
if sys.argv[1] == "on":
    torch.sparse.check_sparse_tensor_invariants.enable()
model = BagOfWords(50, 2, 4, padding_idx=None, sparse=True)
optimizer = torch.optim.Adagrad(model.parameters(), lr=0.1)
loss = model(torch.tensor([[1, 2, 3], [4, 5, 6]])).sum()
loss.backward()
optimizer.step()
print("checks", torch.sparse.check_sparse_tensor_invariants.is_enabled())
"""


@pytest.mark.parametrize("choice", ["default", "on"])
def test_sparse_bag_training_prints_no_invariant_warning(choice: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "always"}
    done = subprocess.run([sys.executable, "-c", _SPARSE_STEP, choice], capture_output=True,
                          text=True, env=env, cwd=root, timeout=120, check=True)
    assert "implicitly disabled" not in done.stderr, done.stderr
    assert done.stdout.strip() == f"checks {choice == 'on'}"  # the caller's choice is kept


def test_linear_bag_of_words_is_logistic_regression_on_the_weighted_bag() -> None:
    from training import LinearBagOfWords

    model = LinearBagOfWords(6, 3, dropout=0.5)
    assert not model.weight.any()  # starts at zero, as scikit-learn's solvers do
    with torch.no_grad():
        model.weight.copy_(torch.randn(6, 3))
        model.bias.copy_(torch.randn(3))
    batch = {"flat_input_ids": torch.tensor([0, 4, 5, 2]), "offsets": torch.tensor([0, 3]),
             "per_sample_weights": torch.tensor([0.6, 0.7, 0.2, 1.0])}
    dense = torch.zeros(2, 6)
    dense[0, [0, 4, 5]] = torch.tensor([0.6, 0.7, 0.2])
    dense[1, 2] = 1.0
    model.eval()  # no dropout
    torch.testing.assert_close(model(batch), dense @ model.weight + model.bias)
    model.train()
    torch.manual_seed(0)
    dropped = [model(batch) for _ in range(200)]
    assert any(not torch.allclose(d, dropped[0]) for d in dropped)
    torch.testing.assert_close(torch.stack(dropped).mean(0), dense @ model.weight + model.bias,
                               atol=0.35, rtol=0.0)  # kept features scaled by 1 / (1 - p)
    assert isinstance(model.default_loss(), nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match=r"dropout should be a float in \[0, 1\), but got "
                       r"dropout=1.0"):
        LinearBagOfWords(6, 3, dropout=1.0)
    with pytest.raises(KeyError, match="lacks \\['offsets'\\]"):
        model({"flat_input_ids": torch.tensor([1])})
