"""The body of a guarded SSE reply: metered as it passes, settling its hold when it ends.

``EventStream`` reads the reply's events as they pass (pure): it meters them, hides the usage
chunk capledger asked for from a caller who did not, and says what the hold settles at when
the stream ends however it ends. What it asks of the ledger per chunk (renew the hold's
life, observe an overrun) is a flow (``passing``), as is the end (``ending``): the sync and
async bodies drive them with ``capledger._flow``'s ``run`` and ``arun``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from capledger.errors import LedgerError
from capledger.integrations._calls import USAGE_ON_REQUEST
from capledger.integrations._meter import Meter
from capledger.integrations._steps import NO_WIRE, Call, StepFlow, close, outside_collection

if TYPE_CHECKING:
    from capledger.integrations._transport import Exchange

__all__ = ["AsyncBody", "EventStream", "SyncBody", "body_class"]

_LOG = logging.getLogger("capledger.integrations")
_BodyT = TypeVar("_BodyT", "SyncBody", "AsyncBody")

#: A blank line: two line ends in a row, each CRLF, LF or CR (the SSE grammar).
_LINE_END: Final = rb"(?:\r\n|\r(?!\n)|\n)"
_EVENT_END: Final = re.compile(_LINE_END + _LINE_END)


@dataclass(slots=True)
class EventStream:
    """Reads an SSE reply as it passes: meters it, and hides the usage chunk capledger asked
    for from a caller who did not (so ``chunk.choices[0]`` keeps working)."""

    exchange: Exchange
    meter: Meter = field(init=False)
    buffer: bytes = b""
    tier: object = None
    speed: object = None
    #: A Responses stream's final response, priced whole (its tool calls carry fees).
    final_response: dict[str, Any] | None = None
    #: The provider said the stream is over (``[DONE]``, or its final usage arrived).
    done: bool = False
    #: How the stream is ending, as far as the reader knows: ``abandoned`` until it
    #: completes, fails, or is ``stopped`` because the budget cannot pay for an overrun.
    how: str = "abandoned"
    #: When the hold's life was last renewed (``time.monotonic``): a stream may outlast the
    #: hold's TTL, which bounds the SDK's time between two reads, not a whole stream.
    renewed_at: float = field(default_factory=time.monotonic)
    #: The provider's own output count last reported to the ledger (an overrun).
    observed_output: int = 0

    def __post_init__(self) -> None:
        assert self.exchange.prepared is not None
        self.meter = Meter(self.exchange.endpoint.shape, self.exchange.prepared)

    def feed(self, chunk: bytes) -> bytes:
        """Take raw bytes; return the bytes to hand on (whole events only)."""
        self.buffer += chunk
        out: list[bytes] = []
        while True:
            match = _EVENT_END.search(self.buffer)
            if match is None:
                break
            raw = self.buffer[: match.end()]
            self.buffer = self.buffer[match.end() :]
            if self._read(raw):
                out.append(raw)
        return b"".join(out)

    def take(self, chunk: bytes) -> tuple[bytes, dict[str, Any] | None, float | None]:
        """Take raw bytes: the bytes to hand on; the ``hold.observe`` keyword arguments when
        the provider overran the hold (``how`` is ``stopped`` until that succeeds); and the
        TTL to renew the hold to, once half of it has passed since the last renewal."""
        passed = self.feed(chunk)
        ttl_s = self.exchange.settings.ttl_s
        renew: float | None = None
        if time.monotonic() - self.renewed_at > ttl_s / 2:
            self.renewed_at = time.monotonic()
            renew = ttl_s
        overrun = self.overrun()
        if overrun is None:
            return passed, None, renew
        self.how = "stopped"
        return passed, overrun, renew

    def finish(self) -> bytes:
        """The stream's body ended: what is left to hand on."""
        rest = self.flush()
        self.how = "completed"
        return rest

    def failed(self) -> None:
        """Reading failed (an overrun the budget could not pay for stays ``stopped``)."""
        if self.how != "stopped":
            self.how = "failed"

    def flush(self) -> bytes:
        """What is left at the end of the stream (an event with no final blank line)."""
        rest, self.buffer = self.buffer, b""
        if rest and self._read(rest):
            return rest
        return b""

    def _read(self, raw: bytes) -> bool:
        """Meter one event; False when it is the usage chunk to hide."""
        data = b"".join(
            line[5:].lstrip(b" ") for line in raw.splitlines() if line.startswith(b"data:")
        )
        if data == b"[DONE]":
            self.done = True
            return True
        if not data:
            return True
        try:
            event = json.loads(data)
        except ValueError:
            return True
        if not isinstance(event, dict):
            return True
        self.meter.feed(event)
        if self.meter.final is not None:
            self.done = True
            response = event.get("response")
            if isinstance(response, dict) and response.get("usage") is not None:
                self.final_response = response
        self._note_tier(event)
        usage_chunk = event.get("usage") is not None and not event.get("choices")
        if usage_chunk and self.exchange.endpoint.shape in USAGE_ON_REQUEST:
            return self.exchange.caller_wants_usage
        return True

    def _note_tier(self, event: dict[str, Any]) -> None:
        tier = event.get("service_tier")
        response = event.get("response")
        if isinstance(response, dict):
            tier = response.get("service_tier", tier)
        message = event.get("message")
        for usage in (
            event.get("usage"),
            message.get("usage") if isinstance(message, dict) else None,
        ):
            if isinstance(usage, dict) and usage.get("service_tier") is not None:
                tier = usage["service_tier"]
            if isinstance(usage, dict) and usage.get("speed") is not None:
                self.speed = usage["speed"]
        if tier is not None:
            self.tier = tier

    def overrun(self) -> dict[str, Any] | None:
        """``hold.observe`` keyword arguments when the provider reports more output than the
        limit it was sent (it overran the hold), else ``None``.

        Within the limit nothing is observed: the hold already covers it, and a ledger write
        per event would cost more than the call.
        """
        meter = self.meter
        if meter.provider_output <= max(meter.output_cap, self.observed_output):
            return None
        self.observed_output = meter.provider_output
        return meter.observe_options(self.exchange.settings)

    def closing(self, how: str | None = None) -> dict[str, Any]:
        """``hold.settle`` keyword arguments for a stream that ended ``how`` (by default as
        the reader saw it; the SDK closes a stream once it reads ``[DONE]``, so one closed
        after that is complete too).

        The provider's usage when it arrived; else the whole hold, or the output seen with
        ``settle_incomplete="observed"``. A stream ``stopped`` because the budget could not
        pay for its overrun settles what it ran to, which is more than the hold.
        """
        if how is None:
            how = "completed" if self.done and self.how == "abandoned" else self.how
        exchange = self.exchange
        if self.meter.final is not None:
            report = self.final_response or self.meter.final
            plan = exchange.settle_usage(report, self.tier, self.speed)
            plan["tags"] = {**plan["tags"], "stream": how}
            return plan
        if how == "stopped":
            return self.meter.observed(exchange.settings, how).settle_options()
        if exchange.settings.settle_incomplete == "observed":
            return self.meter.observed(exchange.settings, how).settle_options()
        return {"tags": {"usage": "missing", "stream": how}}

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Around the reading of the body: ``abandoned`` until it completes, ``failed`` when
        reading raises (not when the reader is closed: that is abandoning it)."""
        self.how = "abandoned"
        try:
            yield
        except GeneratorExit:
            raise
        except BaseException:
            self.failed()
            raise


def passing(events: EventStream, hold: Any, chunk: bytes) -> StepFlow[bytes]:
    """One chunk of the body, as a flow: the bytes to hand on, once the hold's life is
    renewed (when due) and an overrun observed (``BudgetExceeded`` stops the stream)."""
    passed, overrun, renew = events.take(chunk)
    if renew is not None:
        try:
            yield Call(hold.extend, kwargs={"ttl": renew})
        except LedgerError:
            # A hold that expired all the same (the stream stalled past its TTL) is settled
            # late when the stream ends, so this is only logged.
            _LOG.warning("capledger could not renew hold %s", hold.id, exc_info=True)
    if overrun is not None:
        yield Call(hold.observe, kwargs=overrun)
        events.how = "abandoned"
    return passed


def ending(events: EventStream, hold: Any, closing: Call) -> StepFlow[None]:
    """The end of the body, as a flow: the connection closes (``closing``), then the hold
    settles at what the stream ran to, quietly unless it completed."""
    try:
        yield closing
    finally:
        yield from close(hold, events.closing(), quiet=events.how != "completed")


class SyncBody:
    """The body of a guarded SSE reply: passes whole events on, settles when it ends.

    The reading is a generator started at once (primed), so that a reply nobody reads or
    closes is still settled when it is collected: closing a started generator runs its
    ``finally``.
    """

    def __init__(self, response: Any, hold: Any, events: EventStream) -> None:
        self._chunks = self._generate(response, hold, events)
        next(self._chunks)

    @staticmethod
    def _generate(response: Any, hold: Any, events: EventStream) -> Generator[bytes, None, None]:
        try:
            with events.reading():
                yield b""
                for chunk in response.iter_bytes():
                    if passed := NO_WIRE.run(passing(events, hold, chunk)):
                        yield passed
                yield events.finish()
        finally:
            # Closed by the garbage collector when the reply is dropped unread: the settle
            # must not run inside whatever the collection interrupted.
            outside_collection(lambda: NO_WIRE.run(ending(events, hold, Call(response.close))))

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        """Stop reading: the connection closes and the hold settles."""
        self._chunks.close()


class AsyncBody:
    """The async body of a guarded SSE reply.

    The reading is an async generator started before the reply is handed back: asyncio
    then closes it (running its ``finally``, which settles) when it is collected unread, and
    before its event loop closes (``shutdown_asyncgens``) when it is abandoned open.
    """

    def __init__(self, response: Any, hold: Any, events: EventStream) -> None:
        self._chunks = self._generate(response, hold, events)

    async def start(self) -> None:
        """Start the generator, so that asyncio tracks it from now on."""
        await anext(self._chunks)

    @staticmethod
    async def _generate(
        response: Any, hold: Any, events: EventStream
    ) -> AsyncGenerator[bytes, None]:
        try:
            with events.reading():
                yield b""
                async for chunk in response.aiter_bytes():
                    if passed := await NO_WIRE.arun(passing(events, hold, chunk)):
                        yield passed
                yield events.finish()
        finally:
            await NO_WIRE.arun(ending(events, hold, Call(response.aclose)))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        """Stop reading: the connection closes and the hold settles."""
        await self._chunks.aclose()


@functools.cache
def body_class(http: ModuleType, body: type[_BodyT]) -> type[_BodyT]:
    """``body`` as a subclass of the module's byte stream class, which httpx checks for."""
    base = http.AsyncByteStream if body is AsyncBody else http.SyncByteStream
    return type(body.__name__, (body, base), {})
