"""Token usage: one shape of our own, and a parser for the shapes providers report.

Every count is a total that contains its parts, never a part that excludes another:

- ``input_tokens`` counts **all** input tokens, cached reads and cache writes included;
- ``cache_read_tokens`` and ``cache_write_tokens`` are the parts of ``input_tokens`` read
  from and written to a prompt cache; ``cache_write_1h_tokens`` is the part of
  ``cache_write_tokens`` written with a one-hour lifetime (Anthropic bills it at 2x input);
- ``output_tokens`` counts **all** output tokens, reasoning included;
- ``reasoning_tokens`` is the part of ``output_tokens`` spent reasoning;
- ``input_audio_tokens`` and ``output_audio_tokens`` are the audio parts of ``input_tokens``
  and ``output_tokens`` (billed at the audio rates);
- ``web_search_calls`` and ``file_search_calls`` count calls to the provider's own search
  tools, billed per call beside the tokens.

So a cached token is priced once (at the cache rate, never also at the input rate) and a
reasoning token is never dropped (it is an output token). Providers disagree on which of
their fields are totals; :func:`parse_usage` maps each one onto these meanings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from capledger.bounds import MAX_AMOUNT
from capledger.errors import InvalidAmount, InvalidInput

__all__ = ["Usage", "parse_usage"]

_MAX_TOKENS = MAX_AMOUNT["tokens"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call; each field is an ``int`` in ``[0, 1e12]``.

    Args:
        input_tokens: all input tokens, cache reads and cache writes included.
        output_tokens: all output tokens, reasoning included.
        cache_read_tokens: the part of ``input_tokens`` read from the prompt cache.
        cache_write_tokens: the part of ``input_tokens`` written to the prompt cache.
        cache_write_1h_tokens: the part of ``cache_write_tokens`` cached for one hour.
        reasoning_tokens: the part of ``output_tokens`` spent reasoning (thinking).
        input_audio_tokens: the part of ``input_tokens`` that is audio.
        output_audio_tokens: the part of ``output_tokens`` that is audio.
        web_search_calls: calls to the provider's web search tool (a per-call fee).
        file_search_calls: calls to the provider's file search tool (a per-call fee).

    Raises:
        InvalidAmount: a count is not an ``int``, is negative or past the bound, or a part
            exceeds its total (``cache_read + cache_write <= input``,
            ``cache_write_1h <= cache_write``, ``reasoning <= output``,
            ``input_audio <= input``, ``output_audio <= output``).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    web_search_calls: int = 0
    file_search_calls: int = 0

    def __post_init__(self) -> None:
        for field in fields(self):
            _check_count(field.name, getattr(self, field.name))
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise InvalidAmount(
                f"cache_read_tokens ({self.cache_read_tokens}) + cache_write_tokens "
                f"({self.cache_write_tokens}) exceed input_tokens ({self.input_tokens}); "
                "input_tokens must count every input token, cached ones included"
            )
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            raise InvalidAmount(
                f"cache_write_1h_tokens ({self.cache_write_1h_tokens}) exceed "
                f"cache_write_tokens ({self.cache_write_tokens})"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise InvalidAmount(
                f"reasoning_tokens ({self.reasoning_tokens}) exceed output_tokens "
                f"({self.output_tokens}); output_tokens must count reasoning tokens too"
            )
        if self.input_audio_tokens > self.input_tokens:
            raise InvalidAmount(
                f"input_audio_tokens ({self.input_audio_tokens}) exceed input_tokens "
                f"({self.input_tokens}); input_tokens must count audio tokens too"
            )
        if self.output_audio_tokens > self.output_tokens:
            raise InvalidAmount(
                f"output_audio_tokens ({self.output_audio_tokens}) exceed output_tokens "
                f"({self.output_tokens}); output_tokens must count audio tokens too"
            )


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(f"{name} must be a whole number of tokens, not {value!r}")
    if value < 0:
        raise InvalidAmount(f"{name} must not be negative, got {value}")
    if value > _MAX_TOKENS:
        raise InvalidAmount(f"{name} {value} is past the bound of {_MAX_TOKENS} tokens")
    return value


def _get(obj: object, name: str) -> Any:
    """Read a field from a dict or an SDK object (pydantic model, dataclass) alike."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _has(obj: object, name: str) -> bool:
    return _get(obj, name) is not None


