# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""capledger.wrap over the real ``anthropic`` package, served by a fake provider."""

from __future__ import annotations

import gc
from typing import Any

import pytest

anthropic = pytest.importorskip("anthropic")

from llm_fakes import FakeProvider, anthropic_clients, http_module, journal_is_clean

from capledger import AsyncLedger, BackendUnavailable, BudgetExceeded, Ledger, pricing
from capledger.integrations import wrap

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


def test_error_before_output_releases(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(anthropic), status=529)
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


def test_drop_mid_stream_settles_observed(ledger: Ledger) -> None:
    fake = FakeProvider(http_module(anthropic), in_rate="3", out_rate="15", want=40, drop_after=5)
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    with (
        pytest.raises(Exception) as caught,
        guarded.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream,
    ):
        for _text in stream.text_stream:
            pass
    assert not isinstance(caught.value, BudgetExceeded)
    (hold,) = holds(ledger)
    assert hold.state == "settled" and hold.tags["stream"] == "failed"
    assert fake.bill <= hold.settled["usd"] <= hold.amounts["usd"]
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
    assert fake.bill <= hold.settled["usd"]
    journal_is_clean(holds(ledger), ledger.verify())


def test_provider_overrunning_max_tokens_is_stopped(ledger: Ledger) -> None:
    """A provider that reports more output than it was allowed: observe() cannot extend the
    hold past the cap, so the stream is closed and what was reported is settled."""

    class Overrunning(FakeProvider):
        def _anthropic(self, model: str, p: int, k: int, stream: bool) -> Any:
            events = super()._anthropic(model, p, k, stream)
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
    report = ledger.verify()
    assert report.ok


def test_stream_helper_closes_the_sdk_manager_when_settling_fails(
    ledger: Ledger, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger error on leaving the block still reaches the caller, and the SDK's own
    manager is exited anyway, so its HTTP response is not leaked."""
    client, _ = anthropic_clients(fake)
    guarded = wrap(client, ledger, scopes=["user:u1"])
    exited: list[object] = []
    manager_class = type(client.messages.stream(model=MODEL, max_tokens=1, messages=MESSAGES))
    original_exit = manager_class.__exit__

    def spy_exit(self: Any, *args: Any) -> Any:
        exited.append(args)
        return original_exit(self, *args)

    monkeypatch.setattr(manager_class, "__exit__", spy_exit)

    def failing_settle(self: Any, **kwargs: Any) -> None:
        raise BackendUnavailable("the store went away")

    with (
        pytest.raises(BackendUnavailable),
        guarded.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream,
    ):
        next(iter(stream))
        hold = stream.hold
        monkeypatch.setattr(type(hold), "settle", failing_settle)
    assert len(exited) == 1
    monkeypatch.undo()
    ledger.release(hold.id)
