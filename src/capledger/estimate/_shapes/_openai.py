"""Reading OpenAI's request shapes: Chat Completions, Responses, Embeddings and legacy
Completions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from capledger.errors import InvalidInput
from capledger.estimate._shapes._figures import (
    COMPLETIONS_DEFAULT_MAX_TOKENS,
    EMBEDDING_TOKENS_PER_INPUT,
    OPENAI_REPLY_PRIMING_TOKENS,
    OPENAI_TOKENS_PER_MESSAGE,
    OPENAI_TOKENS_PER_NAME,
    TEMPLATE_SLACK_TOKENS,
    TOKENS_PER_TOOL_CALL,
)
from capledger.estimate._shapes._parts import (
    RequestParts,
    ServerTool,
    field_of,
    json_text,
    read_content,
    read_output_limit,
    read_part,
    read_schema,
    read_strings,
    read_tools,
    read_unknown_keys,
    whole_number,
)

#: Responses keys that make the provider add stored input the request does not carry.
STORED_INPUT_KEYS: Final = ("previous_response_id", "conversation", "prompt")
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


def read_chat(request: Mapping[str, Any], parts: RequestParts) -> None:
    """An OpenAI Chat Completions request, into ``parts``."""
    read_output_limit(request, ("max_completion_tokens", "max_tokens"), parts)
    parts.choices = whole_number(request, "n", minimum=1) or 1
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise InvalidInput("an OpenAI chat request needs 'messages' as a list")
    for message in messages:
        _read_openai_message(message, parts)
    parts.framing_tokens += OPENAI_REPLY_PRIMING_TOKENS + TEMPLATE_SLACK_TOKENS
    read_tools(request.get("tools"), parts)
    read_tools(request.get("functions"), parts)
    for key in ("tool_choice", "function_call"):
        if isinstance(request.get(key), Mapping):
            parts.texts.append(json_text(request[key]))
    read_schema(request.get("response_format"), parts)
    _read_prediction(request.get("prediction"), parts)
    _read_output_modalities(request, parts)
    if request.get("web_search_options") is not None:
        # Chat Completions searches with no cap on the number of searches.
        parts.opaque_texts.append(json_text(request["web_search_options"]))
        parts.server_tools.append(ServerTool("web_search_options", "web_searches"))


def _read_prediction(prediction: object, parts: RequestParts) -> None:
    # Predicted tokens the model does not keep are billed as output, beyond the limit.
    if prediction is None:
        return
    content = field_of(prediction, "content")
    if isinstance(content, str):
        parts.extra_output_texts.append(content)
    elif isinstance(content, list):
        for part in content:
            text = field_of(part, "text")
            parts.extra_output_texts.append(text if isinstance(text, str) else json_text(part))
    else:
        parts.extra_output_texts.append(json_text(prediction))


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
    read_content(message.get("content"), parts)
    for call in message.get("tool_calls") or ():
        function = field_of(call, "function")
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        if isinstance(function, Mapping):
            read_strings(function.get("name"), parts)
            read_strings(function.get("arguments"), parts)
        else:
            parts.opaque_texts.append(json_text(call))
    function_call = message.get("function_call")
    if isinstance(function_call, Mapping):
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        read_strings(function_call.get("name"), parts)
        read_strings(function_call.get("arguments"), parts)
    if message.get("audio") is not None:
        # An earlier audio reply, by id: the model hears it again, and its length is not
        # in the request.
        parts.stored_input = True
        parts.modalities.add("audio")
    read_unknown_keys(message, _MESSAGE_KEYS, parts)


def read_responses(request: Mapping[str, Any], parts: RequestParts) -> None:
    """An OpenAI Responses request, into ``parts``."""
    read_output_limit(request, ("max_output_tokens",), parts)
    parts.max_tool_calls = whole_number(request, "max_tool_calls", minimum=0)
    parts.stored_input = any(request.get(key) is not None for key in STORED_INPUT_KEYS)
    for key in STORED_INPUT_KEYS:
        # A stored prompt's variables are sent along: count them too.
        if isinstance(request.get(key), Mapping):
            parts.opaque_texts.append(json_text(request[key]))
    instructions = request.get("instructions")
    if isinstance(instructions, str):
        parts.framing_tokens += OPENAI_TOKENS_PER_MESSAGE
        parts.texts.extend(("developer", instructions))
    elif instructions is not None:
        parts.opaque_texts.append(json_text(instructions))
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
    read_tools(request.get("tools"), parts)
    if isinstance(request.get("tool_choice"), Mapping):
        parts.texts.append(json_text(request["tool_choice"]))
    read_schema(request.get("text"), parts)
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
        read_strings(item.get("name"), parts)
        read_strings(item.get("arguments"), parts)
    elif kind == "function_call_output":
        parts.framing_tokens += TOKENS_PER_TOOL_CALL
        read_content(item.get("output"), parts)
    else:
        read_part(item, parts)


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


def read_embeddings(request: Mapping[str, Any], parts: RequestParts) -> None:
    """An OpenAI Embeddings request, into ``parts``."""
    if request.get("input") is None:
        raise InvalidInput("an embeddings request needs 'input'")
    inputs = _read_prompts(request.get("input"), "input")
    parts.texts.extend(inputs.texts)
    parts.given_tokens += inputs.given_tokens
    parts.framing_tokens += EMBEDDING_TOKENS_PER_INPUT * inputs.count + TEMPLATE_SLACK_TOKENS
    parts.output_tokens_bound = 0
    parts.min_output_tokens = 0


def read_completions(request: Mapping[str, Any], parts: RequestParts) -> None:
    """An OpenAI legacy Completions request, into ``parts``."""
    if "max_tokens" in request and request["max_tokens"] is None:
        # An explicit null asks for as much as the context allows: no bound here.
        raise InvalidInput("request max_tokens is null: pass a whole number")
    limit = whole_number(request, "max_tokens", minimum=0)
    parts.output_tokens_bound = COMPLETIONS_DEFAULT_MAX_TOKENS if limit is None else limit
    prompts = _read_prompts(request.get("prompt"), "prompt")
    parts.texts.extend(prompts.texts)
    parts.given_tokens += prompts.given_tokens
    read_strings(request.get("suffix"), parts)
    parts.framing_tokens += TEMPLATE_SLACK_TOKENS
    per_prompt = max(
        whole_number(request, "n", minimum=1) or 1, whole_number(request, "best_of", minimum=1) or 1
    )
    # Each prompt of a list gets its own completions; best_of are all generated and billed.
    parts.choices = per_prompt * max(prompts.count, 1)
    echo = request.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise InvalidInput(f"request echo must be true or false, not {echo!r}")
    if echo:
        parts.extra_output_texts.extend(prompts.texts)
        parts.extra_output_given_tokens += prompts.given_tokens
