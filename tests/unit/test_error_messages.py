"""Error messages speak dollars and whole seconds, never nano-USD dicts or microseconds."""

from __future__ import annotations

import pickle
from datetime import timedelta
from decimal import Decimal

import pytest

from capledger import BudgetExceeded, HoldClosed, Ledger, ManualClock
from capledger.errors import (
    CounterLimitReached,
    IdempotentHoldClosed,
    InvalidAmount,
    LedgerError,
)


def test_a_conflicting_settle_shows_what_the_hold_settled_at_in_dollars_and_tokens() -> None:
    with Ledger("memory://", clock=ManualClock()) as ledger:
        hold = ledger.reserve("user:a", usd="0.01", tokens=1200)
        hold.settle(usd="0.01", tokens=1200)
        with pytest.raises(HoldClosed) as raised:
            hold.settle(usd="0.02")
    message = str(raised.value)
    assert message == (
        f"hold {hold.id} is already settled at $0.01, 1,200 tokens; a different settle is refused"
    )
    # No nano-USD anywhere (the hold id is left out: its hex digits may hold any number).
    assert "10000000" not in message.replace(hold.id, "") and "{" not in message
    assert raised.value.hold_id == hold.id
    assert raised.value.state == "settled"
    assert raised.value.settled == {"usd": Decimal("0.01"), "tokens": 1200}


def test_hold_closed_survives_pickling_with_its_fields() -> None:
    error = HoldClosed(hold_id="h_1", state="settled", settled={"usd": Decimal("0.5")})
    copy = pickle.loads(pickle.dumps(error))
    assert (
        str(copy)
        == str(error)
        == "hold h_1 is already settled at $0.50; a different settle is refused"
    )
    assert copy.settled == {"usd": Decimal("0.5")}


def test_a_plain_hold_closed_keeps_its_docstring_message() -> None:
    assert str(HoldClosed()) == (
        "The hold is already closed and this request conflicts with how it closed."
    )


def test_budget_exceeded_names_dollars_and_rounds_the_wait_up_to_a_second() -> None:
    error = BudgetExceeded(
        scope="user:a",
        unit="usd",
        period="day",
        requested=Decimal("0.1"),
        available=Decimal("0.000123"),
        retry_after=timedelta(hours=3, minutes=59, seconds=58, microseconds=1),
    )
    assert str(error) == (
        "user:a has $0.000123 available in its day limit; $0.10 requested "
        "(the window resets in 3:59:59)"
    )


def test_budget_exceeded_counts_tokens_with_separators() -> None:
    error = BudgetExceeded(
        scope="tenant:t", unit="tokens", period="month", requested=50_000, available=1_234
    )
    assert (
        str(error)
        == "tenant:t has 1,234 tokens available in its month limit; 50,000 tokens requested"
    )


def test_a_real_refusal_message_from_the_ledger() -> None:
    clock = ManualClock()  # 2026-01-01T00:00:00Z
    with Ledger("memory://", clock=clock) as ledger:
        ledger.set_limit("user:a", usd="1", period="day")
        ledger.reserve("user:a", usd="0.75").settle()
        clock.advance(timedelta(hours=20, microseconds=500))
        with pytest.raises(BudgetExceeded) as raised:
            ledger.reserve("user:a", usd="0.5")
    assert str(raised.value) == (
        "user:a has $0.25 available in its day limit; $0.50 requested "
        "(the window resets in 4:00:00)"
    )


@pytest.mark.parametrize(
    "error",
    [
        BudgetExceeded(
            scope="user:a",
            unit="usd",
            period="day",
            requested=Decimal("1"),
            available=Decimal("0.5"),
            retry_after=timedelta(seconds=3),
        ),
        CounterLimitReached(
            scope="user:a",
            unit="usd",
            period="total",
            requested=Decimal("1"),
            available=Decimal("0"),
            bound=Decimal("4611686018.427387904"),
        ),
        IdempotentHoldClosed(request_id="req-7", hold_id="h_1", state="released"),
        InvalidAmount("the amount is too large"),
    ],
    ids=type,
)
def test_every_error_crosses_a_process_boundary_whole(error: LedgerError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
