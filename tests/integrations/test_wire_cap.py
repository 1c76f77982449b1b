# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""End to end over real HTTP: a wrapped client never lets the provider's bill pass the cap,
and the ledger never records less than the provider billed.

The provider is ``capledger.testing.fake_provider.FakeProvider`` on loopback: it bills each
call when it starts processing it (whole generation, hidden reasoning included), keeps its
bill in exact ``Decimal`` and knows nothing of capledger's estimator. Every scenario runs
calls against a $0.05 cap with ``policy="clamp"`` until the budget refuses, through every
call path, streamed or not, sync and async, with retries, timeouts, broken and abandoned
streams, cancellations and parse errors; then:

- ``fake.bill <= cap``: the cap held against the provider's own bill;
- ``recorded >= fake.bill``: what the ledger says was spent covers what was billed.

OpenAI inputs are billed by the fake at one token per 6 bytes of their JSON: an exact
tokenizer (capledger's bound for OpenAI models) counts ordinary English at about one token
per 4.5 bytes, so the fake never bills more input than a real provider would. Anthropic
inputs are billed at one per 3 bytes, under capledger's byte bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
pydantic = pytest.importorskip("pydantic")

from capledger import AsyncLedger, BudgetExceeded, Ledger, LedgerError, UnguardedRequest
from capledger.integrations import wrap
from capledger.testing.fake_provider import Behaviour, FakeProvider

CAP = Decimal("0.05")
SCOPE = "user:alice"
WORDS = [
    "the",
    "quarterly",
    "report",
    "shows",
    "revenue",
    "growth",
    "across",
    "every",
    "region",
    "and",
    "product",
    "line",
]
#: Each guarded call of a scenario runs until the budget refuses; this bounds the loop.
CALLS = 40


class Answer(pydantic.BaseModel):
    answer: str
    score: int


def _prompt(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))


def _recorded(ledger: Ledger) -> Decimal:
    (row,) = [b for b in ledger.balance(SCOPE, unit="usd") if b.period == "total"]
    assert row.held == 0, "every hold is closed once the calls are over"
    return Decimal(row.spent)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    # o4-mini: $4.40 per million output tokens, and hidden reasoning inside the limit.
    with FakeProvider(want=300, reasoning=700, bytes_per_input_token=6) as provider:
        yield provider


@pytest.fixture
def anthropic_fake() -> Iterator[FakeProvider]:
    with FakeProvider(want=1500, reasoning=600) as provider:
        yield provider


def _ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.set_limit(SCOPE, usd=CAP)
    return ledger


