from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

import pytest

from capledger.errors import ConfigurationError, InvalidAmount, InvalidInput, UnknownModel
from capledger.pricing import Pricebook, UnpricedModelWarning, Usage, parse_usage

M = D(1_000_000)
AT = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)


def test_importing_capledger_pricing_does_not_import_genai_prices() -> None:
    code = "import sys, capledger.pricing, capledger.estimate; print('genai_prices' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "field",
    [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    ],
)
def test_negative_token_counts_are_refused(field: str) -> None:
    with pytest.raises(InvalidAmount, match="must not be negative"):
        Usage(**{field: -1})


def test_non_integer_and_boolean_counts_are_refused() -> None:
    with pytest.raises(InvalidAmount):
        Usage(input_tokens=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        Usage(input_tokens=True)


def test_parts_may_not_exceed_their_totals() -> None:
    with pytest.raises(InvalidAmount, match="exceed input_tokens"):
        Usage(input_tokens=10, cache_read_tokens=8, cache_write_tokens=3)
    with pytest.raises(InvalidAmount, match="exceed output_tokens"):
        Usage(output_tokens=10, reasoning_tokens=11)
    with pytest.raises(InvalidAmount, match="cache_write_1h_tokens"):
        Usage(input_tokens=10, cache_write_tokens=2, cache_write_1h_tokens=3)


def test_negative_count_in_a_provider_usage_is_refused() -> None:
    with pytest.raises(InvalidAmount, match="prompt_tokens is negative"):
        Pricebook().cost("gpt-4o", {"prompt_tokens": -5, "completion_tokens": 1}, at=AT)


@pytest.mark.parametrize(
    "usage",
    [
        None,
        "100 tokens",
        42,
        {},
        {"tokens": 5},
        SimpleNamespace(foo=1),
        {"prompt_tokens": "ten", "completion_tokens": 1},
        {
            "prompt_tokens": 10,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 11},
        },
        {"input_tokens": 1.5, "output_tokens": 1},
    ],
)
def test_malformed_usage_raises_invalid_input(usage: object) -> None:
    with pytest.raises(InvalidInput):
        Pricebook().cost("gpt-4o", usage, at=AT)


def test_reasoning_is_inside_openai_completion_tokens_and_beside_gemini_candidates() -> None:
    openai = parse_usage(
        {
            "prompt_tokens": 10,
            "completion_tokens": 50,
            "completion_tokens_details": {"reasoning_tokens": 40},
        }
    )
    assert (openai.output_tokens, openai.reasoning_tokens) == (50, 40)
    gemini = parse_usage(
        {"prompt_token_count": 10, "candidates_token_count": 10, "thoughts_token_count": 40}
    )
    assert (gemini.output_tokens, gemini.reasoning_tokens) == (50, 40)


def test_anthropic_input_is_the_sum_of_uncached_read_and_written() -> None:
    usage = parse_usage(
        {
            "input_tokens": 3,
            "output_tokens": 1,
            "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 7,
        }
    )
    assert usage == Usage(
        input_tokens=15, output_tokens=1, cache_read_tokens=5, cache_write_tokens=7
    )


def test_unknown_model_raises_by_default() -> None:
    with pytest.raises(UnknownModel, match="no price is known for model 'acme-llm-9'"):
        Pricebook().cost("acme-llm-9", Usage(input_tokens=1), at=AT)


def test_unknown_model_under_warn_warns_once_costs_zero_and_is_counted() -> None:
    book = Pricebook(policy="warn")
    with pytest.warns(UnpricedModelWarning, match="acme-llm-9"):
        assert book.cost("acme-llm-9", Usage(input_tokens=1), at=AT) == D(0)
    # The second call is not warned again (pytest turns any warning into an error here).
    assert book.cost("ACME-llm-9", Usage(input_tokens=1), at=AT) == D(0)
    assert book.unpriced_calls() == {"acme-llm-9": 2}


