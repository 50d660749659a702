"""``training fit`` on colour images: photo folders of any size, CIFAR, --model cnn, --augment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cifar_factory import make_cifar_archive
from PIL import Image

import loaders
from training.cli import main


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_hymenoptera_photos_train_a_cnn(shared_data: Path, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    # the brief's command, as a new user runs it (JPEGs of many sizes and one GIF)
    out = tmp_path / "hym"
    with caplog.at_level("INFO", logger="training"):
        assert main(["fit", "--data-dir", str(shared_data / "hymenoptera-train"), "--model", "cnn",
                     "--image-size", "64", "--epochs", "3", "--out", str(out),
                     "--device", "cpu"]) == 0
    metrics = _metrics(out)
    assert metrics["classes"] == ["ants", "bees"] and metrics["model"] == "cnn"
    assert any("data: 172 train, 24 valid, 49 test, 2 classes, 3x64x64" in r.getMessage()
               for r in caplog.records), caplog.text
    history = metrics["history"]  # it learns, from 6 SGD steps of 128 photos
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["train_accuracy"][-1] > history["train_accuracy"][0]
    assert metrics["test_count"] == 49 and metrics["test_accuracy"] > 0.55


def _colour_folder(root: Path, sizes: list[tuple[int, int]]) -> Path:
    """Red and blue photos of mixed sizes (and formats) in the ImageFolder layout."""
    rng = np.random.default_rng(0)
    for name, colour in (("blue", (20, 40, 220)), ("red", (220, 30, 20))):
        (root / name).mkdir(parents=True)
        for i in range(24):
            h, w = sizes[i % len(sizes)]
            pixels = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
            pixels[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = colour
            ext = ("png", "jpg")[i % 2]
            Image.fromarray(pixels, "RGB").save(root / name / f"{i}.{ext}")
    return root


def test_a_colour_folder_of_mixed_sizes_packs_at_64_and_learns(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    folder = _colour_folder(tmp_path / "photos", [(40, 60), (75, 50), (64, 64)])
    out = tmp_path / "run"
    with caplog.at_level("INFO", logger="training"):
        assert main(["fit", "--data-dir", str(folder), "--model", "logistic", "--epochs", "5",
                     "--batch-size", "8", "--optimizer", "adam", "--lr", "0.01", "--out", str(out),
                     "--device", "cpu"]) == 0
    assert "differ in size: packing them at 64x64" in caplog.text
    assert "3x64x64" in caplog.text  # colour kept: three channels
    assert _metrics(out)["test_accuracy"] >= 0.9


def _stripes_folder(root: Path) -> Path:
    """Horizontal or vertical stripes in random colours: shape, not colour, is the class."""
    rng = np.random.default_rng(1)
    for name in ("horizontal", "vertical"):
        (root / name).mkdir(parents=True)
        for i in range(40):
            pixels = np.zeros((32, 32, 3), dtype=np.uint8) + rng.integers(0, 60, 3, dtype=np.uint8)
            lines = np.arange(32) % 8 < 3
            if name == "horizontal":
                pixels[lines] = rng.integers(120, 256, 3)
            else:
                pixels[:, lines] = rng.integers(120, 256, 3)
            Image.fromarray(pixels, "RGB").save(root / name / f"{i}.png")
    return root


def test_augment_and_cnn_on_a_colour_folder(tmp_path: Path) -> None:
    folder = _stripes_folder(tmp_path / "stripes")
    out = tmp_path / "run"
    assert main(["fit", "--data-dir", str(folder), "--model", "cnn", "--augment",
                 "--image-size", "24", "--epochs", "5", "--optimizer", "adam", "--lr", "0.003",
                 "--batch-size", "16", "--out", str(out), "--device", "cpu", "-q"]) == 0
    metrics = _metrics(out)
    assert metrics["config"]["augment"] and metrics["test_accuracy"] >= 0.8


def test_cifar10_by_name_with_cnn_resize_and_augment(tmp_path: Path) -> None:
    fake = make_cifar_archive(loaders.dataset_dir("cifar10"), per_batch=40, test_count=60,
                              learnable=True)
    out = tmp_path / "run"
    assert main(["fit", "--dataset", "cifar10", "--model", "cnn", "--image-size", "16",
                 "--augment", "--optimizer", "adam", "--lr", "0.01", "--epochs", "4",
                 "--batch-size", "32", "--out", str(out), "--device", "cpu", "-q"]) == 0
    metrics = _metrics(out)
    assert metrics["test_count"] == 60 and metrics["classes"][:2] == ["airplane", "automobile"]
    assert fake.path.is_file() and metrics["test_accuracy"] >= 0.5  # 10 colours, 180 images


def test_bad_dataset_name_suggests_the_nearest(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--dataset", "cifar", "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "did you mean 'cifar10' or 'cifar100'?" in err and "Traceback" not in err
