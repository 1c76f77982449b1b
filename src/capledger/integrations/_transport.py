"""The guard at the wire: an httpx transport that holds every billable request before it leaves.

``wrap()`` gives an OpenAI or Anthropic SDK client a copy of its HTTP client whose transport is
a ``GuardTransport`` / ``AsyncGuardTransport``. Whatever SDK method, helper, raw-response
variant, ``beta`` namespace, middleware or retry produced a request, it arrives here as bytes:

1. ``route`` classifies it by method and path: **priced** (Chat Completions, Responses,
   Embeddings, legacy Completions, Anthropic Messages) is held and settled; **free** (reads,
   deletions, token counting, moderation, uploads) passes; anything else is refused with
   ``UnguardedRequest`` before it is sent, unless ``wrap(unguarded=[...])`` names it (then it
   passes unheld and is journaled as such).
2. A priced request's JSON body, as the SDK serialised it (``extra_body`` merged, schemas
   converted), is estimated, held and clamped by ``reserve_flow``; the body sent is the one
   the policy chose.
3. The provider's own usage settles the hold: from the JSON reply, or from the SSE events as
   they pass (``_sse``).

Money that may have been billed is never released. Once a request may have reached the
provider, every failure (timeouts, disconnects, an unreadable reply, a cancelled task, a 5xx)
settles the whole hold; only a failure known to happen before sending (connection refused,
DNS, a pool timeout) or a reply the provider does not bill (4xx, 429, 503, 529) releases it.
Each SDK retry is its own request here, so it is its own hold. A stream that ends without the
provider's usage settles the whole hold, unless ``settle_incomplete="observed"``.

Everything that decides is pure (``Exchange``, ``_sse.EventStream``, ``_routes``); the two
transports only do the I/O, one with ``await``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from capledger.errors import InvalidInput, LedgerError
from capledger.integrations._calls import (
    Endpoint,
    Prepared,
    Settings,
    settlement,
    usage_hidden,
    with_stream_usage,
)
from capledger.integrations._plan import Flow, reserve_flow, unguarded_reserve
from capledger.integrations._routes import (
    OWN_HEADERS,
    Family,
    Route,
    call_options,
    classify,
    failure_releases,
    options_of,
    read_headers,
    refusal,
    route,
    status_releases,
    stripped,
)
from capledger.integrations._sse import AsyncBody, EventStream, SyncBody, body_class
from capledger.integrations._steps import Wire, close

if TYPE_CHECKING:
    from capledger.integrations._ledger_like import AsyncLedgerLike, LedgerLike

__all__ = [
    "AsyncGuardTransport",
    "Exchange",
    "GuardTransport",
    "call_options",
    "classify",
    "route",
]

_LOG = logging.getLogger("capledger.integrations")


@dataclass(slots=True)
class Exchange:
    """One priced request: what was held, what to send, how to settle."""

    settings: Settings
    endpoint: Endpoint
    family: Family
    label: str
    #: The caller asked for a chat stream's usage chunk itself (else it is hidden).
    caller_wants_usage: bool = True
    prepared: Prepared | None = None
    #: The body the SDK sent, as parsed.
    original: dict[str, Any] = field(default_factory=dict)

    def outgoing(self, request: Any) -> Any:
        """The request to send: the SDK's own when the policy left its body as it was
        (no copy to build), else one carrying the body the policy chose."""
        body = self.body_to_send()
        if body == self.original:
            return stripped(request)
        return _outgoing(request, body)

    def body_to_send(self) -> dict[str, Any]:
        """The request body the policy chose, asked for its usage when it streams."""
        assert self.prepared is not None
        return with_stream_usage(self.prepared.request, self.endpoint.shape)

    def settle_reply(self, status: int, content: bytes) -> dict[str, Any] | None:
        """``hold.settle`` keyword arguments for a whole reply; ``None`` releases the hold."""
        if status >= 400:
            if status_releases(status):
                return None
            return {"tags": {"status": status}}
        try:
            reply = json.loads(content)
        except ValueError:
            _LOG.warning("capledger: an unreadable reply to %s settles its hold", self.label)
            return {"tags": {"usage": "unreadable"}}
        if not isinstance(reply, dict) or reply.get("usage") is None:
            return {"tags": {"usage": "missing"}}
        return self.settle_usage(self.usage_report(reply), *_reply_billing(reply, self.family))

    def usage_report(self, reply: dict[str, Any]) -> object:
        """What to price: a Responses reply whole (its tool calls carry fees), else its usage."""
        return reply if self.endpoint.shape == "responses" else reply.get("usage")

    def settle_usage(self, usage: object, tier: object, speed: object = None) -> dict[str, Any]:
        assert self.prepared is not None
        if usage is None:
            return {"tags": {"usage": "missing"}}
        try:
            done = settlement(self.settings, self.prepared, usage, service_tier=tier, speed=speed)
        except (InvalidInput, LedgerError):
            _LOG.warning(
                "capledger: unreadable usage in a reply to %s; settling the hold", self.label
            )
            return {"tags": {"usage": "unreadable"}}
        return done.settle_options()

    def stream(self) -> EventStream:
        """The reader of this exchange's SSE reply."""
        return EventStream(self)


