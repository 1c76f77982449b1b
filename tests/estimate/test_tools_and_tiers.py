"""Server-side tools (held per call, or refused) and service tiers (unpinned: the dearest)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from capledger.errors import UnguardedRequest, UnknownModel
from capledger.estimate import estimate, input_token_bound
from capledger.pricing import Pricebook, Usage, _genai, cost

M = D(1_000_000)
AT = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
RESPONSES = {"input": "hello", "max_output_tokens": 100, "service_tier": "default"}
CLAUDE = "claude-haiku-4-5"  # $1 / $5 per MTok, 200k context, flat
ANTHROPIC = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 100}


# -- server-side tools ---------------------------------------------------------------------


def test_responses_web_search_holds_fee_and_a_context_window_per_call() -> None:
    plain = estimate("gpt-4o", RESPONSES, "openai", at=AT)
    request = {**RESPONSES, "tools": [{"type": "web_search"}], "max_tool_calls": 3}
    found = estimate("gpt-4o", request, "openai", at=AT)
    tool_json = len('{"type": "web_search"}') + 0  # counted exactly, o200k: at most its bytes
    assert found.server_tool_calls == 3
    assert found.tool_fees_usd == 3 * D("0.01")  # genai-prices: $10 per 1,000 searches
    # Each search hands results back for another turn, which re-reads up to 128k tokens.
    assert found.input_tokens_bound >= plain.input_tokens_bound + 3 * 128_000
    assert found.input_tokens_bound <= plain.input_tokens_bound + 3 * 128_000 + 48 + tool_json
    assert found.worst_case_usd == (found.input_tokens_bound * D("2.5") + 100 * D(10)) / M + D(
        "0.03"
    )


def test_responses_file_search_uses_its_own_fee() -> None:
    request = {
        **RESPONSES,
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}],
        "max_tool_calls": 2,
    }
    assert estimate("gpt-4o", request, "openai", at=AT).tool_fees_usd == 2 * D("0.0025")


def test_max_tool_calls_caps_all_built_in_tools_at_the_dearest_fee() -> None:
    tools = [{"type": "web_search_preview"}, {"type": "file_search", "vector_store_ids": ["v"]}]
    request = {**RESPONSES, "tools": tools, "max_tool_calls": 4}
    assert estimate("gpt-4o", request, "openai", at=AT).tool_fees_usd == 4 * D("0.01")


def test_anthropic_web_search_holds_max_uses_calls() -> None:
    tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    plain = input_token_bound(CLAUDE, ANTHROPIC, "anthropic")
    found = estimate(CLAUDE, {**ANTHROPIC, "tools": [tool]}, "anthropic", at=AT)
    assert (found.server_tool_calls, found.tool_fees_usd) == (2, 2 * D("0.01"))
    assert found.input_tokens_bound > plain + 2 * 200_000


def test_anthropic_web_fetch_has_no_fee_but_its_turns_are_held() -> None:
    tool = {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 1}
    found = estimate(CLAUDE, {**ANTHROPIC, "tools": [tool]}, "anthropic", at=AT)
    assert (found.server_tool_calls, found.tool_fees_usd) == (1, 0)
    assert found.input_tokens_bound > 200_000


def test_zero_tool_calls_cost_nothing_more_than_the_definitions() -> None:
    request = {**RESPONSES, "tools": [{"type": "web_search"}], "max_tool_calls": 0}
    found = estimate("gpt-4o", request, "openai", at=AT)
    assert (found.server_tool_calls, found.tool_fees_usd) == (0, 0)
    assert found.input_tokens_bound < 200


@pytest.mark.parametrize(
    ("model", "provider", "request_body", "endpoint", "reason"),
    [
        (
            "gpt-4o",
            "openai",
            {**RESPONSES, "tools": [{"type": "web_search"}]},
            "web_search",
            "max_tool_calls",
        ),
        (
            "gpt-4o",
            "openai",
            {
                **RESPONSES,
                "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}],
                "max_tool_calls": 1,
            },
            "code_interpreter",
            "no price",
        ),
        (
            "gpt-4o",
            "openai",
            {**RESPONSES, "tools": [{"type": "image_generation"}], "max_tool_calls": 1},
            "image_generation",
            "no price",
        ),
        (
            "gpt-4o",
            "openai",
            {
                **RESPONSES,
                "tools": [{"type": "shell", "environment": {"type": "container_auto"}}],
                "max_tool_calls": 1,
            },
            "shell (container_auto)",
            "no price",
        ),
        (
            "gpt-4o",
            "openai",
            {
                "messages": [{"role": "user", "content": "news?"}],
                "max_tokens": 9,
                "web_search_options": {},
            },
            "web_search_options",
            "no cap",
        ),
        (
            "gpt-4o-search-preview",
            "openai",
            {"messages": [{"role": "user", "content": "news?"}], "max_tokens": 9},
            "web_search",
            "every call",
        ),
        (
            CLAUDE,
            "anthropic",
            {**ANTHROPIC, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "web_search_20250305",
            "max_uses",
        ),
        (
            CLAUDE,
            "anthropic",
            {**ANTHROPIC, "tools": [{"type": "code_execution_20250825", "name": "code_execution"}]},
            "code_execution_20250825",
            "no price",
        ),
        (
            CLAUDE,
            "anthropic",
            {
                **ANTHROPIC,
                "mcp_servers": [{"type": "url", "url": "https://x.example", "name": "x"}],
            },
            "mcp_servers",
            "no cap",
        ),
    ],
)
def test_server_tools_without_a_bound_are_refused(
    model: str, provider: str, request_body: dict[str, Any], endpoint: str, reason: str
) -> None:
    with pytest.raises(UnguardedRequest) as raised:
        estimate(model, request_body, provider, at=AT)
    assert raised.value.endpoint == endpoint
    assert reason in raised.value.reason


def test_a_search_fee_unknown_for_the_model_is_refused() -> None:
    request = {**RESPONSES, "tools": [{"type": "web_search"}], "max_tool_calls": 1}
    # genai-prices carries no web search fee for gpt-4.1-nano.
    with pytest.raises(UnguardedRequest, match="no web_searches fee"):
        estimate("gpt-4.1-nano", request, "openai", at=AT)
    book = Pricebook()
    book.set_price("house-model", input="1", output="2")
    with pytest.raises(UnguardedRequest, match="context window is unknown"):
        estimate("house-model", request, pricebook=book, at=AT)


@pytest.mark.parametrize(
    ("shape_request", "tool", "extra"),
    [
        (ANTHROPIC, {"type": "bash_20250124", "name": "bash"}, 300),
        (ANTHROPIC, {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}, 800),
        (
            ANTHROPIC,
            {"type": "computer_20250124", "name": "computer", "display_width_px": 1024},
            1_500,
        ),
        (ANTHROPIC, {"type": "memory_20250818", "name": "memory"}, 1_500),
    ],
)
def test_client_tools_add_their_system_prompt(
    shape_request: dict[str, Any], tool: dict[str, Any], extra: int
) -> None:
    custom = {"name": "f", "input_schema": {"type": "object"}}
    with_custom = input_token_bound(CLAUDE, {**shape_request, "tools": [custom]}, "anthropic")
    with_tool = input_token_bound(CLAUDE, {**shape_request, "tools": [tool]}, "anthropic")
    # Both add the tools block; the typed tool adds its own prompt on top of its JSON.
    assert with_tool - with_custom >= extra - len(str(custom)) - 1
    found = estimate(CLAUDE, {**shape_request, "tools": [tool]}, "anthropic", at=AT)
    assert found.server_tool_calls == 0


def test_responses_client_tools_are_not_server_tools() -> None:
    tools = [
        {"type": "function", "name": "f", "parameters": {"type": "object"}},
        {"type": "computer_use_preview", "display_width": 1024, "display_height": 768},
        {"type": "local_shell"},
        {"type": "shell"},
        {"type": "apply_patch"},
    ]
    found = estimate("gpt-4o", {**RESPONSES, "tools": tools}, "openai", at=AT)
    assert (found.server_tool_calls, found.tool_fees_usd) == (0, 0)
    assert found.input_tokens_bound > 4 * 1_500


# -- service tiers -------------------------------------------------------------------------

HELLO = {"messages": [{"role": "user", "content": "hello"}], "max_completion_tokens": 100}


@pytest.mark.parametrize("tier", [None, "auto"])
def test_an_unpinned_tier_is_held_at_the_dearest_known_tier(tier: str | None) -> None:
    request = HELLO if tier is None else {**HELLO, "service_tier": tier}
    found = estimate("gpt-4o", request, "openai", at=AT)
    # gpt-4o: standard $2.50/$10, flex none, priority and fast $4.25/$17
    assert (found.input_usd_per_token, found.output_usd_per_token) == (D("4.25") / M, D(17) / M)


@pytest.mark.parametrize(
    ("tier", "rates"),
    [
        ("default", (D("1.25"), D(10))),
        ("flex", (D("0.625"), D(5))),
        ("priority", (D("2.5"), D(20))),
    ],
)
def test_a_pinned_tier_is_held_at_its_own_rate(tier: str, rates: tuple[D, D]) -> None:
    found = estimate("gpt-5", {**HELLO, "service_tier": tier}, "openai", at=AT)
    assert (found.input_usd_per_token, found.output_usd_per_token) == (
        rates[0] / M,
        rates[1] / M,
    )


def test_a_pinned_tier_without_a_known_price_is_refused() -> None:
    with pytest.raises(UnknownModel, match="service tier 'scale'"):
        estimate("gpt-5", {**HELLO, "service_tier": "scale"}, "openai", at=AT)
    with pytest.raises(UnknownModel, match="service tier 'flex'"):
        estimate("gpt-4o", {**HELLO, "service_tier": "flex"}, "openai", at=AT)


def test_anthropic_tiers() -> None:
    # genai-prices knows no Anthropic priority price: standard_only and auto are standard.
    for tier in (None, "auto", "standard_only"):
        request = ANTHROPIC if tier is None else {**ANTHROPIC, "service_tier": tier}
        found = estimate(CLAUDE, request, "anthropic", at=AT)
        assert found.input_usd_per_token == D(1) / M


def test_anthropic_fast_speed_is_priced_or_refused() -> None:
    book = Pricebook()
    fast_models = [
        price.model
        for price in book.list_prices("anthropic", at=AT)
        if _has_fast(price.model)  # genai-prices prices fast mode for a few models
    ]
    assert fast_models
    model = fast_models[0]
    standard = estimate(model, ANTHROPIC, "anthropic", at=AT)
    fast = estimate(model, {**ANTHROPIC, "speed": "fast"}, "anthropic", at=AT)
    assert fast.output_usd_per_token > standard.output_usd_per_token
    with pytest.raises(UnknownModel, match="speed 'fast'"):
        estimate(CLAUDE, {**ANTHROPIC, "speed": "fast"}, "anthropic", at=AT)


def _has_fast(model: str) -> bool:
    found = _genai.lookup(model, "anthropic")
    return found is not None and "fast" in _genai.variant_values(*found, "speed")


USAGE = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (None, D("11.25")),
        ("default", D("11.25")),
        ("flex", D("5.625")),
        ("priority", D("22.5")),
        ("fast", D("22.5")),
        # A tier genai-prices cannot price is settled at the dearest one it knows.
        ("scale", D("22.5")),
    ],
)
def test_settlement_prices_the_reported_openai_tier(tier: str | None, expected: D) -> None:
    assert cost("gpt-5", USAGE, "openai", at=AT, service_tier=tier) == expected


@pytest.mark.parametrize(
    ("tier", "expected"),
    [("standard", D(6)), ("priority", D(6)), ("batch", D(3))],
)
def test_settlement_prices_the_reported_anthropic_tier(tier: str, expected: D) -> None:
    assert cost(CLAUDE, USAGE, "anthropic", at=AT, service_tier=tier) == expected
