"""Bag-of-n-grams features from packed token ids: vocabulary limits, hashed bigrams, TF-IDF.

:class:`BagOfNgrams` is fitted on the *training* rows of a :class:`~datasets.textpack.PackedText`
and turns any rows into a :class:`TextFeatures` dataset whose batches feed
``EmbeddingBag(flat_input_ids, offsets, per_sample_weights=weights)`` directly. Everything is
vectorized NumPy over the packed arrays, so no text is tokenized again.

- **Unigrams**: training tokens seen at least ``min_freq`` times, the ``max_size`` most
  frequent kept (ties by first appearance), ids ``0..U-1``. Other tokens are dropped, as
  scikit-learn's vectorizers drop words outside their vocabulary.
- **Bigrams** (``ngrams=2``), fastText's hashing trick: the pair of consecutive token ids
  ``(a, b)`` goes to bucket ``hash(a, b) % buckets`` (a fixed multiplicative hash, the same in
  every process). Buckets that no training bigram reached are dropped and the others are
  numbered ``U, U+1, ...`` in bucket order, so ``num_features`` counts only features the
  training rows have: a model's table does not grow with ``buckets`` (only collisions shrink).
- **Weights** (``weighting``): ``"count"`` (raw term counts), ``"tf"`` (counts, rows L2
  normalized), ``"sublinear"`` (``1 + log(count)``, L2 normalized), ``"tfidf"`` and
  ``"sublinear-tfidf"`` (times scikit-learn's smooth idf ``log((1 + n) / (1 + df)) + 1``,
  L2 normalized: ``TfidfVectorizer``'s defaults). Each occurrence of a term carries
  ``w(term) / count`` so that the bag's sum is the document's weight vector.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.textpack import PackedText

log = logging.getLogger(__name__)

WEIGHTINGS = ("count", "tf", "sublinear", "tfidf", "sublinear-tfidf")
_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads (a, b) pairs over buckets


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of :class:`BagOfNgrams` (see the module docstring).

    Example:
        >>> FeatureConfig(ngrams=3)
        Traceback (most recent call last):
        ...
        ValueError: ngrams should be 1 or 2, but got ngrams=3
    """

    ngrams: int = 2
    buckets: int = 2**20
    min_freq: int = 1
    max_size: int | None = None
    weighting: str = "sublinear-tfidf"

    def __post_init__(self) -> None:
        if self.ngrams not in (1, 2):
            raise ValueError(f"ngrams should be 1 or 2, but got ngrams={self.ngrams!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting should be one of {WEIGHTINGS}, but got "
                             f"weighting={self.weighting!r}")
        for name in ("buckets", "min_freq"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} should be a positive int, but got "
                                 f"{name}={getattr(self, name)!r}")
        if self.max_size is not None and self.max_size < 1:
            raise ValueError(f"max_size should be a positive int or None, but got "
                             f"max_size={self.max_size!r}")


def _rows(pack: PackedText, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the concatenated token ids of ``rows`` and their offsets (N + 1)."""
    offsets = np.asarray(pack.offsets)
    starts, ends = offsets[rows], offsets[rows + 1]
    lengths = ends - starts
    out_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    # positions of every token: start of its row + its rank inside the row
    within = np.arange(out_offsets[-1]) - np.repeat(out_offsets[:-1], lengths)
    ids = np.asarray(pack.ids)[np.repeat(starts, lengths) + within].astype(np.int64)
    return ids, out_offsets


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique`` by one sort (NumPy 2's hash-based unique is ~10x slower on int64 keys)."""
    keys = np.sort(keys)
    if len(keys) == 0:
        return keys
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])]


