# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""capledger.wrap over the real ``openai`` package, its HTTP layer served by a fake provider.

The wrapped client is the SDK's own class; its HTTP client sends through capledger's guard
transport, so whatever sends a request (a method, a helper, a raw-response variant, a
retry) is held at the wire. Every test reads what the fake provider billed and what the
ledger recorded.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

openai = pytest.importorskip("openai")

from llm_fakes import (
    IMAGE_FEE,
    FakeProvider,
    HoldClosing,
    http_module,
    journal_is_clean,
    openai_clients,
)

from capledger import (
    AsyncLedger,
    BudgetExceeded,
    ConfigurationError,
    InvalidInput,
    Ledger,
    UnguardedRequest,
    pricing,
)
from capledger.attribution import ContextThreadPoolExecutor, attribute
from capledger.estimate import worst_case_cost
from capledger.integrations import Clamp, Downgrade, ShortBudget, call_options, wrap
from capledger.pricing import Pricebook

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "write a short poem about ledgers"}]
EMBEDDING_MODEL = "text-embedding-3-small"


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider(http_module(openai), want=7, cached=2, reasoning=1)


def settled(ledger: Ledger) -> Any:
    (hold,) = ledger.holds(state=None)
    return hold


def check_journal(ledger: Ledger) -> None:
    journal_is_clean(ledger.holds(state=None), ledger.verify())


async def acheck_journal(aledger: AsyncLedger) -> None:
    journal_is_clean(await aledger.holds(state=None), await aledger.verify())


def own_headers(fake: FakeProvider) -> list[str]:
    """capledger's per-call headers that reached the provider (there must be none)."""
    return [
        name for seen in fake.requests for name in seen.headers if name.startswith("capledger-")
    ]


# --- priced endpoints: held, then settled at the provider's usage ----------------------------


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


def test_per_call_options_travel_as_headers(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes="tenant:acme")
    guarded.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=50,
        extra_headers=call_options(
            scopes=["feature:search"], tags={"ticket": "T-1"}, request_id="req-7"
        ),
    )
    hold = settled(ledger)
    assert hold.request_id == "req-7"
    assert hold.scopes == ("tenant:acme", "feature:search")
    assert hold.tags["ticket"] == "T-1"
    assert own_headers(fake) == []  # removed before the request left
    assert fake.bodies[0]["max_tokens"] == 50  # the caller's key is kept
    assert "max_completion_tokens" not in fake.bodies[0]
    check_journal(ledger)


def test_old_per_call_keywords_are_the_sdk_s_to_refuse(ledger: Ledger, fake: FakeProvider) -> None:
    """``capledger_scopes=`` was a keyword of the method proxies: the SDK's own method does
    not take it, and nothing is held or sent."""
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes="tenant:acme")
    with pytest.raises(TypeError, match="capledger_scopes"):
        guarded.chat.completions.create(
            model=MODEL, messages=MESSAGES, capledger_scopes=["feature:search"]
        )
    assert fake.requests == [] and ledger.holds(state=None) == []
    with pytest.raises(InvalidInput, match="comma"):
        call_options(scopes=["a:b,c"])


async def test_async_chat_create(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    response = await guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_headers=call_options(request_id="req-a")
    )
    (hold,) = await aledger.holds(state=None)
    assert hold.settled["usd"] == pricing.cost(MODEL, response.usage) == fake.bill
    assert hold.request_id == "req-a"
    assert own_headers(fake) == []
    await acheck_journal(aledger)


def test_chat_stream_hides_the_usage_chunk_it_asked_for(ledger: Ledger, fake: FakeProvider) -> None:
    """capledger asks every chat stream for its usage; a caller who did not ask never sees
    the extra chunk (whose ``choices`` is empty), so ``chunk.choices[0]`` keeps working."""
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    chunks = list(
        guarded.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
        )
    )
    assert fake.bodies[0]["stream_options"] == {"include_usage": True}
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "tok " * 7
    hold = settled(ledger)
    assert hold.settled["usd"] == fake.bill
    assert hold.tags["output_tokens"] == 7
    check_journal(ledger)


