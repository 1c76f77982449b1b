"""This checkout beside an older commit, on the ledger's own figures, in the same run.

A change of structure must not cost speed. Each measure below runs, for this checkout and
for ``--base`` (its ``src/`` exported with ``git archive``), in a fresh process; the two
alternate run by run in ABBA order, so a slow spell of the machine weighs on both alike.
Printed: each side's median, every run, and the ratio this checkout / base (above 1 is
faster for rates, below 1 faster for wall times).

Measures (public API only, so any commit can run them):

- ``pairs``: sequential reserve+settle pairs per second on two scopes with day and month
  limits (as ``throughput.py``), per store.
- ``burst``: wall time of 1000 concurrent asyncio reservations of $0.10 against $5.00,
  each settled after a 1 ms fake call (as ``cap_correctness.py``), per store.

Run::

    .venv/bin/python benchmarks/compare_commits.py --base 9c1d3b4 --runs 7 \\
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from _common import ROOT, checkout, export_source, machine, run_worker

#: Pairs per run: enough for a run to last a second or so on each store.
PAIRS = {"memory": 50_000, "sqlite": 3_000, "postgresql": 1_000}
BURST = 1000


def _fresh_url(store: str, folder: Path, postgres: str) -> str:
    if store == "memory":
        return "memory://"
    if store == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}"
    return postgres


def _pairs(url: str, pairs: int) -> float:
    from capledger import Ledger

    suffix = uuid.uuid4().hex[:8]  # fresh scopes: a shared PostgreSQL database stays clean
    user, tenant = f"user:u-{suffix}", f"tenant:t-{suffix}"
    ledger = Ledger(url)
    try:
        ledger.set_limit(user, usd="1000000", period="month")
        ledger.set_limit(tenant, usd="1000000", period="day")
        for _ in range(200):  # warm caches and prepared statements
            ledger.reserve([user, tenant], usd="0.002").settle(usd="0.001")
        started = time.perf_counter()
        for _ in range(pairs):
            ledger.reserve([user, tenant], usd="0.002").settle(usd="0.001")
        return pairs / (time.perf_counter() - started)
    finally:
        ledger.close()


async def _burst(url: str) -> float:
    from capledger import AsyncLedger, BudgetExceeded

    scope = f"user:burst-{uuid.uuid4().hex[:8]}"
    ledger = AsyncLedger(url)
    price = Decimal("0.10")

    async def call() -> None:
        try:
            hold = await ledger.reserve(scope, usd=price)
        except BudgetExceeded:
            return
        await asyncio.sleep(0.001)
        await hold.settle(usd=price)

    try:
        await ledger.set_limit(scope, usd="5.00")
        started = time.perf_counter()
        await asyncio.gather(*(call() for _ in range(BURST)))
        elapsed = time.perf_counter() - started
        spent = sum(b.spent for b in await ledger.balance(scope, unit="usd"))
        if spent != Decimal("5.00"):
            raise SystemExit(f"cap not exact: spent {spent}")
        return elapsed
    finally:
        await ledger.aclose()


def worker(measure: str, store: str, postgres: str) -> float:
    """One measurement in this process (which imports whichever capledger PYTHONPATH names)."""
    with tempfile.TemporaryDirectory() as folder:
        url = _fresh_url(store, Path(folder), postgres)
        if measure == "pairs":
            return _pairs(url, PAIRS[store])
        return asyncio.run(_burst(url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="9c1d3b4", help="the older commit to compare with")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--postgres", default="", help="also measure this PostgreSQL URL")
    parser.add_argument("--measure", action="append", choices=["pairs", "burst"])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", action="append", choices=["memory", "sqlite", "postgresql"])
    parser.add_argument("--store", default="memory", help=argparse.SUPPRESS)
    options = parser.parse_args()
    measures = options.measure or ["pairs", "burst"]
    if options.worker:
        print(worker(measures[0], options.store, options.postgres))
        return
    stores = ["memory", "sqlite"] + (["postgresql"] if options.postgres else [])
    stores = [store for store in stores if store in (options.only or stores)]
    print(f"machine: {machine()}")
    print(f"{checkout()} beside {options.base}; {options.runs} runs per side, ABBA order")
    print(f"pairs per run: {PAIRS}; burst: {BURST} concurrent holds")
    print()
    print("| measure | store | this checkout | base | ratio | runs: this / base |")
    print("|---|---|--:|--:|--:|---|")
    with tempfile.TemporaryDirectory() as folder:
        sides = {"new": ROOT / "src", "old": export_source(options.base, Path(folder))}
        for measure in measures:
            for store in stores:
                figures: dict[str, list[float]] = {"new": [], "old": []}
                for index in range(options.runs):
                    order = ["new", "old"] if index % 2 == 0 else ["old", "new"]
                    for side in order:
                        args = ["--measure", measure, "--store", store]
                        args += ["--postgres", options.postgres]
                        figures[side] += run_worker(__file__, sides[side], *args)
                new, old = (statistics.median(figures[side]) for side in ("new", "old"))
                unit = "pairs/s" if measure == "pairs" else "s"
                shown = (lambda v: f"{v:,.0f}") if measure == "pairs" else (lambda v: f"{v:.3f}")
                runs = ", ".join(shown(v) for v in figures["new"])
                runs += " / " + ", ".join(shown(v) for v in figures["old"])
                print(
                    f"| {measure} ({unit}) | {store} | {shown(new)} | {shown(old)} "
                    f"| {new / old:.2f} | {runs} |"
                )


if __name__ == "__main__":
    main()
