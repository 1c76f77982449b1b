# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""capledger.wrap over the real ``openai`` package, its HTTP layer served by a fake provider."""

from __future__ import annotations

import asyncio
import gc
from decimal import Decimal
from typing import Any

import pytest

openai = pytest.importorskip("openai")

from llm_fakes import FakeProvider, http_module, journal_is_clean, openai_clients

from capledger import AsyncLedger, BudgetExceeded, ConfigurationError, Ledger, pricing
from capledger.attribution import ContextThreadPoolExecutor, attribute
from capledger.estimate import worst_case_cost
from capledger.integrations import Clamp, Downgrade, ShortBudget, wrap

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "write a short poem about ledgers"}]


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider(http_module(openai), want=7, cached=2, reasoning=1)


def settled(ledger: Ledger) -> Any:
    (hold,) = ledger.holds(state=None)
    return hold


def check_journal(ledger: Ledger) -> None:
    journal_is_clean(ledger.holds(state=None), ledger.verify())


def test_chat_create_settles_exact_cost_with_tags(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["tenant:acme"], tags={"app": "docs"})
    response = guarded.chat.completions.create(model=MODEL, messages=MESSAGES)
    hold = settled(ledger)
    assert hold.state == "settled"
    assert hold.settled["usd"] == pricing.cost(MODEL, response.usage)
    assert hold.settled["usd"] == fake.bill
    assert hold.settled["tokens"] == response.usage.total_tokens
    assert hold.tags["model"] == MODEL
    assert hold.tags["provider"] == "openai"
    assert hold.tags["app"] == "docs"
    assert (hold.tags["cached_tokens"], hold.tags["reasoning_tokens"]) == (2, 1)
    assert hold.tags["output_tokens"] == 7
    # The request had no output limit: it was given one, which the hold was sized from.
    assert fake.bodies[0]["max_completion_tokens"] == 4096
    assert hold.amounts["usd"] == worst_case_cost(MODEL, fake.bodies[0])
    (row,) = ledger.report(group_by=["scope", "model"])
    assert row["usd"] == fake.bill and row["calls"] == 1
    check_journal(ledger)


def test_request_id_and_per_call_options(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes="tenant:acme")
    guarded.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=50,
        capledger_request_id="req-7",
        capledger_scopes=["feature:search"],
        capledger_tags={"ticket": "T-1"},
    )
    hold = settled(ledger)
    assert hold.request_id == "req-7"
    assert hold.scopes == ("tenant:acme", "feature:search")
    assert hold.tags["ticket"] == "T-1"
    assert "capledger_request_id" not in fake.bodies[0]
    assert fake.bodies[0]["max_tokens"] == 50  # the caller's key is kept
    assert "max_completion_tokens" not in fake.bodies[0]


async def test_async_chat_create(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    response = await guarded.chat.completions.create(model=MODEL, messages=MESSAGES)
    (hold,) = await aledger.holds(state=None)
    assert hold.settled["usd"] == pricing.cost(MODEL, response.usage) == fake.bill
    journal_is_clean(await aledger.holds(state=None), await aledger.verify())


def test_chat_stream_requests_usage_and_settles_it(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    stream = guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    )
    chunks = list(stream)
    assert fake.bodies[0]["stream_options"] == {"include_usage": True}
    usage = chunks[-1].usage
    hold = settled(ledger)
    assert hold.settled["usd"] == pricing.cost(MODEL, usage) == fake.bill
    assert hold.tags["stream"] == "completed"
    check_journal(ledger)


async def test_async_chat_stream(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    stream = await guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    )
    async with stream:
        texts = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
    assert "".join(t or "" for t in texts) == "tok " * 7
    (hold,) = await aledger.holds(state=None)
    assert hold.settled["usd"] == fake.bill
    journal_is_clean(await aledger.holds(state=None), await aledger.verify())


def test_responses_create_and_stream(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    response = guarded.responses.create(model=MODEL, input="hello there")
    assert fake.bodies[0]["max_output_tokens"] == 4096
    first = ledger.holds(state=None)[0]
    assert first.settled["usd"] == pricing.cost(MODEL, response.usage)
    assert (first.tags["cached_tokens"], first.tags["reasoning_tokens"]) == (2, 1)
    events = list(
        guarded.responses.create(model=MODEL, input="hello", stream=True, max_output_tokens=20)
    )
    assert events[-1].type == "response.completed"
    second = ledger.holds(state=None)[1]
    assert second.settled["usd"] == pricing.cost(MODEL, events[-1].response.usage)
    assert sum(h.settled["usd"] for h in ledger.holds(state=None)) == fake.bill
    check_journal(ledger)


async def test_async_responses_stream(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    stream = await guarded.responses.create(model=MODEL, input="hi", stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.completed"
    (hold,) = await aledger.holds(state=None)
    assert hold.settled["usd"] == fake.bill
    journal_is_clean(await aledger.holds(state=None), await aledger.verify())


def test_provider_error_before_output_releases(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(openai), status=500)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(openai.InternalServerError):
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.InternalServerError):
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert [hold.state for hold in ledger.holds(state=None)] == ["released", "released"]
    assert ledger.balance("user:u1")[0].spent == 0
    check_journal(ledger)


def test_connection_drop_mid_stream_settles_observed(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(openai), want=50, drop_after=3)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    stream = guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    )
    received = []
    with pytest.raises(Exception) as caught:
        for chunk in stream:
            received.append(chunk)
    # The transport's own exception reaches the caller, unchanged.
    assert type(caught.value).__name__ in ("RemoteProtocolError", "APIConnectionError")
    assert len(received) == 3
    hold = settled(ledger)
    assert hold.state == "settled"
    assert hold.tags["stream"] == "failed" and hold.tags["usage"] == "bound"
    # Never less than what the provider billed for the tokens it sent.
    assert fake.bill <= hold.settled["usd"] <= hold.amounts["usd"]
    check_journal(ledger)


def test_abandoned_stream_is_settled_when_collected(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(openai), want=50)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    stream = guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    )
    next(stream)
    next(stream)
    del stream
    gc.collect()
    hold = settled(ledger)
    assert hold.state == "settled"
    assert hold.tags["stream"] == "abandoned"
    assert fake.bill <= hold.settled["usd"]
    check_journal(ledger)


def test_stream_closed_early_settles_observed(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(openai), want=50)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"], settle_incomplete="held")
    with guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    ) as stream:
        next(stream)
    hold = settled(ledger)
    # settle_incomplete="held": an unfinished stream settles its whole worst case.
    assert hold.settled["usd"] == hold.amounts["usd"]
    check_journal(ledger)


