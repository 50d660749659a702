"""Hand-written gradients against autograd, gradcheck in float64, and accuracy vs the nn model."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from training import FitConfig, LogisticRegression, evaluate, fit, scratch


def _blobs(n: int, d: int, k: int, *, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g, dtype=dtype) * 2
    y = torch.randint(0, k, (n,), generator=g)
    X = centers[y] + torch.randn(n, d, generator=g, dtype=dtype)
    return X, y


def _assert_gradients_match_autograd(params, loss, gradients, X, y, weight_decay: float) -> None:
    grads = gradients(params, X, y, weight_decay=weight_decay)
    leaves = {name: value.clone().requires_grad_() for name, value in vars(params).items()}
    loss(type(params)(**leaves), X, y, weight_decay=weight_decay).backward()
    for name, leaf in leaves.items():
        torch.testing.assert_close(getattr(grads, name), leaf.grad)


def test_binary_gradients_match_autograd() -> None:
    X, y = _blobs(50, 4, 2, seed=1)
    g = torch.Generator().manual_seed(2)
    params = scratch.BinaryParams(torch.randn(4, generator=g, dtype=torch.float64),
                                  torch.randn((), generator=g, dtype=torch.float64))
    _assert_gradients_match_autograd(params, scratch.binary_loss, scratch.binary_gradients,
                                     X, y, 0.1)


def test_softmax_gradients_match_autograd() -> None:
    X, y = _blobs(60, 5, 3, seed=3)
    g = torch.Generator().manual_seed(4)
    params = scratch.SoftmaxParams(torch.randn(5, 3, generator=g, dtype=torch.float64),
                                   torch.randn(3, generator=g, dtype=torch.float64))
    _assert_gradients_match_autograd(params, scratch.softmax_loss, scratch.softmax_gradients,
                                     X, y, 0.05)


def test_softmax_loss_matches_cross_entropy() -> None:
    X, y = _blobs(30, 3, 4, seed=5)
    params = scratch.SoftmaxParams(torch.randn(3, 4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    expected = torch.nn.functional.cross_entropy(X @ params.W + params.b, y)
    torch.testing.assert_close(scratch.softmax_loss(params, X, y), expected)


def test_losses_pass_gradcheck_in_float64() -> None:
    X, y = _blobs(20, 3, 3, seed=6)
    W = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda W, b: scratch.softmax_loss(scratch.SoftmaxParams(W, b), X, y, weight_decay=0.1), (W, b)
    )
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    c = torch.randn((), dtype=torch.float64, requires_grad=True)
    yb = (y > 0).long()
    assert torch.autograd.gradcheck(
        lambda w, c: scratch.binary_loss(scratch.BinaryParams(w, c), X, yb), (w, c)
    )


def test_hand_written_gradients_pass_gradcheck_as_functions() -> None:
    # gradcheck the closed-form gradient itself: its Jacobian is the loss's Hessian, so autograd
    # differentiating our formula must agree with finite differences of our formula.
    X, y = _blobs(15, 2, 2, seed=7)
    w = torch.randn(2, dtype=torch.float64, requires_grad=True)
    b = torch.randn((), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w, b: scratch.binary_gradients(scratch.BinaryParams(w, b), X, y).w, (w, b)
    )


def test_sgd_step_updates_in_place() -> None:
    params = scratch.init_softmax(2, 2, dtype=torch.float64)
    grads = scratch.SoftmaxParams(torch.ones(2, 2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    scratch.sgd_step(params, grads, 0.5)
    assert torch.equal(params.W, torch.full((2, 2), -0.5, dtype=torch.float64))
    assert torch.equal(params.b, torch.full((2,), -0.5, dtype=torch.float64))


def test_scratch_softmax_reaches_nn_model_accuracy() -> None:
    X, y = _blobs(600, 6, 4, seed=8, dtype=torch.float32)
    Xtr, ytr, Xte, yte = X[:450], y[:450], X[450:], y[450:]
    params = scratch.train_softmax(Xtr, ytr, 4, lr=0.2, epochs=30, batch_size=32, seed=0)
    scratch_acc = scratch.softmax_accuracy(params, Xte, yte)
    torch.manual_seed(0)
    model = LogisticRegression(6, 4)
    fit(model, DataLoader(TensorDataset(Xtr, ytr), batch_size=32, shuffle=True),
        config=FitConfig(lr=0.2, epochs=30, device="cpu"))
    nn_acc = evaluate(model, DataLoader(TensorDataset(Xte, yte), batch_size=64), device="cpu")["accuracy"]
    assert scratch_acc > 0.9
    assert abs(scratch_acc - nn_acc) <= 0.02


def test_scratch_binary_reaches_nn_model_accuracy() -> None:
    X, y = _blobs(400, 3, 2, seed=9, dtype=torch.float32)
    Xtr, ytr, Xte, yte = X[:300], y[:300], X[300:], y[300:]
    params = scratch.train_binary(Xtr, ytr, lr=0.5, epochs=200)
    scratch_acc = scratch.binary_accuracy(params, Xte, yte)
    torch.manual_seed(0)
    model = LogisticRegression(3, 2)
    fit(model, DataLoader(TensorDataset(Xtr, ytr), batch_size=300),
        config=FitConfig(lr=0.5, epochs=200, device="cpu"))
    nn_acc = evaluate(model, DataLoader(TensorDataset(Xte, yte), batch_size=100), device="cpu")["accuracy"]
    assert scratch_acc > 0.8
    assert abs(scratch_acc - nn_acc) <= 0.02
