"""Testing helpers shipped with capledger.

- ``LedgerContract`` / ``AsyncLedgerContract``: the store contract suite. A store's test
  module subclasses one and provides ``make_ledger``; the same tests then run over it.
- ``build_ledger_machine``: a hypothesis state machine that drives any ledger against a
  plain model.
- ``FakeProvider`` (``capledger.testing.fake_provider``): a fake OpenAI / Anthropic provider
  over real HTTP on loopback that bills like a provider, to test an app's guarded clients.

The contract suite and the machine need pytest and hypothesis; the fake provider needs
nothing beyond the standard library. Each is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AsyncLedgerContract",
    "FakeProvider",
    "LedgerContract",
    "build_ledger_machine",
    "count_rows",
]

_HOMES = {
    "AsyncLedgerContract": "capledger.testing.contract",
    "LedgerContract": "capledger.testing.contract",
    "count_rows": "capledger.testing.contract",
    "build_ledger_machine": "capledger.testing.stateful",
    "FakeProvider": "capledger.testing.fake_provider",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'capledger.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
