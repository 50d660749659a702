"""The download CLI: ``python -m loaders.download NAME [NAME ...]``.

Exit codes: 0 done, 1 a loader error (one line ``error: …``), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from loaders import manifest
from loaders.errors import ChecksumMismatchError, LoaderError, UnknownDatasetError
from loaders.fetch import dataset_dir, expected_of, fetch
from loaders.registry import REGISTRY, get, names
from loaders.verify import check_file

log = logging.getLogger(__name__)

_EPILOG = """examples:
  python -m loaders.download letters --count 200        # built-in data, no network
  python -m loaders.download notmnist mnist --root ./data
  python -m loaders.download --list
  python -m loaders.download --verify notmnist
  python -m loaders.download https://example.org/file.csv --sha256 HEX
  DATAFERRY_OFFLINE=1 python -m loaders.download notmnist  # says what to place where
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the download CLI."""
    parser = argparse.ArgumentParser(
        prog="python -m loaders.download",
        description="Download, verify and extract datasets into the dataferry cache.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"registry names ({', '.join(names())}) or plain URLs")
    parser.add_argument("--root", help="cache home (default: $DATAFERRY_HOME, else XDG cache)")
    parser.add_argument("--mirror", metavar="BASE",
                        help="base URL or local folder replacing every URL's base "
                        "(default: $DATAFERRY_MIRROR)")
    parser.add_argument("--offline", action="store_true", default=None,
                        help="never touch the network (default: $DATAFERRY_OFFLINE)")
    parser.add_argument("--force", action="store_true", help="download again even if cached")
    parser.add_argument("--no-extract", dest="extract", action="store_false",
                        help="leave archives packed")
    parser.add_argument("--split", choices=("train", "test"), help="only this split's files")
    parser.add_argument("--sha256", metavar="HEX", help="expected sha256 of a plain URL")
    parser.add_argument("--md5", metavar="HEX", help="expected md5 of a plain URL")
    parser.add_argument("--count", type=int, help="letters: number of images (default 20000)")
    parser.add_argument("--seed", type=int, help="letters: generator seed (default 0)")
    parser.add_argument("--list", action="store_true", help="list datasets: size, cached or not")
    parser.add_argument("--verify", action="store_true", help="re-hash what is cached")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else (logging.DEBUG if args.verbose > 1 else
                                               logging.INFO if args.verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    if not (args.names or args.list or args.verify):
        parser.print_usage(sys.stderr)
        print("error: give at least one NAME, or --list, or --verify", file=sys.stderr)
        return 2
    urls = [n for n in args.names if "://" in n]
    if (args.sha256 or args.md5) and (len(urls) != 1 or len(args.names) != 1):
        print("error: --sha256/--md5 go with exactly one plain URL", file=sys.stderr)
        return 2
    if (args.count is not None or args.seed is not None) and any(
        n in REGISTRY and get(n).generator is None for n in args.names
    ):
        print("error: --count/--seed apply to 'letters' only", file=sys.stderr)
        return 2
    try:
        if args.list:
            return _list(args)
        if args.verify:
            return _verify(args)
        return _fetch_all(args)
    except UnknownDatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (LoaderError, ValueError, OSError) as err:  # OSError: e.g. an unwritable --root
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume", file=sys.stderr)
        return 1


def _fetch_all(args: argparse.Namespace) -> int:
    progress = not args.quiet and sys.stderr.isatty()
    for name in args.names:
        generated = name in REGISTRY and get(name).generator is not None
        path = fetch(
            name,
            args.root,
            mirror=args.mirror,
            offline=args.offline,
            force=args.force,
            extract=args.extract,
            split=args.split,
            progress=progress,
            sha256=args.sha256,
            md5=args.md5,
            count=args.count if generated else None,
            seed=args.seed if generated else None,
        )
        print(path)
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = []
    for name in names():
        info = get(name)
        folder = dataset_dir(name, args.root)
        cached = all((folder / r.filename).is_file() for r in info.resources)
        size = info.size_bytes
        rows.append((name, "?" if size is None else f"{size / 1e6:,.1f} MB",
                     "cached" if cached else "-", info.description))
    for name, size, cached, description in rows:
        print(f"{name:<15} {size:>10}  {cached:<6}  {description}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Re-hash every cached file of the named datasets (all cached ones when none named).

    Files never fetched are listed as ``absent`` but are not failures; a file that no longer
    matches its published hash (or its pin) is ``BAD`` and makes the exit code 1.
    """
    targets = args.names or names()
    bad = checked = 0
    for name in targets:
        generated = get(name).generator is not None
        folder = dataset_dir(name, args.root, count=args.count if generated else None,
                             seed=args.seed if generated else None)
        for resource in get(name).resources:
            if args.split and resource.split not in (None, args.split):
                continue
            path = folder / resource.filename
            if not path.is_file():
                if args.names:  # not an error: a split or dataset may not have been fetched
                    print(f"absent   {path}")
                continue
            checked += 1
            expected = expected_of(resource, folder)
            try:
                digest = check_file(path, expected)
            except ChecksumMismatchError as err:
                print(f"BAD      {path}: {err}")
                bad += 1
                continue
            record = manifest.file_record(folder, resource.filename) or {}
            published = bool(resource.sha256 or resource.md5)
            manifest.record_file(folder, resource.filename, sha256=digest,
                                 pinned=not published, source=record.get("source"))
            how = "ok" if expected.has_hash else "ok (no published hash; sha256 pinned now)"
            print(f"{how:<8} {path}")
    if bad:
        print(f"error: {bad} file(s) failed verification; fetch them again with --force",
              file=sys.stderr)
        return 1
    if not checked:
        print("nothing cached to verify")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
