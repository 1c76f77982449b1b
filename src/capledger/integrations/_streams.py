"""Guarded streams: observe the cost as events arrive; settle when the stream ends, fails or
is abandoned.

How a stream closes decides what it settles (``_StreamState.closing``):

- the provider's final usage arrived: its exact cost, whatever happened after;
- it ended without the provider's usage (it completed without a usage report, failed, was
  closed early, was garbage-collected, or was stopped because the budget could not pay for
  more): the whole hold, or, with ``settle_incomplete="observed"``, what was observed (the
  input bound plus the output received, tagged ``usage=bound``). The output a provider
  bills may exceed what it delivered (hidden reasoning), so only its usage report settles
  below the hold by default. Money already spent is never released.

A sync stream nobody closed is noticed by ``weakref.finalize`` (never ``__del__``, so a
stream in a reference cycle is still collected); the finalizer holds the state, not the
stream. An async stream reads through an async generator (``_aevents``) that asyncio closes
on the stream's own event loop, when it is collected or when the loop shuts down
(``asyncio.run``), so its settle runs before the loop closes; a finalizer also schedules the
settle on that loop, and if the loop is already closed the hold can only expire, which is
logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Iterator,
    Mapping,
)
from typing import Any, Final, Literal, TypeAlias

from capledger.errors import BudgetExceeded, InvalidInput
from capledger.integrations._calls import Prepared, Settings, Settlement, Shape, settlement
from capledger.integrations._meter import Meter
from capledger.integrations._steps import (
    NO_WIRE,
    Call,
    StepFlow,
    close,
    in_background,
    outside_collection,
)

__all__ = ["AsyncGuardedStream", "GuardedStream"]

_LOG = logging.getLogger("capledger.integrations")
How: TypeAlias = Literal["completed", "failed", "abandoned", "stopped"]
_OWN: Final = frozenset({"_inner", "_state", "_finalizer", "_iterator"})
#: What the event generator of an async stream yields first, before any event (``start``).
_PRIMED: Final = object()


class _StreamState:
    """Everything needed to close a stream, and nothing that refers back to the stream."""

    __slots__ = (
        "closed",
        "hide_usage",
        "hold",
        "inner",
        "lock",
        "loop",
        "meter",
        "prepared",
        "settings",
    )

    def __init__(
        self, inner: Any, hold: Any, prepared: Prepared, settings: Settings, shape: Shape
    ) -> None:
        self.inner = inner
        #: Skip the usage-only chunk (empty ``choices``) the caller did not ask for.
        self.hide_usage = False
        self.hold = hold
        self.prepared = prepared
        self.settings = settings
        self.meter = Meter(shape, prepared)
        self.closed = False
        # A finalizer may run in any thread: one close wins.
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def hidden(self, event: object) -> bool:
        """Whether ``event`` is the usage chunk capledger asked for and the caller did not
        (hidden, so ``chunk.choices[0]`` keeps working)."""
        if not self.hide_usage:
            return False
        if isinstance(event, Mapping):
            return event.get("usage") is not None and not event.get("choices")
        return getattr(event, "usage", None) is not None and not getattr(event, "choices", None)

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
        return self.meter.observe_options(self.settings)

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
        if self.settings.settle_incomplete == "held":
            return None
        return meter.observed(self.settings, how)

    def settle_options(self, how: How) -> dict[str, Any]:
        """The keyword arguments of ``hold.settle`` for a stream that closed ``how``."""
        plan = self.closing(how)
        if plan is None:
            return {"tags": {"stream": how}}
        return plan.settle_options()

    def settle(self, how: How, *, quiet: bool) -> None:
        """Settle a synchronous hold; ``quiet`` logs a ledger error instead of raising it."""
        NO_WIRE.run(close(self.hold, self.settle_options(how), quiet=quiet))

    async def asettle(self, how: How, *, quiet: bool) -> None:
        """Settle an ``AsyncHold`` (shielded from cancellation); see ``settle``."""
        await NO_WIRE.arun(close(self.hold, self.settle_options(how), quiet=quiet))


def _passing(state: _StreamState, event: object) -> StepFlow[bool]:
    """One event, as a flow: observed when its running cost grew (``BudgetExceeded`` when
    the budget cannot pay for it); returns whether the caller sees it."""
    observed = state.observe_options(event)
    if observed is not None:
        yield Call(state.hold.observe, kwargs=observed)
    return not state.hidden(event)


def _exit_how(exc: object) -> tuple[How, bool]:
    """How a stream left by its ``with`` block closes, and whether quietly: a block that
    raised must not have its error hidden by a ledger error."""
    return ("failed", True) if exc is not None else ("abandoned", False)


def _close_quietly(inner: Any) -> None:
    try:
        inner.close()
    except Exception:  # closing a broken connection must not hide why it broke
        _LOG.debug("capledger: closing an abandoned stream failed", exc_info=True)


def _abandon(state: _StreamState) -> None:
    """Finalizer of a sync stream nobody closed: close it and settle what was observed
    (outside a garbage collection, which may have interrupted a ledger batch)."""
    if state.claim():
        outside_collection(functools.partial(_settle_abandoned, state))


def _settle_abandoned(state: _StreamState) -> None:
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
    in_background(_afinish_abandoned(state))


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

    @staticmethod
    def _on_abandon(state: _StreamState) -> None:
        """The finalizer of a stream nobody closed (``_abandon`` or ``_aabandon``)."""
        raise NotImplementedError

    def __init__(
        self,
        inner: Any,
        hold: Any,
        prepared: Prepared,
        settings: Settings,
        shape: Shape,
        *,
        hide_usage: bool = False,
    ) -> None:
        self._inner = inner
        self._iterator: Any = None
        self._state = _StreamState(inner, hold, prepared, settings, shape)
        self._state.loop = self._event_loop()
        self._state.hide_usage = hide_usage
        # The finalizer holds the state, never the stream, so the stream can be collected.
        self._finalizer = weakref.finalize(self, type(self)._on_abandon, self._state)

    @staticmethod
    def _event_loop() -> asyncio.AbstractEventLoop | None:
        """The loop an abandoned stream is settled on (none for a sync stream)."""
        return None

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

    _on_abandon = staticmethod(_abandon)

    def start(self) -> None:
        """Nothing to start: a sync stream nobody reads is noticed by its finalizer (the
        async stream's ``start`` has work to do; the engine calls both alike)."""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        state = self._state
        if state.closed:
            raise StopIteration
        if self._iterator is None:
            self._iterator = iter(self._inner)
        while True:
            try:
                event = next(self._iterator)
            except StopIteration:
                self._finish("completed", quiet=False)
                raise
            except BaseException:
                self._finish("failed", quiet=True)
                raise
            try:
                passes = NO_WIRE.run(_passing(state, event))
            except BudgetExceeded:
                _close_quietly(self._inner)
                self._finish("stopped", quiet=True)
                raise
            if passes:
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
        how, quiet = _exit_how(exc)
        _close_quietly(self._inner)
        self._finish(how, quiet=quiet)


async def _aevents(state: _StreamState, inner: Any) -> AsyncGenerator[Any, None]:
    """The events of an async stream, observed; settles in its ``finally``.

    An async generator, so that a stream abandoned while its event loop ends is still
    settled on that loop: asyncio closes every unfinished async generator it has seen
    (``shutdown_asyncgens``, run by ``asyncio.run``) before it closes the loop, and one
    collected earlier is closed on the loop too. It first yields ``_PRIMED`` (``start``), so
    the loop knows it before the caller reads anything.
    """
    how: How = "abandoned"
    try:
        yield _PRIMED
        iterator = aiter(inner)
        while True:
            try:
                event = await anext(iterator)
            except StopAsyncIteration:
                how = "completed"
                return
            except BaseException:
                how = "failed"
                raise
            try:
                passes = await NO_WIRE.arun(_passing(state, event))
            except BudgetExceeded:
                how = "stopped"
                raise
            if passes:
                yield event
    finally:
        if state.claim():
            if how != "completed":
                await _aclose_quietly(inner)
            await state.asettle(how, quiet=how != "completed")


class AsyncGuardedStream(_GuardedBase):
    """The async twin of ``GuardedStream``: ``async for``, ``await close()``, ``async with``.

    A stream left open when its event loop ends (``asyncio.run`` returning while nobody
    finished reading it) is settled before the loop closes.
    """

    _on_abandon = staticmethod(_aabandon)
    # Made inside a running loop (``Engine.send``): an abandoned stream is settled there.
    _event_loop = staticmethod(asyncio.get_running_loop)

    async def start(self) -> None:
        """Start the event generator (nothing is read), so the event loop knows it."""
        if self._iterator is None:
            self._iterator = _aevents(self._state, self._inner)
            await anext(self._iterator)  # _PRIMED

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if self._state.closed and self._iterator is None:
            raise StopAsyncIteration
        await self.start()
        return await anext(self._iterator)

    async def close(self) -> None:
        """Close the connection; settle what was received (a no-op once ended)."""
        await self._finish("abandoned", quiet=False)

    async def _finish(self, how: How, *, quiet: bool) -> None:
        if not self._claim():
            return
        await _aclose_quietly(self._inner)
        if self._iterator is not None:
            await self._iterator.aclose()  # its settle stands down: the claim is ours
        await self._state.asettle(how, quiet=quiet)

    async def __aenter__(self) -> AsyncGuardedStream:
        return self

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        how, quiet = _exit_how(exc)
        await self._finish(how, quiet=quiet)
