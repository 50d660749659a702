"""The ``Example:`` doctests in loaders' docstrings run and stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import loaders

MODULES = sorted(info.name for info in pkgutil.iter_modules(loaders.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an example that writes relative paths writes here
    module = importlib.import_module(f"loaders.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of loaders.{name} failed"
