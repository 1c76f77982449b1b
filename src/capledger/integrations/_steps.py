"""The I/O a guarded call's flow asks for, performed with a sync or an async ledger.

Each decision of a guarded call is a flow (``capledger._flow``): a generator that yields
steps and is sent their outcomes. A step does one piece of I/O two ways, ``run(wire)`` with a
``Ledger`` (and a sync SDK) and ``arun(wire)`` awaited with an ``AsyncLedger``; ``Wire.drive``
drives a flow with ``run`` or ``arun`` as its ledger is sync or async, so the sync and async
forms of a guarded call are one flow.

Ledger writes that close a hold run to their end even if the caller is cancelled
(``run_shielded``): a cancellation must never drop the settle of money that may have been
billed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeVar

from capledger._flow import arun, run
from capledger.errors import LedgerError
from capledger.integrations._ledger_like import is_async_ledger

__all__ = [
    "NO_WIRE",
    "Call",
    "StepFlow",
    "Wire",
    "close",
    "in_background",
    "outside_collection",
    "run_shielded",
]

_LOG = logging.getLogger("capledger.integrations")
_T = TypeVar("_T")
#: A flow of this package's steps, returning what it decided.
StepFlow: TypeAlias = Generator[Any, Any, _T]

#: How long a finalizer waits for the ledger write it handed to a thread of its own
#: (``outside_collection``): longer than any write takes when nothing blocks it, short
#: enough that a collection that interrupted a ledger batch goes on soon after.
FINALIZER_WAIT_S: Final = 10.0

#: Ledger writes running in tasks of their own: asyncio keeps only weak references to
#: tasks, so these are kept here until done.
_BACKGROUND: set[asyncio.Future[Any]] = set()


def in_background(operation: Awaitable[_T]) -> asyncio.Future[_T]:
    """Run ``operation`` in a task of its own, kept alive until it is done."""
    task = asyncio.ensure_future(operation)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


async def run_shielded(operation: Awaitable[_T]) -> _T:
    """Run a ledger write to its end even if the caller is cancelled meanwhile.

    The write runs in a task of its own, awaited through ``asyncio.shield``: a cancellation
    (``asyncio.timeout``, a task group, a cancel scope that cancels again at every
    ``await``, the SDK's deadline on a stream's cleanup) reaches the caller, never the
    settle of money that may have been billed. An event loop that closes first cancels it.
    """
    return await asyncio.shield(in_background(operation))


@dataclass(frozen=True, slots=True)
class Call:
    """Call ``function(*args, **kwargs)``: a method of a ledger, a hold, an SDK or a stream.

    With an async ledger what it returns is awaited, and with ``shielded`` it runs to its
    end even if the caller is cancelled (``run_shielded``).
    """

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    shielded: bool = False

    def run(self, wire: Wire) -> Any:
        """Call it."""
        return self.function(*self.args, **self.kwargs)

    async def arun(self, wire: Wire) -> Any:
        """Call it and await what it returns."""
        pending = self.function(*self.args, **self.kwargs)
        return await (run_shielded(pending) if self.shielded else pending)


def close(hold: Any, plan: Mapping[str, Any] | None, *, quiet: bool = False) -> StepFlow[None]:
    """Settle ``hold`` at ``plan`` (release it for ``None``), shielded from cancellation.

    ``quiet`` logs a ledger error instead of raising it, when the caller's own error (the
    one that made the call fail) matters more.
    """
    try:
        if plan is None:
            yield Call(hold.release, shielded=True)
        else:
            yield Call(hold.settle, kwargs=plan, shielded=True)
    except LedgerError:
        if not quiet:
            raise
        _LOG.exception("capledger could not close hold %s", hold.id)


@dataclass(frozen=True, slots=True)
class Wire:
    """What the steps of a guarded call act on: the ledger, and for the wire guard the
    transport the request leaves through."""

    ledger: Any
    inner: Any = None

    def perform(self, step: Any) -> Any:
        """Do one step (the ``perform`` of ``capledger._flow.run``)."""
        return step.run(self)

    async def aperform(self, step: Any) -> Any:
        """Do one step, awaited (the ``perform`` of ``capledger._flow.arun``)."""
        return await step.arun(self)

    def run(self, flow: StepFlow[_T]) -> _T:
        """Drive ``flow`` synchronously; every error of a step is thrown into it (a flow
        that holds money decides what a failure, even an interrupt, settles)."""
        return run(flow, self.perform, catch=BaseException)

    async def arun(self, flow: StepFlow[_T]) -> _T:
        """Drive ``flow``, its steps awaited; see ``run``."""
        return await arun(flow, self.aperform, catch=BaseException)

    def drive(self, flow: StepFlow[_T]) -> Any:
        """Drive ``flow`` as this wire's ledger is: its result with a sync ledger, an
        awaitable of it with an async one (which the caller awaits)."""
        return self.arun(flow) if is_async_ledger(self.ledger) else self.run(flow)


#: The wire of a flow that only touches holds: a hold knows its ledger.
NO_WIRE: Final = Wire(ledger=None)


class _Collection(threading.local):
    """Whether the cyclic garbage collector is running in this thread."""

    running = False


_COLLECTION: Final = _Collection()


def _note_collection(phase: str, info: dict[str, int]) -> None:
    _COLLECTION.running = phase == "start"


gc.callbacks.append(_note_collection)


def outside_collection(write: Callable[[], object]) -> None:
    """Run ``write``, a finalizer's ledger write, where it cannot wait for itself.

    The cyclic garbage collector runs finalizers wherever it interrupted the program: maybe
    inside a ledger batch this very thread leads, where a ledger write would wait for that
    batch, and so for itself, forever. During a collection the write runs in a thread of its
    own, which queues behind such a batch, and this one waits for it ``FINALIZER_WAIT_S`` at
    most: when nothing blocks it, it is done when the collection ends, as if run here. Its
    errors are logged (a finalizer has nobody to raise them to).
    """
    if not _COLLECTION.running:
        write()
        return

    def logged() -> None:
        try:
            write()
        except Exception:
            _LOG.exception("capledger: a finalizer's ledger write failed")

    worker = threading.Thread(target=logged, name="capledger-finalizer")
    try:
        worker.start()
    except RuntimeError:  # the interpreter is shutting down: no new thread
        logged()
        return
    worker.join(FINALIZER_WAIT_S)
