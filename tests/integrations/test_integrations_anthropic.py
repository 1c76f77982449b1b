# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""capledger.wrap over the real ``anthropic`` package, served by a fake provider.

``messages.stream(...)``, ``beta.messages`` and the raw-response variants are the SDK's own:
their requests are held at the wire, like ``messages.create``.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

anthropic = pytest.importorskip("anthropic")

from llm_fakes import FakeProvider, anthropic_clients, http_module, journal_is_clean

from capledger import (
    AsyncLedger,
    BackendUnavailable,
    BudgetExceeded,
    Ledger,
    UnguardedRequest,
    pricing,
)
from capledger.integrations import call_options, wrap

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "summarise the ledger in one line"}]


@pytest.fixture
def fake() -> FakeProvider:
    # Claude Sonnet 4.6's rates, so the fake's bill is the price list's.
    return FakeProvider(
        http_module(anthropic), in_rate="3", out_rate="15", cache_rate="0.30", want=9, cached=1
    )


def holds(ledger: Ledger) -> list[Any]:
    return ledger.holds(state=None)


def test_messages_create(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    message = guarded.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    (hold,) = holds(ledger)
    assert hold.settled["usd"] == pricing.cost(MODEL, message.usage) == fake.bill
    assert hold.tags["cached_tokens"] == 1 and hold.tags["output_tokens"] == 9
    assert hold.tags["provider"] == "anthropic"
    journal_is_clean(holds(ledger), ledger.verify())


def test_messages_create_stream_and_stream_helper(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    events = list(
        guarded.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    )
    assert events[-1].type == "message_stop"
    with guarded.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        assert "".join(stream.text_stream) == "tok " * 9
        final = stream.get_final_message()
    first, second = holds(ledger)
    assert first.settled["usd"] == second.settled["usd"] == pricing.cost(MODEL, final.usage)
    assert first.settled["usd"] + second.settled["usd"] == fake.bill
    assert second.tags["stream"] == "completed"
    journal_is_clean(holds(ledger), ledger.verify())


async def test_async_create_and_stream(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = anthropic_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    await guarded.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    stream = await guarded.messages.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, stream=True
    )
    async for _event in stream:
        pass
    async with guarded.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as helper:
        text = "".join([piece async for piece in helper.text_stream])
        await helper.get_final_message()
    assert text == "tok " * 9
    done = await aledger.holds(state=None)
    assert [hold.state for hold in done] == ["settled"] * 3
    assert sum(hold.settled["usd"] for hold in done) == fake.bill
    journal_is_clean(done, await aledger.verify())


def test_beta_messages_are_held(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    message = guarded.beta.messages.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, betas=["context-1m-2025-08-07"]
    )
    with guarded.beta.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert [seen.path for seen in fake.requests] == ["/v1/messages", "/v1/messages"]
    first, second = holds(ledger)
    assert first.settled["usd"] == pricing.cost(MODEL, message.usage)
    assert second.settled["usd"] == pricing.cost(MODEL, final.usage)
    assert first.settled["usd"] + second.settled["usd"] == fake.bill
    journal_is_clean(holds(ledger), ledger.verify())


async def test_async_beta_messages_are_held(aledger: AsyncLedger, fake: FakeProvider) -> None:
    _, client = anthropic_clients(fake)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    await guarded.beta.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    async with guarded.beta.messages.stream(
        model=MODEL, max_tokens=64, messages=MESSAGES
    ) as stream:
        await stream.get_final_message()
    done = await aledger.holds(state=None)
    assert [hold.state for hold in done] == ["settled", "settled"]
    assert sum(hold.settled["usd"] for hold in done) == fake.bill
    journal_is_clean(done, await aledger.verify())


def test_raw_and_streaming_response_variants_are_held(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    raw = guarded.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert raw.parse().usage.output_tokens == 9
    with guarded.messages.with_streaming_response.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, stream=True
    ) as response:
        for _line in response.iter_lines():
            pass
    first, second = holds(ledger)
    assert first.state == second.state == "settled"
    assert second.tags["output_tokens"] == 9
    assert first.settled["usd"] + second.settled["usd"] == fake.bill
    journal_is_clean(holds(ledger), ledger.verify())


def test_per_call_options_and_free_token_counting(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["tenant:acme"])
    counted = guarded.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert counted.input_tokens > 0
    assert holds(ledger) == [] and fake.bill == 0  # counting tokens is free
    guarded.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=MESSAGES,
        extra_headers=call_options(scopes="user:u1", tags={"ticket": "T-2"}, request_id="m-1"),
    )
    (hold,) = holds(ledger)
    assert hold.request_id == "m-1" and hold.scopes == ("tenant:acme", "user:u1")
    assert hold.tags["ticket"] == "T-2"
    sent = [name for seen in fake.requests for name in seen.headers]
    assert not any(name.startswith("capledger-") for name in sent)
    journal_is_clean(holds(ledger), ledger.verify())


def test_unpriced_endpoint_is_refused(ledger: Ledger, fake: FakeProvider) -> None:
    """A message batch is billed later, by another route: it cannot be held, so it is
    refused before it is sent."""
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    request = {"custom_id": "a", "params": {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}}
    with pytest.raises(Exception) as caught:
        guarded.messages.batches.create(requests=[request])
    refused = caught.value if isinstance(caught.value, UnguardedRequest) else caught.value.__cause__
    assert isinstance(refused, UnguardedRequest)
    assert refused.endpoint == "POST messages/batches"
    assert fake.requests == [] and holds(ledger) == []


@pytest.mark.parametrize("refusal", ["budget", "unguarded"])
def test_refusals_reach_the_caller_as_themselves(
    ledger: Ledger, fake: FakeProvider, refusal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.set_limit("user:u1", usd="0.000001")
    client, _ = anthropic_clients(fake, max_retries=2)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    retries: list[object] = []
    monkeypatch.setattr(
        type(guarded), "_sleep_for_retry", lambda self, **kwargs: retries.append(kwargs)
    )
    with pytest.raises(BudgetExceeded if refusal == "budget" else UnguardedRequest):
        if refusal == "budget":
            guarded.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        else:
            guarded.messages.batches.create(requests=[])
    assert retries == []  # a refusal is final: the SDK must not try again
    assert fake.requests == []


def test_wrapped_client_is_an_sdk_client(ledger: Ledger, fake: FakeProvider) -> None:
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    assert type(guarded) is anthropic.Anthropic and guarded is not client
    guarded.with_options(timeout=5).messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert holds(ledger)[0].state == "settled"


@pytest.mark.parametrize("status", [400, 429, 503, 529])
def test_unbilled_replies_release(ledger: Ledger, status: int) -> None:
    fake = FakeProvider(http_module(anthropic), status=status)
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with pytest.raises(anthropic.APIStatusError):
        guarded.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    with (
        pytest.raises(anthropic.APIStatusError),
        guarded.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES),
    ):
        pass
    assert [hold.state for hold in holds(ledger)] == ["released", "released"]
    journal_is_clean(holds(ledger), ledger.verify())


def test_retries_after_overloaded_replies(ledger: Ledger) -> None:
    """529 (overloaded) twice, then a reply: Anthropic does not bill a 529, so the first two
    holds are released; each retry is its own hold, named after the caller's request id."""
    fake = FakeProvider(http_module(anthropic), in_rate="3", out_rate="15", statuses=(529, 529))
    client, _ = anthropic_clients(fake, max_retries=2)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    guarded.messages.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers=call_options(request_id="q")
    )
    first, second, third = holds(ledger)
    assert [h.request_id for h in (first, second, third)] == ["q", "q:retry-1", "q:retry-2"]
    assert [h.state for h in (first, second, third)] == ["released", "released", "settled"]
    assert third.settled["usd"] == fake.bill
    journal_is_clean(holds(ledger), ledger.verify())


