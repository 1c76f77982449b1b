"""OpenAI's reply bodies, as JSON and as server-sent events: chat completions, Responses
and embeddings."""

from __future__ import annotations

import base64
import itertools
import struct
from collections.abc import Iterator, Mapping
from typing import Any, Final

from capledger.testing.fake_provider._calls import Plan
from capledger.testing.fake_provider._shared import StreamEvent, sse

_EMBEDDING: Final = (0.125, -0.25, 0.5, 0.0)


def _openai_tier(plan: Plan) -> str:
    return "priority" if plan.priority else "default"


def chat_usage(plan: Plan) -> dict[str, Any]:
    """A chat completion's usage, reasoning tokens counted per choice."""
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": plan.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": plan.choices * plan.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def responses_usage(plan: Plan) -> dict[str, Any]:
    """A Responses usage."""
    return {
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {"cached_tokens": plan.cached_tokens},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }


def embeddings_usage(plan: Plan) -> dict[str, Any]:
    """An embeddings usage: input only."""
    return {"prompt_tokens": plan.input_tokens, "total_tokens": plan.input_tokens}


def _finish_reason(plan: Plan) -> str:
    return "length" if plan.truncated else "stop"


def chat_json(plan: Plan, ident: str, created: int, omit_usage: bool) -> dict[str, Any]:
    """The chat completion of a plan (``usage`` null with ``omit_usage``)."""
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": plan.model,
        "service_tier": _openai_tier(plan),
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": index,
                "message": {
                    "role": "assistant",
                    "content": plan.text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": _finish_reason(plan),
            }
            for index in range(plan.choices)
        ],
        "usage": None if omit_usage else chat_usage(plan),
    }


def chat_events(
    plan: Plan, ident: str, created: int, body: Mapping[str, Any], omit_usage: bool
) -> Iterator[StreamEvent]:
    """The chat completion chunks of a plan; the usage chunk only when the request asks."""
    options = body.get("stream_options")
    include_usage = (
        isinstance(options, Mapping) and options.get("include_usage") is True and not omit_usage
    )

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "service_tier": _openai_tier(plan),
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if include_usage:
            data["usage"] = None
        return data

    def choice(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    for index in range(plan.choices):
        opening = {"role": "assistant", "content": "", "refusal": None}
        yield ("head", sse(chunk([choice(index, opening, None)])))
    for index in range(plan.choices):
        yield from (
            ("content", sse(chunk([choice(index, {"content": piece}, None)])))
            for piece in plan.pieces
        )
    for index in range(plan.choices):
        yield ("tail", sse(chunk([choice(index, {}, _finish_reason(plan))])))
    if include_usage:
        final = chunk([])
        final["usage"] = chat_usage(plan)
        yield ("tail", sse(final))
    yield ("tail", sse("[DONE]"))


def _responses_object(
    plan: Plan,
    ident: str,
    created: int,
    body: Mapping[str, Any],
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    text_config = body.get("text") if isinstance(body.get("text"), Mapping) else None
    return {
        "id": ident,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": ({"reason": "max_output_tokens"} if status == "incomplete" else None),
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": _openai_tier(plan),
        "store": True,
        "temperature": 1.0,
        "text": text_config or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _responses_items(plan: Plan, ident: int, *, done: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if plan.reasoning_tokens:
        items.append({"type": "reasoning", "id": f"rs_fake{ident}", "summary": []})
    status = "incomplete" if plan.truncated else "completed"
    items.append(
        {
            "type": "message",
            "id": f"msg_fake{ident}",
            "status": status if done else "in_progress",
            "role": "assistant",
            "content": ([_output_text(plan.text)] if done else []),
        }
    )
    return items


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def responses_json(
    plan: Plan, ident: int, created: int, body: Mapping[str, Any], omit_usage: bool
) -> dict[str, Any]:
    """The Responses reply of a plan (``usage`` null with ``omit_usage``)."""
    return _responses_object(
        plan,
        f"resp_fake{ident}",
        created,
        body,
        status="incomplete" if plan.truncated else "completed",
        output=_responses_items(plan, ident, done=True),
        usage=None if omit_usage else responses_usage(plan),
    )


def responses_events(
    plan: Plan, ident: int, created: int, body: Mapping[str, Any], omit_usage: bool
) -> Iterator[StreamEvent]:
    """The Responses stream of a plan, from ``response.created`` to its final event."""
    sequence = itertools.count(0)
    response_id = f"resp_fake{ident}"
    message_id = f"msg_fake{ident}"

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    pending = _responses_object(
        plan, response_id, created, body, status="in_progress", output=[], usage=None
    )
    yield ("head", event("response.created", response=pending))
    yield ("head", event("response.in_progress", response=pending))
    final_items = _responses_items(plan, ident, done=True)
    message_index = len(final_items) - 1
    if plan.reasoning_tokens:
        reasoning_item = final_items[0]
        yield ("head", event("response.output_item.added", output_index=0, item=reasoning_item))
        yield ("head", event("response.output_item.done", output_index=0, item=reasoning_item))
    opened = _responses_items(plan, ident, done=False)[-1]
    where = {"item_id": message_id, "output_index": message_index, "content_index": 0}
    yield ("head", event("response.output_item.added", output_index=message_index, item=opened))
    yield ("head", event("response.content_part.added", **where, part=_output_text("")))
    yield from (
        ("content", event("response.output_text.delta", **where, delta=piece, logprobs=[]))
        for piece in plan.pieces
    )
    yield ("tail", event("response.output_text.done", **where, text=plan.text, logprobs=[]))
    yield ("tail", event("response.content_part.done", **where, part=_output_text(plan.text)))
    yield (
        (
            "tail",
            event(
                "response.output_item.done",
                output_index=message_index,
                item=final_items[-1],
            ),
        )
    )
    final = responses_json(plan, ident, created, body, omit_usage)
    kind = "response.incomplete" if plan.truncated else "response.completed"
    yield ("tail", event(kind, response=final))


def embeddings_json(plan: Plan, body: Mapping[str, Any], omit_usage: bool) -> dict[str, Any]:
    """The embeddings reply: one small vector per input."""
    embedded = body.get("input")
    count = len(embedded) if isinstance(embedded, list) and embedded else 1
    if isinstance(embedded, list) and embedded and isinstance(embedded[0], int):
        count = 1  # one prompt given as token ids
    vector: Any = list(_EMBEDDING)
    if body.get("encoding_format") == "base64":
        vector = base64.b64encode(struct.pack(f"<{len(_EMBEDDING)}f", *_EMBEDDING)).decode()
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": vector} for index in range(count)
        ],
        "model": plan.model,
        "usage": None if omit_usage else embeddings_usage(plan),
    }
