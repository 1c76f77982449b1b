"""Audio tokens, cache writes and search calls: read from each provider's usage, priced at
their own rates, and held at them before the call."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest
from anthropic.types import Usage as AnthropicUsage
from openai.types import CompletionUsage

from capledger.errors import InvalidAmount, InvalidInput, UnknownModel
from capledger.estimate import estimate
from capledger.pricing import Usage, cost, parse_usage

M = D(1_000_000)
AT = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
STANDARD = "default"  # OpenAI's standard tier, pinned


def test_chat_audio_tokens_are_read_and_priced_at_the_audio_rates() -> None:
    usage = CompletionUsage.model_validate(
        {
            "prompt_tokens": 1_000,
            "completion_tokens": 500,
            "total_tokens": 1_500,
            "prompt_tokens_details": {"audio_tokens": 400, "cached_tokens": 0},
            "completion_tokens_details": {"audio_tokens": 300, "reasoning_tokens": 0},
        }
    )
    parsed = parse_usage(usage)
    assert (parsed.input_audio_tokens, parsed.output_audio_tokens) == (400, 300)
    # gpt-audio: text $2.50 / $10, audio $32 / $64 per MTok
    expected = (600 * D("2.5") + 400 * D(32) + 200 * D(10) + 300 * D(64)) / M
    assert cost("gpt-audio", usage, "openai", at=AT, service_tier=STANDARD) == expected


def test_audio_on_a_model_without_audio_rates_is_refused_not_priced_as_text() -> None:
    usage = Usage(input_tokens=100, output_tokens=100, output_audio_tokens=50)
    with pytest.raises(UnknownModel, match="output audio price"):
        cost("gpt-4o-audio-preview", usage, "openai", at=AT)
    request = {
        "messages": [{"role": "user", "content": "say hi"}],
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
        "max_completion_tokens": 100,
    }
    with pytest.raises(UnknownModel, match="audio price"):
        estimate("gpt-4o-audio-preview", request, "openai", at=AT)


def test_an_audio_reply_is_held_at_the_audio_output_rate() -> None:
    request = {
        "messages": [{"role": "user", "content": "say hi"}],
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
        "max_completion_tokens": 100,
        "service_tier": STANDARD,
    }
    found = estimate("gpt-audio", request, "openai", at=AT)
    assert found.output_usd_per_token == D(64) / M
    # No audio in: text input stays at the text rate.
    assert found.input_usd_per_token == D("2.5") / M
    audio_in = {"type": "input_audio", "input_audio": {"data": "UklGR" * 10, "format": "wav"}}
    spoken = {**request, "messages": [{"role": "user", "content": [audio_in]}]}
    assert estimate("gpt-audio", spoken, "openai", at=AT).input_usd_per_token == D(32) / M


def test_openai_cache_writes_are_read_and_held() -> None:
    chat = {
        "prompt_tokens": 1_000,
        "completion_tokens": 0,
        "total_tokens": 1_000,
        "prompt_tokens_details": {"cached_tokens": 200, "cache_write_tokens": 300},
    }
    responses = {
        "input_tokens": 1_000,
        "output_tokens": 0,
        "total_tokens": 1_000,
        "input_tokens_details": {"cached_tokens": 200, "cache_write_tokens": 300},
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    for usage in (chat, responses):
        parsed = parse_usage(usage)
        assert (parsed.cache_read_tokens, parsed.cache_write_tokens) == (200, 300)
        # gpt-6-sol: input $2, cache read $0.20, cache write $2.50 per MTok
        assert (
            cost("gpt-6-sol", usage, "openai", at=AT, service_tier=STANDARD)
            == (500 * D(2) + 200 * D("0.2") + 300 * D("2.5")) / M
        )
    # OpenAI caches by itself, so every OpenAI request may write: held at the write rate.
    request = {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 1}
    held = estimate("gpt-6-sol", {**request, "service_tier": STANDARD}, "openai", at=AT)
    assert held.input_usd_per_token == D("2.5") / M


def test_anthropic_cache_creation_breakdown() -> None:
    usage = AnthropicUsage.model_validate(
        {
            "input_tokens": 100,
            "output_tokens": 10,
            "cache_read_input_tokens": 1_000,
            "cache_creation_input_tokens": 3_000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1_000,
                "ephemeral_1h_input_tokens": 2_000,
            },
        }
    )
    parsed = parse_usage(usage)
    assert (parsed.input_tokens, parsed.cache_write_tokens, parsed.cache_write_1h_tokens) == (
        4_100,
        3_000,
        2_000,
    )
    # claude-haiku-4-5: input $1, output $5, read $0.10, 5m write $1.25, 1h write $2
    expected = (100 * 1 + 10 * 5 + 1_000 * D("0.1") + 1_000 * D("1.25") + 2_000 * 2) / M
    assert cost("claude-haiku-4-5", usage, "anthropic", at=AT) == expected
    # A breakdown larger than the total it breaks down: the larger is what was written.
    uneven = {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 10,
        "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 20},
    }
    assert parse_usage(uneven).cache_write_tokens == 50


def test_search_calls_are_read_and_billed_per_call() -> None:
    anthropic = {
        "input_tokens": 100,
        "output_tokens": 10,
        "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1},
    }
    assert parse_usage(anthropic).web_search_calls == 3
    assert cost("claude-haiku-4-5", anthropic, "anthropic", at=AT) == (
        100 * 1 + 10 * 5
    ) / M + 3 * D("0.01")
    response: dict[str, Any] = {
        "output": [
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "file_search_call", "id": "fs_1", "status": "completed"},
            {"type": "file_search_call", "id": "fs_2", "status": "completed"},
            {"type": "message", "role": "assistant", "content": []},
        ],
        "usage": {
            "input_tokens": 1_000,
            "output_tokens": 100,
            "total_tokens": 1_100,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }
    parsed = parse_usage(response)
    assert (parsed.web_search_calls, parsed.file_search_calls) == (1, 2)
    assert cost("gpt-4o", response, "openai", at=AT, service_tier=STANDARD) == (
        1_000 * D("2.5") + 100 * D(10)
    ) / M + D("0.01") + 2 * D("0.0025")


@pytest.mark.parametrize(
    "counts",
    [
        {"input_tokens": 10, "input_audio_tokens": 11},
        {"output_tokens": 10, "output_audio_tokens": 11},
        {"web_search_calls": -1},
    ],
)
def test_audio_parts_cannot_exceed_their_totals(counts: dict[str, int]) -> None:
    with pytest.raises(InvalidAmount):
        Usage(**counts)


def test_malformed_audio_counts_raise_invalid_input() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 0,
        "prompt_tokens_details": {"audio_tokens": "ten"},
    }
    with pytest.raises(InvalidInput):
        parse_usage(usage)
    with pytest.raises(InvalidInput):
        parse_usage({**usage, "prompt_tokens_details": {"audio_tokens": 11}})
