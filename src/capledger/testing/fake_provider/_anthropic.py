"""Anthropic's Messages reply bodies, as JSON and as server-sent events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from capledger.testing.fake_provider._calls import Plan
from capledger.testing.fake_provider._shared import StreamEvent, sse


def anthropic_usage(plan: Plan) -> dict[str, Any]:
    """A Messages usage: input without the cached and written tokens, as Anthropic reports it."""
    return {
        "input_tokens": plan.input_tokens - plan.cached_tokens - plan.cache_write_tokens,
        "cache_creation_input_tokens": plan.cache_write_tokens,
        "cache_read_input_tokens": plan.cached_tokens,
        "output_tokens": plan.output_tokens,
        "service_tier": "priority" if plan.priority else "standard",
    }


def _stop_reason(plan: Plan) -> str:
    return "max_tokens" if plan.truncated else "end_turn"


def _anthropic_content(plan: Plan) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if plan.thinking and plan.reasoning_tokens:
        content.append({"type": "thinking", "thinking": "", "signature": "fake-signature"})
    if plan.pieces or not plan.thinking:
        content.append({"type": "text", "text": plan.text, "citations": None})
    return content


def anthropic_json(plan: Plan, ident: int, omit_usage: bool) -> dict[str, Any]:
    """The Messages reply of a plan (no ``usage`` with ``omit_usage``)."""
    message: dict[str, Any] = {
        "id": f"msg_fake{ident}",
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": _anthropic_content(plan),
        "stop_reason": _stop_reason(plan),
        "stop_sequence": None,
    }
    if not omit_usage:
        message["usage"] = anthropic_usage(plan)
    return message


def anthropic_events(plan: Plan, ident: int, omit_usage: bool) -> Iterator[StreamEvent]:
    """The Messages stream of a plan, from ``message_start`` to ``message_stop``."""

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, **fields}, kind)

    started: dict[str, Any] = {
        "id": f"msg_fake{ident}",
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if not omit_usage:
        # As Anthropic does: the input side is final here, the output count is a placeholder
        # that message_delta replaces with the cumulative total.
        started["usage"] = {**anthropic_usage(plan), "output_tokens": min(1, plan.output_tokens)}
    yield ("head", event("message_start", message=started))
    index = 0
    if plan.thinking and plan.reasoning_tokens:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        yield ("head", event("content_block_start", index=0, content_block=block))
        signature = {"type": "signature_delta", "signature": "fake-signature"}
        yield ("head", event("content_block_delta", index=0, delta=signature))
        yield ("head", event("content_block_stop", index=0))
        index = 1
    if plan.pieces or not plan.thinking:
        text_block = {"type": "text", "text": "", "citations": None}
        yield ("head", event("content_block_start", index=index, content_block=text_block))
        yield from (
            (
                "content",
                event(
                    "content_block_delta",
                    index=index,
                    delta={"type": "text_delta", "text": piece},
                ),
            )
            for piece in plan.pieces
        )
        yield ("tail", event("content_block_stop", index=index))
    delta: dict[str, Any] = {
        "delta": {"stop_reason": _stop_reason(plan), "stop_sequence": None},
    }
    if not omit_usage:
        usage = anthropic_usage(plan)
        delta["usage"] = {key: value for key, value in usage.items() if key != "service_tier"}
    yield ("tail", event("message_delta", **delta))
    yield ("tail", event("message_stop"))
