"""Batchers: concurrent operations on one ledger become one store transaction.

The lock and the commit are paid once per batch instead of once per operation (the group
commit of databases, and TigerBeetle's batching). An idle batcher never waits: the first
operation runs at once, and whatever arrives while a transaction is in flight forms the
next batch, up to ``MAX_BATCH_SIZE`` operations. The core applies a batch's operations in
order, exactly as if one by one, so batching changes cost, never results.

A caller can be interrupted anywhere: ``KeyboardInterrupt``, an exception raised by a
signal handler (a ``SIGALRM`` timeout), a cancelled task. Its operation is then either
taken out of the queue and never applied, or applied once in a transaction already under
way, its result delivered to nobody; and whatever it owed others (their results, the job
of running the next batch) is handed on, so nobody waits for a caller that has gone.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable

from capledger._core import Config, Op, Outcome
from capledger.bounds import MAX_BATCH_SIZE
from capledger.errors import BackendUnavailable, LedgerError, LedgerInvariantError
from capledger.stores import Store

__all__ = ["AsyncBatcher", "Batcher"]

#: How many times a hand-off cut short by a second interrupt is started again. Each run
#: takes microseconds, so only a bug raising every time (never an interrupt) uses them up.
_HAND_OFF_TRIES = 100


def _for_the_others(error: BaseException) -> BaseException:
    """What a batch's transaction raising ``error`` means to callers who did not raise it.

    A ``LedgerError`` or ``LedgerInvariantError`` is the store's own word on the batch.
    Anything else interrupted whoever ran the transaction (``KeyboardInterrupt``, a signal
    handler's exception, a cancellation), perhaps after its ``COMMIT``: the others cannot
    know whether their operations were applied, and must not be told they were not.
    """
    if isinstance(error, LedgerError | LedgerInvariantError):
        return error
    unknown = BackendUnavailable(
        f"the transaction of this operation's batch was interrupted "
        f"({type(error).__name__}: {error}); whether the operation was applied is unknown. "
        "A retry is safe: the same request_id returns the same hold, and settling or "
        "releasing a hold again changes nothing"
    )
    unknown.__cause__ = error
    return unknown


class _Waiter:
    """One caller's operation, and what the leader thread owes it."""

    __slots__ = (
        "abandoned",
        "began",
        "error",
        "followers",
        "lead",
        "op",
        "outcome",
        "outcomes",
        "successor",
        "wake",
        "woken",
    )

    def __init__(self, op: Op) -> None:
        self.op = op
        # A queued caller waits to acquire ``wake``, which is released once: when the batch
        # holding its operation is over, or when it is handed the lead. A raw lock, because
        # its release is one step that no interrupt can cut in two (an Event's is not).
        self.wake: threading.Lock | None = None
        self.woken = False
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.abandoned = False  # its caller was interrupted: put it in no batch from now on
        # As a leader: whether it must run the next batch (or hand the job on), the callers
        # whose operations its batch took, whether it has called the store (from then on the
        # batch may have committed), what the store returned, and whom it handed the lead to.
        self.lead = False
        self.followers: list[_Waiter] = []
        self.began = False
        self.outcomes: list[Outcome] | None = None
        self.successor: _Waiter | None = None


def _wake(waiter: _Waiter | None) -> None:
    if waiter is not None and waiter.wake is not None and not waiter.woken:
        waiter.woken = True  # no interrupt can fall between these two steps: no call
        waiter.wake.release()


def _hand_off(step: Callable[[_Waiter], None], waiter: _Waiter) -> None:
    """Run ``step(waiter)`` to its end, from the start again if an interrupt cuts it short.

    Every step is idempotent. An interrupt that arrived meanwhile is raised once the step
    is done: the caller is told, and nobody else is left waiting.
    """
    interrupted: BaseException | None = None
    for _ in range(_HAND_OFF_TRIES):
        try:
            step(waiter)
        except BaseException as error:  # an interrupt inside the hand-off itself
            interrupted = error
        else:
            break
    if interrupted is not None:
        raise interrupted


class Batcher:
    """Coalesces operations from many threads (leader/follower group commit).

    A thread that finds no batch in flight runs its own operation at once. Threads that
    arrive meanwhile queue up; when the running batch commits, the first of them becomes
    the next leader and runs everything queued behind it as one transaction.
    """

    def __init__(self, store: Store, config: Config) -> None:
        self._store = store
        #: What the next batch is decided with: the ledger replaces it when its listeners
        #: change; a batch reads it once as it starts, so one under way keeps its own.
        self.config = config
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._busy = False  # one waiter has the lead: it runs a batch or hands the job on

    def submit(self, op: Op) -> Outcome:
        """Run ``op`` in the next transaction and return its outcome."""
        waiter = _Waiter(op)
        try:
            with self._lock:
                if self._busy:
                    wake = threading.Lock()
                    wake.acquire()
                    waiter.wake = wake
                    self._queue.append(waiter)
                else:
                    self._busy = True
                    waiter.lead = True
            if waiter.wake is not None:
                waiter.wake.acquire()  # until its batch is over, or it is handed the lead
            if waiter.lead:
                self._run_batch(waiter)
        except BaseException:
            _hand_off(self._abandon, waiter)
            raise
        if waiter.error is not None:
            raise waiter.error
        if waiter.outcome is None:
            raise LedgerInvariantError("a batch finished without an outcome for an operation")
        return waiter.outcome

    def _run_batch(self, leader: _Waiter) -> None:
        try:
            with self._lock:
                leader.followers = self._queue[: MAX_BATCH_SIZE - 1]
                del self._queue[: MAX_BATCH_SIZE - 1]
            ops = [leader.op, *[waiter.op for waiter in leader.followers]]
            leader.began = True
            leader.outcomes = self._store.execute(ops, self.config)
        except BaseException as error:  # every caller of the batch must hear of it
            leader.error = error
        finally:
            _hand_off(self._finish, leader)

    def _abandon(self, waiter: _Waiter) -> None:
        """Withdraw an interrupted caller: out of the queue, or its lead handed on."""
        with self._lock:
            waiter.abandoned = True
            if not waiter.lead and waiter in self._queue:
                self._queue.remove(waiter)  # it never reached a batch: it is not applied
        if waiter.lead:  # set only under the lock, and never again once abandoned
            self._finish(waiter)
        # Otherwise its operation is in a batch already; that batch's leader delivers the
        # outcome (to nobody) and, if the batch never reached the store, drops it.

    def _finish(self, leader: _Waiter) -> None:
        """Deliver the batch's outcomes and hand the lead on (idempotent: see ``_hand_off``)."""
        followers = leader.followers
        if leader.began:
            self._deliver(leader)
        with self._lock:
            if leader.lead:
                if followers and not leader.began:  # the store never saw them: requeue
                    self._queue[0:0] = [waiter for waiter in followers if not waiter.abandoned]
                # No call from here to ``lead = False``, so no interrupt can fall between.
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    leader.successor = successor
                    del self._queue[0]
                else:
                    self._busy = False
                leader.lead = False
        if leader.began:
            for waiter in followers:
                _wake(waiter)
        _wake(leader.successor)

    @staticmethod
    def _deliver(leader: _Waiter) -> None:
        batch = [leader, *leader.followers]
        outcomes = leader.outcomes
        if outcomes is not None and len(outcomes) == len(batch):
            for waiter, outcome in zip(batch, outcomes, strict=True):
                waiter.outcome = outcome
            return
        error = leader.error
        if error is None:
            error = LedgerInvariantError(
                "a store returned no outcome, or not one per operation, for a batch"
            )
            leader.error = error
        for waiter in leader.followers:
            if not waiter.woken and waiter.error is None:
                waiter.error = _for_the_others(error)


class _LoopQueue:
    def __init__(self) -> None:
        self.pending: list[tuple[Op, asyncio.Future[Outcome]]] = []
        self.drainer: asyncio.Task[None] | None = None


class AsyncBatcher:
    """Coalesces operations from many asyncio tasks: one drainer task per event loop."""

    def __init__(self, store: Store, config: Config) -> None:
        self._store = store
        #: What the next batch is decided with: the ledger replaces it when its listeners
        #: change; a batch reads it once as it starts, so one under way keeps its own.
        self.config = config
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
        entry = (op, future)
        queue.pending.append(entry)
        if queue.drainer is None or queue.drainer.done():
            queue.drainer = loop.create_task(self._drain(queue))
            queue.drainer.add_done_callback(lambda drainer: _fail_the_left(queue, drainer))
        try:
            # shield: a cancelled caller must not cancel a transaction other callers wait on.
            return await asyncio.shield(future)
        except BaseException:
            _withdraw(queue, entry)
            raise

    async def _drain(self, queue: _LoopQueue) -> None:
        while queue.pending:
            batch = queue.pending[:MAX_BATCH_SIZE]
            del queue.pending[:MAX_BATCH_SIZE]
            try:
                outcomes = await self._store.aexecute([op for op, _ in batch], self.config)
            except BaseException as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(_for_the_others(error))
                if not isinstance(error, Exception):
                    raise
            else:
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)


def _withdraw(queue: _LoopQueue, entry: tuple[Op, asyncio.Future[Outcome]]) -> None:
    """Take a cancelled caller's operation out of the queue if no transaction has it yet."""
    future = entry[1]
    if future.done():
        return
    for index, pending in enumerate(queue.pending):
        if pending is entry:
            del queue.pending[index]  # never applied
            future.cancel()
            return
    # In the transaction under way: applied once, its outcome delivered to nobody. Nobody
    # will look at an error either, so it is marked seen, not logged as never retrieved.
    future.add_done_callback(_mark_seen)


def _mark_seen(future: asyncio.Future[Outcome]) -> None:
    if not future.cancelled():
        future.exception()


def _fail_the_left(queue: _LoopQueue, drainer: asyncio.Task[None]) -> None:
    """Fail the operations an ended drainer left queued (it was cancelled: the loop is
    closing), unless a newer drainer has them."""
    if queue.drainer is not drainer:
        return
    left = queue.pending[:]
    del queue.pending[:]
    for _, future in left:
        if not future.done():
            future.set_exception(
                BackendUnavailable(
                    "the ledger's batch task was cancelled before this operation reached "
                    "the store; it was not applied"
                )
            )
