"""Prices of models: ``genai-prices`` data, the user's overrides and aliases, and the
policy for models nobody has priced."""

from __future__ import annotations

import threading
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

from capledger.errors import InvalidInput, UnknownModel
from capledger.money import AmountLike
from capledger.pricing import _genai
from capledger.pricing._lookup import model_key, resolve_in_package, unknown_message
from capledger.pricing._price_file import load_price_file
from capledger.pricing._rates import (
    audio_rate_missing,
    genai_usage_of,
    no_audio_price,
    price_object,
    price_view,
    pricing_context,
    tier_contexts,
)
from capledger.pricing._records import (
    OVERRIDE_KEYS,
    Override,
    Policy,
    Price,
    PriceSource,
    PriceTier,
    Rates,
    Resolved,
    UnpricedModelWarning,
    check_policy,
    parse_rate,
    round_up_usd,
)
from capledger.pricing._usage import parse_usage
from capledger.pricing._worst_case import highest_rates

__all__ = [
    "Policy",
    "Price",
    "PriceSource",
    "PriceTier",
    "Pricebook",
    "Rates",
    "UnpricedModelWarning",
    "cost",
    "default_pricebook",
    "list_prices",
    "price",
    "round_up_usd",
]


#: How many worst cases a pricebook keeps before it starts afresh.
_MAX_KEPT_WORST_CASES: Final = 4096
#: How many unknown model names ``unpriced_calls`` counts one by one; model names can come
#: from user input, so past this the calls are counted together under ``OTHER_UNPRICED``.
MAX_UNPRICED_MODELS: Final = 1_000
OTHER_UNPRICED: Final = "(other models)"


def _now() -> datetime:
    return datetime.now(tz=UTC)


