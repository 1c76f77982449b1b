"""Which requests the wire guard holds, and what a request's headers and failures say.

``route`` classifies a request by its method and path: **priced** (held and settled),
**free** (passes) or **refused** (``UnguardedRequest`` before it is sent). ``call_options``
puts capledger's per-call options in headers, which ``options_of`` reads back and
``stripped`` removes before the request leaves. ``failure_releases`` and
``status_releases`` say which failures are known to cost nothing. All of it is pure.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from capledger.errors import InvalidInput, UnguardedRequest
from capledger.integrations._calls import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MESSAGES,
    RESPONSES,
    Endpoint,
)

__all__ = [
    "OWN_HEADERS",
    "Family",
    "Kind",
    "Route",
    "call_options",
    "classify",
    "failure_releases",
    "options_of",
    "read_headers",
    "refusal",
    "route",
    "status_releases",
    "stripped",
]

Family: TypeAlias = Literal["openai", "anthropic"]
Kind: TypeAlias = Literal["priced", "free", "refused"]

#: Request headers that carry capledger's per-call options; removed before the request leaves.
SCOPES_HEADER: Final = "capledger-scopes"
TAGS_HEADER: Final = "capledger-tags"
REQUEST_ID_HEADER: Final = "capledger-request-id"
OWN_HEADERS: Final = (SCOPES_HEADER, TAGS_HEADER, REQUEST_ID_HEADER)
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


def options_of(headers: Any) -> dict[str, Any]:
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


def refusal(label: str) -> UnguardedRequest:
    endpoint = label.partition(" ")[2]
    return UnguardedRequest(
        f"capledger cannot price {label}, so it was not sent. Every request a wrapped client "
        f"sends is held first; pass wrap(..., unguarded=[{endpoint!r}]) to let this endpoint "
        "through unheld (journaled as unguarded).",
        endpoint=label,
        reason="no price or bound is known for this endpoint",
    )


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


#: The headers the guard reads, as the raw bytes httpx keeps (lower-cased).
_READ: Final = frozenset(name.encode() for name in (*OWN_HEADERS, _RETRY_HEADER))
_READ_OWN: Final = frozenset(name.encode() for name in OWN_HEADERS)


def read_headers(request: Any) -> dict[str, str]:
    """The request's capledger headers and attempt number, in one pass over its headers."""
    found: dict[str, str] = {}
    for key, value in request.headers.raw:
        lowered = key.lower()
        if lowered in _READ:
            found[lowered.decode()] = value.decode("latin-1")
    return found


def stripped(request: Any) -> Any:
    """``request`` without capledger's headers (for a free or unguarded request)."""
    if not any(key.lower() in _READ_OWN for key, _value in request.headers.raw):
        return request
    for name in OWN_HEADERS:
        request.headers.pop(name, None)
    return request
