"""capledger: a hard cap on LLM spend.

Hold budget on every scope a call is charged to before the call, in one atomic step with
the cap check; settle the actual cost after, or release the hold. The cap is never
overshot, across threads, tasks, processes and hosts sharing a store.

``import capledger`` loads the ledger only: ``wrap``, ``guard`` and the policies come from
``capledger.integrations`` when first used, and with them pricing and estimates;
``attribute`` (and ``attribution``, with its thread-pool glue) from
``capledger.attribution``. A store's module, and its driver, loads when a ledger opens a URL
of its scheme.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from capledger._core import Event
from capledger._core.audit import Breach, Mismatch, VerifyReport
from capledger.clock import Clock, ManualClock, SystemClock
from capledger.errors import (
    BackendUnavailable,
    BudgetExceeded,
    ConfigurationError,
    CounterLimitReached,
    HoldClosed,
    HoldNotFound,
    IdempotencyConflict,
    IdempotentHoldClosed,
    InvalidAmount,
    InvalidInput,
    InvalidPeriod,
    InvalidScope,
    InvalidTag,
    InvalidTTL,
    InvalidUnit,
    LedgerError,
    UnguardedRequest,
    UnknownModel,
)
from capledger.ledger import (
    AsyncHold,
    AsyncLedger,
    Balance,
    Flag,
    Hold,
    HoldInfo,
    Ledger,
    Limit,
    UnsettledHoldWarning,
)

if TYPE_CHECKING:
    from capledger import attribution
    from capledger.attribution import attribute
    from capledger.integrations import Clamp, Downgrade, ShortBudget, guard, wrap

__version__ = "0.1.0"

#: Names served by ``capledger.integrations``, imported on first use.
_INTEGRATIONS = frozenset({"Clamp", "Downgrade", "ShortBudget", "guard", "wrap"})


def __getattr__(name: str) -> Any:
    if name in _INTEGRATIONS:
        return getattr(importlib.import_module("capledger.integrations"), name)
    if name == "attribution":
        return importlib.import_module("capledger.attribution")
    if name == "attribute":
        return importlib.import_module("capledger.attribution").attribute
    raise AttributeError(f"module 'capledger' has no attribute {name!r}")


__all__ = [
    "AsyncHold",
    "AsyncLedger",
    "BackendUnavailable",
    "Balance",
    "Breach",
    "BudgetExceeded",
    "Clamp",
    "Clock",
    "ConfigurationError",
    "CounterLimitReached",
    "Downgrade",
    "Event",
    "Flag",
    "Hold",
    "HoldClosed",
    "HoldInfo",
    "HoldNotFound",
    "IdempotencyConflict",
    "IdempotentHoldClosed",
    "InvalidAmount",
    "InvalidInput",
    "InvalidPeriod",
    "InvalidScope",
    "InvalidTTL",
    "InvalidTag",
    "InvalidUnit",
    "Ledger",
    "LedgerError",
    "Limit",
    "ManualClock",
    "Mismatch",
    "ShortBudget",
    "SystemClock",
    "UnguardedRequest",
    "UnknownModel",
    "UnsettledHoldWarning",
    "VerifyReport",
    "__version__",
    "attribute",
    "attribution",
    "guard",
    "wrap",
]
