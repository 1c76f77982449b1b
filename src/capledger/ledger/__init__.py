"""``Ledger`` and ``AsyncLedger``: the public API over a store.

One implementation, two thin shells, as httpx has with its clients:

- ``_base`` (``LedgerBase``) and ``_hold`` (``HoldBase``): everything that is not I/O. Each
  method of the API is one flow there (``capledger._flow``): it checks the arguments,
  yields the operations and reads it needs of the store, and makes the answer.
- ``_sync`` (``Ledger``, ``Hold``) and ``_async`` (``AsyncLedger``, ``AsyncHold``): perform
  those steps, with a call or with an ``await``.
- ``_views`` (what callers get back), ``_options`` (the keyword sets both shells take),
  ``_validate`` (argument checks, before any I/O), ``_batcher`` (concurrent operations in
  one store transaction).

Which operation a hold sends when it is observed or leaves its ``with`` block is decided by
the pure core (``capledger._core.holds``).
"""

from __future__ import annotations

from ._async import AsyncHold, AsyncLedger
from ._base import DEFAULT_URL, EVENT_KINDS
from ._options import (
    Amounts,
    ExtendOptions,
    HoldsQuery,
    LimitOptions,
    ReportRange,
    ReserveOptions,
    SettleOptions,
)
from ._sync import Hold, Ledger
from ._views import Balance, Flag, HoldInfo, Limit, UnsettledHoldWarning

__all__ = [
    "DEFAULT_URL",
    "EVENT_KINDS",
    "Amounts",
    "AsyncHold",
    "AsyncLedger",
    "Balance",
    "ExtendOptions",
    "Flag",
    "Hold",
    "HoldInfo",
    "HoldsQuery",
    "Ledger",
    "Limit",
    "LimitOptions",
    "ReportRange",
    "ReserveOptions",
    "SettleOptions",
    "UnsettledHoldWarning",
]
