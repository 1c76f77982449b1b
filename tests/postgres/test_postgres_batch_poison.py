"""One caller's bad operation never fails another's on PostgreSQL (see
``tests/concurrency/test_batch_poison.py``): 720 operations at once from threads and from
asyncio tasks, every third one bad; and operations built past the ledger's checks that
raise half-way through their decision fail alone in a batch that otherwise commits exactly
as it would without them."""

from __future__ import annotations

import asyncio

import pytest

from capledger import AsyncLedger, Ledger
from capledger.clock import ManualClock
from capledger.stores.postgres.store import PostgresStore
from capledger.testing.poison import (
    SCOPE,
    check_poisoned,
    check_raw_isolation,
    run_tasks,
    run_threads,
)

pytestmark = pytest.mark.postgres


def test_poisoned_threads(pg_url: str) -> None:
    with Ledger(pg_url) as ledger:
        run = run_threads(ledger)
        check_poisoned(
            run, ledger.holds(scope=SCOPE, state=None, limit=10_000), ledger.balance(SCOPE)
        )
        assert ledger.verify().ok


def test_poisoned_asyncio_tasks(pg_url: str) -> None:
    async def main() -> None:
        ledger = AsyncLedger(pg_url)
        run = await run_tasks(ledger)
        holds = await ledger.holds(scope=SCOPE, state=None, limit=10_000)
        check_poisoned(run, holds, await ledger.balance(SCOPE))
        assert (await ledger.verify()).ok
        await ledger.aclose()

    asyncio.run(main())


def test_operations_past_the_checks_fail_alone(pg_url: str) -> None:
    clock = ManualClock()
    mixed = PostgresStore(pg_url + "&schema=mixed", clock)
    alone = PostgresStore(pg_url + "&schema=alone", clock)
    # The store plans its row locks from the operations' hold ids before any decision, so
    # an unhashable one never reaches a decision there (the ledger refuses it anyway).
    check_raw_isolation(mixed, alone, unhashable_id=False)
    mixed.close()
    alone.close()
