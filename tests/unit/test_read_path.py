"""``balance`` is a read: a snapshot with no write lock, shown as the write path would see it.

The differential test runs random reserves, settles, limits and clock steps, then compares
what ``balance`` shows with what the core's ``Inspect`` operation answers through the
store's write path at the same moment (windows rolled, overdue holds expired).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capledger import Balance, ManualClock
from capledger._core import Config, Inspect
from capledger.clock import to_us
from capledger.ledger import Ledger
from capledger.stores import open_store

SCOPES = ("user:a", "user:b", "team:x")
START = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.lists(st.sampled_from(SCOPES), min_size=1, max_size=3, unique=True),
            st.integers(1, 40),  # cents
            st.sampled_from([5, 60, 3600]),  # ttl seconds
        ),
        st.tuples(st.just("settle"), st.integers(0, 40)),
        st.tuples(st.just("advance"), st.sampled_from([1, 30, 61, 3600, 86_400])),
        # NTP steps the wall clock alone: windows move, hold deadlines do not.
        st.tuples(st.just("step_wall"), st.sampled_from([1, 61, 86_400])),
        st.tuples(st.just("limit"), st.sampled_from(SCOPES), st.sampled_from(["day", "hour"])),
    ),
    max_size=25,
)


def _run(ledger: Ledger, clock: ManualClock, script: list[Any]) -> None:
    open_holds = []
    for step in script:
        if step[0] == "reserve":
            _, scopes, cents, ttl = step
            open_holds.append(ledger.reserve(list(scopes), usd=Decimal(cents) / 100, ttl=ttl))
        elif step[0] == "settle" and open_holds:
            open_holds.pop(0).settle(usd=Decimal(step[1]) / 100)
        elif step[0] == "advance":
            clock.advance(step[1])
        elif step[0] == "step_wall":
            clock.step_wall(step[1])
        elif step[0] == "limit":
            ledger.set_limit(step[1], usd="1000", period=step[2])


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=steps)
def test_balance_shows_what_the_write_path_would(
    kind: str, tmp_path: Path, script: list[Any]
) -> None:
    clock = ManualClock(START)
    url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path}/{time.monotonic_ns()}.db"
    store = open_store(url, clock)
    with Ledger(store=store) as ledger:
        _run(ledger, clock, script)
        for scope in SCOPES:
            shown = {
                (b.unit, b.period): (b.spent, b.held, b.window_start) for b in ledger.balance(scope)
            }
            inspected = store.execute([Inspect(scope)], Config())[0].accounts()
            written = {(a.unit, a.period): (a.spent, a.held, a.window_start_us) for a in inspected}
            assert set(shown) == set(written)
            for key, (spent, held, start) in shown.items():
                scale = Decimal(10**9) if key[0] == "usd" else Decimal(1)
                seen = (spent * scale, held * scale, to_us(start))
                assert seen == written[key], (scope, key)


def test_balance_takes_no_write_lock_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        ledger.set_limit("user:a", usd="1.00")
        ledger.reserve("user:a", usd="0.25")
        writer = sqlite3.connect(path, isolation_level=None, timeout=0)
        writer.execute("BEGIN IMMEDIATE")  # the write lock, held for the whole read below
        try:
            done = threading.Event()
            shown: list[Balance] = []

            def read() -> None:
                shown.extend(ledger.balance("user:a"))
                done.set()

            threading.Thread(target=read, daemon=True).start()
            assert done.wait(2.0), "balance waited for the write lock"
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert [b.held for b in shown] == [Decimal("0.25")]