def _count(obj: object, *path: str) -> int:
    """Follow ``path`` through nested usage objects; a missing or null field counts 0."""
    value: Any = obj
    for name in path:
        if value is None:
            return 0
        value = _get(value, name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"malformed usage: {'.'.join(path)} must be a whole number of tokens, not {value!r}"
        )
    if value < 0:
        raise InvalidAmount(f"malformed usage: {'.'.join(path)} is negative ({value})")
    return value


def _first_count(obj: object, *paths: tuple[str, ...]) -> int:
    """The first of several spellings of one field that the object reports."""
    for path in paths:
        count = _count(obj, *path)
        if count:
            return count
    return 0


def _from_chat(usage: object) -> Usage:
    # OpenAI Chat Completions, and LiteLLM (which normalises every provider to this shape and
    # folds Anthropic's cache reads and writes into prompt_tokens).
    output = _count(usage, "completion_tokens")
    prompt = _count(usage, "prompt_tokens")
    # Some OpenAI-compatible endpoints (Gemini's among them) leave reasoning out of
    # completion_tokens but count it in total_tokens; the gap is billed output, so keep it.
    output = max(output, _count(usage, "total_tokens") - prompt)
    return _build(
        input_tokens=prompt,
        output_tokens=output,
        cache_read_tokens=_first_count(
            usage,
            ("prompt_tokens_details", "cached_tokens"),
            ("cache_read_input_tokens",),
            ("prompt_cache_hit_tokens",),  # DeepSeek
        ),
        cache_write_tokens=_first_count(
            usage,
            ("cache_creation_input_tokens",),
            ("prompt_tokens_details", "cache_write_tokens"),
            ("prompt_tokens_details", "cache_creation_tokens"),
        ),
        reasoning_tokens=_count(usage, "completion_tokens_details", "reasoning_tokens"),
        input_audio_tokens=_count(usage, "prompt_tokens_details", "audio_tokens"),
        output_audio_tokens=_count(usage, "completion_tokens_details", "audio_tokens"),
    )


def _from_responses(usage: object) -> Usage:
    return _build(
        input_tokens=_count(usage, "input_tokens"),
        output_tokens=_count(usage, "output_tokens"),
        cache_read_tokens=_count(usage, "input_tokens_details", "cached_tokens"),
        cache_write_tokens=_count(usage, "input_tokens_details", "cache_write_tokens"),
        reasoning_tokens=_count(usage, "output_tokens_details", "reasoning_tokens"),
        input_audio_tokens=_count(usage, "input_tokens_details", "audio_tokens"),
        output_audio_tokens=_count(usage, "output_tokens_details", "audio_tokens"),
    )


