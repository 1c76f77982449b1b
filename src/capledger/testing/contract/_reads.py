"""The contract of what a ledger reports: threshold events, reports, verification and the
listing of holds."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest

from capledger import BudgetExceeded, Event, InvalidInput, Ledger, ManualClock
from capledger.testing.contract._support import START

__all__ = ["ReadContract"]


class ReadContract:
    """Events, reports, verification and listings agree with what was written."""

    def test_threshold_events_fire_once_per_window(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        events: list[Event] = []
        ledger.on("threshold", events.append)
        ledger.set_limit("user:a", usd="1.00", period="day")
        ledger.reserve("user:a", usd="0.85").settle()
        ledger.reserve("user:a", usd="0.05").settle()
        ledger.reserve("user:a", usd="0.06").settle()
        assert [(e.scope, e.period, e.fraction) for e in events] == [
            ("user:a", "day", 0.8),
            ("user:a", "day", 0.95),
        ]
        clock.advance(timedelta(days=1))
        ledger.reserve("user:a", usd="0.90").settle()
        assert [e.fraction for e in events] == [0.8, 0.95, 0.8]

    def test_events_reach_callbacks_and_a_failing_callback_is_contained(
        self, ledger: Ledger, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen: list[str] = []

        def broken(event: Event) -> None:
            raise ValueError("callback bug")

        for kind in ("reserved", "settled", "released", "denied"):
            ledger.on(kind, lambda event: seen.append(event.kind))
        ledger.on("settled", broken)
        ledger.set_limit("user:a", usd="0.10")
        with caplog.at_level(logging.ERROR, logger="capledger"):
            ledger.reserve("user:a", usd="0.10").settle(usd="0.05")
        ledger.reserve("user:a", usd="0.05").release()
        with pytest.raises(BudgetExceeded):
            ledger.reserve("user:a", usd="0.10")
        assert seen == ["reserved", "settled", "reserved", "released", "denied"]
        assert "callback bug" in caplog.text
        with pytest.raises(InvalidInput):
            ledger.on("exploded", seen.append)  # type: ignore[arg-type]

    def test_report_groups_spend(self, ledger: Ledger, clock: ManualClock) -> None:
        ledger.reserve(["user:a", "tenant:t"], usd="0.30", tags={"model": "m1"}).settle(
            usd="0.25", tokens=100
        )
        ledger.reserve(["user:b", "tenant:t"], usd="0.30", tags={"model": "m2"}).settle(usd="0.10")
        clock.advance(timedelta(days=1))
        ledger.reserve(["user:a", "tenant:t"], usd="0.30", tags={"model": "m1"}).settle(usd="0.05")
        by_scope = {row["scope"]: row for row in ledger.report(["scope"])}
        assert by_scope["tenant:t"]["usd"] == Decimal("0.4")
        assert by_scope["tenant:t"]["calls"] == 3
        assert by_scope["user:a"]["tokens"] == 100
        by_kind_model = ledger.report(["kind", "model"])
        assert [(r["kind"], r["model"], r["usd"]) for r in by_kind_model] == [
            ("tenant", "m1", Decimal("0.3")),
            ("tenant", "m2", Decimal("0.1")),
            ("user", "m1", Decimal("0.3")),
            ("user", "m2", Decimal("0.1")),
        ]
        by_day = ledger.report(["day"], since=START + timedelta(hours=1))
        assert [(r["day"], r["usd"], r["calls"]) for r in by_day] == [
            ("2026-01-06", Decimal("0.05"), 1)
        ]
        by_unit = ledger.report(["unit"])
        assert [(r["unit"], r["spent"]) for r in by_unit] == [
            ("tokens", 100),
            ("usd", Decimal("0.4")),
        ]

    def test_verify_passes_after_a_mixed_history(self, ledger: Ledger, clock: ManualClock) -> None:
        ledger.set_limit("user:a", usd="1", period="day")
        ledger.set_limit("tenant:t", usd="2", period="month")
        for index in range(10):
            hold = ledger.reserve(["user:a", "tenant:t"], usd="0.05", ttl=5)
            if index % 3 == 0:
                hold.settle(usd="0.04")
            elif index % 3 == 1:
                hold.release()
            clock.advance(1)
        clock.advance(10)
        ledger.sweep()
        report = ledger.verify()
        assert report.ok, report.mismatches
        assert report.accounts_checked == 4
        assert report.open_holds == 0

    def test_holds_listing(self, ledger: Ledger, clock: ManualClock) -> None:
        a = ledger.reserve("user:a", usd="0.1", request_id="r-a", tags={"model": "x"})
        clock.advance(1)
        b = ledger.reserve("user:b", usd="0.2")
        b.settle()
        open_holds = ledger.holds()
        assert [(h.id, h.request_id, h.scopes, h.tags) for h in open_holds] == [
            (a.id, "r-a", ("user:a",), {"model": "x"})
        ]
        assert [h.id for h in ledger.holds(state=None)] == [a.id, b.id]
        assert [h.id for h in ledger.holds(scope="user:b", state="settled")] == [b.id]
