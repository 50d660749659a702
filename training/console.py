"""What the training command lines share: readable logging, the common options, checked numbers.

Used by ``python -m training fit``, ``python -m training.quickstart`` and the examples. Only
command lines call :func:`configure_logging`; the library itself never adds handlers.

Output for a person: ``training``'s INFO lines as bare messages (one per epoch), warnings and
errors of every package prefixed with ``warning:``; the other packages' INFO chatter (cache
paths, packing times) only with ``-v``, which also adds timestamps and logger names.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = [
    "add_run_arguments",
    "available_memory_bytes",
    "check_batch_memory",
    "configure_logging",
    "describe_error",
    "hold_run_folder",
    "image_side",
    "interrupted_line",
    "is_worker_error",
    "make_output_dir",
    "memory_error_line",
    "non_negative_float",
    "non_negative_int",
    "output_folder",
    "positive_float",
    "positive_int",
    "worker_count",
    "worker_error_message",
]

_VERBOSE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _ConsoleFormatter(logging.Formatter):
    """Bare INFO messages; ``warning: …``/``error: …`` above that."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


# Other loggers whose INFO lines a person needs: datasets.loader's one line says why
# --num-workers N stepped aside (ran no worker processes) on a small pack.
_SHOWN_INFO_LOGGERS = ("datasets.loader",)


class _OwnInfoFilter(logging.Filter):
    """Let through warnings of every logger, INFO and below only from ``training``.

    ``__main__`` counts as ours: ``python -m training.quickstart`` logs under that name; so do
    the loggers in ``_SHOWN_INFO_LOGGERS``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno >= logging.WARNING
                or record.name.split(".")[0] in ("training", "__main__")
                or record.name in _SHOWN_INFO_LOGGERS)


def configure_logging(*, quiet: bool = False, verbose: bool = False) -> None:
    """Send log records to stderr for a person reading a terminal or a CI log.

    Args:
        quiet: warnings and errors only.
        verbose: DEBUG from every package, with timestamps and logger names.

    Like :func:`logging.basicConfig`, does nothing when the root logger already has handlers
    (an application or pytest configured logging first).
    """
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter(_VERBOSE_FORMAT))
    else:
        handler.setFormatter(_ConsoleFormatter())
        handler.addFilter(_OwnInfoFilter())
    logging.basicConfig(level=level, handlers=[handler])


def _number(text: str, kind: type[int] | type[float], what: str, low: float, strict: bool
            ) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value != value or value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"should be {what}, but got {text!r}")
    return value


def positive_int(text: str) -> int:
    """Parse an int > 0 for argparse (``--epochs``, ``--batch-size``)."""
    return int(_number(text, int, "a positive int", 0, True))


def non_negative_int(text: str) -> int:
    """Parse an int >= 0 for argparse (``--num-workers``, ``--patience``)."""
    return int(_number(text, int, "an int >= 0", 0, False))


def worker_count(text: str) -> int | str:
    """Parse ``--num-workers``: ``auto`` or an int >= 0."""
    if text == "auto":
        return text
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"should be 'auto' or an int >= 0, but got {text!r}"
                                         ) from None


def positive_float(text: str) -> float:
    """Parse a float > 0 for argparse (``--lr``)."""
    return float(_number(text, float, "a positive float", 0.0, True))


def non_negative_float(text: str) -> float:
    """Parse a float >= 0 for argparse (``--momentum``, ``--weight-decay``)."""
    return float(_number(text, float, "a float >= 0", 0.0, False))


def image_side(text: str) -> int:
    """Parse ``--image-size N`` for argparse: an int > 0 whose ``N x N`` is under the pixel limit.

    The limit is Pillow's ``PIL.Image.MAX_IMAGE_PIXELS`` (read at each call, as the decoders
    read it): a larger square would not be decoded anyway, and its array alone could exhaust
    memory (``--image-size 100000`` is 30 GB per photo).
    """
    import math

    from PIL import Image

    side = positive_int(text)
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and side * side > limit:
        raise argparse.ArgumentTypeError(
            f"should be at most {math.isqrt(int(limit))} (N x N within Pillow's pixel limit "
            f"PIL.Image.MAX_IMAGE_PIXELS = {int(limit):,}), but got {text!r}")
    return side


def output_folder(text: str) -> str:
    """Parse ``--out`` for argparse: a non-empty path (``""`` would be the current folder).

    A blank name such as ``" "`` is a valid folder name, so it is accepted.
    """
    if not text:
        raise argparse.ArgumentTypeError(
            f"should be a folder path, but got {text!r}; pass --out DIR ('.' for the current "
            "folder)")
    return text


def add_run_arguments(
    parser: argparse.ArgumentParser, *, epochs: int | None, lr: float | None,
    batch_size: int | None, lr_help: str | None = None, batch_help: str | None = None,
    epochs_help: str | None = None,
) -> None:
    """Add the options every training command shares, with these defaults.

    ``--root``, ``--epochs``, ``--lr``, ``--batch-size``, ``--seed``, ``--device`` and
    ``-q``/``-v`` (mutually exclusive). Numbers are checked while parsing: a bad value is a
    usage error (exit 2) naming the option and the value.
    """
    parser.add_argument("--root", help="cache home (default $DATAFERRY_HOME or ~/.cache/dataferry)")
    parser.add_argument("--epochs", type=positive_int, default=epochs,
                        help=epochs_help or f"passes over the training data (default {epochs})")
    parser.add_argument("--lr", type=positive_float, default=lr,
                        help=lr_help or f"learning rate (default {lr})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help=batch_help or f"training batch size (default {batch_size})")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, shuffles, splits")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when present), cpu, cuda or cuda:N")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true",
                           help="no progress: warnings, errors and the result lines only")
    verbosity.add_argument("-v", "--verbose", action="store_true",
                           help="debug logging of every package, with timestamps")


def make_output_dir(path: str | os.PathLike[str], *, flag: str = "--out") -> Path:
    """Create a command's output folder; an unusable path is an ``OSError`` saying which flag.

    Raises:
        OSError: the folder cannot be created (a file in the way, no permission...).
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(
            f"cannot create the output folder {folder} ({err.strerror or err}); "
            f"pass {flag} a folder you can write to"
        ) from err
    return folder


