"""The reserve of a guarded LLM call, written once as a flow and driven by a sync or an async
driver.

A guarded call goes: estimate the worst case -> reserve it -> (when refused) apply the
policy, which may read balances and reserve again -> send -> settle. Everything but the
ledger round trips is pure, so the policy logic is a generator (``reserve_flow``) that
*yields* the I/O it needs (a ``ReserveStep`` or a ``BalanceStep``) and is sent the result,
as httpx's ``auth_flow`` is; the guarded call that contains it is driven by
``capledger._flow``'s ``run`` or ``arun`` (``_steps.Wire``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

from capledger import attribution
from capledger.errors import (
    BudgetExceeded,
    ConfigurationError,
    InvalidInput,
    LedgerError,
    UnknownModel,
)
from capledger.estimate import affordable_max_tokens, estimate
from capledger.integrations._calls import Endpoint, Prepared, Settings
from capledger.integrations._ledger_like import BalanceLike
from capledger.integrations._policy import MAX_DOWNGRADE_STEPS as _MAX_DOWNGRADE_STEPS
from capledger.integrations._policy import Clamp, Downgrade, ShortBudget
from capledger.integrations._steps import Wire, in_background
from capledger.scopes import parse_scopes

__all__ = [
    "BalanceStep",
    "Flow",
    "ReserveStep",
    "reserve_flow",
    "scopes_of",
    "unguarded_reserve",
]

_LOG = logging.getLogger("capledger.integrations")


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
