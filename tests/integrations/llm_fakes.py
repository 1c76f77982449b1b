"""A fake LLM provider behind the real SDKs' HTTP layer (``MockTransport``): no network.

It speaks OpenAI Chat Completions, OpenAI Responses and Anthropic Messages, as JSON and as
SSE streams, and bills like a real provider: exactly the tokens it produced, never more
output than the ``max_tokens`` it was sent.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import ROUND_CEILING, Decimal
from typing import Any

WORD = "tok "  # one output token


def http_module(sdk: Any) -> Any:
    """The httpx flavour the SDK is built on: ``httpx2`` (openai>=3, anthropic>=2) or httpx."""
    base = sdk._base_client
    return getattr(base, "httpx2", None) or base.httpx


def ceil_nano(value: Decimal) -> Decimal:
    """Round up to the nano-USD, as a provider's invoice would never round in our favour."""
    return value.quantize(Decimal("1e-9"), rounding=ROUND_CEILING)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


class FakeProvider:
    """Serves canned replies; bills ``input x in_rate + output x out_rate`` per call.

    Args:
        in_rate, out_rate, cache_rate: USD per million tokens (gpt-4o-mini's by default).
        want: how many output tokens the model would like to write for a request (it writes
            ``min(want, max_tokens)``); a fixed number or a function of the body.
        cached, reasoning: cached input and reasoning tokens to report (non-stream replies).
        drop_after: for streams, raise a read error after this many content events.
        status: answer every request with this HTTP error status instead.
    """

    def __init__(
        self,
        httpx: Any,
        *,
        in_rate: str = "0.15",
        out_rate: str = "0.60",
        cache_rate: str = "0.075",
        want: int | Callable[[dict[str, Any]], int] = 5,
        cached: int = 0,
        reasoning: int = 0,
        drop_after: int | None = None,
        status: int | None = None,
    ) -> None:
        self.httpx = httpx
        self.in_rate = Decimal(in_rate) / 1_000_000
        self.out_rate = Decimal(out_rate) / 1_000_000
        self.cache_rate = Decimal(cache_rate) / 1_000_000
        self.want = want
        self.cached = cached
        self.reasoning = reasoning
        self.drop_after = drop_after
        self.status = status
        self.bill = Decimal(0)
        self.calls = 0
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # --- billing ---------------------------------------------------------------------------

    def _input_tokens(self, body: dict[str, Any]) -> int:
        # Fewer than any tokenizer's count plus framing: the provider is honest.
        texts = [_text_of(m.get("content")) for m in body.get("messages", [])]
        if isinstance(body.get("input"), str):
            texts.append(body["input"])
        if isinstance(body.get("system"), str):
            texts.append(body["system"])
        return sum(len(text.split()) for text in texts) // 2 + 1

    def _output_tokens(self, body: dict[str, Any]) -> int:
        limit = (
            body.get("max_completion_tokens")
            or body.get("max_tokens")
            or body.get("max_output_tokens")
        )
        if limit is None:
            raise AssertionError("a guarded request must carry an output limit")
        want = self.want(body) if callable(self.want) else self.want
        return min(want, int(limit))

    def _charge(self, input_tokens: int, output_tokens: int) -> None:
        cached = min(self.cached, input_tokens)
        cost = ceil_nano(
            (input_tokens - cached) * self.in_rate
            + cached * self.cache_rate
            + output_tokens * self.out_rate
        )
        with self._lock:
            self.bill += cost
            self.calls += 1

    # --- HTTP ------------------------------------------------------------------------------

    def transport(self) -> Any:
        return self.httpx.MockTransport(self.handle)

    def handle(self, request: Any) -> Any:
        body = json.loads(request.content or b"{}")
        with self._lock:
            self.bodies.append(body)
        if self.status is not None:
            return self.httpx.Response(
                self.status, json={"error": {"message": "boom", "type": "server_error"}}
            )
        path = request.url.path
        input_tokens = self._input_tokens(body)
        output_tokens = self._output_tokens(body)
        model = body.get("model", "m")
        stream = bool(body.get("stream"))
        if path.endswith("/chat/completions"):
            events = self._chat(model, body, input_tokens, output_tokens, stream)
        elif path.endswith("/responses"):
            events = self._responses(model, input_tokens, output_tokens, stream)
        elif path.endswith("/messages"):
            events = self._anthropic(model, input_tokens, output_tokens, stream)
        else:
            raise AssertionError(f"unexpected path {path}")
        if not stream:
            self._charge(input_tokens, output_tokens)
            return self.httpx.Response(200, json=events)
        return self.httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_sse_class(self.httpx)(self, events, input_tokens, output_tokens),
        )

    # --- shapes ----------------------------------------------------------------------------

    def _chat(self, model: str, body: dict[str, Any], p: int, k: int, stream: bool) -> Any:
        usage = {
            "prompt_tokens": p,
            "completion_tokens": k,
            "total_tokens": p + k,
            "prompt_tokens_details": {"cached_tokens": min(self.cached, p)},
            "completion_tokens_details": {"reasoning_tokens": min(self.reasoning, k)},
        }
        base = {"id": "chatcmpl-1", "created": 0, "model": model}
        if not stream:
            return {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": WORD * k},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        chunk = {**base, "object": "chat.completion.chunk"}
        events: list[tuple[str | None, Any, bool]] = []
        for _ in range(k):
            delta = {"index": 0, "delta": {"content": WORD}, "finish_reason": None}
            events.append((None, {**chunk, "choices": [delta]}, True))
        done = {"index": 0, "delta": {}, "finish_reason": "length"}
        events.append((None, {**chunk, "choices": [done]}, False))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**chunk, "choices": [], "usage": usage}, False))
        events.append((None, "[DONE]", False))
        return events

    def _responses(self, model: str, p: int, k: int, stream: bool) -> Any:
        usage = {
            "input_tokens": p,
            "input_tokens_details": {"cached_tokens": min(self.cached, p)},
            "output_tokens": k,
            "output_tokens_details": {"reasoning_tokens": min(self.reasoning, k)},
            "total_tokens": p + k,
        }
        message = {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": WORD * k, "annotations": []}],
        }
        response = {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": model,
            "output": [message],
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
        }
        if not stream:
            return response
        events: list[tuple[str | None, Any, bool]] = []
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        events.append(
            ("response.created", {"type": "response.created", "response": started}, False)
        )
        for index in range(k):
            delta = {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": WORD,
                "sequence_number": index + 1,
                "logprobs": [],
            }
            events.append(("response.output_text.delta", delta, True))
        completed = {"type": "response.completed", "response": response, "sequence_number": k + 1}
        events.append(("response.completed", completed, False))
        return events

    def _anthropic(self, model: str, p: int, k: int, stream: bool) -> Any:
        cached = min(self.cached, p)
        usage = {
            "input_tokens": p - cached,  # Anthropic's input_tokens leave the cache out
            "output_tokens": k,
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0,
        }
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": WORD * k}],
            "stop_reason": "max_tokens",
            "stop_sequence": None,
            "usage": usage,
        }
        if not stream:
            return message
        events: list[tuple[str | None, Any, bool]] = []
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events.append(("message_start", {"type": "message_start", "message": start}, False))
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        events.append(("content_block_start", block, False))
        for _ in range(k):
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": WORD},
            }
            events.append(("content_block_delta", delta, True))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}, False))
        final = {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {"output_tokens": k},
        }
        events.append(("message_delta", final, False))
        events.append(("message_stop", {"type": "message_stop"}, False))
        return events


