"""Prices of models: ``genai-prices`` data, the user's overrides and aliases, and the
policy for models nobody has priced."""

from __future__ import annotations

import re
import threading
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from capledger.bounds import MAX_TTL_S
from capledger.errors import ConfigurationError, InvalidAmount, InvalidInput, UnknownModel
from capledger.money import AmountLike, from_units, to_units
from capledger.pricing import _genai
from capledger.pricing._usage import Usage, parse_usage

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

Policy: TypeAlias = Literal["raise", "warn"]
POLICIES: Final[tuple[Policy, ...]] = ("raise", "warn")

_TOKENS_PER_MTOK: Final = Decimal(1_000_000)
_OVERRIDE_KEYS: Final = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
}
_CACHE_WRITE_KEYS: Final = ("cache_write_mtok", "cache_write_5m_mtok", "cache_write_1h_mtok")
_OUTPUT_KEYS: Final = (
    "output_mtok",
    "output_text_mtok",
    "output_reasoning_mtok",
    "output_text_reasoning_mtok",
)
MODALITIES: Final = frozenset({"image", "audio", "video"})
#: The service tier a request names when it lets the provider choose (as sending none
#: does): the project's default tier may be any tier, so a hold takes the dearest one
#: genai-prices knows for the model.
PASSIVE_TIERS: Final = frozenset({"auto"})
#: Service tiers that mean the standard price: OpenAI's ``default`` ("the standard pricing
#: and performance for the selected model"), Anthropic's ``standard_only`` in a request and
#: ``standard`` in a response.
STANDARD_TIERS: Final = frozenset({"default", "standard", "standard_only"})
#: Per-call fees, as genai-prices names their price keys (per thousand calls).
TOOL_FEE_KEYS: Final = {
    "web_searches": "web_searches_kcount",
    "storage_searches": "storage_searches_kcount",
    "code_executions": "code_executions_kcount",
}
_PER_THOUSAND: Final = Decimal(1000)
#: How many worst cases a pricebook keeps before it starts afresh.
_MAX_KEPT_WORST_CASES: Final = 4096
#: Providers that always bill audio tokens at audio rates, far above the text rates: audio
#: on a model genai-prices has no audio rate for is refused, not priced as text.
AUDIO_PRICED_APART: Final = frozenset({"openai", "azure"})
#: Model names that say which provider serves them, for lookups that name no provider:
#: OpenAI fine-tunes and embeddings, Bedrock model ids (``anthropic.claude-...-v1:0``, with
#: an optional cross-region prefix such as ``us.`` or ``global.``) and Vertex AI's
#: ``claude-...@date`` ids (priced at Vertex's own rates, genai-prices' ``google``).
PROVIDER_BY_NAME: Final = (
    (re.compile(r"^ft:|^text-embedding-"), "openai"),
    (
        re.compile(
            r"^(?:(?:us|eu|apac|global|us-gov|jp|au|ca)\.)?"
            r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|qwen|openai|writer)\."
        ),
        "aws",
    ),
    (re.compile(r"^claude-[^@]*@"), "google"),
)
#: Fine-tuned model names: they are priced only at a fine-tuned rate, never the base's.
_FINE_TUNED: Final = re.compile(r"^ft:|\.ft-")
#: How many unknown model names ``unpriced_calls`` counts one by one; model names can come
#: from user input, so past this the calls are counted together under ``OTHER_UNPRICED``.
MAX_UNPRICED_MODELS: Final = 1_000
OTHER_UNPRICED: Final = "(other models)"


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
class _Override:
    name: str
    provider: str
    prices_per_mtok: Mapping[str, Decimal]
    origin: str
    as_of: date | None


@dataclass(frozen=True, slots=True)
class _Resolved:
    name: str
    provider: str
    alias_note: str
    override: _Override | None
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


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _context(*, batch: bool, service_tier: str | None) -> dict[str, str] | None:
    context: dict[str, str] = {}
    if batch:
        context["processing"] = "batch"
    if service_tier is not None:
        context["service_tier"] = service_tier
    return context or None


