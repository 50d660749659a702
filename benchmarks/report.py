"""Figures of one benchmark script, written as JSON for ``python -m benchmarks``.

Every ``bench_*.py`` takes ``--json PATH`` and, at its end, calls :func:`emit` with its figures;
the runner reads the file, repeats the script, and reports median, spread and target per figure.
A script run by hand without ``--json`` prints as before and writes nothing.

Example:
    >>> row = figure("ours / GNU tar", 0.62, unit="x", target=">= 0.5", samples=[0.6, 0.62])
    >>> row["met"], row["target"]
    (True, '>= 0.5')
"""

from __future__ import annotations

import argparse
import json
import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

FORMAT = 1
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--json PATH`` (where to write the figures) to a bench script's parser."""
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the figures as JSON to PATH (for python -m benchmarks)")


def met(value: float, target: str | None) -> bool | None:
    """Tell whether ``value`` meets ``target`` (``">= 0.5"``, ``"<= 1.0"``...); None without one."""
    if not target:
        return None
    op, _, bound = target.strip().partition(" ")
    if op not in _OPS:
        raise ValueError(f"target should start with one of {sorted(_OPS)}, but got target={target!r}")
    return _OPS[op](value, float(bound.replace(",", "").replace("_", "")))


def figure(
    name: str,
    value: float,
    *,
    unit: str = "",
    target: str | None = None,
    samples: Sequence[float] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Return one figure: the headline ``value``, its ``target`` and the timings behind it.

    Args:
        name: what it measures, e.g. ``"ours / GNU tar, files/s"``.
        value: the figure this run reports (a ratio, a rate...).
        unit: ``x``, ``files/s``, ``MB/s``...
        target: ``">= 0.5"`` style, or None for a figure given for reference.
        samples: the repeated measurements ``value`` comes from, if there are several.
        note: a short remark (which baseline, which data).
    """
    return {
        "name": name, "value": float(value), "unit": unit, "target": target,
        "met": met(value, target), "samples": [float(s) for s in (samples or [value])],
        "note": note,
    }


def emit(
    bench: str, figures: list[dict[str, Any]], path: str | os.PathLike[str] | None,
    *, extra: dict[str, Any] | None = None,
) -> None:
    """Write ``figures`` of ``bench`` to ``path`` as JSON (nothing when ``path`` is None).

    ``extra`` keeps a script's own detailed results (its rows) beside the figures.
    """
    if path is None:
        return
    payload = {"format": FORMAT, "bench": bench, "figures": figures, **({"extra": extra} if extra else {})}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    os.replace(tmp, target)
