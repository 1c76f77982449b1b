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
   they pass (``_EventStream``).

Money that may have been billed is never released. Once a request may have reached the
provider, every failure (timeouts, disconnects, an unreadable reply, a cancelled task, a 5xx)
settles the whole hold; only a failure known to happen before sending (connection refused,
DNS, a pool timeout) or a reply the provider does not bill (4xx, 429, 503, 529) releases it.
Each SDK retry is its own request here, so it is its own hold. A stream that ends without the
provider's usage settles the whole hold, unless ``settle_incomplete="observed"``.

Everything that decides is pure (``_Exchange``, ``_EventStream``); the two transports only
do the I/O, one with ``await``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import sys
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypeVar

from capledger._flow import arun, run
from capledger.errors import InvalidInput, LedgerError, UnguardedRequest
from capledger.integrations._meter import Meter
from capledger.integrations._plan import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MESSAGES,
    RESPONSES,
    USAGE_ON_REQUEST,
    Endpoint,
    Flow,
    Prepared,
    Settings,
    aclose,
    aclose_quietly,
    close_quietly,
    reserve_flow,
    settlement,
    unguarded_reserve,
    usage_hidden,
    with_stream_usage,
)
from capledger.integrations._steps import Wire

if TYPE_CHECKING:
    from capledger.ledger import AsyncLedger, Ledger

__all__ = [
    "AsyncGuardTransport",
    "GuardTransport",
    "call_options",
    "classify",
    "route",
]

_LOG = logging.getLogger("capledger.integrations")
_StreamT = TypeVar("_StreamT", "_SyncStream", "_AsyncStream")

Family: TypeAlias = Literal["openai", "anthropic"]
Kind: TypeAlias = Literal["priced", "free", "refused"]

#: Request headers that carry capledger's per-call options; removed before the request leaves.
SCOPES_HEADER: Final = "capledger-scopes"
TAGS_HEADER: Final = "capledger-tags"
REQUEST_ID_HEADER: Final = "capledger-request-id"
_OWN_HEADERS: Final = (SCOPES_HEADER, TAGS_HEADER, REQUEST_ID_HEADER)
#: The tag that makes each request sent under a caller's request id a hold of its own.
REQUEST_NONCE_TAG: Final = "request_nonce"
#: The SDKs number their attempts in this header (0 for the first).
_RETRY_HEADER: Final = "x-stainless-retry-count"

#: An id in a path: never ``.`` or ``..`` (which a front end may resolve to the parent, a
#: priced endpoint) nor anything percent-encoded.
_ID: Final = r"[A-Za-z0-9_-][A-Za-z0-9_.:-]*"
_Rule: TypeAlias = tuple[str, re.Pattern[str], Kind, "Endpoint | None"]


def _rules(*rules: tuple[str, str, Kind, Endpoint | None]) -> tuple[_Rule, ...]:
    return tuple((method, re.compile(pattern), kind, end) for method, pattern, kind, end in rules)


#: (method, path tail after the API version, route). The first match wins; a request that
#: matches none is refused. Reads and deletions are free whatever the path.
_RULES: Final[dict[Family, tuple[_Rule, ...]]] = {
    "openai": _rules(
        ("POST", r"chat/completions", "priced", CHAT),
        ("POST", r"responses", "priced", RESPONSES),
        ("POST", r"embeddings", "priced", EMBEDDINGS),
        ("POST", r"completions", "priced", COMPLETIONS),
        ("POST", r"responses/input_tokens", "free", None),
        ("POST", rf"responses/{_ID}/cancel", "free", None),
        ("POST", rf"chat/completions/{_ID}", "free", None),  # metadata update
        ("POST", r"moderations", "free", None),
        ("POST", r"files", "free", None),
        ("POST", r"uploads", "free", None),
        ("POST", rf"uploads/{_ID}/(parts|complete|cancel)", "free", None),
        ("POST", rf"(batches|fine_tuning/jobs)/{_ID}/(cancel|pause|resume)", "free", None),
        ("POST", r"conversations", "free", None),
        ("POST", rf"conversations/{_ID}(/items)?", "free", None),
    ),
    "anthropic": _rules(
        ("POST", r"messages", "priced", MESSAGES),
        ("POST", r"messages/count_tokens", "free", None),
        ("POST", rf"messages/batches/{_ID}/cancel", "free", None),
        ("POST", r"files", "free", None),
    ),
}
_FREE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
#: Azure OpenAI puts the deployment in the path; the API's own path follows it.
#: Everything up to the last version marker: ``/v1/``, ``/openai/v1/`` (Azure's v1 API,
#: OpenAI-compatible providers), an Azure deployment, a gateway's ``/openai/``.
_PATH_PREFIX: Final = re.compile(r"^.*/(?:v1|openai/deployments/[^/]+|openai)/")


