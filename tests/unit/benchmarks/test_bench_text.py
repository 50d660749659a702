"""benchmarks/bench_text.py: the text recipe's defaults beside scikit-learn on the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_text
from datasets.text import TextClassificationDataset
from datasets.textsplits import stratified_split


def _corpus(path: Path, test: float) -> bench_text.Corpus:
    ds = TextClassificationDataset.from_file(path)
    y = ds.targets.numpy()
    parts = stratified_split(y, test=test, seed=0)
    return bench_text.Corpus("tiny", ds.texts, y, parts["train"], parts["test"], {"data": path},
                             0.005, True, test_fraction=test)


@pytest.mark.parametrize("test", [0.2, 0.5])
def test_bench_text_runs_the_recipe_on_the_benchmarks_rows_beside_scikit_learn(
        tmp_path: Path, test: float, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    words = {"a": ["free", "win", "prize", "cash"], "b": ["see", "you", "lunch", "home"]}
    path = tmp_path / "tiny.tsv"
    path.write_text("".join(f"{c}\t{' '.join(rng.choice(words[c], size=5))}\n"
                            for _ in range(60) for c in "ab"))
    corpus = _corpus(path, test)
    ours = bench_text.run_dataferry(corpus)  # refuses a split other than the benchmark's
    row = bench_text._report(corpus, ours, bench_text.run_sklearn(corpus))
    assert row["test"] == len(corpus.test) == round(120 * test)
    assert set(row["sklearn"]) == {bench_text.SVC, "counts+LogisticRegression"}
    assert row["target"] == ">= -0.5" and row["target_met"] is True
    out = capsys.readouterr().out
    assert "dataferry defaults (training.text)" in out and "TF-IDF + LinearSVC - 0.5 pt" in out
