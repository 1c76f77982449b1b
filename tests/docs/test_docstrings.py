"""Every public function, class and method has a docstring.

Public means: named in the ``__all__`` of ``capledger`` or of a public submodule (no
underscore in its dotted name), and, for a class, its own methods and properties whose
names do not start with an underscore. The contract suites' ``test_*`` methods are tests,
named for what they check, and are left out.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any

import pytest

import capledger


def public_modules() -> list[str]:
    """``capledger`` and every submodule without an underscore in its dotted name."""
    names = ["capledger"]
    for info in pkgutil.walk_packages(capledger.__path__, "capledger."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


MODULES = public_modules()


def undocumented(module: ModuleType) -> list[str]:
    """The public names of ``module.__all__`` (and their methods) without a docstring."""
    missing: list[str] = []
    for name in getattr(module, "__all__", []):
        value = getattr(module, name)
        if not (inspect.isfunction(value) or inspect.isclass(value)):
            continue  # constants, modules, type aliases
        if not inspect.getdoc(value):
            missing.append(f"{module.__name__}.{name}")
        if inspect.isclass(value):
            missing += [
                f"{module.__name__}.{name}.{member}" for member in undocumented_members(value)
            ]
    return missing


def undocumented_members(cls: type) -> list[str]:
    """A class's own public methods and properties without a docstring (inherited counts)."""
    missing = []
    for member, raw in vars(cls).items():
        if member.startswith("_"):
            continue
        if cls.__module__.startswith("capledger.testing") and member.startswith("test_"):
            continue
        function: Any = raw.fget if isinstance(raw, property) else getattr(raw, "__func__", raw)
        if not inspect.isfunction(function):
            continue
        if not (function.__doc__ or inspect.getdoc(getattr(cls, member, None))):
            missing.append(member)
    return missing


def test_the_walk_finds_the_public_modules() -> None:
    """The walk sees the package's public modules (an empty walk would pass vacuously)."""
    assert {"capledger", "capledger.ledger", "capledger.pricing", "capledger.cli"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_public_names_have_docstrings(name: str) -> None:
    """Each public function, class and method of the module's ``__all__`` is documented."""
    try:
        module = importlib.import_module(name)
    except ImportError as error:
        # An integration whose optional dependency is not installed in this environment.
        pytest.skip(f"{name} needs {error.name}")
    assert undocumented(module) == []


def test_a_missing_docstring_is_found() -> None:
    """The check fails on an undocumented function and method."""

    def bare() -> None:
        pass

    class Documented:
        """A class."""

        def method(self) -> None:
            pass

    module = ModuleType("capledger_example")
    module.__all__ = ["bare", "Documented"]  # type: ignore[attr-defined]
    module.bare = bare  # type: ignore[attr-defined]
    module.Documented = Documented  # type: ignore[attr-defined]
    assert undocumented(module) == ["capledger_example.bare", "capledger_example.Documented.method"]
