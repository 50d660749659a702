"""The ``Example:`` doctests in the docstrings of ``datasets`` and ``training`` run and stay true.

(``loaders`` has its own collector in ``tests/unit/loaders/test_docstring_examples.py``.)
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import datasets
import training

MODULES = sorted(
    info.name
    for package in (datasets, training)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
)


def test_the_collector_finds_the_examples() -> None:
    assert "datasets.loader" in MODULES and "training.fit" in MODULES
    assert "training.examples.linear_regression" in MODULES
    for name in ("datasets.loader", "training.fit"):  # training.fit is also the function's name
        module = importlib.import_module(name)
        assert doctest.testmod(module, verbose=False).attempted >= 3  # examples that really run


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an example that writes relative paths writes here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
