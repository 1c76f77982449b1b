"""Bad input: one line naming the problem, exit status 2, nothing written, no traceback."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from capledger import Ledger

Invoke = Callable[..., Result]

BAD_INPUT = [
    # (arguments, words the one-line error must contain)
    (["limits", "set", "user", "--usd", "5"], "invalid scope 'user'"),
    (["limits", "set", "User:a", "--usd", "5"], "invalid scope"),
    (["limits", "set", "user:" + "x" * 201, "--usd", "5"], "invalid scope"),
    (["limits", "set", "user:a", "--usd", "abc"], "'abc' is not a number"),
    (["limits", "set", "user:a", "--usd", "-1"], "must not be negative"),
    (["limits", "set", "user:a", "--usd", "nan"], "must be finite"),
    (["limits", "set", "user:a", "--usd", "inf"], "must be finite"),
    (["limits", "set", "user:a", "--usd", "1e10"], "past the bound"),
    (["limits", "set", "user:a", "--tokens", "1.5"], "whole number"),
    (["limits", "set", "user:a", "--requests", "x"], "is not a number"),
    (["limits", "set", "user:a", "--usd", "5", "--period", "fortnight"], "unknown period"),
    (["limits", "set", "user:a", "--usd", "5", "--period", "0d"], "unknown period"),
    (["limits", "set", "user:a", "--usd", "5", "--tz", "Mars/Base"], "unknown time zone"),
    (["limits", "set", "user:a"], "give at least one cap"),
    (["limits", "remove", "user:a", "--period", "day", "--unit", "bananas"], "unknown unit"),
    (["limits", "remove", "user:a"], "Missing option '--period'"),
    (["limits", "remove", "user:a", "--period", "often"], "unknown period"),
    (["limits", "list", "--scope", "nope"], "invalid scope"),
    (["balance", "BAD"], "invalid scope 'BAD'"),
    (["balance", "user:a", "--unit", "euros"], "unknown unit"),
    (["holds", "--state", "weird"], "'weird' is not one of"),
    (["holds", "--limit", "0"], "0 is not in the range"),
    (["holds", "--scope", ":x"], "invalid scope"),
    (["report", "--since", "2025-13-01"], "not an ISO 8601 date"),
    (["report", "--until", "yesterday"], "not an ISO 8601 date"),
    (["report", "--since", "2026-02-01", "--until", "2026-01-01"], "must be before --until"),
    (["report", "--group-by", "model,,scope"], "bad group-by key ''"),
    (["report", "--group-by", "model,model"], "must be distinct"),
    (["report", "--format", "xml"], "'xml' is not one of"),
    (["limits", "set", "user:a", "--usd", "5", "--tz", "Europe/Paris"], "calendar periods"),
    (["limits", "set", "user:a", "--usd", "5", "--period", "30d", "--tz", "UTC"], "from creation"),
    (["estimate", "--model", "gpt-4o-mini"], "standard input is not JSON"),
    (["prices", "show", "no-such-model"], "price it in a --prices-file"),
    (["prices", "cost", "no-such-model", "--input", "1", "--output", "1"], "--prices-file"),
    (["report", "--since", "2026-01-01T00:00:00+25:00"], "not an ISO 8601 date"),
    (["demo", "--agents", "0"], "0 is not in the range"),
    (["nosuch"], "No such command 'nosuch'"),
    (["--url", "foo://x", "balance", "user:a"], "unknown store URL 'foo://x'"),
    (["--url", "sqlite:///no/such/folder/x.db", "verify"], "does not exist"),
]


def _fingerprint(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _check_one_line_error(result: Result, words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert words in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("args", "words"), BAD_INPUT, ids=[" ".join(a)[:50] for a, _ in BAD_INPUT])
def test_bad_input_on_a_fresh_folder_creates_nothing(
    cli: Invoke, db_path: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    result = cli(*args)
    _check_one_line_error(result, words)
    assert not db_path.exists()
    assert list(tmp_path.iterdir()) == []  # no default capledger.db or demo file either


@pytest.mark.parametrize(("args", "words"), BAD_INPUT, ids=[" ".join(a)[:50] for a, _ in BAD_INPUT])
def test_bad_input_leaves_an_existing_ledger_untouched(
    cli: Invoke, url: str, db_path: Path, args: list[str], words: str
) -> None:
    with Ledger(url) as ledger:
        ledger.set_limit("user:a", usd="1", period="day")
        ledger.reserve("user:a", usd="0.5").settle(usd="0.25")
    before = _fingerprint(db_path)
    result = cli(*args)
    _check_one_line_error(result, words)
    assert _fingerprint(db_path) == before
    with Ledger(url) as ledger:
        assert [(limit.scope, limit.period, limit.cap) for limit in ledger.limits()] == [
            ("user:a", "day", 1)
        ]


def test_a_group_without_a_command_shows_its_help(cli: Invoke) -> None:
    result = cli("limits")
    assert "Commands:" in result.output
    assert "set" in result.output and "remove" in result.output


def test_python_remedies_become_command_line_remedies(cli: Invoke) -> None:
    result = cli("prices", "show", "no-such-model")
    assert result.exit_code == 2
    assert "Pricebook." not in result.stderr and "set_price" not in result.stderr
    assert '[prices."MODEL"]' in result.stderr


def test_an_unknown_group_by_key_lists_the_valid_ones(cli: Invoke, url: str) -> None:
    with Ledger(url) as ledger:
        ledger.reserve("user:a", usd="0.5", tags={"model": "m1", "feature": "f"}).settle()
    result = cli("report", "--group-by", "scope,modle")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[0].startswith(
        "Error: unknown group-by key 'modle': use scope, kind, unit, day, hour, month, "
        "or a tag of the settled calls in that range (feature, model)"
    )
    assert cli("report", "--group-by", "scope,model").exit_code == 0
