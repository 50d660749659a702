"""``python -m training fit …`` (see :mod:`training.cli`)."""

from __future__ import annotations

from training.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
