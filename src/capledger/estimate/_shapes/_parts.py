"""What a request puts in front of the model (``RequestParts``), and the readers every
shape shares: message content and its typed parts, tool definitions, structured-output
schemas, output limits, and the keys a reader does not know (counted as input)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from capledger.errors import InvalidInput
from capledger.estimate._shapes._figures import (
    BOUNDED_SERVER_TOOLS,
    CLIENT_TOOL_PROMPT_TOKENS,
    CLIENT_TOOL_TYPES,
    TOKENS_PER_SCHEMA_BLOCK,
    TOKENS_PER_TOOL_CALL,
    TOKENS_PER_TOOL_DEFINITION,
    TOKENS_PER_TOOLS_BLOCK,
)

Shape = Literal["chat", "responses", "anthropic", "embeddings", "completions"]
SHAPES: Final[tuple[Shape, ...]] = get_args(Shape)
_TEXT_PART_TYPES: Final = frozenset({"text", "input_text", "output_text", "refusal"})
_IMAGE_PART_TYPES: Final = frozenset({"image", "image_url", "input_image"})
_FILE_PART_TYPES: Final = frozenset({"file", "input_file", "document"})
_AUDIO_PART_TYPES: Final = frozenset({"input_audio", "audio"})


@dataclass(frozen=True, slots=True)
class ServerTool:
    """A tool the provider runs itself during the call, billed beyond the tokens sent.

    Args:
        name: its type as sent (``web_search_20250305``, ``file_search``, ``mcp``...).
        fee: the genai-prices fee each call bills (``web_searches``, ``storage_searches``),
            or ``None`` when the provider bills only tokens.
        bounded: whether capledger can bound it at all (a known fee or none, and a known
            way to cap its calls); an unbounded tool is refused.
        max_calls: the tool's own cap on calls (Anthropic ``max_uses``), if any.
        loads_definitions: the provider adds tool definitions the request does not carry.
    """

    name: str
    fee: str | None = None
    bounded: bool = False
    max_calls: int | None = None
    loads_definitions: bool = False


@dataclass(slots=True)
class RequestParts:
    """What a request puts in front of the model, before counting."""

    shape: Shape
    texts: list[str] = field(default_factory=list)
    #: Serialised parts counted by bytes even when an exact tokenizer is known.
    opaque_texts: list[str] = field(default_factory=list)
    #: Input given as token ids (embeddings, completions): counted exactly.
    given_tokens: int = 0
    framing_tokens: int = 0
    images: int = 0
    files: int = 0
    #: The provider adds stored input (an earlier response, a conversation) we cannot see.
    stored_input: bool = False
    #: Media in the request, and media the reply is asked to carry (chat ``modalities``).
    modalities: set[str] = field(default_factory=set)
    output_modalities: set[str] = field(default_factory=set)
    cache_writes: bool = False
    output_tokens_bound: int | None = None
    #: Output billed whatever the output limit (per choice): texts counted like the input
    #: (a rejected prediction, an echoed prompt) and token ids given (an echoed token array).
    extra_output_texts: list[str] = field(default_factory=list)
    extra_output_given_tokens: int = 0
    #: The smallest output limit the provider accepts for this request.
    min_output_tokens: int = 1
    choices: int = 1
    #: Tools the provider runs itself, and the request's cap on their calls together
    #: (Responses ``max_tool_calls``).
    server_tools: list[ServerTool] = field(default_factory=list)
    max_tool_calls: int | None = None
    #: The request's ``service_tier`` and Anthropic ``speed``, as sent.
    service_tier: str | None = None
    speed: str | None = None


def json_text(value: object) -> str:
    """The JSON a value is counted by (keys sorted, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def field_of(value: object, name: str) -> Any:
    """``value[name]`` when ``value`` is a mapping, else ``None``."""
    return value.get(name) if isinstance(value, Mapping) else None


def whole_number(request: Mapping[str, Any], key: str, *, minimum: int) -> int | None:
    """``request[key]`` as a whole number >= ``minimum``, or ``None`` when absent."""
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"request {key} must be a whole number >= {minimum}, not {value!r}")
    return value


def read_unknown_keys(value: Mapping[str, Any], known: frozenset[str], parts: RequestParts) -> None:
    """Count every key of ``value`` not in ``known`` as opaque input."""
    # A key we do not know may carry text the model reads; its JSON bytes bound it.
    for key, item in value.items():
        if key not in known and item is not None:
            parts.opaque_texts.append(json_text({key: item}))


