"""datasette-llm-accountant: its reservation lifecycle over a locked in-memory accountant.

The plugin defines the ``Accountant`` contract (``reserve``/``settle``/``rollback`` in
integer nanocents) and ``GroupReservation``, which reserves on every accountant, tracks
usage and settles. It ships no accountant: whoever installs it writes one. Ours is the
smallest correct one: a balance in nanocents and a lock around check-and-hold. Each attempt
follows what the plugin's hook does for one ungrouped prompt: ``reserve_all()``, the call,
``add_usage(cost)``, ``settle_all()`` (``_rollback()`` on an exception).

The contract is async only. In the thread modes each thread drives it on its own event
loop, reused across that thread's attempts.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from functools import partial

import harness
from datasette_llm_accountant import (
    Accountant,
    GroupReservation,
    InsufficientBalanceError,
    Nanocents,
    Tx,
)

NANOCENTS_PER_USD = 100_000_000_000
COST = Nanocents.from_usd(float(harness.CALL_USD))


class LockedMemoryAccountant(Accountant):
    """One balance in nanocents; the check and the hold happen under one lock."""

    def __init__(self, cap: Nanocents) -> None:
        self.cap = cap
        self.spent = 0
        self.held = 0
        self._holds: dict[Tx, int] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()

    async def reserve(self, nanocents, model_id=None, purpose=None, actor_id=None) -> Tx:
        with self._lock:
            if self.spent + self.held + nanocents > self.cap:
                raise InsufficientBalanceError(f"{nanocents} nanocents would pass the cap")
            tx = Tx(str(next(self._ids)))
            self._holds[tx] = nanocents
            self.held += nanocents
        return tx

    async def settle(self, tx, nanocents, model_id=None, purpose=None, actor_id=None) -> None:
        with self._lock:
            self.held -= self._holds.pop(tx)
            self.spent += nanocents

    def spent_usd(self) -> Decimal:
        return Decimal(self.spent) / NANOCENTS_PER_USD


async def _aattempt(accountant: LockedMemoryAccountant, provider: harness.FakeProvider) -> None:
    reservation = GroupReservation(COST, [accountant], model_id=harness.MODEL)
    try:
        await reservation.reserve_all()
    except InsufficientBalanceError as error:
        raise harness.Refused(str(error)) from error
    try:
        await provider.acall()
        reservation.add_usage(COST)
    except Exception:
        await reservation._rollback()
        raise
    await reservation.settle_all()


class _Loops:
    """One event loop per thread, reused by that thread's attempts, closed at the end."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    def get(self) -> asyncio.AbstractEventLoop:
        loop = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
            with self._lock:
                self._all.append(loop)
        return loop

    def close(self) -> None:
        for loop in self._all:
            loop.close()


def _sync_attempt(
    accountant: LockedMemoryAccountant, provider: harness.FakeProvider, loops: _Loops
) -> None:
    async def attempt() -> None:
        reservation = GroupReservation(COST, [accountant], model_id=harness.MODEL)
        try:
            await reservation.reserve_all()
        except InsufficientBalanceError as error:
            raise harness.Refused(str(error)) from error
        try:
            provider.call()  # a blocking call, as a thread would make it
            reservation.add_usage(COST)
        except Exception:
            await reservation._rollback()
            raise
        await reservation.settle_all()

    loops.get().run_until_complete(attempt())


@contextmanager
def _trial(provider: harness.FakeProvider) -> Iterator[harness.Trial]:
    accountant = LockedMemoryAccountant(Nanocents.from_usd(float(harness.CAP_USD)))
    loops = _Loops()
    try:
        yield partial(_sync_attempt, accountant, provider, loops), accountant.spent_usd
    finally:
        loops.close()


@asynccontextmanager
async def _atrial(provider: harness.FakeProvider) -> AsyncIterator[harness.Trial]:
    accountant = LockedMemoryAccountant(Nanocents.from_usd(float(harness.CAP_USD)))
    yield partial(_aattempt, accountant, provider), accountant.spent_usd


def _pairs() -> float:
    accountant = LockedMemoryAccountant(Nanocents.from_usd(float(harness.PAIRS_CAP_USD)))

    async def pair() -> None:
        reservation = GroupReservation(COST, [accountant], model_id=harness.MODEL)
        await reservation.reserve_all()
        reservation.add_usage(COST)
        await reservation.settle_all()

    return asyncio.run(harness.atime_pairs(pair))


def build(_args: object) -> harness.Contender:
    return harness.Contender(
        key="datasette-llm-accountant",
        label="datasette-llm-accountant",
        packages=("datasette-llm-accountant", "datasette-llm", "datasette", "llm"),
        pattern="GroupReservation(...).reserve_all(); call(); add_usage(cost); settle_all()",
        modes={
            "asyncio": partial(harness.run_asyncio, _atrial),
            "threads": partial(harness.run_threads, _trial),
            "sequential": partial(harness.run_sequential, _trial),
        },
        not_run={
            "processes": "the plugin ships no accountant; a shared cap needs one you write "
            "over a database (ours is in memory)",
        },
        pairs=_pairs,
        notes=[
            "The cap is enforced by the accountant we wrote for this benchmark (a lock "
            "around check-and-hold); the plugin provides the contract and the lifecycle.",
        ],
    )


if __name__ == "__main__":
    harness.main(build)
