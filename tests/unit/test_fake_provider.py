"""The fake provider bills like a provider, over real HTTP, and the real SDKs can read it.

Every expected bill below is worked out by hand from the formula in the module docstring
(input = ceil(bytes of the compact, sorted JSON of the input-bearing keys / 3)), not with
the module's own helpers.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from pydantic import BaseModel

from capledger.testing.fake_provider import (
    DEFAULT_PRICES,
    Behaviour,
    FakePrices,
    FakeProvider,
)

MESSAGES = [{"role": "user", "content": "hello"}]
#: The input of MESSAGES as the fake counts it: 47 bytes -> 16 tokens.
MESSAGES_JSON = '{"messages":[{"content":"hello","role":"user"}]}'
MESSAGES_TOKENS = math.ceil(len(MESSAGES_JSON) / 3)
MILLION = Decimal(1_000_000)


def usd(tokens: int, rate: str) -> Decimal:
    """What ``tokens`` cost at ``rate`` USD per million tokens."""
    return tokens * Decimal(rate) / MILLION


def post(fake: FakeProvider, path: str, body: Any, *, raw: bytes | None = None) -> Any:
    """POST with the stdlib client: ``(status, parsed JSON or SSE text)``."""
    connection = http.client.HTTPConnection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]))
    try:
        data = raw if raw is not None else json.dumps(body).encode()
        connection.request("POST", path, data, {"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read().decode()
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            return response.status, text
        return response.status, json.loads(text)
    finally:
        connection.close()


def sse_data(text: str) -> list[Any]:
    """The JSON payloads of an SSE body (``[DONE]`` kept as a string)."""
    payloads = [
        line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")
    ]
    return [payload if payload == "[DONE]" else json.loads(payload) for payload in payloads]


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(want=5, reasoning=7) as provider:
        yield provider


@pytest.fixture
def oai(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def claude(fake: FakeProvider) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=fake.url, api_key="x", max_retries=0)
    yield client
    client.close()


class Answer(BaseModel):
    answer: str
    score: int


# -- billing ------------------------------------------------------------------------------


def test_chat_bills_input_and_every_choice_exactly(fake: FakeProvider, oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)  # type: ignore[arg-type]
    assert MESSAGES_TOKENS == 16
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (16, 10)
    assert reply.usage.total_tokens == 26
    assert [choice.message.content for choice in reply.choices] == ["tok " * 5] * 2
    assert reply.choices[0].finish_reason == "stop"
    assert reply.service_tier == "default"
    expected = usd(16, "0.15") + usd(10, "0.60")
    assert fake.bill == expected == Decimal("0.0000084")
    [call] = fake.calls
    assert (call.path, call.method, call.status, call.model) == (
        "/v1/chat/completions",
        "POST",
        200,
        "gpt-4o-mini",
    )
    assert call.billed == expected and call.completed and not call.streamed
    assert call.usage["completion_tokens"] == 10 and call.attempt == 1


def test_tools_and_schemas_are_billed_as_input(fake: FakeProvider) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "tools": tools, "max_tokens": 3}
    status, reply = post(fake, "/v1/chat/completions", body)
    parts = {"messages": MESSAGES, "tools": tools}
    encoded = json.dumps(parts, separators=(",", ":"), sort_keys=True)
    assert status == 200
    assert reply["usage"]["prompt_tokens"] == math.ceil(len(encoded) / 3)
    assert reply["usage"]["prompt_tokens"] > MESSAGES_TOKENS


def test_a_bill_is_rounded_up_to_the_nano_dollar() -> None:
    prices = {"m": FakePrices("0.0000001", "0")}  # 16 tokens cost 1.6e-12 USD
    with FakeProvider(prices, want=0) as fake:
        post(fake, "/v1/chat/completions", {"model": "m", "messages": MESSAGES})
        assert fake.bill == Decimal("1e-9")


def test_max_tokens_cut_the_reply_and_the_bill(fake: FakeProvider, oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_completion_tokens=3,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "tok " * 3
    assert fake.bill == usd(16, "0.15") + usd(3, "0.60")
    status, legacy = post(
        fake,
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 2},
    )
    assert status == 200 and legacy["usage"]["completion_tokens"] == 2


def test_reasoning_is_spent_first_and_inside_the_limit(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    roomy = oai.chat.completions.create(
        model="o4-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_completion_tokens=100,
    )
    assert roomy.usage is not None and roomy.usage.completion_tokens == 12
    assert roomy.usage.completion_tokens_details is not None
    assert roomy.usage.completion_tokens_details.reasoning_tokens == 7
    tight = oai.chat.completions.create(
        model="o4-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_completion_tokens=9,
    )
    assert tight.usage is not None and tight.usage.completion_tokens == 9
    assert tight.choices[0].message.content == "tok " * 2
    assert tight.choices[0].finish_reason == "length"
    starved = oai.chat.completions.create(
        model="o4-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_completion_tokens=4,
    )
    assert starved.usage is not None and starved.usage.completion_tokens == 4
    assert starved.choices[0].message.content == ""
    assert fake.bill == usd(48, "1.10") + usd(12 + 9 + 4, "4.40")


def test_a_non_reasoning_model_spends_no_reasoning(fake: FakeProvider) -> None:
    _, reply = post(fake, "/v1/chat/completions", {"model": "gpt-4.1-nano", "messages": MESSAGES})
    assert reply["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert fake.bill == usd(16, "0.10") + usd(5, "0.40")


def test_responses_bill_and_report_an_incomplete_reply(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    done = oai.responses.create(model="o4-mini", input="hi", max_output_tokens=100)
    input_tokens = math.ceil(len('{"input":"hi"}') / 3)
    assert done.status == "completed" and done.output_text == "tok " * 5
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.output_tokens) == (input_tokens, 12)
    assert done.usage.output_tokens_details.reasoning_tokens == 7
    cut = oai.responses.create(model="o4-mini", input="hi", max_output_tokens=9)
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.usage is not None and cut.usage.output_tokens == 9
    assert fake.bill == usd(2 * input_tokens, "1.10") + usd(21, "4.40")


def test_a_streamed_response_ends_with_response_incomplete_when_cut(fake: FakeProvider) -> None:
    body = {"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": 2, "stream": True}
    status, text = post(fake, "/v1/responses", body)
    events = sse_data(text)
    kinds = [event["type"] for event in events]
    assert status == 200 and kinds[0] == "response.created"
    assert kinds.count("response.output_text.delta") == 2
    assert kinds[-1] == "response.incomplete"
    assert events[-1]["response"]["usage"]["output_tokens"] == 2
    assert "event: response.incomplete\ndata: " in text
    assert fake.calls[0].streamed and fake.calls[0].completed


def test_embeddings_bill_input_only(fake: FakeProvider, oai: openai.OpenAI) -> None:
    reply = oai.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    tokens = math.ceil(len('{"input":["a","b"]}') / 3)
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == tokens
    assert [item.embedding for item in reply.data] == [[0.125, -0.25, 0.5, 0.0]] * 2
    assert fake.bill == usd(tokens, "0.02")
    assert fake.calls[0].output_tokens == 0


def test_anthropic_bills_thinking_and_cache_tokens() -> None:
    script = lambda path, body, attempt: Behaviour(cached_tokens=4, cache_write_tokens=2)  # noqa: E731
    with FakeProvider(want=5, reasoning=7, script=script) as fake:
        client = anthropic.Anthropic(base_url=fake.url, api_key="x", max_retries=0)
        try:
            plain = client.messages.create(
                model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES
            )  # type: ignore[arg-type]
            thinking = client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=10,
                messages=MESSAGES,  # type: ignore[arg-type]
                thinking={"type": "enabled", "budget_tokens": 8},
            )
        finally:
            client.close()
    assert (plain.usage.input_tokens, plain.usage.cache_read_input_tokens) == (16 - 6, 4)
    assert plain.usage.cache_creation_input_tokens == 2
    assert plain.usage.output_tokens == 5 and plain.stop_reason == "end_turn"
    assert plain.usage.service_tier == "standard"
    assert thinking.usage.output_tokens == 10 and thinking.stop_reason == "max_tokens"
    assert [block.type for block in thinking.content] == ["thinking", "text"]
    assert thinking.content[1].type == "text" and thinking.content[1].text == "tok " * 3
    # "thinking" is not an input-bearing key: both calls have MESSAGES' 16 input tokens.
    one_input = usd(10, "1") + usd(4, "0.10") + usd(2, "1.25")
    assert fake.bill == 2 * one_input + usd(5 + 10, "5")


def test_anthropic_refuses_a_budget_not_below_max_tokens(fake: FakeProvider) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "messages": MESSAGES,
        "thinking": {"type": "enabled", "budget_tokens": 10},
    }
    status, reply = post(fake, "/v1/messages", body)
    assert status == 400 and reply["type"] == "error"
    assert fake.bill == 0


def test_anthropic_stream_events_follow_the_protocol(fake: FakeProvider) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 3, "messages": MESSAGES, "stream": True}
    status, text = post(fake, "/v1/messages", body)
    events = sse_data(text)
    kinds = [event["type"] for event in events]
    assert status == 200
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"]["usage"]["input_tokens"] == 16
    assert events[-2]["usage"]["output_tokens"] == 3
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    assert "event: message_start\ndata: " in text
    assert fake.bill == usd(16, "3") + usd(3, "15")


# -- streams: usage, disconnects, drops -------------------------------------------------


def test_chat_stream_reports_usage_only_when_asked(fake: FakeProvider) -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    _, silent = post(fake, "/v1/chat/completions", body)
    chunks = sse_data(silent)
    assert chunks[-1] == "[DONE]"
    assert all("usage" not in chunk for chunk in chunks[:-1])
    body["stream_options"] = {"include_usage": True}
    _, told = post(fake, "/v1/chat/completions", body)
    chunks = sse_data(told)
    final = chunks[-2]
    assert final["choices"] == [] and final["usage"]["completion_tokens"] == 5
    assert all(chunk["usage"] is None for chunk in chunks[:-2])
    assert fake.bill == 2 * (usd(16, "0.15") + usd(5, "0.60"))


def test_a_client_that_hangs_up_early_is_billed_the_whole_generation() -> None:
    with FakeProvider(want=2000) as fake:
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
        try:
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,  # type: ignore[arg-type]
                stream=True,
            )
            first = next(iter(stream))
            stream.close()
        finally:
            client.close()
        assert first.choices[0].delta.role == "assistant"
        assert fake.bill == usd(16, "0.15") + usd(2000, "0.60")
        assert fake.calls[0].output_tokens == 2000


def test_a_delay_makes_the_sdk_time_out_after_billing() -> None:
    with FakeProvider(delay_s=2.0) as fake:
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0, timeout=0.2)
        try:
            with pytest.raises(openai.APITimeoutError):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        finally:
            client.close()
        assert fake.bill == usd(16, "0.15") + usd(5, "0.60")
        assert not fake.calls[0].completed


def test_drop_after_cuts_a_stream_and_a_json_reply(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.script = lambda path, body, attempt: Behaviour(drop_after=2)
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        ):
            seen.extend(choice.delta.content or "" for choice in chunk.choices)
    assert "".join(seen) == "tok tok "
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    streamed, answered = fake.calls
    assert (streamed.status, streamed.completed) == (200, False)
    assert (answered.status, answered.completed) == (0, False)
    assert fake.bill == 2 * (usd(16, "0.15") + usd(5, "0.60"))


def test_omit_usage_hides_usage_but_still_bills(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.omit_usage = True
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    body = {"model": "gpt-4o-mini", "input": "hi", "stream": True}
    _, text = post(fake, "/v1/responses", body)
    assert reply.usage is None
    assert sse_data(text)[-1]["response"]["usage"] is None
    assert fake.calls[0].usage["completion_tokens"] == 5
    assert fake.bill > 0


# -- free, flat-fee and refused requests --------------------------------------------------


def test_free_endpoints_are_never_billed(
    fake: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    assert "gpt-4o-mini" in [model.id for model in oai.models.list()]
    assert "claude-haiku-4-5" in [model.id for model in claude.models.list()]
    counted = claude.messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES)  # type: ignore[arg-type]
    assert counted.input_tokens == 16
    assert oai.responses.input_tokens.count(model="gpt-4o-mini", input="hi").input_tokens == 5
    assert oai.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    connection = http.client.HTTPConnection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]))
    connection.request("GET", "/v1/files")
    assert connection.getresponse().status == 200
    connection.close()
    assert fake.bill == 0
    assert len(fake.calls) == 6 and all(call.billed == 0 for call in fake.calls)


def test_other_posts_cost_the_flat_fee() -> None:
    with FakeProvider(other_fee="0.25") as fake:
        status, reply = post(fake, "/v1/images/generations", {"prompt": "x"})
        post(fake, "/v1/batches", {"input_file_id": "f"})
        post(fake, "/v1/responses/compact", {"model": "gpt-4o-mini"})
        assert status == 200 and reply["billed_usd"] == "0.25"
        assert fake.bill == Decimal("0.75")
    with FakeProvider() as fake:
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
        try:
            client.images.generate(model="gpt-image-1", prompt="x")
        finally:
            client.close()
        assert fake.bill == Decimal("0.04")
        assert fake.calls[0].path == "/v1/images/generations"


def test_refused_requests_are_not_billed(fake: FakeProvider) -> None:
    cases: list[tuple[str, Any, int]] = [
        ("/v1/chat/completions", {"messages": MESSAGES}, 400),
        ("/v1/chat/completions", {"model": "gpt-nope", "messages": MESSAGES}, 404),
        ("/v1/chat/completions", {"model": "gpt-4o-mini"}, 400),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES, "n": 0}, 400),
        ("/v1/messages", {"model": "claude-haiku-4-5", "messages": MESSAGES}, 400),
        ("/v1/embeddings", {"model": "text-embedding-3-small"}, 400),
        ("/v1/responses", {"model": "gpt-4o-mini"}, 400),
    ]
    for path, body, expected in cases:
        status, reply = post(fake, path, body)
        assert status == expected, (path, body)
        assert "error" in reply
    status, reply = post(fake, "/v1/messages", None, raw=b"{not json")
    assert status == 400 and reply["type"] == "error"
    assert fake.bill == 0
    assert [call.billed for call in fake.calls] == [0] * 8


def test_scripted_errors_are_billed_only_when_the_provider_would(fake: FakeProvider) -> None:
    statuses = iter([429, 529, 503, 500, 400])

    def script(path: str, body: dict[str, Any] | None, attempt: int) -> Behaviour:
        return Behaviour(status=next(statuses))

    fake.script = script
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    answers = [post(fake, "/v1/chat/completions", body)[0] for _ in range(5)]
    assert answers == [429, 529, 503, 500, 400]
    assert [call.billed > 0 for call in fake.calls] == [False, False, False, True, False]
    assert fake.bill == usd(16, "0.15") + usd(5, "0.60")
    fake.script = lambda path, body, attempt: Behaviour(status=429, billed=True)
    post(fake, "/v1/chat/completions", body)
    assert fake.bill == 2 * (usd(16, "0.15") + usd(5, "0.60"))


def test_the_script_sees_path_body_and_attempt_per_path(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    seen: list[tuple[str, str | None, int]] = []

    def script(path: str, body: dict[str, Any] | None, attempt: int) -> Behaviour | None:
        seen.append((path, (body or {}).get("model"), attempt))
        return Behaviour(status=429) if attempt == 1 else Behaviour(want=1)

    fake.script = script
    retrying = oai.with_options(max_retries=1)
    reply = retrying.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    retrying.embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float")
    assert reply.choices[0].message.content == "tok "
    assert seen == [
        ("/v1/chat/completions", "gpt-4o-mini", 1),
        ("/v1/chat/completions", "gpt-4o-mini", 2),
        ("/v1/embeddings", "text-embedding-3-small", 1),
        ("/v1/embeddings", "text-embedding-3-small", 2),
    ]
    fake.reset()
    assert fake.bill == 0 and fake.calls == []
    post(fake, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES})
    assert seen[-1][2] == 1


# -- tiers and prices ---------------------------------------------------------------------


def test_priority_is_billed_at_priority_rates_and_reported() -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    standard = usd(16, "0.15") + usd(5, "0.60")
    priority = usd(16, "0.25") + usd(5, "1.00")
    with FakeProvider() as fake:
        _, pinned = post(fake, "/v1/chat/completions", {**body, "service_tier": "priority"})
        _, plain = post(fake, "/v1/chat/completions", body)
        assert (pinned["service_tier"], plain["service_tier"]) == ("priority", "default")
        assert [call.billed for call in fake.calls] == [priority, standard]
    with FakeProvider(project_tier="priority") as fake:
        _, unpinned = post(fake, "/v1/chat/completions", {**body, "service_tier": "auto"})
        _, opted_out = post(fake, "/v1/chat/completions", {**body, "service_tier": "default"})
        claude_body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": MESSAGES}
        _, message = post(fake, "/v1/messages", claude_body)
        assert (unpinned["service_tier"], opted_out["service_tier"]) == ("priority", "default")
        assert message["usage"]["service_tier"] == "priority"
        assert [call.billed for call in fake.calls[:2]] == [priority, standard]
        assert fake.calls[2].billed == usd(16, "1") + usd(5, "5")  # no priority premium


def test_a_price_multiplier_applies_without_explicit_priority_rates() -> None:
    prices = {"m": FakePrices("1", "2", priority_multiplier="1.5")}
    with FakeProvider(prices, want=5) as fake:
        body = {"model": "m", "messages": MESSAGES, "service_tier": "priority"}
        post(fake, "/v1/chat/completions", body)
        assert fake.bill == usd(16, "1.5") + usd(5, "3")


def test_a_dated_model_uses_its_undated_price(fake: FakeProvider) -> None:
    body = {"model": "gpt-4o-mini-2024-07-18", "messages": MESSAGES}
    status, reply = post(fake, "/v1/chat/completions", body)
    assert status == 200 and reply["model"] == "gpt-4o-mini-2024-07-18"
    assert fake.bill == usd(16, "0.15") + usd(5, "0.60")
    assert post(fake, "/v1/chat/completions", {**body, "model": "gpt-4o-mini-tts"})[0] == 404


def test_default_prices_are_genai_prices() -> None:
    from capledger.pricing import default_pricebook

    book = default_pricebook()
    for name, prices in DEFAULT_PRICES.items():
        provider = "anthropic" if name.startswith("claude") else "openai"
        for priority in (False, True):
            listed = book.price(name, provider, service_tier="priority" if priority else None)
            input_rate, output_rate, cached_rate, write_rate = prices.rates(priority=priority)
            assert input_rate == listed.input_usd_per_mtok, name
            assert output_rate == (listed.output_usd_per_mtok or 0), name
            assert cached_rate == (listed.cache_read_usd_per_mtok or input_rate), name
            assert write_rate == (listed.cache_write_usd_per_mtok or input_rate), name


def test_bad_knobs_are_refused() -> None:
    with pytest.raises(ValueError, match="want"):
        FakeProvider(want=-1)
    with pytest.raises(ValueError, match="input"):
        FakePrices("-1", "1")
    with pytest.raises(ValueError, match="project_tier"):
        FakeProvider(project_tier="gold")  # type: ignore[arg-type]


def test_a_larger_divisor_counts_fewer_input_tokens() -> None:
    with FakeProvider(want=0, bytes_per_input_token=4) as fake:
        _, reply = post(
            fake, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES}
        )
        assert reply["usage"]["prompt_tokens"] == math.ceil(len(MESSAGES_JSON) / 4) == 12


@pytest.mark.parametrize(
    "request_body",
    [
        {"messages": MESSAGES},
        {"messages": MESSAGES, "system": "Be terse. " * 50},
        {"messages": [{"role": "user", "content": "Long prose, long words. " * 200}]},
        {"messages": MESSAGES, "tools": [{"name": "f", "input_schema": {"type": "object"}}]},
        {
            "messages": MESSAGES,
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        },
    ],
)
def test_anthropic_input_stays_under_capledgers_byte_bound(request_body: dict[str, Any]) -> None:
    from capledger.estimate import input_token_bound

    body = {"model": "claude-haiku-4-5", "max_tokens": 5, **request_body}
    with FakeProvider(want=0) as fake:
        _, reply = post(fake, "/v1/messages", body)
    bound = input_token_bound("claude-haiku-4-5", body, "anthropic", shape="anthropic")
    assert reply["usage"]["input_tokens"] <= bound


# -- real SDKs, sync and async ------------------------------------------------------------


def test_openai_sdk_round_trips(fake: FakeProvider, oai: openai.OpenAI) -> None:
    parsed = oai.chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Answer
    )  # type: ignore[arg-type]
    assert parsed.choices[0].message.parsed == Answer(answer="tok", score=0)
    with oai.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:  # type: ignore[arg-type]
        for _ in stream:
            pass
        assert stream.get_final_completion().choices[0].message.content == "tok " * 5
    with oai.responses.stream(model="gpt-4o-mini", input="hi", text_format=Answer) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
        assert final.output_parsed == Answer(answer="tok", score=0)
        assert final.usage is not None and final.usage.output_tokens == 5
    assert oai.responses.parse(model="o4-mini", input="hi", text_format=Answer).output_parsed
    events = list(oai.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    embedded = oai.embeddings.create(model="text-embedding-3-small", input="a")  # base64 wire
    assert embedded.data[0].embedding == [0.125, -0.25, 0.5, 0.0]
    assert all(call.completed and call.status == 200 for call in fake.calls)


def test_anthropic_sdk_round_trips(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=MESSAGES,  # type: ignore[arg-type]
        thinking={"type": "enabled", "budget_tokens": 50},
    ) as stream:
        for _ in stream:
            pass
        message = stream.get_final_message()
    assert message.usage.output_tokens == 12
    assert [block.type for block in message.content] == ["thinking", "text"]
    parsed = claude.messages.parse(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=MESSAGES,  # type: ignore[arg-type]
        output_format=Answer,
    )
    assert parsed.parsed_output == Answer(answer="tok", score=0)
    raw = list(
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )
    )
    assert raw[-1].type == "message_stop"
    assert all(call.completed for call in fake.calls)


async def test_async_sdks_round_trip(fake: FakeProvider) -> None:
    openai_client = openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
    claude_client = anthropic.AsyncAnthropic(base_url=fake.url, api_key="x", max_retries=0)
    try:
        reply = await openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        stream = await openai_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        async with openai_client.responses.stream(model="gpt-4o-mini", input="hi") as responses:
            async for _ in responses:
                pass
            final = await responses.get_final_response()
        async with claude_client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=MESSAGES,  # type: ignore[arg-type]
        ) as messages:
            async for _ in messages:
                pass
            message = await messages.get_final_message()
        embedded = await openai_client.embeddings.create(model="text-embedding-3-small", input="a")
    finally:
        await openai_client.close()
        await claude_client.close()
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert final.usage is not None and final.usage.output_tokens == 5
    assert message.usage.output_tokens == 5
    assert embedded.usage.prompt_tokens == math.ceil(len('{"input":"a"}') / 3)
    assert len(fake.calls) == 5


def test_streams_of_every_shape_can_be_cut(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.drop_after = 1
    for path, body in [
        ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi", "stream": True}),
        (
            "/v1/messages",
            {"model": "claude-haiku-4-5", "max_tokens": 9, "messages": MESSAGES, "stream": True},
        ),
    ]:
        connection = http.client.HTTPConnection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]))
        try:
            connection.request("POST", path, json.dumps(body))
            response = connection.getresponse()
            with pytest.raises(http.client.IncompleteRead) as cut:
                response.read()
        finally:
            connection.close()
        text = cut.value.partial.decode()
        assert text.count('"tok "') == 1, path  # one delta, then the cut
    # The Anthropic SDK lets the transport's error out of a stream.
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        claude.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=9,
            messages=MESSAGES,  # type: ignore[arg-type]
        ) as stream,
    ):
        for _ in stream:
            pass
    assert fake.wait_idle()
    assert [call.completed for call in fake.calls] == [False] * 3
    assert all(call.billed > 0 for call in fake.calls)


def test_omit_usage_leaves_an_anthropic_stream_without_usage(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.omit_usage = True
    events = list(
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=9,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )
    )
    assert events[0].type == "message_start" and "usage" not in events[0].message.model_fields_set
    assert [event.type for event in events][-1] == "message_stop"
    assert fake.calls[0].usage["output_tokens"] == 5 and fake.bill > 0


def test_want_and_reasoning_may_depend_on_the_request() -> None:
    def want(body: dict[str, Any]) -> int:
        return len(body.get("messages", []))

    with FakeProvider(want=want, reasoning=lambda body: 3) as fake:
        two = [*MESSAGES, {"role": "assistant", "content": "x"}]
        _, reply = post(fake, "/v1/chat/completions", {"model": "o4-mini", "messages": two})
        assert reply["choices"][0]["message"]["content"] == "tok tok "
        assert reply["usage"]["completion_tokens"] == 5


def test_n_choices_stream_one_after_another(fake: FakeProvider) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "n": 2, "stream": True, "max_tokens": 2}
    _, text = post(fake, "/v1/chat/completions", body)
    chunks = [chunk for chunk in sse_data(text) if chunk != "[DONE]"]
    content = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk["choices"]:
            content[choice["index"]] += choice["delta"].get("content") or ""
    assert content == {0: "tok tok ", 1: "tok tok "}
    finishes = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]
    ]
    assert finishes == ["length", "length"]
    assert fake.calls[0].output_tokens == 4


def test_a_chunked_request_body_is_read(fake: FakeProvider) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]))
    try:
        body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode()
        connection.request(
            "POST", "/v1/chat/completions", iter([body[:10], body[10:]]), encode_chunked=True
        )
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    assert fake.bill == usd(16, "0.15") + usd(5, "0.60")


def test_a_bad_script_answers_500_unbilled(fake: FakeProvider) -> None:
    fake.script = lambda path, body, attempt: Behaviour(status=200)
    status, reply = post(
        fake, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES}
    )
    assert status == 500 and "status" in reply["error"]["message"]
    assert fake.bill == 0


def test_concurrent_calls_add_up_exactly() -> None:
    with FakeProvider(want=3) as fake:
        body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
        threads = [
            threading.Thread(target=post, args=(fake, "/v1/chat/completions", body))
            for _ in range(24)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fake.wait_idle()
        assert fake.bill == 24 * (usd(16, "0.15") + usd(3, "0.60"))
        assert sorted(call.attempt for call in fake.calls) == list(range(1, 25))
        assert all(call.completed for call in fake.calls)


# -- lifecycle ----------------------------------------------------------------------------


def test_close_ends_idle_connections_and_joins_threads() -> None:
    fake = FakeProvider()
    idle = socket.create_connection(("127.0.0.1", int(fake.url.rsplit(":", 1)[1])))
    try:
        status, _ = post(
            fake, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES}
        )
        assert status == 200
        fake.close()
        fake.close()  # twice is fine
        idle.settimeout(2)
        assert idle.recv(1) == b""  # the server shut the idle connection
    finally:
        idle.close()
    assert not [
        thread for thread in threading.enumerate() if thread.name.startswith("capledger-fake")
    ]