def _base_rate(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base: Decimal = getattr(value, "base")  # noqa: B009 - genai TieredPrices, untyped
    return base


def _highest_rate(value: object, input_tokens_bound: int) -> Decimal | None:
    """The highest rate a tiered price charges for a call of at most this many input tokens.

    genai-prices applies a tier when the call's input is strictly above its start.
    """
    if value is None or isinstance(value, Decimal):
        return value
    rates = [_base_rate(value)]
    rates.extend(tier.price for tier in getattr(value, "tiers") if input_tokens_bound > tier.start)  # noqa: B009
    return max(rate for rate in rates if rate is not None)


def _tier_rate(value: object, start: int) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    rate = _base_rate(value)
    for tier in getattr(value, "tiers"):  # noqa: B009
        if tier.start <= start:
            rate = tier.price
    return rate


def _max_of(rates: Iterable[Decimal | None]) -> Decimal | None:
    present = [rate for rate in rates if rate is not None]
    return max(present) if present else None


def _parse_rate(model: str, key: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise InvalidAmount(f"price {key} of {model!r} must be a number, not {value!r}")
    try:
        rate = Decimal(str(value).strip())  # via str, so a float 0.1 means exactly 0.1
    except InvalidOperation:
        raise InvalidAmount(f"price {key} of {model!r} is not a number: {value!r}") from None
    if not rate.is_finite() or rate < 0:
        raise InvalidAmount(f"price {key} of {model!r} must be finite and >= 0, got {value!r}")
    return rate


def _model_key(model: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput(f"a model name must be a non-empty string, not {model!r}")
    return model.strip().lower()


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
        self._policy = _check_policy(policy)
        self._lock = threading.Lock()
        self._overrides: dict[str, _Override] = {}
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
        self._policy = _check_policy(policy)

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
            _OVERRIDE_KEYS[key]: _parse_rate(model, key, value)
            for key, value in given.items()
            if value is not None
        }
        key = _model_key(model)
        override = _Override(model.strip(), provider, rates, origin, as_of)
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
        alias_key, target_key = _model_key(alias), _model_key(model)
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
        path = Path(path)
        try:
            with path.open("rb") as file:
                document = tomllib.load(file, parse_float=Decimal)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigurationError(f"cannot read prices from {path}: {error}") from None
        unknown = document.keys() - {"prices", "aliases"}
        if unknown:
            raise ConfigurationError(
                f'{path}: unknown tables {sorted(unknown)}; use [prices."MODEL"] and [aliases]'
            )
        try:
            for model, entry in _table(document, "prices", path).items():
                self._load_price(model, entry, path)
            for alias, target in _table(document, "aliases", path).items():
                if isinstance(target, str):
                    self.set_alias(alias, target)
                elif isinstance(target, dict) and isinstance(target.get("model"), str):
                    self.set_alias(alias, target["model"], provider=target.get("provider"))
                else:
                    raise ConfigurationError(
                        f"{path}: alias {alias!r} must name a model, as a string or "
                        "{ model = ..., provider = ... }"
                    )
        except InvalidInput as error:
            raise ConfigurationError(f"{path}: {error}") from None

    def _load_price(self, model: str, entry: object, path: Path) -> None:
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{path}: [prices.{model!r}] must be a table")
        allowed = {*_OVERRIDE_KEYS, "provider", "as_of"}
        if entry.keys() - allowed or not {"input", "output"} <= entry.keys():
            raise ConfigurationError(
                f"{path}: [prices.{model!r}] needs input and output and accepts only "
                f"{sorted(allowed)}"
            )
        as_of = entry.get("as_of")
        if as_of is not None and (not isinstance(as_of, date) or isinstance(as_of, datetime)):
            raise ConfigurationError(f"{path}: as_of of {model!r} must be a date (2026-01-01)")
        self.set_price(
            model,
            input=entry["input"],
            output=entry["output"],
            cache_read=entry.get("cache_read"),
            cache_write=entry.get("cache_write"),
            cache_write_1h=entry.get("cache_write_1h"),
            provider=str(entry.get("provider", "custom")),
            as_of=as_of,
            origin=f"from {path.name}",
        )

    def _resolve(self, model: str, provider: str | None) -> _Resolved | None:
        key = _model_key(model)
        with self._lock:
            alias = self._aliases.get(key)
            target, alias_provider = alias if alias else (model.strip(), None)
            override = self._overrides.get(_model_key(target))
        alias_note = f"alias {model.strip()} -> {target}; " if alias else ""
        if override is not None:
            return _Resolved(override.name, override.provider, alias_note, override, None)
        found = _genai.lookup(target, provider or alias_provider or _provider_from_name(target))
        if found is None:
            return None
        provider_info, model_info = found
        if _FINE_TUNED.search(target.lower()) and not _FINE_TUNED.search(model_info.id):
            # Fine-tuned inference costs more than the base model's: never price it as the
            # base. genai-prices carries fine-tuned rates for a few models (ft:gpt-4o...).
            return None
        return _Resolved(model_info.id, provider_info.id, alias_note, None, found)

    def _resolve_or_raise(self, model: str, provider: str | None) -> _Resolved:
        resolved = self._resolve(model, provider)
        if resolved is None:
            raise UnknownModel(_unknown_message(model, provider))
        return resolved

    def _source(self, resolved: _Resolved, at: datetime) -> PriceSource:
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

    def _model_price(
        self, resolved: _Resolved, at: datetime, context: dict[str, str] | None
    ) -> Any:
        if resolved.override is not None:
            return _genai.genai_model_price(**resolved.override.prices_per_mtok)
        provider_info, model_info = _package(resolved)
        return _genai.prices_at(provider_info, model_info, at, context)

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
            return self._unpriced(model, provider, _check_policy(policy or self._policy))
        if service_tier == "batch":
            batch, service_tier = True, None
        contexts = _tier_contexts(
            resolved, batch=batch, service_tier=service_tier, speed=speed, settled=True
        )
        genai_usage = _to_genai(parsed)
        totals: list[Decimal] = []
        for context in contexts:
            model_price = self._model_price(resolved, when, context)
            for direction, count in (
                ("input", parsed.input_audio_tokens),
                ("output", parsed.output_audio_tokens),
            ):
                if count and _audio_rate_missing(resolved, [model_price], direction):
                    raise UnknownModel(_no_audio_price(model, direction))
            try:
                totals.append(model_price.calc_price(genai_usage)["total_price"])
            except ValueError as error:
                raise InvalidInput(f"cannot price this usage for {model!r}: {error}") from None
        return round_up_usd(max(totals))

    def _unpriced(self, model: str, provider: str | None, policy: Policy) -> Decimal:
        message = _unknown_message(model, provider)
        if policy == "raise":
            raise UnknownModel(message)
        key = _model_key(model)
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
        context = _context(batch=batch, service_tier=service_tier)
        return self._price_view(resolved, when, context)

    def _price_view(
        self, resolved: _Resolved, at: datetime, context: dict[str, str] | None
    ) -> Price:
        model_price = self._model_price(resolved, at, context)
        values = {key: getattr(model_price, key, None) for key in _OVERRIDE_KEYS.values()}
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
            input_usd_per_mtok=_base_rate(values["input_mtok"]),
            output_usd_per_mtok=_base_rate(values["output_mtok"]),
            cache_read_usd_per_mtok=_base_rate(values["cache_read_mtok"]),
            cache_write_usd_per_mtok=_base_rate(values["cache_write_mtok"]),
            cache_write_1h_usd_per_mtok=_base_rate(values["cache_write_1h_mtok"]),
            tiers=tiers,
            context_window_tokens=context_window,
            source=self._source(resolved, at),
        )

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
                resolved = _Resolved(
                    model_info.id, provider_info.id, "", None, (provider_info, model_info)
                )
                listed.append(self._price_view(resolved, when, None))
        with self._lock:
            overrides = list(self._overrides.values())
        for override in overrides:
            if wanted is None or override.provider.lower() == wanted:
                resolved = _Resolved(override.name, override.provider, "", override, None)
                listed.append(self._price_view(resolved, when, None))
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
        key = (
            model,
            provider,
            input_tokens_bound,
            cache_writes,
            modalities,
            output_modalities,
            batch,
            service_tier,
            speed,
            require_output,
        )
        known = self._worst_cases.get(key)
        if known is not None and when.date() >= known[1]:
            return known[0]
        rates = self._worst_case_rates(when, *key)
        resolved = self._resolve_or_raise(model, provider)
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

    def _worst_case_rates(
        self,
        when: datetime,
        model: str,
        provider: str | None,
        input_tokens_bound: int,
        cache_writes: bool,
        modalities: frozenset[str],
        output_modalities: frozenset[str],
        batch: bool,
        service_tier: str | None,
        speed: str | None,
        require_output: bool,
    ) -> Rates:
        resolved = self._resolve_or_raise(model, provider)
        contexts = _tier_contexts(
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
                if (prices := self._model_price(resolved, instant, context)) is not None
            }.values()
        )
        for direction, asked in (("input", modalities), ("output", output_modalities)):
            if "audio" in asked and _audio_rate_missing(resolved, price_sets, direction):
                raise UnknownModel(_no_audio_price(model, direction))
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
            if (fee := _max_of(_base_rate(getattr(prices, key, None)) for prices in price_sets))
            is not None
        }
        return Rates(
            input_rate / _TOKENS_PER_MTOK,
            output_rate / _TOKENS_PER_MTOK,
            context_window,
            self._source(resolved, when),
            tool_fees,
        )