def _reply_billing(reply: dict[str, Any], family: Family) -> tuple[object, object]:
    """The service tier and speed a reply says it was billed at."""
    if family == "anthropic":
        usage = reply.get("usage")
        if not isinstance(usage, dict):
            return None, None
        return usage.get("service_tier"), usage.get("speed")
    return reply.get("service_tier"), None


def _http_module(request: Any) -> ModuleType:
    """``httpx`` or ``httpx2``: the module the SDK's request objects come from."""
    return sys.modules[type(request).__module__.partition(".")[0]]


def _outgoing(request: Any, body: Mapping[str, Any]) -> Any:
    """A copy of ``request`` with ``body`` as its JSON and capledger's headers removed."""
    http = _http_module(request)
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = [
        (name, value)
        for name, value in request.headers.multi_items()
        if name.lower() not in OWN_HEADERS and name.lower() != "content-length"
    ]
    return http.Request(
        request.method, request.url, headers=headers, content=content, extensions=request.extensions
    )


def _reply_headers(response: Any) -> list[tuple[str, str]]:
    """The reply's headers for decoded content (no encoding, length recomputed)."""
    dropped = ("content-encoding", "content-length", "transfer-encoding")
    return [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in dropped
    ]


def _is_stream(response: Any) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "")


class _WireGuard:
    """What both transports share: the settings and the per-request decisions.

    ``sdk_error`` is the SDK's own error base class when the SDK turns any other exception
    from its HTTP client into a retried connection error (Anthropic's does): capledger's
    refusals are then raised as subclasses of it too, so they reach the caller as
    themselves, at once, instead of being retried.
    """

    def __init__(
        self, settings: Settings, family: Family, sdk_error: type[Exception] | None = None
    ) -> None:
        self.settings = settings
        self.family = family
        self.sdk_error = sdk_error

    def surfaced(self, error: LedgerError) -> LedgerError:
        """``error``, made to pass through the SDK unchanged (see the class docstring)."""
        if self.sdk_error is not None and not isinstance(error, self.sdk_error):
            error.__class__ = _passing_class(type(error), self.sdk_error)
        return error

    def open(self, request: Any) -> tuple[Route, Exchange | None, Flow | None]:
        """Route ``request``; for a priced one, the exchange and its reserve flow.

        Raises:
            UnguardedRequest: refused, and not named in ``unguarded``.
            InvalidInput: a priced request whose body is not a JSON object.
        """
        found = route(request.method, request.url.path, self.family)
        if found.kind == "refused":
            if found.label.partition(" ")[2] in self.settings.unguarded:
                return found, None, None
            raise refusal(found.label)
        if found.kind == "free" or found.endpoint is None:
            return found, None, None
        try:
            body = json.loads(request.read() or b"null")
        except ValueError:
            raise InvalidInput(f"the body of {found.label} is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput(f"the body of {found.label} must be a JSON object")
        options = options_of(read_headers(request))
        exchange = Exchange(
            self.settings,
            found.endpoint,
            self.family,
            found.label,
            caller_wants_usage=not usage_hidden(body, found.endpoint.shape),
            original=body,
        )
        return found, exchange, reserve_flow(self.settings, found.endpoint, body, options)

    def unguarded_hold(self, request: Any, label: str) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The scopes and ``reserve`` keyword arguments of the zero hold that journals an
        unguarded call."""
        return unguarded_reserve(self.settings, options_of(read_headers(request)), label)


_PASSING: dict[tuple[type[LedgerError], type[Exception]], type[LedgerError]] = {}


def _passing_class(cls: type[LedgerError], sdk_error: type[Exception]) -> type[LedgerError]:
    """``cls`` that is also an ``sdk_error``: same name, same fields, pickled as ``cls``."""
    known = _PASSING.get((cls, sdk_error))
    if known is not None:
        return known

    def __reduce__(self: LedgerError) -> tuple[object, ...]:
        rebuild, arguments, *state = cls.__reduce__(self)
        return (rebuild, (cls, *arguments[1:]), *state)  # type: ignore[index]

    namespace: dict[str, object] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__reduce__": __reduce__,
    }
    made = _PASSING[cls, sdk_error] = type(cls.__name__, (cls, sdk_error), namespace)
    return made


def _failure_plan(error: BaseException) -> dict[str, Any] | None:
    if failure_releases(error):
        return None
    return {"tags": {"error": type(error).__name__}}


# --- the steps of an exchange: each does its I/O one way or the other ----------------------


@dataclass(frozen=True, slots=True)
class _Send:
    """Send a request through the transport the SDK client had."""

    request: Any

    def run(self, wire: Wire) -> Any:
        return wire.inner.handle_request(self.request)

    async def arun(self, wire: Wire) -> Any:
        return await wire.inner.handle_async_request(self.request)


@dataclass(frozen=True, slots=True)
class _Read:
    """Read a whole reply, then close it."""

    response: Any

    def run(self, wire: Wire) -> bytes:
        try:
            return self.response.read()  # type: ignore[no-any-return]
        finally:
            self.response.close()

    async def arun(self, wire: Wire) -> bytes:
        try:
            return await self.response.aread()  # type: ignore[no-any-return]
        finally:
            await self.response.aclose()


@dataclass(frozen=True, slots=True)
class _Reserve:
    """Place a hold of these ``reserve`` arguments (the zero hold of an unguarded call)."""

    scopes: tuple[str, ...]
    options: dict[str, Any]

    def run(self, wire: Wire) -> Any:
        return wire.ledger.reserve(self.scopes, **self.options)

    async def arun(self, wire: Wire) -> Any:
        return await wire.ledger.reserve(self.scopes, **self.options)


@dataclass(frozen=True, slots=True)
class _Stream:
    """Hand back an SSE reply whose body settles the hold as it is read (or abandoned)."""

    response: Any
    hold: Any
    events: EventStream
    request: Any

    def _reply(self, stream: object) -> Any:
        http = _http_module(self.request)
        return http.Response(
            self.response.status_code,
            headers=_reply_headers(self.response),
            stream=stream,
            extensions=self.response.extensions,
            request=self.request,
        )

    def run(self, wire: Wire) -> Any:
        body = body_class(_http_module(self.request), SyncBody)
        return self._reply(body(self.response, self.hold, self.events))

    async def arun(self, wire: Wire) -> Any:
        body = body_class(_http_module(self.request), AsyncBody)
        started = body(self.response, self.hold, self.events)
        await started.start()
        return self._reply(started)


def _exchange(guard: _WireGuard, request: Any) -> Generator[Any, Any, Any]:
    """One request through the guard, as a flow (``capledger._flow``): every decision here,
    every step's I/O in the transport that drives it."""
    try:
        found, exchange, flow = guard.open(request)
        if exchange is None or flow is None:
            if found.kind == "free":
                return (yield _Send(stripped(request)))
            return (yield from _unguarded(guard, request, found.label))
        exchange.prepared, hold = yield from flow
    except LedgerError as error:
        raise guard.surfaced(error) from error.__cause__
    outgoing = exchange.outgoing(request)
    try:
        response = yield _Send(outgoing)
    except BaseException as error:
        yield from close(hold, _failure_plan(error), quiet=True)
        raise
    if response.status_code < 400 and _is_stream(response):
        return (yield _Stream(response, hold, exchange.stream(), outgoing))
    try:
        content = yield _Read(response)
    except BaseException as error:
        yield from close(hold, {"tags": {"error": type(error).__name__}}, quiet=True)
        raise
    yield from close(hold, exchange.settle_reply(response.status_code, content))
    return response  # read: its content is kept, decoded, for the client to return


def _unguarded(guard: _WireGuard, request: Any, label: str) -> Generator[Any, Any, Any]:
    """A request named in ``unguarded``: sent unheld, journaled as a zero hold."""
    hold = yield _Reserve(*guard.unguarded_hold(request, label))
    try:
        response = yield _Send(stripped(request))
    except BaseException:
        yield from close(hold, {"usd": 0}, quiet=True)
        raise
    yield from close(hold, {"usd": 0})
    return response


class _Transport:
    """What both transports hold: the wire (ledger and inner transport), the HTTP client
    that owns the inner transport, and the guard's decisions."""

    def __init__(
        self,
        inner: Any,
        ledger: LedgerLike | AsyncLedgerLike,
        settings: Settings,
        family: Family,
        *,
        owner: Any = None,
        sdk_error: type[Exception] | None = None,
    ) -> None:
        self._wire = Wire(ledger, inner)
        self._owner = owner
        self._guard = _WireGuard(settings, family, sdk_error)


class GuardTransport(_Transport):
    """A synchronous httpx transport that holds, sends through ``inner`` and settles.

    Args:
        inner: the transport the SDK client had (its connection pool, proxies, mocks).
        ledger: the ``Ledger`` holds are placed in.
        settings: what ``wrap`` was told.
        family: ``openai`` or ``anthropic``.
        owner: the HTTP client ``inner`` belongs to: kept alive (an SDK client closes its
            HTTP client when collected), and closed with this transport.
        sdk_error: the SDK's error base class, when its refusals must pass as one (see
            ``_WireGuard``).
    """

    def handle_request(self, request: Any) -> Any:
        """Guard one request (see the module docstring)."""
        # The flow decides about every error a step raises, cancellations included: each
        # one may have to settle a hold (``Wire.run`` throws them all into it).
        return self._wire.run(_exchange(self._guard, request))

    def close(self) -> None:
        """Close the inner transport (through the HTTP client that owns it)."""
        (self._owner or self._wire.inner).close()


class AsyncGuardTransport(_Transport):
    """The asynchronous ``GuardTransport``: the same flow, its steps awaited.

    Args:
        inner: the async transport the SDK client had.
        ledger: the ``AsyncLedger`` holds are placed in.
        settings, family, owner, sdk_error: as for ``GuardTransport``.
    """

    async def handle_async_request(self, request: Any) -> Any:
        """Guard one request (see the module docstring)."""
        return await self._wire.arun(_exchange(self._guard, request))

    async def aclose(self) -> None:
        """Close the inner transport (through the HTTP client that owns it)."""
        await (self._owner or self._wire.inner).aclose()
