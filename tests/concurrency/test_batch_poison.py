"""One caller's bad operation never fails another's, on the embedded stores.

720 operations at once, every third one bad (see ``capledger.testing.poison``): each bad
one gets its own typed error and writes nothing; the 480 innocent ones all succeed, and the
ledger holds exactly what they did. Operations built past the ledger's checks, whose
decisions raise half-way, fail alone too, and the rest of their batch commits exactly as
if they had never been sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from capledger import AsyncLedger, Ledger
from capledger._core import Config, Op, Outcome
from capledger.clock import ManualClock
from capledger.stores import Store, open_store
from capledger.testing.poison import (
    SCOPE,
    check_poisoned,
    check_raw_isolation,
    run_tasks,
    run_threads,
)


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/ledger.db"


def _count_batches(store: Store, sizes: list[int], *, awaited: bool = False) -> None:
    """Append the size of every transaction ``store`` runs from now on to ``sizes``
    (those of ``aexecute`` if ``awaited``, else of ``execute``)."""
    if awaited:
        aexecute = store.aexecute

        async def acounted(ops: Sequence[Op], config: Config) -> list[Outcome]:
            sizes.append(len(ops))
            return await aexecute(ops, config)

        store.aexecute = acounted  # type: ignore[method-assign]
        return
    execute = store.execute

    def counted(ops: Sequence[Op], config: Config) -> list[Outcome]:
        sizes.append(len(ops))
        return execute(ops, config)

    store.execute = counted  # type: ignore[method-assign]


def test_poisoned_threads(url: str) -> None:
    with Ledger(url) as ledger:
        sizes: list[int] = []
        run = run_threads(ledger, prepare=lambda: _count_batches(ledger._store, sizes))
        sizes = list(sizes)
        holds = ledger.holds(scope=SCOPE, state=None, limit=10_000)
        check_poisoned(run, holds, ledger.balance(SCOPE))
        assert ledger.verify().ok
        if ledger._store.batches:  # the bad ones never reached the store; the rest batched
            assert sum(sizes) == 480 and max(sizes) > 1, sizes


def test_poisoned_asyncio_tasks(url: str) -> None:
    async def main() -> None:
        ledger = AsyncLedger(url)
        sizes: list[int] = []
        run = await run_tasks(
            ledger, prepare=lambda: _count_batches(ledger._store, sizes, awaited=True)
        )
        sizes = list(sizes)
        holds = await ledger.holds(scope=SCOPE, state=None, limit=10_000)
        check_poisoned(run, holds, await ledger.balance(SCOPE))
        assert (await ledger.verify()).ok
        if ledger._store.batches:
            assert sum(sizes) == 480 and max(sizes) > 1, sizes
        await ledger.aclose()

    asyncio.run(main())


def test_operations_past_the_checks_fail_alone(url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    other = url if url == "memory://" else f"sqlite:///{tmp_path}/alone.db"
    mixed, alone = open_store(url, clock), open_store(other, clock)
    # On the in-memory store the core works on the live rows, so only a decision that
    # raises before it changes anything can be left out without a trace.
    check_raw_isolation(mixed, alone, half_way=mixed.batches, unhashable_id=True)
    mixed.close()
    alone.close()
