"""Batchers: concurrent operations on one ledger become one store transaction.

The lock and the commit are paid once per batch instead of once per operation (the group
commit of databases, and TigerBeetle's batching). An idle batcher never waits: the first
operation runs at once, and whatever arrives while a transaction is in flight forms the
next batch, up to ``MAX_BATCH_SIZE`` operations. The core applies a batch's operations in
order, exactly as if one by one, so batching changes cost, never results.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

from capledger._core import Config, Op, Outcome
from capledger.bounds import MAX_BATCH_SIZE
from capledger.errors import LedgerInvariantError
from capledger.stores import Store

__all__ = ["AsyncBatcher", "Batcher"]


_NO_WAIT = threading.Event()
_NO_WAIT.set()


class _Waiter:
    __slots__ = ("done", "error", "lead", "op", "outcome")

    def __init__(self, op: Op, *, waits: bool) -> None:
        self.op = op
        # Only a queued operation waits; a leader runs at once and needs no event.
        self.done = threading.Event() if waits else _NO_WAIT
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.lead = False  # set when this waiter is handed the job of running the next batch


class Batcher:
    """Coalesces operations from many threads (leader/follower group commit).

    A thread that finds no batch in flight runs its own operation at once. Threads that
    arrive meanwhile queue up; when the running batch commits, the first of them becomes
    the next leader and runs everything queued behind it as one transaction.
    """

    def __init__(self, store: Store, config: Config) -> None:
        self._store = store
        self._config = config
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._busy = False

    def submit(self, op: Op) -> Outcome:
        """Run ``op`` in the next transaction and return its outcome."""
        with self._lock:
            if self._busy:
                waiter = _Waiter(op, waits=True)
                self._queue.append(waiter)
            else:
                self._busy = True
                waiter = _Waiter(op, waits=False)
                waiter.lead = True
        if not waiter.lead:
            waiter.done.wait()
        if waiter.lead:
            self._run_batch(waiter)
        if waiter.error is not None:
            raise waiter.error
        if waiter.outcome is None:
            raise LedgerInvariantError("a batch finished without an outcome for an operation")
        return waiter.outcome

    def _run_batch(self, leader: _Waiter) -> None:
        with self._lock:
            batch = [leader, *self._queue[: MAX_BATCH_SIZE - 1]]
            del self._queue[: MAX_BATCH_SIZE - 1]
        try:
            outcomes = self._store.execute([waiter.op for waiter in batch], self._config)
        except BaseException as error:  # every caller of the batch must hear of it
            for waiter in batch:
                waiter.error = error
        else:
            for waiter, outcome in zip(batch, outcomes, strict=True):
                waiter.outcome = outcome
        with self._lock:
            successor = self._queue.pop(0) if self._queue else None
            if successor is None:
                self._busy = False
            else:
                successor.lead = True
        leader.lead = False
        for waiter in batch[1:]:
            waiter.done.set()
        if successor is not None:
            successor.done.set()


class _LoopQueue:
    def __init__(self) -> None:
        self.pending: list[tuple[Op, asyncio.Future[Outcome]]] = []
        self.drainer: asyncio.Task[None] | None = None


class AsyncBatcher:
    """Coalesces operations from many asyncio tasks: one drainer task per event loop."""

    def __init__(self, store: Store, config: Config) -> None:
        self._store = store
        self._config = config
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, op: Op) -> Outcome:
        """Run ``op`` in the next transaction and return its outcome."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _LoopQueue()
        future: asyncio.Future[Outcome] = loop.create_future()
        queue.pending.append((op, future))
        if queue.drainer is None or queue.drainer.done():
            queue.drainer = loop.create_task(self._drain(queue))
        # shield: a cancelled caller must not cancel a transaction other callers wait on.
        return await asyncio.shield(future)

    async def _drain(self, queue: _LoopQueue) -> None:
        while queue.pending:
            batch = queue.pending[:MAX_BATCH_SIZE]
            del queue.pending[:MAX_BATCH_SIZE]
            try:
                outcomes = await self._store.aexecute([op for op, _ in batch], self._config)
            except BaseException as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if not isinstance(error, Exception):
                    raise
            else:
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
