"""A forgotten ``await`` on ``AsyncLedger.reserve`` is reported as Python reports any coroutine.

``reserve`` is a plain method (so ``async with ledger.reserve(...)`` works) and its result
holds nothing until it is awaited or entered; dropped unused, it warns "coroutine
'AsyncLedger.reserve' was never awaited" (a ``RuntimeWarning``) when it is collected.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import AsyncIterator

import pytest

from capledger import AsyncLedger, InvalidAmount

NEVER_AWAITED = r"coroutine 'AsyncLedger\.reserve' was never awaited"


@pytest.fixture
async def ledger() -> AsyncIterator[AsyncLedger]:
    async with AsyncLedger("memory://") as opened:
        await opened.set_limit("user:a", usd="1.00")
        yield opened


async def test_a_reserve_never_awaited_warns_and_holds_nothing(ledger: AsyncLedger) -> None:
    with pytest.warns(RuntimeWarning, match=NEVER_AWAITED):
        ledger.reserve("user:a", usd="0.10")  # the await is forgotten
        gc.collect()
    assert await ledger.holds(state=None) == []
    (balance,) = await ledger.balance("user:a")
    assert balance.held == 0


async def test_a_reserve_kept_but_never_awaited_warns_when_dropped(ledger: AsyncLedger) -> None:
    pending = ledger.reserve("user:a", usd="0.10")
    with pytest.warns(RuntimeWarning, match=NEVER_AWAITED):
        del pending
        gc.collect()
    assert await ledger.holds(state=None) == []


async def test_an_awaited_or_entered_reserve_does_not_warn(ledger: AsyncLedger) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hold = await ledger.reserve("user:a", usd="0.10")
        await hold.release()
        async with ledger.reserve("user:a", usd="0.10") as entered:
            await entered.settle(usd="0.05")
        pending = ledger.reserve("user:a", usd="0.10")
        late = await pending
        await late.release()
        del hold, entered, pending, late
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert [h.state for h in await ledger.holds(state=None)] == ["released", "settled", "released"]


async def test_a_refused_reserve_does_not_warn(ledger: AsyncLedger) -> None:
    # Bad arguments raise at once: there is nothing pending to forget.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InvalidAmount):
            ledger.reserve("user:a", usd="-1")
        gc.collect()
    assert caught == []


async def test_a_pending_hold_is_placed_once(ledger: AsyncLedger) -> None:
    pending = ledger.reserve("user:a", usd="0.10")
    hold = await pending
    with pytest.raises(RuntimeError, match="cannot reuse"):
        await pending  # a second await would otherwise place a second hold
    assert [h.id for h in await ledger.holds(state=None)] == [hold.id]
    await hold.release()
