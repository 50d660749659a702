"""python -m benchmarks: discovery, flags, JSON and Markdown plumbing, with tiny fake bench scripts.

Timings are never checked here (the real scripts are run by hand or by the lead); the fake
scripts report fixed figures so that medians, spreads and met/MISSED can be asserted exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import runner
from benchmarks.report import emit, figure, met

REPO = Path(__file__).resolve().parents[3]

FAKE = '''
import argparse, sys
from benchmarks.report import add_json_flag, emit, figure
parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
parser.add_argument("--scale", type=float, default=1.0)
add_json_flag(parser)
args = parser.parse_args()
speed = (0.4 if args.quick else 0.6) * args.scale
print("fake bench ran", "quick" if args.quick else "full")
emit("fake", [figure("speed ours / theirs", speed, unit="x", target=">= 0.5", samples=[speed, speed + 0.1]),
              figure("files/s", 1234.0, unit="files/s")], args.json)
'''
BROKEN = 'import sys\nprint("error: no data here; pass --data")\nsys.exit(1)\n'
FOREIGN = ('import argparse, json\np = argparse.ArgumentParser(); p.add_argument("--json"); '
           'p.add_argument("--quick", action="store_true")\na = p.parse_args()\n'
           'open(a.json, "w").write(json.dumps([{"system": "ours", "rate": 1.0}]))\n')
SILENT = 'import argparse\np = argparse.ArgumentParser(); p.add_argument("--json"); p.add_argument("--quick", action="store_true"); p.parse_args()\n'


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "bench_fake.py").write_text(FAKE)
    (folder / "bench_broken.py").write_text(BROKEN)
    (folder / "bench_silent.py").write_text(SILENT)
    (folder / "bench_foreign.py").write_text(FOREIGN)
    (folder / "helper.py").write_text("raise SystemExit('not a bench: never run')\n")
    return folder


def test_discover_finds_bench_scripts_only(bench_dir: Path) -> None:
    assert [p.name for p in runner.discover(bench_dir)] == [
        "bench_broken.py", "bench_fake.py", "bench_foreign.py", "bench_silent.py"]
    assert {runner.bench_name(p) for p in runner.discover()} >= {"download", "epoch", "extract", "fit", "padding"}


@pytest.mark.parametrize("quick,expected", [(True, 0.45), (False, 0.65)])
def test_run_all_aggregates_runs_and_checks_targets(bench_dir: Path, tmp_path: Path, quick: bool, expected: float) -> None:
    scripts = runner.discover(bench_dir)
    result = runner.run_all(scripts, quick=quick, runs=2, workdir=tmp_path, timeout_s=60, log=lambda *a, **k: None)
    benches = {b["name"]: b for b in result["benches"]}
    fake = benches["fake"]
    assert fake["error"] == "" and len(fake["runs"]) == 2
    assert all(("quick" if quick else "full") in run["output_tail"] for run in fake["runs"])
    speed = next(row for row in fake["rows"] if row["name"] == "speed ours / theirs")
    assert speed["median"] == pytest.approx(expected - 0.05)
    assert (speed["min"], speed["max"]) == pytest.approx((expected - 0.05, expected + 0.05))
    assert speed["met"] is (not quick)  # 0.4 misses >= 0.5; 0.6 meets it
    assert speed["target"] == ">= 0.5"
    assert benches["broken"]["error"] == "exit code 1: error: no data here; pass --data"
    assert benches["silent"]["error"].startswith("no figures")
    assert "not in benchmarks.report's format" in benches["foreign"]["error"]
    for key in ("cpu_model", "cpus", "memory_gib", "workdir_fs", "python", "torch", "numpy"):
        assert key in result["machine"]
    assert len(result["load_before"]) == 3 and len(result["load_after"]) == 3


def test_write_makes_json_and_markdown_named_by_date_and_host(bench_dir: Path, tmp_path: Path) -> None:
    result = runner.run_all(runner.discover(bench_dir), quick=True, runs=1, workdir=tmp_path, timeout_s=60,
                            extra={"fake": ["--scale", "2"]}, log=lambda *a, **k: None)
    json_path, md_path = runner.write(result, tmp_path / "results")
    host = result["machine"]["host"]
    assert json_path.name == f"{result['date'][:10]}-{host}.json" and md_path.suffix == ".md"
    fake = next(b for b in json.loads(json_path.read_text())["benches"] if b["name"] == "fake")
    assert fake["rows"][0]["median"] == pytest.approx(0.8)
    table = md_path.read_text()
    assert "| fake | speed ours / theirs | 0.8 x | 0.8–0.9 | >= 0.5 | met |" in table
    assert "| fake | files/s | 1,234 files/s | 1,234–1,234 | – | (reference) |" in table
    assert "| broken | exit code 1: error: no data here; pass --data | | | | FAILED |" in table
    assert "Extra arguments: fake: --scale 2." in table
    assert f"on {host}:" in table and "load average" in table and "--quick mode" in table


def test_missed_target_is_marked_in_the_table(bench_dir: Path, tmp_path: Path) -> None:
    result = runner.run_all([bench_dir / "bench_fake.py"], quick=True, runs=1, workdir=tmp_path, timeout_s=60,
                            log=lambda *a, **k: None)
    assert "| **MISSED** |" in runner.markdown(result)


def test_cli_only_and_usage_errors(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nosuch", "--out", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2 and "error: no bench named nosuch; there are " in run.stderr
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--args", "nosuch=--x", "--out", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2 and "--args should be NAME=ARGS" in run.stderr
    assert not list(tmp_path.iterdir())


def test_report_helpers(tmp_path: Path) -> None:
    assert met(0.5, ">= 0.5") is True and met(0.49, ">= 0.5") is False
    assert met(0.2, "<= 0.2") is True and met(25_001, ">= 25,000") is True and met(1.0, None) is None
    with pytest.raises(ValueError, match="target should start with one of"):
        met(1.0, "about 2")
    emit("x", [figure("a", 1.0)], None)  # no path: nothing written, no error
    emit("x", [figure("a", 1.0, target=">= 2")], tmp_path / "sub" / "f.json", extra={"rows": [1]})
    data = json.loads((tmp_path / "sub" / "f.json").read_text())
    assert data["bench"] == "x" and data["figures"][0]["met"] is False and data["extra"] == {"rows": [1]}


def test_markdown_escapes_bars_in_figure_names() -> None:
    result = {"date": "2026-11-29T20:00:00+00:00", "quick": True, "runs": 1, "load_before": [1.0] * 3,
              "load_after": [1.0] * 3, "machine": {"host": "h", "cpu_model": "cpu", "cpus_usable": 2,
              "memory_gib": 4, "workdir_fs": "tmpfs", "python": "3", "torch": "2", "numpy": "1"},
              "benches": [{"name": "fit", "error": "", "rows": runner.aggregate([{"figures": [
                  figure("gap |a - b|, points", 0.1, target="<= 0.5")]}])}]}
    row = runner.markdown(result).splitlines()[-1]
    assert row == "| fit | gap \\|a - b\\|, points | 0.1 | 0.1–0.1 | <= 0.5 | met |"
