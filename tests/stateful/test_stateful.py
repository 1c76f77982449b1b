"""The ledger against a plain model, over every embedded store."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings

from capledger import Ledger, ManualClock
from capledger.testing import build_ledger_machine

_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _sqlite_ledger(clock: ManualClock) -> Ledger:
    folder = Path(tempfile.mkdtemp(prefix="capledger-stateful-"))
    return Ledger(f"sqlite:///{folder}/ledger.db", clock=clock)


TestMemoryMachine = build_ledger_machine(
    lambda clock: Ledger("memory://", clock=clock), steps_wall=True
).TestCase
TestMemoryMachine.settings = _SETTINGS

TestSQLiteMachine = build_ledger_machine(_sqlite_ledger, steps_wall=True).TestCase
TestSQLiteMachine.settings = _SETTINGS
