"""Factories for training tests: tiny IDX folders and text files built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from idx_factory import write_idx


def separable_images(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` 28x28 images whose class is a bright horizontal band at a class-given row."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28))
    for i, label in enumerate(labels):
        row = 2 + label * (24 // classes)
        images[i, row:row + 2, :] = 255
    return images.astype(np.uint8), labels


@pytest.fixture
def idx_folder(tmp_path: Path) -> Path:
    """A folder with train-* and t10k-* IDX pairs of 3 easily separable classes."""
    folder = tmp_path / "idx"
    write_idx(folder, "train", *separable_images(300, 3, seed=0))
    write_idx(folder, "t10k", *separable_images(90, 3, seed=1))
    return folder


@pytest.fixture
def noise_idx_folder(tmp_path: Path) -> Path:
    """IDX pairs of pure noise with random labels (3 classes): the valid loss soon goes up."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "noise"
    write_idx(folder, "train", rng.integers(0, 256, (200, 28, 28)), rng.integers(0, 3, 200))
    write_idx(folder, "t10k", rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 3, 30))
    return folder


@pytest.fixture
def spam_file(tmp_path: Path) -> Path:
    """A small ``label<TAB>text`` file shaped like the SMS Spam Collection."""
    rng = np.random.default_rng(0)
    spam_words = ["free", "win", "prize", "cash", "claim", "urgent", "call", "now"]
    ham_words = ["see", "you", "later", "lunch", "home", "ok", "thanks", "tomorrow"]
    lines = []
    for i in range(200):
        label = "spam" if i % 4 == 0 else "ham"
        words = spam_words if label == "spam" else ham_words
        lines.append(f"{label}\t{' '.join(rng.choice(words, size=rng.integers(3, 9)))}")
    path = tmp_path / "SMSSpamCollection"
    path.write_text("\n".join(lines) + "\n")
    return path