class Pricebook:
    """Prices for models: ``genai-prices`` data, overridden and aliased by the user.

    Thread-safe. Lookup order for a model name (case-insensitive): an alias is replaced by
    its target, then a user price for that name wins over the package data.

    Args:
        policy: what ``cost`` does for a model with no price: ``raise`` (``UnknownModel``:
            an unpriced call is never treated as free) or ``warn`` (an
            ``UnpricedModelWarning`` once per model, the call costs $0 and is counted in
            ``unpriced_calls()``).
    """

    def __init__(self, *, policy: Policy = "raise") -> None:
        self._policy = check_policy(policy)
        self._lock = threading.Lock()
        self._overrides: dict[str, Override] = {}
        self._aliases: dict[str, tuple[str, str | None]] = {}
        self._unpriced_calls: dict[str, int] = {}
        # Worst-case rates already worked out, while prices stay put: a guarded call needs
        # one per request, and working it out takes about 80 us against 2 us to look it up
        # (benchmarks/guard_overhead.py). Any set_price / set_alias empties it.
        self._worst_cases: dict[tuple[object, ...], tuple[Rates, date]] = {}

    @property
    def policy(self) -> Policy:
        """The unknown-model policy ``cost`` uses when it is not given one."""
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = check_policy(policy)

    def set_price(
        self,
        model: str,
        *,
        input: AmountLike,
        output: AmountLike,
        cache_read: AmountLike | None = None,
        cache_write: AmountLike | None = None,
        cache_write_1h: AmountLike | None = None,
        provider: str = "custom",
        as_of: date | None = None,
        origin: str = "set in code",
    ) -> None:
        """Price a model yourself, in USD per million tokens; it wins over package data.

        Cache rates left out bill those tokens at the input rate (never for free).

        Args:
            model: the model name as your calls report it (matched case-insensitively).
            input: USD per million input tokens. ``output``, ``cache_read``,
                ``cache_write``, ``cache_write_1h``: the same for those tokens.
            provider: a label shown in listings.
            as_of: the date this price took effect, reported as its source date.
            origin: where the price was set, reported with its source.

        Raises:
            InvalidAmount: a rate is not a finite number >= 0.
        """
        given = {
            "input": input,
            "output": output,
            "cache_read": cache_read,
            "cache_write": cache_write,
            "cache_write_1h": cache_write_1h,
        }
        rates = {
            OVERRIDE_KEYS[key]: parse_rate(model, key, value)
            for key, value in given.items()
            if value is not None
        }
        key = model_key(model)
        override = Override(model.strip(), provider, rates, origin, as_of)
        with self._lock:
            self._overrides[key] = override
            self._worst_cases.clear()

    def set_alias(self, alias: str, model: str, *, provider: str | None = None) -> None:
        """Price ``alias`` (a private deployment, a fine-tune) exactly like ``model``.

        Args:
            alias: the name your calls report.
            model: a model known to the package data or priced with ``set_price``.
            provider: the provider of ``model`` in the package data, when ambiguous.

        Raises:
            InvalidInput: ``model`` is itself an alias (aliases resolve one step only).
        """
        alias_key, target_key = model_key(alias), model_key(model)
        with self._lock:
            if target_key in self._aliases:
                raise InvalidInput(f"{model!r} is an alias itself; alias the model it names")
            if alias_key == target_key:
                raise InvalidInput(f"{alias!r} cannot be an alias of itself")
            self._aliases[alias_key] = (model.strip(), provider)
            self._worst_cases.clear()

    def load_toml(self, path: str | Path) -> None:
        """Read prices and aliases from a TOML file (floats are read exactly, as decimals).

        Format::

            [prices."my-finetune"]          # USD per million tokens
            input = "3.00"
            output = "15.00"
            cache_read = "0.30"             # optional, as are cache_write, cache_write_1h
            provider = "openai"             # optional label
            as_of = 2026-01-01              # optional

            [aliases]
            "prod-gpt" = "gpt-4o"                                  # or, naming the provider:
            "eu-claude" = { model = "claude-sonnet-4-5", provider = "anthropic" }

        Raises:
            ConfigurationError: the file cannot be read, is not TOML, or does not follow
                this format.
        """
        load_price_file(self, path)

    def _resolve(self, model: str, provider: str | None) -> Resolved | None:
        key = model_key(model)
        with self._lock:
            alias = self._aliases.get(key)
            target, alias_provider = alias if alias else (model.strip(), None)
            override = self._overrides.get(model_key(target))
        alias_note = f"alias {model.strip()} -> {target}; " if alias else ""
        if override is not None:
            return Resolved(override.name, override.provider, alias_note, override, None)
        return resolve_in_package(target, provider or alias_provider, alias_note)

    def _resolve_or_raise(self, model: str, provider: str | None) -> Resolved:
        resolved = self._resolve(model, provider)
        if resolved is None:
            raise UnknownModel(unknown_message(model, provider))
        return resolved

    def cost(
        self,
        model: str,
        usage: object,
        provider: str | None = None,
        *,
        policy: Policy | None = None,
        at: datetime | None = None,
        batch: bool = False,
        service_tier: str | None = None,
        speed: str | None = None,
    ) -> Decimal:
        """The cost in USD of one call, rounded up to the nano-USD.

        ``cost = sum(leaf tokens x rate) / 1e6`` where cache reads, cache writes and the
        rest of the input are disjoint leaves of ``input_tokens`` (each token billed once, at
        its own rate, tier chosen by the call's total input) and reasoning is inside output.

        Args:
            model: the model name as the call reported it.
            usage: our ``Usage`` or a provider's usage or response (see ``parse_usage``).
            provider: a genai-prices provider id (``openai``, ``anthropic``, ``google``...);
                ``None`` infers it from the model name.
            policy: overrides the pricebook's unknown-model policy for this call.
            at: when the call ran (prices change over time, some by time of day); now if
                ``None``.
            batch: the call went through the provider's batch API.
            service_tier: the tier the provider reports it billed, as reported: OpenAI's
                ``default`` / ``flex`` / ``priority`` / ``scale``..., Anthropic's
                ``standard`` / ``priority`` / ``batch`` (``batch`` is the batch price). A
                tier genai-prices does not price for the model is billed at the dearest
                tier it knows (never below the standard price).
            speed: Anthropic's reported ``speed`` (``fast`` mode is priced apart).

        Raises:
            UnknownModel: no price is known and the policy is ``raise``.
            InvalidInput: the usage is malformed (``InvalidAmount`` for negative counts).
        """
        parsed = parse_usage(usage)
        when = at or _now()
        resolved = self._resolve(model, provider)
        if resolved is None:
            return self._unpriced(model, provider, check_policy(policy or self._policy))
        if service_tier == "batch":
            batch, service_tier = True, None
        contexts = tier_contexts(
            resolved, batch=batch, service_tier=service_tier, speed=speed, settled=True
        )
        genai_usage = genai_usage_of(parsed)
        totals: list[Decimal] = []
        for context in contexts:
            model_price = price_object(resolved, when, context)
            for direction, count in (
                ("input", parsed.input_audio_tokens),
                ("output", parsed.output_audio_tokens),
            ):
                if count and audio_rate_missing(resolved, [model_price], direction):
                    raise UnknownModel(no_audio_price(model, direction))
            try:
                totals.append(model_price.calc_price(genai_usage)["total_price"])
            except ValueError as error:
                raise InvalidInput(f"cannot price this usage for {model!r}: {error}") from None
        return round_up_usd(max(totals))

    def _unpriced(self, model: str, provider: str | None, policy: Policy) -> Decimal:
        message = unknown_message(model, provider)
        if policy == "raise":
            raise UnknownModel(message)
        key = model_key(model)
        with self._lock:
            first = key not in self._unpriced_calls
            if first and len(self._unpriced_calls) >= MAX_UNPRICED_MODELS:
                key, first = OTHER_UNPRICED, False
            self._unpriced_calls[key] = self._unpriced_calls.get(key, 0) + 1
        if first:
            warnings.warn(
                f"{message}; its calls are recorded at $0 and counted as unpriced",
                UnpricedModelWarning,
                stacklevel=3,
            )
        return Decimal(0)

    def unpriced_calls(self) -> dict[str, int]:
        """How many calls ``cost`` recorded at $0 per unknown model (policy ``warn``).

        At most ``MAX_UNPRICED_MODELS`` names are counted one by one (and warned about once
        each); the calls of any further names are counted under ``OTHER_UNPRICED``.
        """
        with self._lock:
            return dict(self._unpriced_calls)

    def price(
        self,
        model: str,
        provider: str | None = None,
        *,
        at: datetime | None = None,
        batch: bool = False,
        service_tier: str | None = None,
    ) -> Price:
        """The rates of a model at ``at`` (now if ``None``), with their source.

        Raises:
            UnknownModel: no price is known for the model (whatever the policy).
        """
        when = at or _now()
        resolved = self._resolve_or_raise(model, provider)
        context = pricing_context(batch=batch, service_tier=service_tier)
        return price_view(resolved, when, context)

    def list_prices(
        self, provider: str | None = None, *, at: datetime | None = None
    ) -> list[Price]:
        """Every priced model (package data, then overrides), optionally of one provider.

        Args:
            provider: a provider id such as ``openai``; ``None`` lists all.
            at: the moment whose prices to show; now if ``None``.
        """
        when = at or _now()
        wanted = provider.strip().lower() if provider else None
        listed: list[Price] = []
        for provider_info in _genai.snapshot().providers:
            if wanted is not None and provider_info.id != wanted:
                continue
            for model_info in provider_info.models:
                resolved = Resolved(
                    model_info.id, provider_info.id, "", None, (provider_info, model_info)
                )
                listed.append(price_view(resolved, when, None))
        with self._lock:
            overrides = list(self._overrides.values())
        for override in overrides:
            if wanted is None or override.provider.lower() == wanted:
                resolved = Resolved(override.name, override.provider, "", override, None)
                listed.append(price_view(resolved, when, None))
        return listed

    def worst_case_rates(
        self,
        model: str,
        provider: str | None = None,
        *,
        input_tokens_bound: int,
        cache_writes: bool = False,
        modalities: frozenset[str] = frozenset(),
        output_modalities: frozenset[str] = frozenset(),
        at: datetime | None = None,
        batch: bool = False,
        service_tier: str | None = None,
        speed: str | None = None,
        require_output: bool = True,
    ) -> Rates:
        """The highest per-token input and output rates that could bill a call.

        ``input = max(input rate, cache-write rates if cache_writes, the rates of each
        modality) / 1e6``, ``output = max(output, reasoning, modality output rates) / 1e6``,
        each at the highest tier the input bound reaches, over every price that could be in
        effect from ``at`` until the longest hold expires (``MAX_TTL_S``), daily off-peak
        windows included, and over every service tier the call could be billed at. The
        policy does not apply: a hold never treats a call as free.

        Service tiers: a request that pins none (``None`` or ``auto``) may be billed at the
        project's default tier, so every tier genai-prices knows for the model is considered
        (standard, ``flex``, ``priority``, ``fast``...); ``default``, ``standard`` and
        ``standard_only`` are the standard price; any other pinned tier is held at its own
        rate, and refused when genai-prices does not price it for the model (``scale``, for
        one). User prices (``set_price``) have no tiers and apply whatever the tier.

        Args:
            input_tokens_bound: an upper bound on the call's input tokens (picks the tier).
            cache_writes: the request may write the prompt cache (Anthropic
                ``cache_control``), which can bill input above the input rate.
            modalities: ``image``, ``audio``, ``video`` present in the request.
            output_modalities: those the request asks for in the reply (chat
                ``modalities=["text", "audio"]``): output held at their rates. For OpenAI
                and Azure, audio in or out on a model with no audio rate is refused.
            service_tier: the tier the request names, as sent (``None`` if it names none).
            speed: Anthropic's ``speed`` as sent (``fast`` is priced apart; refused for a
                model genai-prices has no fast price for).
            require_output: ``False`` when the call outputs no tokens (embeddings): a
                missing output price is then 0 instead of an error.

        Raises:
            UnknownModel: no price, or no per-token input or output price, is known, or the
                pinned service tier or speed has no known price for the model.
        """
        when = at or _now()
        options = (
            input_tokens_bound,
            cache_writes,
            modalities,
            output_modalities,
            batch,
            service_tier,
            speed,
            require_output,
        )
        key = (model, provider, *options)
        known = self._worst_cases.get(key)
        if known is not None and when.date() >= known[1]:
            return known[0]
        resolved = self._resolve_or_raise(model, provider)
        rates = highest_rates(resolved, when, model, *options)
        stable_from = (
            date.min if resolved.package is None else _genai.stable_from(resolved.package[1])
        )
        # Kept only when no price can change from now on (no daily window, no dated price
        # still ahead), and never past a bound, so a long-lived process stays small.
        if stable_from is not None and when.date() >= stable_from:
            with self._lock:
                if len(self._worst_cases) >= _MAX_KEPT_WORST_CASES:
                    self._worst_cases.clear()
                self._worst_cases[key] = (rates, stable_from)
        return rates


_DEFAULT = Pricebook()


def default_pricebook() -> Pricebook:
    """The process-wide pricebook that the module-level functions use."""
    return _DEFAULT


def cost(
    model: str,
    usage: object,
    provider: str | None = None,
    *,
    policy: Policy | None = None,
    at: datetime | None = None,
    batch: bool = False,
    service_tier: str | None = None,
    speed: str | None = None,
) -> Decimal:
    """The cost in USD of one call with the default pricebook; see ``Pricebook.cost``."""
    return _DEFAULT.cost(
        model,
        usage,
        provider,
        policy=policy,
        at=at,
        batch=batch,
        service_tier=service_tier,
        speed=speed,
    )


def price(
    model: str,
    provider: str | None = None,
    *,
    at: datetime | None = None,
    batch: bool = False,
    service_tier: str | None = None,
) -> Price:
    """The rates of a model with the default pricebook; see ``Pricebook.price``."""
    return _DEFAULT.price(model, provider, at=at, batch=batch, service_tier=service_tier)


def list_prices(provider: str | None = None, *, at: datetime | None = None) -> list[Price]:
    """Every priced model with the default pricebook; see ``Pricebook.list_prices``."""
    return _DEFAULT.list_prices(provider, at=at)
