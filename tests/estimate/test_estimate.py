from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from capledger.errors import InvalidAmount, InvalidInput, UnknownModel
from capledger.estimate import (
    affordable_max_tokens,
    estimate,
    input_token_bound,
    worst_case_cost,
)
from capledger.pricing import Pricebook

M = D(1_000_000)
AT = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
# "default" pins OpenAI's standard tier; an unpinned request is held at the dearest tier.
HELLO = {
    "messages": [{"role": "user", "content": "hello"}],
    "max_completion_tokens": 100,
    "service_tier": "default",
}


def test_openai_chat_uses_the_exact_tokenizer_plus_framing() -> None:
    # 4 per message + "user" (1) + "hello" (1) + 3 reply priming + 16 template slack = 25
    found = estimate("gpt-4o", HELLO, "openai", at=AT)
    assert (found.input_tokens_bound, found.method, found.encoding) == (
        25,
        "tokenizer",
        "o200k_base",
    )
    assert found.worst_case_usd == (25 * D("2.5") + 100 * D(10)) / M


def test_n_choices_multiply_the_worst_case() -> None:
    assert (
        worst_case_cost("gpt-4o", {**HELLO, "n": 3}, "openai", at=AT)
        == 3 * (25 * D("2.5") + 100 * D(10)) / M
    )


def test_the_larger_of_two_output_limits_bounds_the_output() -> None:
    request = {**HELLO, "max_tokens": 300}
    assert estimate("gpt-4o", request, "openai", at=AT).output_tokens_bound == 300


def test_anthropic_request_is_bounded_by_bytes() -> None:
    request = {
        "system": "be nice",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 1000,
    }
    # bytes + 1 per text: "be nice" 8, "hi" 3; framing 8 (system) + 8 (message) + 8 (reply) + 16
    found = estimate("claude-sonnet-4-20250514", request, "anthropic", at=AT)
    assert (found.input_tokens_bound, found.method) == (51, "bytes")
    assert found.worst_case_usd == (51 * D(3) + 1000 * D(15)) / M


def test_anthropic_tools_add_the_tool_use_system_prompt() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    tool = {"name": "f", "description": "d", "input_schema": {"type": "object"}}
    plain = input_token_bound("claude-sonnet-4-20250514", base, "anthropic")
    with_tool = input_token_bound(
        "claude-sonnet-4-20250514", {**base, "tools": [tool]}, "anthropic"
    )
    tool_json = '{"description": "d", "input_schema": {"type": "object"}, "name": "f"}'
    assert with_tool - plain == 600 + 32 + 16 + len(tool_json) + 1


def test_responses_request_counts_instructions_and_input() -> None:
    request = {
        "instructions": "be brief",
        "input": "hello",
        "max_output_tokens": 50,
        "service_tier": "default",
    }
    found = estimate("gpt-5", request, "openai", at=AT)
    # 4 + "developer" (1) + "be brief" (2) + 4 + "user" (1) + "hello" (1) + 3 + 16 = 32
    assert found.input_tokens_bound == 32
    assert found.worst_case_usd == (32 * D("1.25") + 50 * D(10)) / M


def test_a_long_prompt_is_priced_at_the_long_context_tier() -> None:
    request = {"messages": [{"role": "user", "content": "a " * 150_000}], "max_tokens": 10}
    found = estimate("gemini-2.5-pro", request, "google", at=AT)
    assert found.input_tokens_bound > 200_000
    assert (found.input_usd_per_token, found.output_usd_per_token) == (D("2.5") / M, D(15) / M)


def test_cache_control_prices_input_at_the_cache_write_rate() -> None:
    request = {
        "system": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10,
    }
    found = estimate("claude-sonnet-4-20250514", request, "anthropic", at=AT)
    assert found.input_usd_per_token == D(6) / M


def test_images_use_the_per_provider_figure() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    request = {"messages": [{"role": "user", "content": [image]}], "max_tokens": 1}
    text_only = {"messages": [{"role": "user", "content": []}], "max_tokens": 1}
    assert (
        input_token_bound("gpt-4o", request, "openai")
        - input_token_bound("gpt-4o", text_only, "openai")
        == 4_000
    )
    assert (
        input_token_bound("gpt-4o-mini", request, "openai")
        - input_token_bound("gpt-4o-mini", text_only, "openai")
        == 48_169
    )


