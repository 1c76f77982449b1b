"""``wrap(client, ledger, ...)``: the one line that guards a client the user already has.

An OpenAI or Anthropic client is guarded at the wire: the result is a copy of the SDK client
(the SDK's own class, so every method, helper and namespace is there) whose HTTP client sends
through a capledger transport (``_transport``). The ``litellm`` module is guarded at its
functions (``_litellm``), since LiteLLM sends through several HTTP stacks.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any, Final

from capledger.bounds import MAX_TTL_S
from capledger.errors import ConfigurationError, UnguardedRequest
from capledger.integrations._calls import IncompletePolicy, Settings
from capledger.integrations._engine import Engine
from capledger.integrations._ledger_like import (
    AsyncLedgerLike,
    LedgerLike,
    is_async_ledger,
    is_ledger,
)
from capledger.integrations._litellm import LiteLLMProxy, LiteLLMRouterProxy
from capledger.integrations._policy import PolicyLike, normalise_policy
from capledger.integrations._routes import Family
from capledger.integrations._transport import AsyncGuardTransport, GuardTransport
from capledger.pricing import Pricebook
from capledger.scopes import parse_scopes

__all__ = ["DEFAULT_MAX_TOKENS", "GUARDED_CALL_TTL_S", "make_settings", "wrap"]

#: The output limit given to a request that sets none (the provider must enforce one for
#: the hold to be a bound). Pass ``default_max_tokens=`` to change it.
DEFAULT_MAX_TOKENS: Final = 4096
#: How long a guarded LiteLLM call's hold lasts, and a wrapped SDK client's when the client
#: has no timeout: long enough for a slow stream. (A wrapped SDK client's holds otherwise
#: last its timeout times its attempts. ``capledger.bounds.DEFAULT_TTL_S`` is a plain
#: ``reserve``'s.)
GUARDED_CALL_TTL_S: Final = 600
_UNITS: Final = frozenset({"usd", "tokens", "requests"})
#: Clients guarded at the wire (the rest, LiteLLM's, at their functions).
_SDK_KINDS: Final = frozenset({"openai", "anthropic"})


def make_settings(
    *,
    scopes: str | Sequence[str],
    policy: PolicyLike,
    ttl: float,
    tags: Mapping[str, object] | None,
    provider: str | None,
    pricebook: Pricebook | None,
    default_max_tokens: int | None,
    units: Sequence[str],
    settle_incomplete: IncompletePolicy,
    unguarded: Sequence[str] = (),
) -> Settings:
    """Check the options of ``wrap`` once, so a call never fails on a configuration typo.

    Raises:
        ConfigurationError: an unknown policy, unit or ``settle_incomplete``, a TTL out of
            bounds, or a ``default_max_tokens`` that is not a positive whole number.
        InvalidScope: a malformed scope.
    """
    scope_tuple = parse_scopes([scopes] if isinstance(scopes, str) else scopes) if scopes else ()
    unit_set = set(units)
    if "usd" not in unit_set or not unit_set <= _UNITS:
        raise ConfigurationError(
            f"units must include 'usd' and be drawn from {sorted(_UNITS)}, not {list(units)}"
        )
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
        raise ConfigurationError(f"ttl must be a number of seconds, not {ttl!r}")
    if not 0 < ttl <= MAX_TTL_S:
        raise ConfigurationError(f"ttl must be within (0, {MAX_TTL_S}] seconds, not {ttl}")
    if default_max_tokens is not None and (
        isinstance(default_max_tokens, bool)
        or not isinstance(default_max_tokens, int)
        or default_max_tokens < 1
    ):
        raise ConfigurationError(
            f"default_max_tokens must be a whole number >= 1 or None, not {default_max_tokens!r}"
        )
    if settle_incomplete not in ("observed", "held"):
        raise ConfigurationError("settle_incomplete must be 'held' or 'observed'")
    if isinstance(unguarded, str) or not all(isinstance(name, str) for name in unguarded):
        raise ConfigurationError(
            f"unguarded must be a list of endpoint or function names, not {unguarded!r}"
        )
    return Settings(
        scopes=scope_tuple,
        policy=normalise_policy(policy),
        ttl_s=ttl,
        tags=dict(tags or {}),
        provider=provider,
        pricebook=pricebook,
        default_max_tokens=default_max_tokens,
        hold_tokens="tokens" in unit_set,
        hold_requests="requests" in unit_set,
        settle_incomplete=settle_incomplete,
        unguarded=frozenset(name.strip("/") for name in unguarded),
    )


def _kind(client: object) -> tuple[str, bool | None]:
    """("openai" | "anthropic" | "litellm" | "litellm_router", is_async) read from module
    and class names."""
    if isinstance(client, types.ModuleType):
        if client.__name__ == "litellm":
            return "litellm", None
    else:
        for cls in type(client).__mro__:
            root = cls.__module__.partition(".")[0]
            name = cls.__name__
            if root == "openai" and "OpenAI" in name:
                return "openai", name.startswith("Async")
            if root == "anthropic" and "Anthropic" in name:
                return "anthropic", name.startswith("Async")
            if root == "litellm" and name == "Router":
                return "litellm_router", None
    raise ConfigurationError(
        f"capledger.wrap does not know {type(client).__name__} from "
        f"{type(client).__module__}: it wraps openai.OpenAI / AsyncOpenAI, "
        "anthropic.Anthropic / AsyncAnthropic, the litellm module and a litellm.Router "
        "(use capledger.guard for anything else)"
    )


def wrap(
    client: Any,
    ledger: LedgerLike | AsyncLedgerLike,
    *,
    scopes: str | Sequence[str] = (),
    policy: PolicyLike = "raise",
    ttl: float | None = None,
    tags: Mapping[str, object] | None = None,
    provider: str | None = None,
    pricebook: Pricebook | None = None,
    default_max_tokens: int | None = DEFAULT_MAX_TOKENS,
    units: Sequence[str] = ("usd", "tokens", "requests"),
    settle_incomplete: IncompletePolicy = "held",
    unguarded: Sequence[str] = (),
) -> Any:
    """Return ``client`` with every billable request held, clamped, settled and attributed.

    An OpenAI or Anthropic client comes back as a copy of itself (same class, every method
    and helper) whose HTTP transport guards each request that leaves: a priced endpoint
    (Chat Completions, Responses, Embeddings, legacy Completions, Anthropic Messages) is
    estimated from the body as sent, held at its worst case on every scope at once (input
    upper bound x input rate + output limit x output rate, ``capledger.estimate``), clamped
    or refused by ``policy``, and settled from the provider's own usage in the reply (JSON
    or SSE; cached, reasoning and audio tokens and the billed tier included). A free
    endpoint (reads, deletions, token counting, uploads) passes. Any other request raises
    ``UnguardedRequest`` before it is sent, unless ``unguarded`` names it. A request without
    an output limit is given ``default_max_tokens``, which the provider then enforces
    (guarantee G2). Each SDK retry is its own hold. A request that may have reached the
    provider is never released: a failure after sending settles the whole hold.

    The ``litellm`` module is guarded at its functions: see docs/integrations/litellm.md.

    Scopes: ``scopes`` + the ambient ``capledger.attribute`` + the call's own, given as
    ``extra_headers=capledger.integrations.call_options(scopes=..., tags=...,
    request_id=...)`` (removed before sending).

    Args:
        client: ``openai.OpenAI`` / ``AsyncOpenAI`` (and Azure), ``anthropic.Anthropic`` /
            ``AsyncAnthropic``, the ``litellm`` module or a ``litellm.Router``. (The
            Anthropic Bedrock and Vertex clients' requests are refused at the wire: their
            paths and streams are not read yet.)
        ledger: a ``Ledger`` for a sync client, an ``AsyncLedger`` for an async one (the
            ledger must not block the event loop, so a sync ledger is refused there).
        scopes: charged on every call.
        policy: ``raise`` (``BudgetExceeded`` before anything is sent), ``clamp`` /
            ``Clamp(floor=...)``, ``Downgrade({...})`` or a callable(``ShortBudget``).
        ttl: seconds a hold lasts before it expires (at most a day); by default the SDK
            client's timeout times its attempts (``GUARDED_CALL_TTL_S`` for LiteLLM).
        tags: journaled with every call.
        provider: a genai-prices provider id, when the model name does not say (an
            OpenAI-compatible endpoint of another provider).
        pricebook: prices to use instead of the default pricebook.
        default_max_tokens: the output limit of a request that sets none; ``None`` makes
            such a request an error (``InvalidInput`` naming the key).
        units: what to hold: always ``usd``; ``tokens`` and ``requests`` so that token and
            request caps are enforced too.
        settle_incomplete: what a stream that ends without the provider's usage (broken,
            closed early, abandoned) settles: ``held`` (the whole worst case, the default)
            or ``observed`` (input bound plus the output received). ``observed`` is unsafe
            for reasoning models: their hidden tokens are billed but never seen.
        unguarded: endpoints (``"images/generations"``, the path after ``/v1/``) or
            LiteLLM functions (``"image_generation"``) to let through unheld; each such call
            is journaled as a zero hold tagged ``unguarded``.

    Raises:
        ConfigurationError: an unknown client, a sync/async mismatch with the ledger, or a
            bad option.
    """
    kind, is_async = _kind(client)
    if not is_ledger(ledger):
        raise ConfigurationError(f"expected a Ledger or AsyncLedger, not {ledger!r}")
    if is_async is True and not is_async_ledger(ledger):
        raise ConfigurationError(
            f"{type(client).__name__} is asynchronous: wrap it with an AsyncLedger, so that "
            "no ledger call blocks the event loop"
        )
    if is_async is False and is_async_ledger(ledger):
        raise ConfigurationError(
            f"{type(client).__name__} is synchronous: wrap it with a Ledger, not "
            f"{type(ledger).__name__}"
        )
    settings = make_settings(
        scopes=scopes,
        policy=policy,
        ttl=_sdk_ttl(client) if ttl is None and kind in _SDK_KINDS else ttl or GUARDED_CALL_TTL_S,
        tags=tags,
        provider=provider,
        pricebook=pricebook,
        default_max_tokens=default_max_tokens,
        units=units,
        settle_incomplete=settle_incomplete,
        unguarded=unguarded,
    )
    if kind == "litellm":
        return LiteLLMProxy(client, Engine(ledger, settings))
    if kind == "litellm_router":
        return LiteLLMRouterProxy(client, Engine(ledger, settings))
    family: Family = "openai" if kind == "openai" else "anthropic"
    settings = dataclasses.replace(settings, client_provider=family)
    return _guarded_copy(client, ledger, settings, family, is_async=bool(is_async))


def _seconds(timeout: object) -> float | None:
    """The longest figure of an SDK timeout (a number or an httpx ``Timeout``)."""
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        return float(timeout)
    figures = [getattr(timeout, name, None) for name in ("connect", "read", "write", "pool")]
    numbers = [float(f) for f in figures if isinstance(f, int | float) and f > 0]
    return max(numbers) if numbers else None


def _sdk_ttl(client: Any) -> float:
    """How long a hold must last: the SDK's timeout times its attempts, within the bound."""
    timeout = _seconds(getattr(client, "timeout", None)) or GUARDED_CALL_TTL_S
    retries = getattr(client, "max_retries", 0)
    attempts = 1 + (retries if isinstance(retries, int) and retries > 0 else 0)
    return float(min(MAX_TTL_S, math.ceil(timeout * attempts)))


