"""Reading genai-prices' price objects for one resolved model: the contexts (batch,
service tier, speed) a call can be billed under, the price object at a moment, where it
comes from, and the ``Price`` a listing shows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from capledger.errors import UnknownModel
from capledger.pricing import _genai
from capledger.pricing._records import OVERRIDE_KEYS, Price, PriceSource, PriceTier, Resolved
from capledger.pricing._usage import Usage

#: The service tier a request names when it lets the provider choose (as sending none
#: does): the project's default tier may be any tier, so a hold takes the dearest one
#: genai-prices knows for the model.
PASSIVE_TIERS: Final = frozenset({"auto"})
#: Service tiers that mean the standard price: OpenAI's ``default`` ("the standard pricing
#: and performance for the selected model"), Anthropic's ``standard_only`` in a request and
#: ``standard`` in a response.
STANDARD_TIERS: Final = frozenset({"default", "standard", "standard_only"})
#: Providers that always bill audio tokens at audio rates, far above the text rates: audio
#: on a model genai-prices has no audio rate for is refused, not priced as text.
AUDIO_PRICED_APART: Final = frozenset({"openai", "azure"})


def pricing_context(*, batch: bool, service_tier: str | None) -> dict[str, str] | None:
    """The genai-prices context of a batch call, or of a named service tier."""
    context: dict[str, str] = {}
    if batch:
        context["processing"] = "batch"
    if service_tier is not None:
        context["service_tier"] = service_tier
    return context or None


def base_rate(value: object) -> Decimal | None:
    """The rate of a genai-prices price below its first tier (``None``: not priced)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base: Decimal = getattr(value, "base")  # noqa: B009 - genai TieredPrices, untyped
    return base


def _tier_rate(value: object, start: int) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    rate = base_rate(value)
    for tier in getattr(value, "tiers"):  # noqa: B009
        if tier.start <= start:
            rate = tier.price
    return rate


def tier_contexts(
    resolved: Resolved,
    *,
    batch: bool,
    service_tier: str | None,
    speed: str | None,
    settled: bool,
) -> list[dict[str, str] | None]:
    """The pricing contexts a call could be billed under.

    For a hold (``settled=False``) an unpinned tier is every known tier and an unknown pinned
    tier or speed is refused; for a settled call (the tier the provider reports) an unknown
    tier is every known tier, so the cost is never below the dearest price known.
    """
    base: dict[str, str] = {"processing": "batch"} if batch else {}
    if resolved.package is None:
        return [base or None]  # a user price has no variants
    provider_info, model_info = resolved.package
    if speed is not None and speed not in STANDARD_TIERS:
        if speed not in _genai.variant_values(provider_info, model_info, "speed"):
            raise UnknownModel(
                f"no price is known for speed {speed!r} of {resolved.name!r}; price the "
                "model with Pricebook.set_price"
            )
        base["speed"] = speed
    if batch:
        return [base]
    known = sorted(_genai.variant_values(provider_info, model_info, "service_tier"))
    every = [None, *known]
    if service_tier is None:
        chosen: list[str | None] = [None] if settled else every
    elif service_tier in STANDARD_TIERS:
        chosen = [None]
    elif service_tier in known:
        chosen = [service_tier]
    elif service_tier in PASSIVE_TIERS or settled:
        chosen = every
    else:
        raise UnknownModel(
            f"no price is known for service tier {service_tier!r} of {resolved.name!r} "
            f"(known: {', '.join(known) or 'standard only'}); pin a known tier or price the "
            "model with Pricebook.set_price"
        )
    return [({**base, "service_tier": tier} if tier else base) or None for tier in chosen]


def audio_rate_missing(resolved: Resolved, price_sets: list[Any], direction: str) -> bool:
    """Audio ``direction`` (input, output) would be priced as text by a provider that does not."""
    if resolved.override is not None or resolved.provider not in AUDIO_PRICED_APART:
        return False
    return all(getattr(prices, f"{direction}_audio_mtok", None) is None for prices in price_sets)


def no_audio_price(model: str, direction: str) -> str:
    """What ``UnknownModel`` says when ``audio_rate_missing``."""
    return (
        f"no {direction} audio price is known for {model!r}, and its provider bills audio "
        "far above text; price it with Pricebook.set_price"
    )


def _package(resolved: Resolved) -> tuple[Any, Any]:
    if resolved.package is None:
        raise UnknownModel(f"{resolved.name!r} has no package price")
    return resolved.package


def genai_usage_of(usage: Usage) -> Any:
    """Our ``Usage`` as the genai-prices usage its prices are computed from."""
    return _genai.genai_usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        input_audio_tokens=usage.input_audio_tokens,
        output_audio_tokens=usage.output_audio_tokens,
        web_searches=usage.web_search_calls,
        storage_searches=usage.file_search_calls,
    )


def price_source(resolved: Resolved, at: datetime) -> PriceSource:
    """Where the price of a resolved model comes from, as of ``at``."""
    if resolved.override is not None:
        override = resolved.override
        return PriceSource(
            "override", f"{resolved.alias_note}override {override.origin}", override.as_of
        )
    _, model_info = _package(resolved)
    snapshot = _genai.snapshot()
    refreshed = snapshot.timestamp.date() if snapshot.from_auto_update else None
    data = "refreshed data" if refreshed else "bundled data"
    return PriceSource(
        "genai-prices",
        f"{resolved.alias_note}genai-prices {_genai.package_version()} {data}",
        _genai.effective_from(model_info, at) or refreshed,
    )


def price_object(resolved: Resolved, at: datetime, context: dict[str, str] | None) -> Any:
    """The genai-prices price object that bills a resolved model at ``at``, in ``context``."""
    if resolved.override is not None:
        return _genai.genai_model_price(**resolved.override.prices_per_mtok)
    provider_info, model_info = _package(resolved)
    return _genai.prices_at(provider_info, model_info, at, context)


def price_view(resolved: Resolved, at: datetime, context: dict[str, str] | None) -> Price:
    """The rates of a resolved model at ``at``, in ``context``, as a ``Price``."""
    model_price = price_object(resolved, at, context)
    values = {key: getattr(model_price, key, None) for key in OVERRIDE_KEYS.values()}
    starts = sorted(
        {
            tier.start
            for key in ("input_mtok", "output_mtok")
            for tier in getattr(values[key], "tiers", ())
        }
    )
    tiers = tuple(
        PriceTier(
            start,
            _tier_rate(values["input_mtok"], start),
            _tier_rate(values["output_mtok"], start),
        )
        for start in starts
    )
    context_window = None
    if resolved.package is not None:
        context_window = resolved.package[1].context_window
    return Price(
        model=resolved.name,
        provider=resolved.provider,
        input_usd_per_mtok=base_rate(values["input_mtok"]),
        output_usd_per_mtok=base_rate(values["output_mtok"]),
        cache_read_usd_per_mtok=base_rate(values["cache_read_mtok"]),
        cache_write_usd_per_mtok=base_rate(values["cache_write_mtok"]),
        cache_write_1h_usd_per_mtok=base_rate(values["cache_write_1h_mtok"]),
        tiers=tiers,
        context_window_tokens=context_window,
        source=price_source(resolved, at),
    )