def test_files_need_a_bound_when_the_context_window_is_unknown() -> None:
    file_part = {"type": "file", "file": {"file_id": "file-1"}}
    request = {"messages": [{"role": "user", "content": [file_part]}], "max_tokens": 1}
    with pytest.raises(InvalidInput, match="file_tokens="):
        input_token_bound("gemini-2.5-pro", request, "google")
    empty = {"messages": [{"role": "user", "content": []}], "max_tokens": 1}
    assert input_token_bound("gemini-2.5-pro", request, "google", file_tokens=700) == (
        input_token_bound("gemini-2.5-pro", empty, "google") + 700
    )
    # gpt-4o's context window (128k) bounds a file when no bound is given.
    assert input_token_bound("gpt-4o", request, "openai") == (
        input_token_bound("gpt-4o", empty, "openai") + 128_000
    )


@pytest.mark.parametrize(
    ("model", "provider", "request_body", "key"),
    [
        ("gpt-4o", "openai", {"messages": []}, "max_completion_tokens (or max_tokens)"),
        ("gpt-5", "openai", {"input": "hi"}, "max_output_tokens"),
        (
            "claude-sonnet-4-20250514",
            "anthropic",
            {"messages": [{"role": "user", "content": "hi"}]},
            "max_tokens",
        ),
    ],
)
def test_a_request_without_an_output_limit_names_the_key_to_pass(
    model: str, provider: str, request_body: dict[str, Any], key: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        worst_case_cost(model, request_body, provider, at=AT)
    assert str(raised.value).endswith(f"pass {key} in the request")


def test_max_output_tokens_argument_supplies_the_limit() -> None:
    found = estimate("gpt-4o", {"messages": []}, "openai", max_output_tokens=7, at=AT)
    assert found.output_tokens_bound == 7


@pytest.mark.parametrize(
    "request_body",
    [
        [],
        {"prompt": "hi"},
        {"messages": "hi", "max_tokens": 1},
        {"messages": [], "max_tokens": -1},
        {"messages": [], "max_tokens": True},
        {"messages": [], "max_tokens": 1, "n": 0},
        {"messages": ["hi"], "max_tokens": 1},
    ],
)
def test_malformed_requests_raise_invalid_input(request_body: Any) -> None:
    with pytest.raises(InvalidInput):
        worst_case_cost("gpt-4o", request_body, "openai", at=AT)


def test_unknown_model_always_raises_for_an_estimate() -> None:
    with pytest.raises(UnknownModel):
        worst_case_cost("acme-llm-9", HELLO, pricebook=Pricebook(policy="warn"), at=AT)


def test_affordable_max_tokens_is_the_largest_ceiling_the_budget_pays_for() -> None:
    available = D("0.001")
    tokens = affordable_max_tokens("gpt-4o", HELLO, available, "openai", at=AT)
    # (0.001 - 25 x 2.5e-6) / 1e-5 = 93.75
    assert tokens == 93
    assert worst_case_cost("gpt-4o", HELLO, "openai", max_output_tokens=93, at=AT) <= available
    assert worst_case_cost("gpt-4o", HELLO, "openai", max_output_tokens=94, at=AT) > available


def test_affordable_max_tokens_is_zero_when_the_input_cannot_be_paid() -> None:
    assert affordable_max_tokens("gpt-4o", HELLO, "0.00006", "openai", at=AT) == 0
    # Exactly the input cost (25 x 2.5e-6) affords the input and no output.
    assert affordable_max_tokens("gpt-4o", HELLO, "0.0000625", "openai", at=AT) == 0


def test_affordable_max_tokens_with_choices() -> None:
    tokens = affordable_max_tokens("gpt-4o", {**HELLO, "n": 2}, "0.001", "openai", at=AT)
    # per choice 0.0005: (0.0005 - 0.0000625) / 1e-5 = 43.75
    assert tokens == 43


def test_affordable_max_tokens_refuses_a_negative_budget() -> None:
    with pytest.raises(InvalidAmount):
        affordable_max_tokens("gpt-4o", HELLO, "-1", "openai", at=AT)


@pytest.mark.parametrize(
    "stored",
    [
        {"previous_response_id": "resp_1"},
        {"conversation": "conv_1"},
        {"prompt": {"id": "pmpt_1", "variables": {"city": "Paris"}}},
    ],
)
def test_stored_responses_input_is_bounded_by_the_context_window(stored: dict[str, Any]) -> None:
    # The provider prepends the stored turns and bills them as input: the request's own text
    # is no bound, the context window is.
    request = {"input": "and then?", "max_output_tokens": 10, "service_tier": "default", **stored}
    found = estimate("gpt-4o", request, "openai", at=AT)
    assert found.input_tokens_bound == 128_000
    assert found.worst_case_usd == (128_000 * D("2.5") + 10 * D(10)) / M


def test_stored_responses_input_needs_a_known_context_window() -> None:
    book = Pricebook()
    book.set_price("my-model", input="1", output="2")
    request = {"input": "hi", "max_output_tokens": 10, "previous_response_id": "resp_1"}
    with pytest.raises(InvalidInput, match="stored state"):
        estimate("my-model", request, pricebook=book)
