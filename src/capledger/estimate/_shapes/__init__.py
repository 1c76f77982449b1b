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

The figures each reader adds, and why, are in ``_figures``; the shared readers (content,
parts, tools, schemas) in ``_parts``; each shape's reader in ``_openai`` or ``_anthropic``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from capledger.errors import InvalidInput
from capledger.estimate._shapes._anthropic import read_anthropic
from capledger.estimate._shapes._figures import (
    IMAGE_TOKENS_BY_MODEL_PREFIX,
    IMAGE_TOKENS_BY_PROVIDER,
    IMAGE_TOKENS_DEFAULT,
    MAX_REQUEST_DEPTH,
)
from capledger.estimate._shapes._openai import (
    STORED_INPUT_KEYS,
    read_chat,
    read_completions,
    read_embeddings,
    read_responses,
)
from capledger.estimate._shapes._parts import (
    SHAPES,
    RequestParts,
    ServerTool,
    Shape,
    field_of,
    json_text,
    read_unknown_keys,
)

__all__ = [
    "IMAGE_TOKENS_BY_MODEL_PREFIX",
    "IMAGE_TOKENS_BY_PROVIDER",
    "IMAGE_TOKENS_DEFAULT",
    "SHAPES",
    "RequestParts",
    "ServerTool",
    "Shape",
    "read_request",
]

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
            *STORED_INPUT_KEYS,
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
    if isinstance(tools, list) and any(field_of(tool, "input_schema") for tool in tools):
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
    parts.cache_writes = shape != "anthropic" or "cache_control" in json_text(request)
    for key in ("service_tier", "speed"):
        value = request.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"request {key} must be a string, not {value!r}")
    # As sent: the pricebook decides what an unpinned or unknown tier is held at.
    parts.service_tier = request.get("service_tier")
    parts.speed = request.get("speed") if shape == "anthropic" else None
    _READERS[shape](request, parts)
    read_unknown_keys(request, _READ_KEYS[shape] | _CONTROL_KEYS[shape], parts)
    return parts


_READERS: Final = {
    "chat": read_chat,
    "responses": read_responses,
    "anthropic": read_anthropic,
    "embeddings": read_embeddings,
    "completions": read_completions,
}