def _capped_url(tmp_path: Path) -> str:
    """A SQLite ledger file with the scenario's cap set, for ledgers opened in other loops."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit(SCOPE, usd=CAP)
    return url


def _async_openai(fake: FakeProvider) -> Any:
    return openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)


def _openai(fake: FakeProvider, **options: Any) -> Any:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key="x", **options)


def _run_until_refused(call: Callable[[random.Random], object]) -> dict[str, int]:
    """Call until the budget refuses; count outcomes. Provider errors are part of the run."""
    rng = random.Random(7)
    outcomes = {"ok": 0, "refused": 0, "error": 0}
    for _ in range(CALLS):
        try:
            call(rng)
        except BudgetExceeded:
            outcomes["refused"] += 1
        except (openai.APIError, anthropic.APIError, pydantic.ValidationError):
            outcomes["error"] += 1
        except Exception as error:  # the SDK's parse errors, a stream's broken connection
            if isinstance(error, LedgerError):
                raise
            outcomes["error"] += 1
    return outcomes


def _check(fake: FakeProvider, ledger: Ledger, outcomes: dict[str, int]) -> None:
    fake.wait_idle()
    billed = fake.bill
    recorded = _recorded(ledger)
    assert billed <= CAP, f"the provider billed {billed} against a cap of {CAP}"
    assert recorded >= billed, f"recorded {recorded} < billed {billed}"
    assert outcomes["refused"] > 0, "the cap was never reached: the scenario proves nothing"
    assert billed > 0


def _messages(rng: random.Random) -> list[dict[str, str]]:
    return [{"role": "user", "content": _prompt(rng)}]


# --- OpenAI, synchronous: every path -----------------------------------------------------


def _chat(client: Any, rng: random.Random) -> object:
    return client.chat.completions.create(
        model="o4-mini", messages=_messages(rng), max_completion_tokens=2000
    )


def _chat_stream(client: Any, rng: random.Random) -> object:
    stream = client.chat.completions.create(
        model="o4-mini", messages=_messages(rng), max_completion_tokens=2000, stream=True
    )
    for chunk in stream:
        assert chunk.choices, "the usage chunk capledger asked for is not shown"
    return None


def _chat_stream_helper(client: Any, rng: random.Random) -> object:
    with client.chat.completions.stream(
        model="o4-mini", messages=_messages(rng), max_completion_tokens=2000
    ) as stream:
        return stream.get_final_completion()


def _chat_parse(client: Any, rng: random.Random) -> object:
    return client.chat.completions.parse(
        model="o4-mini", messages=_messages(rng), response_format=Answer, max_completion_tokens=2000
    )


def _raw(client: Any, rng: random.Random) -> object:
    return client.chat.completions.with_raw_response.create(
        model="o4-mini", messages=_messages(rng), max_completion_tokens=2000
    ).parse()


def _streaming_response(client: Any, rng: random.Random) -> object:
    with client.chat.completions.with_streaming_response.create(
        model="o4-mini", messages=_messages(rng), max_completion_tokens=2000
    ) as response:
        return response.parse()


def _responses(client: Any, rng: random.Random) -> object:
    return client.responses.create(model="o4-mini", input=_prompt(rng), max_output_tokens=2000)


def _responses_stream(client: Any, rng: random.Random) -> object:
    with client.responses.stream(
        model="o4-mini", input=_prompt(rng), max_output_tokens=2000
    ) as stream:
        for _event in stream:
            pass
    return None


def _responses_parse(client: Any, rng: random.Random) -> object:
    return client.responses.parse(
        model="o4-mini", input=_prompt(rng), text_format=Answer, max_output_tokens=2000
    )


def _no_limit(client: Any, rng: random.Random) -> object:
    # No output limit: wrap gives the request default_max_tokens, which the provider obeys.
    return client.chat.completions.create(model="o4-mini", messages=_messages(rng))


def _extra_body(client: Any, rng: random.Random) -> object:
    # extra_body changes the request behind the SDK's arguments; the wire sees the result.
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=_messages(rng),
        max_completion_tokens=10,
        extra_body={"model": "o4-mini", "max_completion_tokens": 4000, "n": 2},
    )


OPENAI_PATHS = {
    "chat": _chat,
    "chat stream": _chat_stream,
    "chat.completions.stream": _chat_stream_helper,
    "chat.completions.parse": _chat_parse,
    "with_raw_response": _raw,
    "with_streaming_response": _streaming_response,
    "responses": _responses,
    "responses.stream": _responses_stream,
    "responses.parse": _responses_parse,
    "no output limit": _no_limit,
    "extra_body": _extra_body,
}


@pytest.mark.parametrize("path", sorted(OPENAI_PATHS))
def test_openai_paths_stay_under_the_cap(path: str, fake: FakeProvider, tmp_path: Path) -> None:
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        outcomes = _run_until_refused(lambda rng: OPENAI_PATHS[path](client, rng))
        _check(fake, ledger, outcomes)


# --- faults --------------------------------------------------------------------------------


def test_sdk_retries_are_each_held(fake: FakeProvider, tmp_path: Path) -> None:
    # Every attempt fails with a billed 500 except every third: the SDK retries twice.
    fake.script = lambda path, body, attempt: (
        None if attempt % 3 == 0 else Behaviour(status=500, billed=True)
    )
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=2) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        outcomes = _run_until_refused(lambda rng: _chat(client, rng))
        _check(fake, ledger, outcomes)
        attempts = [h for h in ledger.holds(state=None) if ":retry-" not in h.request_id]
        assert len(ledger.holds(state=None)) >= len(attempts)


def test_sdk_timeouts_after_billing_settle_the_worst_case(
    fake: FakeProvider, tmp_path: Path
) -> None:
    fake.delay_s = 0.3  # the provider bills, then answers after the client gave up
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=2, timeout=0.1) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        outcomes = _run_until_refused(lambda rng: _chat(client, rng))
        _check(fake, ledger, outcomes)
        fake.wait_idle(5)
        assert len(fake.calls) >= 3, "each SDK attempt reached the provider"


@pytest.mark.parametrize("drop_after", [0, 1, 3])
def test_streams_broken_by_the_provider(
    drop_after: int, fake: FakeProvider, tmp_path: Path
) -> None:
    fake.drop_after = drop_after
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        outcomes = _run_until_refused(lambda rng: _chat_stream(client, rng))
        _check(fake, ledger, outcomes)


def test_streams_the_caller_leaves_early(fake: FakeProvider, tmp_path: Path) -> None:
    def break_early(rng: random.Random) -> None:
        stream = _client.chat.completions.create(
            model="o4-mini", messages=_messages(rng), max_completion_tokens=2000, stream=True
        )
        for _chunk in stream:
            break
        if rng.random() < 0.5:
            stream.close()  # the other half is simply dropped, and collected

    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        _client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        outcomes = _run_until_refused(break_early)
        import gc

        gc.collect()
        _check(fake, ledger, outcomes)


def test_streams_without_usage(fake: FakeProvider, tmp_path: Path) -> None:
    fake.omit_usage = True
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        outcomes = _run_until_refused(lambda rng: _chat_stream(client, rng))
        _check(fake, ledger, outcomes)


def test_observed_is_unsafe_for_reasoning_models(fake: FakeProvider, tmp_path: Path) -> None:
    """The documented risk of settle_incomplete="observed": hidden tokens are not seen."""
    fake.drop_after = 1
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp", settle_incomplete="observed")
        _run_until_refused(lambda rng: _chat_stream(client, rng))
        fake.wait_idle()
        assert _recorded(ledger) < fake.bill


def test_parse_errors_after_billing_are_settled(fake: FakeProvider, tmp_path: Path) -> None:
    fake.want = 5000  # more than the limit: the reply is cut, and parse() raises
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")

        def cut(rng: random.Random) -> object:
            with pytest.raises(openai.LengthFinishReasonError):
                _chat_parse(client, rng)
            return None

        outcomes = _run_until_refused(cut)
        _check(fake, ledger, outcomes)


def test_refused_endpoints_never_reach_the_provider(fake: FakeProvider, tmp_path: Path) -> None:
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        with pytest.raises(UnguardedRequest, match="images/generations"):
            client.images.generate(model="gpt-image-1", prompt="a cat")
        with pytest.raises(UnguardedRequest, match="batches"):
            client.batches.create(
                input_file_id="file_1", endpoint="/v1/chat/completions", completion_window="24h"
            )
        client.models.list()  # free
        fake.wait_idle()
        assert fake.bill == 0
        assert [call.path for call in fake.calls] == ["/v1/models"]


def test_embeddings_are_held_and_settled(fake: FakeProvider, tmp_path: Path) -> None:
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        client.embeddings.create(model="text-embedding-3-small", input=["a b c", "d e"])
        fake.wait_idle()
        assert _recorded(ledger) >= fake.bill > 0


# --- Anthropic ------------------------------------------------------------------------------


def _anthropic(fake: FakeProvider, **options: Any) -> Any:
    return anthropic.Anthropic(base_url=fake.url, api_key="x", **options)


def _messages_create(client: Any, rng: random.Random) -> object:
    return client.messages.create(
        model="claude-haiku-4-5", max_tokens=3000, messages=_messages(rng)
    )


def _messages_stream(client: Any, rng: random.Random) -> object:
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=3000, messages=_messages(rng)
    ) as stream:
        return stream.get_final_message()


def _messages_thinking(client: Any, rng: random.Random) -> object:
    return client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=_messages(rng),
    )


def _beta_messages(client: Any, rng: random.Random) -> object:
    return client.beta.messages.create(
        model="claude-haiku-4-5", max_tokens=3000, messages=_messages(rng)
    )


def _anthropic_raw(client: Any, rng: random.Random) -> object:
    return client.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=3000, messages=_messages(rng)
    ).parse()


ANTHROPIC_PATHS = {
    "messages": _messages_create,
    "messages.stream": _messages_stream,
    "thinking": _messages_thinking,
    "beta.messages": _beta_messages,
    "with_raw_response": _anthropic_raw,
}


@pytest.mark.parametrize("path", sorted(ANTHROPIC_PATHS))
def test_anthropic_paths_stay_under_the_cap(
    path: str, anthropic_fake: FakeProvider, tmp_path: Path
) -> None:
    with _ledger(tmp_path) as ledger, _anthropic(anthropic_fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")
        outcomes = _run_until_refused(lambda rng: ANTHROPIC_PATHS[path](client, rng))
        _check(anthropic_fake, ledger, outcomes)


def test_anthropic_broken_streams(anthropic_fake: FakeProvider, tmp_path: Path) -> None:
    anthropic_fake.drop_after = 1
    with _ledger(tmp_path) as ledger, _anthropic(anthropic_fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, policy="clamp")

        def stream(rng: random.Random) -> None:
            for _event in client.messages.create(
                model="claude-haiku-4-5", max_tokens=3000, messages=_messages(rng), stream=True
            ):
                pass

        outcomes = _run_until_refused(stream)
        _check(anthropic_fake, ledger, outcomes)


# --- asynchronous: 480 concurrent mixed calls ---------------------------------------------


async def _mixed_call(client: Any, index: int, rng: random.Random) -> str:
    kind = index % 6
    try:
        if kind == 0:
            await client.chat.completions.create(
                model="o4-mini", messages=_messages(rng), max_completion_tokens=2000
            )
        elif kind in (1, 2):
            stream = await client.chat.completions.create(
                model="o4-mini", messages=_messages(rng), max_completion_tokens=2000, stream=True
            )
            async for _chunk in stream:
                if kind == 1:  # a third of the calls are streams broken early
                    await stream.close()
                    break
        elif kind == 3:
            await client.responses.create(
                model="o4-mini", input=_prompt(rng), max_output_tokens=2000
            )
        elif kind == 4:
            async with client.responses.stream(
                model="o4-mini", input=_prompt(rng), max_output_tokens=2000
            ) as stream:
                async for _event in stream:
                    break  # another third broken early
        else:
            await client.chat.completions.parse(
                model="o4-mini",
                messages=_messages(rng),
                response_format=Answer,
                max_completion_tokens=2000,
            )
    except BudgetExceeded:
        return "refused"
    except openai.OpenAIError:  # a cut reply that parse() refuses, a broken stream
        return "error"
    return "ok"


def _concurrent_under_the_cap(
    fake: FakeProvider,
    tmp_path: Path,
    make_client: Callable[[], Any],
    call: Callable[[Any, int, random.Random], Awaitable[str]],
    calls: int,
) -> None:
    """``calls`` concurrent guarded calls on an ``AsyncLedger``, then the two promises."""
    url = _capped_url(tmp_path)

    async def main() -> list[str]:
        async with AsyncLedger(url) as aledger, make_client() as raw:
            client = wrap(raw, aledger, scopes=SCOPE, policy="clamp")
            rng = random.Random(11)
            return await asyncio.gather(*(call(client, index, rng) for index in range(calls)))

    outcomes = asyncio.run(main())
    with Ledger(url) as ledger:
        counts = {name: outcomes.count(name) for name in ("ok", "refused", "error")}
        _check(fake, ledger, counts)
        assert counts["ok"] > 0


def test_480_concurrent_mixed_calls(fake: FakeProvider, tmp_path: Path) -> None:
    _concurrent_under_the_cap(fake, tmp_path, lambda: _async_openai(fake), _mixed_call, 480)


def test_async_stream_abandoned_when_its_loop_ends(fake: FakeProvider, tmp_path: Path) -> None:
    url = _capped_url(tmp_path)

    async def main() -> None:
        aledger = AsyncLedger(url)
        raw = _async_openai(fake)
        client = wrap(raw, aledger, scopes=SCOPE)
        stream = await client.chat.completions.create(
            model="o4-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for _chunk in stream:
            break
        # Returned with the stream open: asyncio.run closes it before the loop ends.
        stream_holder.append(stream)

    stream_holder: list[Any] = []
    asyncio.run(main())
    with Ledger(url) as ledger:
        assert ledger.holds() == [], "no hold is left to expire"
        (hold,) = ledger.holds(state=None)
        assert hold.state == "settled"
        fake.wait_idle()
        assert _recorded(ledger) >= fake.bill > 0


def test_async_cancelled_call_settles(fake: FakeProvider, tmp_path: Path) -> None:
    fake.delay_s = 1.0
    url = _capped_url(tmp_path)

    async def main() -> None:
        async with AsyncLedger(url) as aledger, _async_openai(fake) as raw:
            client = wrap(raw, aledger, scopes=SCOPE)
            task = asyncio.ensure_future(
                client.chat.completions.create(
                    model="o4-mini", messages=[{"role": "user", "content": "hi"}]
                )
            )
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    fake.wait_idle(5)
    with Ledger(url) as ledger:
        assert ledger.holds() == []
        assert _recorded(ledger) >= fake.bill > 0


def test_copies_stay_guarded_even_with_a_new_http_client(
    fake: FakeProvider, tmp_path: Path
) -> None:
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE)
        other = openai.DefaultHttpxClient()
        for copy in (client.with_options(timeout=5), client.copy(http_client=other)):
            copy.chat.completions.create(
                model="o4-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=50
            )
            with pytest.raises(UnguardedRequest, match="realtime"):
                copy.realtime.connect(model="gpt-realtime")
        fake.wait_idle()
        assert len(ledger.holds(state=None)) == 2
        assert _recorded(ledger) >= fake.bill > 0
        other.close()


def test_websockets_can_be_allowed_by_name(fake: FakeProvider, tmp_path: Path) -> None:
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, unguarded=["realtime.connect"])
        assert client.realtime.connect.__module__.startswith("openai")
        with pytest.raises(UnguardedRequest):
            client.responses.connect()


async def _anthropic_call(client: Any, index: int, rng: random.Random) -> str:
    kind = index % 4
    try:
        if kind == 0:
            await client.messages.create(
                model="claude-haiku-4-5", max_tokens=3000, messages=_messages(rng)
            )
        elif kind == 1:
            stream = await client.messages.create(
                model="claude-haiku-4-5", max_tokens=3000, messages=_messages(rng), stream=True
            )
            async for _event in stream:
                await stream.close()  # broken early
                break
        elif kind == 2:
            async with client.messages.stream(
                model="claude-haiku-4-5", max_tokens=3000, messages=_messages(rng)
            ) as stream:
                await stream.get_final_message()
        else:
            await client.beta.messages.create(
                model="claude-haiku-4-5",
                max_tokens=3000,
                thinking={"type": "enabled", "budget_tokens": 1024},
                messages=_messages(rng),
            )
    except BudgetExceeded:
        return "refused"
    except anthropic.AnthropicError:
        return "error"
    return "ok"


def test_anthropic_async_concurrent_mixed_calls(
    anthropic_fake: FakeProvider, tmp_path: Path
) -> None:
    def client() -> Any:
        return anthropic.AsyncAnthropic(base_url=anthropic_fake.url, api_key="x", max_retries=0)

    _concurrent_under_the_cap(anthropic_fake, tmp_path, client, _anthropic_call, 160)


def test_one_request_id_never_covers_two_requests(fake: FakeProvider, tmp_path: Path) -> None:
    """A job id reused by two concurrent sends (a queue delivering twice): the provider
    would bill both, so the second is refused before it is sent, never given the first's
    hold."""
    from concurrent.futures import ThreadPoolExecutor

    from capledger import IdempotencyConflict
    from capledger.integrations import call_options

    fake.delay_s = 0.3  # the first is still in flight when the second arrives
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE)

        def send(_: int) -> str:
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "same job"}],
                    max_tokens=50,
                    extra_headers=call_options(request_id="job-42"),
                )
            except IdempotencyConflict:
                return "refused"
            return "sent"

        with ThreadPoolExecutor(4) as pool:
            outcomes = sorted(pool.map(send, range(4)))
        fake.wait_idle()
        assert outcomes.count("sent") == len(fake.calls) >= 1
        assert _recorded(ledger) >= fake.bill > 0


def test_a_stream_longer_than_its_ttl_keeps_its_hold(fake: FakeProvider, tmp_path: Path) -> None:
    fake.want, fake.reasoning = 40, 0
    fake.script = lambda path, body, attempt: Behaviour(delay_s=0)
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE, ttl=1)
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for _chunk in stream:
            time.sleep(0.06)  # 40 chunks: the read outlasts the 1 s TTL
        (hold,) = ledger.holds(state=None)
        assert hold.state == "settled" and "late" not in hold.flags
        fake.wait_idle()
        assert _recorded(ledger) >= fake.bill > 0


def test_a_call_cancelled_while_its_hold_is_placed_leaves_none_open(
    fake: FakeProvider, tmp_path: Path
) -> None:
    url = _capped_url(tmp_path)

    async def main() -> None:
        async with AsyncLedger(url) as aledger, _async_openai(fake) as raw:
            client = wrap(raw, aledger, scopes=SCOPE)
            for delay in [i / 2000 for i in range(40)]:
                task = asyncio.ensure_future(
                    client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "hi"}],
                        max_tokens=20,
                    )
                )
                await asyncio.sleep(delay)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.sleep(0.2)  # the releases of unsent holds run

    asyncio.run(main())
    fake.wait_idle()
    with Ledger(url) as ledger:
        assert ledger.holds() == [], "no hold is left to expire"
        assert _recorded(ledger) >= fake.bill


def test_free_endpoints_pass_and_cost_nothing(fake: FakeProvider, tmp_path: Path) -> None:
    with _ledger(tmp_path) as ledger, _openai(fake, max_retries=0) as raw:
        client = wrap(raw, ledger, scopes=SCOPE)
        client.moderations.create(input="is this fine?")
        client.files.create(file=("a.jsonl", b"{}"), purpose="batch")
        client.models.list()
        fake.wait_idle()
        assert len(fake.calls) == 3 and fake.bill == 0
        assert ledger.holds(state=None) == []