def _tail(path: str) -> str:
    """The API path after its version prefix: ``/v1/chat/completions`` -> ``chat/completions``."""
    stripped = path.rstrip("/")
    match = _PATH_PREFIX.match(stripped + "/")
    tail = stripped[match.end() :] if match and match.end() <= len(stripped) else stripped
    return tail.lstrip("/")


@dataclass(frozen=True, slots=True)
class Route:
    """What the guard does with one request.

    Args:
        kind: ``priced`` (held and settled), ``free`` (passes) or ``refused``.
        label: ``METHOD path`` with the version prefix removed (``POST images/generations``).
        endpoint: for a priced request, where its API keeps the output limit.
    """

    kind: Kind
    label: str
    endpoint: Endpoint | None = None


def route(method: str, path: str, family: Family) -> Route:
    """Classify a request by its method and URL path (pure).

    Args:
        method: the HTTP method.
        path: the URL path (``/v1/chat/completions``; Azure deployment paths too).
        family: ``openai`` or ``anthropic``: which API the client speaks.
    """
    method = method.upper()
    tail = _tail(path)
    label = f"{method} {tail}"
    for rule_method, pattern, kind, endpoint in _RULES[family]:
        if method == rule_method and pattern.fullmatch(tail):
            return Route(kind, label, endpoint)
    if method in _FREE_METHODS:
        return Route("free", label)
    return Route("refused", label)


def classify(method: str, path: str, family: Family) -> tuple[Kind, str]:
    """``(kind, label)`` of a request: the audit's view of ``route``."""
    found = route(method, path, family)
    return found.kind, found.label


