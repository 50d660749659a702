"""Children that the Ctrl-C tests interrupt must start with SIGINT's default action.

A shell starts background jobs (``cmd &``, ``nohup``) with SIGINT ignored, children inherit
that, and Python then installs no ``KeyboardInterrupt`` handler: a test run started that way
would see every interrupted child finish instead. ``preexec_fn=default_sigint`` undoes it.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """Give the child process SIGINT's default action (run in it, between fork and exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