async def test_async_abandoned_stream_is_settled(aledger: AsyncLedger) -> None:
    fake = FakeProvider(http_module(openai), want=50)
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    stream = await guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    )
    await anext(stream)
    del stream
    gc.collect()
    for _ in range(50):
        if (await aledger.holds(state=None))[0].state != "open":
            break
        await asyncio.sleep(0.01)
    (hold,) = await aledger.holds(state=None)
    assert hold.state == "settled" and hold.tags["stream"] == "abandoned"
    journal_is_clean(await aledger.holds(state=None), await aledger.verify())


def test_policy_raise_sends_nothing(ledger: Ledger, fake: FakeProvider) -> None:
    ledger.set_limit("user:u1", usd="0.0001")
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(BudgetExceeded) as caught:
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1000)
    assert caught.value.scope == "user:u1"
    assert fake.bodies == [] and ledger.holds(state=None) == []


def test_policy_clamp_lowers_the_limit(ledger: Ledger, fake: FakeProvider) -> None:
    ledger.set_limit("user:u1", usd="0.0001")
    ledger.set_limit("tenant:acme", usd="1")
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1", "tenant:acme"], policy="clamp")
    guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1000)
    sent = fake.bodies[0]["max_tokens"]
    assert 0 < sent < 1000
    hold = settled(ledger)
    assert hold.amounts["usd"] <= Decimal("0.0001")
    assert worst_case_cost(MODEL, {**fake.bodies[0], "max_tokens": sent + 1}) > Decimal("0.0001")
    # Below the floor, clamp refuses instead.
    strict = wrap(client, ledger, scopes=["user:u1"], policy=Clamp(floor=10_000))
    with pytest.raises(BudgetExceeded):
        strict.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20_000)
    check_journal(ledger)


def test_policy_downgrade_and_callable(ledger: Ledger, fake: FakeProvider) -> None:
    ledger.set_limit("user:u1", usd="0.002")
    client, _ = openai_clients(fake)
    cheaper = wrap(client, ledger, scopes=["user:u1"], policy=Downgrade({"gpt-4o": MODEL}))
    cheaper.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=1000)
    assert fake.bodies[-1]["model"] == MODEL

    seen: list[ShortBudget] = []

    def shorter(short: ShortBudget) -> dict[str, Any]:
        seen.append(short)
        return {**short.request, "max_tokens": 10}

    custom = wrap(client, ledger, scopes=["user:u1"], policy=shorter)
    custom.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=5000)
    assert fake.bodies[-1]["max_tokens"] == 10
    assert seen[0].error.scope == "user:u1"
    check_journal(ledger)


def test_ambient_attribution_reaches_thread_pools(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["tenant:acme"])

    def call() -> None:
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)

    with attribute(user="u_42", feature="search"), ContextThreadPoolExecutor(2) as pool:
        pool.submit(call).result()
    hold = settled(ledger)
    assert set(hold.scopes) == {"tenant:acme", "user:u_42", "feature:search"}
    assert hold.tags["user"] == "u_42" and hold.tags["feature"] == "search"


def test_sync_async_mismatch_is_refused(ledger: Ledger, fake: FakeProvider) -> None:
    client, async_client = openai_clients(fake)
    with pytest.raises(ConfigurationError, match="AsyncLedger"):
        wrap(async_client, ledger, scopes=["user:u1"])
    with pytest.raises(ConfigurationError, match=r"unknown policy|downgrade"):
        wrap(client, ledger, scopes=["user:u1"], policy="downgrade")
    with pytest.raises(ConfigurationError, match="no scope"):
        wrap(client, ledger).chat.completions.create(model=MODEL, messages=MESSAGES)


def test_other_attributes_are_the_sdk_s(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    assert guarded.api_key == "test"
    assert guarded.models is client.models or type(guarded.models) is type(client.models)
    again = guarded.with_options(timeout=5)
    again.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
    assert len(ledger.holds(state=None)) == 1
