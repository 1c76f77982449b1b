"""Read-only commands on a path with no ledger: exit 2, one line naming the path, no file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from capledger import Ledger
from capledger.cli import main

Invoke = Callable[..., Result]

READ_ONLY = [
    ["balance", "user:a"],
    ["holds"],
    ["holds", "--state", "all", "--newest-first"],
    ["report"],
    ["report", "--group-by", "model", "--since", "2026-01-01"],
    ["verify"],
    ["limits", "list"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_a_mistyped_path_says_there_is_no_ledger(
    cli: Invoke, db_path: Path, tmp_path: Path, args: list[str]
) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"Error: there is no ledger at '{db_path}' (sqlite:///{db_path}): check --url or "
        "CAPLEDGER_URL; 'capledger limits set' or 'capledger migrate' creates one"
    )
    assert list(tmp_path.iterdir()) == []  # no file, no -wal, no -shm


def test_the_default_url_is_not_created_by_a_read_only_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["balance", "user:a"])  # sqlite:///capledger.db
    assert result.exit_code == 2
    assert "there is no ledger at 'capledger.db'" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [["migrate"], ["limits", "set", "user:a", "--usd", "1"], ["sweep"]],
    ids=" ".join,
)
def test_migrate_and_writing_commands_create_the_ledger(
    cli: Invoke, db_path: Path, args: list[str]
) -> None:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert db_path.exists()
    assert cli("verify").exit_code == 0  # and read-only commands then find it


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_work_on_an_existing_ledger(
    cli: Invoke, url: str, args: list[str]
) -> None:
    with Ledger(url) as ledger:
        ledger.reserve("user:a", usd="0.5", tags={"model": "m"}).settle(usd="0.25")
    result = cli(*args)
    assert result.exit_code == 0, result.output
