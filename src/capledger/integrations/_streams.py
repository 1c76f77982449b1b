"""Guarded streams: observe the cost as events arrive; settle when the stream ends, fails or
is abandoned.

How a stream closes decides what it settles (``_StreamState.closing``):

- the provider's final usage arrived: its exact cost, whatever happened after;
- it ended normally without a usage report: the observed bound (tagged ``usage=bound``);
- it failed, was closed early, was garbage-collected, or was stopped because the budget
  could not pay for more (``BudgetExceeded`` from ``observe``): what was observed (the input
  bound plus the output received), or the whole hold with ``settle_incomplete="held"``.
  Money already spent is never released.

An abandoned stream is noticed by ``weakref.finalize`` (never ``__del__``, so a stream in a
reference cycle is still collected). The finalizer holds the state, not the stream. For an
async stream it schedules the settle on the stream's event loop; if that loop is closed the
hold can only expire, which is logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Final, Literal, TypeAlias

from capledger.errors import BudgetExceeded, InvalidInput, LedgerError
from capledger.integrations._meter import Meter
from capledger.integrations._plan import Prepared, Settings, Settlement, Shape, settlement

__all__ = [
    "AsyncGuardedMessageStream",
    "AsyncGuardedStream",
    "GuardedMessageStream",
    "GuardedStream",
]

_LOG = logging.getLogger("capledger.integrations")
How: TypeAlias = Literal["completed", "failed", "abandoned", "stopped"]
_OWN: Final = frozenset({"_inner", "_state", "_finalizer", "_iterator"})
# Settles scheduled by finalizers of abandoned async streams: kept alive until done.
_BACKGROUND: set[asyncio.Future[None]] = set()


class _StreamState:
    """Everything needed to close a stream, and nothing that refers back to the stream."""

    __slots__ = ("closed", "hold", "inner", "lock", "loop", "meter", "prepared", "settings")

    def __init__(
        self, inner: Any, hold: Any, prepared: Prepared, settings: Settings, shape: Shape
    ) -> None:
        self.inner = inner
        self.hold = hold
        self.prepared = prepared
        self.settings = settings
        self.meter = Meter(shape, prepared)
        self.closed = False
        # A finalizer may run in any thread: one close wins.
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def claim(self) -> bool:
        """True for the one caller that gets to close the stream."""
        with self.lock:
            if self.closed:
                return False
            self.closed = True
            return True

    def observe_options(self, event: object) -> dict[str, Any] | None:
        """Account for one event: the keyword arguments of ``hold.observe``, or ``None``
        when the running figure cannot have grown (nothing to observe)."""
        if not self.meter.feed(event):
            return None
        usd, tokens = self.meter.running()
        return {"usd": usd, "tokens": tokens if self.settings.hold_tokens else None}

    def closing(self, how: How) -> Settlement | None:
        """What to settle at (None: settle at the whole hold)."""
        meter = self.meter
        if meter.final is not None:
            try:
                done = settlement(self.settings, self.prepared, meter.final)
            except InvalidInput:
                _LOG.warning(
                    "capledger: unreadable stream usage %r; settling the bound", meter.final
                )
            else:
                return Settlement(
                    done.usd, done.tokens, done.requests, {**done.tags, "stream": how}
                )
        if how != "completed" and self.settings.settle_incomplete == "held":
            return None
        usd, tokens = meter.running()
        return Settlement(
            usd=usd,
            tokens=tokens if self.settings.hold_tokens else None,
            requests=1 if self.settings.hold_requests else None,
            tags={"usage": "bound", "output_tokens_bound": meter.output_tokens(), "stream": how},
        )

    def settle_options(self, how: How) -> dict[str, Any]:
        """The keyword arguments of ``hold.settle`` for a stream that closed ``how``."""
        plan = self.closing(how)
        if plan is None:
            return {"tags": {"stream": how}}
        return {
            "usd": plan.usd,
            "tokens": plan.tokens,
            "requests": plan.requests,
            "tags": plan.tags,
        }

    def settle(self, how: How, *, quiet: bool) -> None:
        """Settle a synchronous hold; ``quiet`` logs a ledger error instead of raising it."""
        try:
            self.hold.settle(**self.settle_options(how))
        except LedgerError:
            if not quiet:
                raise
            _LOG.exception("capledger could not settle stream hold %s", self.hold.id)

    async def asettle(self, how: How, *, quiet: bool) -> None:
        """Settle an ``AsyncHold``; see ``settle``."""
        try:
            await self.hold.settle(**self.settle_options(how))
        except LedgerError:
            if not quiet:
                raise
            _LOG.exception("capledger could not settle stream hold %s", self.hold.id)


def _close_quietly(inner: Any) -> None:
    try:
        inner.close()
    except Exception:  # closing a broken connection must not hide why it broke
        _LOG.debug("capledger: closing an abandoned stream failed", exc_info=True)


def _abandon(state: _StreamState) -> None:
    """Finalizer of a sync stream nobody closed: close it and settle what was observed."""
    if state.claim():
        _close_quietly(state.inner)
        state.settle("abandoned", quiet=True)


async def _aclose_quietly(inner: Any) -> None:
    try:
        closer = getattr(inner, "close", None)
        if closer is not None:
            result = closer()
            if asyncio.iscoroutine(result):
                await result
    except Exception:
        _LOG.debug("capledger: closing an abandoned stream failed", exc_info=True)


async def _afinish_abandoned(state: _StreamState) -> None:
    await _aclose_quietly(state.inner)
    await state.asettle("abandoned", quiet=True)


def _spawn_abandoned(state: _StreamState) -> None:
    task = asyncio.ensure_future(_afinish_abandoned(state))
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _aabandon(state: _StreamState) -> None:
    """Finalizer of an async stream nobody closed: settle it on its own event loop."""
    if not state.claim():
        return
    loop = state.loop
    if loop is None or loop.is_closed():
        _LOG.warning(
            "capledger: stream hold %s was abandoned after its event loop closed; it cannot "
            "be settled and will expire",
            state.hold.id,
        )
        return
    try:
        loop.call_soon_threadsafe(_spawn_abandoned, state)
    except RuntimeError:  # the loop closed between the check and the call
        _LOG.warning(
            "capledger: stream hold %s could not be settled; it will expire", state.hold.id
        )


class _GuardedBase:
    """What the sync and async guarded streams share: the state, the finalizer and the
    pass-through of every other attribute to the SDK stream."""

    def __init__(
        self,
        inner: Any,
        hold: Any,
        prepared: Prepared,
        settings: Settings,
        shape: Shape,
        *,
        on_abandon: Callable[[_StreamState], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._inner = inner
        self._iterator: Any = None
        self._state = _StreamState(inner, hold, prepared, settings, shape)
        self._state.loop = loop
        # The finalizer holds the state, never the stream, so the stream can be collected.
        self._finalizer = weakref.finalize(self, on_abandon, self._state)

    def __getattr__(self, name: str) -> Any:
        if name in _OWN:
            raise AttributeError(name)
        return getattr(self._inner, name)

    @property
    def hold(self) -> Any:
        """The capledger hold this stream settles."""
        return self._state.hold

    def _claim(self) -> bool:
        """True for the one caller that closes the stream (the finalizer then stands down)."""
        if not self._state.claim():
            return False
        self._finalizer.detach()
        return True


class GuardedStream(_GuardedBase):
    """A provider stream that observes its cost and settles its hold when it ends.

    Iterate it as the SDK's stream; every other attribute is the SDK stream's. Use it as a
    context manager, or ``close()`` it, to stop early: what was received is settled.

    Raises (while iterating):
        BudgetExceeded: the running cost passed the hold and the budget could not extend
            it; the stream is closed and what arrived is settled.
    """

    def __init__(
        self, inner: Any, hold: Any, prepared: Prepared, settings: Settings, shape: Shape
    ) -> None:
        super().__init__(inner, hold, prepared, settings, shape, on_abandon=_abandon)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        state = self._state
        if state.closed:
            raise StopIteration
        if self._iterator is None:
            self._iterator = iter(self._inner)
        try:
            event = next(self._iterator)
        except StopIteration:
            self._finish("completed", quiet=False)
            raise
        except BaseException:
            self._finish("failed", quiet=True)
            raise
        observed = state.observe_options(event)
        if observed is not None:
            try:
                state.hold.observe(**observed)
            except BudgetExceeded:
                _close_quietly(self._inner)
                self._finish("stopped", quiet=True)
                raise
        return event

    def _finish(self, how: How, *, quiet: bool) -> None:
        if self._claim():
            self._state.settle(how, quiet=quiet)

    def close(self) -> None:
        """Close the connection; settle what was received (a no-op once ended)."""
        _close_quietly(self._inner)
        self._finish("abandoned", quiet=False)

    def __enter__(self) -> GuardedStream:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        _close_quietly(self._inner)
        self._finish("failed" if exc is not None else "abandoned", quiet=exc is not None)


class GuardedMessageStream(GuardedStream):
    """Anthropic's ``MessageStream`` (from ``messages.stream``), guarded.

    ``text_stream``, ``until_done``, ``get_final_message`` and ``get_final_text`` consume
    the stream through the guard, so every path is observed and settled.
    """

    @property
    def text_stream(self) -> Iterator[str]:
        """The text deltas, as the SDK's ``text_stream``."""
        for event in self:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                yield event.delta.text

    def until_done(self) -> None:
        """Read the stream to its end."""
        for _event in self:
            pass

    def get_final_message(self) -> Any:
        """Read to the end and return the accumulated message."""
        self.until_done()
        return self._inner.get_final_message()

    def get_final_text(self) -> str:
        """Read to the end and return the text blocks joined."""
        self.until_done()
        return self._inner.get_final_text()  # type: ignore[no-any-return]