def _audio_rate_missing(resolved: _Resolved, price_sets: list[Any], direction: str) -> bool:
    if resolved.override is not None or resolved.provider not in AUDIO_PRICED_APART:
        return False
    return all(getattr(prices, f"{direction}_audio_mtok", None) is None for prices in price_sets)


def _no_audio_price(model: str, direction: str) -> str:
    return (
        f"no {direction} audio price is known for {model!r}, and its provider bills audio "
        "far above text; price it with Pricebook.set_price"
    )


def _provider_from_name(model: str) -> str | None:
    name = model.strip().lower()
    for pattern, provider in PROVIDER_BY_NAME:
        if pattern.search(name):
            return provider
    return None


def _tier_contexts(
    resolved: _Resolved,
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


def _package(resolved: _Resolved) -> tuple[Any, Any]:
    if resolved.package is None:
        raise UnknownModel(f"{resolved.name!r} has no package price")
    return resolved.package


def _table(document: Mapping[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [{name}] must be a table")
    return table


def _check_policy(policy: object) -> Policy:
    if policy == "raise":
        return "raise"
    if policy == "warn":
        return "warn"
    raise ConfigurationError(f"unknown-model policy must be one of {POLICIES}, not {policy!r}")


def _unknown_message(model: str, provider: str | None) -> str:
    where = f" from provider {provider!r}" if provider else ""
    fine_tuned = ""
    if _FINE_TUNED.search(model.strip().lower()):
        fine_tuned = (
            " (a fine-tune is priced at its own fine-tuned rate, never its base model's, "
            "and genai-prices has none for it)"
        )
    return (
        f"no price is known for model {model!r}{where}{fine_tuned}; price it with "
        "Pricebook.set_price or alias it to a known model with Pricebook.set_alias"
    )


def _to_genai(usage: Usage) -> Any:
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