def test_chat_stream_usage_chunk_reaches_a_caller_who_asked(
    ledger: Ledger, fake: FakeProvider
) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    chunks = list(
        guarded.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            max_completion_tokens=100,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    hold = settled(ledger)
    assert hold.settled["usd"] == pricing.cost(MODEL, usage) == fake.bill
    check_journal(ledger)


async def test_async_chat_stream(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    stream = await guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)  # the usage chunk is hidden
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "tok " * 7
    (hold,) = await aledger.holds(state=None)
    assert hold.settled["usd"] == fake.bill
    asked = await guarded.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        stream=True,
        max_completion_tokens=100,
        stream_options={"include_usage": True},
    )
    async with asked:
        last = [chunk async for chunk in asked][-1]
    assert last.choices == [] and last.usage.completion_tokens == 7
    await acheck_journal(aledger)


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
    await acheck_journal(aledger)


def test_stream_helpers_are_held(ledger: Ledger, fake: FakeProvider) -> None:
    """``chat.completions.stream`` and ``responses.stream`` are the SDK's own helpers: their
    requests are held at the wire like any other."""
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with guarded.chat.completions.stream(
        model=MODEL, messages=MESSAGES, max_completion_tokens=100
    ) as stream:
        text = "".join(
            event.delta for event in stream if event.type == "content.delta" and event.delta
        )
        completion = stream.get_final_completion()
    assert text == "tok " * 7
    assert completion.usage is None  # the helper's caller did not ask for the usage chunk
    with guarded.responses.stream(model=MODEL, input="hello", max_output_tokens=20) as stream:
        for _event in stream:
            pass
        response = stream.get_final_response()
    chat_hold, responses_hold = ledger.holds(state=None)
    assert chat_hold.state == responses_hold.state == "settled"
    assert chat_hold.tags["output_tokens"] == 7
    assert responses_hold.settled["usd"] == pricing.cost(MODEL, response.usage)
    assert chat_hold.settled["usd"] + responses_hold.settled["usd"] == fake.bill
    check_journal(ledger)


async def test_async_stream_helpers_are_held(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    async with guarded.chat.completions.stream(
        model=MODEL, messages=MESSAGES, max_completion_tokens=100
    ) as stream:
        await stream.get_final_completion()
    async with guarded.responses.stream(model=MODEL, input="hello") as stream:
        await stream.get_final_response()
    holds = await aledger.holds(state=None)
    assert [hold.state for hold in holds] == ["settled", "settled"]
    assert sum(hold.settled["usd"] for hold in holds) == fake.bill
    await acheck_journal(aledger)


def test_raw_and_streaming_response_variants_are_held(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    chat = guarded.chat.completions
    raw = chat.with_raw_response.create(model=MODEL, messages=MESSAGES, max_tokens=20)
    assert raw.parse().usage.completion_tokens == 7
    with chat.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=20
    ) as response:
        assert response.parse().usage.completion_tokens == 7
    with chat.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=20, stream=True
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    # Raw SSE lines: the usage chunk capledger asked for is hidden there too.
    assert all(json.loads(line[6:])["choices"] for line in lines)
    holds = ledger.holds(state=None)
    assert [hold.state for hold in holds] == ["settled"] * 3
    assert [hold.tags["output_tokens"] for hold in holds] == [7, 7, 7]
    assert sum(hold.settled["usd"] for hold in holds) == fake.bill
    check_journal(ledger)


async def test_async_raw_and_streaming_response_variants_are_held(
    aledger: AsyncLedger, fake: FakeProvider
) -> None:
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    raw = await guarded.responses.with_raw_response.create(model=MODEL, input="hi")
    assert raw.parse().usage.output_tokens == 7
    async with guarded.chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=20, stream=True
    ) as response:
        async for _line in response.iter_lines():
            pass
    holds = await aledger.holds(state=None)
    assert [hold.state for hold in holds] == ["settled", "settled"]
    assert sum(hold.settled["usd"] for hold in holds) == fake.bill
    await acheck_journal(aledger)


def _embedding_book() -> Pricebook:
    book = Pricebook()
    book.set_price(EMBEDDING_MODEL, input="0.02", output="0", provider="openai")
    return book


