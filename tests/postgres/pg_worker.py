"""A worker process for the kill -9 test: reserve, "call the model", settle, report.

Run as ``python pg_worker.py URL REPORT_PATH TTL_S ITERATIONS SEED``. After each settle
returns, one line ``hold_id usd`` is written (unbuffered) to REPORT_PATH: the parent checks
that every reported settle is in the journal, whenever this process is killed.
"""

from __future__ import annotations

import random
import sys
import time

from capledger import BudgetExceeded, Ledger


def main() -> None:
    url, report_path, ttl_s, iterations, seed = sys.argv[1:6]
    rng = random.Random(int(seed))
    with Ledger(url) as ledger, open(report_path, "a", buffering=1) as report:
        for _ in range(int(iterations)):
            scopes = ["user:hot", f"tenant:t{rng.randrange(2)}", f"feature:f{rng.randrange(3)}"]
            rng.shuffle(scopes)
            try:
                hold = ledger.reserve(scopes, usd="0.10", ttl=float(ttl_s))
            except BudgetExceeded:
                report.write("refused\n")
                continue
            time.sleep(0.03)  # the model call: most of a worker's life is spent holding
            hold.settle(usd="0.07")
            report.write(f"{hold.id} 0.07\n")


if __name__ == "__main__":
    main()
