"""The running cost of a stream, from the events it delivers (pure; no I/O).

Until the provider reports usage, the output received is bounded by its UTF-8 bytes: a
byte-level BPE never yields more tokens than bytes (docs/estimate.md), so the running
figure never under-states what arrived. It is capped at the output limit the provider was
sent (it enforces it), so the running cost never passes the worst-case hold and ``observe``
never has to grow a hold that the provider keeps within bounds; a running count reported by
the provider is taken as is, so a provider that overruns the limit is caught. The input side is the
estimate's input bound: once the stream is open the provider has accepted the prompt.
When the provider reports its usage (the final chunk, ``response.completed``,
``message_delta``) that report is what the call settles at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from capledger.integrations._calls import Prepared, Settings, Settlement, Shape
from capledger.pricing._pricebook import round_up_usd

__all__ = ["Meter"]

_RESPONSES_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_ANTHROPIC_DELTA_FIELDS = ("text", "partial_json", "thinking")


def _get(obj: object, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _bytes(value: object) -> int:
    return len(value.encode()) if isinstance(value, str) else 0


def _chat_delta_bytes(delta: object) -> int:
    size = _bytes(_get(delta, "content")) + _bytes(_get(delta, "refusal"))
    size += _bytes(_get(delta, "reasoning_content"))  # DeepSeek and other compatible APIs
    call = _get(delta, "function_call")
    if call is not None:
        size += _bytes(_get(call, "name")) + _bytes(_get(call, "arguments"))
    for tool_call in _get(delta, "tool_calls") or ():
        function = _get(tool_call, "function")
        if function is not None:
            size += _bytes(_get(function, "name")) + _bytes(_get(function, "arguments"))
    return size


class Meter:
    """Counts what a stream delivered and knows its running and final cost."""

    __slots__ = (
        "_input_usd",
        "_output_rate",
        "_provider_usage",
        "_tokens_in",
        "counted_bytes",
        "final",
        "output_cap",
        "provider_output",
        "shape",
    )

    def __init__(self, shape: Shape, prepared: Prepared) -> None:
        est = prepared.estimate
        self.shape = shape
        # The output limit is per choice; n choices can deliver n times it.
        self.output_cap = prepared.output_limit * est.choices
        self._input_usd = est.input_tokens_bound * est.input_usd_per_token * est.choices
        self._output_rate = est.output_usd_per_token
        self._tokens_in = est.input_tokens_bound * est.choices
        self.counted_bytes = 0
        self.provider_output = 0
        self._provider_usage: dict[str, Any] | None = None
        #: The provider's final usage report, once it arrived.
        self.final: object | None = None

    def output_tokens(self) -> int:
        """Output tokens received so far: an upper bound.

        Our byte count is capped at the output limit the provider enforces; the provider's
        own running count is not, so a provider that writes past the limit is observed (and
        the stream stopped when the budget cannot pay).
        """
        return max(min(self.output_cap, self.counted_bytes), self.provider_output)

    def running(self) -> tuple[Any, int]:
        """The running cost (``Decimal`` USD, rounded up) and tokens of what arrived."""
        output = self.output_tokens()
        return round_up_usd(self._input_usd + output * self._output_rate), self._tokens_in + output

    def observe_options(self, settings: Settings) -> dict[str, Any]:
        """The keyword arguments of ``hold.observe`` reporting the running figure."""
        usd, tokens = self.running()
        return {"usd": usd, "tokens": tokens if settings.hold_tokens else None}

    def observed(self, settings: Settings, how: str) -> Settlement:
        """What a stream that ended ``how`` without the provider's usage settles at, by what
        was seen: the input bound plus the output received (tagged ``usage=bound``)."""
        usd, tokens = self.running()
        return Settlement(
            usd=usd,
            tokens=tokens if settings.hold_tokens else None,
            requests=1 if settings.hold_requests else None,
            tags={"usage": "bound", "output_tokens_bound": self.output_tokens(), "stream": how},
        )

    def feed(self, event: object) -> bool:
        """Account for one event; True when the running figure may have grown."""
        if self.shape in ("chat", "completions"):
            return self._feed_chat(event)
        if self.shape == "responses":
            return self._feed_responses(event)
        return self._feed_anthropic(event)

    def _feed_chat(self, chunk: object) -> bool:
        usage = _get(chunk, "usage")
        if usage is not None:
            self.final = usage
        size = 0
        for choice in _get(chunk, "choices") or ():
            delta = _get(choice, "delta")
            if delta is not None:
                size += _chat_delta_bytes(delta)
            size += _bytes(_get(choice, "text"))  # the legacy Completions API
        self.counted_bytes += size
        return size > 0

    def _feed_responses(self, event: object) -> bool:
        kind = _get(event, "type")
        if kind in _RESPONSES_FINAL:
            usage = _get(_get(event, "response"), "usage")
            if usage is not None:
                self.final = usage
            return False
        size = _bytes(_get(event, "delta"))
        self.counted_bytes += size
        return size > 0

    def _feed_anthropic(self, event: object) -> bool:
        kind = _get(event, "type")
        if kind == "content_block_delta":
            delta = _get(event, "delta")
            size = sum(_bytes(_get(delta, name)) for name in _ANTHROPIC_DELTA_FIELDS)
            self.counted_bytes += size
            return size > 0
        if kind == "message_start":
            self._merge_usage(_get(_get(event, "message"), "usage"))
            return True
        if kind == "message_delta":
            self._merge_usage(_get(event, "usage"))
            return True
        if kind == "message_stop" and self._provider_usage is not None:
            self.final = dict(self._provider_usage)
        return False

    def _merge_usage(self, usage: object) -> None:
        if usage is None:
            return
        merged = self._provider_usage
        if merged is None:
            # Name the cache fields, so parse_usage reads the Anthropic meaning of
            # input_tokens (cached tokens excluded) even when the cache was not used.
            merged = self._provider_usage = {
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            }
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "cache_creation",
        ):
            value = _get(usage, name)
            if value is not None:
                merged[name] = value
        output = merged.get("output_tokens")
        if isinstance(output, int):
            self.provider_output = max(self.provider_output, output)
