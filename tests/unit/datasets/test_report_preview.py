"""python -m datasets.report / datasets.preview, and save_grid."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from idx_factory import write_idx
from image_factory import make_image_tree
from PIL import Image

import loaders
from datasets import preview, report
from datasets.preview import save_grid


def _tree(tmp_path: Path) -> Path:
    root = make_image_tree(tmp_path / "tree", classes=("A", "B"), per_class=4,
                           corrupt=[("A", "empty")])
    shutil.copy(root / "A" / "00001.png", root / "B" / "copy-of-a1.png")  # a planted duplicate
    return root


def test_report_folder_counts_skipped_and_duplicates(tmp_path, capsys) -> None:
    assert report.main([str(_tree(tmp_path)), "-q"]) == 0
    out = capsys.readouterr().out
    assert "[all] 9 items, 2 classes" in out
    assert "  A          4" in out and "  B          5" in out
    assert "skipped files: 1" in out and "bad-0-empty.png" in out
    lines = [line for line in out.splitlines() if line.strip().startswith("all ")]
    assert lines[-1].split()[1:] == ["9", "8", "1"]


def test_report_idx_folder_train_and_test_overlap(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (30, 28, 28))
    test = np.concatenate([rng.integers(0, 256, (8, 28, 28)), train[:2]])
    write_idx(tmp_path / "idx", "train", train, np.arange(30) % 10)
    write_idx(tmp_path / "idx", "t10k", test, np.arange(10))
    assert report.main([str(tmp_path / "idx")]) == 0
    out = capsys.readouterr().out
    assert "[train] 30 items" in out and "[test] 10 items" in out
    assert "train ∩ test: 2 shared distinct items" in out
    assert report.main([str(tmp_path / "idx"), "--split", "test"]) == 0
    assert "[train]" not in capsys.readouterr().out


def test_report_registry_text_dataset(capsys) -> None:
    folder = loaders.dataset_dir("sms-spam")
    folder.mkdir(parents=True)
    (folder / "SMSSpamCollection").write_text("ham\thi there\nspam\tWIN now\nham\thi there\n")
    assert report.main(["sms-spam"]) == 0
    out = capsys.readouterr().out
    assert "ham" in out and "spam" in out
    assert [ln.split()[1:] for ln in out.splitlines() if ln.strip().startswith("all ")][-1] == [
        "3", "2", "1"]
    assert "tokens per text: min 2, median 2, mean 2.0, max 2" in out
    assert "    0-7               3  " + "#" * 30 in out.splitlines()


def test_report_ag_news_names_classes_and_histograms_tokens(tmp_path, capsys) -> None:
    from tests.unit.datasets.text_factory import AG_CLASSES, write_ag_news_csv

    folder = loaders.dataset_dir("ag-news")  # a cached copy of the published files
    folder.mkdir(parents=True)
    write_ag_news_csv(folder / "train.csv", 6, header=False, seed=1)
    write_ag_news_csv(folder / "test.csv", 2, header=False, seed=2)
    assert report.main(["ag-news"]) == 0
    out = capsys.readouterr().out
    train = out[out.index("[train]"):out.index("[test]")]
    assert [ln.split()[0] for ln in train.splitlines()[1:5]] == [c.split()[0] for c in AG_CLASSES]
    assert all(ln.split()[-1] == "6" for ln in train.splitlines()[1:5])
    assert out.count("tokens per text: min ") == 2
    histogram = [ln.split() for ln in train.splitlines() if ln.startswith("    ") and "-" in ln]
    assert histogram and sum(int(row[1].replace(",", "")) for row in histogram) == 24
    path = write_ag_news_csv(tmp_path / "ag.csv", 3, header=True)  # the same by path
    assert report.main([str(path)]) == 0
    by_path = capsys.readouterr().out
    assert "[all] 12 items, 4 classes" in by_path and "tokens per text: min " in by_path


def test_report_errors_exit_1_and_usage_exit_2(capsys) -> None:
    assert report.main(["sms-spam"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: expected sms-spam in ") and err.count("\n") == 1
    assert report.main(["not-a-dataset"]) == 2  # a typo is a usage error, as in loaders.download
    assert "no dataset called 'not-a-dataset'" in capsys.readouterr().err
    assert report.main(["data/missing.csv"]) == 1  # looks like a path: not a registry lookup
    assert capsys.readouterr().err.startswith(
        f"error: expected a file or folder at {Path('data/missing.csv')} but nothing is there")
    assert report.main(["notmnist"]) == 1  # not in the fresh cache home
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(SystemExit) as exc:
        report.main([])
    assert exc.value.code == 2


def test_unknown_name_exits_2_with_the_same_suggestion_as_the_download_cli(tmp_path, capsys) -> None:
    from loaders import download

    assert download.main(["notmist"]) == 2
    expected = capsys.readouterr().err
    assert "did you mean 'notmnist'" in expected
    assert report.main(["notmist"]) == 2
    assert capsys.readouterr().err == expected
    assert preview.main(["notmist", "--out", str(tmp_path / "g.png")]) == 2
    assert capsys.readouterr().err == expected and not (tmp_path / "g.png").exists()


def test_report_on_real_notmnist_idx(shared_data, capsys) -> None:
    assert report.main([str(shared_data / "notmnist-idx")]) == 0
    out = capsys.readouterr().out
    assert "10,000" in out and "9,804" in out and "196" in out


class Tiny(torch.utils.data.Dataset):
    classes = ["alpha", "beta", "gamma"]

    def __len__(self) -> int:
        return 20

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        g = torch.Generator().manual_seed(i)
        return (torch.rand(1, 28, 28, generator=g) - 0.5) * 3, i % 3


def test_save_grid_layout_labels_and_determinism(tmp_path) -> None:
    path = save_grid(Tiny(), tmp_path / "sub" / "grid.png", count=6, nrow=3, seed=1)
    image = Image.open(path)
    cell = 28 * 3 + 2
    assert image.size == (3 * cell + 2, 2 * cell + 2) and image.mode == "RGB"
    pixels = np.asarray(image)
    yellow = (pixels[..., 0] > 200) & (pixels[..., 1] > 180) & (pixels[..., 2] < 60)
    assert yellow.sum() > 50  # label text was drawn
    again = save_grid(Tiny(), tmp_path / "again.png", count=6, nrow=3, seed=1)
    assert np.array_equal(np.asarray(Image.open(again)), pixels)
    other = save_grid(Tiny(), tmp_path / "other.png", count=6, nrow=3, seed=2)
    assert not np.array_equal(np.asarray(Image.open(other)), pixels)


def test_save_grid_rejects_non_images(tmp_path) -> None:
    from datasets.errors import DataFormatError

    with pytest.raises(DataFormatError, match="a dict with keys \\['label', 'text'\\]"):
        save_grid([{"text": "hi", "label": 0}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="count should be a positive int"):
        save_grid(Tiny(), tmp_path / "x.png", count=0)


def test_preview_cli_on_folder(tmp_path, capsys) -> None:
    out = tmp_path / "grid.png"
    assert preview.main([str(_tree(tmp_path)), "--out", str(out), "--count", "4"]) == 0
    assert "saved 4 samples" in capsys.readouterr().out
    assert Image.open(out).size == (4 * (28 * 3 + 2) + 2, 28 * 3 + 4)
    assert preview.main(["sms-spam", "--out", str(out)]) == 1
    with pytest.raises(SystemExit) as exc:
        preview.main([str(tmp_path), "--count", "3"])  # --out missing
    assert exc.value.code == 2


@contextlib.contextmanager
def _stdout_reader_gone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``sys.stdout`` on a pipe whose reader is gone, as under ``… | head -1``."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    stream = open(write_fd, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        yield
    finally:
        monkeypatch.undo()
        with contextlib.suppress(OSError):  # without the fix, the buffer still holds the output
            stream.close()


def test_report_and_preview_into_a_closed_pipe_exit_141_quietly(tmp_path, capsys, monkeypatch) -> None:
    tree = _tree(tmp_path)
    with _stdout_reader_gone(monkeypatch):
        assert report.main([str(tree), "-q"]) == 141
    with _stdout_reader_gone(monkeypatch):
        assert preview.main([str(tree), "--out", str(tmp_path / "g.png"), "-q"]) == 141
    assert (tmp_path / "g.png").is_file() and capsys.readouterr().err == ""


def test_report_registry_notmnist_idx_with_only_test_files(shared_data, capsys) -> None:
    folder = loaders.dataset_dir("notmnist-idx")  # in this test's private cache home
    folder.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared_data / "notmnist-idx" / name, folder / name)
    assert report.main(["notmnist-idx"]) == 0
    out = capsys.readouterr().out
    assert "[test] 10,000 items, 10 classes" in out and "  J      1,000" in out
    assert "9,804" in out and "[train]" not in out


@pytest.mark.integration  # real `python -m` runs in subprocesses
def test_clis_as_subprocesses(tmp_path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    tree = _tree(tmp_path)
    run = subprocess.run([sys.executable, "-m", "datasets.report", str(tree)], cwd=repo,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "[all] 9 items, 2 classes" in run.stdout
    run = subprocess.run([sys.executable, "-m", "datasets.preview", "no-such-dataset", "--out",
                          str(tmp_path / "g.png")], cwd=repo, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: no dataset called")
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_bad_split_is_a_usage_error_without_traceback(tmp_path, capsys) -> None:
    from loaders.letters import generate

    generate(loaders.dataset_dir("letters") / "letters.tar.gz", count=40, seed=0)
    assert report.main(["letters", "--split", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: split should be one of ['train', 'val', 'test', 'all'] for letters, "
                   "but got split='bogus'\n")
    assert preview.main(["letters", "--split", "bogus", "--out", str(tmp_path / "g.png")]) == 2
    assert capsys.readouterr().err.startswith("error: split should be one of")
    assert report.main(["letters", "--split", "all", "-q"]) == 0
    assert "[all] 40 items" in capsys.readouterr().out
    # a single folder has only "all": asking for another split says so instead of ignoring it
    assert report.main([str(_tree(tmp_path)), "--split", "train"]) == 1
    assert "expected split 'train' of" in capsys.readouterr().err


def test_archive_path_is_packed_not_read_as_text(tmp_path, capsys) -> None:
    from loaders.letters import generate

    archive = generate(tmp_path / "letters.tar.gz", count=30, seed=0)
    assert report.main([str(archive), "-q"]) == 0
    out = capsys.readouterr().out
    assert "[all] 30 items, 10 classes" in out and "  A          3" in out
    assert preview.main([str(archive), "--out", str(tmp_path / "g.png"), "--count", "5"]) == 0
    assert "saved 5 samples" in capsys.readouterr().out


def test_preview_unwritable_out_says_so(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert preview.main([str(_tree(tmp_path)), "--out", str(blocker / "g.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the grid to {blocker / 'g.png'} (")
    assert "pass --out a .png path in a writable folder" in err and err.count("\n") == 1


def test_report_notmnist_by_name_on_a_fabricated_archive(capsys) -> None:
    """`python -m datasets.report notmnist` on an archive shaped like notMNIST_small."""
    from image_factory import make_image_archive

    bad_a = "RGVtb2NyYXRpY2FCb2xkT2xkc3R5bGUgQm9sZC50dGY=.png"
    bad_f = "Q3Jvc3NvdmVyIEJvbGRPYmxpcXVlLnR0Zg==.png"
    folder = loaders.dataset_dir("notmnist")
    folder.mkdir(parents=True)
    make_image_archive(folder / "notMNIST_small.tar.gz", top="notMNIST_small",
                       classes=tuple("ABCDEFGHIJ"), per_class=10,
                       corrupt=[("A", "empty", bad_a), ("F", "not-png", bad_f)])
    assert report.main(["notmnist", "-q"]) == 0
    out = capsys.readouterr().out
    assert "[train] 80 items, 10 classes" in out and "[val] 10 items" in out
    assert "[test] 10 items" in out and "  J          8" in out
    assert out.count(f"notMNIST_small/A/{bad_a}: empty file (0 bytes)") == 1  # listed once
    assert out.count(f"notMNIST_small/F/{bad_f}: not an image") == 1
    assert out.count("skipped files: 2 (of the source, listed under [train])") == 2
    assert "train ∩ test" in out


def test_report_idx_images_without_labels_names_the_missing_file(tmp_path, capsys) -> None:
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "idx", "t10k", rng.integers(0, 256, (4, 28, 28)), np.arange(4))
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert report.main([str(tmp_path / "idx")]) == 1
    assert capsys.readouterr().err == (
        "error: expected a labels file t10k-labels-idx1-ubyte.gz beside t10k-images-idx3-ubyte.gz "
        f"in {tmp_path / 'idx'} but found none; put the matching labels file there\n")


def _colour_tree(root: Path) -> Path:
    """Red and green RGB images of three sizes, a palette GIF and a text file named .jpg."""
    for name, colour in (("green", (0, 200, 0)), ("red", (220, 0, 0))):
        (root / name).mkdir(parents=True)
        for i, size in enumerate([(30, 40), (40, 30), (30, 40)]):
            Image.new("RGB", size, colour).save(root / name / f"{i}.png")
    Image.new("P", (20, 20), 3).save(root / "red" / "placeholder.gif")
    (root / "green" / "broken.jpg").write_text("not an image")
    return root


def test_report_on_a_colour_folder_of_mixed_sizes(tmp_path, capsys) -> None:
    assert report.main([str(_colour_tree(tmp_path / "photos")), "-q"]) == 0
    out = capsys.readouterr().out
    assert "[all] 7 items, 2 classes" in out
    assert "images: RGB, 3 sizes (H x W); most common 40x30 (4), 30x40 (2), 20x20 (1)" in out
    assert "shorter side in px: 0-63: 7" in out
    assert "mean " in out and "(per channel, pixels / 255)" in out
    assert "kept with a note: 1" in out and "red/placeholder.gif: " in out
    assert "skipped files: 1" in out and "green/broken.jpg: " in out


def test_preview_draws_stored_colour_and_fits_mixed_sizes(tmp_path, capsys) -> None:
    out = tmp_path / "grid.png"
    tree = _colour_tree(tmp_path / "photos")
    assert preview.main([str(tree), "--out", str(out), "--count", "7", "--nrow", "7"]) == 0
    grid = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert grid.shape == (96 + 4, 7 * (96 + 2) + 2, 3)  # mixed sizes: 96-px cells
    centres = [grid[50, 2 + k * 98 + 48] for k in range(7)]
    reds = sum(1 for r, g, b in centres if r > 200 and g < 30 and b < 30)
    greens = sum(1 for r, g, b in centres if g > 180 and r < 30 and b < 30)
    assert (reds, greens) == (3, 3)  # drawn as stored: pure colours, not stretched per image


def test_report_and_preview_cifar10_by_name(tmp_path, capsys) -> None:
    from cifar_factory import make_cifar_archive

    make_cifar_archive(loaders.dataset_dir("cifar10"), per_batch=3, test_count=4)
    assert report.main(["cifar10", "-q"]) == 0
    out = capsys.readouterr().out
    assert "[train] 15 items, 10 classes" in out and "[test] 4 items" in out
    assert "  airplane " in out and "images: RGB, 32x32 (H x W) every one" in out
    assert preview.main(["cifar10", "--split", "test", "--out", str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "c.png").size == (4 * (96 + 2) + 2, 96 + 4)


@pytest.mark.parametrize("name, content", [("x.jpg", b"not really a jpeg\n"),
                                           ("photo.dat", b"\x89PNG\r\n\x1a\n" + bytes(40))])
def test_report_on_one_image_file_says_it_expects_a_folder_or_archive(
        tmp_path, capsys, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert report.main([str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path} is an image file{' (PNG)' if name == 'photo.dat' else ''}, "
                   "expected a folder of CLASS/ folders of images or an archive of one; point "
                   "at the folder that holds the class folders instead"]
