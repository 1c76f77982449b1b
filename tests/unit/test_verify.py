"""verify() must catch what is wrong, not only bless what is right."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from capledger import Breach, Ledger, ManualClock


def _ledger(tmp_path: Path) -> tuple[Ledger, Path]:
    path = tmp_path / "l.db"
    ledger = Ledger(f"sqlite:///{path}", clock=ManualClock())
    ledger.set_limit("user:a", usd="1.00", period="day")
    for _ in range(3):
        ledger.reserve("user:a", usd="0.30").settle(usd="0.20")
    ledger.reserve("user:a", usd="0.10")  # left open
    return ledger, path


def test_a_healthy_ledger_verifies(tmp_path: Path) -> None:
    ledger, _ = _ledger(tmp_path)
    report = ledger.verify()
    assert report.ok, report
    assert (report.open_holds, report.breaches, report.mismatches) == (1, [], [])


def test_a_tampered_counter_is_a_mismatch(tmp_path: Path) -> None:
    ledger, path = _ledger(tmp_path)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE capledger_accounts SET spent = spent - 1 WHERE period = 'day'")
    report = ledger.verify()
    assert not report.ok
    assert [(m.scope, m.period, m.field) for m in report.mismatches] == [("user:a", "day", "spent")]


def test_a_lost_hold_is_a_mismatch(tmp_path: Path) -> None:
    ledger, path = _ledger(tmp_path)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE capledger_holds SET state = 'released' WHERE state = 'open'")
    report = ledger.verify()
    assert not report.ok
    assert {m.field for m in report.mismatches} == {"held"}


def test_a_reserve_past_the_cap_in_the_journal_is_a_breach(tmp_path: Path) -> None:
    ledger, path = _ledger(tmp_path)
    with sqlite3.connect(path) as connection:  # forge a hold the core would have refused
        connection.execute(
            "INSERT INTO capledger_journal (ts_us, kind, hold_id, request_id, scopes, amounts,"
            " tags, flags) SELECT max(ts_us), 'reserved', 'h_forged', NULL, '[\"user:a\"]',"
            " '{\"usd\":900000000}', '{}', '' FROM capledger_journal"
        )
    report = ledger.verify()
    assert not report.ok
    # 0.60 settled, 0.10 held, then 0.90 forged on a 1.00 day cap, at the clock's one moment.
    assert report.breaches == [
        Breach(
            datetime(2026, 1, 1, tzinfo=UTC),
            "reserved",
            "h_forged",
            "user:a",
            "usd",
            "day",
            spent_and_held=1_600_000_000,
            cap=1_000_000_000,
        )
    ]
    assert str(report.breaches[0]) == (
        "2026-01-01T00:00:00+00:00 reserved of hold h_forged left user:a usd/day at "
        "1600000000 past its cap 1000000000"
    )


def test_an_unflagged_settle_past_the_cap_is_a_breach(tmp_path: Path) -> None:
    ledger, path = _ledger(tmp_path)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE capledger_journal SET amounts = '{\"usd\":950000000}', flags = ''"
            " WHERE id = (SELECT max(id) FROM capledger_journal WHERE kind = 'settled')"
        )
    assert ledger.verify().breaches


def test_a_flagged_overrun_and_a_lowered_cap_are_explained(tmp_path: Path) -> None:
    ledger, _ = _ledger(tmp_path)
    ledger.reserve("user:a", usd="0.20").settle(usd="0.50")  # overrun, recorded in full
    report = ledger.verify()
    assert report.ok, report
    assert report.overruns == ["user:a usd/day"]

    fresh = Ledger(f"sqlite:///{tmp_path}/b.db", clock=ManualClock())
    fresh.set_limit("user:b", usd="1.00")
    fresh.reserve("user:b", usd="0.80").settle()
    fresh.set_limit("user:b", usd="0.50")  # lowered below what is spent: not a breach
    report = fresh.verify()
    assert report.ok, report
    assert report.overruns == ["user:b usd/total"]