def read_output_limit(request: Mapping[str, Any], keys: Sequence[str], parts: RequestParts) -> None:
    """The output bound: the largest of the limits the request sets under ``keys``."""
    limits = [limit for key in keys if (limit := whole_number(request, key, minimum=0)) is not None]
    # Two limits given: the provider may honour either, so the larger bounds the output.
    parts.output_tokens_bound = max(limits) if limits else None


def read_schema(value: object, parts: RequestParts) -> None:
    """A structured-output schema: its JSON, and the text around it."""
    if value is None:
        return
    parts.framing_tokens += TOKENS_PER_SCHEMA_BLOCK
    parts.opaque_texts.append(value if isinstance(value, str) else json_text(value))


def read_strings(value: object, parts: RequestParts) -> None:
    """A string as text; any other value by its JSON."""
    if isinstance(value, str):
        parts.texts.append(value)
    elif value is not None:
        parts.texts.append(json_text(value))


def read_content(content: object, parts: RequestParts) -> None:
    """Message content in any of the three shapes: a string or a list of typed parts."""
    if content is None:
        return
    if isinstance(content, str):
        parts.texts.append(content)
        return
    if not isinstance(content, list):
        parts.opaque_texts.append(json_text(content))
        return
    for part in content:
        read_part(part, parts)


def read_part(part: object, parts: RequestParts) -> None:
    """One typed part of message content (text, media, tool use, ...)."""
    kind = field_of(part, "type")
    if isinstance(part, str):
        parts.texts.append(part)
    elif kind in _TEXT_PART_TYPES and isinstance(field_of(part, "text"), str):
        parts.texts.append(field_of(part, "text"))
    elif kind in _IMAGE_PART_TYPES:
        parts.images += 1
        parts.modalities.add("image")
    elif kind in _FILE_PART_TYPES:
        parts.files += 1
        read_strings(field_of(part, "title"), parts)
        read_strings(field_of(part, "context"), parts)
    elif kind in _AUDIO_PART_TYPES:
        parts.modalities.add("audio")
        parts.opaque_texts.append(json_text(part))
    elif kind == "tool_use":  # Anthropic
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        read_strings(field_of(part, "name"), parts)
        read_strings(field_of(part, "input"), parts)
    elif kind == "tool_result":  # Anthropic
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        read_content(field_of(part, "content"), parts)
    elif kind == "thinking" and isinstance(field_of(part, "thinking"), str):  # Anthropic
        parts.texts.append(field_of(part, "thinking"))
    elif kind == "item_reference":  # Responses: a stored item, by id
        parts.stored_input = True
    else:
        # Encrypted reasoning, redacted thinking, server tool results...: the model sees
        # something no larger than these bytes.
        parts.opaque_texts.append(json_text(part))


def read_tools(tools: object, parts: RequestParts) -> None:
    """Tool definitions: their JSON and framing, and the tools the provider runs."""
    if not tools:
        return
    if not isinstance(tools, list):
        raise InvalidInput(f"'tools' must be a list, not {tools!r}")
    parts.framing_tokens += TOKENS_PER_TOOLS_BLOCK
    for tool in tools:
        parts.framing_tokens += TOKENS_PER_TOOL_DEFINITION
        parts.texts.append(json_text(tool))
        _classify_tool(tool, parts)


def _classify_tool(tool: object, parts: RequestParts) -> None:
    """Note a tool the provider runs itself, and the prompt a typed client tool adds."""
    kind = field_of(tool, "type")
    if parts.shape == "anthropic" and kind is None:
        return  # a custom tool: name, description and input_schema
    if parts.shape == "chat" and kind is None and field_of(tool, "name") is not None:
        return  # a legacy ``functions`` entry
    if not isinstance(kind, str):
        raise InvalidInput(f"each tool needs a 'type' string, not {tool!r}")
    if parts.shape == "responses" and kind == "shell":
        # A hosted shell runs in OpenAI's containers; a local one on the client.
        environment = field_of(field_of(tool, "environment"), "type")
        if environment not in (None, "local"):
            parts.server_tools.append(ServerTool(f"shell ({environment})"))
            return
    client_types = CLIENT_TOOL_TYPES.get(parts.shape, ())
    if any(kind == prefix or kind.startswith(prefix) for prefix in client_types):
        for prefix, tokens in CLIENT_TOOL_PROMPT_TOKENS.items():
            if kind.startswith(prefix):
                parts.framing_tokens += tokens
                break
        return
    for prefix, (fee, loads) in BOUNDED_SERVER_TOOLS.get(parts.shape, {}).items():
        if kind.startswith(prefix):
            max_uses = (
                whole_number(tool, "max_uses", minimum=0) if isinstance(tool, Mapping) else None
            )
            parts.server_tools.append(ServerTool(kind, fee, True, max_uses, loads))
            return
    parts.server_tools.append(ServerTool(kind))
