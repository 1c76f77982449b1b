"""The pricing commands are optional: the CLI works with or without them."""

from __future__ import annotations

import importlib
from types import ModuleType

import click
import pytest
from click.testing import CliRunner

from capledger.cli import add_pricing_commands, main


def _group() -> click.Group:
    @click.group()
    def group() -> None:
        """A fresh group."""

    return group


def test_the_real_cli_has_prices_and_estimate_when_the_module_is_there() -> None:
    try:
        importlib.import_module("capledger.cli.prices")
    except ImportError:
        pytest.skip("capledger.cli.prices is not importable here")
    assert {"prices", "estimate"} <= set(main.commands)


def test_a_missing_module_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> ModuleType:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(importlib, "import_module", missing)
    group = _group()
    add_pricing_commands(group)
    assert group.commands == {}


def test_a_missing_dependency_leaves_commands_that_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str) -> ModuleType:
        raise ModuleNotFoundError("No module named 'genai_prices'", name="genai_prices")

    monkeypatch.setattr(importlib, "import_module", broken)
    group = _group()
    add_pricing_commands(group)
    assert set(group.commands) == {"prices", "estimate"}
    result = CliRunner().invoke(group, ["prices", "list"])
    assert result.exit_code == 1
    assert "pip install 'capledger[prices]'" in result.output
