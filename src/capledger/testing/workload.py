"""Concurrent workloads that hammer a ledger's caps, and the checks of what they left.

Each attempt reserves a fixed amount on a list of scopes, waits a little (the "LLM call"),
then settles exactly what it held. Because every hold settles at its full amount, a scope
that refused anyone must end with ``spent == cap`` exactly, and no scope may pass its cap.
Used by the concurrency tests of every store and by the benchmarks.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

from capledger import AsyncLedger, Balance, BudgetExceeded, Ledger, VerifyReport

__all__ = [
    "HOT_CAPS",
    "MIXED_CAPS",
    "TEN_CENTS",
    "Attempts",
    "check_async_ledger",
    "check_caps",
    "check_ledger",
    "mixed_plan",
    "run_async",
    "run_processes",
    "run_threads",
    "total_usd",
]


TEN_CENTS = Decimal("0.10")
#: One hot scope: 1000 attempts of $0.10 against $5.00 must grant exactly 50.
HOT_CAPS = {"user:hot": Decimal("5.00")}
#: Caps for ``mixed_plan``: users, tenants and features that each refuse some attempts.
MIXED_CAPS = {
    **{f"user:u{index}": Decimal("0.50") for index in range(10)},
    "tenant:t0": Decimal("2.00"),
    "tenant:t1": Decimal("3.00"),
    "feature:f0": Decimal("1.00"),
    "feature:f1": Decimal("2.50"),
    "feature:f2": Decimal("20.00"),
}


@dataclass
class Attempts:
    """What the callers were told: holds granted, refusals per refusing scope, errors."""

    granted: int = 0
    refused_by: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    granted_scopes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def merge(self, other: Attempts) -> None:
        """Add another worker's counts to these."""
        self.granted += other.granted
        self.refused_by.update(other.refused_by)
        self.errors.extend(other.errors)
        self.granted_scopes.update(other.granted_scopes)


def mixed_plan(attempts: int, seed: int = 7) -> list[list[str]]:
    """Scopes for each attempt: a user, a tenant and a feature, listed in random order."""
    rng = random.Random(seed)
    plan = []
    for _ in range(attempts):
        scopes = [
            f"user:u{rng.randrange(10)}",
            f"tenant:t{rng.randrange(2)}",
            f"feature:f{rng.randrange(3)}",
        ]
        rng.shuffle(scopes)
        plan.append(scopes)
    return plan


def _record_refusal(result: Attempts, error: BudgetExceeded) -> None:
    result.refused_by[error.scope] += 1


async def _attempt_async(
    ledger: AsyncLedger, scopes: Sequence[str], usd: Decimal, latency_s: float, result: Attempts
) -> None:
    try:
        hold = await ledger.reserve(scopes, usd=usd, ttl=300)
    except BudgetExceeded as error:
        _record_refusal(result, error)
        return
    except Exception as error:  # every other error is a failure of the test
        result.errors.append(repr(error))
        return
    try:
        await asyncio.sleep(latency_s)
        await hold.settle(usd=usd)
        result.granted += 1
        result.granted_scopes.update(scopes)
    except Exception as error:
        result.errors.append(repr(error))


async def run_async(
    ledger: AsyncLedger, plan: Sequence[Sequence[str]], usd: Decimal, latency_s: float
) -> Attempts:
    """Run every attempt of ``plan`` as its own asyncio task, all at once."""
    result = Attempts()
    started = time.perf_counter()
    await asyncio.gather(*(_attempt_async(ledger, s, usd, latency_s, result) for s in plan))
    result.seconds = time.perf_counter() - started
    return result


def _attempt_sync(
    ledger: Ledger, scopes: Sequence[str], usd: Decimal, latency_s: float, result: Attempts
) -> None:
    try:
        hold = ledger.reserve(scopes, usd=usd, ttl=300)
    except BudgetExceeded as error:
        _record_refusal(result, error)
        return
    except Exception as error:
        result.errors.append(repr(error))
        return
    try:
        time.sleep(latency_s)
        hold.settle(usd=usd)
        result.granted += 1
        result.granted_scopes.update(scopes)
    except Exception as error:
        result.errors.append(repr(error))


