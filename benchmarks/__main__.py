"""``python -m benchmarks``: every benchmark, one table (see :mod:`benchmarks.runner`)."""

from benchmarks.runner import main

raise SystemExit(main())