def test_embeddings_are_held_and_settled(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(openai), in_rate="0.02", out_rate="0")
    client, _ = openai_clients(fake)
    book = _embedding_book()
    guarded = wrap(client, ledger, scopes=["user:u1"], pricebook=book)
    result = guarded.embeddings.create(
        model=EMBEDDING_MODEL, input=["ledgers balance", "debits and credits"]
    )
    assert len(result.data) == 2 and result.data[0].embedding == [0.25, -0.5, 1.0]
    assert "max_tokens" not in fake.bodies[0]  # an embedding has no output to limit
    hold = settled(ledger)
    assert hold.settled["usd"] == book.cost(EMBEDDING_MODEL, result.usage, "openai") == fake.bill
    assert 0 < hold.settled["usd"] <= hold.amounts["usd"]
    check_journal(ledger)


async def test_async_embeddings_are_held_and_settled(aledger: AsyncLedger) -> None:
    fake = FakeProvider(http_module(openai), in_rate="0.02", out_rate="0")
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"], pricebook=_embedding_book())
    await guarded.embeddings.create(model=EMBEDDING_MODEL, input="ledgers balance")
    (hold,) = await aledger.holds(state=None)
    assert hold.settled["usd"] == fake.bill
    await acheck_journal(aledger)


def test_legacy_completions_are_held(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(openai), in_rate="1.50", out_rate="2.00", want=4)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    model = "gpt-3.5-turbo-instruct"
    completion = guarded.completions.create(model=model, prompt="Say hello", max_tokens=10)
    chunks = list(
        guarded.completions.create(model=model, prompt="Say hello", max_tokens=10, stream=True)
    )
    assert all(chunk.choices for chunk in chunks)  # the usage chunk is hidden here too
    first, second = ledger.holds(state=None)
    assert first.settled["usd"] == pricing.cost(model, completion.usage)
    assert second.tags["output_tokens"] == 4
    assert first.settled["usd"] + second.settled["usd"] == fake.bill
    check_journal(ledger)


# --- free and refused endpoints ------------------------------------------------------------


def test_free_endpoints_pass_unheld(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    assert [model.id for model in guarded.models.list()] == ["gpt-4o-mini"]
    guarded.moderations.create(input="hello", extra_headers=call_options(request_id="m-1"))
    assert [(seen.method, seen.path) for seen in fake.requests] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/moderations"),
    ]
    assert own_headers(fake) == []
    assert ledger.holds(state=None) == [] and fake.bill == 0


def test_unguarded_endpoint_is_refused_before_sending(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(UnguardedRequest, match="images/generations") as refused:
        guarded.images.generate(model="dall-e-3", prompt="a ledger")
    assert refused.value.endpoint == "POST images/generations"
    assert "unguarded=['images/generations']" in str(refused.value)
    assert fake.requests == []  # nothing reached the provider
    assert ledger.holds(state=None) == []


def test_unguarded_endpoint_named_in_wrap_passes_journaled(
    ledger: Ledger, fake: FakeProvider
) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"], unguarded=["images/generations"])
    image = guarded.images.generate(
        model="dall-e-3", prompt="a ledger", extra_headers=call_options(request_id="img-1")
    )
    assert image.data[0].url == "https://x"
    hold = settled(ledger)
    assert hold.state == "settled" and hold.settled["usd"] == 0
    assert hold.request_id == "img-1"
    assert hold.tags["unguarded"] == "POST images/generations"
    assert own_headers(fake) == []
    # Unguarded means uncapped: the provider billed what the ledger never held.
    assert fake.bill == IMAGE_FEE
    assert ledger.balance("user:u1", unit="usd")[0].spent == 0
    check_journal(ledger)


async def test_async_unguarded_endpoints(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = openai_clients(fake)
    refusing = wrap(client, aledger, scopes=["user:u1"])
    with pytest.raises(UnguardedRequest):
        await refusing.images.generate(model="dall-e-3", prompt="a ledger")
    assert fake.requests == []
    allowing = wrap(client, aledger, scopes=["user:u1"], unguarded=["images/generations"])
    await allowing.images.generate(model="dall-e-3", prompt="a ledger")
    (hold,) = await aledger.holds(state=None)
    assert hold.tags["unguarded"] == "POST images/generations" and hold.settled["usd"] == 0
    await acheck_journal(aledger)


# --- failures: what may have been billed is settled, what was not is released ----------------


def test_sdk_retries_are_held_one_by_one(ledger: Ledger) -> None:
    """Two 500s then a reply, with ``max_retries=2``: three requests, three holds. A 500 may
    have been billed, so each settles its whole hold; the reply settles exactly."""
    fake = FakeProvider(http_module(openai), want=7, statuses=(500, 500))
    client, _ = openai_clients(fake, max_retries=2)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=20, extra_headers=call_options(request_id="r")
    )
    assert len(fake.requests) == 3
    first, second, third = ledger.holds(state=None)
    assert [h.request_id for h in (first, second, third)] == ["r", "r:retry-1", "r:retry-2"]
    for failed in (first, second):
        assert failed.state == "settled" and failed.tags["status"] == 500
        assert failed.settled["usd"] == failed.amounts["usd"]  # the worst case
    assert third.settled["usd"] == fake.bill < third.amounts["usd"]
    spent = ledger.balance("user:u1", unit="usd")[0].spent
    assert spent == first.amounts["usd"] + second.amounts["usd"] + fake.bill
    check_journal(ledger)


async def test_async_sdk_retries_are_held_one_by_one(aledger: AsyncLedger) -> None:
    fake = FakeProvider(http_module(openai), want=7, statuses=(500, 500))
    _, client = openai_clients(fake, max_retries=2)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    await guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20)
    holds = await aledger.holds(state=None)
    assert len(holds) == 3 == len(fake.requests)
    # No request_id was given: each attempt has an id of its own.
    assert len({hold.request_id for hold in holds}) == 3
    assert [h.settled["usd"] == h.amounts["usd"] for h in holds] == [True, True, False]
    assert holds[2].settled["usd"] == fake.bill
    await acheck_journal(aledger)


