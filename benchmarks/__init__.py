"""Benchmark scripts (``bench_*.py``) and their runner, ``python -m benchmarks``; not installed."""
