from pathlib import Path

from capledger import AsyncLedger, Ledger
from capledger.clock import Clock
from capledger.testing import AsyncLedgerContract, LedgerContract


class TestSQLiteContract(LedgerContract):
    def make_ledger(self, clock: Clock, tmp_path: Path) -> Ledger:
        return Ledger(f"sqlite:///{tmp_path}/ledger.db", clock=clock)


class TestSQLiteAsyncContract(AsyncLedgerContract):
    def make_async_ledger(self, clock: Clock, tmp_path: Path) -> AsyncLedger:
        return AsyncLedger(f"sqlite:///{tmp_path}/ledger.db", clock=clock)