_SSE_CLASSES: dict[int, type] = {}


def _sse_class(httpx: Any) -> type:
    """``_SSE`` as a byte stream of this httpx flavour (its transports check the type)."""
    if id(httpx) not in _SSE_CLASSES:
        _SSE_CLASSES[id(httpx)] = type(
            "SSEBody", (_SSE, httpx.SyncByteStream, httpx.AsyncByteStream), {}
        )
    return _SSE_CLASSES[id(httpx)]


class _SSE:
    """An SSE body for both sync and async clients; bills when the body is fully sent, or
    what was sent when the connection drops (a provider bills what it generated)."""

    def __init__(
        self, provider: FakeProvider, events: list[tuple[str | None, Any, bool]], p: int, k: int
    ) -> None:
        self.provider = provider
        self.events = events
        self.p = p
        self.k = k
        self.billed = False  # an SDK may drain a body it already read: bill it once
        self.generator: Iterator[bytes] | None = None

    def _frames(self) -> Iterator[bytes]:
        if self.billed:
            return
        sent = 0
        provider = self.provider
        try:
            for name, data, is_content in self.events:
                if provider.drop_after is not None and sent >= provider.drop_after:
                    raise provider.httpx.RemoteProtocolError("peer closed connection mid-stream")
                payload = data if isinstance(data, str) else json.dumps(data)
                head = f"event: {name}\n" if name else ""
                yield f"{head}data: {payload}\n\n".encode()
                sent += is_content
        finally:
            # Completed, dropped or abandoned by the client: bill what was generated.
            self.billed = True
            provider._charge(self.p, sent)

    def _shared(self) -> Iterator[bytes]:
        # One generator for every pass: a second pass (a drain) continues the first.
        if self.generator is None:
            self.generator = self._frames()
        return self.generator

    def __iter__(self) -> Iterator[bytes]:
        return self._shared()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self._shared():
            yield frame

    def close(self) -> None:
        # The client hung up: the provider stops generating and bills what it sent.
        if self.generator is not None:
            self.generator.close()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        self.close()


def random_prompt(rng: random.Random) -> str:
    """A prompt of 1 to 60 random words."""
    return " ".join(
        rng.choice(["alpha", "beta", "gamma", "delta", "omega"]) for _ in range(rng.randint(1, 60))
    )


def openai_clients(fake: FakeProvider) -> tuple[Any, Any]:
    """A sync and an async ``openai`` client over the fake (no retries: one request each)."""
    import openai

    hx = fake.httpx
    sync = openai.OpenAI(
        api_key="test", http_client=hx.Client(transport=fake.transport()), max_retries=0
    )
    async_ = openai.AsyncOpenAI(
        api_key="test", http_client=hx.AsyncClient(transport=fake.transport()), max_retries=0
    )
    return sync, async_


def anthropic_clients(fake: FakeProvider) -> tuple[Any, Any]:
    """A sync and an async ``anthropic`` client over the fake."""
    import anthropic

    hx = fake.httpx
    sync = anthropic.Anthropic(
        api_key="test", http_client=hx.Client(transport=fake.transport()), max_retries=0
    )
    async_ = anthropic.AsyncAnthropic(
        api_key="test", http_client=hx.AsyncClient(transport=fake.transport()), max_retries=0
    )
    return sync, async_


def journal_is_clean(holds: list[Any], report: Any) -> None:
    """No hold left open, and the ledger agrees with its journal."""
    assert [hold for hold in holds if hold.state == "open"] == []
    assert report.ok, report
