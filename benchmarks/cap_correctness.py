"""cap_correctness: 1000 concurrent reservations of $0.10 against a $5.00 cap.

Each attempt holds $0.10, waits 1 ms (the fake LLM call), then settles $0.10. The cap must
hold exactly (50 granted, $5.00 spent, nothing held, no errors) on every store.

    python benchmarks/cap_correctness.py --store sqlite --store memory --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from decimal import Decimal
from pathlib import Path

from _common import machine

from capledger import AsyncLedger
from capledger.testing.workload import run_async, total_usd

CAP = Decimal("5.00")
PRICE = Decimal("0.10")


async def one_run(url: str, attempts: int, latency_s: float) -> tuple[float, int, Decimal, int]:
    ledger = AsyncLedger(url)
    await ledger.set_limit("user:hot", usd=CAP)
    result = await run_async(ledger, [["user:hot"]] * attempts, PRICE, latency_s)
    total = total_usd(await ledger.balance("user:hot"))
    report = await ledger.verify()
    await ledger.aclose()
    if total.held != 0 or not report.ok:
        raise SystemExit(f"cap check failed on {url}: {total}, {report}")
    return result.seconds, result.granted, total.spent, len(result.errors)


def url_for(store: str, folder: Path, run: int) -> str:
    if store == "memory":
        return "memory://"
    if store == "sqlite":
        return f"sqlite:///{folder}/cap-{run}.db"
    return store  # a full URL, e.g. postgresql://...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", help="memory, sqlite or a store URL")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=1.0)
    args = parser.parse_args()
    stores = args.store or ["sqlite", "memory"]
    print(f"machine: {machine()}")
    print(
        f"{args.attempts} concurrent asyncio reservations of ${PRICE} against ${CAP}, "
        f"{args.latency_ms} ms fake call, {args.runs} runs\n"
    )
    print("| store | granted | spent | errors | cap held | wall time median (s) | all runs (s) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for store in stores:
            runs = [
                asyncio.run(
                    one_run(url_for(store, Path(folder), n), args.attempts, args.latency_ms / 1000)
                )
                for n in range(args.runs)
            ]
            seconds = [r[0] for r in runs]
            granted = {r[1] for r in runs}
            spent = {r[2] for r in runs}
            errors = sum(r[3] for r in runs)
            held = granted == {50} and spent == {CAP} and errors == 0
            name = store.split("://")[0] if "://" in store else store
            spent_text = "/".join(f"{value:.2f}" for value in sorted(spent))
            print(
                f"| {name} | {'/'.join(map(str, sorted(granted)))} | ${spent_text} | "
                f"{errors} | {'yes' if held else 'NO'} | {statistics.median(seconds):.3f} | "
                f"{', '.join(f'{s:.3f}' for s in seconds)} |"
            )


if __name__ == "__main__":
    main()