class BagOfNgrams:
    """Unigram vocabulary, hashed bigrams and term weights, fitted on training rows.

    Args:
        config: the settings.

    Example:
        >>> import tempfile
        >>> from datasets.textpack import write_packed_text
        >>> pack = write_packed_text(tempfile.mkdtemp(), ["a b a", "b c"], [0, 1], classes=[0, 1])
        >>> bag = BagOfNgrams(FeatureConfig(ngrams=1, weighting="count")).fit(pack, [0, 1])
        >>> bag.num_features, bag.transform(pack, [0])[0]["input_ids"].tolist()
        (3, [0, 1, 0])
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self.remap = np.zeros(0, dtype=np.int64)
        self.idf = np.zeros(0, dtype=np.float32)
        self.unigrams = 0
        self.column = np.zeros(0, dtype=np.int64)  # raw feature id -> kept column, -1 dropped
        self._tokens: list[str] = []
        self._translations: dict[str, np.ndarray] = {}

    @property
    def num_features(self) -> int:
        """Unigrams kept plus the bigram buckets training reached (the ``EmbeddingBag``'s size)."""
        return len(self.idf)

    @property
    def _raw_features(self) -> int:
        return self.unigrams + (self.config.buckets if self.config.ngrams == 2 else 0)

    def fit(self, pack: PackedText, rows: Any) -> BagOfNgrams:
        """Learn the vocabulary and the document frequencies from ``rows`` of ``pack``."""
        rows = np.asarray(rows, dtype=np.int64)
        self._tokens = list(pack.tokens)
        self._translations = {os.fspath(pack.path): np.arange(len(pack.tokens), dtype=np.int64)}
        ids, _ = _rows(pack, rows)
        counts = np.bincount(ids, minlength=len(pack.tokens))
        keep = np.flatnonzero(counts >= self.config.min_freq)
        keep = keep[np.argsort(-counts[keep], kind="stable")][: self.config.max_size]
        self.remap = np.full(len(pack.tokens), -1, dtype=np.int64)
        self.remap[keep] = np.arange(len(keep))
        self.unigrams = len(keep)
        raw = self._raw_features
        self.column = np.arange(raw, dtype=np.int64)  # every raw id, while counting
        feats, offsets = self._features(pack, rows)
        doc = np.repeat(np.arange(len(rows)), np.diff(offsets))
        unique = _sorted_unique(doc * raw + feats)
        df = np.bincount(unique % raw, minlength=raw)
        seen = df > 0  # a bucket no training bigram reached is dropped at transform
        self.column = np.where(seen, np.cumsum(seen) - 1, -1).astype(np.int64)
        self.idf = (np.log((1 + len(rows)) / (1 + df[seen])) + 1).astype(np.float32)
        log.info("features: %d unigrams (of %d tokens)%s, %s weights", self.unigrams,
                 len(pack.tokens), f" + {self.num_features - self.unigrams} bigram buckets "
                 f"(of {self.config.buckets})" if self.config.ngrams == 2 else "",
                 self.config.weighting)
        return self

    def _translation(self, pack: PackedText) -> np.ndarray:
        """Map ``pack``'s token ids to those of the pack fitted on (-1: token never seen)."""
        key = os.fspath(pack.path)
        if key not in self._translations:
            index = {t: i for i, t in enumerate(self._tokens)}
            self._translations[key] = np.array([index.get(t, -1) for t in pack.tokens],
                                               dtype=np.int64)
        return self._translations[key]

    def _features(self, pack: PackedText, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids, offsets = _rows(pack, rows)
        ids = self._translation(pack)[ids]  # another file's dictionary numbers tokens otherwise
        known = ids >= 0
        uni = np.where(known, self.remap[np.maximum(ids, 0)], -1) if len(ids) else ids
        parts, lengths = [uni], [np.diff(offsets)]
        if self.config.ngrams == 2:
            same_doc = known.copy()  # a pair with an unseen token was never seen in training
            same_doc[offsets[1:-1] - 1] = False  # no pair across two texts
            same_doc[:-1] &= known[1:]
            first = np.flatnonzero(same_doc[:-1]) if len(ids) else np.zeros(0, np.int64)
            a, b = ids[first].astype(np.uint64), ids[first + 1].astype(np.uint64)
            h = ((a * np.uint64(1_000_003) + b) * _MULT) >> np.uint64(20)
            parts.append(self.unigrams + (h % np.uint64(self.config.buckets)).astype(np.int64))
            doc_of_pair = np.searchsorted(offsets, first, side="right") - 1
            lengths.append(np.bincount(doc_of_pair, minlength=len(rows)))
        doc = np.concatenate([np.repeat(np.arange(len(rows)), n) for n in lengths])
        feats = np.concatenate(parts)
        feats = np.where(feats >= 0, self.column[np.maximum(feats, 0)], -1) if len(feats) else feats
        keep = feats >= 0
        order = np.argsort(doc[keep], kind="stable")
        doc, feats = doc[keep][order], feats[keep][order]
        out_offsets = np.searchsorted(doc, np.arange(len(rows) + 1)).astype(np.int64)
        return feats, out_offsets

    def transform(self, pack: PackedText, rows: Any) -> TextFeatures:
        """Return the features of ``rows`` of ``pack`` as a :class:`TextFeatures` dataset."""
        rows = np.asarray(rows, dtype=np.int64)
        feats, offsets = self._features(pack, rows)
        weights = self._weights(feats, offsets)
        labels = np.asarray(pack.labels)[rows]
        return TextFeatures(feats, offsets, weights, labels)

    def _weights(self, feats: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        scheme = self.config.weighting
        if scheme == "count" or not len(feats):
            return np.ones(len(feats), dtype=np.float32)
        n_docs = len(offsets) - 1
        doc = np.repeat(np.arange(n_docs), np.diff(offsets))
        unique, inverse, counts = np.unique(doc * self.num_features + feats,
                                            return_inverse=True, return_counts=True)
        tf = counts.astype(np.float64)
        if scheme.startswith("sublinear"):
            tf = 1.0 + np.log(tf)
        value = tf * (self.idf[unique % self.num_features] if scheme.endswith("tfidf") else 1.0)
        norm = np.sqrt(np.bincount(unique // self.num_features, weights=value**2, minlength=n_docs))
        per_unique = value / counts / np.maximum(norm[unique // self.num_features], 1e-12)
        return per_unique[inverse.reshape(-1)].astype(np.float32)


class TextFeatures(Dataset[dict[str, Any]]):
    """Feature ids, offsets and weights of N texts; batches come whole from ``__getitems__``.

    An item is ``{"input_ids", "weights", "label"}``; a batch (``__getitems__``, then
    :func:`collate_features` as the ``collate_fn``) is ``{"flat_input_ids", "offsets",
    "per_sample_weights", "labels"}``, what :class:`training.models.BagOfWords` takes.
    """

    def __init__(self, feats: np.ndarray, offsets: np.ndarray, weights: np.ndarray,
                 labels: np.ndarray) -> None:
        self.feats = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.int64))
        self.offsets = torch.from_numpy(np.ascontiguousarray(offsets, dtype=np.int64))
        self.weights = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))
        self.targets = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.targets)

    def lengths(self) -> list[int]:
        """Feature count of every text."""
        return (self.offsets[1:] - self.offsets[:-1]).tolist()

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = range(len(self))[index]
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return {"input_ids": self.feats[start:end], "weights": self.weights[start:end],
                "label": int(self.targets[index])}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(indices, dtype=torch.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)[:-1]])
        within = torch.arange(int(lengths.sum())) - torch.repeat_interleave(offsets, lengths)
        pos = torch.repeat_interleave(starts, lengths) + within
        return {"flat_input_ids": self.feats[pos], "input_ids": self.feats[pos],
                "offsets": offsets, "per_sample_weights": self.weights[pos],
                "labels": self.targets[rows]}


def collate_features(batch: Any) -> dict[str, torch.Tensor]:
    """The ``collate_fn`` for :class:`TextFeatures`: the batch from ``__getitems__`` is whole."""
    return cast(dict[str, torch.Tensor], batch)


__all__ = ["BagOfNgrams", "FeatureConfig", "TextFeatures", "WEIGHTINGS", "collate_features"]
