"""Reads retry a terminated connection as writes do; a ledger keeps working across fork()."""

from __future__ import annotations

import os
import select
import time
import warnings
from decimal import Decimal

import psycopg
import pytest

from capledger import Ledger

pytestmark = pytest.mark.postgres

#: How long a forked child may take to use the ledger (it waited 60 s on its pool before).
CHILD_DEADLINE_S = 10.0


def _terminate_ledger_connections(admin_url: str, database: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'capledger' AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


def _use(ledger: Ledger, scope: str) -> None:
    with ledger.reserve(scope, usd="0.25") as hold:
        hold.settle(usd="0.10")


def test_reads_survive_a_terminated_connection(
    pg_admin_url: str, pg_database: str, pg_url: str
) -> None:
    reads = {
        "verify": lambda ledger: ledger.verify().ok,
        "report": lambda ledger: ledger.report(),
        "journal": lambda ledger: len(list(ledger._store.journal())),
        "balance": lambda ledger: ledger.balance("user:a")[0].spent,
        "holds": lambda ledger: ledger.holds(state=None)[0].state,
    }
    with Ledger(pg_url) as ledger:
        ledger.set_limit("user:a", usd="5")
        _use(ledger, "user:a")
        expected = {name: read(ledger) for name, read in reads.items()}
        for name, read in reads.items():
            # Every connection the pool holds is now dead; the read gets one of them.
            assert _terminate_ledger_connections(pg_admin_url, pg_database) >= 1
            assert read(ledger) == expected[name], name


def test_a_ledger_used_after_fork_works_in_the_child_and_the_parent(pg_url: str) -> None:
    with Ledger(pg_url) as ledger:
        ledger.set_limit("user:a", usd="5")
        _use(ledger, "user:a")
        read_end, write_end = os.pipe()
        started = time.monotonic()
        with warnings.catch_warnings():  # "multi-threaded, fork() may deadlock": the pool's
            warnings.simplefilter("ignore", DeprecationWarning)  # threads are not used after
            pid = os.fork()
        if pid == 0:  # the child: report, then leave without running the parent's cleanup
            status = 1
            try:
                # Statements the parent never ran: on an inherited connection they would be
                # prepared in the parent's session, which the parent would then prepare again.
                ledger.set_limit("user:child", usd="1", period="day")
                _use(ledger, "user:a")
                ok = ledger.verify().ok and len(ledger.holds(state=None)) == 2
                os.write(write_end, b"ok" if ok else b"not verified")
                status = 0
            except BaseException as error:
                os.write(write_end, repr(error).encode()[:500])
            finally:
                os._exit(status)
        os.close(write_end)
        try:
            ready, _, _ = select.select([read_end], [], [], CHILD_DEADLINE_S)
            said = os.read(read_end, 1000) if ready else b"no answer in time"
        finally:
            os.close(read_end)
            _, status = os.waitpid(pid, 0)
        assert (said, os.waitstatus_to_exitcode(status)) == (b"ok", 0)
        assert time.monotonic() - started < CHILD_DEADLINE_S
        # The parent's own connections were left alone.
        ledger.set_limit("user:parent", usd="1", period="day")
        _use(ledger, "user:a")
        assert ledger.verify().ok
        assert ledger.balance("user:a")[0].spent == Decimal("0.30")
