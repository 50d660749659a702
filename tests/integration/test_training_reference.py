"""Correctness against a reference on real notMNIST: logistic regression vs scikit-learn.

scikit-learn's ``LogisticRegression(max_iter=1000)`` (lbfgs) minimises
``C * sum(cross_entropy) + 0.5 * ||W||^2`` with C=1. ``training.fit`` with full-batch L-BFGS
and ``weight_decay = 1 / n_train`` minimises the same objective divided by ``n_train``. When
scikit-learn cannot be imported, the reference is the same objective minimised by SciPy's
L-BFGS-B in float64 (what scikit-learn runs inside) on a per-class seeded 80/20 split.

Marked ``integration``: the reference fit takes 10-40 s on a loaded 2-core machine.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from training import FitConfig, LogisticRegression, evaluate, fit


def _read_idx(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return images.astype(np.float64) / 255.0, labels


def _sklearn_reference(X: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression as SkLogistic
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    clf = SkLogistic(max_iter=1000).fit(Xtr, ytr)
    return Xtr, Xte, ytr, yte, float(clf.score(Xte, yte))


def _scipy_reference(X: np.ndarray, y: np.ndarray):
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    rng = np.random.default_rng(0)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: (y == c).sum() // 5]
                           for c in np.unique(y)])
    mask = np.zeros(len(y), bool)
    mask[test] = True
    Xtr, Xte, ytr, yte = X[~mask], X[mask], y[~mask], y[mask]
    n, d, k = Xtr.shape[0], Xtr.shape[1], 10
    onehot = np.eye(k)[ytr]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: d * k].reshape(d, k), theta[d * k:]
        logits = Xtr @ W + b
        lse = logsumexp(logits, axis=1)
        loss = (lse - logits[np.arange(n), ytr]).sum() + 0.5 * (W * W).sum()
        residual = np.exp(logits - lse[:, None]) - onehot
        grad = np.concatenate([(Xtr.T @ residual + W).ravel(), residual.sum(0)])
        return loss, grad

    result = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000, "gtol": 1e-4})
    W, b = result.x[: d * k].reshape(d, k), result.x[d * k:]
    accuracy = float(((Xte @ W + b).argmax(1) == yte).mean())
    return Xtr, Xte, ytr, yte, accuracy


@pytest.mark.integration
def test_logistic_regression_matches_scikit_learn_on_notmnist(shared_data: Path) -> None:
    folder = shared_data / "notmnist-idx"
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real notMNIST IDX not available in {folder}")
    X, y = _read_idx(folder)
    try:
        Xtr, Xte, ytr, yte, reference = _sklearn_reference(X, y)
    except ImportError:  # scikit-learn absent or broken: the same objective through SciPy
        pytest.importorskip("scipy")
        Xtr, Xte, ytr, yte, reference = _scipy_reference(X, y)
    torch.manual_seed(0)
    model = LogisticRegression(784, 10, init="zeros")  # scikit-learn starts from zeros too
    train = DataLoader(TensorDataset(torch.from_numpy(Xtr).float(), torch.from_numpy(ytr)),
                       batch_size=len(ytr))
    fit(model, train, config=FitConfig(optimizer="lbfgs", lr=1.0, epochs=10, lbfgs_max_iter=20,
                                       weight_decay=1.0 / len(ytr), device="cpu"))
    test = DataLoader(TensorDataset(torch.from_numpy(Xte).float(), torch.from_numpy(yte)),
                      batch_size=4096)
    accuracy = evaluate(model, test, device="cpu")["accuracy"]
    assert abs(accuracy - reference) <= 0.005, (accuracy, reference)
    assert accuracy > 0.85
