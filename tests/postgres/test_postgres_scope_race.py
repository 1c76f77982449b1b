"""A first reserve on a brand-new scope racing ``set_limit`` on it never loses an account.

The reserve creates the scope's ``total`` account while ``set_limit`` creates the limit's
account and counts the open holds into it. Without a lock that exists before the scope's
first account, both committed (different keys, so no unique violation) and the limit's
account missed the reserve's hold: ``held=0`` under an open $5 hold, and a second $5 was
granted on a $5 cap. Each race here runs the two from two ledgers (two pools, so they are
two transactions), released together by a barrier, then checks every account of the scope.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial

import psycopg
import pytest

from capledger import BudgetExceeded, Ledger
from capledger.money import to_units

pytestmark = pytest.mark.postgres

RACES = 200
CAP_USD = Decimal(5)
PERIODS = ["day", "month", "hour", "total", "30d"]


#: Every account whose held is not the sum of its scope's open holds in its unit, or whose
#: spent + held passes its cap; and every scope without a total account.
_BREACHES = """
SELECT a.scope || ' ' || a.unit || '/' || a.period || ': cap ' || coalesce(a.cap::text, '-')
       || ', spent ' || a.spent || ', held ' || a.held || ', open holds ' || o.held
  FROM capledger_accounts AS a,
       LATERAL (SELECT coalesce(sum((h.amounts ->> a.unit)::bigint), 0) AS held
                  FROM capledger_holds AS h
                 WHERE h.state = 'open' AND h.scopes ? a.scope) AS o
 WHERE a.scope LIKE 'user:race-%%' AND (a.held <> o.held OR a.spent + a.held > a.cap)
UNION ALL
SELECT s.scope || ': no total account'
  FROM (SELECT DISTINCT scope FROM capledger_accounts WHERE scope LIKE 'user:race-%%') AS s
 WHERE NOT EXISTS (SELECT 1 FROM capledger_accounts AS t
                    WHERE t.scope = s.scope AND t.period = 'total')
"""


def _together(barrier: threading.Barrier, call: Callable[[], object]) -> object:
    barrier.wait()
    return call()


@pytest.mark.parametrize("period", PERIODS)
def test_first_reserve_racing_set_limit(pg_url: str, period: str) -> None:
    cap_units = to_units("usd", CAP_USD)
    with (
        Ledger(pg_url) as reserving,
        Ledger(pg_url) as limiting,
        ThreadPoolExecutor(2) as pool,
        psycopg.connect(pg_url.partition("?")[0], autocommit=True) as connection,
    ):
        reserving.balance("user:warm-up")  # migrate and open both pools before racing
        limiting.balance("user:warm-up")
        scopes = [f"user:race-{period}-{index}" for index in range(RACES)]
        for scope in scopes:
            barrier = threading.Barrier(2)
            reserved = pool.submit(
                _together, barrier, partial(reserving.reserve, scope, usd=CAP_USD)
            )
            limited = pool.submit(
                _together,
                barrier,
                partial(limiting.set_limit, scope, usd=CAP_USD, period=period),
            )
            limited.result()
            reserved.result()
        breaches = [row[0] for row in connection.execute(_BREACHES)]
        caps = connection.execute(
            "SELECT DISTINCT cap FROM capledger_accounts WHERE period = %s AND scope = ANY(%s)",
            (period, scopes),
        ).fetchall()
        second_granted = []
        for scope in scopes:
            try:
                reserving.reserve(scope, usd=CAP_USD)
                second_granted.append(scope)
            except BudgetExceeded:
                pass
        assert (breaches, second_granted, caps) == ([], [], [(cap_units,)])
