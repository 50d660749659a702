"""Drop-in: torchvision's datasets and ours on the same pipelines and DataLoader arguments.

Each case runs in its own subprocess; every loader gets the same arguments
(``batch_size``, ``num_workers``, ``shuffle=True``, ``persistent_workers``); each rate is the
images of ``--epochs`` epochs over the time from the first batch's arrival to the last's
(worker start-up, the same fork for every dataset, left out).

- ``mnist``: the real MNIST test set (``../shared/data/mnist-t10k``), laid out as a torchvision
  root in a temp dir (``MNIST/raw/*-ubyte``, decompressed; torchvision also insists on the
  train files, so those names point at the test files: only ``train=False`` is read),
  ``T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])``;
  ``torchvision.datasets.MNIST(root, train=False)`` vs ``datasets.MNIST(root, train=False)``.
- ``cifar``: fabricated CIFAR-10 python batches of random pixels in torchvision's layout
  (``cifar-10-batches-py``; the published md5s swapped for the fabricated files' in both
  classes), the classic ``RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor +
  Normalize``; ``CIFAR10(root, train=True)`` on both sides.
- ``folder``: ``../shared/data/hymenoptera-train`` with ``RandomResizedCrop(224) +
  RandomHorizontalFlip + ToTensor + Normalize``: torchvision's ``ImageFolder``; ours packed
  (``ImageFolderDataset.pack``, the variable store, packed before timing) with the pipeline as
  given (it starts with ``RandomResizedCrop``, so it decodes with the crop decoder); the
  explicit ``decoder=DecodeRandomResizedCrop(224, flip=0.5)`` + ``Normalize`` for the
  crop-decode speed; and ``datasets.ImageFolder`` (uncached, per sample, as torchvision).

Rates through ``datasets.DataLoader`` and through torch's own ``DataLoader`` (which calls the
dataset's ``__getitems__``), each against torchvision's. The largest difference is measured
on deterministic variants of each pipeline (the random ops replaced: ``Pad(4) +
CenterCrop(32)``; ``Resize(256) + CenterCrop(224)``), in output units and in pixel levels
(1/255) before ``Normalize``. The folder's crop-decoded paths (the ones timed) are also checked
like for like: each sample against torchvision's ``resized_crop`` (Pillow) of the same box and
flip on the full decode (``crop path difference``): 0 for the automatic decoder (full
resolution, Pillow's resize); the explicit one (reduced JPEG decode, opt-in) may be 2-3/255 off where a
box is large enough to decode reduced (rare at 224 on ~500x375 photos).

Targets (issue 17): MNIST and CIFAR >= 20x torchvision through ``datasets.DataLoader`` and
>= 5x through torch's; the photo folder >= 1x torchvision with its pipeline as given.

Example:
    python benchmarks/bench_dropin.py --quick
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
CASES = ("mnist", "cifar", "folder")
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TARGETS = {"mnist": (">= 20", ">= 5"), "cifar": (">= 20", ">= 5"), "folder": (">= 1", ">= 1")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python benchmarks/bench_dropin.py --quick")
    parser.add_argument("--quick", action="store_true",
                        help="10,000 fabricated CIFAR images (50,000) and one epoch each")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (2)")
    parser.add_argument("--batch-size", type=int, default=256, help="MNIST/CIFAR batch (256)")
    parser.add_argument("--folder-batch-size", type=int, default=32, help="photo batch (32)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads in the main process (1, as DataLoader gives each worker)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per loader (2)")
    parser.add_argument("--data", type=Path, default=SHARED, help="../shared/data")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # the child's case
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the figures as JSON to PATH (for python -m benchmarks)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs = 1
    if args.case:  # in the child: one case, one JSON line
        torch.set_num_threads(args.threads)
        with tempfile.TemporaryDirectory(prefix="bench-dropin-") as work:
            print(json.dumps(run_case(args, Path(work))))
        return 0
    results = {}
    for case in args.cases:
        argv_child = [sys.executable, __file__, "--case", case, "--workers", str(args.workers),
                      "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
                      "--threads", str(args.threads),
                      "--folder-batch-size", str(args.folder_batch_size), "--data", str(args.data),
                      *(["--quick"] if args.quick else [])]
        done = subprocess.run(argv_child, capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            print(f"error: case {case} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            return 1
        results[case] = json.loads(done.stdout.strip().splitlines()[-1])
        if results[case].get("skipped"):
            print(f"{case}: skipped ({results[case]['skipped']})")
            continue
        show(case, results[case])
    print("\nnote: timings on a shared machine are noisy; rerun on a quiet one for the record.")
    emit(args.json, results)
    return 0


def show(case: str, result: dict[str, Any]) -> None:
    rates = result["rates"]
    print(f"\n{case}: {result['images']:,} images, {result['pipeline']}")
    for name, rate in rates.items():
        print(f"  {name:<46} {rate:>10,.0f} img/s  {rate / rates['torchvision']:6.1f}x")
    print(f"  largest difference (deterministic variant): {result['max_diff']:.3g} "
          f"({result['max_diff_levels']:.2f}/255 before Normalize)")
    for name, levels in result.get("crop_path_levels", {}).items():
        print(f"  crop path difference, {name}: {levels:.2f}/255 before Normalize")


def emit(path: Path | None, results: dict[str, dict[str, Any]]) -> None:
    if path is None:
        return
    sys.path.insert(0, str(REPO))
    from benchmarks.report import emit as report_emit
    from benchmarks.report import figure

    rows = []
    for case, result in results.items():
        if result.get("skipped"):
            continue
        rates, tv = result["rates"], result["rates"]["torchvision"]
        ours_dl, ours_torch = result["headline"]
        target_dl, target_torch = TARGETS[case]
        rows += [figure(f"{case}: ours via datasets.DataLoader / torchvision", rates[ours_dl] / tv,
                        unit="x", target=target_dl),
                 figure(f"{case}: ours via torch DataLoader / torchvision", rates[ours_torch] / tv,
                        unit="x", target=target_torch),
                 figure(f"{case}: largest pixel difference", result["max_diff_levels"],
                        unit="/255", target="<= 1.01")]
        rows += [figure(f"{case}: {name}", rate, unit="img/s") for name, rate in rates.items()]
        rows += [figure(f"{case}: crop path difference, {name}", levels, unit="/255")
                 for name, levels in result.get("crop_path_levels", {}).items()]
    report_emit("bench_dropin", rows, path)


# --- the child: one case -------------------------------------------------------------------

def run_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    return {"mnist": case_mnist, "cifar": case_cifar, "folder": case_folder}[args.case](args, work)


def rate(make_loader: Callable[[], Any], n: int, epochs: int) -> float:
    """Images per second over ``epochs`` epochs, timed from the first batch's arrival.

    Worker start-up (the same for every dataset) is left out: the loaders keep their workers
    (``persistent_workers``) and the clock starts when the first batch arrives.
    """
    loader = make_loader()
    started, seen, total = 0.0, 0, 0
    for _ in range(epochs):
        for _, y in loader:
            total += len(y)
            if not started:
                started = time.perf_counter()
                continue
            seen += len(y)
    if total != n * epochs:
        raise SystemExit(f"error: {epochs} epoch(s) gave {total} images, expected {n * epochs}")
    return seen / (time.perf_counter() - started)


def loaders(ds: Any, args: argparse.Namespace, batch_size: int) -> dict[str, Callable[[], Any]]:
    import datasets

    kwargs = {"batch_size": batch_size, "num_workers": args.workers, "shuffle": True,
              "persistent_workers": args.workers > 0}
    return {"datasets.DataLoader": lambda: datasets.DataLoader(ds, **kwargs),
            "torch DataLoader": lambda: torch.utils.data.DataLoader(ds, **kwargs)}


def largest_difference(ours: Any, theirs: Any, std: tuple[float, ...], count: int) -> tuple[float, float]:
    """Max |ours - theirs| over the first ``count`` samples (ours through ``__getitems__``)."""
    rows = list(range(min(count, len(theirs))))
    batch = ours.__getitems__(rows)
    mine = batch.images if hasattr(batch, "images") else torch.stack([x for x, _ in batch])
    ref = torch.stack([theirs[i][0] for i in rows])
    diff = (mine - ref).abs()
    levels = diff * torch.tensor(std).view(-1, 1, 1) * 255
    return float(diff.max()), float(levels.max())


def case_mnist(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from torchvision import datasets as tv
    from torchvision import transforms as T

    import datasets

    source = args.data / "mnist-t10k"
    if not (source / "t10k-images-idx3-ubyte.gz").is_file():
        return {"skipped": f"{source} not found"}
    raw = work / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for kind in ("images-idx3", "labels-idx1"):
        with gzip.open(source / f"t10k-{kind}-ubyte.gz") as packed:
            (raw / f"t10k-{kind}-ubyte").write_bytes(packed.read())
        (raw / f"train-{kind}-ubyte").symlink_to(raw / f"t10k-{kind}-ubyte")  # torchvision's check
    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    theirs = tv.MNIST(str(work), train=False, transform=tf)
    ours = datasets.MNIST(work, train=False, transform=tf)
    return measure("T.Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])", ours, theirs,
                   ours, theirs, (0.3081,), args, args.batch_size)


def case_cifar(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from torchvision import datasets as tv
    from torchvision import transforms as T

    import datasets

    md5s = fabricate_cifar(work, 10_000 if args.quick else 50_000)

    class TheirCifar(tv.CIFAR10):
        train_list = [[f"data_batch_{i}", md5s[f"data_batch_{i}"]] for i in range(1, 6)]
        test_list = [["test_batch", md5s["test_batch"]]]
        meta = {**tv.CIFAR10.meta, "md5": md5s["batches.meta"]}

    import dataclasses

    class OurCifar(datasets.CIFAR10):
        layout = dataclasses.replace(datasets.CIFAR10.layout, member_md5=md5s)

    normalize = [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)]
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), *normalize])
    fixed = T.Compose([T.Pad(4), T.CenterCrop(32), *normalize])
    return measure("RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize",
                   OurCifar(work, train=True, transform=tf), TheirCifar(str(work), train=True, transform=tf),
                   OurCifar(work, train=True, transform=fixed),
                   TheirCifar(str(work), train=True, transform=fixed), CIFAR_STD, args,
                   args.batch_size)


def fabricate_cifar(root: Path, count: int) -> dict[str, str]:
    """Write random-pixel CIFAR-10 python batches in torchvision's layout; return their md5s."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = count // 5
    batches = {f"data_batch_{i}": per for i in range(1, 6)} | {"test_batch": 1000}
    for name, n in batches.items():
        payload = {"batch_label": name, "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                   "labels": rng.integers(0, 10, n).tolist(),
                   "filenames": [f"img_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(payload, protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}, protocol=2))
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def case_folder(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from torchvision import datasets as tv
    from torchvision import transforms as T

    import datasets

    root = args.data / "hymenoptera-train"
    if not root.is_dir():
        return {"skipped": f"{root} not found"}
    normalize = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), *normalize])
    fixed = T.Compose([T.Resize(256), T.CenterCrop(224), *normalize])
    cache = work / "cache"
    # torchvision's extensions (its ImageFolder leaves out the GIF placeholder): the same files
    same_files = {"cache_dir": cache, "is_valid_file": tv.folder.is_image_file}
    ours = datasets.ImageFolderDataset.pack(root, tf, **same_files)
    result = measure("RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize",
                     ours, tv.ImageFolder(str(root), transform=tf),
                     datasets.ImageFolderDataset.pack(root, fixed, **same_files),
                     tv.ImageFolder(str(root), transform=fixed), IMAGENET_STD, args,
                     args.folder_batch_size)
    crop = datasets.ImageFolderDataset.pack(
        root, datasets.Normalize(IMAGENET_MEAN, IMAGENET_STD), **same_files,
        decoder=datasets.DecodeRandomResizedCrop(224, flip=0.5))
    n, bs = len(ours), args.folder_batch_size
    result["rates"]["explicit crop decoder, datasets.DataLoader"] = rate(
        loaders(crop, args, bs)["datasets.DataLoader"], n, args.epochs)
    result["rates"]["datasets.ImageFolder (uncached), torch DataLoader"] = rate(
        loaders(datasets.ImageFolder(str(root), transform=tf), args, bs)["torch DataLoader"], n,
        args.epochs)
    result["crop_decoder_used"] = repr(getattr(ours, "decoder", None))
    result["crop_path_levels"] = {
        "as given (automatic decoder)": crop_difference(ours, IMAGENET_MEAN, IMAGENET_STD, 64),
        "explicit decoder (draft)": crop_difference(crop, IMAGENET_MEAN, IMAGENET_STD, 64)}
    return result


