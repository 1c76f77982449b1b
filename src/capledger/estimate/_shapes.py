"""Reading a request: which texts the model will see, what framing is added around them,
what media it carries, and how many output tokens it may produce.

Figures (tokens), and why:

- OpenAI chat framing, from OpenAI's token-counting cookbook: 3 per message (4 for the
  ``gpt-3.5-turbo-0301`` format; we take 4 so both are covered), 1 per ``name``, 3 to prime
  the reply. ``TEMPLATE_SLACK_TOKENS`` (16 per request) covers framing the cookbook does
  not document (reasoning models' system preamble).
- Tool definitions: the JSON of the definition (OpenAI renders it as a shorter TypeScript
  signature; Anthropic as JSON) plus 16 per tool and 32 per request for the surrounding
  namespace text. This is an argued bound, not a proven one: OpenAI does not publish the
  exact rendering.
- Anthropic adds a tool-use system prompt whenever tools are sent: at most 530 tokens in
  Anthropic's published table (Claude 3 Opus, ``tool_choice`` auto); we take 600 so a newer
  model with a slightly longer prompt stays covered.
- Images: OpenAI bills at most 1,445 tokens for ``gpt-4o`` (85 + 8 tiles x 170), 3,779 for
  the patch-based minis (1,536 patches x 2.46) and 48,169 for ``gpt-4o-mini`` (2,833 + 8 x
  5,667); we take 4,000, and 48,169 for ``gpt-4o-mini``. Anthropic scales images to about
  1,600 tokens (up to about 4,800 on models that accept 2,576-pixel images); Gemini tiles
  large images into 258-token tiles (16 tiles at 3,072 pixels); for both and every other
  provider we take 5,000.
- Files (PDFs): a page count cannot be read offline from a file id or a compressed PDF, so
  a file is bounded by the model's whole context window unless the caller passes
  ``file_tokens``.
- Server-side state (Responses ``previous_response_id``, ``conversation``, a stored
  ``prompt``): the provider prepends input the request does not carry, and bills all of it
  as input, so the input is bounded by the model's whole context window.
- Audio and parts we do not recognise: the UTF-8 bytes of their JSON. Audio is billed at
  about 10 tokens a second and even 8 kbit/s audio takes 1,333 base64 bytes a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from capledger.errors import InvalidInput

__all__ = ["RequestParts", "read_request"]

Shape = Literal["chat", "responses", "anthropic"]

OPENAI_TOKENS_PER_MESSAGE: Final = 4
OPENAI_TOKENS_PER_NAME: Final = 1
OPENAI_REPLY_PRIMING_TOKENS: Final = 3
TEMPLATE_SLACK_TOKENS: Final = 16
TOKENS_PER_TOOL_DEFINITION: Final = 16
TOKENS_PER_TOOLS_BLOCK: Final = 32
TOKENS_PER_TOOL_CALL: Final = 8
ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS: Final = 600
#: Anthropic does not publish its chat framing; we allow as much as OpenAI's, twice over.
ANTHROPIC_TOKENS_PER_MESSAGE: Final = 2 * OPENAI_TOKENS_PER_MESSAGE

IMAGE_TOKENS_DEFAULT: Final = 5_000
IMAGE_TOKENS_BY_PROVIDER: Final = {"openai": 4_000, "azure": 4_000}
IMAGE_TOKENS_BY_MODEL_PREFIX: Final = {"gpt-4o-mini": 48_169}

_TEXT_PART_TYPES: Final = frozenset({"text", "input_text", "output_text", "refusal"})
_IMAGE_PART_TYPES: Final = frozenset({"image", "image_url", "input_image"})
_FILE_PART_TYPES: Final = frozenset({"file", "input_file", "document"})
_AUDIO_PART_TYPES: Final = frozenset({"input_audio", "audio"})
_PASSIVE_TIERS: Final = frozenset({"auto", "default"})
#: Responses keys that make the provider add stored input the request does not carry.
_STORED_INPUT_KEYS: Final = ("previous_response_id", "conversation", "prompt")


@dataclass(slots=True)
class RequestParts:
    """What a request puts in front of the model, before counting."""

    shape: Shape
    texts: list[str] = field(default_factory=list)
    #: Serialised parts counted by bytes even when an exact tokenizer is known.
    opaque_texts: list[str] = field(default_factory=list)
    framing_tokens: int = 0
    images: int = 0
    files: int = 0
    #: The provider adds stored input (an earlier response, a conversation) we cannot see.
    stored_input: bool = False
    modalities: set[str] = field(default_factory=set)
    cache_writes: bool = False
    output_tokens_bound: int | None = None
    choices: int = 1
    service_tier: str | None = None


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _field(value: object, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else None


def _whole(request: Mapping[str, Any], key: str, *, minimum: int) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"request {key} must be a whole number >= {minimum}, not {value!r}")
    return value


def _detect_shape(request: Mapping[str, Any], provider: str | None) -> Shape:
    if "input" in request or "instructions" in request or "max_output_tokens" in request:
        return "responses"
    if provider == "anthropic" or "system" in request:
        return "anthropic"
    tools = request.get("tools")
    if isinstance(tools, list) and any(_field(tool, "input_schema") for tool in tools):
        return "anthropic"
    if "messages" in request:
        return "chat"
    raise InvalidInput(
        "unrecognised request: expected OpenAI chat 'messages', OpenAI Responses 'input', "
        "or Anthropic 'messages' with 'max_tokens'"
    )


def read_request(request: Mapping[str, Any], provider: str | None) -> RequestParts:
    """Split a request into texts, framing, media and output limits.

    Raises:
        InvalidInput: the request is not a mapping of a known shape, or a limit is invalid.
    """
    if not isinstance(request, Mapping):
        raise InvalidInput(f"a request must be a JSON object (a mapping), not {request!r}")
    shape = _detect_shape(request, provider)
    parts = RequestParts(shape)
    parts.cache_writes = "cache_control" in _json(request)
    tier = request.get("service_tier")
    if isinstance(tier, str) and tier not in _PASSIVE_TIERS:
        parts.service_tier = tier
    if shape == "chat":
        _read_chat(request, parts)
    elif shape == "responses":
        _read_responses(request, parts)
    else:
        _read_anthropic(request, parts)
    return parts


def _read_output_limit(
    request: Mapping[str, Any], keys: Sequence[str], parts: RequestParts
) -> None:
    limits = [limit for key in keys if (limit := _whole(request, key, minimum=0)) is not None]
    # Two limits given: the provider may honour either, so the larger bounds the output.
    parts.output_tokens_bound = max(limits) if limits else None


def _read_chat(request: Mapping[str, Any], parts: RequestParts) -> None:
    _read_output_limit(request, ("max_completion_tokens", "max_tokens"), parts)
    parts.choices = _whole(request, "n", minimum=1) or 1
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise InvalidInput("an OpenAI chat request needs 'messages' as a list")
    for message in messages:
        _read_openai_message(message, parts)
    parts.framing_tokens += OPENAI_REPLY_PRIMING_TOKENS + TEMPLATE_SLACK_TOKENS
    _read_tools(request.get("tools"), parts)
    _read_tools(request.get("functions"), parts)
    for key in ("tool_choice", "function_call", "response_format"):
        if isinstance(request.get(key), Mapping):
            parts.texts.append(_json(request[key]))
    _read_output_modalities(request, parts)


def _read_output_modalities(request: Mapping[str, Any], parts: RequestParts) -> None:
    modalities = request.get("modalities")
    if isinstance(modalities, list):
        parts.modalities.update(str(item) for item in modalities if item != "text")
    if request.get("audio") is not None:
        parts.modalities.add("audio")


def _read_openai_message(message: object, parts: RequestParts) -> None:
    if not isinstance(message, Mapping):
        raise InvalidInput(f"each message must be an object, not {message!r}")
    parts.framing_tokens += OPENAI_TOKENS_PER_MESSAGE
    for key in ("role", "tool_call_id"):
        if isinstance(message.get(key), str):
            parts.texts.append(message[key])
    if isinstance(message.get("name"), str):
        parts.texts.append(message["name"])
        parts.framing_tokens += OPENAI_TOKENS_PER_NAME
    _read_content(message.get("content"), parts)
    for call in message.get("tool_calls") or ():
        function = _field(call, "function")
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        if isinstance(function, Mapping):
            _read_strings(function.get("name"), parts)
            _read_strings(function.get("arguments"), parts)
        else:
            parts.opaque_texts.append(_json(call))
    function_call = message.get("function_call")
    if isinstance(function_call, Mapping):
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        _read_strings(function_call.get("name"), parts)
        _read_strings(function_call.get("arguments"), parts)


def _read_strings(value: object, parts: RequestParts) -> None:
    if isinstance(value, str):
        parts.texts.append(value)
    elif value is not None:
        parts.texts.append(_json(value))


def _read_content(content: object, parts: RequestParts) -> None:
    """Message content in any of the three shapes: a string or a list of typed parts."""
    if content is None:
        return
    if isinstance(content, str):
        parts.texts.append(content)
        return
    if not isinstance(content, list):
        parts.opaque_texts.append(_json(content))
        return
    for part in content:
        _read_part(part, parts)


def _read_part(part: object, parts: RequestParts) -> None:
    kind = _field(part, "type")
    if isinstance(part, str):
        parts.texts.append(part)
    elif kind in _TEXT_PART_TYPES and isinstance(_field(part, "text"), str):
        parts.texts.append(_field(part, "text"))
    elif kind in _IMAGE_PART_TYPES:
        parts.images += 1
        parts.modalities.add("image")
    elif kind in _FILE_PART_TYPES:
        parts.files += 1
        _read_strings(_field(part, "title"), parts)
        _read_strings(_field(part, "context"), parts)
    elif kind in _AUDIO_PART_TYPES:
        parts.modalities.add("audio")
        parts.opaque_texts.append(_json(part))
    elif kind == "tool_use":  # Anthropic
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        _read_strings(_field(part, "name"), parts)
        _read_strings(_field(part, "input"), parts)
    elif kind == "tool_result":  # Anthropic
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        _read_content(_field(part, "content"), parts)
    elif kind == "thinking" and isinstance(_field(part, "thinking"), str):  # Anthropic
        parts.texts.append(_field(part, "thinking"))
    else:
        # Encrypted reasoning, redacted thinking, server tool results...: the model sees
        # something no larger than these bytes.
        parts.opaque_texts.append(_json(part))


def _read_tools(tools: object, parts: RequestParts) -> None:
    if not tools:
        return
    if not isinstance(tools, list):
        raise InvalidInput(f"'tools' must be a list, not {tools!r}")
    parts.framing_tokens += TOKENS_PER_TOOLS_BLOCK
    for tool in tools:
        parts.framing_tokens += TOKENS_PER_TOOL_DEFINITION
        parts.texts.append(_json(tool))


def _read_responses(request: Mapping[str, Any], parts: RequestParts) -> None:
    _read_output_limit(request, ("max_output_tokens",), parts)
    parts.stored_input = any(request.get(key) is not None for key in _STORED_INPUT_KEYS)
    instructions = request.get("instructions")
    if isinstance(instructions, str):
        parts.framing_tokens += OPENAI_TOKENS_PER_MESSAGE
        parts.texts.extend(("developer", instructions))
    items = request.get("input")
    if isinstance(items, str):
        parts.framing_tokens += OPENAI_TOKENS_PER_MESSAGE
        parts.texts.extend(("user", items))
    elif isinstance(items, list):
        for item in items:
            _read_responses_item(item, parts)
    elif items is not None:
        raise InvalidInput("an OpenAI Responses request needs 'input' as a string or a list")
    parts.framing_tokens += OPENAI_REPLY_PRIMING_TOKENS + TEMPLATE_SLACK_TOKENS
    _read_tools(request.get("tools"), parts)
    for key in ("tool_choice", "text"):
        if isinstance(request.get(key), Mapping):
            parts.texts.append(_json(request[key]))
    _read_output_modalities(request, parts)


def _read_responses_item(item: object, parts: RequestParts) -> None:
    if isinstance(item, str):
        parts.texts.append(item)
        return
    if not isinstance(item, Mapping):
        raise InvalidInput(f"each input item must be an object, not {item!r}")
    kind = item.get("type", "message")
    if kind == "message" or "role" in item:
        _read_openai_message(item, parts)
    elif kind == "function_call":
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        _read_strings(item.get("name"), parts)
        _read_strings(item.get("arguments"), parts)
    elif kind == "function_call_output":
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        _read_content(item.get("output"), parts)
    else:
        _read_part(item, parts)


def _read_anthropic(request: Mapping[str, Any], parts: RequestParts) -> None:
    _read_output_limit(request, ("max_tokens",), parts)
    system = request.get("system")
    if system is not None:
        parts.framing_tokens += ANTHROPIC_TOKENS_PER_MESSAGE
        _read_content(system, parts)
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise InvalidInput("an Anthropic request needs 'messages' as a list")
    for message in messages:
        if not isinstance(message, Mapping):
            raise InvalidInput(f"each message must be an object, not {message!r}")
        parts.framing_tokens += ANTHROPIC_TOKENS_PER_MESSAGE
        _read_content(message.get("content"), parts)
    parts.framing_tokens += ANTHROPIC_TOKENS_PER_MESSAGE + TEMPLATE_SLACK_TOKENS
    tools = request.get("tools")
    _read_tools(tools, parts)
    if tools:
        parts.framing_tokens += ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS
    if isinstance(request.get("tool_choice"), Mapping):
        parts.texts.append(_json(request["tool_choice"]))