def _http_client_class(http_client: Any, is_async: bool) -> type[Any]:
    """The httpx / httpx2 ``Client`` or ``AsyncClient`` class the SDK's client derives from."""
    wanted = "AsyncClient" if is_async else "Client"
    for cls in type(http_client).__mro__:
        if cls.__module__.partition(".")[0] in ("httpx", "httpx2") and cls.__name__ == wanted:
            return cls
    raise ConfigurationError(
        f"capledger.wrap needs an SDK client built on httpx, not {type(http_client).__name__}"
    )


#: Resources whose ``connect()`` opens a WebSocket with the ``websockets`` package: no HTTP
#: transport sees it, so the wrapped client refuses it itself (an audit walks the SDK's
#: surface for new ones: tests/integrations/test_sdk_surface_audit.py).
_WEBSOCKET_RESOURCES: Final = (
    "realtime",
    "realtime.translations",
    "responses",
    "live",
    "live.forks",
    "live.sideband",
    "beta.realtime",
    "beta.responses",
)


def _guarded_copy(
    client: Any,
    ledger: LedgerLike | AsyncLedgerLike,
    settings: Settings,
    family: Family,
    *,
    is_async: bool,
) -> Any:
    """A copy of ``client`` whose HTTP client sends through a guard transport, whose
    WebSockets are refused, and whose own copies stay guarded."""
    # The SDKs turn any error of their own HTTP client that is not theirs into a connection
    # error, and retry it (Anthropic's, and OpenAI's before 3.x): capledger's refusals pass
    # as the SDK's own errors too, so they reach the caller as themselves, at once.
    sdk_module = sys.modules[family]
    sdk_error = sdk_module.AnthropicError if family == "anthropic" else sdk_module.OpenAIError

    def guarded_http(http_client: Any) -> Any:
        """An HTTP client sending through a guard around ``http_client``'s transports.

        The guard wraps the transport the HTTP client already had (its pool, proxies and
        mounts, or a test's mock), and keeps that HTTP client alive: closing the guarded
        copy closes it.
        """
        options = {"owner": http_client, "sdk_error": sdk_error}

        def guarded(inner: Any) -> Any:
            if is_async:
                return AsyncGuardTransport(inner, ledger, settings, family, **options)
            return GuardTransport(inner, ledger, settings, family, **options)

        made = _http_client_class(http_client, is_async)(
            transport=guarded(http_client._transport),
            timeout=http_client.timeout,
            follow_redirects=http_client.follow_redirects,
        )
        # Proxy mounts (from the environment or the caller) are guarded too.
        made._mounts = {
            pattern: None if transport is None else guarded(transport)
            for pattern, transport in http_client._mounts.items()
        }
        return made

    def sealed(sdk_client: Any) -> Any:
        for path in _WEBSOCKET_RESOURCES:
            resource = _resource(sdk_client, path)
            if resource is not None and f"{path}.connect" not in settings.unguarded:
                resource.connect = _refuse_websocket(path)
        sdk_copy = sdk_client.copy

        def copy(**options: Any) -> Any:
            """The SDK's ``copy`` / ``with_options``, still guarded (a new ``http_client``
            is guarded too)."""
            if options.get("http_client") is not None:
                options["http_client"] = guarded_http(options["http_client"])
            return sealed(sdk_copy(**options))

        sdk_client.copy = sdk_client.with_options = copy
        return sdk_client

    return sealed(client.copy(http_client=guarded_http(client._client)))


def _resource(sdk_client: Any, path: str) -> Any:
    """The resource at a dotted path with a ``connect`` method, or ``None``."""
    found = sdk_client
    for name in path.split("."):
        found = getattr(found, name, None)
        if found is None:
            return None
    return found if callable(getattr(found, "connect", None)) else None


def _refuse_websocket(path: str) -> Any:
    def connect(*args: Any, **kwargs: Any) -> Any:
        """Refused: a WebSocket session cannot be held (``wrap(unguarded=[...])``)."""
        error = UnguardedRequest(
            f"capledger cannot hold the WebSocket session of {path}.connect(), so it was not "
            f"opened: no HTTP transport sees its traffic. Pass wrap(..., "
            f"unguarded=[{path + '.connect'!r}]) to let it through unheld.",
            endpoint=f"WEBSOCKET {path}",
            reason="a WebSocket session has no output limit to hold",
        )
        raise error

    return connect
