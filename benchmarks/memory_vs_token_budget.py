"""memory://, single thread: reserve+settle pairs/s beside token-budget-py's reserve+commit.

token-budget-py is a bare float counter under one lock; capledger's memory store also keeps
windows, several scopes, idempotency and a journal. Both run in this process. Each run
gives both a fresh ledger and alternates them every ``--chunk`` pairs, so machine noise
(this is a shared machine) hits both alike; capledger's journal keeps growing through the
run, as it would in an app.

    pip install token-budget-py
    python benchmarks/memory_vs_token_budget.py --runs 9
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib.metadata import version

from _common import machine

from capledger import Ledger


def token_budget_chunk(pool: object, pairs: int) -> float:
    """Seconds for ``pairs`` reserve+commit pairs on ``pool``."""
    reserve = pool.reserve  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(pairs):
        with reserve(usd=0.001) as reservation:
            reservation.commit(usd=0.001)
    return time.perf_counter() - started


def capledger_chunk(ledger: Ledger, pairs: int) -> float:
    """Seconds for ``pairs`` reserve+settle pairs on ``ledger``."""
    started = time.perf_counter()
    for _ in range(pairs):
        ledger.reserve("user:u1", usd="0.001").settle(usd="0.001")
    return time.perf_counter() - started


def one_run(pairs: int, chunk: int) -> tuple[float, float]:
    """Pairs/s of token-budget-py and of capledger over one run of ``pairs`` pairs each."""
    from token_budget import BudgetPool

    pool = BudgetPool(token_cap=10**15, usd_cap=1e12)
    ledger = Ledger("memory://")
    ledger.set_limit("user:u1", usd="1000000")
    peer_seconds = ours_seconds = 0.0
    for _ in range(pairs // chunk):
        peer_seconds += token_budget_chunk(pool, chunk)
        ours_seconds += capledger_chunk(ledger, chunk)
    return pairs / peer_seconds, pairs / ours_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    one_run(2_000, 1_000)  # warm up both
    peer, ours, ratios = [], [], []
    for _ in range(args.runs):
        peer_rate, our_rate = one_run(args.pairs, args.chunk)
        peer.append(peer_rate)
        ours.append(our_rate)
        ratios.append(our_rate / peer_rate)
    print(f"machine: {machine()}")
    print(
        f"token-budget-py {version('token-budget-py')}, capledger {version('capledger')}; "
        f"{args.pairs} pairs per run alternating every {args.chunk}, {args.runs} runs\n"
    )
    print("| contender | pairs/s median | all runs |")
    print("|---|---|---|")
    for name, rates in (("token-budget-py reserve+commit", peer), ("capledger memory://", ours)):
        print(
            f"| {name} | {statistics.median(rates):,.0f} | "
            f"{', '.join(f'{r:,.0f}' for r in rates)} |"
        )
    print(
        f"\nratio capledger / token-budget-py: median {statistics.median(ratios):.3f} "
        f"(per run: {', '.join(f'{r:.3f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
