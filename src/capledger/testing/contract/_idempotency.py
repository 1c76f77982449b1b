"""The contract of ``request_id``: a retry gets the same hold, or says why it cannot."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from capledger import Ledger, ManualClock, UnsettledHoldWarning
from capledger.errors import HoldClosed, IdempotencyConflict, IdempotentHoldClosed
from capledger.testing.contract._support import balance_of, count_rows

__all__ = ["IdempotencyContract"]


class IdempotencyContract:
    """A request id names one hold: retries find it, a different payload conflicts."""

    def test_same_request_id_returns_the_same_hold(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="0.10")
        first = ledger.reserve("user:a", usd="0.10", request_id="req-1")
        again = ledger.reserve("user:a", usd="0.10", request_id="req-1")
        assert again.id == first.id
        assert balance_of(ledger, "user:a").held == Decimal("0.1")
        first.settle(usd="0.05")
        after_settle = ledger.reserve("user:a", usd="0.10", request_id="req-1", return_closed=True)
        assert (after_settle.id, after_settle.state) == (first.id, "settled")

    @pytest.mark.parametrize("closed_by", ["settle", "release", "expiry"])
    def test_a_retry_that_finds_its_hold_closed_says_so(
        self, ledger: Ledger, clock: ManualClock, closed_by: str
    ) -> None:
        ledger.set_limit("user:a", usd="1.00")
        first = ledger.reserve("user:a", usd="0.50", request_id="req-1", ttl=10)
        if closed_by == "settle":
            first.settle(usd="0.20")
        elif closed_by == "release":
            first.release()
        else:
            clock.advance(10)
            assert ledger.sweep() == 1
        state = {"settle": "settled", "release": "released", "expiry": "expired"}[closed_by]
        before = count_rows(ledger)
        with pytest.raises(IdempotentHoldClosed) as closed:
            ledger.reserve("user:a", usd="0.50", request_id="req-1", ttl=10)
        assert isinstance(closed.value, HoldClosed)
        assert (closed.value.hold_id, closed.value.state) == (first.id, state)
        assert closed.value.request_id == "req-1"
        assert closed.value.hold is not None
        assert (closed.value.hold.id, closed.value.hold.state) == (first.id, state)
        assert "req-1" in str(closed.value) and state in str(closed.value)
        # Asked for, the closed hold is returned as it is; nothing is held either way.
        returned = ledger.reserve(
            "user:a", usd="0.50", request_id="req-1", ttl=10, return_closed=True
        )
        assert (returned.id, returned.state) == (first.id, state)
        assert count_rows(ledger) == before
        assert balance_of(ledger, "user:a").held == Decimal(0)
        with pytest.raises(IdempotencyConflict):  # a different payload still conflicts
            ledger.reserve("user:a", usd="0.40", request_id="req-1", return_closed=True)

    def test_a_retry_that_takes_a_released_hold_still_records_its_spend(
        self, ledger: Ledger
    ) -> None:
        first = ledger.reserve("user:a", usd="0.50", request_id="req-1")
        first.release()
        with ledger.reserve("user:a", usd="0.50", request_id="req-1", return_closed=True) as hold:
            hold.observe(usd="0.40")  # the retried call streams, under the closed hold
        assert (hold.state, hold.settled_amounts, hold.flags) == (
            "settled",
            {"usd": Decimal("0.4")},
            frozenset({"late"}),
        )
        assert balance_of(ledger, "user:a").spent == Decimal("0.4")
        second = ledger.reserve("user:b", usd="0.50", request_id="req-2")
        second.release()
        retried = ledger.reserve("user:b", usd="0.50", request_id="req-2", return_closed=True)
        retried.settle(usd="0.70")
        assert (retried.state, retried.flags) == ("settled", frozenset({"late"}))
        assert balance_of(ledger, "user:b").spent == Decimal("0.7")
        assert ledger.verify().ok

    def test_a_block_whose_hold_closed_under_it_settles_what_it_observed(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        with ledger.reserve("user:a", usd="0.50", ttl=10) as hold:
            hold.observe(usd="0.10")
            hold.release()  # released by mistake mid-stream: the spend is still recorded
            hold.observe(usd="0.30")
        assert (hold.settled_amounts, hold.flags) == ({"usd": Decimal("0.3")}, frozenset({"late"}))
        first = ledger.reserve("user:b", usd="0.50", ttl=10, request_id="req-b")
        clock.advance(11)
        ledger.sweep()
        with (
            pytest.warns(UnsettledHoldWarning),
            ledger.reserve(
                "user:b", usd="0.50", ttl=10, request_id="req-b", return_closed=True
            ) as expired,
        ):
            assert expired.id == first.id
        # An expired hold left unsettled settles its held amount, as an open one does.
        assert (expired.settled_amounts, expired.flags) == (
            {"usd": Decimal("0.5")},
            frozenset({"late"}),
        )
        assert balance_of(ledger, "user:b").spent == Decimal("0.5")
        released = ledger.reserve("user:c", usd="0.50")
        with released:
            released.release()  # released by the caller, nothing observed: left alone
        assert released.state == "released"
        assert ledger.verify().ok

    def test_same_request_id_different_payload_conflicts(self, ledger: Ledger) -> None:
        ledger.reserve("user:a", usd="0.10", request_id="req-1", tags={"model": "a"})
        before = count_rows(ledger)
        for changed in (
            {"usd": "0.11"},
            {"scopes": ["user:b"]},
            {"tags": {"model": "b"}},
            {"ttl": 61},
        ):
            arguments: dict[str, Any] = {
                "usd": "0.10",
                "request_id": "req-1",
                "tags": {"model": "a"},
            }
            arguments.update(changed)
            scopes = arguments.pop("scopes", "user:a")
            with pytest.raises(IdempotencyConflict):
                ledger.reserve(scopes, **arguments)
        assert count_rows(ledger) == before
