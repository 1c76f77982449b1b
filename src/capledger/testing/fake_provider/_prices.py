"""What a call costs at the fake: a model's rates (``FakePrices``, ``DEFAULT_PRICES``), a
request's input tokens, and a generation's cost rounded up to the nano-USD (the formulas
are in the package docstring)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext
from types import MappingProxyType
from typing import Any, Final

#: The output limit of a request that sets none (a real provider's default is the model's).
DEFAULT_OUTPUT_LIMIT_TOKENS: Final = 32_768
#: What any POST to an endpoint the fake does not model costs.
DEFAULT_OTHER_FEE_USD: Final = Decimal("0.04")
#: The request keys whose JSON counts as input (see the module docstring).
INPUT_KEYS: Final = (
    "messages",
    "input",
    "system",
    "instructions",
    "prompt",
    "tools",
    "functions",
    "response_format",
    "text",
    "output_config",
    "output_format",
)
#: The default of ``FakeProvider(bytes_per_input_token=...)``.
BYTES_PER_INPUT_TOKEN: Final = 3
_NANO_USD: Final = Decimal("1e-9")
_PER_MILLION: Final = Decimal(1_000_000)
RateLike = Decimal | str | int


def checked_rate(name: str, value: RateLike) -> Decimal:
    """A rate as a ``Decimal``, refused (``ValueError``) unless finite and >= 0."""
    rate = Decimal(value)
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"FakePrices.{name} must be a finite rate >= 0, got {value!r}")
    return rate


def _optional_rate(name: str, value: RateLike | None) -> Decimal | None:
    return None if value is None else checked_rate(name, value)


@dataclass(frozen=True, slots=True, init=False)
class FakePrices:
    """Rates of one model, in USD per million tokens (``str`` and ``int`` are accepted).

    Args:
        input: rate of input tokens.
        output: rate of output tokens (reasoning included).
        cached_input: rate of cached (cache-read) input tokens; ``None``: the input rate.
        cache_write: rate of cache-write input tokens (Anthropic); ``None``: the input rate.
        priority_multiplier: factor on every rate at priority tier when no explicit priority
            rate is given (1: priority costs what standard does).
        priority_input: explicit priority input rate.
        priority_output: explicit priority output rate.
        priority_cached_input: explicit priority cached-input rate.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None
    cache_write: Decimal | None
    priority_multiplier: Decimal
    priority_input: Decimal | None
    priority_output: Decimal | None
    priority_cached_input: Decimal | None

    def __init__(
        self,
        input: RateLike,
        output: RateLike,
        cached_input: RateLike | None = None,
        cache_write: RateLike | None = None,
        *,
        priority_multiplier: RateLike = 1,
        priority_input: RateLike | None = None,
        priority_output: RateLike | None = None,
        priority_cached_input: RateLike | None = None,
    ) -> None:
        setter = object.__setattr__
        setter(self, "input", checked_rate("input", input))
        setter(self, "output", checked_rate("output", output))
        setter(self, "cached_input", _optional_rate("cached_input", cached_input))
        setter(self, "cache_write", _optional_rate("cache_write", cache_write))
        setter(
            self, "priority_multiplier", checked_rate("priority_multiplier", priority_multiplier)
        )
        setter(self, "priority_input", _optional_rate("priority_input", priority_input))
        setter(self, "priority_output", _optional_rate("priority_output", priority_output))
        setter(
            self,
            "priority_cached_input",
            _optional_rate("priority_cached_input", priority_cached_input),
        )

    def rates(self, *, priority: bool) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """``(input, output, cached_input, cache_write)`` per million tokens at a tier.

        A missing cached or cache-write rate is the input rate of the same tier.
        """
        factor = self.priority_multiplier if priority else Decimal(1)
        input_rate = self.input * factor
        output_rate = self.output * factor
        if priority and self.priority_input is not None:
            input_rate = self.priority_input
        if priority and self.priority_output is not None:
            output_rate = self.priority_output
        cached = input_rate if self.cached_input is None else self.cached_input * factor
        if priority and self.priority_cached_input is not None:
            cached = self.priority_cached_input
        write = input_rate if self.cache_write is None else self.cache_write * factor
        return input_rate, output_rate, cached, write


#: genai-prices (provider openai / anthropic, standard tier, with OpenAI's priority rates).
DEFAULT_PRICES: Final[Mapping[str, FakePrices]] = MappingProxyType(
    {
        "gpt-4o-mini": FakePrices(
            "0.15",
            "0.60",
            "0.075",
            priority_input="0.25",
            priority_output="1.00",
            priority_cached_input="0.125",
        ),
        "gpt-4.1-nano": FakePrices(
            "0.10",
            "0.40",
            "0.025",
            priority_input="0.20",
            priority_output="0.80",
            priority_cached_input="0.05",
        ),
        "o4-mini": FakePrices(
            "1.10",
            "4.40",
            "0.275",
            priority_input="2.00",
            priority_output="8.00",
            priority_cached_input="0.50",
        ),
        "text-embedding-3-small": FakePrices("0.02", "0"),
        "claude-haiku-4-5": FakePrices("1", "5", "0.10", "1.25"),
        "claude-sonnet-4-5": FakePrices("3", "15", "0.30", "3.75"),
    }
)


def input_tokens_of(body: Mapping[str, Any], bytes_per_token: int = BYTES_PER_INPUT_TOKEN) -> int:
    """The fake's input token count of a request (see the module docstring)."""
    parts = {key: body[key] for key in INPUT_KEYS if key in body}
    encoded = json.dumps(parts, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return -(-len(encoded.encode("utf-8")) // bytes_per_token)  # exact integer ceiling


def _round_up(value: Decimal) -> Decimal:
    return value.quantize(_NANO_USD, rounding=ROUND_CEILING)


def call_cost(
    prices: FakePrices,
    *,
    priority: bool,
    input_tokens: int,
    cached_tokens: int,
    cache_write_tokens: int,
    output_tokens: int,
) -> Decimal:
    """What a generation costs at ``prices``, rounded up to the nano-USD."""
    input_rate, output_rate, cached_rate, write_rate = prices.rates(priority=priority)
    with localcontext() as context:
        context.prec = 60  # exact for any count below MAX_TOKENS_PER_CALL
        plain = input_tokens - cached_tokens - cache_write_tokens
        total = (
            plain * input_rate
            + cached_tokens * cached_rate
            + cache_write_tokens * write_rate
            + output_tokens * output_rate
        ) / _PER_MILLION
        return _round_up(total)
