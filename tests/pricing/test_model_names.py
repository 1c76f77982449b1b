"""Model names that say their provider resolve without provider=; fine-tunes are priced at
fine-tuned rates or refused, never at their base model's."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from capledger.errors import UnknownModel
from capledger.estimate import estimate
from capledger.pricing import Pricebook, price

AT = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "provider", "model", "rates"),
    [
        # genai-prices' fine-tuned inference rates: twice the base gpt-4o-mini's.
        (
            "ft:gpt-4o-mini-2024-07-18:acme:support:AbC123",
            "openai",
            "ft:gpt-4o-mini",
            ("0.3", "1.2"),
        ),
        ("ft:gpt-4o-2024-08-06:acme::XyZ", "openai", "ft:gpt-4o", ("3.75", "15")),
        ("gpt-4o-mini-2024-07-18", "openai", "gpt-4o-mini", ("0.15", "0.6")),
        ("text-embedding-3-small", "openai", "text-embedding-3-small", ("0.02", None)),
        (
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "aws",
            "regional.anthropic.claude-3-5-sonnet-20240620-v1:0",
            ("3", "15"),
        ),
        # A cross-region profile of a newer model: Bedrock's regional 10% premium.
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "aws",
            "regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("3.3", "16.5"),
        ),
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "aws",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("3", "15"),
        ),
        ("claude-sonnet-4-5@20250929", "google", "claude-sonnet-4-5", ("3", "15")),
        ("claude-3-5-haiku@20241022", "google", "claude-3-5-haiku", ("0.8", "4")),
    ],
)
def test_names_resolve_to_their_provider_without_provider(
    name: str, provider: str, model: str, rates: tuple[str, str | None]
) -> None:
    found = price(name, at=AT)
    assert (found.provider, found.model) == (provider, model)
    expected = (D(rates[0]), None if rates[1] is None else D(rates[1]))
    assert (found.input_usd_per_mtok, found.output_usd_per_mtok) == expected


@pytest.mark.parametrize(
    "name",
    [
        # OpenAI prices these fine-tunes above their base; genai-prices has no rate for them.
        "ft:gpt-4.1-mini-2025-04-14:acme::x",
        "ft:gpt-4.1-2025-04-14:acme::x",
        "ft:o4-mini-2025-04-16:acme::x",
    ],
)
def test_a_fine_tune_without_a_fine_tuned_rate_is_refused(name: str) -> None:
    with pytest.raises(UnknownModel, match="fine-tuned rate"):
        price(name, at=AT)
    with pytest.raises(UnknownModel):
        price(name, "openai", at=AT)
    request = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    with pytest.raises(UnknownModel):
        estimate(name, request, at=AT)


def test_a_fine_tune_can_be_priced_by_the_user() -> None:
    book = Pricebook()
    book.set_price("ft:gpt-4.1-mini-2025-04-14:acme::x", input="0.8", output="3.2")
    request = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    found = estimate("ft:gpt-4.1-mini-2025-04-14:acme::x", request, pricebook=book, at=AT)
    assert found.input_usd_per_token == D("0.8") / 1_000_000


def test_a_fine_tune_uses_its_base_tokenizer() -> None:
    request = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
    found = estimate("ft:gpt-4o-mini-2024-07-18:acme:support:AbC123", request, at=AT)
    assert (found.provider, found.method, found.encoding) == ("openai", "tokenizer", "o200k_base")


def test_a_bedrock_claude_body_is_read_as_anthropic() -> None:
    request = {
        "anthropic_version": "bedrock-2023-05-31",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5,
    }
    found = estimate("us.anthropic.claude-sonnet-4-5-20250929-v1:0", request, at=AT)
    assert (found.provider, found.shape, found.method) == ("aws", "anthropic", "bytes")
