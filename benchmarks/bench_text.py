"""Benchmark text classification: dataferry's text recipe against scikit-learn, same split.

For each corpus present it runs, on the same rows:

- the SMS Spam Collection from ``../shared/data`` (stratified 80/20, seed 0);
- AG News halves from ``../shared/data/ag-news-half`` (3,800 real articles): stratified 80/20
  and 50/50 (seed 0), and, when another ``*.csv`` of the same layout lies beside
  ``ag_news_half.csv`` (the other half of the published test set), trained on one half and
  tested on the other;
- AG News (120,000 / 7,600) and IMDB (25,000 / 25,000) on their own test sets when they are in
  the dataferry cache (``python -m loaders.download ag-news`` / ``imdb``).

dataferry runs its defaults (:data:`training.text.TEXT_DEFAULTS`: the recipe ``python -m
training fit --model bow`` and the text example run), timed from the file to the test
accuracy (reading, packing, features, training with early stopping). When scikit-learn is
installed (the ``bench`` extra) it trains its two models on the same rows, each timed from the
texts: ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` + ``LinearSVC``, and
``CountVectorizer`` + ``LogisticRegression(max_iter=1000)``; without scikit-learn it says so.
It prints accuracy and wall time side by side and checks the targets: within 0.5 point of
TF-IDF + LinearSVC on AG News, and >= the better scikit-learn model - 1 point elsewhere.
``--quick`` runs the 80/20 splits of ``../shared/data`` only.

Usage: python benchmarks/bench_text.py [--quick] [--json PATH] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datasets.text import TextClassificationDataset  # noqa: E402
from datasets.textsplits import stratified_split  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
SMS = SHARED / "sms-spam" / "SMSSpamCollection"
AG_HALF = SHARED / "ag-news-half" / "ag_news_half.csv"


@dataclass
class Corpus:
    """One benchmark row: where dataferry reads it and the texts scikit-learn gets."""

    name: str
    texts: list[str]
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray
    source: dict[str, Any]  # load_text_data's arguments (data=, test_data=, dataset=)
    tolerance: float = 0.01  # points below the better scikit-learn model, as a fraction
    versus_svc: bool = False  # AG News: measured against TF-IDF + LinearSVC
    test_fraction: float = 0.2  # the recipe's split of a single file (seed 0)


def _file_rows(path: Path, test: float, name: str, **extra: Any) -> Corpus:
    ds = TextClassificationDataset.from_file(path)
    y = ds.targets.numpy()
    parts = stratified_split(y, test=test, seed=0)
    return Corpus(name, ds.texts, y, parts["train"], parts["test"], {"data": path},
                  test_fraction=test, **extra)


def _other_halves() -> list[Corpus]:
    """Train on ag_news_half.csv, test on each other CSV beside it (the unseen half)."""
    out = []
    for other in sorted(AG_HALF.parent.glob("*.csv")):
        if other == AG_HALF:
            continue
        train = TextClassificationDataset.from_file(AG_HALF)
        test = TextClassificationDataset.from_file(other, label_encoder=train.label_encoder)
        y = np.concatenate([train.targets.numpy(), test.targets.numpy()])
        n = len(train)
        out.append(Corpus(f"ag-news half -> {other.name}", [*train.texts, *test.texts], y,
                          np.arange(n), np.arange(n, len(y)),
                          {"data": AG_HALF, "test_data": other}, 0.005, True))
    return out


def corpora(quick: bool) -> list[Corpus]:
    """Return the corpora present, each with its train and test rows."""
    out: list[Corpus] = []
    if SMS.is_file():
        out.append(_file_rows(SMS, 0.2, "sms-spam (80/20)"))
    if AG_HALF.is_file():
        for test in (0.2,) if quick else (0.2, 0.5):
            out.append(_file_rows(AG_HALF, test, f"ag-news half ({100 - 100 * test:.0f}/"
                                  f"{100 * test:.0f})", tolerance=0.005, versus_svc=True))
        out += _other_halves()
    for name in () if quick else ("ag-news", "imdb"):
        found = _cached(name)
        if found is not None:
            out.append(found)
    return out


def _cached(name: str) -> Corpus | None:
    import loaders
    from datasets.catalog import TextFiles, get
    from datasets.textfolder import read_text_folder

    folder = loaders.dataset_dir(name)
    corpus: TextFiles | None = get(name).text
    if corpus is None:
        return None
    if corpus.archive is not None:
        if not (folder / corpus.archive).is_file():
            return None
        train = read_text_folder(folder / corpus.archive, split="train")
        test = read_text_folder(folder / corpus.archive, split="test")
    else:
        if not all((folder / f).is_file() for f in corpus.files.values()):
            return None
        train_ds = TextClassificationDataset.from_file(folder / "train.csv", **corpus.read)
        test_ds = TextClassificationDataset.from_file(folder / "test.csv", **corpus.read,
                                                      label_encoder=train_ds.label_encoder)
        train = (train_ds.texts, train_ds.labels)
        test = (test_ds.texts, test_ds.labels)
    classes = sorted(set(train[1]))
    y = np.array([classes.index(v) for v in [*train[1], *test[1]]])
    n = len(train[0])
    return Corpus(f"{name} (official split)", [*train[0], *test[0]], y, np.arange(n),
                  np.arange(n, len(y)), {"dataset": name}, versus_svc=name == "ag-news")


def run_dataferry(corpus: Corpus) -> dict[str, Any]:
    """Run the text recipe's defaults from the source to the test accuracy, timed."""
    from training.text import TEXT_DEFAULTS, load_text_data, train_text

    recipe = dataclasses.replace(TEXT_DEFAULTS, test_fraction=corpus.test_fraction)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        text = load_text_data(**corpus.source, cache_dir=cache, recipe=recipe, seed=0)
        if text.test_size != len(corpus.test):
            raise SystemExit(f"{corpus.name}: dataferry's split differs from the benchmark's "
                             "rows")
        _, result = train_text(text, recipe=recipe, seed=0, device="cpu")
    return {"accuracy": float(result["accuracy"]), "seconds": time.perf_counter() - started,
            "features": text.vocab_size}


