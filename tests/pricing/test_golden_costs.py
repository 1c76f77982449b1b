"""Golden usage-to-cost vectors: the expected cost of each is written out from the
provider's published USD-per-million-token prices (as carried by genai-prices 0.2.3), so a
change in the data, the usage parsing or the arithmetic fails here."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

import pytest

from capledger.pricing import Pricebook, Usage

M = D(1_000_000)
# After the 2026-10-12/14 tier and batch rates took effect; 20:00 UTC is DeepSeek off-peak.
AT = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
PEAK = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def chat(prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def responses(inp: int, out: int, *, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens_details": {"reasoning_tokens": reasoning},
    }


def anthropic(inp: int, out: int, *, read: int = 0, write: int = 0, write_1h: int = 0) -> Any:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "cache_creation": {
            "ephemeral_5m_input_tokens": write - write_1h,
            "ephemeral_1h_input_tokens": write_1h,
        },
    }


def gemini(prompt: int, candidates: int, *, cached: int = 0, thoughts: int = 0) -> Any:
    return {
        "usage_metadata": {
            "prompt_token_count": prompt,
            "candidates_token_count": candidates,
            "cached_content_token_count": cached,
            "thoughts_token_count": thoughts,
        }
    }


# (id, model, provider, usage, options, expected USD)
CASES: list[tuple[str, str, str, Any, dict[str, Any], D]] = [
    # --- OpenAI: gpt-4o $2.50 in, $1.25 cached, $10 out; batch $1.25 / $5, cached stays $1.25
    ("4o-plain", "gpt-4o", "openai", chat(1000, 500), {}, (1000 * D("2.5") + 500 * D(10)) / M),
    (
        "4o-cached",
        "gpt-4o",
        "openai",
        chat(1000, 500, cached=200),
        {},
        (800 * D("2.5") + 200 * D("1.25") + 500 * D(10)) / M,
    ),
    (
        "4o-batch",
        "gpt-4o",
        "openai",
        chat(1000, 500),
        {"batch": True},
        (1000 * D("1.25") + 500 * D(5)) / M,
    ),
    (
        "4o-batch-cached",
        "gpt-4o",
        "openai",
        chat(1000, 500, cached=400),
        {"batch": True},
        (600 * D("1.25") + 400 * D("1.25") + 500 * D(5)) / M,
    ),
    (
        "4o-litellm-response",
        "gpt-4o",
        "openai",
        SimpleNamespace(usage=SimpleNamespace(**chat(1000, 500, cached=200))),
        {},
        (800 * D("2.5") + 200 * D("1.25") + 500 * D(10)) / M,
    ),
    # gpt-4o-mini $0.15 in, $0.075 cached, $0.60 out; batch $0.075 / $0.30
    (
        "4o-mini-plain",
        "gpt-4o-mini",
        "openai",
        chat(10000, 2000),
        {},
        (10000 * D("0.15") + 2000 * D("0.6")) / M,
    ),
    (
        "4o-mini-cached",
        "gpt-4o-mini",
        "openai",
        chat(10000, 2000, cached=4000),
        {},
        (6000 * D("0.15") + 4000 * D("0.075") + 2000 * D("0.6")) / M,
    ),
    (
        "4o-mini-batch",
        "gpt-4o-mini",
        "openai",
        chat(10000, 2000),
        {"batch": True},
        (10000 * D("0.075") + 2000 * D("0.3")) / M,
    ),
    # o3 $2 in, $0.50 cached, $8 out (reasoning inside completion_tokens); flex and batch $1/$4
    (
        "o3-reasoning",
        "o3",
        "openai",
        chat(2000, 3000, reasoning=2500),
        {},
        (2000 * D(2) + 3000 * D(8)) / M,
    ),
    (
        "o3-responses-cached-reasoning",
        "o3",
        "openai",
        responses(5000, 4000, cached=1000, reasoning=3000),
        {},
        (4000 * D(2) + 1000 * D("0.5") + 4000 * D(8)) / M,
    ),
    (
        "o3-flex",
        "o3",
        "openai",
        chat(1000, 1000),
        {"service_tier": "flex"},
        (1000 * D(1) + 1000 * D(4)) / M,
    ),
    (
        "o3-batch",
        "o3",
        "openai",
        chat(3000, 1000),
        {"batch": True},
        (3000 * D(1) + 1000 * D(4)) / M,
    ),
    # o4-mini $1.10 in, $0.275 cached, $4.40 out
    (
        "o4-mini-reasoning",
        "o4-mini",
        "openai",
        chat(1000, 2000, reasoning=1500),
        {},
        (1000 * D("1.1") + 2000 * D("4.4")) / M,
    ),
    (
        "o4-mini-cached",
        "o4-mini",
        "openai",
        chat(4000, 100, cached=2000),
        {},
        (2000 * D("1.1") + 2000 * D("0.275") + 100 * D("4.4")) / M,
    ),
    # gpt-5 $1.25 in, $0.125 cached, $10 out; priority $2.50/$20; batch $0.625/$0.0625/$5
    (
        "gpt5-responses",
        "gpt-5",
        "openai",
        responses(10000, 2000, cached=8000, reasoning=1500),
        {},
        (2000 * D("1.25") + 8000 * D("0.125") + 2000 * D(10)) / M,
    ),
    (
        "gpt5-priority",
        "gpt-5",
        "openai",
        responses(1000, 1000),
        {"service_tier": "priority"},
        (1000 * D("2.5") + 1000 * D(20)) / M,
    ),
    (
        "gpt5-batch-cached",
        "gpt-5",
        "openai",
        responses(10000, 2000, cached=8000),
        {"batch": True},
        (2000 * D("0.625") + 8000 * D("0.0625") + 2000 * D(5)) / M,
    ),
    ("gpt41", "gpt-4.1", "openai", chat(100000, 1000), {}, (100000 * D(2) + 1000 * D(8)) / M),
    # gpt-5.4 $2.50 / $0.25 / $15, and for the whole call past 272k input: $5 / $0.50 / $22.50
    (
        "gpt54-at-tier-start",
        "gpt-5.4",
        "openai",
        responses(272000, 1000),
        {},
        (272000 * D("2.5") + 1000 * D(15)) / M,
    ),
    (
        "gpt54-long-context",
        "gpt-5.4",
        "openai",
        responses(300000, 1000, cached=100000),
        {},
        (200000 * D(5) + 100000 * D("0.5") + 1000 * D("22.5")) / M,
    ),
    # --- Anthropic: Sonnet 4 $3 in, $0.30 read, $3.75 5-minute write, $6 1-hour write, $15 out
    (
        "sonnet4-plain",
        "claude-sonnet-4-20250514",
        "anthropic",
        anthropic(1000, 500),
        {},
        (1000 * D(3) + 500 * D(15)) / M,
    ),
    (
        "sonnet4-cache-read",
        "claude-sonnet-4-20250514",
        "anthropic",
        anthropic(100, 500, read=5000),
        {},
        (100 * D(3) + 5000 * D("0.3") + 500 * D(15)) / M,
    ),
    (
        "sonnet4-cache-write",
        "claude-sonnet-4-20250514",
        "anthropic",
        anthropic(100, 500, write=5000),
        {},
        (100 * D(3) + 5000 * D("3.75") + 500 * D(15)) / M,
    ),
    (
        "sonnet4-cache-write-1h",
        "claude-sonnet-4-20250514",
        "anthropic",
        anthropic(100, 500, write=5000, write_1h=5000),
        {},
        (100 * D(3) + 5000 * D(6) + 500 * D(15)) / M,
    ),
    (
        "sonnet4-cache-write-mixed-ttl",
        "claude-sonnet-4-20250514",
        "anthropic",
        anthropic(100, 500, write=5000, write_1h=2000),
        {},
        (100 * D(3) + 3000 * D("3.75") + 2000 * D(6) + 500 * D(15)) / M,
    ),
    (
        "sonnet4-thinking-in-output",
        "claude-sonnet-4-20250514",
        "anthropic",
        anthropic(1000, 3000),
        {},
        (1000 * D(3) + 3000 * D(15)) / M,
    ),
    (
        "sonnet4-via-litellm",
        "claude-sonnet-4-20250514",
        "anthropic",
        {**chat(5100, 500), "cache_creation_input_tokens": 5000, "cache_read_input_tokens": 0},
        {},
        (100 * D(3) + 5000 * D("3.75") + 500 * D(15)) / M,
    ),
    # Sonnet 4.5: past 200k input the whole call pays $6 / $0.60 / $22.50; batch halves
    (
        "sonnet45-long-context",
        "claude-sonnet-4-5",
        "anthropic",
        anthropic(150000, 2000, read=60000),
        {},
        (150000 * D(6) + 60000 * D("0.6") + 2000 * D("22.5")) / M,
    ),
    (
        "sonnet45-at-tier-start",
        "claude-sonnet-4-5",
        "anthropic",
        anthropic(150000, 2000, read=50000),
        {},
        (150000 * D(3) + 50000 * D("0.3") + 2000 * D(15)) / M,
    ),
    (
        "sonnet45-batch",
        "claude-sonnet-4-5",
        "anthropic",
        anthropic(1000, 1000),
        {"batch": True},
        (1000 * D("1.5") + 1000 * D("7.5")) / M,
    ),
    # Haiku 4.5 $1 / $0.10 read / $1.25 write / $5; batch $0.50 / $0.05 / $0.625 / $2.50
    (
        "haiku45-cache",
        "claude-haiku-4-5",
        "anthropic",
        anthropic(1000, 400, read=3000, write=2000),
        {},
        (1000 * D(1) + 3000 * D("0.1") + 2000 * D("1.25") + 400 * D(5)) / M,
    ),
    (
        "haiku45-batch-cache",
        "claude-haiku-4-5",
        "anthropic",
        anthropic(1000, 400, read=3000, write=2000),
        {"batch": True},
        (1000 * D("0.5") + 3000 * D("0.05") + 2000 * D("0.625") + 400 * D("2.5")) / M,
    ),
    # Opus 4.1 $15 / $18.75 write / $75; Haiku 3.5 $0.80 / $0.08 read / $4
    (
        "opus41-plain",
        "claude-opus-4-1",
        "anthropic",
        anthropic(2000, 1000),
        {},
        (2000 * D(15) + 1000 * D(75)) / M,
    ),
    (
        "opus41-cache-write-only",
        "claude-opus-4-1",
        "anthropic",
        anthropic(0, 0, write=10000),
        {},
        10000 * D("18.75") / M,
    ),
    (
        "haiku35-cache-read",
        "claude-3-5-haiku-latest",
        "anthropic",
        anthropic(10000, 1000, read=10000),
        {},
        (10000 * D("0.8") + 10000 * D("0.08") + 1000 * D(4)) / M,
    ),
    # --- Google: Gemini 2.5 Pro $1.25 / $0.125 cached / $10; past 200k $2.50 / $0.25 / $15;
    # batch halves input and output in both tiers, cached input keeps the standard rate
    (
        "g25pro-plain",
        "gemini-2.5-pro",
        "google",
        gemini(10000, 1000),
        {},
        (10000 * D("1.25") + 1000 * D(10)) / M,
    ),
    (
        "g25pro-thoughts-billed-as-output",
        "gemini-2.5-pro",
        "google",
        gemini(10000, 1000, thoughts=3000),
        {},
        (10000 * D("1.25") + 4000 * D(10)) / M,
    ),
    (
        "g25pro-long-context",
        "gemini-2.5-pro",
        "google",
        gemini(250000, 1000),
        {},
        (250000 * D("2.5") + 1000 * D(15)) / M,
    ),
    (
        "g25pro-long-context-cached",
        "gemini-2.5-pro",
        "google",
        gemini(250000, 1000, cached=50000),
        {},
        (200000 * D("2.5") + 50000 * D("0.25") + 1000 * D(15)) / M,
    ),
    (
        "g25pro-batch",
        "gemini-2.5-pro",
        "google",
        gemini(10000, 1000),
        {"batch": True},
        (10000 * D("0.625") + 1000 * D(5)) / M,
    ),
    (
        "g25pro-batch-long-context",
        "gemini-2.5-pro",
        "google",
        gemini(250000, 1000),
        {"batch": True},
        (250000 * D("1.25") + 1000 * D("7.5")) / M,
    ),
    # Gemini 2.5 Flash $0.30 / $0.03 cached / $2.50; batch $0.15 / $1.25
    (
        "g25flash-rest-camelcase",
        "gemini-2.5-flash",
        "google",
        {
            "usageMetadata": {
                "promptTokenCount": 10000,
                "cachedContentTokenCount": 5000,
                "candidatesTokenCount": 1000,
                "thoughtsTokenCount": 1000,
            }
        },
        {},
        (5000 * D("0.3") + 5000 * D("0.03") + 2000 * D("2.5")) / M,
    ),
    (
        "g25flash-batch",
        "gemini-2.5-flash",
        "google",
        gemini(10000, 1000),
        {"batch": True},
        (10000 * D("0.15") + 1000 * D("1.25")) / M,
    ),
    (
        "g25flash-openai-compat-reasoning-outside-completion",
        "gemini-2.5-flash",
        "google",
        {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 2000},
        {},
        (1000 * D("0.3") + 1000 * D("2.5")) / M,
    ),
    # Gemini 2.0 Flash $0.10 / $0.40
    (
        "g20flash-plain",
        "gemini-2.0-flash",
        "google",
        gemini(100000, 10000),
        {},
        (100000 * D("0.1") + 10000 * D("0.4")) / M,
    ),
    # --- DeepSeek: chat $0.27 / $0.07 cache hit / $1.10 from 00:30 to 16:30 UTC, half off-peak
    (
        "deepseek-chat-peak",
        "deepseek-chat",
        "deepseek",
        {**chat(10000, 1000), "prompt_cache_hit_tokens": 4000, "prompt_tokens_details": None},
        {"at": PEAK},
        (6000 * D("0.27") + 4000 * D("0.07") + 1000 * D("1.1")) / M,
    ),
    (
        "deepseek-chat-off-peak",
        "deepseek-chat",
        "deepseek",
        {**chat(10000, 1000), "prompt_cache_hit_tokens": 4000, "prompt_tokens_details": None},
        {},
        (6000 * D("0.135") + 4000 * D("0.035") + 1000 * D("0.55")) / M,
    ),
    (
        "deepseek-reasoner-peak",
        "deepseek-reasoner",
        "deepseek",
        chat(1000, 5000, reasoning=4000),
        {"at": PEAK},
        (1000 * D("0.55") + 5000 * D("2.19")) / M,
    ),
    # --- xAI: Grok 4 $3 / $0.75 cached / $15
    (
        "grok4-cached",
        "grok-4",
        "x-ai",
        chat(1000, 1000, cached=500),
        {},
        (500 * D(3) + 500 * D("0.75") + 1000 * D(15)) / M,
    ),
    # Our own Usage, same arithmetic as the shape it came from
    (
        "own-usage",
        "claude-sonnet-4-20250514",
        "anthropic",
        Usage(input_tokens=5100, output_tokens=500, cache_write_tokens=5000),
        {},
        (100 * D(3) + 5000 * D("3.75") + 500 * D(15)) / M,
    ),
]


def test_there_are_at_least_forty_vectors_over_four_providers() -> None:
    assert len(CASES) >= 40
    assert {"openai", "anthropic", "google", "deepseek"} <= {case[2] for case in CASES}


@pytest.mark.parametrize(
    ("model", "provider", "usage", "options", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_golden_cost(
    model: str, provider: str, usage: Any, options: dict[str, Any], expected: D
) -> None:
    options = {"at": AT, **options}
    result = Pricebook().cost(model, usage, provider, **options)
    assert isinstance(result, D)
    assert result == expected


def test_provider_is_inferred_from_the_model_name() -> None:
    book = Pricebook()
    assert book.cost("gpt-4o", chat(1000, 500), at=AT) == (1000 * D("2.5") + 500 * D(10)) / M


def test_sub_nano_costs_round_up() -> None:
    # 1 token x $0.0625 / 1M = 6.25e-8 USD exactly; 3 tokens = 1.875e-7, which is not a whole
    # number of nano-USD and rounds up to 1.88e-7.
    book = Pricebook()
    cost = book.cost("gpt-5", responses(3, 0, cached=3), batch=True, at=AT)
    assert cost == D("0.000000188")
