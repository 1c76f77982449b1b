"""The contract every store must keep, as a pytest base class.

Subclass ``LedgerContract`` in a store's test module and implement ``make_ledger`` (a fresh,
empty ledger on that store, using the given clock). Every test asserts exact amounts, the
refusals as carefully as the successes, and that refused or invalid calls write nothing.

The tests are grouped by topic, one module each: holding and settling
(``_reserve_settle``), expiry, the counters' bounds, idempotency, windows and limits,
reads (events, reports, verification), and bad input; ``_async`` runs the contract through
``AsyncLedger``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from capledger import Ledger, ManualClock
from capledger.clock import Clock
from capledger.testing.contract._async import AsyncLedgerContract
from capledger.testing.contract._bad_input import BadInputContract
from capledger.testing.contract._counter_bounds import CounterBoundContract
from capledger.testing.contract._expiry import ExpiryContract
from capledger.testing.contract._idempotency import IdempotencyContract
from capledger.testing.contract._reads import ReadContract
from capledger.testing.contract._reserve_settle import ReserveSettleContract
from capledger.testing.contract._support import START, count_rows
from capledger.testing.contract._windows import WindowContract

__all__ = ["AsyncLedgerContract", "LedgerContract", "count_rows"]


class LedgerContract(
    ReserveSettleContract,
    ExpiryContract,
    CounterBoundContract,
    IdempotencyContract,
    WindowContract,
    ReadContract,
    BadInputContract,
):
    """The store contract. Subclasses implement ``make_ledger``."""

    def make_ledger(self, clock: Clock, tmp_path: Path) -> Ledger:
        """Return a fresh, empty ledger on the store under test."""
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(START)

    @pytest.fixture
    def ledger(self, clock: ManualClock, tmp_path: Path) -> Iterator[Ledger]:
        ledger = self.make_ledger(clock, tmp_path)
        yield ledger
        ledger.close()