@pytest.mark.parametrize("status", [400, 401, 404, 422, 429, 503])
def test_an_unbilled_reply_releases(ledger: Ledger, status: int) -> None:
    fake = FakeProvider(http_module(openai), status=status)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(openai.APIStatusError) as caught:
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == status  # the SDK's own error, unchanged
    with pytest.raises(openai.APIStatusError):
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert [hold.state for hold in ledger.holds(state=None)] == ["released", "released"]
    assert ledger.balance("user:u1", unit="usd")[0].spent == 0
    check_journal(ledger)


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_a_reply_that_may_have_been_billed_settles_the_hold(ledger: Ledger, status: int) -> None:
    fake = FakeProvider(http_module(openai), status=status)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(openai.APIStatusError):
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    hold = settled(ledger)
    assert hold.state == "settled" and hold.settled["usd"] == hold.amounts["usd"]
    assert hold.tags["status"] == status
    check_journal(ledger)


def test_connection_never_made_releases(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(openai), raises="ConnectError")
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(openai.APIConnectionError):
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert settled(ledger).state == "released"
    check_journal(ledger)


def test_timeout_after_sending_settles_the_hold(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(openai), raises="ReadTimeout")
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(openai.APITimeoutError):
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    hold = settled(ledger)
    assert hold.state == "settled" and hold.settled["usd"] == hold.amounts["usd"]
    assert hold.tags["error"] == "ReadTimeout"
    check_journal(ledger)


def test_unreadable_or_usage_less_reply_settles_the_hold(ledger: Ledger) -> None:
    garbled = FakeProvider(http_module(openai), garbage=True)
    client, _ = openai_clients(garbled)
    wrap(client, ledger, scopes=["user:u1"]).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=100
    )
    silent = FakeProvider(http_module(openai), usage=False)
    client, _ = openai_clients(silent)
    wrap(client, ledger, scopes=["user:u1"]).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=100
    )
    unreadable, missing = ledger.holds(state=None)
    assert unreadable.tags["usage"] == "unreadable" and missing.tags["usage"] == "missing"
    for hold in (unreadable, missing):
        assert hold.settled["usd"] == hold.amounts["usd"]
    check_journal(ledger)


