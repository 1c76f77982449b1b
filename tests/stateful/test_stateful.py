"""The ledger against a plain model, over every embedded store (PostgreSQL's machine is in
tests/postgres/test_postgres_contract.py). How many examples, and how many steps each,
comes from the Hypothesis profile loaded in tests/conftest.py: 500 examples under CI."""

from __future__ import annotations

import tempfile
from pathlib import Path

from capledger import Ledger, ManualClock
from capledger.testing import build_ledger_machine


def _sqlite_ledger(clock: ManualClock) -> Ledger:
    folder = Path(tempfile.mkdtemp(prefix="capledger-stateful-"))
    return Ledger(f"sqlite:///{folder}/ledger.db", clock=clock)


TestMemoryMachine = build_ledger_machine(
    lambda clock: Ledger("memory://", clock=clock), steps_wall=True
).TestCase

TestSQLiteMachine = build_ledger_machine(_sqlite_ledger, steps_wall=True).TestCase