def describe_error(err: BaseException, *, offline_hint: str | None = None) -> str:
    """Return the one ``error: …`` line for a caught failure.

    Args:
        err: the caught exception.
        offline_hint: appended after "without network access, " when ``err`` is a failed
            download (``loaders.DownloadError``): what to run instead on local data.
    """
    from loaders.errors import DownloadError

    text = f"error: {worker_error_message(err)}"
    if offline_hint and isinstance(err, DownloadError):
        text += f"; without network access, {offline_hint}"
    return text


def memory_error_line(*, image_size: int | None, batch_size: int | None) -> str:
    """Return the one ``error:`` line for a ``MemoryError`` in ``training fit``.

    Example:
        >>> memory_error_line(image_size=6000, batch_size=None)
        'error: out of memory with --image-size 6000 (6000 x 6000 pixels a photo); pass a smaller --image-size, or a smaller --batch-size'
    """
    size = (f"--image-size {image_size} ({image_size} x {image_size} pixels a photo)"
            if image_size else "these settings")
    batch = f" (now {batch_size})" if batch_size else ""
    return (f"error: out of memory with {size}; pass a smaller --image-size, or a smaller "
            f"--batch-size{batch}")


def available_memory_bytes() -> int | None:
    """Memory a new allocation can use: ``MemAvailable`` (Linux), capped by ``ulimit -v``."""
    found: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        found += [soft] if soft != resource.RLIM_INFINITY else []
    except (ImportError, OSError, ValueError):
        pass
    return min(found) if found else None


def check_batch_memory(*, side: tuple[int, int], channels: int, batch_size: int,
                       image_size: int | None) -> None:
    """Refuse, before training, a float32 batch of images larger than the memory left.

    Raises:
        TrainingError: ``batch_size x H x W x channels x 4`` bytes exceed
            :func:`available_memory_bytes`.
    """
    from training.errors import TrainingError

    need = batch_size * side[0] * side[1] * channels * 4
    free = available_memory_bytes()
    if free is not None and need > free:
        flag = f"--image-size {image_size}" if image_size else f"images of {side[0]}x{side[1]}"
        raise TrainingError(
            f"expected a batch of {batch_size} images to fit in memory but with {flag} it needs "
            f"{need / 2**30:.1f} GiB and {free / 2**30:.1f} GiB are available; pass a smaller "
            "--image-size (or --batch-size)")


