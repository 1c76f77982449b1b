"""memory://, single thread: reserve+settle pairs/s beside token-budget-py's reserve+commit.

token-budget-py is a bare float counter under one lock; capledger's memory store also keeps
windows, several scopes, idempotency and a journal. Both run in this process, alternating
run by run so machine noise hits both alike.

    pip install token-budget-py
    python benchmarks/memory_vs_token_budget.py --runs 7
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib.metadata import version

from _common import machine

from capledger import Ledger


def token_budget_pairs(pairs: int) -> float:
    from token_budget import BudgetPool

    pool = BudgetPool(token_cap=10**15, usd_cap=1e12)
    started = time.perf_counter()
    for _ in range(pairs):
        with pool.reserve(usd=0.001) as reservation:
            reservation.commit(usd=0.001)
    return pairs / (time.perf_counter() - started)


def capledger_pairs(pairs: int) -> float:
    ledger = Ledger("memory://")
    ledger.set_limit("user:u1", usd="1000000")
    started = time.perf_counter()
    for _ in range(pairs):
        ledger.reserve("user:u1", usd="0.001").settle(usd="0.001")
    return pairs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    token_budget_pairs(1000)
    capledger_pairs(1000)
    peer, ours, ratios = [], [], []
    for _ in range(args.runs):
        peer.append(token_budget_pairs(args.pairs))
        ours.append(capledger_pairs(args.pairs))
        ratios.append(ours[-1] / peer[-1])
    print(f"machine: {machine()}")
    print(
        f"token-budget-py {version('token-budget-py')}, capledger {version('capledger')}; "
        f"{args.pairs} pairs per run, {args.runs} alternating runs\n"
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
