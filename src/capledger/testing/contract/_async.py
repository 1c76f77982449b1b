"""The contract through ``AsyncLedger``: the same decisions, awaited."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from capledger import (
    AsyncLedger,
    BudgetExceeded,
    IdempotentHoldClosed,
    InvalidAmount,
    InvalidInput,
    InvalidScope,
    InvalidTag,
    ManualClock,
)
from capledger.clock import Clock
from capledger.testing.contract._support import START, count_rows

__all__ = ["AsyncLedgerContract"]


class AsyncLedgerContract:
    """The contract through ``AsyncLedger``: the same decisions, awaited."""

    def make_async_ledger(self, clock: Clock, tmp_path: Path) -> AsyncLedger:
        """Return a fresh, empty async ledger on the store under test."""
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(START)

    @pytest.fixture
    async def aledger(self, clock: ManualClock, tmp_path: Path) -> AsyncLedger:  # type: ignore[misc]
        ledger = self.make_async_ledger(clock, tmp_path)
        yield ledger
        await ledger.aclose()

    async def test_async_reserve_settle_and_refuse(self, aledger: AsyncLedger) -> None:
        await aledger.set_limit("user:a", usd="0.20")
        async with aledger.reserve("user:a", usd="0.10") as hold:
            await hold.settle(usd="0.10")
        held = await aledger.reserve("user:a", usd="0.10")
        with pytest.raises(BudgetExceeded):
            await aledger.reserve("user:a", usd="0.01")
        await held.release()
        [total] = await aledger.balance("user:a")
        assert (total.spent, total.held) == (Decimal("0.1"), Decimal(0))
        assert (await aledger.verify()).ok

    async def test_async_block_semantics(self, aledger: AsyncLedger) -> None:
        with pytest.raises(RuntimeError):
            async with aledger.reserve("user:a", usd="0.10") as hold:
                await hold.observe(usd="0.03")
                raise RuntimeError("stream broke")
        assert hold.settled_amounts == {"usd": Decimal("0.03")}
        with pytest.raises(RuntimeError):
            async with aledger.reserve("user:a", usd="0.10") as released:
                raise RuntimeError("failed before output")
        assert released.state == "released"

    async def test_async_retry_of_a_closed_hold(self, aledger: AsyncLedger) -> None:
        first = await aledger.reserve("user:a", usd="0.50", request_id="req-1")
        await first.release()
        with pytest.raises(IdempotentHoldClosed) as closed:
            await aledger.reserve("user:a", usd="0.50", request_id="req-1")
        assert closed.value.hold is not None and closed.value.hold.id == first.id
        with pytest.raises(IdempotentHoldClosed):
            async with aledger.reserve("user:a", usd="0.50", request_id="req-1"):
                raise AssertionError("the block must not run")
        async with aledger.reserve(
            "user:a", usd="0.50", request_id="req-1", return_closed=True
        ) as hold:
            assert hold.state == "released"
            await hold.observe(usd="0.40")
        assert (hold.settled_amounts, hold.flags) == ({"usd": Decimal("0.4")}, frozenset({"late"}))
        [total] = await aledger.balance("user:a")
        assert (total.spent, total.held) == (Decimal("0.4"), Decimal(0))
        assert (await aledger.verify()).ok

    async def test_async_bad_input_raises_before_anything(self, aledger: AsyncLedger) -> None:
        with pytest.raises(InvalidAmount):
            aledger.reserve("user:a", usd="nan")
        with pytest.raises(InvalidScope):
            aledger.reserve("nope", usd="1")
        assert count_rows(aledger) == (0, 0, 0)

    async def test_async_bad_arguments_raise_typed_errors(self, aledger: AsyncLedger) -> None:
        hold = await aledger.reserve("user:a", usd="0.5")
        before = count_rows(aledger)
        with pytest.raises(InvalidTag):
            aledger.reserve("user:a", usd="0.1", tags={"n": 10**5000})
        with pytest.raises(InvalidTag):
            await hold.settle(usd="0.1", tags={"n": 10**5000})
        with pytest.raises(InvalidInput):
            await aledger.release(object())  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            await aledger.settle([hold.id], usd="0.1")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            await aledger.holds(limit="x")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            await aledger.report(since=datetime(2026, 1, 1))  # naive: refused
        assert [h.id for h in await aledger.holds(limit=10**30)] == [hold.id]
        assert count_rows(aledger) == before
        assert hold.state == "open"

    async def test_async_reports(self, aledger: AsyncLedger) -> None:
        hold = await aledger.reserve("user:a", usd="0.10", tags={"model": "m"})
        await hold.settle(usd="0.07")
        assert [(r["model"], r["usd"]) for r in await aledger.report(["model"])] == [
            ("m", Decimal("0.07"))
        ]
        assert await aledger.holds() == []
        await aledger.set_limit("user:a", usd="1")
        assert [limit.cap for limit in await aledger.limits()] == [Decimal(1)]
        assert await aledger.sweep() == 0
