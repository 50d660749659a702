"""``python -m benchmarks``: run every ``benchmarks/bench_*.py``, record the machine, write a table.

Each script runs in its own process with ``--json PATH`` (and ``--quick`` in quick mode),
``--runs`` times; every figure's samples over all runs give its median and spread, and the
median is checked against the figure's target. The machine (CPU model, cores, memory, the
file system of the work folder, Python/torch/numpy versions) and the load average before and
after are recorded, because a figure from a busy machine says little. Results go to
``benchmarks/results/<date>-<host>.json`` and a Markdown table beside it (``.md``) whose rows
give figure, median, spread, target and met/MISSED: the README's table is pasted from one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import met

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TAIL_CHARS = 4000  # of each script's output kept in the JSON


def discover(folder: Path = HERE) -> list[Path]:
    """Return the bench scripts in ``folder``, sorted by name."""
    return sorted(folder.glob("bench_*.py"))


def bench_name(path: Path) -> str:
    return path.stem.removeprefix("bench_")


def machine(workdir: Path) -> dict[str, Any]:
    """Describe this machine: what a reader needs to judge the figures."""
    info: dict[str, Any] = {
        "host": socket.gethostname(), "platform": platform.platform(),
        "cpu_model": _cpu_model(), "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(), "workdir": str(workdir), "workdir_fs": _fs_kind(workdir),
        "python": platform.python_version(),
    }
    for module in ("numpy", "torch"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _fs_kind(path: Path) -> str:
    """The file system type of ``path`` and, for a block device, whether it spins."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    real = os.path.realpath(path)
    best = max((m for m in mounts if real == m[1] or real.startswith(m[1].rstrip("/") + "/")),
               key=lambda m: len(m[1]), default=None)
    if best is None:
        return "unknown"
    device, fstype = best[0], best[2]
    rotational = Path("/sys/block") / Path(device).name / "queue" / "rotational"
    if rotational.is_file():
        spins = rotational.read_text().strip() == "1"  # virtual disks often say 1 too
        return f"{fstype} on {device} ({'rotational' if spins else 'non-rotational'})"
    return f"{fstype} on {device}"


