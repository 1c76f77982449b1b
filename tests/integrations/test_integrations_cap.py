# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""G2 end to end: 1000 concurrent guarded calls under ``clamp`` against a $5.00 cap.

The fake provider bills exactly the tokens it writes and never writes more than the
``max_tokens`` it is sent. Whatever the interleaving, its bill must stay within the cap and
the ledger's spend must equal its bill to the nano-USD.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

openai = pytest.importorskip("openai")

from llm_fakes import FakeProvider, http_module, journal_is_clean, openai_clients, random_prompt

from capledger import AsyncLedger, BudgetExceeded, Ledger
from capledger.integrations import Clamp, wrap
from capledger.pricing import Pricebook

CAP = Decimal("5.00")
CALLS = 1000
# Expensive enough that the calls want about ten times the cap.
IN_RATE, OUT_RATE = "15", "60"


def _book() -> Pricebook:
    book = Pricebook()
    book.set_price("fake-gpt", input=IN_RATE, output=OUT_RATE, provider="openai")
    return book


def _fake(seed: int) -> FakeProvider:
    rng = random.Random(seed)
    return FakeProvider(
        http_module(openai),
        in_rate=IN_RATE,
        out_rate=OUT_RATE,
        cache_rate=IN_RATE,
        want=lambda body: rng.randint(1, 3000),
    )


def _request(rng: random.Random) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "fake-gpt",
        "messages": [{"role": "user", "content": random_prompt(rng)}],
        "max_tokens": rng.randint(1, 3000),
    }
    if rng.random() < 0.3:
        request["stream"] = True
    return request


def _check(spent: Decimal, fake: FakeProvider, refused: int) -> None:
    assert fake.bill <= CAP
    assert spent == fake.bill
    assert fake.calls + refused == CALLS
    # The cap was actually the constraint: most of it was used, and calls were clamped.
    assert fake.bill > CAP * Decimal("0.9")
    assert any(body["max_tokens"] < 3000 for body in fake.bodies)


async def test_async_clamp_never_passes_the_cap(aledger: AsyncLedger) -> None:
    fake = _fake(1)
    await aledger.set_limit("tenant:acme", usd=CAP)
    _, client = openai_clients(fake)
    guarded = wrap(
        client,
        aledger,
        scopes=["tenant:acme"],
        policy=Clamp(floor=1, attempts=8),
        pricebook=_book(),
    )
    rng = random.Random(2)
    requests = [_request(rng) for _ in range(CALLS)]

    async def one(request: dict[str, Any]) -> bool:
        try:
            result = await guarded.chat.completions.create(**request)
        except BudgetExceeded:
            return False
        if request.get("stream"):
            async for _chunk in result:
                pass
        return True

    outcomes = await asyncio.gather(*(one(request) for request in requests))
    (usd,) = await aledger.balance("tenant:acme", unit="usd")
    _check(usd.spent, fake, outcomes.count(False))
    journal_is_clean(await aledger.holds(state=None, limit=2000), await aledger.verify())


def test_threaded_clamp_never_passes_the_cap(ledger: Ledger) -> None:
    fake = _fake(3)
    ledger.set_limit("tenant:acme", usd=CAP)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["tenant:acme"], policy="clamp", pricebook=_book())
    rng = random.Random(4)
    requests = [_request(rng) for _ in range(CALLS)]

    def one(request: dict[str, Any]) -> bool:
        try:
            result = guarded.chat.completions.create(**request)
        except BudgetExceeded:
            return False
        if request.get("stream"):
            for _chunk in result:
                pass
        return True

    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(one, requests))
    (usd,) = ledger.balance("tenant:acme", unit="usd")
    _check(usd.spent, fake, outcomes.count(False))
    journal_is_clean(ledger.holds(state=None, limit=2000), ledger.verify())
