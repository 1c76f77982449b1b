"""Testing helpers shipped with capledger: the store contract suite and a stateful machine.

A store's test module subclasses ``LedgerContract`` and provides ``make_ledger``; the same
tests then run over it. ``build_ledger_machine`` returns a hypothesis state machine that
drives any ledger against a plain model. Both need pytest and hypothesis installed.
"""

from capledger.testing.contract import AsyncLedgerContract, LedgerContract, count_rows
from capledger.testing.fake_provider import FakeProvider as FakeProvider
from capledger.testing.stateful import build_ledger_machine

__all__ = ["AsyncLedgerContract", "LedgerContract", "build_ledger_machine", "count_rows"]