def run_sklearn(corpus: Corpus) -> dict[str, dict[str, float]]:
    """Train scikit-learn's two models on the same rows, each timed from the texts."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    tr, te = [corpus.texts[i] for i in corpus.train], [corpus.texts[i] for i in corpus.test]
    y = corpus.y
    out = {}
    for name, vec, clf in (
        (SVC, TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC()),
        ("counts+LogisticRegression", CountVectorizer(), LogisticRegression(max_iter=1000)),
    ):
        started = time.perf_counter()
        clf.fit(vec.fit_transform(tr), y[corpus.train])
        accuracy = float(clf.score(vec.transform(te), y[corpus.test]))
        out[name] = {"accuracy": accuracy, "seconds": time.perf_counter() - started}
    return out


SVC = "tfidf-1-2+LinearSVC"


def _has_sklearn() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def _report(corpus: Corpus, ours: dict[str, Any], theirs: dict[str, dict[str, float]]
            ) -> dict[str, Any]:
    print(f"{corpus.name}: {len(corpus.train):,} train / {len(corpus.test):,} test texts")
    print(f"  dataferry defaults (training.text)     {ours['accuracy']:.2%}  "
          f"{ours['seconds']:6.1f} s  ({ours['features']:,} features)")
    for model, r in theirs.items():
        print(f"  scikit-learn {model:<25} {r['accuracy']:.2%}  {r['seconds']:6.1f} s")
    row: dict[str, Any] = {"corpus": corpus.name, "train": len(corpus.train),
                           "test": len(corpus.test), "dataferry": ours, "sklearn": theirs,
                           "target_met": None}
    if theirs:
        ref = theirs[SVC]["accuracy"] if corpus.versus_svc else max(
            r["accuracy"] for r in theirs.values())
        row["gap_points"] = 100 * (ours["accuracy"] - ref)
        row["target"] = f">= {-100 * corpus.tolerance:g}"
        row["target_met"] = ours["accuracy"] >= ref - corpus.tolerance - 1e-12
        print(f"  target accuracy >= {ref - corpus.tolerance:.2%} ("
              f"{'TF-IDF + LinearSVC' if corpus.versus_svc else 'the better model'} - "
              f"{100 * corpus.tolerance:g} pt): {'met' if row['target_met'] else 'NOT met'}")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="example: python benchmarks/bench_text.py --quick")
    parser.add_argument("--quick", action="store_true",
                        help="only the 80/20 splits of ../shared/data")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sklearn = _has_sklearn()
    if not sklearn:
        print("scikit-learn is not installed (pip install -e '.[bench]'): dataferry alone, "
              "no baseline beside it")
    results = []
    for corpus in corpora(args.quick):
        ours = run_dataferry(corpus)
        results.append(_report(corpus, ours, run_sklearn(corpus) if sklearn else {}))
    if not results:
        print("no corpus found: SMS Spam is expected at ../shared/data/sms-spam, AG News at "
              "../shared/data/ag-news-half")
        return 1
    from benchmarks.report import emit, figure  # python -m benchmarks reads figures; results kept

    emit("text", [fig for r in results for fig in (
        *([figure(f"{r['corpus']}: accuracy dataferry - scikit-learn, points", r["gap_points"],
                  target=r["target"])] if "gap_points" in r else []),
        figure(f"{r['corpus']}: dataferry from file to accuracy", r["dataferry"]["seconds"],
               unit="s"))],
        args.json, extra={"results": results})
    return 0 if all(r["target_met"] is not False for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
