"""``python -m datasets.report NAME``: counts per class, image sizes or token counts, overlap.

NAME is a catalog name (``python -m datasets.report --list`` shows them: the notMNIST and MNIST
families, CIFAR-10/100, Imagenette, hymenoptera, SMS spam, AG News) or a path: an image folder
(``CLASS/*.jpg``, any format, colour or grey), a folder of ``train/``/``val/`` image folders, an
archive of an image folder, a folder of IDX files, or a CSV/TSV/JSONL text file.
:func:`open_splits` (also used by :mod:`datasets.preview`) turns NAME into named datasets
through :func:`datasets.catalog.open_splits`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from datasets.errors import DatasetError
from datasets.folders import shown
from datasets.splits import _unwrap, overlap_report

log = logging.getLogger(__name__)

_NAME_HELP = ("catalog name (python -m datasets.report --list shows them), image folder or its "
              "archive, folder of train/ val/ image folders, IDX folder, or CSV/TSV/JSONL file")


def open_splits(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    split: str | None = None,
    download: bool = False,
    transform: Any = None,
    **options: Any,
) -> dict[str, Dataset[Any]]:
    """Open every split of a dataset (or only ``split``) by catalog name or path.

    Args:
        name: a catalog name or a path (see the module docstring).
        root: the data home for catalog names (default: ``loaders.cache_root()``).
        split: open only this split.
        download: fetch catalog datasets that are not in the cache yet.
        transform: the image datasets' transform (``None``: their default).
        **options: the dataset's options (``datasets.catalog.get(name).options``).

    Returns:
        ``{split name: dataset}`` in a stable order (``all`` for a single folder or file).

    Raises:
        DatasetNotFoundError: nothing could be opened; says where it looked.
        DatasetError: another dataset problem.
        loaders.UnknownDatasetError: not a path and not a catalog name.
    """
    from datasets.catalog import open_splits as open_catalog_splits

    return open_catalog_splits(name, root, split=split, download=download, transform=transform,
                               **options)


def class_counts(dataset: Dataset[Any]) -> dict[str, int]:
    """Count the items of each class, by name when the dataset has them.

    The names are a text dataset's label names (``label_encoder.names``: AG News' World,
    Sports...) or else ``.classes``.
    """
    base, indices = _unwrap(dataset)
    targets = getattr(base, "targets", None)
    if targets is None:
        labels = [int(dataset[i][1]) for i in range(len(dataset))]  # type: ignore[arg-type]
    else:
        labels = [int(t) for t in (targets.tolist() if hasattr(targets, "tolist") else targets)]
        if indices is not None:
            labels = [labels[i] for i in indices]
    encoder = getattr(base, "label_encoder", None)  # text: display names (AG News: World...)
    names = encoder.names if encoder is not None else getattr(base, "classes", None)
    counts = Counter(labels)
    keys = range(len(names)) if names else sorted(counts)
    return {(str(names[k]) if names else str(k)): counts.get(k, 0) for k in keys}


_SIDE_BINS = (0, 64, 128, 256, 512, 1024)
_MAX_LISTED = 20


def _sizes(base: Any, indices: Sequence[int] | None) -> Any:
    """``[N, 2]`` (H, W) of each item, or ``None`` when the dataset keeps no images."""
    import numpy as np

    sizes = getattr(base, "sizes", None)
    if callable(sizes):
        sizes = sizes()
    if sizes is None:
        data = getattr(base, "data", None)
        shape = getattr(data, "shape", None)
        if shape is None or len(shape) < 3:
            return None
        sizes = np.broadcast_to(np.asarray(shape[1:3]), (int(shape[0]), 2))
    sizes = np.asarray(sizes).reshape(-1, 2)
    return sizes if indices is None else sizes[np.asarray(indices, dtype=np.int64)]


def image_summary(dataset: Dataset[Any]) -> list[str]:
    """Lines on an image dataset's pixels: mode, sizes (a histogram when they vary), mean/std.

    Returns nothing for datasets that are not image stores (text, plain lists).
    """
    import numpy as np

    base, indices = _unwrap(dataset)
    sizes = _sizes(base, indices)
    if sizes is None or not len(sizes):
        return []
    mode = getattr(base, "mode", None)
    head = f"images: {mode}, " if mode else "images: "
    pairs = Counter(f"{h}x{w}" for h, w in sizes.tolist())
    if len(pairs) == 1:
        lines = [f"{head}{next(iter(pairs))} (H x W) every one"]
    else:
        shorter = sizes.min(axis=1)
        edges = [*_SIDE_BINS, max(_SIDE_BINS[-1], int(shorter.max())) + 1]
        counts = np.histogram(shorter, bins=edges)[0]
        bins = [(f"{lo}-{hi - 1}" if i < len(_SIDE_BINS) - 1 else f">={lo}") + f": {c:,}"
                for i, (lo, hi, c) in enumerate(zip(edges[:-1], edges[1:], counts, strict=True))
                if c]
        common = ", ".join(f"{size} ({n:,})" for size, n in pairs.most_common(3))
        lines = [f"{head}{len(pairs):,} sizes (H x W); most common {common}",
                 f"  shorter side in px: {'; '.join(bins)}"]
    mean, std = getattr(base, "mean", None), getattr(base, "std", None)
    if mean and std:
        lines.append("mean " + " ".join(f"{m:.3f}" for m in mean) + ", std "
                     + " ".join(f"{v:.3f}" for v in std) + " (per channel, pixels / 255)")
    return lines


_TOKEN_BINS = (0, 8, 16, 32, 64, 128, 256, 512, 1024)
_BAR_WIDTH = 30


def text_summary(dataset: Dataset[Any]) -> list[str]:
    """Lines on a text dataset's token counts: min/median/mean/max and a histogram.

    Returns nothing for datasets without ``lengths()`` (images, plain lists).

    Example:
        >>> from datasets.text import TextClassificationDataset
        >>> ds = TextClassificationDataset(["a b", "a b c d e f g h i"], [0, 1])
        >>> print("\\n".join(text_summary(ds)))
        tokens per text: min 2, median 5.5, mean 5.5, max 9
          0-7               1  ##############################
          8-15              1  ##############################
    """
    import numpy as np

    base, indices = _unwrap(dataset)
    lengths_of = getattr(base, "lengths", None)
    if not callable(lengths_of):
        return []
    lengths = np.asarray(lengths_of(), dtype=np.int64)
    if indices is not None:
        lengths = lengths[np.asarray(indices, dtype=np.int64)]
    if not len(lengths):
        return []
    lines = [f"tokens per text: min {lengths.min():,}, median {np.median(lengths):,g}, "
             f"mean {lengths.mean():,.1f}, max {lengths.max():,}"]
    edges = [*_TOKEN_BINS, max(_TOKEN_BINS[-1], int(lengths.max())) + 1]
    counts = np.histogram(lengths, bins=edges)[0]
    top = int(counts.max())
    last = max(i for i, c in enumerate(counts) if c)
    for i, (lo, hi, n) in enumerate(zip(edges[:-1], edges[1:], counts, strict=True)):
        if i > last or (not n and lo < lengths.min()):
            continue  # no empty bins at the ends
        label = f"{lo}-{hi - 1}" if i < len(_TOKEN_BINS) - 1 else f">={lo}"
        bar = "#" * (max(1, round(_BAR_WIDTH * int(n) / top)) if n else 0)
        lines.append(f"  {label:<9} {int(n):>9,}  {bar}".rstrip())
    return lines


def format_report(splits: dict[str, Dataset[Any]], *, title: str) -> str:
    """Return the report's text: per-split class counts, skipped files, overlap."""
    lines = [f"dataset: {shown(title)}"]
    listed: dict[tuple[tuple[str, str], ...], str] = {}  # splits of one source share its list
    for split_name, ds in splits.items():
        counts = class_counts(ds)
        lines.append(f"\n[{split_name}] {len(ds):,} items, {len(counts)} classes")  # type: ignore[arg-type]
        names = {shown(c): n for c, n in counts.items()}
        width = max(len(c) for c in names) if names else 5
        lines.extend(f"  {c:<{width}}  {n:>9,}" for c, n in names.items())
        lines.extend(f"  {line}" for line in image_summary(ds))
        lines.extend(f"  {line}" for line in text_summary(ds))
        notes = list(getattr(_unwrap(ds)[0], "notes", None) or [])
        if notes:  # kept, with a remark: the user's data, converted (a palette GIF, say)
            lines.append(f"  kept with a note: {len(notes)}")
            lines.extend(f"    {shown(path)}: {note}" for path, note in notes[:_MAX_LISTED])
            if len(notes) > _MAX_LISTED:
                lines.append(f"    ... and {len(notes) - _MAX_LISTED} more (in the manifest)")
        skipped = tuple(tuple(item) for item in getattr(_unwrap(ds)[0], "skipped", None) or [])
        if skipped and skipped in listed:
            lines.append(f"  skipped files: {len(skipped)} (of the source, listed under "
                         f"[{listed[skipped]}])")
            continue
        listed[skipped] = split_name
        lines.append(f"  skipped files: {len(skipped)}")
        lines.extend(f"    {shown(path)}: {shown(reason)}" for path, reason in skipped)
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
        epilog="examples:\n  python -m datasets.report --list\n"
        "  python -m datasets.report letters --download\n"
        "  python -m datasets.report notmnist --split test\n"
        "  python -m datasets.report cifar10 --download\n"
        "  python -m datasets.report ~/Pictures/my-photos          (a CLASS/*.jpg folder)\n"
        "  python -m datasets.report notMNIST_small.tar.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", help=_NAME_HELP)
    parser.add_argument("--list", action="store_true",
                        help="print the catalog (every dataset known by name) and exit")
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

    Ctrl-C returns 130 after one line (a download resumes from its ``.part`` file when run again).

    An unknown dataset name is a usage error (2; the message suggests the nearest names, as
    ``loaders.download`` does). Returns 141 (128 + SIGPIPE), without a message, when stdout is closed early (``| head``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.name is None and not args.list:
        parser.error("the following arguments are required: name (or --list)")
    configure_logging(args)
    from loaders.closed_stdout import closed_stdout_exit
    from loaders.errors import LoaderError, UnknownDatasetError
    from loaders.interrupt import EXIT_INTERRUPTED, command_line, interrupted_line

    try:
        if args.list:
            from datasets.catalog import format_catalog

            print(format_catalog())
        else:
            splits = open_splits(args.name, root=args.root, split=args.split,
                                 download=args.download)
            print(format_report(splits, title=args.name))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
    except BrokenPipeError:  # the reader went away (``| head``): exit quietly, 141
        return closed_stdout_exit()
    except KeyboardInterrupt:
        print(interrupted_line(command_line("datasets.report", argv)), file=sys.stderr)
        return EXIT_INTERRUPTED
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
