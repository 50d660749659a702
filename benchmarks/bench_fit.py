"""Benchmark ``training.fit``: accuracy and time against scikit-learn, and per-step overhead.

Part 1 fits the same logistic regression (pixels / 255, stratified 80/20 split, seed 0) with
``training.fit`` (full-batch L-BFGS, ``weight_decay = 1 / n_train``: scikit-learn's C=1
objective) and with scikit-learn's ``LogisticRegression(max_iter=1000)``; prints both
accuracies and the wall-time ratio (target: within 0.5 points in <= 1/5 of the time). Data: the
real notMNIST IDX sample (``../shared/data/notmnist-idx``) when present, else ``letters``.
When scikit-learn cannot be imported, the reference is SciPy's L-BFGS-B on the same objective
(what scikit-learn runs inside), labelled as such.

Part 2 times minibatch SGD epochs of the same model through ``fit`` and through plain
hand-written loops on the same DataLoader: one tracking loss and accuracy as tutorials do
(``loss.item()`` each step; the like-for-like comparison, target ``fit / plain <= 1.0``) and
one with the four steps only (the lower bound: what the bookkeeping costs).

Usage: python benchmarks/bench_fit.py [--quick] [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.report import add_json_flag, emit, figure  # noqa: E402
from training import FitConfig, LogisticRegression, evaluate, fit  # noqa: E402

IDX = REPO.parent / "shared" / "data" / "notmnist-idx"


def load_data(quick: bool) -> tuple[str, np.ndarray, np.ndarray]:
    """Return (name, X float64 [n, 784] in [0, 1], y int64)."""
    if (IDX / "t10k-images-idx3-ubyte.gz").is_file():
        with gzip.open(IDX / "t10k-images-idx3-ubyte.gz") as f:
            X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
        with gzip.open(IDX / "t10k-labels-idx1-ubyte.gz") as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
        name = "real notMNIST IDX (10,000 images)"
    else:
        import loaders
        from datasets import NotMNIST

        loaders.fetch("letters", extract=False)
        ds = NotMNIST(split="all", variant="letters")
        X, y = ds.data.reshape(len(ds), -1).numpy(), ds.targets.numpy()
        name = f"letters ({len(y):,} generated images)"
    if quick:
        keep = np.random.default_rng(0).permutation(len(y))[: len(y) // 2]
        X, y, name = X[keep], y[keep], name + ", half (--quick)"
    return name, X.astype(np.float64) / 255.0, y


def split(X: np.ndarray, y: np.ndarray):
    try:
        from sklearn.model_selection import train_test_split

        return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    except ImportError:
        rng = np.random.default_rng(0)
        test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: (y == c).sum() // 5]
                               for c in np.unique(y)])
        mask = np.zeros(len(y), bool)
        mask[test] = True
        return X[~mask], X[mask], y[~mask], y[mask]


def reference(Xtr, Xte, ytr, yte) -> tuple[str, float, float]:
    """Return (label, accuracy, seconds) of scikit-learn, or of its SciPy replica."""
    try:
        from sklearn.linear_model import LogisticRegression as SkLogistic
    except ImportError as err:
        print(f"  (scikit-learn not importable: {err}; using SciPy L-BFGS-B on its objective)")
        return scipy_reference(Xtr, Xte, ytr, yte)
    started = time.perf_counter()
    clf = SkLogistic(max_iter=1000).fit(Xtr, ytr)
    seconds = time.perf_counter() - started
    return "scikit-learn LogisticRegression(max_iter=1000)", float(clf.score(Xte, yte)), seconds


def scipy_reference(Xtr, Xte, ytr, yte) -> tuple[str, float, float]:
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    n, d = Xtr.shape
    k = int(ytr.max()) + 1
    onehot = np.eye(k)[ytr]

    def objective(theta):
        W, b = theta[: d * k].reshape(d, k), theta[d * k:]
        logits = Xtr @ W + b
        lse = logsumexp(logits, axis=1)
        loss = (lse - logits[np.arange(n), ytr]).sum() + 0.5 * (W * W).sum()
        residual = np.exp(logits - lse[:, None]) - onehot
        return loss, np.concatenate([(Xtr.T @ residual + W).ravel(), residual.sum(0)])

    started = time.perf_counter()
    result = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000, "gtol": 1e-4})
    seconds = time.perf_counter() - started
    W, b = result.x[: d * k].reshape(d, k), result.x[d * k:]
    accuracy = float(((Xte @ W + b).argmax(1) == yte).mean())
    return "SciPy L-BFGS-B on scikit-learn's objective (C=1)", accuracy, seconds


def ours(Xtr, Xte, ytr, yte, epochs: int) -> tuple[float, float]:
    xtr, xte = torch.from_numpy(Xtr).float(), torch.from_numpy(Xte).float()
    ttr, tte = torch.from_numpy(ytr), torch.from_numpy(yte)
    # The first torch.optim optimizer of a process imports torch._dynamo (about 1 s): a
    # one-time import, like scikit-learn's, which reference() also does before its timer.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    started = time.perf_counter()
    torch.manual_seed(0)
    model = LogisticRegression(xtr.shape[1], int(ttr.max()) + 1, init="zeros")  # as scikit-learn
    fit(model, DataLoader(TensorDataset(xtr, ttr), batch_size=len(ttr)),
        config=FitConfig(optimizer="lbfgs", lr=1.0, epochs=epochs, lbfgs_max_iter=20,
                         weight_decay=1.0 / len(ttr), device="cpu"))
    seconds = time.perf_counter() - started
    accuracy = evaluate(model, DataLoader(TensorDataset(xte, tte), batch_size=4096),
                        device="cpu")["accuracy"]
    return accuracy, seconds


def plain_loop(model: nn.Module, loader: DataLoader, epochs: int, lr: float) -> None:
    """The loop every tutorial writes: the four steps and nothing else."""
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            outputs = model(x)
            loss = criterion(outputs, y)
            loss.backward()
            optimizer.step()


def plain_loop_with_metrics(model: nn.Module, loader: DataLoader, epochs: int, lr: float) -> None:
    """The same loop tracking what ``fit`` reports (loss, accuracy), as tutorials write it."""
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        running_loss, correct, seen = 0.0, 0, 0
        for x, y in loader:
            optimizer.zero_grad()
            outputs = model(x)
            loss = criterion(outputs, y)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * len(y)
            correct += (outputs.argmax(1) == y).sum().item()
            seen += len(y)


def overhead(Xtr, ytr, *, repeats: int, epochs: int, batch_size: int) -> dict[str, float]:
    xtr, ttr = torch.from_numpy(Xtr).float(), torch.from_numpy(ytr)
    k = int(ttr.max()) + 1
    loader = DataLoader(TensorDataset(xtr, ttr), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    runners = {
        "bare": lambda m: plain_loop(m, loader, epochs, 0.1),
        "metrics": lambda m: plain_loop_with_metrics(m, loader, epochs, 0.1),
        "fit": lambda m: fit(m, loader, config=FitConfig(lr=0.1, epochs=epochs, device="cpu")),
    }
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):  # interleaved so that load changes hit all alike
        for name, run in runners.items():
            torch.manual_seed(0)
            model = LogisticRegression(xtr.shape[1], k)
            started = time.perf_counter()
            run(model)
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    steps = epochs * len(loader)
    labels = {"bare": "plain loop, four steps only", "metrics": "plain loop + loss/accuracy",
              "fit": "fit (loss, accuracy, data/compute timing)"}
    for name, seconds in median.items():
        print(f"  {labels[name]:42s}: {seconds:.3f} s median of {repeats} "
              f"({seconds / steps * 1e6:.0f} us/step)")
    print(f"  ratio fit / plain+metrics = {median['fit'] / median['metrics']:.3f}  (target <= 1.0)")
    print(f"  ratio fit / bare loop     = {median['fit'] / median['bare']:.3f}  (the cost of "
          "bookkeeping; noise ~ +-5% under load)")
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="example: python benchmarks/bench_fit.py --quick")
    parser.add_argument("--quick", action="store_true", help="half the data, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="overhead repeats (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--lbfgs-epochs", type=int, default=5,
                        help="L-BFGS steps of 20 iterations for training (default 5)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    name, X, y = load_data(args.quick)
    Xtr, Xte, ytr, yte = split(X, y)
    print(f"data: {name}; train {len(ytr)}, test {len(yte)}; torch threads "
          f"{torch.get_num_threads()}")
    print("1. logistic regression, same objective, same split")
    label, ref_acc, ref_s = reference(Xtr, Xte, ytr, yte)
    acc, seconds = ours(Xtr, Xte, ytr, yte, args.lbfgs_epochs)
    print(f"  reference  : {ref_acc:.4f} accuracy in {ref_s:.2f} s  [{label}]")
    print(f"  training   : {acc:.4f} accuracy in {seconds:.2f} s  "
          f"[fit, full-batch L-BFGS from zeros, {args.lbfgs_epochs}x20 iterations]")
    print(f"  accuracy gap = {100 * (acc - ref_acc):+.2f} points (target within +-0.5)")
    print(f"  time ratio training / reference = {seconds / ref_s:.3f} (target <= 0.2; "
          f"{ref_s / seconds:.1f}x faster)")
    print("2. per-step overhead: minibatch SGD, batch 64, same DataLoader")
    repeats = args.repeats or (3 if args.quick else 5)
    median = overhead(Xtr, ytr, repeats=repeats, epochs=1 if args.quick else 2, batch_size=64)
    emit("fit", [
        figure("accuracy gap |training - reference|, points", abs(100 * (acc - ref_acc)), target="<= 0.5"),
        figure("time training / reference", seconds / ref_s, unit="x", target="<= 0.2", note=label),
        figure("time fit / plain loop + metrics", median["fit"] / median["metrics"], unit="x", target="<= 1.0"),
        figure("time fit / bare loop", median["fit"] / median["bare"], unit="x"),
    ], args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