# torch re-raises a DataLoader worker's exception as the same type whose message is
# "Caught X in DataLoader worker process N.\nOriginal Traceback ...": both tracebacks, as text.
# When X cannot be rebuilt from one string (UnicodeDecodeError, UnsafeNameError(name, reason))
# torch raises a RuntimeError with that message instead.
_WORKER_WRAPPED = re.compile(r"Caught (\w+) in DataLoader worker process \d+\.\nOriginal Traceback")


def is_worker_error(err: BaseException) -> bool:
    """Whether ``err`` is torch's copy of a DataLoader worker's exception (any type)."""
    return bool(_WORKER_WRAPPED.match(str(err)))


def worker_error_message(err: BaseException) -> str:
    r"""Return ``err``'s message, unwrapped from torch's copy of a DataLoader worker's exception.

    With ``num_workers > 0`` a worker's ``ShardError("shard 3 failed ...")`` reaches the main
    process as ``ShardError("Caught ShardError in DataLoader worker process 0. Original
    Traceback ... datasets.errors.ShardError: shard 3 failed ...")`` (or as a ``RuntimeError``
    when torch cannot rebuild the type): 40 lines. This returns the original message (the
    last ``X: ...`` of the worker's traceback, for the type ``X`` named after "Caught"), its
    lines joined into one, as with ``num_workers=0``. Other messages are returned as they are.

    Example:
        >>> wrapped = RuntimeError("Caught ValueError in DataLoader worker process 1.\n"
        ...                        "Original Traceback (most recent call last):\n  File ...\n"
        ...                        "ValueError: bad label 7\nin shard 2\n")
        >>> worker_error_message(wrapped)
        'ValueError: bad label 7 in shard 2'
    """
    text = str(err)
    caught = _WORKER_WRAPPED.match(text)
    if not caught:
        return text
    # the last one: a chained traceback ends with the exception that was raised
    found = [*re.finditer(rf"\n(?:[\w.]+\.)?{re.escape(caught[1])}: ", text)]
    if not found:
        return text
    message = " ".join(line.strip() for line in text[found[-1].end():].strip().splitlines())
    return message if caught[1] == type(err).__name__ else f"{caught[1]}: {message}"


RUN_INFO_NAME = ".dataferry-run.json"  # who holds a run folder: pid, host, start time


@contextmanager
def hold_run_folder(folder: Path, *, command: str = "python -m training fit") -> Iterator[Path]:
    """Hold ``folder`` for one run: a second run into it fails at once instead of overwriting.

    The lock is ``loaders.lock``'s (an OS file lock: a killed run never leaves it stale);
    beside it a small file names the holder, so the refusal can say which process it is.

    Raises:
        TrainingError: another process holds the folder.
    """
    from loaders.errors import LockTimeoutError
    from loaders.lock import locked
    from training.errors import TrainingError

    info = folder / RUN_INFO_NAME
    quiet = _DropLockWaitWarning()
    lock_log = logging.getLogger("loaders.lock")
    with ExitStack() as held:
        lock_log.addFilter(quiet)  # timeout 0: there is no wait to announce
        try:
            held.enter_context(locked(folder / "run", timeout_s=0,
                                      what=f"training into {folder}"))
        except LockTimeoutError as err:
            raise TrainingError(
                f"the run folder {folder} is in use by {_holder(info)}; wait for that run to "
                "finish or stop it, or pass another --out"
            ) from err
        finally:
            lock_log.removeFilter(quiet)
        info.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                    "command": command}) + "\n")
        try:
            yield folder
        finally:
            info.unlink(missing_ok=True)


class _DropLockWaitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "waiting for it" not in record.getMessage()


def _holder(info: Path) -> str:
    try:
        who = json.loads(info.read_text())
        return (f"another training run (pid {who['pid']} on {who['host']}, started "
                f"{who['started']}: {who['command']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another training run"


def interrupted_line(out: Path | None, command: str) -> str:
    """Return the one line a command prints on Ctrl-C: what is kept and how to resume."""
    from training.checkpoint import CHECKPOINT_NAME

    checkpoint = out / CHECKPOINT_NAME if out is not None else None
    if checkpoint is not None and checkpoint.is_file():
        return (f"interrupted: the last finished epoch is kept in {checkpoint}; to continue, "
                f"run: {command} --resume")
    return f"interrupted: no epoch had finished, nothing was kept; run again: {command}"
