# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""CapledgerAccountant against datasette-llm-accountant's Accountant contract.

Runs where ``datasette-llm-accountant`` is installed (with ``llm``, so ``openai>=3``): see
``tests/integrations/run_envs.py``.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

accountant_module = pytest.importorskip("datasette_llm_accountant")

from llm_fakes import journal_is_clean

from capledger import AsyncLedger, BudgetExceeded, ConfigurationError, Ledger
from capledger.integrations.datasette import (
    CapledgerAccountant,
    nano_usd_from_nanocents,
    usd_from_nanocents,
)

Accountant = accountant_module.Accountant
GroupReservation = accountant_module.GroupReservation
InsufficientBalanceError = accountant_module.InsufficientBalanceError
Nanocents = accountant_module.Nanocents
Tx = accountant_module.Tx


def test_nanocents_convert_exactly_and_round_up() -> None:
    assert [nano_usd_from_nanocents(n) for n in (0, 1, 99, 100, 101, 250)] == [0, 1, 1, 1, 2, 3]
    assert usd_from_nanocents(Nanocents.from_usd(0.5)) == Decimal("0.5")
    assert usd_from_nanocents(1) == Decimal("1E-9")
    with pytest.raises(ConfigurationError):
        nano_usd_from_nanocents(-1)


async def test_reserve_settle_rollback(aledger: AsyncLedger) -> None:
    accountant = CapledgerAccountant(aledger, scopes=["tenant:acme"])
    assert isinstance(accountant, Accountant)
    tx = await accountant.reserve(Nanocents(5_000_000_000), "gpt-4o-mini", "chat", "u1")
    assert isinstance(tx, Tx)
    (hold,) = await aledger.holds()
    assert hold.amounts["usd"] == Decimal("0.05")
    assert set(hold.scopes) == {"tenant:acme", "user:u1", "feature:chat"}
    assert hold.tags == {"model": "gpt-4o-mini", "purpose": "chat", "actor": "u1"}
    await accountant.settle(tx, Nanocents(1_234_567), "gpt-4o-mini", "chat", "u1")
    other = await accountant.reserve(Nanocents(100))
    await accountant.rollback(other)
    first, second = await aledger.holds(state=None)
    assert first.settled["usd"] == Decimal("0.000012346")  # 12,345.67 nano-USD, rounded up
    assert second.state == "released"
    journal_is_clean(await aledger.holds(state=None), await aledger.verify())


async def test_insufficient_balance_keeps_the_cause(aledger: AsyncLedger) -> None:
    await aledger.set_limit("tenant:acme", usd="0.01")
    accountant = CapledgerAccountant(aledger, scopes=["tenant:acme"])
    with pytest.raises(InsufficientBalanceError) as caught:
        await accountant.reserve(Nanocents.from_usd(0.02))
    assert isinstance(caught.value.__cause__, BudgetExceeded)
    with pytest.raises(ConfigurationError):
        CapledgerAccountant(Ledger("memory://"))  # type: ignore[arg-type]


async def test_group_rollback_when_a_later_accountant_refuses(aledger: AsyncLedger) -> None:
    await aledger.set_limit("tenant:poor", usd="0.001")
    rich = CapledgerAccountant(aledger, scopes=["tenant:rich"])
    poor = CapledgerAccountant(aledger, scopes=["tenant:poor"])
    group = GroupReservation(Nanocents.from_usd(0.01), [rich, poor])
    with pytest.raises(InsufficientBalanceError):
        await group.reserve_all()
    (hold,) = await aledger.holds(state=None)
    assert hold.state == "released"


async def test_1000_concurrent_group_reservations_never_pass_the_cap(
    aledger: AsyncLedger,
) -> None:
    """The accountant contract under load: reserve, spend at most the reservation, settle."""
    cap = Decimal("5.00")
    await aledger.set_limit("tenant:acme", usd=cap)
    accountant = CapledgerAccountant(aledger, scopes=["tenant:acme"])
    rng = random.Random(9)
    billed_nano_usd = [0]

    async def prompt() -> bool:
        reservation = Nanocents(rng.randint(1, 5_000_000_000))  # up to 5 cents
        group = GroupReservation(reservation, [accountant], model_id="gpt-4o-mini")
        try:
            await group.reserve_all()
        except InsufficientBalanceError:
            return False
        spent = Nanocents(rng.randint(0, reservation))
        billed_nano_usd[0] += nano_usd_from_nanocents(spent)
        group.add_usage(spent)
        await group.settle_all()
        return True

    outcomes = await asyncio.gather(*(prompt() for _ in range(1000)))
    (usd,) = await aledger.balance("tenant:acme", unit="usd")
    assert outcomes.count(False) > 0
    assert usd.spent == Decimal(billed_nano_usd[0]) / Decimal(10**9) <= cap
    journal_is_clean(await aledger.holds(state=None, limit=2000), await aledger.verify())