def call_options(
    *,
    scopes: str | list[str] | tuple[str, ...] | None = None,
    tags: Mapping[str, object] | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """Per-call options for a wrapped client, as ``extra_headers=``; removed before sending.

    >>> call_options(scopes="feature:search", request_id="req-7")
    {'capledger-scopes': 'feature:search', 'capledger-request-id': 'req-7'}

    Args:
        scopes: charged to this call too, beside ``wrap(scopes=...)`` and the attribution.
        tags: journaled with this call.
        request_id: the idempotency key of the first attempt (each SDK retry adds
            ``:retry-N``); generated when absent.

    Raises:
        InvalidInput: a scope list containing a comma, or tags that are not JSON.
    """
    headers: dict[str, str] = {}
    if scopes is not None:
        listed = [scopes] if isinstance(scopes, str) else list(scopes)
        if any("," in scope for scope in listed):
            raise InvalidInput(f"a scope cannot contain a comma: {listed!r}")
        headers[SCOPES_HEADER] = ",".join(listed)
    if tags is not None:
        try:
            headers[TAGS_HEADER] = json.dumps(dict(tags), separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise InvalidInput(f"tags must be JSON-serialisable: {error}") from None
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return headers


def _options(headers: Any) -> dict[str, Any]:
    """capledger's per-call options read from the request headers (``call_options``)."""
    options: dict[str, Any] = {}
    scopes = headers.get(SCOPES_HEADER)
    if scopes:
        options["capledger_scopes"] = [scope.strip() for scope in scopes.split(",")]
    tags = headers.get(TAGS_HEADER)
    if tags:
        try:
            parsed = json.loads(tags)
        except ValueError:
            raise InvalidInput(f"the {TAGS_HEADER} header is not JSON: {tags[:80]!r}") from None
        if not isinstance(parsed, dict):
            raise InvalidInput(f"the {TAGS_HEADER} header must be a JSON object")
        options["capledger_tags"] = parsed
    attempt = _attempt(headers)
    given = headers.get(REQUEST_ID_HEADER)
    if given:
        options["capledger_request_id"] = given if attempt == 0 else f"{given}:retry-{attempt}"
        # Each request the provider sees is billed, even two sent under one id: a nonce in
        # the hold's tags makes a second request under an id already held a conflict
        # (IdempotencyConflict, nothing sent), never a share of the first one's hold.
        nonce = {REQUEST_NONCE_TAG: uuid.uuid4().hex[:16]}
        options["capledger_tags"] = {**options.get("capledger_tags", {}), **nonce}
    else:
        options["capledger_request_id"] = "cl-" + uuid.uuid4().hex
    return options


def _attempt(headers: Any) -> int:
    try:
        return max(0, int(headers.get(_RETRY_HEADER) or 0))
    except ValueError:
        return 0


def _refusal(label: str) -> UnguardedRequest:
    endpoint = label.partition(" ")[2]
    return UnguardedRequest(
        f"capledger cannot price {label}, so it was not sent. Every request a wrapped client "
        f"sends is held first; pass wrap(..., unguarded=[{endpoint!r}]) to let this endpoint "
        "through unheld (journaled as unguarded).",
        endpoint=label,
        reason="no price or bound is known for this endpoint",
    )


# --- the pure part of one exchange ----------------------------------------------------------

#: Exceptions (by class name, so no HTTP library is imported) raised while opening the
#: connection: not a byte of the request left, so nothing can have been billed.
_UNSENT_ERRORS: Final = frozenset(
    {
        "ConnectError",  # httpx, httpcore
        "ConnectTimeout",
        "PoolTimeout",
        "ClientConnectorError",  # aiohttp, and its DNS / TLS subclasses below
        "ClientConnectorDNSError",
        "ClientConnectorCertificateError",
        "ClientConnectorSSLError",
        "NewConnectionError",  # urllib3 (boto)
        "EndpointConnectionError",  # botocore
    }
)
#: Replies the provider does not bill: it refused the request or did not process it.
_UNBILLED_SERVER_STATUSES: Final = frozenset({429, 503, 529})


def failure_releases(error: BaseException) -> bool:
    """Whether a request that raised ``error`` certainly did not reach the provider.

    Only a connection that was never made qualifies; a timeout or disconnect after sending,
    a cancelled task or an interrupt may come after the provider started billing.
    """
    if isinstance(error, ConnectionRefusedError | socket.gaierror):
        return True
    return any(cls.__name__ in _UNSENT_ERRORS for cls in type(error).__mro__)


def status_releases(status: int) -> bool:
    """Whether an error reply means the provider did not bill (4xx but 408, and 429/503/529)."""
    if status in _UNBILLED_SERVER_STATUSES:
        return True
    return 400 <= status < 500 and status != 408


@dataclass(slots=True)
class _Exchange:
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
            return _stripped(request)
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
        return self._settle_usage(self.usage_report(reply), *_reply_billing(reply, self.family))

    def usage_report(self, reply: dict[str, Any]) -> object:
        """What to price: a Responses reply whole (its tool calls carry fees), else its usage."""
        return reply if self.endpoint.shape == "responses" else reply.get("usage")

    def _settle_usage(self, usage: object, tier: object, speed: object = None) -> dict[str, Any]:
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

    def stream(self) -> _EventStream:
        """The reader of this exchange's SSE reply."""
        return _EventStream(self)


def _reply_billing(reply: dict[str, Any], family: Family) -> tuple[object, object]:
    """The service tier and speed a reply says it was billed at."""
    if family == "anthropic":
        usage = reply.get("usage")
        if not isinstance(usage, dict):
            return None, None
        return usage.get("service_tier"), usage.get("speed")
    return reply.get("service_tier"), None


#: A blank line: two line ends in a row, each CRLF, LF or CR (the SSE grammar).
_LINE_END: Final = rb"(?:\r\n|\r(?!\n)|\n)"
_EVENT_END: Final = re.compile(_LINE_END + _LINE_END)


@dataclass(slots=True)
class _EventStream:
    """Reads an SSE reply as it passes: meters it, and hides the usage chunk capledger asked
    for from a caller who did not (so ``chunk.choices[0]`` keeps working)."""

    exchange: _Exchange
    meter: Meter = field(init=False)
    buffer: bytes = b""
    tier: object = None
    speed: object = None
    #: A Responses stream's final response, priced whole (its tool calls carry fees).
    final_response: dict[str, Any] | None = None
    #: The provider said the stream is over (``[DONE]``, or its final usage arrived).
    done: bool = False
    #: How the stream is ending, as far as the reader knows: ``abandoned`` until it
    #: completes, fails, or is ``stopped`` because the budget cannot pay for an overrun.
    how: str = "abandoned"
    #: When the hold's life was last renewed (``time.monotonic``): a stream may outlast the
    #: hold's TTL, which bounds the SDK's time between two reads, not a whole stream.
    renewed_at: float = field(default_factory=time.monotonic)
    #: The provider's own output count last reported to the ledger (an overrun).
    observed_output: int = 0

    def __post_init__(self) -> None:
        assert self.exchange.prepared is not None
        self.meter = Meter(self.exchange.endpoint.shape, self.exchange.prepared)

    def feed(self, chunk: bytes) -> bytes:
        """Take raw bytes; return the bytes to hand on (whole events only)."""
        self.buffer += chunk
        out: list[bytes] = []
        while True:
            match = _EVENT_END.search(self.buffer)
            if match is None:
                break
            raw = self.buffer[: match.end()]
            self.buffer = self.buffer[match.end() :]
            if self._read(raw):
                out.append(raw)
        return b"".join(out)

    def take(self, chunk: bytes) -> tuple[bytes, dict[str, Any] | None, float | None]:
        """Take raw bytes: the bytes to hand on; the ``hold.observe`` keyword arguments when
        the provider overran the hold (``how`` is ``stopped`` until that succeeds); and the
        TTL to renew the hold to, once half of it has passed since the last renewal."""
        passed = self.feed(chunk)
        ttl_s = self.exchange.settings.ttl_s
        renew: float | None = None
        if time.monotonic() - self.renewed_at > ttl_s / 2:
            self.renewed_at = time.monotonic()
            renew = ttl_s
        overrun = self.overrun()
        if overrun is None:
            return passed, None, renew
        self.how = "stopped"
        return passed, overrun, renew

    def finish(self) -> bytes:
        """The stream's body ended: what is left to hand on."""
        rest = self.flush()
        self.how = "completed"
        return rest

    def failed(self) -> None:
        """Reading failed (an overrun the budget could not pay for stays ``stopped``)."""
        if self.how != "stopped":
            self.how = "failed"

    def flush(self) -> bytes:
        """What is left at the end of the stream (an event with no final blank line)."""
        rest, self.buffer = self.buffer, b""
        if rest and self._read(rest):
            return rest
        return b""

    def _read(self, raw: bytes) -> bool:
        """Meter one event; False when it is the usage chunk to hide."""
        data = b"".join(
            line[5:].lstrip(b" ") for line in raw.splitlines() if line.startswith(b"data:")
        )
        if data == b"[DONE]":
            self.done = True
            return True
        if not data:
            return True
        try:
            event = json.loads(data)
        except ValueError:
            return True
        if not isinstance(event, dict):
            return True
        self.meter.feed(event)
        if self.meter.final is not None:
            self.done = True
            response = event.get("response")
            if isinstance(response, dict) and response.get("usage") is not None:
                self.final_response = response
        self._note_tier(event)
        usage_chunk = event.get("usage") is not None and not event.get("choices")
        if usage_chunk and self.exchange.endpoint.shape in USAGE_ON_REQUEST:
            return self.exchange.caller_wants_usage
        return True

    def _note_tier(self, event: dict[str, Any]) -> None:
        tier = event.get("service_tier")
        response = event.get("response")
        if isinstance(response, dict):
            tier = response.get("service_tier", tier)
        message = event.get("message")
        for usage in (
            event.get("usage"),
            message.get("usage") if isinstance(message, dict) else None,
        ):
            if isinstance(usage, dict) and usage.get("service_tier") is not None:
                tier = usage["service_tier"]
            if isinstance(usage, dict) and usage.get("speed") is not None:
                self.speed = usage["speed"]
        if tier is not None:
            self.tier = tier

    def overrun(self) -> dict[str, Any] | None:
        """``hold.observe`` keyword arguments when the provider reports more output than the
        limit it was sent (it overran the hold), else ``None``.

        Within the limit nothing is observed: the hold already covers it, and a ledger write
        per event would cost more than the call.
        """
        meter = self.meter
        if meter.provider_output <= max(meter.output_cap, self.observed_output):
            return None
        self.observed_output = meter.provider_output
        return meter.observe_options(self.exchange.settings)

    def closing(self, how: str | None = None) -> dict[str, Any]:
        """``hold.settle`` keyword arguments for a stream that ended ``how`` (by default as
        the reader saw it; the SDK closes a stream once it reads ``[DONE]``, so one closed
        after that is complete too).

        The provider's usage when it arrived; else the whole hold, or the output seen with
        ``settle_incomplete="observed"``. A stream ``stopped`` because the budget could not
        pay for its overrun settles what it ran to, which is more than the hold.
        """
        if how is None:
            how = "completed" if self.done and self.how == "abandoned" else self.how
        exchange = self.exchange
        if self.meter.final is not None:
            report = self.final_response or self.meter.final
            plan = exchange._settle_usage(report, self.tier, self.speed)
            plan["tags"] = {**plan["tags"], "stream": how}
            return plan
        if how == "stopped":
            return self.meter.observed(exchange.settings, how).settle_options()
        if exchange.settings.settle_incomplete == "observed":
            return self.meter.observed(exchange.settings, how).settle_options()
        return {"tags": {"usage": "missing", "stream": how}}


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
        if name.lower() not in _OWN_HEADERS and name.lower() != "content-length"
    ]
    return http.Request(
        request.method, request.url, headers=headers, content=content, extensions=request.extensions
    )


#: The headers the guard reads, as the raw bytes httpx keeps (lower-cased).
_READ: Final = frozenset(name.encode() for name in (*_OWN_HEADERS, _RETRY_HEADER))
_READ_OWN: Final = frozenset(name.encode() for name in _OWN_HEADERS)


def _read_headers(request: Any) -> dict[str, str]:
    """The request's capledger headers and attempt number, in one pass over its headers."""
    found: dict[str, str] = {}
    for key, value in request.headers.raw:
        lowered = key.lower()
        if lowered in _READ:
            found[lowered.decode()] = value.decode("latin-1")
    return found


def _stripped(request: Any) -> Any:
    """``request`` without capledger's headers (for a free or unguarded request)."""
    if not any(key.lower() in _READ_OWN for key, _value in request.headers.raw):
        return request
    for name in _OWN_HEADERS:
        request.headers.pop(name, None)
    return request


def _reply_headers(response: Any) -> list[tuple[str, str]]:
    """The reply's headers for decoded content (no encoding, length recomputed)."""
    dropped = ("content-encoding", "content-length", "transfer-encoding")
    return [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in dropped
    ]


@functools.cache
def _stream_class(http: ModuleType, guarded: type[_StreamT]) -> type[_StreamT]:
    """``guarded`` as a subclass of the module's byte stream class, which httpx checks for."""
    base = http.AsyncByteStream if guarded is _AsyncStream else http.SyncByteStream
    return type(guarded.__name__, (guarded, base), {})


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

    def open(self, request: Any) -> tuple[Route, _Exchange | None, Flow | None]:
        """Route ``request``; for a priced one, the exchange and its reserve flow.

        Raises:
            UnguardedRequest: refused, and not named in ``unguarded``.
            InvalidInput: a priced request whose body is not a JSON object.
        """
        found = route(request.method, request.url.path, self.family)
        if found.kind == "refused":
            if found.label.partition(" ")[2] in self.settings.unguarded:
                return found, None, None
            raise _refusal(found.label)
        if found.kind == "free" or found.endpoint is None:
            return found, None, None
        try:
            body = json.loads(request.read() or b"null")
        except ValueError:
            raise InvalidInput(f"the body of {found.label} is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput(f"the body of {found.label} must be a JSON object")
        options = _options(_read_headers(request))
        exchange = _Exchange(
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
        return unguarded_reserve(self.settings, _options(_read_headers(request)), label)


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


def _renew(hold: Any, ttl_s: float) -> None:
    """Push a streaming hold's expiry on; a hold that expired all the same (the stream
    stalled past its TTL) is settled late when the stream ends, so this is only logged."""
    try:
        hold.extend(ttl=ttl_s)
    except LedgerError:
        _LOG.warning("capledger could not renew hold %s", hold.id, exc_info=True)


async def _arenew(hold: Any, ttl_s: float) -> None:
    try:
        await hold.extend(ttl=ttl_s)
    except LedgerError:
        _LOG.warning("capledger could not renew hold %s", hold.id, exc_info=True)


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
class _Close:
    """Settle a hold at ``plan`` (release it for ``None``); ``quiet`` logs a ledger error
    instead of raising it, when the caller's own error matters more."""

    hold: Any
    plan: dict[str, Any] | None
    quiet: bool = False

    def run(self, wire: Wire) -> None:
        if self.quiet:
            close_quietly(self.hold, self.plan)
        elif self.plan is None:
            self.hold.release()
        else:
            self.hold.settle(**self.plan)

    async def arun(self, wire: Wire) -> None:
        if self.quiet:
            await aclose_quietly(self.hold, self.plan)
        else:
            await aclose(self.hold, self.plan)


@dataclass(frozen=True, slots=True)
class _Stream:
    """Hand back an SSE reply whose body settles the hold as it is read (or abandoned)."""

    response: Any
    hold: Any
    events: _EventStream
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
        stream_class = _stream_class(_http_module(self.request), _SyncStream)
        return self._reply(stream_class(self.response, self.hold, self.events))

    async def arun(self, wire: Wire) -> Any:
        stream = _stream_class(_http_module(self.request), _AsyncStream)(
            self.response, self.hold, self.events
        )
        await stream.start()
        return self._reply(stream)


def _exchange(guard: _WireGuard, request: Any) -> Generator[Any, Any, Any]:
    """One request through the guard, as a flow (``capledger._flow``): every decision here,
    every step's I/O in the transport that drives it."""
    try:
        found, exchange, flow = guard.open(request)
        if exchange is None or flow is None:
            if found.kind == "free":
                return (yield _Send(_stripped(request)))
            return (yield from _unguarded(guard, request, found.label))
        exchange.prepared, hold = yield from flow
    except LedgerError as error:
        raise guard.surfaced(error) from error.__cause__
    outgoing = exchange.outgoing(request)
    try:
        response = yield _Send(outgoing)
    except BaseException as error:
        yield _Close(hold, _failure_plan(error), quiet=True)
        raise
    if response.status_code < 400 and _is_stream(response):
        return (yield _Stream(response, hold, exchange.stream(), outgoing))
    try:
        content = yield _Read(response)
    except BaseException as error:
        yield _Close(hold, {"tags": {"error": type(error).__name__}}, quiet=True)
        raise
    yield _Close(hold, exchange.settle_reply(response.status_code, content))
    return response  # read: its content is kept, decoded, for the client to return


def _unguarded(guard: _WireGuard, request: Any, label: str) -> Generator[Any, Any, Any]:
    """A request named in ``unguarded``: sent unheld, journaled as a zero hold."""
    hold = yield _Reserve(*guard.unguarded_hold(request, label))
    try:
        response = yield _Send(_stripped(request))
    except BaseException:
        yield _Close(hold, {"usd": 0}, quiet=True)
        raise
    yield _Close(hold, {"usd": 0})
    return response


class _Transport:
    """What both transports hold: the wire (ledger and inner transport), the HTTP client
    that owns the inner transport, and the guard's decisions."""

    def __init__(
        self,
        inner: Any,
        ledger: Ledger | AsyncLedger,
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
        return run(_exchange(self._guard, request), self._wire.perform, catch=_EVERY_ERROR)

    def close(self) -> None:
        """Close the inner transport (through the HTTP client that owns it)."""
        (self._owner or self._wire.inner).close()


#: A transport's flow decides about every error a step raises, cancellations included:
#: each one may have to settle a hold.
_EVERY_ERROR: Final = BaseException
#: Closing a hold needs neither the ledger nor the transport: the hold knows its ledger.
_NO_WIRE: Final = Wire(ledger=None)


class _SyncStream:
    """The body of a guarded SSE reply: passes whole events on, settles when it ends.

    The reading is a generator started at once (primed), so that a reply nobody reads or
    closes is still settled when it is collected: closing a started generator runs its
    ``finally``.
    """

    def __init__(self, response: Any, hold: Any, events: _EventStream) -> None:
        self._chunks = self._generate(response, hold, events)
        next(self._chunks)

    @staticmethod
    def _generate(response: Any, hold: Any, events: _EventStream) -> Generator[bytes, None, None]:
        events.how = "abandoned"
        try:
            yield b""
            for chunk in response.iter_bytes():
                passed, overrun, renew = events.take(chunk)
                if renew is not None:
                    _renew(hold, renew)
                if overrun is not None:
                    hold.observe(**overrun)  # BudgetExceeded stops the stream
                    events.how = "abandoned"
                if passed:
                    yield passed
            yield events.finish()
        except GeneratorExit:
            raise
        except BaseException:
            events.failed()
            raise
        finally:
            try:
                response.close()
            finally:
                _Close(hold, events.closing(), quiet=events.how != "completed").run(_NO_WIRE)

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        """Stop reading: the connection closes and the hold settles."""
        self._chunks.close()


class AsyncGuardTransport(_Transport):
    """The asynchronous ``GuardTransport``: the same flow, its steps awaited.

    Args:
        inner: the async transport the SDK client had.
        ledger: the ``AsyncLedger`` holds are placed in.
        settings, family, owner, sdk_error: as for ``GuardTransport``.
    """

    async def handle_async_request(self, request: Any) -> Any:
        """Guard one request (see the module docstring)."""
        flow = _exchange(self._guard, request)
        return await arun(flow, self._wire.aperform, catch=_EVERY_ERROR)

    async def aclose(self) -> None:
        """Close the inner transport (through the HTTP client that owns it)."""
        await (self._owner or self._wire.inner).aclose()


class _AsyncStream:
    """The async body of a guarded SSE reply.

    The reading is an async generator started before the reply is handed back: asyncio
    then closes it (running its ``finally``, which settles) when it is collected unread, and
    before its event loop closes (``shutdown_asyncgens``) when it is abandoned open.
    """

    def __init__(self, response: Any, hold: Any, events: _EventStream) -> None:
        self._chunks = self._generate(response, hold, events)

    async def start(self) -> None:
        """Start the generator, so that asyncio tracks it from now on."""
        await anext(self._chunks)

    @staticmethod
    async def _generate(
        response: Any, hold: Any, events: _EventStream
    ) -> AsyncGenerator[bytes, None]:
        events.how = "abandoned"
        try:
            yield b""
            async for chunk in response.aiter_bytes():
                passed, overrun, renew = events.take(chunk)
                if renew is not None:
                    await _arenew(hold, renew)
                if overrun is not None:
                    await hold.observe(**overrun)  # BudgetExceeded stops the stream
                    events.how = "abandoned"
                if passed:
                    yield passed
            yield events.finish()
        except GeneratorExit:
            raise
        except BaseException:
            events.failed()
            raise
        finally:
            try:
                await response.aclose()
            finally:
                await _Close(hold, events.closing(), quiet=events.how != "completed").arun(_NO_WIRE)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        """Stop reading: the connection closes and the hold settles."""
        await self._chunks.aclose()