def test_unpriced_counts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Model names can come from user input: a flood of names must not grow memory forever.
    from capledger.pricing import _pricebook

    monkeypatch.setattr(_pricebook, "MAX_UNPRICED_MODELS", 2)
    book = Pricebook(policy="warn")
    with pytest.warns(UnpricedModelWarning) as warned:
        for name in ("acme-1", "acme-2", "acme-3", "acme-4", "acme-1"):
            assert book.cost(name, Usage(input_tokens=1), at=AT) == D(0)
    assert len(warned) == 2
    assert book.unpriced_calls() == {"acme-1": 2, "acme-2": 1, _pricebook.OTHER_UNPRICED: 2}


def test_policy_can_be_given_per_call() -> None:
    book = Pricebook(policy="warn")
    with pytest.raises(UnknownModel):
        book.cost("acme-llm-9", Usage(), policy="raise", at=AT)
    assert book.unpriced_calls() == {}


def test_an_unknown_policy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="policy"):
        Pricebook(policy="ignore")  # type: ignore[arg-type]


def test_override_price_wins_and_reports_its_source() -> None:
    book = Pricebook()
    book.set_price("gpt-4o", input="2", output="8", cache_read="0.5", as_of=date(2026, 1, 1))
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=400)
    assert book.cost("gpt-4o", usage, at=AT) == (600 * D(2) + 400 * D("0.5") + 100 * D(8)) / M
    source = book.price("gpt-4o", at=AT).source
    assert (source.kind, source.as_of) == ("override", date(2026, 1, 1))


def test_override_without_cache_rate_bills_cache_reads_at_the_input_rate() -> None:
    book = Pricebook()
    book.set_price("my-finetune", input=3, output=12.5)
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=400)
    assert book.cost("my-finetune", usage, at=AT) == (1000 * D(3) + 100 * D("12.5")) / M


def test_alias_prices_like_its_target() -> None:
    book = Pricebook()
    book.set_alias("prod-gpt", "gpt-4o", provider="openai")
    usage = Usage(input_tokens=1000, output_tokens=500)
    assert book.cost("prod-gpt", usage, at=AT) == (1000 * D("2.5") + 500 * D(10)) / M
    price = book.price("prod-gpt", at=AT)
    assert price.model == "gpt-4o"
    assert price.source.kind == "genai-prices"
    assert price.source.description.startswith("alias prod-gpt -> gpt-4o; genai-prices ")


def test_aliases_resolve_one_step_only() -> None:
    book = Pricebook()
    book.set_alias("a", "gpt-4o")
    with pytest.raises(InvalidInput, match="alias itself"):
        book.set_alias("b", "a")


def test_bad_override_rates_are_refused() -> None:
    for bad in ("-1", "NaN", "lots", True):
        with pytest.raises(InvalidAmount):
            Pricebook().set_price("m", input=bad, output="1")  # type: ignore[arg-type]


def test_overrides_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        """
[prices."my-finetune"]
input = 0.1
output = "0.4"
cache_read = 0.025
provider = "openai"
as_of = 2026-09-01

[aliases]
"prod-claude" = { model = "claude-sonnet-4-20250514", provider = "anthropic" }
"prod-gpt" = "gpt-4o"
""",
        encoding="utf-8",
    )
    book = Pricebook()
    book.load_toml(path)
    usage = Usage(input_tokens=1000, output_tokens=1000, cache_read_tokens=1000)
    # TOML floats are read as decimals: 0.1 is exactly 0.1.
    assert book.cost("my-finetune", usage, at=AT) == (1000 * D("0.025") + 1000 * D("0.4")) / M
    price = book.price("my-finetune", at=AT)
    assert price.source.description == "override from prices.toml"
    assert price.source.as_of == date(2026, 9, 1)
    assert book.cost("prod-claude", Usage(input_tokens=1000), at=AT) == 1000 * D(3) / M
    assert book.price("prod-gpt", at=AT).model == "gpt-4o"


