"""What a CLI does when the reader of its output goes away (``… --list | head -1``).

Python ignores SIGPIPE, so a write to a closed pipe raises :class:`BrokenPipeError`, and the
final flush at exit would report it again. The CLIs catch it around their work and return
:func:`closed_stdout_exit` instead: no traceback, no ``error:`` line, and the exit code a tool
killed by SIGPIPE gets in a shell (128 + 13 = 141), so ``set -o pipefail`` scripts see the
same status as with ``cat`` or ``grep``.
"""

from __future__ import annotations

import io
import os
import sys

EXIT_CLOSED_STDOUT = 141
"""The exit code when stdout was closed early: 128 + SIGPIPE, as a shell reports it."""


def closed_stdout_exit() -> int:
    """Point stdout at ``os.devnull`` so nothing more fails on it; return 141.

    Call it from an ``except BrokenPipeError`` around a CLI's output, and return its value
    from ``main``.

    Returns:
        :data:`EXIT_CLOSED_STDOUT`.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):  # replaced or closed stdout
        fd = None
    if fd is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)  # what is still buffered is flushed into devnull at exit
        finally:
            os.close(devnull)
    return EXIT_CLOSED_STDOUT
