"""Worst-case cost of a request before it is sent, and the output ceiling a budget affords."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final, Literal

from capledger.bounds import MAX_AMOUNT
from capledger.errors import InvalidInput, UnguardedRequest
from capledger.estimate._shapes import (
    IMAGE_TOKENS_BY_MODEL_PREFIX,
    IMAGE_TOKENS_BY_PROVIDER,
    IMAGE_TOKENS_DEFAULT,
    RequestParts,
    ServerTool,
    Shape,
    read_request,
)
from capledger.estimate._tokens import byte_bound, encoding_for_model, exact_counter
from capledger.money import AmountLike, to_units
from capledger.pricing._pricebook import Pricebook, Rates, default_pricebook, round_up_usd

__all__ = [
    "Estimate",
    "affordable_max_tokens",
    "estimate",
    "input_token_bound",
    "worst_case_cost",
]

#: The largest output ceiling ``affordable_max_tokens`` returns (for a free output rate).
MAX_OUTPUT_TOKENS: Final = MAX_AMOUNT["tokens"]

#: Models that search the web on every call, for a fee genai-prices does not carry.
_SEARCH_MODEL: Final = re.compile(r"search-(preview|api)")

_LIMIT_KEYS: Final[dict[Shape, str]] = {
    "chat": "max_completion_tokens (or max_tokens)",
    "responses": "max_output_tokens",
    "anthropic": "max_tokens",
    "embeddings": "max_output_tokens= (embeddings produce none)",
    "completions": "max_tokens",
}


@dataclass(frozen=True, slots=True)
class Estimate:
    """The worst case of one request, with how it was reached.

    ``worst_case_usd = ceil_nano((input_tokens_bound x input_usd_per_token +
    (output_tokens_bound + extra_output_tokens) x output_usd_per_token) x choices +
    tool_fees_usd)``.

    Args:
        output_tokens_bound: the output limit (the request's ``max_tokens`` or its
            equivalent, or ``max_output_tokens=``), which the provider enforces; a clamp
            writes a smaller one back into the request.
        extra_output_tokens: output billed per choice beyond that limit, whatever it is
            (rejected chat ``prediction`` tokens, a legacy completion's ``echo``).
        min_output_tokens: the smallest output limit the provider accepts for this request
            (``thinking.budget_tokens + 1`` with Anthropic extended thinking, 0 for
            embeddings, else 1): a clamp below it makes the request fail, not cheaper.
        shape: the request shape that was read (``chat``, ``responses``, ``anthropic``,
            ``embeddings``, ``completions``).
        server_tool_calls: the most calls the provider may make to tools it runs itself
            (web search, file search...); each is held as another turn that re-reads up to
            the context window, included in ``input_tokens_bound``.
        tool_fees_usd: the per-call fees of those calls (genai-prices' web and file search
            fees x the calls), unrounded.
    """

    model: str
    provider: str
    input_tokens_bound: int
    output_tokens_bound: int
    choices: int
    method: Literal["tokenizer", "bytes"]
    encoding: str | None
    input_usd_per_token: Decimal
    output_usd_per_token: Decimal
    worst_case_usd: Decimal
    extra_output_tokens: int = 0
    min_output_tokens: int = 1
    shape: Shape = "chat"
    server_tool_calls: int = 0
    tool_fees_usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class _InputSide:
    parts: RequestParts
    provider: str
    tokens_bound: int
    extra_output_tokens: int
    method: Literal["tokenizer", "bytes"]
    encoding: str | None
    rates: Rates
    server_tool_calls: int
    tool_fees_usd: Decimal


@dataclass(frozen=True, slots=True)
class _Counted:
    input_tokens: int
    extra_output_tokens: int
    method: Literal["tokenizer", "bytes"]
    encoding: str | None


def _image_tokens(model: str, provider: str) -> int:
    name = model.lower()
    for prefix, tokens in IMAGE_TOKENS_BY_MODEL_PREFIX.items():
        if name.startswith(prefix):
            return tokens
    return IMAGE_TOKENS_BY_PROVIDER.get(provider, IMAGE_TOKENS_DEFAULT)


def _count_input(
    parts: RequestParts,
    *,
    model: str,
    provider: str,
    context_window_tokens: int | None,
    file_tokens: int | None,
) -> _Counted:
    encoding = None
    if parts.shape != "anthropic":
        encoding = encoding_for_model(model, provider)
    counter = exact_counter(encoding) if encoding is not None else None
    method: Literal["tokenizer", "bytes"] = "tokenizer"
    if counter is None:
        counter, method, encoding = byte_bound, "bytes", None
    tokens = sum(counter(text) for text in parts.texts) + parts.given_tokens
    tokens += sum(byte_bound(text) for text in parts.opaque_texts)
    tokens += parts.framing_tokens + parts.images * _image_tokens(model, provider)
    extra_output = sum(counter(text) for text in parts.extra_output_texts)
    extra_output += parts.extra_output_given_tokens
    if parts.files:
        per_file = file_tokens if file_tokens is not None else context_window_tokens
        if per_file is None:
            raise InvalidInput(
                f"the request carries {parts.files} file(s) and the context window of "
                f"{model!r} is unknown: pass file_tokens= (an upper bound per file)"
            )
        tokens += parts.files * per_file
    if parts.stored_input:
        # The stored part is unknown offline; the whole input never exceeds the window.
        if context_window_tokens is None:
            raise InvalidInput(
                f"the request continues stored state (previous_response_id, conversation, "
                f"prompt, an item reference or an earlier audio reply) and the context "
                f"window of {model!r} is unknown, so its input has no bound: send the whole "
                "input instead"
            )
        tokens = max(tokens, context_window_tokens)
    return _Counted(tokens, extra_output, method, encoding)


def _input_side(
    model: str,
    request: Mapping[str, Any],
    provider: str | None,
    shape: Shape | None,
    file_tokens: int | None,
    pricebook: Pricebook | None,
    at: datetime | None = None,
    batch: bool = False,
    max_output_tokens: int | None = None,
) -> _InputSide:
    """What a request costs before its output limit: its parts, input bound, rates and tool
    fees. ``input_token_bound``, ``estimate`` and ``affordable_max_tokens`` pass their own
    parameters on positionally, ``max_output_tokens`` (only ``estimate`` takes one) last."""
    book = pricebook or default_pricebook()
    if file_tokens is not None and (isinstance(file_tokens, bool) or file_tokens < 0):
        raise InvalidInput(f"file_tokens must be a whole number >= 0, not {file_tokens!r}")
    # The price lookup names the provider and the underlying model (through aliases), which
    # pick the request shape and the tokenizer.
    known = book.price(model, provider, at=at)
    parts = read_request(request, known.provider, shape)
    counted = _count_input(
        parts,
        model=known.model,
        provider=known.provider,
        context_window_tokens=known.context_window_tokens,
        file_tokens=file_tokens,
    )
    tool_calls = _server_tool_calls(parts, known.model)
    input_tokens = _with_tool_turns(
        parts, counted.input_tokens, tool_calls, known.model, known.context_window_tokens
    )
    # An embedding model has no output price; it needs none while nothing is output.
    limit = parts.output_tokens_bound if max_output_tokens is None else max_output_tokens
    output_possible = limit != 0 or counted.extra_output_tokens > 0
    rates = book.worst_case_rates(
        model,
        provider,
        input_tokens_bound=input_tokens,
        cache_writes=parts.cache_writes,
        modalities=frozenset(parts.modalities),
        output_modalities=frozenset(parts.output_modalities),
        at=at,
        batch=batch,
        service_tier=parts.service_tier,
        speed=parts.speed,
        require_output=output_possible,
    )
    return _InputSide(
        parts,
        known.provider,
        input_tokens,
        counted.extra_output_tokens,
        counted.method,
        counted.encoding,
        rates,
        tool_calls,
        _server_tool_fees(parts, rates, tool_calls, known.model),
    )


def _refuse_tool(model: str, tool: str, reason: str) -> UnguardedRequest:
    return UnguardedRequest(
        f"the request to {model!r} has no bounded cost: the provider runs {tool!r} itself "
        f"and {reason}",
        endpoint=tool,
        reason=reason,
    )


def _unbounded_reason(tool: ServerTool) -> str:
    if tool.name == "web_search_options":
        return "Chat Completions sets no cap on the number of searches (use Responses)"
    if tool.name == "mcp_servers":
        return "the MCP connector sets no cap on its calls"
    return "capledger knows no price for it"


def _server_tool_calls(parts: RequestParts, model: str) -> int:
    """The most calls the provider may make to tools it runs; refuses what has no bound."""
    if _SEARCH_MODEL.search(model):
        raise _refuse_tool(
            model, "web_search", "the model searches on every call, for a fee genai-prices lacks"
        )
    if not parts.server_tools:
        return 0
    for tool in parts.server_tools:
        if not tool.bounded:
            raise _refuse_tool(model, tool.name, _unbounded_reason(tool))
    if parts.shape == "anthropic":
        for tool in parts.server_tools:
            if tool.max_calls is None:
                raise _refuse_tool(model, tool.name, "the tool sets no max_uses")
        return sum(tool.max_calls or 0 for tool in parts.server_tools)
    if parts.max_tool_calls is None:
        raise _refuse_tool(model, parts.server_tools[0].name, "the request sets no max_tool_calls")
    return parts.max_tool_calls


def _with_tool_turns(
    parts: RequestParts, tokens: int, calls: int, model: str, context_window: int | None
) -> int:
    """The input bound once each tool call has started another turn.

    Each call hands its results back to the model, which reads the whole conversation again
    and is billed for it as input: at most the context window per turn.
    """
    if not parts.server_tools:
        return tokens
    if context_window is None:
        raise _refuse_tool(
            model, parts.server_tools[0].name, "the model's context window is unknown"
        )
    if any(tool.loads_definitions for tool in parts.server_tools):
        tokens = max(tokens, context_window)  # definitions fetched from the server
    return tokens + calls * context_window


def _server_tool_fees(parts: RequestParts, rates: Rates, calls: int, model: str) -> Decimal:
    fees: list[tuple[ServerTool, Decimal]] = []
    for tool in parts.server_tools:
        fee = Decimal(0) if tool.fee is None else rates.tool_usd_per_call.get(tool.fee)
        if fee is None:
            raise _refuse_tool(
                model, tool.name, f"genai-prices knows no {tool.fee} fee for this model"
            )
        fees.append((tool, fee))
    if not fees:
        return Decimal(0)
    if parts.shape == "anthropic":
        return sum((fee * (tool.max_calls or 0) for tool, fee in fees), Decimal(0))
    # max_tool_calls caps every built-in tool together: each call may be the dearest.
    return calls * max(fee for _, fee in fees)


def input_token_bound(
    model: str,
    request: Mapping[str, Any],
    provider: str | None = None,
    *,
    shape: Shape | None = None,
    file_tokens: int | None = None,
    pricebook: Pricebook | None = None,
) -> int:
    """An upper bound on the input tokens of a request, computed offline.

    ``bound = sum(tokens of each text) + framing + images x per-image bound + files x
    per-file bound``, where a text is counted exactly with OpenAI's encoding for OpenAI models
    (``bpe-openai``) and otherwise bounded by its UTF-8 bytes (+1); see ``capledger.estimate``
    for the figures and what is proven. A Responses request that continues stored state
    (``previous_response_id``, ``conversation``, a stored ``prompt``) is billed for input it
    does not carry, so its bound is at least the model's context window. Top-level keys the
    shape does not know are counted as input, by the bytes of their JSON.

    Args:
        model: the model the request is for (aliases and overrides apply).
        request: the JSON body of an OpenAI chat, Responses, Embeddings or legacy
            Completions request, or an Anthropic Messages request; SDK objects inside it
            (a response message appended to ``messages``) are read through ``model_dump``.
        provider: a genai-prices provider id; ``None`` infers it from the model.
        shape: ``chat``, ``responses``, ``anthropic``, ``embeddings`` or ``completions``
            (the endpoint the body goes to); ``None`` recognises the first three by their
            keys, and the last two must be named.
        file_tokens: an upper bound per attached file; defaults to the context window.
        pricebook: where the model is looked up; the default pricebook if ``None``.

    Raises:
        UnknownModel: the model has no known price (the lookup names its provider).
        InvalidInput: the request is malformed, or carries files or stored state with no
            bound available, or ``shape`` is not one of the five.
    """
    return _input_side(model, request, provider, shape, file_tokens, pricebook).tokens_bound


def estimate(
    model: str,
    request: Mapping[str, Any],
    provider: str | None = None,
    *,
    shape: Shape | None = None,
    max_output_tokens: int | None = None,
    file_tokens: int | None = None,
    pricebook: Pricebook | None = None,
    at: datetime | None = None,
    batch: bool = False,
) -> Estimate:
    """The worst-case cost of a request, with its token bounds and rates.

    ``worst = ceil_nano((input bound x input rate + (output limit + extra output) x output
    rate) x n)``: the rates are the highest that could apply (tiers reached by the input
    bound, cache writes when the request sets ``cache_control``, media rates, time-of-day
    prices, the request's ``service_tier``); the output limit is the request's
    ``max_completion_tokens`` / ``max_tokens`` / ``max_output_tokens``, which includes
    reasoning tokens (0 for embeddings, 16 for a legacy completion that sets none); extra
    output is billed beyond it (rejected ``prediction`` tokens, an ``echo``-ed prompt);
    ``n`` is the number of choices (chat ``n``; a legacy completion's ``max(n, best_of)``
    per prompt), and the input is counted once per choice to stay safe.

    Args:
        max_output_tokens: the output limit, overriding the request's.
        at: when the call will run; now if ``None``. ``batch``: sent via a batch API.
        model, request, provider, shape, file_tokens, pricebook: as for
            ``input_token_bound``.

    Raises:
        InvalidInput: the request sets no output limit (the message names the key to pass).
        UnknownModel: the model, or its per-token prices, are unknown (whatever the policy).
    """
    if max_output_tokens is not None:
        _check_output_override(max_output_tokens)
    side = _input_side(
        model, request, provider, shape, file_tokens, pricebook, at, batch, max_output_tokens
    )
    output_tokens = _output_limit(side.parts, max_output_tokens)
    return Estimate(
        model=model,
        provider=side.provider,
        input_tokens_bound=side.tokens_bound,
        output_tokens_bound=output_tokens,
        choices=side.parts.choices,
        method=side.method,
        encoding=side.encoding,
        input_usd_per_token=side.rates.input_usd_per_token,
        output_usd_per_token=side.rates.output_usd_per_token,
        worst_case_usd=_worst_case_usd(side, output_tokens),
        extra_output_tokens=side.extra_output_tokens,
        min_output_tokens=side.parts.min_output_tokens,
        shape=side.parts.shape,
        server_tool_calls=side.server_tool_calls,
        tool_fees_usd=side.tool_fees_usd,
    )


def _check_output_override(override: object) -> None:
    if isinstance(override, bool) or not isinstance(override, int) or override < 0:
        raise InvalidInput(f"max_output_tokens must be a whole number >= 0, not {override!r}")


def _output_limit(parts: RequestParts, override: int | None) -> int:
    if override is not None:
        return override
    if parts.output_tokens_bound is None:
        raise InvalidInput(
            "the request sets no output limit, so its worst case has no bound: pass "
            f"{_LIMIT_KEYS[parts.shape]} in the request"
        )
    return parts.output_tokens_bound


def _unrounded_usd(side: _InputSide, output_tokens: int) -> Decimal:
    rates = side.rates
    per_choice = (
        side.tokens_bound * rates.input_usd_per_token
        + (output_tokens + side.extra_output_tokens) * rates.output_usd_per_token
    )
    return per_choice * side.parts.choices + side.tool_fees_usd


def _worst_case_usd(side: _InputSide, output_tokens: int) -> Decimal:
    return round_up_usd(_unrounded_usd(side, output_tokens))


def worst_case_cost(
    model: str,
    request: Mapping[str, Any],
    provider: str | None = None,
    *,
    shape: Shape | None = None,
    max_output_tokens: int | None = None,
    file_tokens: int | None = None,
    pricebook: Pricebook | None = None,
    at: datetime | None = None,
    batch: bool = False,
) -> Decimal:
    """The most a request can cost, in USD rounded up to the nano-USD; see ``estimate``."""
    return estimate(
        model,
        request,
        provider,
        shape=shape,
        max_output_tokens=max_output_tokens,
        file_tokens=file_tokens,
        pricebook=pricebook,
        at=at,
        batch=batch,
    ).worst_case_usd


def affordable_max_tokens(
    model: str,
    request: Mapping[str, Any],
    available: AmountLike,
    provider: str | None = None,
    *,
    shape: Shape | None = None,
    file_tokens: int | None = None,
    pricebook: Pricebook | None = None,
    at: datetime | None = None,
    batch: bool = False,
) -> int:
    """The largest output limit whose worst case fits in ``available`` USD.

    The largest ``k`` with ``ceil_nano((input bound x input rate + (k + extra output) x
    output rate) x n) <= available``; 0 when even the input (and the extra output) cannot be
    paid; at most ``MAX_OUTPUT_TOKENS`` (1e12) when output is free. The request's own output
    limit is ignored (the caller takes the smaller of the two, which is what the ``clamp``
    policy does), and so is ``Estimate.min_output_tokens``: a ``k`` below it cannot be sent.

    Args:
        available: the budget in USD (``Decimal``, ``int``, ``str`` or ``float`` via ``str``).
        model, request, provider, shape, file_tokens, pricebook, at, batch: as for
            ``estimate``.

    Raises:
        InvalidAmount: ``available`` is negative, not a number, or past the bound.
    """
    available_nano = to_units("usd", available)
    side = _input_side(model, request, provider, shape, file_tokens, pricebook, at, batch)
    budget_usd = Decimal(available_nano) / Decimal(10**9)
    fixed_usd = _unrounded_usd(side, 0)
    if fixed_usd > budget_usd:
        return 0
    rate = side.rates.output_usd_per_token * side.parts.choices
    if rate == 0:
        return MAX_OUTPUT_TOKENS
    guess = ((budget_usd - fixed_usd) / rate).to_integral_value(rounding=ROUND_FLOOR)
    tokens = min(int(guess), MAX_OUTPUT_TOKENS)
    # Decimal division carries 28 digits; step down past any rounding of the guess.
    while tokens > 0 and _unrounded_usd(side, tokens) > budget_usd:
        tokens -= 1
    return tokens