async def test_async_retries_after_server_errors(aledger: AsyncLedger) -> None:
    fake = FakeProvider(http_module(anthropic), in_rate="3", out_rate="15", statuses=(500, 500))
    _, client = anthropic_clients(fake, max_retries=2)
    guarded = wrap(client, aledger, scopes=["user:u1"])
    await guarded.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    done = await aledger.holds(state=None)
    assert len(done) == 3 == len(fake.requests)
    assert [h.settled["usd"] == h.amounts["usd"] for h in done] == [True, True, False]
    assert done[2].settled["usd"] == fake.bill
    journal_is_clean(done, await aledger.verify())


@pytest.mark.parametrize("settle_incomplete", ["held", "observed"])
def test_drop_mid_stream(ledger: Ledger, settle_incomplete: str) -> None:
    fake = FakeProvider(http_module(anthropic), in_rate="3", out_rate="15", want=40, drop_after=5)
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"], settle_incomplete=settle_incomplete)
    with (
        pytest.raises(Exception) as caught,
        guarded.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream,
    ):
        for _text in stream.text_stream:
            pass
    # The transport's own exception reaches the caller, as the SDK passes it on.
    assert type(caught.value).__name__ in ("RemoteProtocolError", "APIConnectionError")
    (hold,) = holds(ledger)
    assert hold.state == "settled" and hold.tags["stream"] == "failed"
    if settle_incomplete == "held":
        assert hold.settled["usd"] == hold.amounts["usd"]
    else:
        # message_start's input count and the output seen: never below what was billed.
        assert fake.bill <= hold.settled["usd"] < hold.amounts["usd"]
    journal_is_clean(holds(ledger), ledger.verify())


