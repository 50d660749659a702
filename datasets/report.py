"""``python -m datasets.report NAME``: counts per class, skipped files and duplicate overlap.

NAME is a registry name (``letters``, ``notmnist``, ``notmnist-large``, ``notmnist-idx``,
``mnist``, ``fashion-mnist``, ``kmnist``, ``emnist``, ``sms-spam``) or a path: a ``CLASS/*.png``
folder, a folder of IDX ``*-images-idx3-ubyte.gz`` files, or a CSV/TSV/JSONL text file.
:func:`open_splits` (also used by :mod:`datasets.preview`) turns NAME into named datasets.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from datasets.errors import DatasetError, DatasetNotFoundError
from datasets.idx import EMNIST, KMNIST, MNIST, FashionMNIST, IDXDataset
from datasets.images import ImageFolderDataset, check_choice
from datasets.notmnist import NotMNIST
from datasets.splits import _unwrap, overlap_report
from datasets.text import TextClassificationDataset

log = logging.getLogger(__name__)

_IMAGE_SPLITS = ("train", "valid", "test")
# name -> (dataset class, fixed keyword arguments, candidate splits)
_IMAGE_NAMES: dict[str, tuple[Callable[..., Dataset[Any]], dict[str, Any], tuple[str, ...]]] = {
    "letters": (NotMNIST, {"variant": "letters"}, _IMAGE_SPLITS),
    "notmnist": (NotMNIST, {"variant": "small"}, _IMAGE_SPLITS),
    "notmnist-large": (NotMNIST, {"variant": "large"}, _IMAGE_SPLITS),
    "notmnist-idx": (NotMNIST, {"variant": "idx"}, ("train", "test")),
    "mnist": (MNIST, {}, ("train", "test")),
    "fashion-mnist": (FashionMNIST, {}, ("train", "test")),
    "kmnist": (KMNIST, {}, ("train", "test")),
    "emnist": (EMNIST, {}, ("train", "test")),
}
_IDX_IMAGES = re.compile(r"^(?P<prefix>.+)-images[-.]idx3-ubyte(?:\.gz)?$")
_IDX_SPLIT_NAMES = {"train": "train", "t10k": "test", "test": "test"}
_NAME_HELP = ("registry name, CLASS/*.png folder or its .tar(.gz) archive, IDX folder, or "
             "CSV/TSV/JSONL text file")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def open_splits(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    split: str | None = None,
    download: bool = False,
) -> dict[str, Dataset[Any]]:
    """Open every split of a dataset (or only ``split``) by registry name or path.

    Args:
        name: a registry name or a path (see the module docstring).
        root: the cache home for registry names (default: ``loaders.cache_root()``).
        split: open only this split.
        download: fetch registry datasets that are not in the cache yet.

    Returns:
        ``{split name: dataset}`` in a stable order (``all`` for a single folder or file).

    Raises:
        DatasetNotFoundError: nothing could be opened; says where it looked.
        DatasetError: another dataset problem.
        loaders.UnknownDatasetError: not a path and not a registry name.
    """
    path = Path(name).expanduser()
    if path.exists():
        found = _open_path(path, split)
    elif os.sep in name or "/" in name or path.suffix:
        raise DatasetNotFoundError(
            f"expected a file or folder at {path} but nothing is there; check the path, or pass "
            "a registry name (python -m loaders.download --list shows them)"
        )
    elif name in _IMAGE_NAMES:
        found = _open_image_name(name, root=root, split=split, download=download)
    elif name == "sms-spam":
        folder = _registry_dir(name, root, download)
        found = {"all": TextClassificationDataset.from_file(folder / "SMSSpamCollection")}
    else:
        from loaders import registry

        registry.get(name)  # raises UnknownDatasetError with the nearest names
        raise DatasetError(
            f"the report does not read {name!r} yet; pass a path to its files instead "
            f"(python -m loaders.download {name} prints where they are)"
        )
    if split is not None and split not in found:
        raise DatasetNotFoundError(
            f"expected split {split!r} of {name} but found only {sorted(found)}; "
            "pass one of those with --split, or leave --split out"
        )
    return found


def _registry_dir(name: str, root: str | os.PathLike[str] | None, download: bool) -> Path:
    import loaders

    if download:
        return loaders.fetch(name, root)
    folder = loaders.dataset_dir(name, root)
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"expected {name} in {folder} but that folder does not exist; run "
            f"`python -m loaders.download {name}` or pass --download"
        )
    return folder


def _open_path(path: Path, split: str | None) -> dict[str, Dataset[Any]]:
    if path.is_file() and path.name.lower().endswith(_ARCHIVE_SUFFIXES):
        return {"all": ImageFolderDataset.from_archive(path)}
    if path.is_file():
        return {"all": TextClassificationDataset.from_file(path)}
    if any(_IDX_IMAGES.match(p.name) for p in path.iterdir()):
        return _open_idx_folder(path, split)
    return {"all": ImageFolderDataset.pack(path)}


def _open_idx_folder(folder: Path, split: str | None) -> dict[str, Dataset[Any]]:
    found: dict[str, Dataset[Any]] = {}
    unpaired: list[str] = []
    for images in sorted(folder.iterdir(), key=lambda p: p.name, reverse=True):  # train first
        match = _IDX_IMAGES.match(images.name)
        if not match:
            continue
        prefix = match["prefix"]
        labels = [p for p in folder.iterdir() if p.name.startswith(f"{prefix}-labels")]
        split_name = _IDX_SPLIT_NAMES.get(prefix, prefix)
        if not labels:
            unpaired.append(images.name)
        elif split is None or split == split_name:
            found[split_name] = IDXDataset(images, labels[0])
    if not found and unpaired:
        prefix = _IDX_IMAGES.match(unpaired[0])["prefix"]  # type: ignore[index]
        raise DatasetNotFoundError(
            f"expected a labels file {prefix}-labels-idx1-ubyte.gz beside {unpaired[0]} in "
            f"{folder} but found none; put the matching labels file there"
        )
    if not found:
        raise DatasetNotFoundError(
            f"expected IDX files like train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz "
            f"in {folder} but found none{' for split ' + repr(split) if split else ''}"
        )
    return found


def _open_image_name(
    name: str, *, root: str | os.PathLike[str] | None, split: str | None, download: bool
) -> dict[str, Dataset[Any]]:
    cls, kwargs, splits = _IMAGE_NAMES[name]
    known = (*splits, "all") if cls is NotMNIST and name != "notmnist-idx" else splits
    if split is not None:
        check_choice("split", split, known, context=f" for {name}")
    found: dict[str, Dataset[Any]] = {}
    missing: list[str] = []
    for candidate in splits if split is None else (split,):
        try:
            found[candidate] = cls(root, split=candidate, download=download, **kwargs)
        except DatasetNotFoundError as err:
            missing.append(str(err))
        except ValueError as err:  # a split this dataset does not have
            if split is not None or isinstance(err, DatasetError):
                raise
            log.debug("%s has no split %r: %s", name, candidate, err)
    if not found:
        raise DatasetNotFoundError(missing[0] if missing else f"no split of {name} could be opened")
    return found


def class_counts(dataset: Dataset[Any]) -> dict[str, int]:
    """Count the items of each class (class names from ``.classes`` when the dataset has them)."""
    base, indices = _unwrap(dataset)
    targets = getattr(base, "targets", None)
    if targets is None:
        labels = [int(dataset[i][1]) for i in range(len(dataset))]  # type: ignore[arg-type]
    else:
        labels = [int(t) for t in (targets.tolist() if hasattr(targets, "tolist") else targets)]
        if indices is not None:
            labels = [labels[i] for i in indices]
    names = getattr(base, "classes", None)
    counts = Counter(labels)
    keys = range(len(names)) if names else sorted(counts)
    return {(str(names[k]) if names else str(k)): counts.get(k, 0) for k in keys}


def format_report(splits: dict[str, Dataset[Any]], *, title: str) -> str:
    """Return the report's text: per-split class counts, skipped files, overlap."""
    lines = [f"dataset: {title}"]
    listed: dict[tuple[tuple[str, str], ...], str] = {}  # splits of one source share its list
    for split_name, ds in splits.items():
        counts = class_counts(ds)
        lines.append(f"\n[{split_name}] {len(ds):,} items, {len(counts)} classes")  # type: ignore[arg-type]
        width = max(len(c) for c in counts) if counts else 5
        lines.extend(f"  {c:<{width}}  {n:>9,}" for c, n in counts.items())
        skipped = tuple(tuple(item) for item in getattr(_unwrap(ds)[0], "skipped", None) or [])
        if skipped and skipped in listed:
            lines.append(f"  skipped files: {len(skipped)} (of the source, listed under "
                         f"[{listed[skipped]}])")
            continue
        listed[skipped] = split_name
        lines.append(f"  skipped files: {len(skipped)}")
        lines.extend(f"    {path}: {reason}" for path, reason in skipped)
    lines.append("\noverlap (exact duplicates):")
    report = overlap_report(*splits.values(), names=list(splits))
    lines.extend(f"  {line}" for line in str(report).splitlines())
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m datasets.report",
        description="Print counts per class, skipped files and exact-duplicate overlap "
        "within and across the splits of a dataset.",
        epilog="examples:\n  python -m datasets.report letters --download\n"
        "  python -m datasets.report notmnist --split test\n"
        "  python -m datasets.report /path/to/notMNIST_small.tar.gz\n"
        "  python -m datasets.report /work/shared/data/notmnist-idx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", help=_NAME_HELP)
    add_source_arguments(parser, split_help="report only this split (default: every split found)")
    return parser


