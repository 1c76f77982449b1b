"""The decisions of a guarded LLM call, written once and driven by a sync and an async driver.

A guarded call goes: estimate the worst case -> reserve it -> (when refused) apply the
policy, which may read balances and reserve again -> send -> settle. Everything but the
ledger round trips is pure, so the policy logic is a generator (``reserve_flow``) that
*yields* the I/O it needs (a ``ReserveStep`` or a ``BalanceStep``) and is sent the result,
as httpx's ``auth_flow`` is; ``drive`` and ``adrive`` are its two drivers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias, TypeVar

from capledger import attribution
from capledger.errors import (
    BudgetExceeded,
    ConfigurationError,
    InvalidInput,
    LedgerError,
    UnknownModel,
)
from capledger.estimate import Estimate, affordable_max_tokens, estimate
from capledger.integrations._ledger_like import BalanceLike
from capledger.integrations._policy import MAX_DOWNGRADE_STEPS as _MAX_DOWNGRADE_STEPS
from capledger.integrations._policy import Clamp, Downgrade, Policy, ShortBudget
from capledger.integrations._steps import Wire, in_background, run_shielded
from capledger.pricing import Pricebook, Usage, default_pricebook, parse_usage
from capledger.scopes import parse_scopes

__all__ = [
    "CALL_OPTIONS",
    "BalanceStep",
    "Endpoint",
    "Flow",
    "Prepared",
    "ReserveStep",
    "Settings",
    "aclose",
    "aclose_quietly",
    "close_quietly",
    "reserve_flow",
    "scopes_of",
    "settlement",
    "unguarded_reserve",
    "usage_hidden",
    "with_stream_usage",
]

_LOG = logging.getLogger("capledger.integrations")
_T = TypeVar("_T")

Shape: TypeAlias = Literal["chat", "responses", "anthropic", "embeddings", "completions"]
IncompletePolicy: TypeAlias = Literal["observed", "held"]

#: Per-call keyword arguments the wrappers take out of the request before it is sent.
CALL_OPTIONS: Final = ("capledger_scopes", "capledger_tags", "capledger_request_id")


#: Shapes whose streams report their usage only when asked (``stream_options``).
USAGE_ON_REQUEST: Final = frozenset({"chat", "completions"})


def with_stream_usage(request: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
    """The request, asked for its usage if it is a stream that reports it only when asked:
    without the provider's usage, a stream settles its whole hold."""
    body = dict(request)
    if body.get("stream") and shape in USAGE_ON_REQUEST:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    return body


def usage_hidden(request: Mapping[str, Any], shape: Shape) -> bool:
    """Whether a stream's usage chunk is there because capledger asked for it, not the
    caller: it is then hidden, so the caller's ``chunk.choices[0]`` keeps working."""
    if not request.get("stream") or shape not in USAGE_ON_REQUEST:
        return False
    options = request.get("stream_options")
    return not (isinstance(options, Mapping) and options.get("include_usage"))


