"""The one place that talks to ``genai-prices``; imported lazily so ``import capledger``
never loads its 1.5 MB price table."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from capledger.errors import ConfigurationError

__all__ = [
    "candidate_instants",
    "effective_from",
    "genai_model_price",
    "genai_usage",
    "is_time_of_day_priced",
    "lookup",
    "package_version",
    "prices_at",
    "snapshot",
    "tiered_type",
    "variant_values",
]


def _module() -> Any:
    try:
        import genai_prices  # noqa: PLC0415 - optional extra, imported on first use
    except ImportError:
        raise ConfigurationError(
            "pricing needs the genai-prices package: pip install 'capledger[prices]'"
        ) from None
    return genai_prices


def snapshot() -> Any:
    """The price data in use (bundled, or refreshed by ``genai_prices.UpdatePrices``)."""
    module = _module()
    return module.data_snapshot.get_snapshot()


def package_version() -> str:
    """The installed ``genai-prices`` version, shown as the source of its prices."""
    return str(_module().__version__)


def lookup(model: str, provider: str | None) -> tuple[Any, Any] | None:
    """``(provider, model_info)`` for a model reference, or ``None`` when it is unknown."""
    try:
        found: tuple[Any, Any] = snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return None
    return found


#: Prices that no longer change with time, per (model, pricing context): the price and the
#: first day from which it holds. A guarded call reads about ten (every service tier at both
#: ends of a hold's life); building one takes genai-prices about 10 us, reading this 1 us
#: (benchmarks/guard_overhead.py measures the whole call).
_STABLE: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[Any, Any, date]] = {}


def stable_from(model_info: Any) -> date | None:
    """The day from which the model's prices stay the same forever, or ``None`` when they
    depend on the time of day. Only start dates change prices otherwise: after the last one,
    every instant reads the same price."""
    types = _module().types
    constraints = [variant.constraint for variant in model_info.price_variants or ()]
    if isinstance(model_info.prices, list):
        constraints.extend(conditional.constraint for conditional in model_info.prices)
    starts = [date.min]
    for constraint in constraints:
        if constraint is None:
            continue
        if not isinstance(constraint, types.StartDateConstraint):
            return None
        starts.append(constraint.start_date)
    return max(starts)


def prices_at(provider: Any, model_info: Any, at: datetime, context: dict[str, str] | None) -> Any:
    """The ``ModelPrice`` in effect at ``at`` for a request with this pricing context."""
    # genai-prices applies request variants (batch, service tier) only to a provider's own
    # models, not to models it borrows from a fallback provider; mirror ModelInfo.calc_price.
    if context and not any(model_info is own for own in provider.models):
        context = None
    key = (id(model_info), tuple(sorted((context or {}).items())))
    known = _STABLE.get(key)
    if known is not None and known[0] is model_info and at.date() >= known[2]:
        return known[1]
    price = model_info.get_prices(at, context)
    since = stable_from(model_info)
    if since is not None and at.date() >= since:
        _STABLE[key] = (model_info, price, since)
    return price


def variant_values(provider: Any, model_info: Any, key: str) -> frozenset[str]:
    """The values of one request-context key (``service_tier``, ``speed``) the model's price
    variants know; none for a model borrowed from another provider (its variants are not
    applied, see ``prices_at``)."""
    if not any(model_info is own for own in provider.models):
        return frozenset()
    return frozenset(
        str(variant.when[key]) for variant in model_info.price_variants or () if key in variant.when
    )


def is_time_of_day_priced(model_info: Any) -> bool:
    """Whether the model's price depends on the time of day (off-peak discounts)."""
    types = _module().types
    return isinstance(model_info.prices, list) and any(
        isinstance(conditional.constraint, types.TimeOfDateConstraint)
        for conditional in model_info.prices
    )


def candidate_instants(model_info: Any, at: datetime, horizon_s: int) -> list[datetime]:
    """Instants whose prices could bill a call held at ``at`` and settled within the horizon.

    The ends of the horizon catch a scheduled price change; both edges of each daily window
    (off-peak discounts) catch time-of-day prices, whichever side of the window ``at`` is.
    """
    instants = [at, at + timedelta(seconds=horizon_s)]
    types = _module().types
    if isinstance(model_info.prices, list):
        for conditional in model_info.prices:
            constraint = conditional.constraint
            if isinstance(constraint, types.TimeOfDateConstraint):
                instants.extend(
                    _on_day(at, edge) for edge in (constraint.start_time, constraint.end_time)
                )
    return instants


def _on_day(at: datetime, moment: time) -> datetime:
    return datetime.combine(at.date(), moment.replace(tzinfo=moment.tzinfo or at.tzinfo))


def effective_from(model_info: Any, at: datetime) -> date | None:
    """The start date of the dated price in effect at ``at``, if the data dates it."""
    types = _module().types
    if not isinstance(model_info.prices, list):
        return None
    for conditional in reversed(model_info.prices):
        constraint = conditional.constraint
        if constraint is None or constraint.active(at):
            if isinstance(constraint, types.StartDateConstraint):
                start: date = constraint.start_date
                return start
            return None
    return None


def genai_model_price(**prices_per_mtok: Decimal) -> Any:
    """A ``genai_prices`` ``ModelPrice`` built from per-million-token rates."""
    return _module().types.ModelPrice(**prices_per_mtok)


def genai_usage(
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    cache_write_1h_tokens: int,
    reasoning_tokens: int,
    input_audio_tokens: int,
    output_audio_tokens: int,
    web_searches: int,
    storage_searches: int,
) -> Any:
    """A ``genai_prices.Usage`` of our counts (reasoning and audio are parts of the totals;
    a count of 0 is left out, so genai-prices infers nothing from it)."""
    counts = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "cache_write_1h_tokens": cache_write_1h_tokens,
        "output_reasoning_tokens": reasoning_tokens,
        "input_audio_tokens": input_audio_tokens,
        "output_audio_tokens": output_audio_tokens,
        "web_searches": web_searches,
        "storage_searches": storage_searches,
    }
    always = tuple(counts)[:6]  # passed before audio and tool calls were read, 0 or not
    return _module().Usage(
        **{key: value for key, value in counts.items() if value or key in always}
    )


def tiered_type() -> Any:
    """The ``TieredPrices`` class, for callers that must tell a tiered rate from a flat one."""
    return _module().types.TieredPrices