def run_script(script: Path, *, quick: bool, workdir: Path, timeout_s: float,
               extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run one bench script once; return its figures, exit code, time and output tail."""
    with tempfile.TemporaryDirectory(prefix="bench-json-", dir=workdir) as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [sys.executable, str(script), "--json", str(out), *(["--quick"] if quick else []), *extra]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout_s)
            code, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as err:
            code, output = -1, f"timed out after {timeout_s:g} s\n{err.stdout or ''}"
        seconds = time.perf_counter() - started
        figures, problem = _read_figures(out)
    return {"exit_code": code, "seconds": round(seconds, 2), "figures": figures, "problem": problem,
            "output_tail": output[-TAIL_CHARS:] if isinstance(output, str) else ""}


def _read_figures(path: Path) -> tuple[list[dict[str, Any]], str]:
    """The figures a script wrote with benchmarks.report.emit, or why there are none."""
    if not path.is_file():
        return [], ""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return [], f"its --json file is not JSON ({err})"
    figures = payload.get("figures") if isinstance(payload, dict) else None
    if not isinstance(figures, list) or not all(isinstance(f, dict) and "name" in f and "value" in f
                                                for f in figures):
        return [], "its --json file is not in benchmarks.report's format (call benchmarks.report.emit)"
    return figures, ""


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per figure name: median and spread of all its samples over the runs."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        for fig in run["figures"]:
            row = rows.setdefault(fig["name"], {"name": fig["name"], "unit": fig.get("unit", ""),
                                                "target": fig.get("target"), "values": [],
                                                "samples": [], "note": fig.get("note", "")})
            row["values"].append(fig["value"])
            row["samples"].extend(fig.get("samples") or [fig["value"]])
    for row in rows.values():
        row["median"] = statistics.median(row["values"])
        row["min"], row["max"] = min(row["samples"]), max(row["samples"])
        row["met"] = met(row["median"], row["target"])
    return list(rows.values())


def markdown(result: dict[str, Any]) -> str:
    """The results table, with the date and machine line, as pasted into the README."""
    m = result["machine"]
    lines = [
        f"Run {result['date']} on {m['host']}: {m['cpu_model']}, {m['cpus_usable']} usable CPUs, "
        f"{m['memory_gib']} GiB, work folder {m['workdir_fs']}; Python {m['python']}, "
        f"torch {m['torch']}, numpy {m['numpy']}; load average {result['load_before'][0]:.2f} before, "
        f"{result['load_after'][0]:.2f} after; {'--quick' if result['quick'] else 'full'} mode, "
        f"{result['runs']} run(s) per script.",
        *([f"Extra arguments: {_extra_line(result['extra_args'])}."] if result.get("extra_args") else []),
        "",
        "| bench | figure | value (median of runs) | spread of samples (min–max) | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for bench in result["benches"]:
        if bench["error"]:
            lines.append(f"| {bench['name']} | {bench['error']} | | | | FAILED |")
        for row in bench["rows"]:
            verdict = {True: "met", False: "**MISSED**", None: "(reference)"}[row["met"]]
            value = f"{_num(row['median'])} {row['unit']}".strip()
            lines.append(
                f"| {bench['name']} | {_cell(row['name'])} | {value} | "
                f"{_num(row['min'])}–{_num(row['max'])} | {row['target'] or '–'} | {verdict} |"
            )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a '|' in a figure's name would split the table row


def _extra_line(extra: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {' '.join(args)}" for name, args in extra.items())


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def run_all(scripts: list[Path], *, quick: bool, runs: int, workdir: Path, timeout_s: float,
            extra: dict[str, list[str]] | None = None, log: Any = print) -> dict[str, Any]:
    """Run ``scripts`` ``runs`` times each and return the whole result (machine included)."""
    result: dict[str, Any] = {
        "format": 1, "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": quick, "runs": runs, "machine": machine(workdir),
        "load_before": list(os.getloadavg()), "benches": [], "extra_args": extra or {},
    }
    for script in scripts:
        attempts = []
        for index in range(runs):
            log(f"[{bench_name(script)}] run {index + 1}/{runs}", flush=True)
            attempts.append(run_script(script, quick=quick, workdir=workdir, timeout_s=timeout_s,
                                       extra=(extra or {}).get(bench_name(script), [])))
        failed = [a for a in attempts if a["exit_code"] != 0]
        odd = [a["problem"] for a in attempts if a["problem"]]
        error = ""
        if failed:
            error = f"exit code {failed[0]['exit_code']}: {_last_line(failed[0]['output_tail'])}"
        elif odd:
            error = odd[0]
        elif not any(a["figures"] for a in attempts):
            error = "no figures (does the script call benchmarks.report.emit with --json?)"
        result["benches"].append({"name": bench_name(script), "script": script.name, "error": error,
                                  "rows": aggregate(attempts), "runs": attempts})
    result["load_after"] = list(os.getloadavg())
    return result


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "").replace("|", "/")[:200]


def write(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``<date>-<host>.json`` and ``.md`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{result['date'][:10]}-{result['machine']['host']}"
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result), encoding="utf-8")
    return json_path, md_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every benchmarks/bench_*.py, record the machine, and write "
                    "benchmarks/results/<date>-<host>.json and .md (median, spread, target).",
        epilog='example: python -m benchmarks --quick --only extract --args "extract=--workdir /dev/shm"',
    )
    parser.add_argument("--quick", action="store_true", help="each script's --quick mode (minutes in all)")
    parser.add_argument("--only", action="append", default=None, metavar="NAME",
                        help="run only this bench (extract or bench_extract); repeatable")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs of each script (default: 3, or 1 with --quick)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the scripts' temporary JSON goes (default: the temp folder)")
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per script run (1800)")
    parser.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                        help='more arguments for one bench, e.g. "extract=--workdir /dev/shm"; repeatable')
    return parser


def parse_extra(items: list[str], names: list[str]) -> dict[str, list[str]]:
    """``["extract=--workdir /dev/shm"]`` -> ``{"extract": ["--workdir", "/dev/shm"]}``."""
    extra: dict[str, list[str]] = {}
    for item in items:
        name, sep, args = item.partition("=")
        name = name.strip().removeprefix("bench_")
        if not sep or name not in names:
            raise ValueError(f"--args should be NAME=ARGS with NAME one of {', '.join(names)}, "
                             f"but got --args {item!r}")
        extra.setdefault(name, []).extend(shlex.split(args))
    return extra


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scripts = discover()
    if args.only:
        wanted = {name.removeprefix("bench_").removesuffix(".py") for name in args.only}
        unknown = wanted - {bench_name(s) for s in scripts}
        if unknown:
            print(f"error: no bench named {', '.join(sorted(unknown))}; there are "
                  f"{', '.join(bench_name(s) for s in scripts)}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if bench_name(s) in wanted]
    runs = args.runs or (1 if args.quick else 3)
    if runs < 1:
        print(f"error: --runs should be a positive int, but got --runs {runs}", file=sys.stderr)
        return 2
    try:
        extra = parse_extra(args.args, [bench_name(s) for s in discover()])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = run_all(scripts, quick=args.quick, runs=runs, workdir=args.workdir,
                     timeout_s=args.timeout_s, extra=extra)
    json_path, md_path = write(result, args.out)
    print(markdown(result))
    print(f"wrote {json_path} and {md_path}")
    return 1 if any(b["error"] for b in result["benches"]) else 0
