"""Fixtures for the CLI tests: a clean environment, a temp folder, a runner on a SQLite file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from capledger import Ledger
from capledger.cli import main

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A CAPLEDGER_* variable in the developer's shell must not change what a test sees,
    # and a command that falls back to the default URL must write into tmp_path.
    for name in list(os.environ):
        if name.startswith("CAPLEDGER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's ledger lives (not created until something opens it)."""
    return tmp_path / "ledger.db"


@pytest.fixture
def url(db_path: Path) -> str:
    """The ``sqlite:///`` URL of ``db_path`` (absolute)."""
    return f"sqlite:///{db_path}"


@pytest.fixture
def cli(url: str) -> Invoke:
    """Run ``capledger ARGS...`` on the test's SQLite file; returns click's ``Result``."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env={"CAPLEDGER_URL": url, **(env or {})})

    return invoke


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    """A ``Ledger`` on the same file, to set up state and check what the CLI wrote."""
    with Ledger(url) as opened:
        yield opened
