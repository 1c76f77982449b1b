"""A fake LLM provider behind the real SDKs' HTTP layer (``MockTransport``): no network.

It speaks OpenAI Chat Completions, Responses, Embeddings and legacy Completions and
Anthropic Messages, as JSON and as SSE streams, and bills like a real provider: exactly the
tokens it produced, never more output than the ``max_tokens`` it was sent. It also answers
a few free endpoints (``GET models``, ``moderations``, ``messages/count_tokens``), which it
does not bill, and ``images/generations``, which it bills a flat fee capledger cannot price.
Every request that reaches it is recorded (``requests``), so a test can tell what was sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

WORD = "tok "  # one output token
IMAGE_FEE = Decimal("0.04")  # what one generated image costs: no token usage to price
#: The retry delay an error reply asks for (1 ms), so a test of SDK retries does not wait.
RETRY_AFTER_MS = "1"


def http_module(sdk: Any) -> Any:
    """The httpx flavour the SDK is built on: ``httpx2`` (openai>=3, anthropic>=2) or httpx."""
    base = sdk._base_client
    return getattr(base, "httpx2", None) or base.httpx


def ceil_nano(value: Decimal) -> Decimal:
    """Round up to the nano-USD, as a provider's invoice would never round in our favour."""
    return value.quantize(Decimal("1e-9"), rounding=ROUND_CEILING)