async def test_cancelled_task_settles_the_hold(aledger: AsyncLedger) -> None:
    """A task cancelled while the provider works may already be billed: the hold settles."""
    hx = http_module(openai)
    arrived = asyncio.Event()

    async def slow_provider(request: Any) -> Any:
        arrived.set()
        await asyncio.Event().wait()  # never answers

    client = openai.AsyncOpenAI(
        api_key="test",
        max_retries=0,
        http_client=hx.AsyncClient(transport=hx.MockTransport(slow_provider)),
    )
    guarded = wrap(client, aledger, scopes=["user:u1"])
    task = asyncio.create_task(
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=100)
    )
    await arrived.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (hold,) = await aledger.holds(state=None)
    assert hold.state == "settled" and hold.settled["usd"] == hold.amounts["usd"]
    assert hold.tags["error"] == "CancelledError"
    await acheck_journal(aledger)


# --- streams that end without the provider's usage -------------------------------------------


@pytest.mark.parametrize("settle_incomplete", ["held", "observed"])
def test_connection_drop_mid_stream(ledger: Ledger, settle_incomplete: str) -> None:
    fake = FakeProvider(http_module(openai), want=50, drop_after=3)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"], settle_incomplete=settle_incomplete)
    stream = guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    )
    received = []
    # openai 3 wraps the broken read in APIConnectionError; openai 2 lets httpx's error out.
    with pytest.raises((openai.APIConnectionError, http_module(openai).RemoteProtocolError)):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3
    hold = settled(ledger)
    assert hold.state == "settled" and hold.tags["stream"] == "failed"
    if settle_incomplete == "held":
        assert hold.tags["usage"] == "missing"
        assert hold.settled["usd"] == hold.amounts["usd"]
    else:
        # The input bound plus the output received: never less than what was billed.
        assert hold.tags["usage"] == "bound"
        assert fake.bill <= hold.settled["usd"] < hold.amounts["usd"]
    check_journal(ledger)


@pytest.mark.parametrize("settle_incomplete", ["held", "observed"])
def test_stream_closed_early(ledger: Ledger, settle_incomplete: str) -> None:
    fake = FakeProvider(http_module(openai), want=50)
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"], settle_incomplete=settle_incomplete)
    with guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    ) as stream:
        next(stream)
    hold = settled(ledger)
    assert hold.tags["stream"] == "abandoned"
    if settle_incomplete == "held":
        assert hold.settled["usd"] == hold.amounts["usd"]
    else:
        assert fake.bill <= hold.settled["usd"] < hold.amounts["usd"]
    check_journal(ledger)


def test_stream_completed_without_usage_settles_the_hold(ledger: Ledger) -> None:
    """A compatible server that ignores ``include_usage``: the stream ends with no usage."""
    fake = FakeProvider(http_module(openai), want=5, usage=False)
    client, _ = openai_clients(fake)
    held = wrap(client, ledger, scopes=["user:u1"])
    list(held.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, max_tokens=99))
    observed = wrap(client, ledger, scopes=["user:u1"], settle_incomplete="observed")
    list(
        observed.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, max_tokens=99)
    )
    whole, seen = ledger.holds(state=None)
    assert whole.tags["usage"] == "missing"
    assert whole.settled["usd"] == whole.amounts["usd"]
    assert seen.tags["usage"] == "bound"
    assert fake.bill / 2 <= seen.settled["usd"] < seen.amounts["usd"]
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
    assert hold.settled["usd"] == hold.amounts["usd"]
    check_journal(ledger)


async def test_async_abandoned_stream_is_settled(aledger: AsyncLedger) -> None:
    fake = FakeProvider(http_module(openai), want=50)
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    closing = HoldClosing(aledger)
    stream = await guarded.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, max_completion_tokens=100
    )
    await anext(stream)
    del stream
    gc.collect()
    hold = await closing.hold()
    assert hold.state == "settled" and hold.tags["stream"] == "abandoned"
    assert hold.settled["usd"] == hold.amounts["usd"]
    await acheck_journal(aledger)


# --- closing a hold survives the SDK's own cleanup and cancellations -----------------------