def crop_difference(ds: Any, mean: tuple[float, ...], std: tuple[float, ...],
                    count: int) -> float:
    """Largest difference, in levels before ``Normalize``, of ``ds``'s crop-decoded samples
    from torchvision's ``resized_crop`` (Pillow) of the same box and flip on the full decode."""
    from PIL import Image
    from torchvision.transforms import functional as F

    from datasets.imagedecode import open_image, oriented_size

    decoder, worst = ds.decoder, 0.0
    for i in range(min(count, len(ds))):
        torch.manual_seed(i)  # the decoder draws its box, then its flip, from the global RNG
        mine = ds[i][0]
        torch.manual_seed(i)
        h, w = oriented_size(open_image(ds.store.blob(i)))
        x1, y1, x2, y2 = decoder.box(h, w)
        flip = bool(decoder.flip) and float(torch.rand(1)) < decoder.flip
        with Image.open(ds.samples[i][0]) as image:  # torchvision's loader: RGB, no EXIF turn
            crop = F.resized_crop(image.convert("RGB"), y1, x1, y2 - y1, x2 - x1,
                                  list(decoder.size))
        ref = F.to_tensor(F.hflip(crop) if flip else crop)
        pixels = mine * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
        worst = max(worst, float((pixels - ref).abs().max()) * 255)
    return worst


def measure(pipeline: str, ours: Any, theirs: Any, ours_fixed: Any, theirs_fixed: Any,
            std: tuple[float, ...], args: argparse.Namespace, batch_size: int) -> dict[str, Any]:
    n = len(theirs)
    if len(ours) != n:
        raise SystemExit(f"error: ours has {len(ours)} images, torchvision's {n}")
    rates = {"torchvision": rate(loaders(theirs, args, batch_size)["torch DataLoader"], n,
                                 args.epochs)}
    for name, make in loaders(ours, args, batch_size).items():
        rates[f"ours via {name}"] = rate(make, n, args.epochs)
    max_diff, levels = largest_difference(ours_fixed, theirs_fixed, std, 512)
    return {"images": n, "pipeline": pipeline, "rates": rates, "max_diff": max_diff,
            "max_diff_levels": levels,
            "headline": ["ours via datasets.DataLoader", "ours via torch DataLoader"]}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
