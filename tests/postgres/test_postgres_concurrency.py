"""Many callers at once on PostgreSQL: the caps hold exactly, nobody errs, nothing deadlocks.

1000 asyncio tasks, 32 threads, and 8 OS processes (each with its own ``Ledger``, so the
processes meet only in the database's row locks), against one hot scope and against mixed
user/tenant/feature scopes listed in random order. Each attempt holds $0.10 and settles it
after a few milliseconds.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from capledger import AsyncLedger, Ledger
from capledger.testing.workload import (
    HOT_CAPS,
    MIXED_CAPS,
    TEN_CENTS,
    Attempts,
    check_async_ledger,
    check_ledger,
    mixed_plan,
    run_async,
    run_processes,
    run_threads,
)

pytestmark = pytest.mark.postgres

LATENCY_S = 0.003
HOT_PLAN = [["user:hot"]] * 1000
MIXED_PLAN = mixed_plan(1000)
WORKLOADS = pytest.mark.parametrize(
    ("plan", "caps"), [(HOT_PLAN, HOT_CAPS), (MIXED_PLAN, MIXED_CAPS)], ids=["hot", "mixed"]
)


def _check_counts(result: Attempts, plan: list[list[str]], caps: dict[str, Decimal]) -> None:
    if caps is HOT_CAPS:
        assert result.granted == 50
    assert result.granted and sum(result.refused_by.values()) == len(plan) - result.granted


@WORKLOADS
def test_1000_asyncio_tasks(pg_url: str, plan: list[list[str]], caps: dict[str, Decimal]) -> None:
    async def main() -> None:
        ledger = AsyncLedger(pg_url)
        try:
            for scope, cap in caps.items():
                await ledger.set_limit(scope, usd=cap)
            result = await run_async(ledger, plan, TEN_CENTS, LATENCY_S)
            _check_counts(result, plan, caps)
            await check_async_ledger(ledger, caps, TEN_CENTS, result)
        finally:
            await ledger.aclose()

    asyncio.run(main())


@WORKLOADS
def test_32_threads(pg_url: str, plan: list[list[str]], caps: dict[str, Decimal]) -> None:
    with Ledger(pg_url) as ledger:
        for scope, cap in caps.items():
            ledger.set_limit(scope, usd=cap)
        result = run_threads(ledger, plan, TEN_CENTS, LATENCY_S, threads=32)
        _check_counts(result, plan, caps)
        check_ledger(ledger, caps, TEN_CENTS, result)


@WORKLOADS
def test_8_processes_each_with_its_own_ledger(
    pg_url: str, plan: list[list[str]], caps: dict[str, Decimal]
) -> None:
    with Ledger(pg_url) as ledger:
        for scope, cap in caps.items():
            ledger.set_limit(scope, usd=cap)
    result = run_processes(pg_url, plan, TEN_CENTS, LATENCY_S, processes=8, threads_per_process=4)
    _check_counts(result, plan, caps)
    with Ledger(pg_url) as ledger:
        check_ledger(ledger, caps, TEN_CENTS, result)