def test_sync_chat_stream_read_to_the_end_is_tagged_completed(
    ledger: Ledger, fake: FakeProvider
) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    list(guarded.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    hold = settled(ledger)
    assert hold.settled["usd"] == fake.bill  # the money is right
    assert hold.tags["stream"] == "completed"


async def test_async_stream_settle_survives_the_sdk_drain_deadline(
    aledger: AsyncLedger, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # openai 3 drains a stream's body after [DONE] under a deadline; older SDKs do not.
    _streaming_cleanup = getattr(importlib.import_module("openai"), "_streaming_cleanup", None)

    from capledger.ledger import AsyncHold

    # A store that must wait for its turn (a busy batch, a network round trip), and a
    # deadline already passed: what 1000 concurrent streams on one SQLite file produce.
    original_settle = AsyncHold.settle

    async def waiting_settle(self: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return await original_settle(self, **kwargs)

    monkeypatch.setattr(AsyncHold, "settle", waiting_settle)
    if _streaming_cleanup is not None:
        monkeypatch.setattr(_streaming_cleanup, "_DRAIN_TIMEOUT", 0)
    _, client = openai_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    closing = HoldClosing(aledger)
    stream = await guarded.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    async for _chunk in stream:
        pass
    hold = await closing.hold()
    assert hold.state == "settled" and hold.settled["usd"] == fake.bill


async def test_settle_survives_an_anyio_cancel_scope(
    aledger: AsyncLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio

    from capledger.ledger import AsyncHold

    original_settle = AsyncHold.settle

    async def waiting_settle(self: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return await original_settle(self, **kwargs)

    monkeypatch.setattr(AsyncHold, "settle", waiting_settle)
    hx = http_module(openai)
    arrived = asyncio.Event()

    async def slow_provider(request: Any) -> Any:
        arrived.set()
        await asyncio.Event().wait()

    client = openai.AsyncOpenAI(
        api_key="test",
        max_retries=0,
        http_client=hx.AsyncClient(transport=hx.MockTransport(slow_provider)),
    )
    guarded = wrap(client, aledger, scopes=["user:u1"])
    scope = anyio.CancelScope()

    async def call() -> None:
        with scope:
            await guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=100)

    closing = HoldClosing(aledger)
    task = asyncio.create_task(call())
    await arrived.wait()
    scope.cancel()
    await task
    hold = await closing.hold()
    assert hold.state == "settled" and hold.settled["usd"] == hold.amounts["usd"]


# --- policies --------------------------------------------------------------------------------


def test_policy_raise_sends_nothing(ledger: Ledger, fake: FakeProvider) -> None:
    ledger.set_limit("user:u1", usd="0.0001")
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(BudgetExceeded) as caught:
        guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1000)
    assert caught.value.scope == "user:u1"
    assert fake.requests == [] and ledger.holds(state=None) == []


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


# --- scopes, configuration, the client itself ------------------------------------------------


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
    with pytest.raises(ConfigurationError, match="settle_incomplete"):
        wrap(client, ledger, scopes=["user:u1"], settle_incomplete="some")
    with pytest.raises(ConfigurationError, match="unguarded"):
        wrap(client, ledger, scopes=["user:u1"], unguarded="images/generations")
    with pytest.raises(ConfigurationError, match="no scope"):
        wrap(client, ledger).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert fake.requests == []


def test_wrapped_client_is_an_sdk_client_and_every_namespace_works(
    ledger: Ledger, fake: FakeProvider
) -> None:
    client, _ = openai_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    assert type(guarded) is openai.OpenAI and guarded is not client
    assert guarded.api_key == "test"
    # Clients derived from the wrapped one keep the guard.
    guarded.with_options(timeout=5).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=5
    )
    guarded.copy(max_retries=1).responses.create(model=MODEL, input="hi", max_output_tokens=5)
    guarded.chat.completions.parse(model=MODEL, messages=MESSAGES, max_tokens=20)
    assert [hold.state for hold in ledger.holds(state=None)] == ["settled"] * 3
    # The client given to wrap is left as it was: only the returned copy is guarded.
    client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
    assert len(ledger.holds(state=None)) == 3 and len(fake.requests) == 4
    check_journal(ledger)


def test_default_ttl_is_the_sdk_timeout_times_its_attempts(
    ledger: Ledger, fake: FakeProvider
) -> None:
    client, _ = openai_clients(fake, timeout=30.0, max_retries=2)
    wrap(client, ledger, scopes=["user:u1"]).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=5
    )
    wrap(client, ledger, scopes=["user:u1"], ttl=45).chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=5
    )
    default, given = ledger.holds(state=None)
    assert default.expires_at - default.created_at == timedelta(seconds=90)
    assert given.expires_at - given.created_at == timedelta(seconds=45)
