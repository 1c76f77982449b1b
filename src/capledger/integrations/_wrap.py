"""``wrap(client, ledger, ...)``: the one line that guards a client the user already has."""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from typing import Any, Final

from capledger.bounds import MAX_TTL_S
from capledger.errors import ConfigurationError
from capledger.integrations._clients import AnthropicProxy, OpenAIProxy
from capledger.integrations._engine import Engine
from capledger.integrations._litellm import LiteLLMProxy
from capledger.integrations._plan import IncompletePolicy, Settings
from capledger.integrations._policy import PolicyLike, normalise_policy
from capledger.ledger import AsyncLedger, Ledger
from capledger.pricing import Pricebook
from capledger.scopes import parse_scopes

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_TTL_S", "make_settings", "wrap"]

#: The output limit given to a request that sets none (the provider must enforce one for
#: the hold to be a bound). Pass ``default_max_tokens=`` to change it.
DEFAULT_MAX_TOKENS: Final = 4096
#: How long a guarded call may run before its hold expires: long enough for a slow stream.
DEFAULT_TTL_S: Final = 600
_UNITS: Final = frozenset({"usd", "tokens", "requests"})


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
        raise ConfigurationError("settle_incomplete must be 'observed' or 'held'")
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
    )


def _kind(client: object) -> tuple[str, bool | None]:
    """("openai" | "anthropic" | "litellm", is_async) read from module and class names."""
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
    raise ConfigurationError(
        f"capledger.wrap does not know {type(client).__name__} from "
        f"{type(client).__module__}: it wraps openai.OpenAI / AsyncOpenAI, "
        "anthropic.Anthropic / AsyncAnthropic and the litellm module "
        "(use capledger.guard for anything else)"
    )


def wrap(
    client: Any,
    ledger: Ledger | AsyncLedger,
    *,
    scopes: str | Sequence[str] = (),
    policy: PolicyLike = "raise",
    ttl: float = DEFAULT_TTL_S,
    tags: Mapping[str, object] | None = None,
    provider: str | None = None,
    pricebook: Pricebook | None = None,
    default_max_tokens: int | None = DEFAULT_MAX_TOKENS,
    units: Sequence[str] = ("usd", "tokens", "requests"),
    settle_incomplete: IncompletePolicy = "observed",
) -> Any:
    """Return ``client`` with every billable call held, clamped, settled and attributed.

    Each guarded call: resolves its scopes (``scopes`` + ambient ``capledger.attribute`` +
    ``capledger_scopes=`` on the call); holds its worst case (input upper bound x input
    rate + output limit x output rate, ``capledger.estimate``) on every scope at once;
    applies ``policy`` when that does not fit; sends; settles the exact cost from the
    response's usage (``capledger.pricing``; cached and reasoning tokens included), tagged
    with the model, provider and token counts. A request without an output limit is given
    ``default_max_tokens``, which the provider then enforces (guarantee G2).

    Per-call options (taken out before the request is sent): ``capledger_scopes=``,
    ``capledger_tags=``, ``capledger_request_id=`` (idempotency key; generated if absent).

    Args:
        client: ``openai.OpenAI`` / ``AsyncOpenAI`` (and Azure), ``anthropic.Anthropic`` /
            ``AsyncAnthropic`` (and Bedrock, Vertex), or the ``litellm`` module.
        ledger: a ``Ledger`` for a sync client, an ``AsyncLedger`` for an async one (the
            ledger must not block the event loop, so a sync ledger is refused there).
        scopes: charged on every call.
        policy: ``raise`` (``BudgetExceeded`` before anything is sent), ``clamp`` /
            ``Clamp(floor=...)``, ``Downgrade({...})`` or a callable(``ShortBudget``).
        ttl: seconds a call may take before its hold expires (at most a day).
        tags: journaled with every call.
        provider: a genai-prices provider id, when the model name does not say (an
            OpenAI-compatible endpoint of another provider).
        pricebook: prices to use instead of the default pricebook.
        default_max_tokens: the output limit of a request that sets none; ``None`` makes
            such a request an error (``InvalidInput`` naming the key).
        units: what to hold: always ``usd``; ``tokens`` and ``requests`` so that token and
            request caps are enforced too.
        settle_incomplete: what a stream that did not finish (error, early close, garbage
            collection) or a call that timed out settles: ``observed`` (input bound plus
            output received; a timeout before output releases) or ``held`` (the worst case).

    Raises:
        ConfigurationError: an unknown client, a sync/async mismatch with the ledger, or a
            bad option.
    """
    kind, is_async = _kind(client)
    if is_async is True and not isinstance(ledger, AsyncLedger):
        raise ConfigurationError(
            f"{type(client).__name__} is asynchronous: wrap it with an AsyncLedger, so that "
            "no ledger call blocks the event loop"
        )
    if is_async is False and not isinstance(ledger, Ledger):
        raise ConfigurationError(
            f"{type(client).__name__} is synchronous: wrap it with a Ledger, not "
            f"{type(ledger).__name__}"
        )
    if not isinstance(ledger, Ledger | AsyncLedger):
        raise ConfigurationError(f"expected a Ledger or AsyncLedger, not {ledger!r}")
    engine = Engine(
        ledger,
        make_settings(
            scopes=scopes,
            policy=policy,
            ttl=ttl,
            tags=tags,
            provider=provider,
            pricebook=pricebook,
            default_max_tokens=default_max_tokens,
            units=units,
            settle_incomplete=settle_incomplete,
        ),
    )
    if kind == "openai":
        return OpenAIProxy(client, engine)
    if kind == "anthropic":
        return AnthropicProxy(client, engine)
    return LiteLLMProxy(client, engine)
