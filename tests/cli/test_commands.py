"""Every ledger command through click's CliRunner, on a SQLite file shared across runs."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result

from capledger import Ledger, ManualClock

Invoke = Callable[..., Result]

JAN_1: datetime = datetime(2026, 1, 1, tzinfo=UTC)


def _json(result_output: str) -> list[dict[str, object]]:
    loaded = json.loads(result_output)
    assert isinstance(loaded, list)
    return loaded


# --- limits -----------------------------------------------------------------------------------


def test_limits_set_list_remove_round_trip(cli: Invoke, ledger: Ledger) -> None:
    result = cli(
        "limits", "set", "user:u_42", "--usd", "5", "--period", "month", "--tz", "Europe/Paris"
    )
    assert result.exit_code == 0, result.output
    assert result.output == "user:u_42: usd cap $5.00 per month (Europe/Paris)\n"

    result = cli(
        "limits",
        "set",
        "user:u_42",
        "--usd",
        "0.10",
        "--tokens",
        "1e6",
        "--requests",
        "50",
        "--period",
        "day",
    )
    assert result.exit_code == 0, result.output
    assert "tokens cap 1,000,000 per day (UTC)" in result.output
    assert "requests cap 50 per day" in result.output

    caps = {(limit.unit, limit.period): limit.cap for limit in ledger.limits("user:u_42")}
    assert caps == {
        ("usd", "month"): Decimal("5"),
        ("usd", "day"): Decimal("0.1"),
        ("tokens", "day"): 1_000_000,
        ("requests", "day"): 50,
    }

    listed = cli("limits", "list")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == ["scope", "unit", "period", "cap", "tz"]
    assert any("$5.00" in line and "Europe/Paris" in line for line in lines)

    removed = cli("limits", "remove", "user:u_42", "--period", "day", "--unit", "tokens")
    assert removed.exit_code == 0
    assert removed.output == "user:u_42: removed 1 cap (tokens cap per day)\n"
    removed = cli("limits", "remove", "user:u_42", "--period", "day")
    assert removed.output == "user:u_42: removed 2 caps (cap per day)\n"
    again = cli("limits", "remove", "user:u_42", "--period", "day")
    assert again.exit_code == 0
    assert "nothing removed" in again.output
    assert {(limit.unit, limit.period) for limit in ledger.limits()} == {("usd", "month")}


def test_limits_list_filters_and_formats(cli: Invoke, ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="1.5", period="day")
    ledger.set_limit("user:b", usd="2", tokens=300, period="total")
    assert cli("limits", "list", "--scope", "user:zzz").output == "no limits\n"

    rows = _json(cli("limits", "list", "--scope", "user:b", "--format", "json").output)
    assert rows == [
        {"scope": "user:b", "unit": "usd", "period": "total", "cap": "2.00", "tz": "UTC"},
        {"scope": "user:b", "unit": "tokens", "period": "total", "cap": 300, "tz": "UTC"},
    ]
    records = list(csv.DictReader(io.StringIO(cli("limits", "list", "--format", "csv").output)))
    assert [(r["scope"], Decimal(r["cap"])) for r in records] == [
        ("user:a", Decimal("1.5")),
        ("user:b", Decimal("2")),
        ("user:b", Decimal("300")),
    ]


def test_format_reads_its_environment_variable(cli: Invoke, ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="1", period="day")
    assert _json(cli("limits", "list", env={"CAPLEDGER_FORMAT": "json"}).output)[0]["cap"] == "1.00"
    # auto_envvar_prefix: every option also reads CAPLEDGER_<COMMAND>_<OPTION>
    assert (
        cli("limits", "list", env={"CAPLEDGER_LIMITS_LIST_SCOPE": "user:none"}).output
        == "no limits\n"
    )


def test_url_option_and_environment_variable(tmp_path: Path, cli: Invoke) -> None:
    other = tmp_path / "other.db"
    result = cli("--url", f"sqlite:///{other}", "limits", "set", "team:x", "--usd", "3")
    assert result.exit_code == 0, result.output
    with Ledger(f"sqlite:///{other}") as ledger:
        assert [limit.scope for limit in ledger.limits()] == ["team:x"]


def test_default_url_is_capledger_db_in_the_current_folder(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from capledger.cli import main

    result = CliRunner().invoke(main, ["limits", "set", "user:a", "--usd", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "capledger.db").exists()


# --- balance, holds, sweep --------------------------------------------------------------------


def test_balance_shows_exact_cap_spent_held_available(cli: Invoke, ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="1", period="day")
    ledger.reserve("user:a", usd="0.1").settle(usd="0.2")  # an overrun: recorded in full
    ledger.reserve("user:a", usd="0.3")  # left open

    table = cli("balance", "user:a")
    assert table.exit_code == 0, table.output
    day = next(line for line in table.output.splitlines() if " day " in line)
    assert day.split()[:7] == ["user:a", "usd", "day", "$1.00", "$0.20", "$0.30", "$0.50"]

    rows = _json(cli("balance", "user:a", "--unit", "usd", "--format", "json").output)
    by_period = {row["period"]: row for row in rows}
    assert by_period["day"]["cap"] == "1.00"
    assert Decimal(str(by_period["day"]["available"])) == Decimal("0.5")
    assert by_period["total"]["cap"] is None
    assert by_period["total"]["window_start"] is None
    assert by_period["day"]["window_end"] is not None


def test_balance_of_an_unknown_scope(cli: Invoke, ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="1")
    result = cli("balance", "user:nobody")
    assert result.exit_code == 0
    assert "no accounts yet" in result.output


def test_holds_list_flags_as_a_list(cli: Invoke, url: str) -> None:
    clock = ManualClock(JAN_1)
    with Ledger(url, clock=clock) as ledger:
        ledger.set_limit("user:a", usd="0.2")
        late = ledger.reserve("user:a", usd="0.1", ttl=1)
        clock.advance(2)  # the hold expires: its settle is late, and past the cap
        late.settle(usd="0.3")
        ledger.reserve("user:b", usd="0.1").settle(usd="0.1")
        ledger.reserve("user:c", usd="0.1")  # open: no flags

    rows = _json(cli("holds", "--state", "all", "--format", "json").output)
    assert {row["scopes"][0]: row["flags"] for row in rows} == {
        "user:a": ["late", "overrun"],
        "user:b": [],
        "user:c": [],
    }
    listed = cli("holds", "--state", "all", "--format", "csv").output
    assert [row["flags"] for row in csv.DictReader(io.StringIO(listed))] == ["late overrun", "", ""]


def test_holds_lists_by_state_and_scope(cli: Invoke, ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="10")
    ledger.reserve(["user:a", "feature:x"], usd="0.25", tags={"model": "m1"}, request_id="r-1")
    ledger.reserve("user:b", usd="1").settle(usd="0.5")
    ledger.reserve("user:a", usd="2").release()

    open_rows = _json(cli("holds", "--format", "json").output)
    assert len(open_rows) == 1
    assert open_rows[0]["scopes"] == ["user:a", "feature:x"]
    assert open_rows[0]["held"] == {"usd": "0.25"}
    assert open_rows[0]["tags"] == {"model": "m1"}
    assert open_rows[0]["request_id"] == "r-1"
    assert open_rows[0]["state"] == "open"  # not yet past its expiry

    newest = _json(cli("holds", "--state", "all", "--newest-first", "--format", "json").output)
    assert [row["state"] for row in newest] == ["released", "settled", "open"]
    latest = _json(
        cli("holds", "--state", "all", "--limit", "1", "--newest-first", "--format", "json").output
    )
    assert [row["state"] for row in latest] == ["released"]

    settled = _json(cli("holds", "--state", "settled", "--format", "json").output)
    assert [row["settled"] for row in settled] == [{"usd": "0.50"}]
    assert len(_json(cli("holds", "--state", "all", "--format", "json").output)) == 3
    assert (
        len(_json(cli("holds", "--state", "all", "--scope", "user:a", "--format", "json").output))
        == 2
    )

    table = cli("holds", "--state", "all", "--limit", "2")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split()[:4] == ["id", "state", "scopes", "held"]
    assert len(table.stdout.splitlines()) == 4
    assert "raise --limit" in table.stderr
    assert cli("holds", "--state", "expired").output == "no expired holds\n"


def test_sweep_expires_overdue_holds(cli: Invoke, url: str) -> None:
    # Holds placed on a clock in the past are overdue for the CLI's wall clock.
    with Ledger(url, clock=ManualClock(JAN_1)) as past:
        past.set_limit("user:a", usd="1")
        for _ in range(3):
            past.reserve("user:a", usd="0.1", ttl=1)
    listed = _json(cli("holds", "--format", "json").output)
    assert [row["state"] for row in listed] == ["overdue"] * 3  # past expiry, not yet swept
    assert "overdue" in cli("holds").stdout.splitlines()[2].split()
    swept = cli("sweep")
    assert swept.stdout == "expired 3 overdue holds\n"
    assert swept.stderr == ""  # no progress bar, nor its label, when stderr is not a terminal
    assert cli("sweep").stdout == "no overdue holds\n"
    assert len(_json(cli("holds", "--state", "expired", "--format", "json").output)) == 3


# --- report -----------------------------------------------------------------------------------


@pytest.fixture
def history(url: str) -> None:
    """Three settled calls on two days, with tokens on one."""
    clock = ManualClock(JAN_1)
    with Ledger(url, clock=clock) as ledger:
        ledger.reserve(["user:a", "tenant:t"], usd="0.1", tags={"model": "m1"}).settle(usd="0.1")
        ledger.reserve(["user:b", "tenant:t"], usd="0.2", tags={"model": "m2"}).settle(usd="0.2")
        clock.advance(86_400)
        ledger.reserve(["user:a", "tenant:t"], usd="1", tokens=100, tags={"model": "m1"}).settle(
            usd="0.000000001", tokens=42
        )


@pytest.mark.usefixtures("history")
def test_report_groups_exactly(cli: Invoke) -> None:
    rows = _json(cli("report", "--group-by", "scope,model", "--format", "json").output)
    by_key = {(row["scope"], row["model"]): row for row in rows}
    assert by_key[("tenant:t", "m1")]["usd"] == "0.100000001"
    assert by_key[("tenant:t", "m1")]["tokens"] == 42
    assert by_key[("tenant:t", "m2")]["usd"] == "0.20"
    assert by_key[("user:a", "m1")]["calls"] == 2

    records = list(
        csv.DictReader(io.StringIO(cli("report", "--group-by", "kind", "--format", "csv").output))
    )
    assert [(r["kind"], Decimal(r["usd"])) for r in records] == [
        ("tenant", Decimal("0.300000001")),
        ("user", Decimal("0.300000001")),
    ]
    assert list(records[0]) == ["kind", "calls", "usd", "tokens", "requests", "overruns", "late"]


@pytest.mark.usefixtures("history")
def test_report_table_hides_unused_units_and_aligns(cli: Invoke) -> None:
    table = cli("report", "--group-by", "model").output.splitlines()
    assert table[0].split() == ["model", "calls", "usd", "tokens", "overruns", "late"]
    assert "$0.100000001" in table[2]
    assert "$0.200000000" in table[3]


@pytest.mark.usefixtures("history")
def test_report_since_until_and_unit_grouping(cli: Invoke) -> None:
    day_two = _json(
        cli("report", "--group-by", "day", "--since", "2026-01-02", "--format", "json").output
    )
    assert [(row["day"], row["calls"], row["usd"]) for row in day_two] == [
        ("2026-01-02", 1, "0.000000001")
    ]
    day_one = _json(
        cli(
            "report",
            "--group-by",
            "unit",
            "--until",
            "2026-01-01T12:00:00+00:00",
            "--format",
            "json",
        ).output
    )
    assert [(row["unit"], row["spent"]) for row in day_one] == [("usd", "0.30")]
    nothing = cli("report", "--since", "2027-01-01")
    assert nothing.output == "no settled spend in that range\n"


# --- verify, migrate --------------------------------------------------------------------------


def test_verify_ok(cli: Invoke, ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="1")
    ledger.reserve("user:a", usd="0.5").settle(usd="0.25")
    result = cli("verify")
    assert result.exit_code == 0
    assert result.output.startswith("checked ")
    assert "OK: every account matches the journal" in result.output


def test_verify_reports_each_mismatch_and_exits_1(
    cli: Invoke, ledger: Ledger, db_path: Path
) -> None:
    ledger.set_limit("user:a", usd="1")
    ledger.set_limit("user:b", usd="1")
    ledger.reserve(["user:a", "user:b"], usd="0.5").settle(usd="0.25")
    with sqlite3.connect(db_path) as raw:  # damage the counters behind the ledger's back
        raw.execute("UPDATE capledger_accounts SET spent = spent + 1000000000 WHERE unit = 'usd'")
    result = cli("verify")
    assert result.exit_code == 1
    mismatches = [line for line in result.stdout.splitlines() if line.startswith("MISMATCH")]
    assert "MISMATCH user:a usd/total: spent is $1.25, expected $0.25 (journal sum)" in mismatches
    assert "MISMATCH user:b usd/total: spent is $1.25, expected $0.25 (journal sum)" in mismatches
    assert f"FAILED: {len(mismatches)} problems" in result.stderr


def test_verify_reports_a_breach_in_dollars_and_exits_1(
    cli: Invoke, ledger: Ledger, db_path: Path
) -> None:
    ledger.set_limit("user:a", usd="1")
    ledger.reserve("user:a", usd="0.5")
    with sqlite3.connect(db_path) as raw:  # forge a settle past the cap, not flagged overrun
        [(last_us,)] = raw.execute("SELECT max(ts_us) FROM capledger_journal")
        raw.execute(
            "INSERT INTO capledger_journal (ts_us, kind, hold_id, request_id, scopes, amounts,"
            " tags, flags) SELECT max(ts_us), 'settled', 'h_forged', NULL, '[\"user:a\"]',"
            " '{\"usd\":900000000}', '{}', '' FROM capledger_journal"
        )
    result = cli("verify")
    assert result.exit_code == 1
    [breach] = [line for line in result.stdout.splitlines() if line.startswith("BREACH")]
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=last_us)
    assert breach == (
        f"BREACH {at.isoformat()} settled of hold h_forged left user:a usd/total at $1.40 "
        "past its cap $1.00"
    )


def test_verify_notes_overruns_without_failing(cli: Invoke, ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="1")
    ledger.reserve("user:a", usd="1").settle(usd="1.5")
    result = cli("verify")
    assert result.exit_code == 0
    assert "note: user:a usd/total is past its cap (a settle overran" in result.output
    assert "spent + held stayed <= cap except as noted above" in result.output


def test_migrate_is_idempotent(cli: Invoke, db_path: Path) -> None:
    first = cli("migrate")
    assert first.exit_code == 0
    assert db_path.exists()
    assert "up to date" in cli("migrate").output


# --- the group --------------------------------------------------------------------------------


def test_help_lists_every_command_and_env_vars(cli: Invoke) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for name in ("demo", "limits", "balance", "holds", "sweep", "report", "verify", "migrate"):
        assert f"  {name} " in result.output
    assert "CAPLEDGER_URL" in result.output
    assert "CAPLEDGER_REPORT_GROUP_BY" in cli("report", "--help").output
    assert "CAPLEDGER_FORMAT" in cli("report", "--help").output


def test_version(cli: Invoke) -> None:
    from capledger import __version__

    assert cli("--version").output == f"capledger, version {__version__}\n"


def test_a_backend_error_exits_1_with_one_line(cli: Invoke, db_path: Path) -> None:
    db_path.write_bytes(b"this is not a database" * 100)
    result = cli("balance", "user:a")
    assert result.exit_code in (1, 2)  # opening it fails: unavailable or misconfigured
    assert result.output.startswith("Error: ")
    assert len(result.output.splitlines()) == 1
    assert "Traceback" not in result.output
