from pathlib import Path

from capledger import AsyncLedger, Ledger
from capledger.clock import Clock
from capledger.testing import AsyncLedgerContract, LedgerContract


class TestMemoryContract(LedgerContract):
    def make_ledger(self, clock: Clock, tmp_path: Path) -> Ledger:
        return Ledger("memory://", clock=clock)


class TestMemoryAsyncContract(AsyncLedgerContract):
    def make_async_ledger(self, clock: Clock, tmp_path: Path) -> AsyncLedger:
        return AsyncLedger("memory://", clock=clock)