def run_threads(
    ledger: Ledger,
    plan: Sequence[Sequence[str]],
    usd: Decimal,
    latency_s: float,
    threads: int = 32,
) -> Attempts:
    """Run ``plan`` from ``threads`` threads sharing one ledger."""
    result = Attempts()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [
            pool.submit(_attempt_sync, ledger, scopes, usd, latency_s, result) for scopes in plan
        ]:
            future.result()
    result.seconds = time.perf_counter() - started
    return result


def _process_worker(
    url: str,
    plan: Sequence[Sequence[str]],
    usd: Decimal,
    latency_s: float,
    threads: int,
    barrier: multiprocessing.synchronize.Barrier,
) -> Attempts:
    ledger = Ledger(url)
    try:
        barrier.wait()  # start every process together, after their imports and connects
        return run_threads(ledger, plan, usd, latency_s, threads)
    finally:
        ledger.close()


def run_processes(
    url: str,
    plan: Sequence[Sequence[str]],
    usd: Decimal,
    latency_s: float,
    processes: int = 8,
    threads_per_process: int = 4,
) -> Attempts:
    """Split ``plan`` over ``processes`` OS processes, each with its own ``Ledger(url)``."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(processes)
        slices = [list(plan[index::processes]) for index in range(processes)]
        with context.Pool(processes) as pool:
            started = time.perf_counter()
            parts = pool.starmap(
                _process_worker,
                [(url, part, usd, latency_s, threads_per_process, barrier) for part in slices],
            )
            seconds = time.perf_counter() - started
    result = Attempts(seconds=seconds)
    for part in parts:
        result.merge(part)
    return result


def total_usd(balances: Sequence[Balance]) -> Balance:
    """The lifetime ``usd`` balance among a scope's balances."""
    [total] = [b for b in balances if b.period == "total" and b.unit == "usd"]
    return total


def check_caps(
    totals: dict[str, Balance],
    report: VerifyReport,
    caps: dict[str, Decimal],
    usd: Decimal,
    result: Attempts,
) -> None:
    """Assert what a workload left: exact spend, no holds, full caps where anyone was refused.

    Args:
        totals: the lifetime ``usd`` balance of every capped scope (see ``total_usd``).
        report: ``ledger.verify()`` taken after the workload.

    Raises:
        AssertionError: with a sentence naming the broken property.
    """
    assert not result.errors, f"callers saw errors: {result.errors[:5]}"
    assert result.granted, "no attempt was granted: the workload tested nothing"
    for scope, cap in caps.items():
        total = totals[scope]
        expected = usd * result.granted_scopes[scope]
        assert total.spent == expected, f"{scope}: spent {total.spent}, callers got {expected}"
        assert total.held == 0, f"{scope}: {total.held} still held"
        assert total.spent <= cap, f"{scope}: spent {total.spent} passed its cap {cap}"
        if result.refused_by[scope]:
            assert total.spent == cap, f"{scope} refused calls but spent only {total.spent}"
    assert report.ok, f"verify found mismatches: {report.mismatches}"


def check_ledger(ledger: Ledger, caps: dict[str, Decimal], usd: Decimal, result: Attempts) -> None:
    """``check_caps`` over a synchronous ledger."""
    totals = {scope: total_usd(ledger.balance(scope)) for scope in caps}
    check_caps(totals, ledger.verify(), caps, usd, result)


async def check_async_ledger(
    ledger: AsyncLedger, caps: dict[str, Decimal], usd: Decimal, result: Attempts
) -> None:
    """``check_caps`` over an asynchronous ledger."""
    totals = {scope: total_usd(await ledger.balance(scope)) for scope in caps}
    check_caps(totals, await ledger.verify(), caps, usd, result)
