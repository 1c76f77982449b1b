"""token-budget-py: ``pool.reserve(usd=...)`` then ``r.commit(usd=...)``, as its README shows.

The pool is a float counter behind a ``threading.Lock``: the check and the hold are one
step, so it can hold a cap inside one process. It has no persistence, so processes cannot
share it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import harness
from token_budget import BudgetExceeded, BudgetPool

USD = float(harness.CALL_USD)


def _attempt(pool: BudgetPool, provider: harness.FakeProvider) -> None:
    try:
        with pool.reserve(usd=USD) as reservation:
            provider.call()
            reservation.commit(usd=USD)
    except BudgetExceeded as error:
        raise harness.Refused(str(error)) from error


async def _aattempt(pool: BudgetPool, provider: harness.FakeProvider) -> None:
    try:
        with pool.reserve(usd=USD) as reservation:
            await provider.acall()
            reservation.commit(usd=USD)
    except BudgetExceeded as error:
        raise harness.Refused(str(error)) from error


@contextmanager
def _trial(provider: harness.FakeProvider) -> Iterator[harness.Trial]:
    pool = BudgetPool(usd_cap=float(harness.CAP_USD))
    yield partial(_attempt, pool, provider), lambda: pool.snapshot().usd_used


@asynccontextmanager
async def _atrial(provider: harness.FakeProvider) -> AsyncIterator[harness.Trial]:
    pool = BudgetPool(usd_cap=float(harness.CAP_USD))
    yield partial(_aattempt, pool, provider), lambda: pool.snapshot().usd_used


def _pairs() -> float:
    pool = BudgetPool(usd_cap=float(harness.PAIRS_CAP_USD))

    def pair() -> None:
        with pool.reserve(usd=USD) as reservation:
            reservation.commit(usd=USD)

    return harness.time_pairs(pair)


def build(_args: object) -> harness.Contender:
    return harness.Contender(
        key="token-budget-py",
        label="token-budget-py",
        packages=("token-budget-py",),
        pattern="with pool.reserve(usd=0.10) as r: call(); r.commit(usd=0.10)",
        modes={
            "asyncio": partial(harness.run_asyncio, _atrial),
            "threads": partial(harness.run_threads, _trial),
            "sequential": partial(harness.run_sequential, _trial),
        },
        not_run={
            "processes": "in-process counter (a float behind a threading.Lock); "
            "no store that processes could share",
        },
        pairs=_pairs,
    )


if __name__ == "__main__":
    harness.main(build)
