"""Benchmark text classification: dataferry's bag of n-grams against scikit-learn, same split.

For each corpus present — the SMS Spam Collection from ``../shared/data`` (stratified 80/20,
seed 0), and AG News (120,000 / 7,600) and IMDB (25,000 / 25,000) when they are in the
dataferry cache (``python -m loaders.download ag-news`` / ``imdb``), on their own test sets —
it runs, on the same rows:

- dataferry: tokenize + pack (:func:`datasets.textpack.write_packed_text`, texts/s), features
  (unigrams + hashed bigrams, sublinear TF-IDF), ``BagOfWords`` (sparse EmbeddingBag with
  ``per_sample_weights``, Adagrad), 5 epochs;
- scikit-learn: ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` + ``LinearSVC``,
  and ``CountVectorizer`` + ``LogisticRegression(max_iter=1000)``.

It prints accuracy and wall time side by side, and checks the target: dataferry's accuracy
>= the better scikit-learn model - 1 point. ``--quick`` trains 3 epochs and keeps at most
20,000 training texts per corpus.

Usage: python benchmarks/bench_text.py [--quick] [--json PATH] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datasets.text import TextClassificationDataset  # noqa: E402
from datasets.textfeatures import BagOfNgrams, FeatureConfig, collate_features  # noqa: E402
from datasets.textpack import write_packed_text  # noqa: E402
from datasets.textsplits import stratified_split  # noqa: E402
from training.models import BagOfWords  # noqa: E402

SMS = REPO.parent / "shared" / "data" / "sms-spam" / "SMSSpamCollection"
Corpus = tuple[str, list[str], np.ndarray, np.ndarray, np.ndarray]


def corpora(quick: bool) -> list[Corpus]:
    """Return ``(name, texts, labels, train rows, test rows)`` for each corpus present."""
    out: list[Corpus] = []
    if SMS.is_file():
        ds = TextClassificationDataset.from_file(SMS)
        y = ds.targets.numpy()
        parts = stratified_split(y, test=0.2, seed=0)
        out.append(("sms-spam (80/20)", ds.texts, y, parts["train"], parts["test"]))
    for name in ("ag-news", "imdb"):
        found = _cached(name)
        if found is not None:
            out.append(found)
    if quick:
        rng = np.random.default_rng(0)
        out = [(n, t, y, np.sort(rng.permutation(tr)[:20_000]), te) for n, t, y, tr, te in out]
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
    return (f"{name} (official split)", [*train[0], *test[0]], y, np.arange(n),
            np.arange(n, len(y)))


def run_dataferry(texts: list[str], y: np.ndarray, train: np.ndarray, test: np.ndarray,
                  epochs: int) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        pack = write_packed_text(folder, texts, y.tolist(), classes=sorted(set(y.tolist())))
        pack_s = time.perf_counter() - started
        bag = BagOfNgrams(FeatureConfig()).fit(pack, train)
        train_x, test_x = bag.transform(pack, train), bag.transform(pack, test)
    torch.manual_seed(0)
    model = BagOfWords(bag.num_features, int(y.max()) + 1, 16, padding_idx=None, sparse=True)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.2)
    loader = torch.utils.data.DataLoader(train_x, batch_size=64, shuffle=True,
                                         collate_fn=collate_features,
                                         generator=torch.Generator().manual_seed(0))
    for _ in range(epochs):
        for batch in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(batch), batch["labels"]).backward()
            optimizer.step()
    with torch.no_grad():
        batch = test_x.__getitems__(list(range(len(test_x))))
        accuracy = float((model(batch).argmax(1) == batch["labels"]).float().mean())
    return {"accuracy": accuracy, "seconds": time.perf_counter() - started, "pack_seconds": pack_s,
            "texts_per_s": len(texts) / pack_s}


def run_sklearn(texts: list[str], y: np.ndarray, train: np.ndarray, test: np.ndarray
                ) -> dict[str, dict[str, float]]:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    tr, te = [texts[i] for i in train], [texts[i] for i in test]
    out = {}
    for name, vec, clf in (
        ("tfidf-1-2+LinearSVC", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC()),
        ("counts+LogisticRegression", CountVectorizer(), LogisticRegression(max_iter=1000)),
    ):
        started = time.perf_counter()
        clf.fit(vec.fit_transform(tr), y[train])
        accuracy = float(clf.score(vec.transform(te), y[test]))
        out[name] = {"accuracy": accuracy, "seconds": time.perf_counter() - started}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="example: python benchmarks/bench_text.py --quick")
    parser.add_argument("--quick", action="store_true", help="3 epochs, at most 20,000 train texts")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    results = []
    for name, texts, y, train, test in corpora(args.quick):
        ours = run_dataferry(texts, y, train, test, epochs=3 if args.quick else 5)
        theirs = run_sklearn(texts, y, train, test)
        best = max(r["accuracy"] for r in theirs.values())
        ok = ours["accuracy"] >= best - 0.01
        print(f"{name}: {len(train):,} train / {len(test):,} test texts")
        print(f"  dataferry bag of n-grams     {ours['accuracy']:.2%}  {ours['seconds']:6.1f} s  "
              f"(tokenize + pack {ours['texts_per_s']:,.0f} texts/s)")
        for model, r in theirs.items():
            print(f"  scikit-learn {model:<25} {r['accuracy']:.2%}  {r['seconds']:6.1f} s")
        print(f"  target accuracy >= {best - 0.01:.2%}: {'met' if ok else 'NOT met'}")
        results.append({"corpus": name, "train": len(train), "test": len(test),
                        "dataferry": ours, "sklearn": theirs, "target_met": ok})
    if not results:
        print("no corpus found: SMS Spam is expected at ../shared/data/sms-spam")
        return 1
    from benchmarks.report import emit, figure  # python -m benchmarks reads figures; results kept

    emit("text", [fig for r in results for fig in (
        figure(f"{r['corpus']}: accuracy dataferry - best scikit-learn, points",
               100 * (r["dataferry"]["accuracy"] - max(m["accuracy"] for m in r["sklearn"].values())),
               target=">= -1"),
        figure(f"{r['corpus']}: tokenize + pack", r["dataferry"]["texts_per_s"], unit="texts/s"))],
        args.json, extra={"results": results})
    return 0 if all(r["target_met"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
