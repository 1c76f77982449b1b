"""The shared store contract and the stateful machine, over PostgreSQL.

Each contract test gets its own fresh database (see conftest.py). The stateful machine runs
many examples per test, so each example gets its own schema in the test's database instead
(``?schema=...``): creating a database per example would take most of the run.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from capledger import AsyncLedger, Ledger, ManualClock
from capledger.clock import Clock
from capledger.testing import AsyncLedgerContract, LedgerContract, build_ledger_machine

pytestmark = pytest.mark.postgres


class TestPostgresContract(LedgerContract):
    @pytest.fixture(autouse=True)
    def _database(self, pg_url: str) -> None:
        self.url = pg_url

    def make_ledger(self, clock: Clock, tmp_path: Path) -> Ledger:
        return Ledger(self.url, clock=clock)


class TestPostgresAsyncContract(AsyncLedgerContract):
    @pytest.fixture(autouse=True)
    def _database(self, pg_url: str) -> None:
        self.url = pg_url

    def make_async_ledger(self, clock: Clock, tmp_path: Path) -> AsyncLedger:
        return AsyncLedger(self.url, clock=clock)


def test_stateful_machine(pg_url: str) -> None:
    """The ledger on PostgreSQL against the plain model, a fresh schema per example.

    As many examples as the Hypothesis profile says (500 under CI, see tests/conftest.py),
    of 15 steps: an example here costs a schema and a round trip per step and per check.
    Listing holds and verifying cost tens of milliseconds a read here, so the store's open
    holds and the journal are checked at the end of each example, not after every step.
    """
    schemas = (f"example_{index}" for index in itertools.count())

    def make_ledger(clock: ManualClock) -> Ledger:
        return Ledger(f"{pg_url}&schema={next(schemas)}", clock=clock)

    machine = build_ledger_machine(make_ledger, check_each_step=False)
    machine.TestCase.settings = settings(
        stateful_step_count=15,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    machine.TestCase().runTest()