def _same_model(model: str) -> tuple[str, str | None]:
    return model, None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one API keeps its output limit, and how its model names map to prices.

    Args:
        shape: the request shape the estimate module reads.
        limit_keys: the keys that bound the output; the first is set when none is given.
        price_name: the (model, provider) to price a request's model name as (LiteLLM's
            ``provider/model`` names); the provider of ``wrap(provider=...)`` wins.
        sets_limit: a request without an output limit is given ``default_max_tokens``
            (False where the API's own default is small and documented, or there is no
            output).
    """

    shape: Shape
    limit_keys: tuple[str, ...]
    price_name: Callable[[str], tuple[str, str | None]] = _same_model
    sets_limit: bool = True


CHAT: Final = Endpoint("chat", ("max_completion_tokens", "max_tokens"))
# LiteLLM maps ``max_tokens`` onto every provider; ``max_completion_tokens`` on fewer.
LITELLM_CHAT: Final = Endpoint("chat", ("max_tokens", "max_completion_tokens"))
RESPONSES: Final = Endpoint("responses", ("max_output_tokens",))
MESSAGES: Final = Endpoint("anthropic", ("max_tokens",))
EMBEDDINGS: Final = Endpoint("embeddings", (), sets_limit=False)
# The legacy Completions API writes at most 16 tokens when no max_tokens is given.
COMPLETIONS: Final = Endpoint("completions", ("max_tokens",), sets_limit=False)


@dataclass(frozen=True, slots=True)
class Settings:
    """What ``wrap`` was told, checked once.

    Args:
        scopes: charged on every call, beside the ambient attribution.
        policy: what to do when the worst case does not fit (see ``_policy``).
        ttl_s: the hold's lifetime; a call (a stream) must settle before it passes.
        tags: journaled with every call.
        provider: the genai-prices provider id, or ``None`` to infer it from the model.
        pricebook: where prices come from (the default pricebook if ``None``).
        default_max_tokens: the output limit given to a request that sets none; ``None``
            makes such a request an error.
        hold_tokens, hold_requests: also hold tokens (input bound + output limit) and one
            request, so token and request caps are enforced too.
        settle_incomplete: what a stream that ended without the provider's usage settles:
            ``held`` (the whole worst case) or ``observed`` (the input bound plus the output
            received; unsafe for reasoning models, whose hidden tokens are not seen).
        unguarded: endpoints (``images/generations``) or functions let through unheld,
            journaled as unguarded.
        client_provider: the provider of the SDK client (``openai``, ``anthropic``), for a
            model name that does not say it; ``None`` for LiteLLM.
    """

    scopes: tuple[str, ...]
    policy: Policy
    ttl_s: float
    tags: Mapping[str, object]
    provider: str | None
    pricebook: Pricebook | None
    default_max_tokens: int | None
    hold_tokens: bool
    hold_requests: bool
    settle_incomplete: IncompletePolicy
    unguarded: frozenset[str] = frozenset()
    client_provider: str | None = None


@dataclass(slots=True)
class Prepared:
    """A request that has a hold: what to send and how to price it.

    ``model`` is the request's model name; ``price_model`` and ``price_provider`` are what
    it is priced as (they differ for LiteLLM's ``provider/model`` names).
    """

    request: dict[str, Any]
    model: str
    price_model: str
    price_provider: str | None
    estimate: Estimate
    output_limit: int
    request_id: str
    tags: dict[str, object]


@dataclass(frozen=True, slots=True)
class ReserveStep:
    """Ask the driver to place a hold."""

    scopes: tuple[str, ...]
    usd: Decimal
    tokens: int | None
    requests: int | None
    request_id: str
    ttl_s: float
    tags: Mapping[str, object]

    def reserve_options(self) -> dict[str, Any]:
        """The keyword arguments of ``Ledger.reserve`` / ``AsyncLedger.reserve``."""
        return {
            "usd": self.usd,
            "tokens": self.tokens,
            "requests": self.requests,
            "request_id": self.request_id,
            "ttl": self.ttl_s,
            "tags": self.tags,
        }

    def run(self, wire: Wire) -> Any:
        """Place the hold."""
        return wire.ledger.reserve(self.scopes, **self.reserve_options())

    async def arun(self, wire: Wire) -> Any:
        """Place the hold (an ``AsyncLedger``).

        A caller cancelled while the hold is being placed never sends its request: the
        hold, placed all the same by the ledger's batch, is released as soon as it exists
        instead of locking budget until it expires.
        """
        placing = in_background(wire.ledger.reserve(self.scopes, **self.reserve_options()))
        try:
            return await asyncio.shield(placing)
        except asyncio.CancelledError:
            placing.add_done_callback(_release_unsent)
            raise


def close_quietly(hold: Any, plan: dict[str, Any] | None) -> None:
    """Settle a hold at ``plan`` (release it for ``None``), logging a ledger error instead of
    raising it: the caller's own error matters more."""
    try:
        if plan is None:
            hold.release()
        else:
            hold.settle(**plan)
    except LedgerError:  # the caller's own error matters more; ours goes to the log
        _LOG.exception("capledger could not close hold %s", hold.id)


async def aclose(hold: Any, plan: dict[str, Any] | None) -> None:
    """Settle (or, for ``None``, release) an async hold, even if the caller is cancelled:
    the SDKs cancel a stream's cleanup after a short deadline (``run_shielded``)."""
    await run_shielded(hold.release() if plan is None else hold.settle(**plan))


async def aclose_quietly(hold: Any, plan: dict[str, Any] | None) -> None:
    """``close_quietly`` for an ``AsyncHold``, shielded as ``aclose`` is."""
    try:
        await aclose(hold, plan)
    except LedgerError:
        _LOG.exception("capledger could not close hold %s", hold.id)


def _release_unsent(placing: asyncio.Future[Any]) -> None:
    if placing.cancelled() or placing.exception() is not None:
        return  # nothing was placed
    in_background(_release_quietly(placing.result()))


async def _release_quietly(hold: Any) -> None:
    try:
        await hold.release()
    except LedgerError:  # it expires instead; the caller is gone, so the log is told
        _LOG.warning("capledger could not release unsent hold %s", hold.id, exc_info=True)


@dataclass(frozen=True, slots=True)
class BalanceStep:
    """Ask the driver for the balances of these scopes."""

    scopes: tuple[str, ...]

    def run(self, wire: Wire) -> list[list[BalanceLike]]:
        """Read the balances."""
        return [wire.ledger.balance(scope) for scope in self.scopes]

    async def arun(self, wire: Wire) -> list[list[BalanceLike]]:
        """Read the balances (an ``AsyncLedger``)."""
        return [await wire.ledger.balance(scope) for scope in self.scopes]


Step: TypeAlias = ReserveStep | BalanceStep
Flow: TypeAlias = Generator[Step, Any, "tuple[Prepared, Any]"]


def scopes_of(settings: Settings, extra: object) -> tuple[str, ...]:
    """The scopes a call is charged to: ``wrap``'s, the attribution's and the call's own.

    Raises:
        ConfigurationError: none at all. InvalidScope: a malformed one.
    """
    given: list[str] = [*settings.scopes, *attribution.current_scopes()]
    if extra is not None:
        given.extend([extra] if isinstance(extra, str) else list(extra))  # type: ignore[call-overload]
    if not given:
        raise ConfigurationError(
            "this call is charged to no scope: pass scopes= to wrap()/guard(), give the call "
            "its own (extra_headers=call_options(scopes=...) on an SDK client, "
            "capledger_scopes= on LiteLLM), or open a capledger.attribute(...) block"
        )
    return parse_scopes(given)


def unguarded_reserve(
    settings: Settings, options: Mapping[str, Any], name: str
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The scopes and ``reserve`` keyword arguments of the $0 hold that journals a call to
    ``name`` that ``unguarded=`` lets through unheld, with the call's own options."""
    scopes = scopes_of(settings, options.get("capledger_scopes"))
    tags = {**settings.tags, **(options.get("capledger_tags") or {}), "unguarded": name}
    reserve: dict[str, Any] = {"usd": Decimal(0), "ttl": settings.ttl_s, "tags": tags}
    if options.get("capledger_request_id") is not None:
        reserve["request_id"] = options["capledger_request_id"]
    return scopes, reserve


def _request_id_of(given: object) -> str:
    if given is None:
        return "cl-" + uuid.uuid4().hex
    if not isinstance(given, str):
        raise InvalidInput(f"capledger_request_id must be a string, not {given!r}")
    return given


def _with_limit(request: Mapping[str, Any], endpoint: Endpoint, limit: int) -> dict[str, Any]:
    """The request with its output limit lowered to ``limit`` (set if none was given)."""
    lowered = dict(request)
    present = [key for key in endpoint.limit_keys if request.get(key) is not None]
    for key in present or endpoint.limit_keys[:1]:
        current = request.get(key)
        lowered[key] = limit if current is None else min(int(current), limit)
    return lowered


def _reserve_step(settings: Settings, prepared: Prepared, scopes: tuple[str, ...]) -> ReserveStep:
    est = prepared.estimate
    tokens = (est.input_tokens_bound + est.output_tokens_bound + est.extra_output_tokens) * (
        est.choices
    )
    return ReserveStep(
        scopes=scopes,
        usd=est.worst_case_usd,
        tokens=tokens if settings.hold_tokens else None,
        requests=1 if settings.hold_requests else None,
        request_id=prepared.request_id,
        ttl_s=settings.ttl_s,
        tags=prepared.tags,
    )


def _prepare(
    settings: Settings,
    endpoint: Endpoint,
    request: dict[str, Any],
    request_id: str,
    tags: Mapping[str, object],
) -> Prepared:
    model = request.get("model")
    if not isinstance(model, str):
        raise InvalidInput(f"the request needs a model name, not {model!r}")
    price_model, provider = endpoint.price_name(model)
    provider = settings.provider or provider
    try:
        est = estimate(
            price_model, request, provider, shape=endpoint.shape, pricebook=settings.pricebook
        )
    except UnknownModel:
        # A name that matches no provider on its own (``text-embedding-3-small``) is the
        # client's own provider's: an OpenAI client is priced at OpenAI.
        if provider is not None or settings.client_provider is None:
            raise
        provider = settings.client_provider
        est = estimate(
            price_model, request, provider, shape=endpoint.shape, pricebook=settings.pricebook
        )
    return Prepared(
        request=request,
        model=model,
        price_model=price_model,
        price_provider=est.provider,  # the provider the hold was priced at: the settle too
        estimate=est,
        output_limit=est.output_tokens_bound,
        request_id=request_id,
        tags={**tags, "model": model, "provider": est.provider},
    )


def _smallest(balances: Sequence[Sequence[BalanceLike]], unit: str) -> Decimal | int | None:
    figures = [b.available for scope in balances for b in scope if b.unit == unit]
    capped = [figure for figure in figures if figure is not None]
    return min(capped) if capped else None


def _clamped(
    settings: Settings,
    endpoint: Endpoint,
    prepared: Prepared,
    balances: Sequence[Sequence[BalanceLike]],
    clamp: Clamp,
) -> dict[str, Any] | None:
    """The request with the largest output limit every scope can pay for, or None."""
    if settings.hold_requests:
        requests_left = _smallest(balances, "requests")
        if requests_left is not None and requests_left < 1:
            return None  # no output limit makes a request cap pay
    est = prepared.estimate
    limit = prepared.output_limit
    usd_left = _smallest(balances, "usd")
    if usd_left is not None:
        limit = min(
            limit,
            affordable_max_tokens(
                prepared.price_model,
                prepared.request,
                usd_left,
                prepared.price_provider,
                shape=endpoint.shape,
                pricebook=settings.pricebook,
            ),
        )
    tokens_left = _smallest(balances, "tokens") if settings.hold_tokens else None
    if tokens_left is not None:
        limit = min(limit, int(tokens_left) // est.choices - est.input_tokens_bound)
    # Below Anthropic's thinking budget the provider refuses the request: refuse it here.
    if limit < max(clamp.floor, est.min_output_tokens):
        return None
    return _with_limit(prepared.request, endpoint, limit)


def _clamp_flow(
    settings: Settings,
    endpoint: Endpoint,
    prepared: Prepared,
    scopes: tuple[str, ...],
    clamp: Clamp,
    refusal: BudgetExceeded,
) -> Flow:
    for _attempt in range(clamp.attempts):
        balances = yield BalanceStep(scopes)
        request = _clamped(settings, endpoint, prepared, balances, clamp)
        if request is None:
            raise refusal
        prepared = _prepare(settings, endpoint, request, prepared.request_id, prepared.tags)
        try:
            hold = yield _reserve_step(settings, prepared, scopes)
        except BudgetExceeded as error:
            refusal = error  # another call took the budget since the read: read again
            continue
        return prepared, hold
    raise refusal


def reserve_flow(
    settings: Settings, endpoint: Endpoint, request: Mapping[str, Any], options: Mapping[str, Any]
) -> Flow:
    """Reserve the worst case of ``request``, applying the policy when it does not fit.

    Yields ``ReserveStep`` / ``BalanceStep``; is sent the hold / balances, or thrown the
    ``BudgetExceeded`` of a refused reserve. Returns ``(prepared, hold)``. At most
    ``1 + MAX_DOWNGRADE_STEPS + MAX_CLAMP_ATTEMPTS`` reserves are tried.

    Args:
        settings: what ``wrap`` was told.
        endpoint: where the API keeps its output limit and how its models are priced.
        request: the SDK keyword arguments, capledger's options already taken out.
        options: capledger's per-call options (``CALL_OPTIONS``).

    Raises:
        BudgetExceeded: the policy could not make the call fit (nothing is held).
        ConfigurationError: the call has no scope.
        InvalidInput, UnknownModel: the request cannot be estimated.
    """
    scopes = scopes_of(settings, options.get("capledger_scopes"))
    tags: dict[str, object] = {**attribution.current_tags(), **settings.tags}
    extra_tags = options.get("capledger_tags")
    if extra_tags:
        tags.update(extra_tags)
    body = dict(request)
    if (
        endpoint.sets_limit
        and settings.default_max_tokens is not None
        and all(body.get(key) is None for key in endpoint.limit_keys)
    ):
        # G2 needs the provider to enforce an output limit: give the request one.
        body[endpoint.limit_keys[0]] = settings.default_max_tokens
    request_id = _request_id_of(options.get("capledger_request_id"))
    prepared = _prepare(settings, endpoint, body, request_id, tags)
    try:
        hold = yield _reserve_step(settings, prepared, scopes)
        return prepared, hold
    except BudgetExceeded as error:
        refusal = error
    policy = settings.policy
    if policy == "raise":
        raise refusal
    if isinstance(policy, Clamp):
        return (yield from _clamp_flow(settings, endpoint, prepared, scopes, policy, refusal))
    if isinstance(policy, Downgrade):
        tried = {prepared.model}
        for _step in range(_MAX_DOWNGRADE_STEPS):
            cheaper = policy.models.get(prepared.model)
            if cheaper is None or cheaper in tried:
                break
            tried.add(cheaper)
            prepared = _prepare(
                settings, endpoint, {**prepared.request, "model": cheaper}, request_id, tags
            )
            try:
                hold = yield _reserve_step(settings, prepared, scopes)
                return prepared, hold
            except BudgetExceeded as error:
                refusal = error
        if policy.then == "clamp":
            return (
                yield from _clamp_flow(settings, endpoint, prepared, scopes, policy.clamp, refusal)
            )
        raise refusal
    replacement = policy(
        ShortBudget(
            model=prepared.model,
            request=dict(prepared.request),
            worst_case_usd=prepared.estimate.worst_case_usd,
            error=refusal,
        )
    )
    if replacement is None:
        raise refusal
    prepared = _prepare(settings, endpoint, dict(replacement), request_id, tags)
    hold = yield _reserve_step(settings, prepared, scopes)
    return prepared, hold


@dataclass(frozen=True, slots=True)
class Settlement:
    """The amounts and tags a finished call settles at."""

    usd: Decimal
    tokens: int | None
    requests: int | None
    tags: dict[str, object]

    def settle_options(self) -> dict[str, Any]:
        """The keyword arguments of ``hold.settle`` that settle at this."""
        return {
            "usd": self.usd,
            "tokens": self.tokens,
            "requests": self.requests,
            "tags": self.tags,
        }


def usage_tags(usage: Usage) -> dict[str, object]:
    """The token counts journaled with a settled call."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def settlement(
    settings: Settings,
    prepared: Prepared,
    usage_report: object,
    *,
    service_tier: object = None,
    speed: object = None,
    usd: Decimal | None = None,
) -> Settlement:
    """What a call whose provider reported ``usage_report`` settles at.

    The cost is ``capledger.pricing`` of the parsed usage (cached and reasoning tokens
    included), unless ``usd`` is given (LiteLLM's own figure).

    Args:
        settings: decides whether tokens and a request are settled beside the USD.
        prepared: the request as sent, with the model and provider it is priced as.
        usage_report: the provider's usage (or the response carrying it).
        service_tier: the tier the provider says it billed.
        speed: the speed the provider says it ran at (Anthropic's ``fast`` mode).
        usd: a cost already known, used instead of pricing the usage.

    Raises:
        InvalidInput: the usage is malformed. UnknownModel: the model has no price.
    """
    usage = parse_usage(usage_report)
    if usd is None:
        book = settings.pricebook or default_pricebook()
        # The tier the provider says it billed, as it says it: the pricebook knows which
        # names mean standard, and prices one it does not know at the dearest tier.
        tier = service_tier if isinstance(service_tier, str) else None
        usd = book.cost(
            prepared.price_model,
            usage,
            prepared.price_provider,
            service_tier=tier,
            speed=speed if isinstance(speed, str) else None,
        )
    return Settlement(
        usd=usd,
        tokens=usage.input_tokens + usage.output_tokens if settings.hold_tokens else None,
        requests=1 if settings.hold_requests else None,
        tags=usage_tags(usage),
    )
