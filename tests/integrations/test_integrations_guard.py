"""``guard`` for any function, and ambient attribution (no SDK needed)."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

import capledger
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


def test_guard_refuses_before_running(ledger: Ledger) -> None:
    ledger.set_limit("user:u1", usd="0.01")
    ran = []

    @guard(ledger, scopes=["user:u1"], estimate="0.02")
    def expensive() -> None:
        ran.append(1)

    with pytest.raises(BudgetExceeded):
        expensive()
    assert ran == []
    assert ledger.holds(state=None) == []


class _Interrupted(BaseException):
    """Stands for KeyboardInterrupt or a cancellation: not an Exception, still closes."""


@pytest.mark.parametrize("error", [KeyError("boom"), _Interrupted()])
def test_guard_settles_the_estimate_when_the_function_raises(
    ledger: Ledger, error: BaseException
) -> None:
    # The call may have reached the provider before it failed: by default it is charged
    # the worst case it was held for, never given back.
    ledger.set_limit("user:u1", usd="0.10")

    @guard(ledger, scopes=["user:u1"], estimate="0.04")
    def failing() -> None:
        raise error

    with pytest.raises(type(error)) as raised:
        failing()
    assert raised.value is error  # propagated unchanged
    (hold,) = ledger.holds(state=None)
    assert (hold.state, hold.settled) == ("settled", {"usd": Decimal("0.04")})
    (balance,) = ledger.balance("user:u1", unit="usd")
    assert (balance.spent, balance.held) == (Decimal("0.04"), 0)
    assert ledger.verify().ok


def test_guard_from_the_package_settles_by_default_too(ledger: Ledger) -> None:
    @capledger.guard(ledger, scopes=["user:u1"], estimate="0.03")
    def failing() -> None:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        failing()
    assert [(h.state, h.settled) for h in ledger.holds(state=None)] == [
        ("settled", {"usd": Decimal("0.03")})
    ]


def test_guard_releases_on_error_only_when_asked(ledger: Ledger) -> None:
    @guard(ledger, scopes=["user:u1"], estimate="0.01", on_error="release")
    def failing() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        failing()
    assert [hold.state for hold in ledger.holds(state=None)] == ["released"]
    (balance,) = ledger.balance("user:u1", unit="usd")
    assert (balance.spent, balance.held) == (0, 0)


def test_guard_refuses_an_unknown_on_error(ledger: Ledger) -> None:
    with pytest.raises(ConfigurationError, match="'settle' or 'release'"):
        guard(ledger, scopes=["user:u1"], estimate="1", on_error="ignore")  # type: ignore[arg-type]


async def test_guard_async_settles_the_estimate_when_the_coroutine_raises(
    aledger: AsyncLedger,
) -> None:
    @guard(aledger, scopes=["user:u1"], estimate="0.25")
    async def failing() -> None:
        await asyncio.sleep(0)
        raise ConnectionResetError

    @guard(aledger, scopes=["user:u1"], estimate="0.25", on_error="release")
    async def failing_before_spending() -> None:
        raise ValueError

    with pytest.raises(ConnectionResetError):
        await failing()
    with pytest.raises(ValueError):
        await failing_before_spending()
    holds = await aledger.holds(state=None)
    assert [(h.state, h.settled) for h in holds] == [
        ("settled", {"usd": Decimal("0.25")}),
        ("released", None),
    ]


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
