"""The values a pricebook answers with (``Price``, ``Rates``, ``PriceSource``), and those
it keeps: a user's price (``Override``) and a model name resolved to what prices it
(``Resolved``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, TypeAlias

from capledger.errors import ConfigurationError, InvalidAmount
from capledger.money import from_units, to_units

__all__ = [
    "OVERRIDE_KEYS",
    "POLICIES",
    "Override",
    "Policy",
    "Price",
    "PriceSource",
    "PriceTier",
    "Rates",
    "Resolved",
    "UnpricedModelWarning",
    "check_policy",
    "parse_rate",
    "round_up_usd",
]

Policy: TypeAlias = Literal["raise", "warn"]
POLICIES: Final[tuple[Policy, ...]] = ("raise", "warn")
OVERRIDE_KEYS: Final = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
}


class UnpricedModelWarning(UserWarning):
    """A call to a model with no known price was recorded at $0 (policy ``warn``)."""


@dataclass(frozen=True, slots=True)
class PriceSource:
    """Where a price comes from.

    Args:
        kind: ``genai-prices`` (the package's data) or ``override`` (set by the user).
        description: the package version, or where the override was set, and any alias.
        as_of: for package data, the date this price took effect when the data dates it
            (or the date fetched data was refreshed); for an override, the date given with
            it; else ``None``.
    """

    kind: Literal["genai-prices", "override"]
    description: str
    as_of: date | None


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Rates that apply to the whole call once its input passes ``above_input_tokens``."""

    above_input_tokens: int
    input_usd_per_mtok: Decimal | None
    output_usd_per_mtok: Decimal | None


@dataclass(frozen=True, slots=True)
class Price:
    """The per-million-token rates of one model at one moment (``None``: not priced).

    Tiers are cliffs, as providers bill them: once a call's input passes a tier's start, the
    tier's rate applies to every token of the call.
    """

    model: str
    provider: str
    input_usd_per_mtok: Decimal | None
    output_usd_per_mtok: Decimal | None
    cache_read_usd_per_mtok: Decimal | None
    cache_write_usd_per_mtok: Decimal | None
    cache_write_1h_usd_per_mtok: Decimal | None
    tiers: tuple[PriceTier, ...]
    context_window_tokens: int | None
    source: PriceSource


@dataclass(frozen=True, slots=True)
class Rates:
    """The highest per-token rates (USD) that could bill a call; see ``worst_case_rates``."""

    input_usd_per_token: Decimal
    output_usd_per_token: Decimal
    context_window_tokens: int | None
    source: PriceSource
    #: The highest fee per call of each priced server-side tool (``web_searches``,
    #: ``storage_searches``, ``code_executions``); a tool with no known fee is absent.
    tool_usd_per_call: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Override:
    """A model priced by the user (``Pricebook.set_price``), in genai-prices' rate names."""

    name: str
    provider: str
    prices_per_mtok: Mapping[str, Decimal]
    origin: str
    as_of: date | None


@dataclass(frozen=True, slots=True)
class Resolved:
    """A model name resolved to what prices it: a user's price or genai-prices' data."""

    name: str
    provider: str
    alias_note: str
    override: Override | None
    package: tuple[Any, Any] | None  # (genai Provider, genai ModelInfo)


def round_up_usd(value: Decimal) -> Decimal:
    """Round a USD amount up to the next nano-USD (1e-9), the ledger's step.

    Raises:
        InvalidAmount: negative, or past the per-operation bound.
    """
    rounded = from_units("usd", to_units("usd", value))
    if not isinstance(rounded, Decimal):  # from_units gives Decimal for usd; keep mypy sure
        raise InvalidAmount(f"cannot round {value!r} to nano-USD")
    return rounded


def check_policy(policy: object) -> Policy:
    """``policy`` if it is one of ``POLICIES``."""
    if policy == "raise":
        return "raise"
    if policy == "warn":
        return "warn"
    raise ConfigurationError(f"unknown-model policy must be one of {POLICIES}, not {policy!r}")


def parse_rate(model: str, key: str, value: object) -> Decimal:
    """A user's rate ``key`` of ``model``, exactly (a float through its ``str``)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise InvalidAmount(f"price {key} of {model!r} must be a number, not {value!r}")
    try:
        rate = Decimal(str(value).strip())  # via str, so a float 0.1 means exactly 0.1
    except InvalidOperation:
        raise InvalidAmount(f"price {key} of {model!r} is not a number: {value!r}") from None
    if not rate.is_finite() or rate < 0:
        raise InvalidAmount(f"price {key} of {model!r} must be finite and >= 0, got {value!r}")
    return rate
