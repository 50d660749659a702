"""What a CLI prints and returns on Ctrl-C: one line saying what is kept and how to resume.

Downloads write into ``NAME.part`` beside the target and resume from it, so the same command
run again carries on where it stopped. The CLIs of :mod:`loaders` and :mod:`datasets` catch
:class:`KeyboardInterrupt` around their work, print :func:`interrupted_line` to stderr and
return :data:`EXIT_INTERRUPTED` (128 + SIGINT, what a shell reports for a tool killed by
Ctrl-C); ``training`` adds what its checkpoint keeps.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 130
"""The exit code on Ctrl-C: 128 + SIGINT, as a shell reports it."""


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """Return the shell line that runs ``python -m module`` with ``argv`` (``sys.argv`` if None).

    Example:
        >>> command_line("datasets.report", ["notmnist", "--download"])
        'python -m datasets.report notmnist --download'
    """
    given = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", "-m", module, *given])


def interrupted_line(command: str) -> str:
    """Return the one line a CLI prints on Ctrl-C: partial downloads are kept, how to resume.

    Example:
        >>> interrupted_line("python -m loaders.download notmnist")[:40]
        'interrupted; what was downloaded is kept'
    """
    return f"interrupted; what was downloaded is kept: run the same command to resume: {command}"
