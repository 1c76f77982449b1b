"""One guarded call, sync or async: reserve (with the policy), send, settle.

The SDK method is whatever the proxy hands in; this module never imports an SDK.

A call is split in two steps so that a batch can hold every request before it sends any:
``hold`` (estimate, reserve with the policy, and cover any further worst case the caller
names, such as fallback models) and ``send`` (call the method, then settle, wrap the stream,
or close the hold on failure). ``call`` is the two in a row.

Money that may have been billed is never released: a call that fails after the request may
have reached the provider settles the whole hold (``failure_settles``); only a failure known
to happen before sending, or a rejection the provider does not bill, releases it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from capledger.errors import InvalidInput
from capledger.integrations._calls import (
    CALL_OPTIONS,
    settlement,
    usage_hidden,
    with_stream_usage,
)
from capledger.integrations._ledger_like import AsyncLedgerLike, LedgerLike, is_async_ledger
from capledger.integrations._plan import Flow, reserve_flow, unguarded_reserve
from capledger.integrations._routes import failure_releases, status_releases
from capledger.integrations._steps import Call, StepFlow, Wire, close
from capledger.integrations._streams import AsyncGuardedStream, GuardedStream

if TYPE_CHECKING:
    from capledger.integrations._calls import Endpoint, Prepared, Settings

__all__ = ["Cover", "Engine", "failure_settles", "split_options"]

_LOG = logging.getLogger("capledger.integrations")

#: A chain of causes longer than this is not walked further (a cycle, or a pathological one).
_MAX_CHAIN: Final = 16


def _is_timeout(error: BaseException) -> bool:
    # openai/anthropic APITimeoutError, httpx TimeoutException, litellm Timeout, TimeoutError:
    # the request may have run to completion at the provider, so it may have been billed.
    return isinstance(error, TimeoutError) or any(
        "Timeout" in cls.__name__ for cls in type(error).__mro__
    )


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what caused it, outermost first (``raise ... from``, else the context)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(link))
        yield link
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)


def _status(error: BaseException) -> int | None:
    """The HTTP status an SDK error carries (``status_code``, or its response's)."""
    for candidate in (
        getattr(error, "status_code", None),
        getattr(getattr(error, "response", None), "status_code", None),
    ):
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return candidate
    return None


def failure_settles(error: BaseException) -> bool:
    """Whether a call that raised ``error`` may have been billed, so its hold must be settled.

    False (release the hold) only when the failure is known to cost nothing:

    - the connection was never made (its root cause is a refused connection, a DNS failure,
      a connect or pool timeout): nothing was sent;
    - the provider answered with a status it does not bill (a 4xx rejection other than 408,
      or 429 / 503 / 529: ``status_releases``), and the SDK did not retry before it (an
      earlier attempt may have been billed).

    Everything else may have been billed and settles: timeouts, disconnects, an unreadable
    reply, a 5xx, an error LiteLLM raises for any of those (``APIConnectionError``), a
    cancelled task or an interrupt (not an ``Exception``), and anything unknown.
    """
    if not isinstance(error, Exception):
        return True  # CancelledError, KeyboardInterrupt: the request may be in flight
    links = list(_chain(error))
    if failure_releases(links[-1]):
        return False
    if any(_is_timeout(link) for link in links):
        return True
    if any(getattr(link, "num_retries", None) for link in links):
        return True  # LiteLLM retried: an earlier attempt may have been billed
    status = next((found for link in links if (found := _status(link)) is not None), None)
    return status is None or not status_releases(status)


def split_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take capledger's per-call options out of the SDK keyword arguments."""
    return {name: kwargs.pop(name) for name in CALL_OPTIONS if name in kwargs}


@dataclass(frozen=True, slots=True)
class Cover:
    """What a hold must at least be, beyond the estimate of the request's own model.

    A request LiteLLM may send to another model (a fallback, another deployment of a router
    group) can cost more than its own model's worst case: the hold is extended to this.
    """

    usd: Decimal
    tokens: int


def _shortfall(hold: Any, cover: Cover, settings: Settings) -> dict[str, Any]:
    """The ``hold.extend`` keyword arguments that bring ``hold`` up to ``cover`` (or {})."""
    amounts = hold.amounts
    missing: dict[str, Any] = {}
    if cover.usd > amounts.get("usd", 0):
        missing["usd"] = cover.usd - amounts.get("usd", 0)
    if settings.hold_tokens and cover.tokens > amounts.get("tokens", 0):
        missing["tokens"] = cover.tokens - amounts.get("tokens", 0)
    return missing


def _failure_plan(error: BaseException) -> dict[str, Any] | None:
    """How to close the hold of a call that raised ``error``: settle it whole, tagged with the
    error, unless the failure is known to cost nothing (``failure_settles``): release it."""
    return {"tags": {"error": type(error).__name__}} if failure_settles(error) else None


class Engine:
    """A ledger and the settings of one ``wrap``: runs guarded calls.

    Each call is one flow (``_hold``, ``_send``), driven by ``capledger._flow.run`` with a
    ``Ledger`` and by ``arun`` with an ``AsyncLedger``: with an async ledger the methods
    return an awaitable of what they say they return.
    """

    __slots__ = ("_wire", "is_async", "ledger", "settings")

    def __init__(self, ledger: LedgerLike | AsyncLedgerLike, settings: Settings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.is_async = is_async_ledger(ledger)
        self._wire = Wire(ledger)

    # --- decisions shared by both drivers ---------------------------------------------------

    def _flow(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> Flow:
        """The reserve flow of one call; capledger's options are taken out of ``kwargs``."""
        options = split_options(kwargs)
        return reserve_flow(self.settings, endpoint, kwargs, options)

    @staticmethod
    def _to_send(prepared: Prepared, endpoint: Endpoint) -> tuple[dict[str, Any], bool]:
        """The request to send, and whether it streams (a stream is asked for its usage)."""
        if prepared.request.get("stream"):
            return with_stream_usage(prepared.request, endpoint.shape), True
        return prepared.request, False

    @staticmethod
    def _hides_usage(prepared: Prepared, endpoint: Endpoint) -> bool:
        """Whether the usage chunk of a stream was asked for by capledger, not the caller."""
        return usage_hidden(prepared.request, endpoint.shape)

    def _settle_plan(
        self, prepared: Prepared, response: Any, cost: Callable[[Any], Decimal | None] | None
    ) -> dict[str, Any]:
        """The keyword arguments of ``hold.settle`` for a finished call (priced with
        ``cost(response)`` when it gives a figure)."""
        usage = getattr(response, "usage", None)
        if usage is None and isinstance(response, Mapping):
            usage = response.get("usage")
        try:
            done = settlement(
                self.settings,
                prepared,
                usage,
                service_tier=getattr(response, "service_tier", None),
                usd=cost(response) if cost else None,
            )
        except InvalidInput:
            # No readable usage: the worst case is the only figure known not to be short.
            _LOG.warning(
                "capledger: the response to %s carries no readable usage; settling the hold",
                prepared.request_id,
            )
            return {"tags": {"usage": "missing"}}
        return done.settle_options()

    def _missing(
        self, prepared: Prepared, hold: Any, cover: Callable[[Prepared], Cover | None] | None
    ) -> dict[str, Any]:
        """The ``hold.extend`` keyword arguments that bring a new hold up to what ``cover``
        asks for the request as prepared ({} when it asks for nothing more)."""
        needed = cover(prepared) if cover is not None else None
        return {} if needed is None else _shortfall(hold, needed, self.settings)

    def _stream(
        self, result: Any, hold: Any, prepared: Prepared, endpoint: Endpoint
    ) -> GuardedStream | AsyncGuardedStream:
        """``result``, a stream, wrapped to settle ``hold`` when it ends."""
        hide = self._hides_usage(prepared, endpoint)
        stream_class = AsyncGuardedStream if self.is_async else GuardedStream
        return stream_class(result, hold, prepared, self.settings, endpoint.shape, hide_usage=hide)

    # --- the flows -------------------------------------------------------------------------

    def _hold(
        self,
        endpoint: Endpoint,
        kwargs: dict[str, Any],
        cover: Callable[[Prepared], Cover | None] | None,
    ) -> StepFlow[tuple[Prepared, Any]]:
        prepared, hold = yield from self._flow(endpoint, kwargs)
        missing = self._missing(prepared, hold, cover)
        if missing:
            try:
                yield Call(hold.extend, kwargs=missing)
            except BaseException:
                yield Call(hold.release)
                raise
        return prepared, hold

    def _send(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        prepared: Prepared,
        hold: Any,
        cost: Callable[[Any], Decimal | None] | None,
    ) -> StepFlow[Any]:
        request, streaming = self._to_send(prepared, endpoint)
        try:
            result = yield Call(method, kwargs=request)
        except BaseException as error:
            yield from close(hold, _failure_plan(error), quiet=True)
            raise
        if streaming:
            stream = self._stream(result, hold, prepared, endpoint)
            yield Call(stream.start)  # an async stream's event loop knows it from here on
            return stream
        yield from close(hold, self._settle_plan(prepared, result, cost))
        return result

    def _call(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        kwargs: dict[str, Any],
        cost: Callable[[Any], Decimal | None] | None,
        cover: Callable[[Prepared], Cover | None] | None,
    ) -> StepFlow[Any]:
        prepared, hold = yield from self._hold(endpoint, kwargs, cover)
        return (yield from self._send(endpoint, method, prepared, hold, cost))

    def _journal(
        self,
        name: str,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> StepFlow[Any]:
        # capledger's options are taken out of ``kwargs`` before the call.
        scopes, reserve = unguarded_reserve(self.settings, split_options(kwargs), name)
        hold = yield Call(self.ledger.reserve, (scopes,), reserve)
        try:
            return (yield Call(function, args, kwargs))
        finally:
            # The call's own outcome matters more than the journal: a ledger error is logged.
            yield from close(hold, {"usd": 0}, quiet=True)

    # --- what the proxies call: each drives one flow with the ledger's driver ---------------

    def hold(
        self,
        endpoint: Endpoint,
        kwargs: dict[str, Any],
        *,
        cover: Callable[[Prepared], Cover | None] | None = None,
    ) -> Any:
        """Reserve the worst case of one call (the policy applied); nothing is sent.

        Returns ``(prepared, hold)`` (an awaitable of it with an ``AsyncLedger``).

        Args:
            endpoint: the API being called (its output limit key and pricing names).
            kwargs: the call's keyword arguments; capledger's options are taken out.
            cover: what the hold must at least be for the request the policy chose (other
                models LiteLLM may send it to); the hold is extended to it.

        Raises:
            BudgetExceeded: the policy could not make the call fit; nothing is held.
        """
        return self._wire.drive(self._hold(endpoint, kwargs, cover))

    def send(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        prepared: Prepared,
        hold: Any,
        *,
        cost: Callable[[Any], Decimal | None] | None = None,
    ) -> Any:
        """Call ``method(**request)`` for a held request, and settle (or wrap the stream in a
        ``GuardedStream`` / ``AsyncGuardedStream``); a call that raises closes the hold
        (``failure_settles``)."""
        return self._wire.drive(self._send(endpoint, method, prepared, hold, cost))

    def call(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        kwargs: dict[str, Any],
        *,
        cost: Callable[[Any], Decimal | None] | None = None,
        cover: Callable[[Prepared], Cover | None] | None = None,
    ) -> Any:
        """Reserve, call ``method(**request)``, and settle (or wrap the stream).

        Args:
            endpoint: the API being called (its output limit key and pricing names).
            method: the SDK's own method (a coroutine function with an ``AsyncLedger``).
            kwargs: the call's keyword arguments; capledger's options are taken out.
            cost: reads a provider-computed cost from a response (LiteLLM), or ``None``.
            cover: see ``hold``.
        """
        return self._wire.drive(self._call(endpoint, method, kwargs, cost, cover))

    def journal(
        self, name: str, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Call ``function``, which ``unguarded=`` lets through unheld, journaled as a zero
        hold tagged ``unguarded`` (an awaitable of its result with an ``AsyncLedger``)."""
        return self._wire.drive(self._journal(name, function, args, kwargs))
