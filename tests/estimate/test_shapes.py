"""Request shapes: unknown keys count as input, embeddings and legacy completions, thinking,
and SDK objects inside a request."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest
from anthropic.types import TextBlock, ToolUseBlock
from openai.types.chat import ChatCompletionMessage

from capledger.errors import InvalidInput
from capledger.estimate import (
    SHAPES,
    affordable_max_tokens,
    estimate,
    input_token_bound,
    worst_case_cost,
)

M = D(1_000_000)
AT = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
CHAT = {"messages": [{"role": "user", "content": "hello"}], "max_completion_tokens": 100}
RESPONSES = {"input": "hello", "max_output_tokens": 100}
ANTHROPIC = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 100}
CLAUDE = "claude-sonnet-4-20250514"

BIG_SCHEMA = {
    "type": "object",
    "properties": {
        f"field_{i}": {"type": "string", "description": "a long description " * 5}
        for i in range(40)
    },
    "required": [f"field_{i}" for i in range(40)],
}


def _bytes(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


# -- unknown keys count as input -----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "base"),
    [("gpt-4o", "openai", CHAT), ("gpt-4o", "openai", RESPONSES), (CLAUDE, "anthropic", ANTHROPIC)],
)
def test_an_unknown_top_level_key_counts_by_its_bytes(
    model: str, provider: str, base: dict[str, Any]
) -> None:
    # A field merged in through extra_body, or added by a newer SDK, may be text the model
    # reads: its JSON bytes bound it.
    extra = {"house_rules": "x" * 5_000}
    plain = input_token_bound(model, base, provider)
    assert input_token_bound(model, {**base, **extra}, provider) - plain >= 5_000


@pytest.mark.parametrize(
    ("model", "provider", "base", "controls"),
    [
        (
            "gpt-4o",
            "openai",
            CHAT,
            {
                "model": "gpt-4o",
                "temperature": 0.2,
                "top_p": 1,
                "seed": 7,
                "stream": True,
                "stream_options": {"include_usage": True},
                "metadata": {"k": "v" * 500},
                "user": "u_1",
                "logit_bias": {"50256": -100},
                "store": False,
                "parallel_tool_calls": False,
                "reasoning_effort": "low",
                "stop": ["\n\n"],
            },
        ),
        (
            "gpt-4o",
            "openai",
            RESPONSES,
            {"reasoning": {"effort": "high"}, "include": ["x"], "truncation": "disabled"},
        ),
        (
            CLAUDE,
            "anthropic",
            ANTHROPIC,
            {"stop_sequences": ["END"], "top_k": 5, "metadata": {"user_id": "u"}},
        ),
    ],
)
def test_control_keys_add_nothing(
    model: str, provider: str, base: dict[str, Any], controls: dict[str, Any]
) -> None:
    assert input_token_bound(model, {**base, **controls}, provider) == input_token_bound(
        model, base, provider
    )


def test_chat_response_format_schema_counts_at_least_its_bytes() -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": BIG_SCHEMA, "strict": True},
    }
    plain = input_token_bound("gpt-4o", CHAT, "openai")
    with_schema = input_token_bound(
        "gpt-4o", {**CHAT, "response_format": response_format}, "openai"
    )
    assert with_schema - plain >= _bytes(response_format)


def test_responses_text_format_counts_at_least_its_bytes() -> None:
    text = {"format": {"type": "json_schema", "name": "answer", "schema": BIG_SCHEMA}}
    plain = input_token_bound("gpt-4o", RESPONSES, "openai")
    assert input_token_bound("gpt-4o", {**RESPONSES, "text": text}, "openai") - plain >= _bytes(
        text
    )


@pytest.mark.parametrize("key", ["output_config", "output_format"])
def test_anthropic_structured_output_counts_its_bytes_and_its_system_prompt(key: str) -> None:
    schema = {"format": {"type": "json_schema", "schema": BIG_SCHEMA}}
    plain = input_token_bound(CLAUDE, ANTHROPIC, "anthropic")
    with_schema = input_token_bound(CLAUDE, {**ANTHROPIC, key: schema}, "anthropic")
    assert with_schema - plain >= _bytes(schema) + 600


def test_an_unknown_message_key_counts_by_its_bytes() -> None:
    message = {"role": "user", "content": "hello", "house_note": "y" * 2_000}
    request = {**CHAT, "messages": [message]}
    assert (
        input_token_bound("gpt-4o", request, "openai") - input_token_bound("gpt-4o", CHAT, "openai")
        >= 2_000
    )


def test_an_earlier_audio_reply_by_id_is_bounded_by_the_context_window() -> None:
    history = [
        {"role": "user", "content": "say hi"},
        {"role": "assistant", "audio": {"id": "audio_1"}},
        {"role": "user", "content": "again"},
    ]
    request = {"messages": history, "max_completion_tokens": 10}
    assert input_token_bound("gpt-audio", request, "openai") >= 128_000


def test_a_chat_prediction_is_held_as_output_beyond_the_limit() -> None:
    prediction = {"type": "content", "content": " ".join(["word"] * 300)}  # 300 tokens
    request = {**CHAT, "prediction": prediction, "service_tier": "default"}
    found = estimate("gpt-4o", request, "openai", at=AT)
    assert found.output_tokens_bound == 100  # the limit a clamp may lower stays the limit
    assert found.extra_output_tokens == 300
    assert found.worst_case_usd == (found.input_tokens_bound * D("2.5") + 400 * D(10)) / M
    # The extra output is paid whatever limit a clamp picks.
    fixed = (found.input_tokens_bound * D("2.5") + 300 * D(10)) / M
    tokens = affordable_max_tokens("gpt-4o", request, fixed + 7 * D(10) / M, "openai", at=AT)
    assert tokens == 7


# -- embeddings ----------------------------------------------------------------------------


def test_embeddings_bound_the_input_and_output_nothing() -> None:
    found = estimate(
        "text-embedding-3-small",
        {"input": "hello world", "dimensions": 256, "encoding_format": "float"},
        "openai",
        shape="embeddings",
        at=AT,
    )
    # "hello world" 2 tokens (cl100k) + 2 markers + 16 slack
    assert (found.input_tokens_bound, found.output_tokens_bound, found.shape) == (
        20,
        0,
        "embeddings",
    )
    assert (found.min_output_tokens, found.output_usd_per_token) == (0, 0)
    assert found.worst_case_usd == 20 * D("0.02") / M


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("hello world", 2 + 2),
        (["hello world", "hello"], 3 + 2 * 2),
        ([15339, 1917, 0], 3 + 2),  # one token array: its length, exactly
        ([[1, 2, 3], [4, 5], []], 5 + 3 * 2),
        (["hello", [1, 2]], 3 + 2 * 2),
    ],
)
def test_embeddings_input_forms(value: object, tokens: int) -> None:
    bound = input_token_bound(
        "text-embedding-3-small", {"input": value}, "openai", shape="embeddings"
    )
    assert bound == tokens + 16


@pytest.mark.parametrize(
    "request_body",
    [
        {},
        {"input": 5},
        {"input": [1, "a", 2]},
        {"input": [[1, -2]]},
        {"input": [[1, True]]},
        {"input": [{"text": "x"}]},
    ],
)
def test_malformed_embeddings_raise_invalid_input(request_body: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        estimate("text-embedding-3-small", request_body, "openai", shape="embeddings", at=AT)


def test_embeddings_and_completions_are_not_guessed() -> None:
    # A bare 'prompt' may be a Responses stored prompt: the caller names the shape.
    with pytest.raises(InvalidInput, match="shape='completions'"):
        estimate("gpt-3.5-turbo-instruct", {"prompt": "hi"}, "openai", at=AT)


def test_an_unknown_shape_is_refused() -> None:
    with pytest.raises(InvalidInput, match="shape must be one of"):
        estimate("gpt-4o", CHAT, "openai", shape="images", at=AT)  # type: ignore[arg-type]
    assert SHAPES == ("chat", "responses", "anthropic", "embeddings", "completions")


def test_an_explicit_shape_wins_over_the_keys() -> None:
    # An Anthropic-looking body sent to the chat endpoint is read as chat.
    request = {**ANTHROPIC, "system": "be brief"}
    found = estimate("gpt-4o", request, "openai", shape="chat", at=AT)
    assert found.shape == "chat"
    assert found.method == "tokenizer"


# -- legacy completions --------------------------------------------------------------------

INSTRUCT = "gpt-3.5-turbo-instruct"  # $1.5 / $2 per MTok


def test_a_completion_without_max_tokens_is_held_at_the_default_16() -> None:
    found = estimate(INSTRUCT, {"prompt": "hello world"}, "openai", shape="completions", at=AT)
    # 2 tokens + 16 slack
    assert (found.input_tokens_bound, found.output_tokens_bound) == (18, 16)
    assert found.worst_case_usd == (18 * D("1.5") + 16 * D(2)) / M


def test_completions_choices_are_max_of_n_and_best_of_per_prompt() -> None:
    request = {"prompt": ["a", "b", "c"], "max_tokens": 10, "n": 2, "best_of": 5}
    found = estimate(INSTRUCT, request, "openai", shape="completions", at=AT)
    assert found.choices == 5 * 3


def test_completions_echo_holds_the_prompt_again_as_output() -> None:
    plain = {"prompt": "one two three", "max_tokens": 10}
    found = estimate(INSTRUCT, {**plain, "echo": True}, "openai", shape="completions", at=AT)
    assert found.extra_output_tokens == 3
    tokens = estimate(
        INSTRUCT,
        {"prompt": [1, 2, 3, 4], "max_tokens": 10, "echo": True},
        "openai",
        shape="completions",
        at=AT,
    )
    assert tokens.extra_output_tokens == 4
    assert tokens.input_tokens_bound == 4 + 16


def test_completions_suffix_is_input() -> None:
    base = {"prompt": "def f(", "max_tokens": 10}
    with_suffix = {**base, "suffix": "x" * 1_000}
    difference = input_token_bound(
        INSTRUCT, with_suffix, "openai", shape="completions"
    ) - input_token_bound(INSTRUCT, base, "openai", shape="completions")
    assert difference > 0


@pytest.mark.parametrize(
    "request_body",
    [
        {"prompt": "hi", "max_tokens": None},
        {"prompt": "hi", "echo": "yes"},
        {"prompt": "hi", "best_of": 0},
        {"prompt": {"text": "hi"}},
    ],
)
def test_malformed_completions_raise_invalid_input(request_body: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        worst_case_cost(INSTRUCT, request_body, "openai", shape="completions", at=AT)


# -- thinking and SDK objects --------------------------------------------------------------


def test_anthropic_thinking_sets_the_smallest_output_limit() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2_048}
    request = {**ANTHROPIC, "max_tokens": 4_096, "thinking": thinking}
    assert estimate(CLAUDE, request, "anthropic", at=AT).min_output_tokens == 2_049
    assert estimate(CLAUDE, ANTHROPIC, "anthropic", at=AT).min_output_tokens == 1
    adaptive = {**ANTHROPIC, "thinking": {"type": "adaptive"}}
    assert estimate(CLAUDE, adaptive, "anthropic", at=AT).min_output_tokens == 1


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled"}, {"type": "enabled", "budget_tokens": -1}, "on"]
)
def test_malformed_thinking_raises_invalid_input(thinking: object) -> None:
    with pytest.raises(InvalidInput):
        estimate(CLAUDE, {**ANTHROPIC, "thinking": thinking}, "anthropic", at=AT)


def test_an_sdk_chat_message_in_the_tool_loop_is_read_like_its_json() -> None:
    reply = ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"city": "Paris"}'},
                }
            ],
        }
    )
    tool_result = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    with_object = {**CHAT, "messages": [*CHAT["messages"], reply, tool_result]}
    with_json = {
        **CHAT,
        "messages": [*CHAT["messages"], reply.model_dump(exclude_none=True), tool_result],
    }
    assert estimate("gpt-4o", with_object, "openai", at=AT) == estimate(
        "gpt-4o", with_json, "openai", at=AT
    )
    assert input_token_bound("gpt-4o", with_object, "openai") > input_token_bound(
        "gpt-4o", CHAT, "openai"
    )


def test_anthropic_sdk_content_blocks_are_read_like_their_json() -> None:
    blocks = [
        TextBlock(type="text", text="Let me look."),
        ToolUseBlock(type="tool_use", id="toolu_1", name="lookup", input={"city": "Paris"}),
    ]
    as_json = [block.model_dump(exclude_none=True) for block in blocks]
    history = [*ANTHROPIC["messages"]]  # type: ignore[misc]
    with_objects = {**ANTHROPIC, "messages": [*history, {"role": "assistant", "content": blocks}]}
    with_json = {**ANTHROPIC, "messages": [*history, {"role": "assistant", "content": as_json}]}
    assert input_token_bound(CLAUDE, with_objects, "anthropic") == input_token_bound(
        CLAUDE, with_json, "anthropic"
    )


def test_a_request_nested_too_deeply_is_refused() -> None:
    nested: Any = "x"
    for _ in range(300):
        nested = [nested]
    with pytest.raises(InvalidInput, match="nests deeper"):
        input_token_bound("gpt-4o", {**CHAT, "extra": nested}, "openai")
