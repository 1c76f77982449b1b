"""Named bounds on everything capledger accepts, checked against each other at import.

A bound turns "what if someone passes a huge value" from a question into an error message.
Amounts are integers in the unit's smallest step: nano-USD (1e-9 USD) for ``usd``, and whole
tokens or requests for the others.
"""

from __future__ import annotations

from typing import Final

from capledger.errors import LedgerInvariantError

NANO_PER_USD: Final = 1_000_000_000

#: The largest amount one operation may hold or settle, per unit.
MAX_AMOUNT: Final = {
    "usd": 1_000_000 * NANO_PER_USD,  # $1,000,000 in one call is a typo, not a call
    "tokens": 1_000_000_000_000,
    "requests": 1_000_000_000,
}
#: The largest cap a limit may have, per unit.
MAX_CAP: Final = {
    "usd": 1_000_000_000 * NANO_PER_USD,  # $1e9
    "tokens": 10**15,
    "requests": 10**12,
}
#: The SQL stores keep counters (spent, held, cap) as signed 64-bit integers: no counter may
#: ever pass this, or its write fails.
COUNTER_STORAGE_MAX: Final = 2**63 - 1
#: The bound on every account's ``spent + held``, capped or not ($4.6e9 in nano-USD). A hold
#: (reserve or extend) that would pass it is refused with ``CounterLimitReached``; a cap is
#: never above it. A settle is never refused for it (the money was spent): a settle above its
#: hold, or of a hold already closed, may take ``spent`` past it, into the headroom below.
MAX_COUNTER: Final = 2**62
#: How many settles of the largest amount, above their holds or late, the headroom between
#: ``MAX_COUNTER`` and ``COUNTER_STORAGE_MAX`` takes after an account stopped taking holds:
#: $4e9 of spend past $4.6e9 (a typed error past even that, never a driver's overflow).
SETTLES_PAST_MAX_COUNTER: Final = 4096

MAX_SCOPES_PER_HOLD: Final = 16
MAX_SCOPE_KIND_LENGTH: Final = 32
MAX_SCOPE_ID_LENGTH: Final = 200
MAX_SCOPE_LENGTH: Final = MAX_SCOPE_KIND_LENGTH + 1 + MAX_SCOPE_ID_LENGTH

MAX_REQUEST_ID_LENGTH: Final = 200
#: Hold ids are made by capledger (34 characters); one given back by a caller is refused
#: past this length before it reaches a store.
MAX_HOLD_ID_LENGTH: Final = 200

MAX_TAGS: Final = 32
MAX_TAG_KEY_LENGTH: Final = 64
MAX_TAG_VALUE_LENGTH: Final = 512
#: The encoded JSON of all tags on one journal entry.
MAX_TAGS_BYTES: Final = 4096

DEFAULT_TTL_S: Final = 60
MAX_TTL_S: Final = 24 * 3600

#: How many operations one store transaction may carry.
MAX_BATCH_SIZE: Final = 256
#: How many overdue holds one transaction expires; the rest stay counted as held (the safe
#: side) until a later transaction or ``sweep`` reaches them.
MAX_EXPIRE_PER_STEP: Final = 64
#: How many overdue holds one ``sweep`` transaction expires before committing and looping.
MAX_SWEEP_PER_STEP: Final = 1000

#: How long a store keeps retrying a busy or lost connection before BackendUnavailable.
STORE_RETRY_DEADLINE_S: Final = 60.0


def _check_bounds() -> None:
    for unit, amount in MAX_AMOUNT.items():
        if not 0 < amount <= MAX_CAP[unit] <= MAX_COUNTER < COUNTER_STORAGE_MAX:
            raise LedgerInvariantError(f"bounds for {unit} are inconsistent")
        # A hold is placed only while spent + held + amount <= MAX_COUNTER, so a settle of
        # an open hold leaves spent + held <= MAX_COUNTER - held + actual, and actual is at
        # most MAX_AMOUNT: one settle past the bound, and thousands more, fit in a counter.
        if MAX_COUNTER + amount * SETTLES_PAST_MAX_COUNTER > COUNTER_STORAGE_MAX:
            raise LedgerInvariantError(f"settles of {unit} past MAX_COUNTER could overflow")
    if MAX_CAP.keys() != MAX_AMOUNT.keys():
        raise LedgerInvariantError("every unit needs both an amount and a cap bound")
    if not 0 < DEFAULT_TTL_S <= MAX_TTL_S:
        raise LedgerInvariantError("the default TTL must lie within the TTL bound")
    if not 0 < MAX_EXPIRE_PER_STEP <= MAX_SWEEP_PER_STEP:
        raise LedgerInvariantError("a sweep step must expire at least as much as a lazy step")
    if MAX_SCOPE_LENGTH != MAX_SCOPE_KIND_LENGTH + 1 + MAX_SCOPE_ID_LENGTH:
        raise LedgerInvariantError("the scope length bound must be kind + ':' + id")
    # A hold's amount, multiplied by every scope it touches, must fit in a counter.
    for unit, amount in MAX_AMOUNT.items():
        if MAX_CAP[unit] + amount * MAX_BATCH_SIZE > MAX_COUNTER:
            raise LedgerInvariantError(f"a full batch of {unit} could overflow a counter")


_check_bounds()