def add_source_arguments(parser: argparse.ArgumentParser, *, split_help: str) -> None:
    """Add ``--split``, ``--root``, ``--download`` and ``-v``/``-q`` (report and preview)."""
    parser.add_argument("--split", help=split_help)
    parser.add_argument("--root", help="cache home (default: $DATAFERRY_HOME or ~/.cache/dataferry)")
    parser.add_argument("--download", action="store_true", help="fetch the dataset if missing")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log progress")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="log errors only")


def configure_logging(args: argparse.Namespace) -> None:
    """Log to stderr at INFO with ``-v``, ERROR with ``-q``, else WARNING."""
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; return 0 on success, 1 on a dataset or loader error, 2 on usage errors.

    An unknown dataset name is a usage error (2; the message suggests the nearest names, as
    ``loaders.download`` does). Returns 141 (128 + SIGPIPE), without a message, when stdout is closed early (``| head``).
    """
    args = build_parser().parse_args(argv)
    configure_logging(args)
    from loaders.closed_stdout import closed_stdout_exit
    from loaders.errors import LoaderError, UnknownDatasetError

    try:
        splits = open_splits(args.name, root=args.root, split=args.split, download=args.download)
        print(format_report(splits, title=args.name))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
    except BrokenPipeError:  # the reader went away (``| head``): exit quietly, 141
        return closed_stdout_exit()
    except UnknownDatasetError as err:  # a typo: a usage error, as in loaders.download
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (DatasetError, LoaderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:  # a --split this dataset does not have: a usage error
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