class AsyncGuardedStream(_GuardedBase):
    """The async twin of ``GuardedStream``: ``async for``, ``await close()``, ``async with``."""

    def __init__(
        self, inner: Any, hold: Any, prepared: Prepared, settings: Settings, shape: Shape
    ) -> None:
        super().__init__(
            inner,
            hold,
            prepared,
            settings,
            shape,
            on_abandon=_aabandon,
            loop=asyncio.get_running_loop(),
        )

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        state = self._state
        if state.closed:
            raise StopAsyncIteration
        if self._iterator is None:
            self._iterator = aiter(self._inner)
        try:
            event = await anext(self._iterator)
        except StopAsyncIteration:
            await self._finish("completed", quiet=False)
            raise
        except BaseException:
            await self._finish("failed", quiet=True)
            raise
        observed = state.observe_options(event)
        if observed is not None:
            try:
                await state.hold.observe(**observed)
            except BudgetExceeded:
                await _aclose_quietly(self._inner)
                await self._finish("stopped", quiet=True)
                raise
        return event

    async def _finish(self, how: How, *, quiet: bool) -> None:
        if self._claim():
            await self._state.asettle(how, quiet=quiet)

    async def close(self) -> None:
        """Close the connection; settle what was received (a no-op once ended)."""
        await _aclose_quietly(self._inner)
        await self._finish("abandoned", quiet=False)

    async def __aenter__(self) -> AsyncGuardedStream:
        return self

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        await _aclose_quietly(self._inner)
        await self._finish("failed" if exc is not None else "abandoned", quiet=exc is not None)


class AsyncGuardedMessageStream(AsyncGuardedStream):
    """Anthropic's ``AsyncMessageStream``, guarded; see ``GuardedMessageStream``."""

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """The text deltas, as the SDK's ``text_stream``."""
        return self._text()

    async def _text(self) -> AsyncIterator[str]:
        async for event in self:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                yield event.delta.text

    async def until_done(self) -> None:
        """Read the stream to its end."""
        async for _event in self:
            pass

    async def get_final_message(self) -> Any:
        """Read to the end and return the accumulated message."""
        await self.until_done()
        return await self._inner.get_final_message()

    async def get_final_text(self) -> str:
        """Read to the end and return the text blocks joined."""
        await self.until_done()
        return await self._inner.get_final_text()  # type: ignore[no-any-return]
