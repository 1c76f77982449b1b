"""Reading a request: which texts the model will see, what framing is added around them,
what media it carries, and how many output tokens it may produce.

Shapes: ``chat`` (OpenAI Chat Completions), ``responses`` (OpenAI Responses), ``anthropic``
(Anthropic Messages), ``embeddings`` (OpenAI Embeddings) and ``completions`` (OpenAI's legacy
Completions). The first three are recognised from their keys; the last two must be named
(``shape=``), because a legacy ``prompt`` cannot be told from a Responses stored ``prompt``.

Fail closed on keys: each shape lists the top-level keys it reads and the control keys that
put nothing in front of the model (sampling, streaming, ids, metadata). **Every other
top-level key is counted as input, by the UTF-8 bytes of its JSON**: a field added by a new
SDK or merged in through ``extra_body`` may carry text the model reads, and over-counting it
only costs headroom. The same holds for unknown keys of a message.

Figures (tokens), and why:

- OpenAI chat framing, from OpenAI's token-counting cookbook: 3 per message (4 for the
  ``gpt-3.5-turbo-0301`` format; we take 4 so both are covered), 1 per ``name``, 3 to prime
  the reply. ``TEMPLATE_SLACK_TOKENS`` (16 per request) covers framing the cookbook does
  not document (reasoning models' system preamble).
- Tool definitions: the JSON of the definition (OpenAI renders it as a shorter TypeScript
  signature; Anthropic as JSON) plus 16 per tool and 32 per request for the surrounding
  namespace text. This is an argued bound, not a proven one: OpenAI does not publish the
  exact rendering.
- Structured output schemas (chat ``response_format``, Responses ``text``, Anthropic
  ``output_config`` / ``output_format``): the UTF-8 bytes of their JSON (a rendering no
  longer than the JSON cannot take more tokens than its bytes) plus 32 for the surrounding
  text. Anthropic also adds a system prompt for structured outputs and publishes no size
  for it; we take the 600 of its tool-use prompt.
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
  ``prompt``, an ``item_reference``; a chat assistant turn's ``audio`` id): the provider
  prepends input the request does not carry, and bills all of it as input, so the input is
  bounded by the model's whole context window.
- Audio and parts we do not recognise: the UTF-8 bytes of their JSON. Audio is billed at
  about 10 tokens a second and even 8 kbit/s audio takes 1,333 base64 bytes a second.
- Token arrays (embeddings ``input``, completions ``prompt`` given as token ids): their
  length, exactly. Embeddings add 2 per input (a start and an end marker, which some
  embedding tokenizers add) and 16 per request; embeddings produce no output tokens.
- Legacy completions: ``max_tokens`` defaults to 16 (OpenAI's documented default); each
  prompt of a list gets ``max(n, best_of)`` completions, all billed; ``suffix`` is input;
  with ``echo`` the prompt comes back in the text, and we hold it again as output (the
  dearer side: OpenAI does not document how echoed tokens are billed, and callers have
  measured them counted twice).
- Chat ``prediction`` (predicted outputs): rejected prediction tokens are billed at the
  output rate beyond ``max_completion_tokens``, so the prediction's tokens are held as output.
- Anthropic extended thinking: ``budget_tokens`` is spent inside ``max_tokens``; a limit at
  or below it is refused by Anthropic, so ``min_output_tokens`` is ``budget_tokens + 1``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from capledger.errors import InvalidInput

__all__ = ["SHAPES", "RequestParts", "ServerTool", "Shape", "read_request"]

Shape = Literal["chat", "responses", "anthropic", "embeddings", "completions"]
SHAPES: Final[tuple[Shape, ...]] = get_args(Shape)

OPENAI_TOKENS_PER_MESSAGE: Final = 4
OPENAI_TOKENS_PER_NAME: Final = 1
OPENAI_REPLY_PRIMING_TOKENS: Final = 3
TEMPLATE_SLACK_TOKENS: Final = 16
TOKENS_PER_TOOL_DEFINITION: Final = 16
TOKENS_PER_TOOLS_BLOCK: Final = 32
TOKENS_PER_TOOL_CALL: Final = 8
#: Text around a structured-output schema (as around a tools block).
TOKENS_PER_SCHEMA_BLOCK: Final = TOKENS_PER_TOOLS_BLOCK
ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS: Final = 600
#: Anthropic adds a system prompt for structured outputs and publishes no size for it; we
#: take its tool-use prompt's figure.
ANTHROPIC_STRUCTURED_OUTPUT_PROMPT_TOKENS: Final = ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS
#: Anthropic does not publish its chat framing; we allow as much as OpenAI's, twice over.
ANTHROPIC_TOKENS_PER_MESSAGE: Final = 2 * OPENAI_TOKENS_PER_MESSAGE
#: A start and an end marker around each embedded input (BERT-style tokenizers add both).
EMBEDDING_TOKENS_PER_INPUT: Final = 2
#: OpenAI's documented default ``max_tokens`` of a legacy completion.
COMPLETIONS_DEFAULT_MAX_TOKENS: Final = 16
#: How deeply a request may nest (objects and lists); JSON bodies of real requests nest a
#: dozen levels, and an unbounded depth would end in a RecursionError.
MAX_REQUEST_DEPTH: Final = 256

#: Tools the client runs whose description the provider writes, by type prefix: Anthropic
#: publishes 245 tokens for bash, 700 for the text editor, and 466-499 of system prompt plus
#: 735 per definition for computer use (1,234 at most); memory and OpenAI's client tools
#: have no published figure. We take 300, 800 and 1,500, and 1,500 for the rest.
CLIENT_TOOL_PROMPT_TOKENS: Final = {
    "bash_": 300,
    "text_editor_": 800,
    "computer": 1_500,
    "memory_": 1_500,
    "local_shell": 1_500,
    "shell": 1_500,
    "apply_patch": 1_500,
}
#: Types of tools the client executes (the provider only writes the call), per shape.
_CLIENT_TOOL_TYPES: Final[Mapping[str, tuple[str, ...]]] = {
    "chat": ("function", "custom"),
    "responses": (
        "function",
        "custom",
        "namespace",
        "computer_use_preview",
        "computer",
        "local_shell",
        "shell",
        "apply_patch",
    ),
    # Type prefixes (the versions are dated: bash_20250124, computer_20251124...).
    "anthropic": ("custom", "bash_", "text_editor_", "computer_", "memory_"),
}
#: Server-side tools we can bound, by type prefix: the genai-prices fee each call bills
#: (None: the provider documents no fee beyond tokens), and whether the tool loads
#: definitions the request does not carry (an MCP server's tool list).
_BOUNDED_SERVER_TOOLS: Final[Mapping[str, Mapping[str, tuple[str | None, bool]]]] = {
    "responses": {
        "web_search": ("web_searches", False),  # web_search, web_search_preview, dated
        "file_search": ("storage_searches", False),
        "mcp": (None, True),
    },
    "anthropic": {
        "web_search_": ("web_searches", False),
        "web_fetch_": (None, False),
    },
}

IMAGE_TOKENS_DEFAULT: Final = 5_000
IMAGE_TOKENS_BY_PROVIDER: Final = {"openai": 4_000, "azure": 4_000}
IMAGE_TOKENS_BY_MODEL_PREFIX: Final = {"gpt-4o-mini": 48_169}

_TEXT_PART_TYPES: Final = frozenset({"text", "input_text", "output_text", "refusal"})
_IMAGE_PART_TYPES: Final = frozenset({"image", "image_url", "input_image"})
_FILE_PART_TYPES: Final = frozenset({"file", "input_file", "document"})
_AUDIO_PART_TYPES: Final = frozenset({"input_audio", "audio"})
#: Responses keys that make the provider add stored input the request does not carry.
_STORED_INPUT_KEYS: Final = ("previous_response_id", "conversation", "prompt")

#: Keys every shape treats as control: they put nothing in front of the model.
_COMMON_CONTROL_KEYS: Final = frozenset(
    {"model", "stream", "stream_options", "metadata", "user", "temperature", "top_p"}
)
#: Per shape: the keys its reader reads, and the other control keys (sampling, logging,
#: caching hints, ids). Any other top-level key is counted as opaque input.
_READ_KEYS: Final[Mapping[Shape, frozenset[str]]] = {
    "chat": frozenset(
        {
            "messages",
            "tools",
            "functions",
            "tool_choice",
            "function_call",
            "response_format",
            "modalities",
            "audio",
            "max_completion_tokens",
            "max_tokens",
            "n",
            "service_tier",
            "prediction",
            "web_search_options",
        }
    ),
    "responses": frozenset(
        {
            "input",
            "instructions",
            "tools",
            "tool_choice",
            "text",
            "max_output_tokens",
            "max_tool_calls",
            "service_tier",
            *_STORED_INPUT_KEYS,
        }
    ),
    "anthropic": frozenset(
        {
            "system",
            "messages",
            "tools",
            "tool_choice",
            "max_tokens",
            "thinking",
            "output_config",
            "output_format",
            "service_tier",
            "speed",
            "cache_control",
            "mcp_servers",
        }
    ),
    "embeddings": frozenset({"input"}),
    "completions": frozenset({"prompt", "suffix", "max_tokens", "n", "best_of", "echo"}),
}
_CONTROL_KEYS: Final[Mapping[Shape, frozenset[str]]] = {
    "chat": _COMMON_CONTROL_KEYS
    | {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "parallel_tool_calls",
        "reasoning_effort",
        "verbosity",
        "safety_identifier",
        "seed",
        "stop",
        "store",
        "prompt_cache_key",
        "prompt_cache_retention",
    },
    "responses": _COMMON_CONTROL_KEYS
    | {
        "background",
        "include",
        "parallel_tool_calls",
        "reasoning",
        "safety_identifier",
        "store",
        "top_logprobs",
        "truncation",
        "prompt_cache_key",
        "prompt_cache_retention",
    },
    "anthropic": _COMMON_CONTROL_KEYS
    | {
        "stop_sequences",
        "top_k",
        "diagnostics",
        "user_profile_id",
        "workspace_id",
        "anthropic_version",  # Bedrock and Vertex AI name the API version in the body
        "anthropic_beta",
    },
    "embeddings": _COMMON_CONTROL_KEYS | {"dimensions", "encoding_format"},
    "completions": _COMMON_CONTROL_KEYS
    | {"frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "seed", "stop"},
}
#: Keys of a chat message (or a Responses message item) that are read or carry no text.
_MESSAGE_KEYS: Final = frozenset(
    {
        "role",
        "content",
        "name",
        "tool_calls",
        "tool_call_id",
        "function_call",
        "refusal",
        "audio",
        "id",
        "type",
        "status",
    }
)
_ANTHROPIC_MESSAGE_KEYS: Final = frozenset({"role", "content"})


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


def _plain(value: object, depth: int = 0) -> object:
    """The request as plain JSON values: SDK objects (pydantic models, as the tool loop
    appends them to ``messages``) become dicts, tuples become lists."""
    if depth > MAX_REQUEST_DEPTH:
        raise InvalidInput(f"the request nests deeper than {MAX_REQUEST_DEPTH} levels")
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Mapping):
        return {key: _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1) for item in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            dumped = dump(mode="json", exclude_none=True, by_alias=True)
        except Exception as error:
            raise InvalidInput(
                f"cannot read {type(value).__name__} in the request as JSON: {error}"
            ) from None
        return _plain(dumped, depth + 1)
    return value


def _detect_shape(request: Mapping[str, Any], provider: str | None) -> Shape:
    if "input" in request or "instructions" in request or "max_output_tokens" in request:
        return "responses"
    # anthropic_version is the body field of Claude on Bedrock and Vertex AI.
    if provider == "anthropic" or "system" in request or "anthropic_version" in request:
        return "anthropic"
    tools = request.get("tools")
    if isinstance(tools, list) and any(_field(tool, "input_schema") for tool in tools):
        return "anthropic"
    if "messages" in request:
        return "chat"
    raise InvalidInput(
        "unrecognised request: expected OpenAI chat 'messages', OpenAI Responses 'input', "
        "or Anthropic 'messages' with 'max_tokens' (embeddings and legacy completions "
        "requests need shape='embeddings' or shape='completions')"
    )


def read_request(
    request: Mapping[str, Any], provider: str | None, shape: Shape | None = None
) -> RequestParts:
    """Split a request into texts, framing, media and output limits.

    Args:
        request: the JSON body (SDK objects inside it are read through ``model_dump``).
        provider: the provider id, which helps recognise an Anthropic request.
        shape: the request's shape; ``None`` recognises chat, Responses and Anthropic
            requests from their keys.

    Raises:
        InvalidInput: the request is not a mapping of a known shape, or a limit is invalid.
    """
    if not isinstance(request, Mapping):
        raise InvalidInput(f"a request must be a JSON object (a mapping), not {request!r}")
    if shape is not None and shape not in SHAPES:
        raise InvalidInput(f"shape must be one of {SHAPES}, not {shape!r}")
    plain = _plain(request)
    if not isinstance(plain, Mapping):  # _plain keeps a mapping a mapping; keep mypy sure
        raise InvalidInput(f"a request must be a JSON object (a mapping), not {request!r}")
    request = plain
    shape = shape or _detect_shape(request, provider)
    parts = RequestParts(shape)
    # Anthropic writes the prompt cache only where cache_control asks; OpenAI (and others
    # behind the chat and Responses shapes) cache automatically, and some bill the writes.
    parts.cache_writes = shape != "anthropic" or "cache_control" in _json(request)
    for key in ("service_tier", "speed"):
        value = request.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"request {key} must be a string, not {value!r}")
    # As sent: the pricebook decides what an unpinned or unknown tier is held at.
    parts.service_tier = request.get("service_tier")
    parts.speed = request.get("speed") if shape == "anthropic" else None
    _READERS[shape](request, parts)
    _read_unknown_keys(request, _READ_KEYS[shape] | _CONTROL_KEYS[shape], parts)
    return parts


def _read_unknown_keys(
    value: Mapping[str, Any], known: frozenset[str], parts: RequestParts
) -> None:
    # A key we do not know may carry text the model reads; its JSON bytes bound it.
    for key, item in value.items():
        if key not in known and item is not None:
            parts.opaque_texts.append(_json({key: item}))


def _read_output_limit(
    request: Mapping[str, Any], keys: Sequence[str], parts: RequestParts
) -> None:
    limits = [limit for key in keys if (limit := _whole(request, key, minimum=0)) is not None]
    # Two limits given: the provider may honour either, so the larger bounds the output.
    parts.output_tokens_bound = max(limits) if limits else None


def _read_schema(value: object, parts: RequestParts) -> None:
    if value is None:
        return
    parts.framing_tokens += TOKENS_PER_SCHEMA_BLOCK
    parts.opaque_texts.append(value if isinstance(value, str) else _json(value))


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
    for key in ("tool_choice", "function_call"):
        if isinstance(request.get(key), Mapping):
            parts.texts.append(_json(request[key]))
    _read_schema(request.get("response_format"), parts)
    _read_prediction(request.get("prediction"), parts)
    _read_output_modalities(request, parts)
    if request.get("web_search_options") is not None:
        # Chat Completions searches with no cap on the number of searches.
        parts.opaque_texts.append(_json(request["web_search_options"]))
        parts.server_tools.append(ServerTool("web_search_options", "web_searches"))


def _read_prediction(prediction: object, parts: RequestParts) -> None:
    # Predicted tokens the model does not keep are billed as output, beyond the limit.
    if prediction is None:
        return
    content = _field(prediction, "content")
    if isinstance(content, str):
        parts.extra_output_texts.append(content)
    elif isinstance(content, list):
        for part in content:
            text = _field(part, "text")
            parts.extra_output_texts.append(text if isinstance(text, str) else _json(part))
    else:
        parts.extra_output_texts.append(_json(prediction))


def _read_output_modalities(request: Mapping[str, Any], parts: RequestParts) -> None:
    modalities = request.get("modalities")
    if isinstance(modalities, list):
        parts.output_modalities.update(str(item) for item in modalities if item != "text")
    if request.get("audio") is not None:
        parts.output_modalities.add("audio")


def _read_openai_message(message: object, parts: RequestParts) -> None:
    if not isinstance(message, Mapping):
        raise InvalidInput(f"each message must be an object, not {message!r}")
    parts.framing_tokens += OPENAI_TOKENS_PER_MESSAGE
    for key in ("role", "tool_call_id", "refusal"):
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
    if message.get("audio") is not None:
        # An earlier audio reply, by id: the model hears it again, and its length is not
        # in the request.
        parts.stored_input = True
        parts.modalities.add("audio")
    _read_unknown_keys(message, _MESSAGE_KEYS, parts)


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
    elif kind == "item_reference":  # Responses: a stored item, by id
        parts.stored_input = True
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
        _classify_tool(tool, parts)


def _classify_tool(tool: object, parts: RequestParts) -> None:
    """Note a tool the provider runs itself, and the prompt a typed client tool adds."""
    kind = _field(tool, "type")
    if parts.shape == "anthropic" and kind is None:
        return  # a custom tool: name, description and input_schema
    if parts.shape == "chat" and kind is None and _field(tool, "name") is not None:
        return  # a legacy ``functions`` entry
    if not isinstance(kind, str):
        raise InvalidInput(f"each tool needs a 'type' string, not {tool!r}")
    if parts.shape == "responses" and kind == "shell":
        # A hosted shell runs in OpenAI's containers; a local one on the client.
        environment = _field(_field(tool, "environment"), "type")
        if environment not in (None, "local"):
            parts.server_tools.append(ServerTool(f"shell ({environment})"))
            return
    client_types = _CLIENT_TOOL_TYPES.get(parts.shape, ())
    if any(kind == prefix or kind.startswith(prefix) for prefix in client_types):
        for prefix, tokens in CLIENT_TOOL_PROMPT_TOKENS.items():
            if kind.startswith(prefix):
                parts.framing_tokens += tokens
                break
        return
    for prefix, (fee, loads) in _BOUNDED_SERVER_TOOLS.get(parts.shape, {}).items():
        if kind.startswith(prefix):
            max_uses = _whole(tool, "max_uses", minimum=0) if isinstance(tool, Mapping) else None
            parts.server_tools.append(ServerTool(kind, fee, True, max_uses, loads))
            return
    parts.server_tools.append(ServerTool(kind))


def _read_responses(request: Mapping[str, Any], parts: RequestParts) -> None:
    _read_output_limit(request, ("max_output_tokens",), parts)
    parts.max_tool_calls = _whole(request, "max_tool_calls", minimum=0)
    parts.stored_input = any(request.get(key) is not None for key in _STORED_INPUT_KEYS)
    for key in _STORED_INPUT_KEYS:
        # A stored prompt's variables are sent along: count them too.
        if isinstance(request.get(key), Mapping):
            parts.opaque_texts.append(_json(request[key]))
    instructions = request.get("instructions")
    if isinstance(instructions, str):
        parts.framing_tokens += OPENAI_TOKENS_PER_MESSAGE
        parts.texts.extend(("developer", instructions))
    elif instructions is not None:
        parts.opaque_texts.append(_json(instructions))
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
    if isinstance(request.get("tool_choice"), Mapping):
        parts.texts.append(_json(request["tool_choice"]))
    _read_schema(request.get("text"), parts)
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
        _read_unknown_keys(message, _ANTHROPIC_MESSAGE_KEYS, parts)
    parts.framing_tokens += ANTHROPIC_TOKENS_PER_MESSAGE + TEMPLATE_SLACK_TOKENS
    tools = request.get("tools")
    _read_tools(tools, parts)
    if tools:
        parts.framing_tokens += ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS
    if request.get("mcp_servers"):
        # The MCP connector: Anthropic calls remote servers, with no cap on calls.
        parts.opaque_texts.append(_json(request["mcp_servers"]))
        parts.server_tools.append(ServerTool("mcp_servers"))
    if isinstance(request.get("tool_choice"), Mapping):
        parts.texts.append(_json(request["tool_choice"]))
    schemas = [request.get(key) for key in ("output_config", "output_format")]
    for schema in schemas:
        _read_schema(schema, parts)
    if any(schema is not None for schema in schemas):
        parts.framing_tokens += ANTHROPIC_STRUCTURED_OUTPUT_PROMPT_TOKENS
    _read_thinking(request.get("thinking"), parts)


def _read_thinking(thinking: object, parts: RequestParts) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, Mapping):
        raise InvalidInput(f"request thinking must be an object, not {thinking!r}")
    if thinking.get("type") == "enabled":
        budget = _whole(thinking, "budget_tokens", minimum=0)
        if budget is None:
            raise InvalidInput("request thinking of type 'enabled' needs budget_tokens")
        # Thinking is spent inside max_tokens, which must stay above the budget.
        parts.min_output_tokens = budget + 1


@dataclass(slots=True)
class _Prompts:
    texts: list[str] = field(default_factory=list)
    given_tokens: int = 0
    count: int = 0


def _token_array(value: list[Any], key: str) -> int | None:
    """The length of a list of token ids, or None when it is not one."""
    if not value or not all(isinstance(item, int) for item in value):
        return None
    if any(isinstance(item, bool) or item < 0 for item in value):
        raise InvalidInput(f"request {key} token ids must be whole numbers >= 0")
    return len(value)


def _read_prompts(value: object, key: str) -> _Prompts:
    """A string, a list of strings, a token array, or a list of token arrays."""
    prompts = _Prompts()
    if value is None:
        return prompts
    if isinstance(value, str):
        prompts.texts.append(value)
        prompts.count = 1
        return prompts
    if not isinstance(value, list):
        raise InvalidInput(
            f"request {key} must be a string, a list of strings, or token ids, not {value!r}"
        )
    tokens = _token_array(value, key)
    if tokens is not None:
        prompts.given_tokens, prompts.count = tokens, 1
        return prompts
    for item in value:
        if isinstance(item, str):
            prompts.texts.append(item)
        elif isinstance(item, list) and (tokens := _token_array(item, key)) is not None:
            prompts.given_tokens += tokens
        elif isinstance(item, list) and not item:
            pass  # an empty token array: no tokens
        else:
            raise InvalidInput(
                f"each item of request {key} must be a string or a list of token ids, not {item!r}"
            )
        prompts.count += 1
    return prompts


def _read_embeddings(request: Mapping[str, Any], parts: RequestParts) -> None:
    if request.get("input") is None:
        raise InvalidInput("an embeddings request needs 'input'")
    inputs = _read_prompts(request.get("input"), "input")
    parts.texts.extend(inputs.texts)
    parts.given_tokens += inputs.given_tokens
    parts.framing_tokens += EMBEDDING_TOKENS_PER_INPUT * inputs.count + TEMPLATE_SLACK_TOKENS
    parts.output_tokens_bound = 0
    parts.min_output_tokens = 0


def _read_completions(request: Mapping[str, Any], parts: RequestParts) -> None:
    if "max_tokens" in request and request["max_tokens"] is None:
        # An explicit null asks for as much as the context allows: no bound here.
        raise InvalidInput("request max_tokens is null: pass a whole number")
    limit = _whole(request, "max_tokens", minimum=0)
    parts.output_tokens_bound = COMPLETIONS_DEFAULT_MAX_TOKENS if limit is None else limit
    prompts = _read_prompts(request.get("prompt"), "prompt")
    parts.texts.extend(prompts.texts)
    parts.given_tokens += prompts.given_tokens
    _read_strings(request.get("suffix"), parts)
    parts.framing_tokens += TEMPLATE_SLACK_TOKENS
    per_prompt = max(
        _whole(request, "n", minimum=1) or 1, _whole(request, "best_of", minimum=1) or 1
    )
    # Each prompt of a list gets its own completions; best_of are all generated and billed.
    parts.choices = per_prompt * max(prompts.count, 1)
    echo = request.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise InvalidInput(f"request echo must be true or false, not {echo!r}")
    if echo:
        parts.extra_output_texts.extend(prompts.texts)
        parts.extra_output_given_tokens += prompts.given_tokens


_READERS: Final = {
    "chat": _read_chat,
    "responses": _read_responses,
    "anthropic": _read_anthropic,
    "embeddings": _read_embeddings,
    "completions": _read_completions,
}