@dataclass(frozen=True)
class Seen:
    """One request as it reached the provider."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


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
        statuses: answer the first requests with these statuses in turn (200: answer
            normally), e.g. ``(500, 500)`` then normal replies. An error is not billed.
        raises: raise this exception of the HTTP module (``"ReadTimeout"``,
            ``"ConnectError"``) instead of answering, as a transport would.
        usage: ``False`` for a provider that reports no usage (some compatible servers):
            none in JSON replies, and no usage chunk in Chat or Completions streams even
            when asked for one.
        garbage: answer 200 with a body that is not JSON (billed: the work was done).
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
        statuses: Sequence[int] = (),
        raises: str | None = None,
        usage: bool = True,
        garbage: bool = False,
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
        self.statuses = list(statuses)
        self.raises = raises
        self.usage = usage
        self.garbage = garbage
        self.bill = Decimal(0)
        self.calls = 0
        #: The JSON bodies of the POST requests that reached the provider.
        self.bodies: list[dict[str, Any]] = []
        #: Every request that reached the provider, in order.
        self.requests: list[Seen] = []
        self._lock = threading.Lock()

    # --- billing ---------------------------------------------------------------------------

    def _input_tokens(self, body: dict[str, Any]) -> int:
        # Fewer than any tokenizer's count plus framing: the provider is honest.
        texts = [_text_of(m.get("content")) for m in body.get("messages", [])]
        for key in ("input", "prompt", "system"):
            value = body.get(key)
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, list):
                texts.extend(item for item in value if isinstance(item, str))
        return sum(len(text.split()) for text in texts) // 2 + 1

    def _limit(self, body: dict[str, Any]) -> int | None:
        limit = (
            body.get("max_completion_tokens")
            or body.get("max_tokens")
            or body.get("max_output_tokens")
        )
        return None if limit is None else int(limit)

    def _wanted(self, body: dict[str, Any]) -> int:
        return self.want(body) if callable(self.want) else self.want

    def _output_tokens(self, body: dict[str, Any]) -> int:
        limit = self._limit(body)
        if limit is None:
            raise AssertionError("a guarded request must carry an output limit")
        return min(self._wanted(body), limit)

    def _charge(self, input_tokens: int, output_tokens: int) -> None:
        cached = min(self.cached, input_tokens)
        cost = ceil_nano(
            (input_tokens - cached) * self.in_rate
            + cached * self.cache_rate
            + output_tokens * self.out_rate
        )
        self._add(cost)

    def _add(self, cost: Decimal) -> None:
        with self._lock:
            self.bill += cost
            self.calls += 1

    # --- HTTP ------------------------------------------------------------------------------

    def transport(self) -> Any:
        return self.httpx.MockTransport(self.handle)

    def handle(self, request: Any) -> Any:
        body = json.loads(request.content or b"null")
        path = request.url.path
        with self._lock:
            self.requests.append(Seen(request.method, path, dict(request.headers), body))
            if isinstance(body, dict):
                self.bodies.append(body)
            status = self.statuses.pop(0) if self.statuses else self.status
        if self.raises is not None:
            raise getattr(self.httpx, self.raises)("the fake provider failed", request=request)
        if status is not None and status != 200:
            return self.httpx.Response(
                status,
                headers={"retry-after-ms": RETRY_AFTER_MS},
                json={"error": {"message": "boom", "type": "server_error"}},
            )
        free = self._free(request.method, path, body)
        if free is not None:
            return self.httpx.Response(200, json=free)
        if path.endswith("/images/generations"):
            self._add(IMAGE_FEE)
            return self.httpx.Response(200, json={"created": 0, "data": [{"url": "https://x"}]})
        if path.endswith("/embeddings"):
            return self._embeddings(body)
        input_tokens = self._input_tokens(body)
        output_tokens = self._output_tokens(body)
        cut = self._wanted(body) > output_tokens
        model = body.get("model", "m")
        stream = bool(body.get("stream"))
        if path.endswith("/chat/completions"):
            events = self._chat(model, body, input_tokens, output_tokens, stream, cut)
        elif path.endswith("/responses"):
            events = self._responses(model, input_tokens, output_tokens, stream)
        elif path.endswith("/messages"):
            events = self._anthropic(model, input_tokens, output_tokens, stream, cut)
        elif path.endswith("/completions"):
            events = self._legacy(model, body, input_tokens, output_tokens, stream, cut)
        else:
            raise AssertionError(f"unexpected path {path}")
        if not stream:
            self._charge(input_tokens, output_tokens)
            if self.garbage:
                return self.httpx.Response(200, content=b"<html>bad gateway</html>")
            if not self.usage:
                events.pop("usage", None)
            return self.httpx.Response(200, json=events)
        return self.httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_sse_class(self.httpx)(self, events, input_tokens, output_tokens),
        )

    def _free(self, method: str, path: str, body: Any) -> dict[str, Any] | None:
        """The reply of an endpoint that is not billed, or None."""
        if method == "GET" and path.endswith("/models"):
            model = {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "x"}
            return {"object": "list", "data": [model]}
        if path.endswith("/moderations"):
            result = {"flagged": False, "categories": {}, "category_scores": {}}
            return {"id": "modr-1", "model": "omni-moderation-latest", "results": [result]}
        if path.endswith("/messages/count_tokens"):
            return {"input_tokens": self._input_tokens(body)}
        return None

    def _embeddings(self, body: dict[str, Any]) -> Any:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = self._input_tokens(body)
        self._charge(tokens, 0)
        vector = [0.25, -0.5, 1.0]
        if body.get("encoding_format") == "base64":
            packed: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        else:
            packed = vector
        data = [
            {"object": "embedding", "index": index, "embedding": packed}
            for index in range(len(inputs))
        ]
        reply: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
        if self.usage:
            reply["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return self.httpx.Response(200, json=reply)

    # --- shapes ----------------------------------------------------------------------------

    def _chat(
        self, model: str, body: dict[str, Any], p: int, k: int, stream: bool, cut: bool
    ) -> Any:
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
                        "finish_reason": "length" if cut else "stop",
                    }
                ],
                "usage": usage,
            }
        chunk = {**base, "object": "chat.completion.chunk"}
        events: list[tuple[str | None, Any, bool]] = []
        for _ in range(k):
            delta = {"index": 0, "delta": {"content": WORD}, "finish_reason": None}
            events.append((None, {**chunk, "choices": [delta]}, True))
        done = {"index": 0, "delta": {}, "finish_reason": "length" if cut else "stop"}
        events.append((None, {**chunk, "choices": [done]}, False))
        if self.usage and (body.get("stream_options") or {}).get("include_usage"):
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
        empty = {**message, "status": "in_progress", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        where = {"item_id": "msg_1", "output_index": 0}
        heads: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.output_item.added", "output_index": 0, "item": empty},
            {"type": "response.content_part.added", **where, "content_index": 0, "part": part},
        ]
        deltas = [
            {
                "type": "response.output_text.delta",
                **where,
                "content_index": 0,
                "delta": WORD,
                "logprobs": [],
            }
            for _ in range(k)
        ]
        text = {"type": "output_text", "text": WORD * k, "annotations": []}
        tails: list[dict[str, Any]] = [
            {
                "type": "response.output_text.done",
                **where,
                "content_index": 0,
                "text": WORD * k,
                "logprobs": [],
            },
            {"type": "response.content_part.done", **where, "content_index": 0, "part": text},
            {"type": "response.output_item.done", "output_index": 0, "item": message},
            {"type": "response.completed", "response": response},
        ]
        events: list[tuple[str | None, Any, bool]] = []
        for number, event in enumerate([*heads, *deltas, *tails]):
            event["sequence_number"] = number
            is_content = len(heads) <= number < len(heads) + len(deltas)
            events.append((event["type"], event, is_content))
        return events

    def _legacy(
        self, model: str, body: dict[str, Any], p: int, k: int, stream: bool, cut: bool
    ) -> Any:
        usage = {"prompt_tokens": p, "completion_tokens": k, "total_tokens": p + k}
        base = {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": model}
        finish = "length" if cut else "stop"
        if not stream:
            choice = {"index": 0, "text": WORD * k, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice], "usage": usage}
        events: list[tuple[str | None, Any, bool]] = []
        for index in range(k):
            last = index == k - 1
            choice = {
                "index": 0,
                "text": WORD,
                "logprobs": None,
                "finish_reason": finish if last else None,
            }
            events.append((None, {**base, "choices": [choice]}, True))
        if self.usage and (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**base, "choices": [], "usage": usage}, False))
        events.append((None, "[DONE]", False))
        return events

    def _anthropic(self, model: str, p: int, k: int, stream: bool, cut: bool) -> Any:
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
            "stop_reason": "max_tokens" if cut else "end_turn",
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
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
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


def openai_clients(fake: FakeProvider, **options: Any) -> tuple[Any, Any]:
    """A sync and an async ``openai`` client over the fake; ``options`` go to both
    constructors (``max_retries=0`` unless given: one request per call)."""
    import openai

    hx = fake.httpx
    options = {"api_key": "test", "max_retries": 0, **options}
    sync = openai.OpenAI(http_client=hx.Client(transport=fake.transport()), **options)
    async_ = openai.AsyncOpenAI(http_client=hx.AsyncClient(transport=fake.transport()), **options)
    return sync, async_


def anthropic_clients(fake: FakeProvider, **options: Any) -> tuple[Any, Any]:
    """A sync and an async ``anthropic`` client over the fake; see ``openai_clients``."""
    import anthropic

    hx = fake.httpx
    options = {"api_key": "test", "max_retries": 0, **options}
    sync = anthropic.Anthropic(http_client=hx.Client(transport=fake.transport()), **options)
    async_ = anthropic.AsyncAnthropic(
        http_client=hx.AsyncClient(transport=fake.transport()), **options
    )
    return sync, async_


def journal_is_clean(holds: list[Any], report: Any) -> None:
    """No hold left open, and the ledger agrees with its journal."""
    assert [hold for hold in holds if hold.state == "open"] == []
    assert report.ok, report


class HoldClosing:
    """Hears, from its creation on, a hold of ``aledger`` close (settled or released).

    A hold a cancelled or abandoned call leaves is closed in a task (or thread) of its own;
    a test awaits that close (``await closing.hold()``) instead of polling for it. Create it
    before the call whose hold it waits for: a batch decides with the listeners it began
    with, so one heard from later could miss a close already under way. An event heard on
    another thread is handed to this loop.
    """

    def __init__(self, aledger: Any) -> None:
        self._aledger = aledger
        self._loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        for kind in ("settled", "released"):
            aledger.on(kind, self._heard)

    def _heard(self, _event: Any) -> None:
        self._loop.call_soon_threadsafe(self._closed.set)

    async def hold(self, timeout_s: float = 10) -> Any:
        """The ledger's one hold, once a close was heard (``TimeoutError`` if none was)."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout_s)
            (hold,) = await self._aledger.holds(state=None)
            return hold
        finally:
            for kind in ("settled", "released"):
                self._aledger.off(kind, self._heard)
