"""Many callers at once on the embedded stores: the caps hold exactly and nobody errs.

1000 asyncio tasks, 32 threads, and (for SQLite) 8 OS processes sharing one file. Each
attempt holds $0.10 and settles it after a few milliseconds.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from capledger import AsyncLedger, Ledger
from capledger.testing.workload import (
    HOT_CAPS,
    MIXED_CAPS,
    TEN_CENTS,
    check_async_ledger,
    check_ledger,
    mixed_plan,
    run_async,
    run_processes,
    run_threads,
)

LATENCY_S = 0.003
HOT_PLAN = [["user:hot"]] * 1000
MIXED_PLAN = mixed_plan(1000)


def _set_caps(ledger: Ledger, caps: dict[str, Decimal]) -> None:
    for scope, cap in caps.items():
        ledger.set_limit(scope, usd=cap)


def _url(store: str, tmp_path: Path) -> str:
    return "memory://" if store == "memory" else f"sqlite:///{tmp_path}/ledger.db"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(("plan", "caps"), [(HOT_PLAN, HOT_CAPS), (MIXED_PLAN, MIXED_CAPS)])
def test_1000_asyncio_tasks(
    store: str, tmp_path: Path, plan: list[list[str]], caps: dict[str, Decimal]
) -> None:
    url = _url(store, tmp_path)

    async def main() -> None:
        aledger = AsyncLedger(url)
        for scope, cap in caps.items():
            await aledger.set_limit(scope, usd=cap)
        result = await run_async(aledger, plan, TEN_CENTS, LATENCY_S)
        if caps is HOT_CAPS:
            assert result.granted == 50
        assert result.granted and sum(result.refused_by.values()) == len(plan) - result.granted
        await check_async_ledger(aledger, caps, TEN_CENTS, result)
        await aledger.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(("plan", "caps"), [(HOT_PLAN, HOT_CAPS), (MIXED_PLAN, MIXED_CAPS)])
def test_32_threads(
    store: str, tmp_path: Path, plan: list[list[str]], caps: dict[str, Decimal]
) -> None:
    with Ledger(_url(store, tmp_path)) as ledger:
        _set_caps(ledger, caps)
        result = run_threads(ledger, plan, TEN_CENTS, LATENCY_S, threads=32)
        if caps is HOT_CAPS:
            assert result.granted == 50
        assert result.granted and sum(result.refused_by.values()) == len(plan) - result.granted
        check_ledger(ledger, caps, TEN_CENTS, result)


@pytest.mark.parametrize(("plan", "caps"), [(HOT_PLAN, HOT_CAPS), (MIXED_PLAN, MIXED_CAPS)])
def test_8_processes_share_one_sqlite_file(
    tmp_path: Path, plan: list[list[str]], caps: dict[str, Decimal]
) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    with Ledger(url) as ledger:
        _set_caps(ledger, caps)
    result = run_processes(url, plan, TEN_CENTS, LATENCY_S, processes=8, threads_per_process=4)
    if caps is HOT_CAPS:
        assert result.granted == 50
    assert result.granted and sum(result.refused_by.values()) == len(plan) - result.granted
    with Ledger(url) as ledger:
        check_ledger(ledger, caps, TEN_CENTS, result)


def _reserve_same_request(url: str) -> str:
    with Ledger(url) as ledger:
        return ledger.reserve("user:dup", usd="0.10", request_id="req-dup", ttl=300).id


def test_concurrent_duplicates_of_one_request_id_make_one_hold(store: str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with Ledger(_url(store, tmp_path)) as ledger:
        ledger.set_limit("user:dup", usd="1.00")
        with ThreadPoolExecutor(32) as pool:
            ids = set(
                pool.map(
                    lambda _: (
                        ledger.reserve("user:dup", usd="0.10", request_id="req-dup", ttl=300).id
                    ),
                    range(200),
                )
            )
        assert len(ids) == 1
        [total] = ledger.balance("user:dup")
        assert total.held == Decimal("0.1")
        assert ledger.verify().ok


def test_duplicates_from_8_processes_make_one_hold(tmp_path: Path) -> None:
    import multiprocessing

    url = f"sqlite:///{tmp_path}/ledger.db"
    with Ledger(url) as ledger:
        ledger.set_limit("user:dup", usd="1.00")
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        ids = set(pool.map(_reserve_same_request, [url] * 32))
    assert len(ids) == 1
    with Ledger(url) as ledger:
        [total] = ledger.balance("user:dup")
        assert total.held == Decimal("0.1")