def test_abandoned_stream_settles(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(anthropic), in_rate="3", out_rate="15", want=40)
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    stream = guarded.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    for _ in range(4):
        next(stream)
    del stream
    gc.collect()
    (hold,) = holds(ledger)
    assert hold.state == "settled" and hold.tags["stream"] == "abandoned"
    assert hold.settled["usd"] == hold.amounts["usd"]
    journal_is_clean(holds(ledger), ledger.verify())


def test_provider_overrunning_max_tokens_is_settled_in_full(ledger: Ledger) -> None:
    """A provider that reports more output than it was allowed: the guard reports it to the
    ledger at once; the budget cannot pay, so the stream is stopped with ``BudgetExceeded``
    and what the provider reported is settled, past the cap, and flagged ``overrun``."""

    class Overrunning(FakeProvider):
        def _anthropic(self, model: str, p: int, k: int, stream: bool, cut: bool) -> Any:
            events = super()._anthropic(model, p, k, stream, cut)
            for name, data, _content in events:
                if name == "message_delta":
                    data["usage"]["output_tokens"] = 100_000
            return events

    fake = Overrunning(http_module(anthropic), in_rate="3", out_rate="15", want=10)
    ledger.set_limit("user:u1", usd="0.01")
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    stream = guarded.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    with pytest.raises(BudgetExceeded):
        for _event in stream:
            pass
    (hold,) = holds(ledger)
    assert hold.state == "settled" and hold.tags["stream"] == "stopped"
    assert hold.settled["usd"] > hold.amounts["usd"] and hold.flags == {"overrun"}
    report = ledger.verify()
    assert report.ok and report.overruns == ["user:u1 usd/total"]


def test_a_ledger_failure_while_settling_reaches_the_caller(
    ledger: Ledger, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream ended and its usage is known, but the store is gone: the caller hears of
    it, rather than a spend going unrecorded in silence."""
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])

    def failing_settle(self: Any, **kwargs: Any) -> None:
        raise BackendUnavailable("the store went away")

    hold_class = type(ledger.reserve("user:u1", usd="0.01"))
    monkeypatch.setattr(hold_class, "settle", failing_settle)
    with (
        pytest.raises(BackendUnavailable),
        guarded.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream,
    ):
        stream.get_final_message()
    monkeypatch.undo()
    for hold in ledger.holds():
        ledger.release(hold.id)
