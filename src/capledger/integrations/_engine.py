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
from typing import TYPE_CHECKING, Any, Final, TypeVar

from capledger.errors import InvalidInput
from capledger.integrations._plan import (
    CALL_OPTIONS,
    Endpoint,
    Flow,
    Prepared,
    Settings,
    aclose_quietly,
    adrive,
    close_quietly,
    drive,
    reserve_flow,
    settlement,
    unguarded_reserve,
    usage_hidden,
    with_stream_usage,
)
from capledger.integrations._steps import run_shielded
from capledger.integrations._streams import AsyncGuardedStream, GuardedStream
from capledger.integrations._transport import failure_releases, status_releases
from capledger.ledger import AsyncLedger

if TYPE_CHECKING:
    from capledger.ledger import Ledger

__all__ = ["Cover", "Engine", "failure_settles", "split_options"]

_LOG = logging.getLogger("capledger.integrations")

#: A chain of causes longer than this is not walked further (a cycle, or a pathological one).
_MAX_CHAIN: Final = 16
_S = TypeVar("_S", GuardedStream, AsyncGuardedStream)


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
    """A ledger and the settings of one ``wrap``: runs guarded calls."""

    __slots__ = ("is_async", "ledger", "settings")

    def __init__(self, ledger: Ledger | AsyncLedger, settings: Settings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.is_async = isinstance(ledger, AsyncLedger)

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
        self,
        stream_class: type[_S],
        result: Any,
        hold: Any,
        prepared: Prepared,
        endpoint: Endpoint,
    ) -> _S:
        """``result``, a stream, wrapped to settle ``hold`` when it ends."""
        hide = self._hides_usage(prepared, endpoint)
        return stream_class(result, hold, prepared, self.settings, endpoint.shape, hide_usage=hide)

    def unguarded_hold(
        self, name: str, kwargs: dict[str, Any]
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The scopes and ``reserve`` keyword arguments of the zero hold that journals an
        unguarded call to ``name``; capledger's options are taken out of ``kwargs``."""
        return unguarded_reserve(self.settings, split_options(kwargs), name)

    # --- synchronous ------------------------------------------------------------------------

    def hold(
        self,
        endpoint: Endpoint,
        kwargs: dict[str, Any],
        *,
        cover: Callable[[Prepared], Cover | None] | None = None,
    ) -> tuple[Prepared, Any]:
        """Reserve the worst case of one call (the policy applied); nothing is sent.

        Args:
            endpoint: the API being called (its output limit key and pricing names).
            kwargs: the call's keyword arguments; capledger's options are taken out.
            cover: what the hold must at least be for the request the policy chose (other
                models LiteLLM may send it to); the hold is extended to it.

        Raises:
            BudgetExceeded: the policy could not make the call fit; nothing is held.
        """
        ledger: Ledger = self.ledger  # type: ignore[assignment]
        prepared, hold = drive(self._flow(endpoint, kwargs), ledger)
        missing = self._missing(prepared, hold, cover)
        if missing:
            try:
                hold.extend(**missing)
            except BaseException:
                hold.release()
                raise
        return prepared, hold

    def send(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        prepared: Prepared,
        hold: Any,
        *,
        stream_class: type[GuardedStream] = GuardedStream,
        cost: Callable[[Any], Decimal | None] | None = None,
    ) -> Any:
        """Call ``method(**request)`` for a held request, and settle (or wrap the stream)."""
        request, streaming = self._to_send(prepared, endpoint)
        try:
            result = method(**request)
        except BaseException as error:
            self.fail(hold, error)
            raise
        if streaming:
            return self._stream(stream_class, result, hold, prepared, endpoint)
        hold.settle(**self._settle_plan(prepared, result, cost))
        return result

    def call(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        kwargs: dict[str, Any],
        *,
        stream_class: type[GuardedStream] = GuardedStream,
        cost: Callable[[Any], Decimal | None] | None = None,
        cover: Callable[[Prepared], Cover | None] | None = None,
    ) -> Any:
        """Reserve, call ``method(**request)``, and settle (or wrap the stream).

        Args:
            endpoint: the API being called (its output limit key and pricing names).
            method: the SDK's own method.
            kwargs: the call's keyword arguments; capledger's options are taken out.
            stream_class: what a streamed response is wrapped in.
            cost: reads a provider-computed cost from a response (LiteLLM), or ``None``.
            cover: see ``hold``.
        """
        prepared, hold = self.hold(endpoint, kwargs, cover=cover)
        return self.send(endpoint, method, prepared, hold, stream_class=stream_class, cost=cost)

    def fail(self, hold: Any, error: BaseException) -> None:
        """Close a sync hold whose call raised ``error`` before any output; never raises.

        The whole hold is settled unless the failure is known to cost nothing
        (``failure_settles``), when it is released.
        """
        close_quietly(hold, _failure_plan(error))

    # --- asynchronous -----------------------------------------------------------------------

    async def ahold(
        self,
        endpoint: Endpoint,
        kwargs: dict[str, Any],
        *,
        cover: Callable[[Prepared], Cover | None] | None = None,
    ) -> tuple[Prepared, Any]:
        """The async ``hold``."""
        ledger: AsyncLedger = self.ledger  # type: ignore[assignment]
        prepared, hold = await adrive(self._flow(endpoint, kwargs), ledger)
        missing = self._missing(prepared, hold, cover)
        if missing:
            try:
                await hold.extend(**missing)
            except BaseException:
                await hold.release()
                raise
        return prepared, hold

    async def asend(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        prepared: Prepared,
        hold: Any,
        *,
        stream_class: type[AsyncGuardedStream] = AsyncGuardedStream,
        cost: Callable[[Any], Decimal | None] | None = None,
    ) -> Any:
        """The async ``send``: ``method(**request)`` is awaited."""
        request, streaming = self._to_send(prepared, endpoint)
        try:
            result = await method(**request)
        except BaseException as error:
            await self.afail(hold, error)
            raise
        if streaming:
            stream = self._stream(stream_class, result, hold, prepared, endpoint)
            await stream.start()  # the event loop knows the stream from here on (_streams)
            return stream
        await run_shielded(hold.settle(**self._settle_plan(prepared, result, cost)))
        return result

    async def acall(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        kwargs: dict[str, Any],
        *,
        stream_class: type[AsyncGuardedStream] = AsyncGuardedStream,
        cost: Callable[[Any], Decimal | None] | None = None,
        cover: Callable[[Prepared], Cover | None] | None = None,
    ) -> Any:
        """The async ``call``: ``method(**request)`` is awaited; the arguments are ``call``'s."""
        prepared, hold = await self.ahold(endpoint, kwargs, cover=cover)
        return await self.asend(
            endpoint, method, prepared, hold, stream_class=stream_class, cost=cost
        )

    async def afail(self, hold: Any, error: BaseException) -> None:
        """Close an async hold whose call raised ``error``; see ``fail``."""
        await aclose_quietly(hold, _failure_plan(error))
