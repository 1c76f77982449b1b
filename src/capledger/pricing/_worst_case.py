"""The highest per-token rates that could bill a call of a resolved model: what a hold is
sized by (see ``Pricebook.worst_case_rates`` for the formula)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Final

from capledger.bounds import MAX_TTL_S
from capledger.errors import UnknownModel
from capledger.pricing import _genai
from capledger.pricing._rates import (
    audio_rate_missing,
    base_rate,
    no_audio_price,
    price_object,
    price_source,
    tier_contexts,
)
from capledger.pricing._records import Rates, Resolved

_TOKENS_PER_MTOK: Final = Decimal(1_000_000)
_CACHE_WRITE_KEYS: Final = ("cache_write_mtok", "cache_write_5m_mtok", "cache_write_1h_mtok")
_OUTPUT_KEYS: Final = (
    "output_mtok",
    "output_text_mtok",
    "output_reasoning_mtok",
    "output_text_reasoning_mtok",
)
MODALITIES: Final = frozenset({"image", "audio", "video"})
#: Per-call fees, as genai-prices names their price keys (per thousand calls).
TOOL_FEE_KEYS: Final = {
    "web_searches": "web_searches_kcount",
    "storage_searches": "storage_searches_kcount",
    "code_executions": "code_executions_kcount",
}
_PER_THOUSAND: Final = Decimal(1000)


def highest_rates(
    resolved: Resolved,
    when: datetime,
    model: str,
    input_tokens_bound: int,
    cache_writes: bool,
    modalities: frozenset[str],
    output_modalities: frozenset[str],
    batch: bool,
    service_tier: str | None,
    speed: str | None,
    require_output: bool,
) -> Rates:
    """The highest input and output rates per token that could bill a call, from ``when`` on."""
    contexts = tier_contexts(
        resolved, batch=batch, service_tier=service_tier, speed=speed, settled=False
    )
    input_keys = ["input_mtok", "input_text_mtok"]
    if cache_writes:
        input_keys.extend(_CACHE_WRITE_KEYS)
    output_keys = list(_OUTPUT_KEYS)
    for modality in sorted(modalities & MODALITIES):
        input_keys.append(f"input_{modality}_mtok")
        output_keys.append(f"output_{modality}_mtok")
    for modality in sorted(output_modalities & MODALITIES):
        output_keys.append(f"output_{modality}_mtok")
    instants = [when]
    if resolved.package is not None:
        instants = _genai.candidate_instants(resolved.package[1], when, MAX_TTL_S)
    # Distinct price sets only: once prices are stable, every instant reads the same one.
    price_sets = list(
        {
            id(prices): prices
            for instant in instants
            for context in contexts
            if (prices := price_object(resolved, instant, context)) is not None
        }.values()
    )
    for direction, asked in (("input", modalities), ("output", output_modalities)):
        if "audio" in asked and audio_rate_missing(resolved, price_sets, direction):
            raise UnknownModel(no_audio_price(model, direction))
    input_rate = _max_of(
        _highest_rate(getattr(prices, key, None), input_tokens_bound)
        for prices in price_sets
        for key in input_keys
    )
    output_rate = _max_of(
        _highest_rate(getattr(prices, key, None), input_tokens_bound)
        for prices in price_sets
        for key in output_keys
    )
    if output_rate is None and not require_output:
        output_rate = Decimal(0)
    if input_rate is None or output_rate is None:
        raise UnknownModel(
            f"{model!r} has no per-token input and output price, so no worst case can "
            "be bounded; set one with Pricebook.set_price"
        )
    context_window = resolved.package[1].context_window if resolved.package else None
    tool_fees = {
        tool: fee / _PER_THOUSAND
        for tool, key in TOOL_FEE_KEYS.items()
        if (fee := _max_of(base_rate(getattr(prices, key, None)) for prices in price_sets))
        is not None
    }
    return Rates(
        input_rate / _TOKENS_PER_MTOK,
        output_rate / _TOKENS_PER_MTOK,
        context_window,
        price_source(resolved, when),
        tool_fees,
    )


def _highest_rate(value: object, input_tokens_bound: int) -> Decimal | None:
    """The highest rate a tiered price charges for a call of at most this many input tokens.

    genai-prices applies a tier when the call's input is strictly above its start.
    """
    if value is None or isinstance(value, Decimal):
        return value
    rates = [base_rate(value)]
    rates.extend(tier.price for tier in getattr(value, "tiers") if input_tokens_bound > tier.start)  # noqa: B009
    return max(rate for rate in rates if rate is not None)


def _max_of(rates: Iterable[Decimal | None]) -> Decimal | None:
    present = [rate for rate in rates if rate is not None]
    return max(present) if present else None
