"""Each package's ``__init__`` only imports and sets a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = ("loaders", "datasets", "training")


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__all__ == sorted(package.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete(name: str) -> None:
    package = importlib.import_module(name)
    public = {  # dir(): also the names a package imports on first use (PEP 562 __getattr__)
        attr
        for attr in dir(package)
        if not attr.startswith("_") and not isinstance(getattr(package, attr), types.ModuleType)
        and attr != "annotations"
    }
    assert public == set(package.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    package = importlib.import_module(name)
    for attr in package.__all__:
        assert getattr(package, attr) is not None, f"{name}.{attr}"


@pytest.mark.parametrize("name", PACKAGES)
def test_errors_share_one_root(name: str) -> None:
    errors = importlib.import_module(f"{name}.errors")
    roots = {"loaders": "LoaderError", "datasets": "DatasetError", "training": "TrainingError"}
    root = getattr(errors, roots[name])
    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    own = [c for c in classes if c.__module__ == errors.__name__]
    assert own and all(issubclass(c, root) for c in own)