def _from_anthropic(usage: object) -> Usage:
    # Anthropic's input_tokens excludes both cache counters; thinking is inside output_tokens.
    cache_read = _count(usage, "cache_read_input_tokens")
    written_1h = _count(usage, "cache_creation", "ephemeral_1h_input_tokens")
    written_5m = _count(usage, "cache_creation", "ephemeral_5m_input_tokens")
    # The breakdown and the total should agree; if not, the larger is what was written.
    cache_write = max(_count(usage, "cache_creation_input_tokens"), written_5m + written_1h)
    return _build(
        input_tokens=_count(usage, "input_tokens") + cache_read + cache_write,
        output_tokens=_count(usage, "output_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=written_1h,
        reasoning_tokens=_count(usage, "output_tokens_details", "thinking_tokens"),
        web_search_calls=_count(usage, "server_tool_use", "web_search_requests"),
    )


def _from_gemini(usage: object) -> Usage:
    # Gemini reports thoughts beside the candidates, not inside them, and tool-use prompt
    # tokens beside the prompt; both are billed.
    thoughts = _first_count(usage, ("thoughts_token_count",), ("thoughtsTokenCount",))
    return _build(
        input_tokens=_first_count(usage, ("prompt_token_count",), ("promptTokenCount",))
        + _first_count(usage, ("tool_use_prompt_token_count",), ("toolUsePromptTokenCount",)),
        output_tokens=_first_count(usage, ("candidates_token_count",), ("candidatesTokenCount",))
        + thoughts,
        cache_read_tokens=_first_count(
            usage, ("cached_content_token_count",), ("cachedContentTokenCount",)
        ),
        reasoning_tokens=thoughts,
    )


def _build(**counts: int) -> Usage:
    try:
        return Usage(**counts)
    except InvalidAmount as error:
        raise InvalidInput(f"malformed usage: {error}") from None


_GEMINI_KEYS = ("prompt_token_count", "promptTokenCount")
_NESTED_KEYS = ("usage", "usage_metadata", "usageMetadata")


_TOOL_CALL_ITEMS: Final = {
    "web_search_call": "web_search_calls",
    "file_search_call": "file_search_calls",
}


def _tool_calls(response: object) -> dict[str, int]:
    """Search calls listed in a Responses response's ``output`` (billed per call)."""
    counts: dict[str, int] = {}
    output = _get(response, "output")
    if not isinstance(output, list | tuple):
        return counts
    for item in output:
        name = _TOOL_CALL_ITEMS.get(_get(item, "type"))
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts


def parse_usage(obj: object) -> Usage:
    """Read the token counts of a call from our ``Usage`` or a provider's report.

    Accepted, as SDK objects or plain dicts (duck-typed; no SDK is imported):

    - OpenAI Chat Completions response or ``usage`` (``prompt_tokens``,
      ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``);
      reasoning is inside ``completion_tokens``, cached tokens inside ``prompt_tokens``;
    - OpenAI Responses response or ``usage`` (``input_tokens_details.cached_tokens``,
      ``output_tokens_details.reasoning_tokens``), same inclusion rules;
    - Anthropic Messages response or ``usage``: ``input_tokens`` excludes
      ``cache_read_input_tokens`` and ``cache_creation_input_tokens``, so
      ``Usage.input_tokens = input_tokens + cache_read + cache_creation``;
    - a LiteLLM ``ModelResponse`` (OpenAI chat shape; its ``prompt_tokens`` already includes
      Anthropic's cache reads and writes, reported in ``cache_creation_input_tokens``);
    - Gemini ``usage_metadata``: ``output_tokens = candidates + thoughts``.

    Audio parts (``prompt_tokens_details.audio_tokens``, ``completion_tokens_details.
    audio_tokens``), OpenAI cache writes (``prompt_tokens_details.cache_write_tokens``,
    ``input_tokens_details.cache_write_tokens``), Anthropic's ``cache_creation`` breakdown and
    ``server_tool_use.web_search_requests`` are read too; given a whole Responses response,
    the ``web_search_call`` and ``file_search_call`` items of its ``output`` are counted.

    Args:
        obj: the usage object, or a response that carries one in ``usage``.

    Raises:
        InvalidInput: the object matches none of these shapes, or a field is not a
            non-negative whole number, or the parts exceed the totals.
    """
    if isinstance(obj, Usage):
        return obj
    if obj is None or isinstance(obj, str | bytes | int | float):
        raise InvalidInput(f"expected a usage object or a response, not {obj!r}")
    for key in _NESTED_KEYS:
        nested = _get(obj, key)
        if nested is not None and nested is not obj:
            usage = parse_usage(nested)
            calls = _tool_calls(obj)
            if not calls:
                return usage
            merged = {name: max(count, getattr(usage, name)) for name, count in calls.items()}
            return replace(usage, **merged)
    if _has(obj, "prompt_tokens") or _has(obj, "completion_tokens"):
        return _from_chat(obj)
    if _has(obj, "cache_read_input_tokens") or _has(obj, "cache_creation_input_tokens"):
        return _from_anthropic(obj)
    if _has(obj, "input_tokens_details") or _has(obj, "output_tokens_details"):
        return _from_responses(obj)
    if _has(obj, "input_tokens") and _has(obj, "total_tokens"):
        return _from_responses(obj)
    if _has(obj, "input_tokens") or _has(obj, "output_tokens"):
        return _from_anthropic(obj)
    if any(_has(obj, key) for key in _GEMINI_KEYS):
        return _from_gemini(obj)
    raise InvalidInput(
        f"unrecognised usage object {type(obj).__name__}: expected OpenAI prompt_tokens / "
        "completion_tokens, OpenAI Responses or Anthropic input_tokens / output_tokens, or "
        "Gemini prompt_token_count"
    )
