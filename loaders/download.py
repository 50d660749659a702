"""The download CLI: ``python -m loaders.download NAME [NAME ...]``.

Exit codes: 0 done, 1 a loader error (one line ``error: …`` per failed name; the other names
are still fetched), 2 bad usage (unknown names and malformed ``--sha256``/``--md5`` are refused
before anything is fetched), 130 interrupted (Ctrl-C: one line; the partial download is kept
and the same command resumes it), 141 when the output's reader went away
(``--list | head -1``), quietly, as for a tool killed by SIGPIPE (see
:mod:`loaders.closed_stdout`).
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from loaders import manifest
from loaders.cache import cache_root
from loaders.closed_stdout import closed_stdout_exit
from loaders.errors import ChecksumMismatchError, LoaderError, UnknownDatasetError
from loaders.fetch import dataset_dir, expected_of, fetch
from loaders.interrupt import EXIT_INTERRUPTED, command_line, interrupted_line
from loaders.registry import REGISTRY, Resource, get, names
from loaders.verify import check_file, check_hex

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
    parser.add_argument("--count", type=_positive_int,
                        help="letters: number of images (default 20000)")
    parser.add_argument("--seed", type=int, help="letters: generator seed (default 0)")
    parser.add_argument("--list", action="store_true",
                        help="list datasets (all, or the NAMEs given): size, cached or not")
    parser.add_argument("--verify", action="store_true", help="re-hash what is cached")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"should be a positive int, but got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = command_line("loaders.download", argv)
    problem = _usage_problem(args)
    if problem:
        parser.print_usage(sys.stderr)
        print(f"error: {problem}", file=sys.stderr)
        return 2
    root_logger = logging.getLogger()
    previous_level = root_logger.level
    # basicConfig adds the stderr handler only when none is set; the level is set either way,
    # so -q means errors only even when the caller (or an earlier main()) configured logging.
    logging.basicConfig(format="%(levelname)s: %(message)s", stream=sys.stderr)
    root_logger.setLevel(_log_level(args))
    try:
        code = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
        return code
    except BrokenPipeError:
        return closed_stdout_exit()
    except KeyboardInterrupt:
        print(interrupted_line(command), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        root_logger.setLevel(previous_level)


def _usage_problem(args: argparse.Namespace) -> str | None:
    """Return what is wrong with a combination of arguments, or ``None``."""
    if not (args.names or args.list or args.verify):
        return "give at least one NAME, or --list, or --verify"
    urls = [n for n in args.names if "://" in n]
    if (args.sha256 or args.md5) and (len(urls) != 1 or len(args.names) != 1):
        return "--sha256/--md5 go with exactly one plain URL"
    try:
        check_hex(args.sha256, "sha256")
        check_hex(args.md5, "md5")
    except ValueError as err:
        return f"--{err}"
    if urls and (args.list or args.verify):
        return (f"--list and --verify take registry names, but got {urls[0]!r}; a URL's file is "
                "verified when it is fetched (with --sha256 or --md5)")
    if (args.count is not None or args.seed is not None) and any(
        n in REGISTRY and get(n).generator is None for n in args.names
    ):
        return "--count/--seed apply to 'letters' only"
    return None


def _log_level(args: argparse.Namespace) -> int:
    if args.quiet:
        return logging.ERROR
    return logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING


def _run(args: argparse.Namespace) -> int:
    """Do what the parsed arguments ask; turn loader errors into one line and an exit code."""
    try:
        if args.list:
            return _list(args)
        if args.verify:
            return _verify(args)
        return _fetch_all(args)
    except BrokenPipeError:  # stdout closed: main() exits quietly
        raise
    except UnknownDatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (LoaderError, ValueError, OSError) as err:  # OSError: e.g. an unwritable --root
        print(f"error: {err}", file=sys.stderr)
        return 1


def _fetch_all(args: argparse.Namespace) -> int:
    """Fetch each name in turn; one that fails does not stop the others (exit 1 at the end)."""
    for name in args.names:  # a typo in the last name must not wait for the first download
        if "://" not in name:
            get(name)
    failed = 0
    for name in args.names:
        try:
            print(_fetch_one(args, name), flush=True)
        except BrokenPipeError:  # stdout closed: main() exits quietly
            raise
        except (LoaderError, ValueError, OSError) as err:  # OSError: e.g. an unwritable --root
            print(f"error: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _fetch_one(args: argparse.Namespace, name: str) -> Path:
    generated = name in REGISTRY and get(name).generator is not None
    return fetch(
        name,
        args.root,
        mirror=args.mirror,
        offline=args.offline,
        force=args.force,
        extract=args.extract,
        split=args.split,
        progress=not args.quiet and sys.stderr.isatty(),
        sha256=args.sha256,
        md5=args.md5,
        count=args.count if generated else None,
        seed=args.seed if generated else None,
    )


def _list(args: argparse.Namespace) -> int:
    """Print one line per dataset, then one per generated variant in the cache.

    A variant (``letters-<count>-s<seed>``) is listed after its dataset when its folder exists.
    """
    for name in args.names or names():
        info = get(name)
        size = "?" if info.size_bytes is None else f"{info.size_bytes / 1e6:,.1f} MB"
        rows = [(name, dataset_dir(name, args.root), info.description)]
        if info.generator is not None:
            rows += [(folder.name, folder, f"{name} made with --count {count} --seed {seed}")
                     for folder, count, seed in _generated_variants(name, args.root)]
        for label, folder, description in rows:
            cached = all((folder / r.filename).is_file() for r in info.resources)
            print(f"{label:<15} {size:>10}  {'cached' if cached else '-':<6}  {description}")
    return 0


def _generated_variants(name: str, root: str | None) -> list[tuple[Path, int, int]]:
    """Return (folder, count, seed) of each non-default variant of ``name`` in the cache."""
    found = []
    for folder in sorted(cache_root(root).glob(f"{name}-*-s*")):
        match = re.fullmatch(rf"{re.escape(name)}-(\d+)-s(-?\d+)", folder.name)
        if match and folder.is_dir():
            found.append((folder, int(match[1]), int(match[2])))
    return found


def _verify(args: argparse.Namespace) -> int:
    """Re-hash every cached file of the named datasets (all cached ones when none named).

    Files never fetched are listed as ``absent`` but are not failures; a file that no longer
    matches its published hash (or its pin) is ``BAD`` and makes the exit code 1, with the
    command that fetches it again.
    """
    bad: list[tuple[str, tuple[str, ...]]] = []
    checked = 0
    for name, folder, flags in _verify_targets(args):
        for resource in get(name).resources:
            if args.split and resource.split not in (None, args.split):
                continue
            if not (folder / resource.filename).is_file():
                if args.names:  # not an error: a split or dataset may not have been fetched
                    print(f"absent   {folder / resource.filename}")
                continue
            checked += 1
            if not _verify_file(resource, folder):
                bad.append((name, flags))
    if bad:
        print(f"error: {len(bad)} file(s) failed verification; fetch them again with: "
              f"{_refetch_commands(args, bad)}", file=sys.stderr)
        return 1
    if not checked:
        print("nothing cached to verify")
    return 0


def _verify_targets(args: argparse.Namespace) -> list[tuple[str, Path, tuple[str, ...]]]:
    """Return (name, folder, the flags that select that folder) for each folder to verify.

    With no names, every generated variant on disk (``letters-<count>-s<seed>``) is included.
    """
    targets = []
    for name in args.names or names():
        generated = get(name).generator is not None
        flags = tuple(f"--{flag}={getattr(args, flag)}" for flag in ("count", "seed")
                      if generated and getattr(args, flag) is not None)
        folder = dataset_dir(name, args.root, count=args.count if generated else None,
                             seed=args.seed if generated else None)
        targets.append((name, folder, flags))
        if generated and not args.names:
            targets += [(name, variant, (f"--count={count}", f"--seed={seed}"))
                        for variant, count, seed in _generated_variants(name, args.root)]
    return targets


def _verify_file(resource: Resource, folder: Path) -> bool:
    """Re-hash one cached file, print ``ok`` or ``BAD`` with the reason; return whether ok."""
    path = folder / resource.filename
    expected = expected_of(resource, folder)
    try:
        digest = check_file(path, expected)
    except ChecksumMismatchError as err:
        print(f"BAD      {path}: {err}")
        return False
    record = manifest.file_record(folder, resource.filename) or {}
    published = bool(resource.sha256 or resource.md5)
    manifest.record_file(folder, resource.filename, sha256=digest,
                         pinned=not published, source=record.get("source"))
    how = "ok" if expected.has_hash else "ok (no published hash; sha256 pinned now)"
    print(f"{how:<8} {path}")
    return True


def _refetch_commands(args: argparse.Namespace, bad: list[tuple[str, tuple[str, ...]]]) -> str:
    """Return the command line(s) that replace the bad files (one per set of letters flags)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, flags in bad:
        group = groups.setdefault(flags, [])
        if name not in group:
            group.append(name)
    common = [f"--{flag}={getattr(args, flag)}" for flag in ("root", "split")
              if getattr(args, flag) is not None]
    return "; ".join(
        shlex.join(["python", "-m", "loaders.download", *group, *flags, "--force", *common])
        for flags, group in groups.items()
    )


if __name__ == "__main__":
    raise SystemExit(main())
