"""Reading Anthropic's Messages request shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from capledger.errors import InvalidInput
from capledger.estimate._shapes._figures import (
    ANTHROPIC_STRUCTURED_OUTPUT_PROMPT_TOKENS,
    ANTHROPIC_TOKENS_PER_MESSAGE,
    ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS,
    TEMPLATE_SLACK_TOKENS,
)
from capledger.estimate._shapes._parts import (
    RequestParts,
    ServerTool,
    json_text,
    read_content,
    read_output_limit,
    read_schema,
    read_tools,
    read_unknown_keys,
    whole_number,
)

_ANTHROPIC_MESSAGE_KEYS: Final = frozenset({"role", "content"})


def read_anthropic(request: Mapping[str, Any], parts: RequestParts) -> None:
    """An Anthropic Messages request, into ``parts``."""
    read_output_limit(request, ("max_tokens",), parts)
    system = request.get("system")
    if system is not None:
        parts.framing_tokens += ANTHROPIC_TOKENS_PER_MESSAGE
        read_content(system, parts)
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise InvalidInput("an Anthropic request needs 'messages' as a list")
    for message in messages:
        if not isinstance(message, Mapping):
            raise InvalidInput(f"each message must be an object, not {message!r}")
        parts.framing_tokens += ANTHROPIC_TOKENS_PER_MESSAGE
        read_content(message.get("content"), parts)
        read_unknown_keys(message, _ANTHROPIC_MESSAGE_KEYS, parts)
    parts.framing_tokens += ANTHROPIC_TOKENS_PER_MESSAGE + TEMPLATE_SLACK_TOKENS
    tools = request.get("tools")
    read_tools(tools, parts)
    if tools:
        parts.framing_tokens += ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS
    if request.get("mcp_servers"):
        # The MCP connector: Anthropic calls remote servers, with no cap on calls.
        parts.opaque_texts.append(json_text(request["mcp_servers"]))
        parts.server_tools.append(ServerTool("mcp_servers"))
    if isinstance(request.get("tool_choice"), Mapping):
        parts.texts.append(json_text(request["tool_choice"]))
    schemas = [request.get(key) for key in ("output_config", "output_format")]
    for schema in schemas:
        read_schema(schema, parts)
    if any(schema is not None for schema in schemas):
        parts.framing_tokens += ANTHROPIC_STRUCTURED_OUTPUT_PROMPT_TOKENS
    _read_thinking(request.get("thinking"), parts)


def _read_thinking(thinking: object, parts: RequestParts) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, Mapping):
        raise InvalidInput(f"request thinking must be an object, not {thinking!r}")
    if thinking.get("type") == "enabled":
        budget = whole_number(thinking, "budget_tokens", minimum=0)
        if budget is None:
            raise InvalidInput("request thinking of type 'enabled' needs budget_tokens")
        # Thinking is spent inside max_tokens, which must stay above the budget.
        parts.min_output_tokens = budget + 1
