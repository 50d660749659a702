"""``python -m datasets.shard SOURCE OUT``: write a sharded pack; ``--verify URL``: check one.

SOURCE is a packed cache folder (with ``manifest.json``), a ``CLASS/*.png`` image folder, an
image archive (tar, tar.gz, tar.bz2, tar.xz or zip, recognised by name or content), a text file
(CSV/TSV/JSONL: token ids with a vocabulary built from it, stored in the index) or a name of
``datasets.catalog`` (``--split``; default the whole dataset, ``all``, where the catalog has
it, else the training split). OUT is a folder or ``s3://bucket/prefix``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets.errors import DatasetError
from datasets.shardwriter import verify_shards as verify_pack
from datasets.shardwriter import write_shards
from loaders.errors import LoaderError

log = logging.getLogger(__name__)

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
          "kib": 2**10, "mib": 2**20, "gib": 2**30}

EPILOG = """examples:
  python -m datasets.shard letters packs/letters --shard-size 16MB
  python -m datasets.shard path/to/CLASS-folders s3://bucket/packs/mine --endpoint-url URL
  python -m datasets.shard --verify http://host:8000/packs/letters
"""


def parse_size(text: str) -> int:
    """Parse ``64MB``, ``1GiB``, ``500kB`` or a byte count.

    Example:
        >>> parse_size("64MB"), parse_size("1KiB"), parse_size("100")
        (64000000, 1024, 100)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 64MB, 512KiB or 1000000, but got {text!r}")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, but got {text!r}")
    return size


def out_location(text: str) -> str:
    """Parse OUT for argparse: a non-empty folder or URL (``""`` would be the current folder).

    Example:
        >>> out_location(" ")  # a folder named by one space is a folder
        ' '
    """
    if not text:
        raise argparse.ArgumentTypeError(
            f"should be a folder or s3:// URL, but got {text!r}; pass OUT ('.' for the current "
            "folder)")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.shard", description=__doc__.splitlines()[0],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="a dataset to write (see above)")
    parser.add_argument("out", nargs="?", type=out_location, help="a folder or s3://bucket/prefix")
    parser.add_argument("--shard-size", type=parse_size, default="64MB",
                        help="target shard size (default 64MB)")
    parser.add_argument("--workers", type=int, default=2, help="writer threads (default 2)")
    parser.add_argument("--verify", metavar="URL", help="check every shard of the pack at URL")
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint for s3:// URLs")
    parser.add_argument("--split", default=None,
                        help="the split of a catalog name (default: all where the catalog has "
                             "it, e.g. letters; else the training split, e.g. mnist: train)")
    parser.add_argument("--keep-order", action="store_true",
                        help="write samples in the source's order (default: a permutation "
                             "from --seed, as a reader shuffles only within a few shards)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the write permutation's seed (default 0)")
    parser.add_argument("--root", help="the cache home for registry names and packed caches")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def open_source(source: str, *, root: str | None = None,
                split: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Open SOURCE as a map-style dataset; return it and extra index keys (a vocabulary).

    Raises:
        DatasetNotFoundError: SOURCE is neither a path nor a catalog name.
        ValueError: ``split`` is not one of the catalog row's splits.
    """
    from datasets import ImageFolderDataset, PackedImageDataset, TextClassificationDataset, catalog
    from datasets.errors import DatasetNotFoundError
    from datasets.local import is_archive
    from datasets.packed import PackedImages

    path = Path(source)
    if (path / "manifest.json").is_file():
        return PackedImageDataset(PackedImages(path)), {}
    if path.is_dir():
        return ImageFolderDataset.pack(path, cache_dir=root), {}
    if path.is_file() and is_archive(path):  # tar.xz/tar.bz2 too, by name or content
        return ImageFolderDataset.from_archive(path, cache_dir=root), {}
    if path.is_file():
        text = TextClassificationDataset.from_file(path)
        text.vocab = text.build_vocab()
        return text, {"vocab": text.vocab.state_dict()}
    if source in catalog.names():
        splits = catalog.get(source).splits
        split = split or ("all" if "all" in splits else splits[0])
        return catalog.open_dataset(source, root, split=split, download=True), {}
    raise DatasetNotFoundError(
        f"SOURCE {source!r} is not a folder, archive or text file, nor a catalog name "
        f"({', '.join(catalog.names())}); check the path")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    if args.verify is None and (args.source is None or args.out is None):
        parser.error("pass SOURCE and OUT to write a pack, or --verify URL to check one")
    if args.workers < 1:
        parser.error(f"--workers should be a positive int, but got {args.workers}")
    if args.keep_order and args.seed is not None:
        parser.error("--keep-order writes the source's order; --seed picks a permutation: pass one")
    if args.seed is not None and args.seed < 0:
        parser.error(f"--seed should be an int >= 0, but got {args.seed}")
    progress = not args.quiet and sys.stderr.isatty()
    try:
        if args.verify is not None:
            return _verify(args.verify, args.endpoint_url, progress)
        dataset, extra = open_source(args.source, root=args.root, split=args.split)
        index = write_shards(dataset, args.out, shard_size_bytes=args.shard_size,
                             workers=args.workers, extra=extra, source=args.source,
                             progress=progress, endpoint_url=args.endpoint_url,
                             shuffle=not args.keep_order, seed=args.seed or 0,
                             source_fingerprint=_file_fingerprint(args.source))
    except (DatasetError, LoaderError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue the write", file=sys.stderr)
        return 130
    size = sum(s["size_bytes"] for s in index["shards"])
    print(f"wrote {index['count']:,} samples in {len(index['shards'])} shards "
          f"({size / 1e6:,.1f} MB) to {args.out}")
    return 0


def _file_fingerprint(source: str) -> str | None:
    """A text or archive SOURCE's fingerprint (a folder's comes from its packed cache)."""
    from datasets.packing import file_fingerprint

    path = Path(source)
    return file_fingerprint(path) if path.is_file() else None


def _verify(url: str, endpoint_url: str | None, progress: bool) -> int:
    index, bad = verify_pack(url, endpoint_url=endpoint_url, progress=progress)
    for line in bad:
        print(f"bad: {line}")
    shards = index["shards"]
    if bad:
        print(f"error: {len(bad)} of {len(shards)} shards do not verify; write the pack again "
              "or re-upload those shards", file=sys.stderr)
        return 1
    size = sum(s["size_bytes"] for s in shards)
    print(f"ok: {len(shards)} shards, {index['count']:,} samples, {size:,} bytes verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
