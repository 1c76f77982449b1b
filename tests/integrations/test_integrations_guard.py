"""``guard`` for any function, and ambient attribution (no SDK needed)."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

from capledger import AsyncLedger, BudgetExceeded, ConfigurationError, Ledger, pricing
from capledger.attribution import (
    ContextThreadPoolExecutor,
    attribute,
    carry,
    current,
    current_scopes,
)
from capledger.errors import InvalidScope
from capledger.integrations import guard


def test_guard_holds_then_settles_actual(ledger: Ledger) -> None:
    @guard(ledger, scopes=["feature:summary"], estimate="0.05", actual=lambda r: r["cost"])
    def summarise(text: str) -> dict[str, Decimal]:
        (balance,) = ledger.balance("feature:summary", unit="usd")
        assert balance.held == Decimal("0.05")  # held while the function runs
        return {"cost": Decimal("0.012")}

    assert summarise("x") == {"cost": Decimal("0.012")}
    (hold,) = ledger.holds(state=None)
    assert hold.settled["usd"] == Decimal("0.012")
    assert hold.tags["function"].endswith("summarise")
    assert ledger.verify().ok


def test_guard_prices_a_usage_and_takes_estimate_from_arguments(ledger: Ledger) -> None:
    usage = pricing.Usage(input_tokens=100, output_tokens=20)

    @guard(
        ledger,
        scopes="user:u1",
        estimate=lambda n: Decimal("0.001") * n,
        actual=lambda result: usage,
        model="gpt-4o-mini",
    )
    def call(n: int) -> str:
        return "ok"

    call(3)
    (hold,) = ledger.holds(state=None)
    assert hold.amounts["usd"] == Decimal("0.003")
    assert hold.settled["usd"] == pricing.cost("gpt-4o-mini", usage)


def test_guard_refuses_before_running_and_releases_on_error(ledger: Ledger) -> None:
    ledger.set_limit("user:u1", usd="0.01")
    ran = []

    @guard(ledger, scopes=["user:u1"], estimate="0.02")
    def expensive() -> None:
        ran.append(1)

    with pytest.raises(BudgetExceeded):
        expensive()
    assert ran == []

    @guard(ledger, scopes=["user:u1"], estimate="0.01")
    def failing() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        failing()
    assert [hold.state for hold in ledger.holds(state=None)] == ["released"]


async def test_guard_async(aledger: AsyncLedger) -> None:
    @guard(aledger, scopes=["user:u1"], estimate=Decimal("0.5"))
    async def call() -> int:
        await asyncio.sleep(0)
        return 1

    with attribute(tenant="acme"):
        assert await call() == 1
    (hold,) = await aledger.holds(state=None)
    # Without actual=, the estimate is what was spent.
    assert hold.settled["usd"] == Decimal("0.5")
    assert set(hold.scopes) == {"user:u1", "tenant:acme"}


def test_guard_checks_sync_async_pairing(ledger: Ledger) -> None:
    async def coroutine_function() -> None:
        pass

    with pytest.raises(ConfigurationError, match="AsyncLedger"):
        guard(ledger, scopes=["user:u1"], estimate="1")(coroutine_function)
    with pytest.raises(ConfigurationError, match="no scope"):
        guard(ledger, estimate="1")(lambda: None)()


def test_attribution_nests_and_carries_into_threads() -> None:
    assert current() == {}
    with attribute(user="u1", tenant="acme"):
        with attribute(user="u2", project="p1"):
            assert current_scopes() == ("user:u2", "tenant:acme", "project:p1")
        assert dict(current()) == {"user": "u1", "tenant": "acme"}
        seen: list[dict[str, str]] = []
        plain = threading.Thread(target=lambda: seen.append(dict(current())))
        plain.start()
        plain.join()
        carried = threading.Thread(target=carry(lambda: seen.append(dict(current()))))
        carried.start()
        carried.join()
        with ContextThreadPoolExecutor(4) as pool:
            mapped = list(pool.map(lambda _: dict(current()), range(3)))
    assert seen == [{}, {"user": "u1", "tenant": "acme"}]
    assert mapped == [{"user": "u1", "tenant": "acme"}] * 3
    assert current() == {}
    with pytest.raises(InvalidScope), attribute(user="has space"):
        pass