@pytest.mark.parametrize(
    "text",
    [
        "[prices.m]\ninput = 1\n",
        "[prices.m]\ninput = 1\noutput = 1\ncolour = 'red'\n",
        "[aliases]\nx = 3\n",
        "[other]\n",
        "not toml at all [",
        "[prices.m]\ninput = -1\noutput = 1\n",
    ],
)
def test_bad_toml_is_a_configuration_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError):
        Pricebook().load_toml(path)


def test_price_reports_tiers_and_package_source() -> None:
    price = Pricebook().price("gemini-2.5-pro", "google", at=AT)
    assert (price.input_usd_per_mtok, price.output_usd_per_mtok) == (D("1.25"), D(10))
    assert [
        (t.above_input_tokens, t.input_usd_per_mtok, t.output_usd_per_mtok) for t in price.tiers
    ] == [(200000, D("2.5"), D(15))]
    assert price.source.kind == "genai-prices"


def test_a_dated_price_reports_the_date_it_took_effect() -> None:
    assert Pricebook().price("o3", "openai", at=AT).source.as_of == date(2025, 6, 10)


def test_worst_case_rates_take_the_highest_tier_the_bound_reaches() -> None:
    book = Pricebook()
    small = book.worst_case_rates("gemini-2.5-pro", "google", input_tokens_bound=200000, at=AT)
    large = book.worst_case_rates("gemini-2.5-pro", "google", input_tokens_bound=200001, at=AT)
    assert (small.input_usd_per_token, small.output_usd_per_token) == (D("1.25") / M, D(10) / M)
    assert (large.input_usd_per_token, large.output_usd_per_token) == (D("2.5") / M, D(15) / M)


def test_worst_case_rates_cover_cache_writes_and_off_peak_windows() -> None:
    book = Pricebook()
    caching = book.worst_case_rates(
        "claude-sonnet-4-20250514", "anthropic", input_tokens_bound=10, cache_writes=True, at=AT
    )
    assert caching.input_usd_per_token == D(6) / M  # the 1-hour cache write rate
    # At 20:00 UTC DeepSeek is off-peak, but a call could still be billed at the peak rate.
    deepseek = book.worst_case_rates("deepseek-chat", "deepseek", input_tokens_bound=10, at=AT)
    assert (deepseek.input_usd_per_token, deepseek.output_usd_per_token) == (
        D("0.27") / M,
        D("1.1") / M,
    )


def test_list_prices_filters_by_provider_and_includes_overrides() -> None:
    book = Pricebook()
    book.set_price("house-model", input=1, output=2, provider="acme")
    assert {price.provider for price in book.list_prices("anthropic", at=AT)} == {"anthropic"}
    assert [price.model for price in book.list_prices("acme", at=AT)] == ["house-model"]


def test_worst_case_rates_follow_a_new_price_at_once() -> None:
    """Worst cases are kept while prices stay put; set_price and set_alias drop them."""
    from capledger.pricing import Pricebook

    book = Pricebook()
    book.set_price("house-model", input="1", output="2", provider="custom")
    first = book.worst_case_rates("house-model", "custom", input_tokens_bound=10)
    assert book.worst_case_rates("house-model", "custom", input_tokens_bound=10) is first
    book.set_price("house-model", input="3", output="4", provider="custom")
    again = book.worst_case_rates("house-model", "custom", input_tokens_bound=10)
    assert again.output_usd_per_token == D(4) / 1_000_000
    book.set_alias("house-alias", "house-model", provider="custom")
    assert book.worst_case_rates("house-model", "custom", input_tokens_bound=10) is not again


def test_worst_case_rates_kept_are_not_served_before_a_price_starts() -> None:
    """A worst case worked out after a dated price took effect is not reused for an earlier
    instant, when an older price applied."""
    from datetime import UTC, datetime

    from capledger.pricing import default_pricebook

    book = default_pricebook()
    now = book.worst_case_rates("gpt-4o-mini", "openai", input_tokens_bound=10)
    then = book.worst_case_rates(
        "gpt-4o-mini", "openai", input_tokens_bound=10, at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert then is not now
