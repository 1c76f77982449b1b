"""What a guarded call is: its API, ``wrap``'s settings, the request held, what it settles at.

Plain values and pure functions, shared by the wire guard (``_transport``), LiteLLM's
engine (``_engine``) and the reserve flow (``_plan``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

from capledger.estimate import Estimate
from capledger.integrations._policy import Policy
from capledger.pricing import Pricebook, Usage, default_pricebook, parse_usage

__all__ = [
    "CALL_OPTIONS",
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "MESSAGES",
    "RESPONSES",
    "USAGE_ON_REQUEST",
    "Endpoint",
    "IncompletePolicy",
    "Prepared",
    "Settings",
    "Settlement",
    "Shape",
    "settlement",
    "usage_hidden",
    "usage_tags",
    "with_stream_usage",
]

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
class Settlement:
    """The amounts and tags a finished call settles at."""

    usd: Decimal
    tokens: int | None
    requests: int | None
    tags: dict[str, object]

    def settle_options(self) -> dict[str, Any]:
        """The keyword arguments of ``hold.settle`` that settle at this."""
        # The fields are named as ``settle``'s keyword arguments.
        return {field.name: getattr(self, field.name) for field in fields(self)}


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
