"""benchmarks/bench_padding.py: its default data path follows the checkout, not /work."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_padding.py"


def test_default_data_is_beside_the_checkout_wherever_it_is(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "repo" / "benchmarks" / "bench_padding.py"
    copy.parent.mkdir(parents=True)
    shutil.copy(BENCH, copy)
    spec = importlib.util.spec_from_file_location("bench_padding_copy", copy)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = tmp_path.resolve() / "elsewhere" / "shared" / "data" / "sms-spam" / "SMSSpamCollection"
    assert module.DEFAULT_DATA == expected
