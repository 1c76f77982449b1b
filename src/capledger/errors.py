"""Every error capledger raises on purpose.

The tree::

    LedgerError
    ├── BudgetExceeded          a hold or extension would pass a cap
    │   └── CounterLimitReached     a hold would pass the bound every counter is kept under
    ├── HoldClosed              the hold is settled, released or expired and the request conflicts
    │   └── IdempotentHoldClosed    a reserve's request_id names a hold that is already closed
    ├── HoldNotFound            no hold has that id
    ├── IdempotencyConflict     a request_id was reused with a different payload
    ├── InvalidInput (also ValueError)   bad arguments; nothing was written
    │   ├── InvalidAmount       NaN, infinite, negative, fractional tokens, past the bound
    │   ├── InvalidScope        not ``kind:id``, or too long
    │   ├── InvalidUnit         not one of usd, tokens, requests
    │   ├── InvalidPeriod       not a calendar period or a fixed duration such as ``30d``
    │   ├── InvalidTTL          zero, negative or past the bound
    │   └── InvalidTag          not a string key with a scalar value, or too large
    ├── ConfigurationError      a bad URL, option or environment variable
    ├── BackendUnavailable      the store cannot be reached; the driver error is the cause
    ├── UnknownModel            no price is known for a model and the policy says raise
    └── UnguardedRequest        a wrapped client's request cannot be priced or bounded; not sent

Invariant failures (a bug in capledger itself) are not ``LedgerError``: they raise
``LedgerInvariantError`` so that no ``except LedgerError`` swallows them.

The docstring of each class is its default message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the view of a hold belongs to the ledger, a layer above this one
    from capledger.ledger import HoldInfo

__all__ = [
    "BackendUnavailable",
    "BudgetExceeded",
    "ConfigurationError",
    "CounterLimitReached",
    "HoldClosed",
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
    "LedgerError",
    "LedgerInvariantError",
    "UnguardedRequest",
    "UnknownModel",
]


#: Where amounts are written out: wide enough that nothing rounds, and no trap set.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])
_CENT = Decimal("0.01")


def _amount_text(unit: str, amount: Decimal | int) -> str:
    """An amount for people: ``$0.01`` for dollars, ``1,200 tokens``, ``3 requests``.

    Dollars keep every digit they have (``$0.000123``) and at least two decimals; nothing
    passes through ``float``.
    """
    if unit != "usd":
        return f"{amount:,} {unit}"
    # In a context of our own: the caller's could round these digits, or trap on them.
    exact = Decimal(amount).normalize(_EXACT)
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        exact = exact.quantize(_CENT, context=_EXACT)
    sign = "-" if exact < 0 else ""
    whole, _, fraction = f"{exact.copy_abs():f}".partition(".")
    return f"{sign}${int(whole):,}.{fraction}"


def _amounts_text(amounts: Mapping[str, Decimal | int]) -> str:
    """Several amounts, in the order usd, tokens, requests: ``$0.01, 1,200 tokens``."""
    order = {"usd": 0, "tokens": 1, "requests": 2}
    units = sorted(amounts, key=lambda unit: (order.get(unit, 3), unit))
    return ", ".join(_amount_text(unit, amounts[unit]) for unit in units)


def _duration_text(duration: timedelta) -> str:
    """A duration to the second, rounded up (``3:59:59``): a wait is never understated."""
    return str(timedelta(seconds=math.ceil(duration.total_seconds())))


class LedgerError(Exception):
    """A capledger operation failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    #: The keyword arguments an error with fields was built with (set by its ``__init__``).
    _fields: dict[str, object]

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields need help to cross a process boundary (multiprocessing): the
        # error is rebuilt from its message and fields, then given back its attributes.
        fields = getattr(self, "_fields", {})
        return (_rebuild, (type(self), str(self), fields), self.__dict__)


def _rebuild(kind: type[LedgerError], message: str, fields: dict[str, object]) -> LedgerError:
    return kind(message, **fields)


class BudgetExceeded(LedgerError):
    """The budget cannot pay for this request."""

    def __init__(
        self,
        message: str | None = None,
        *,
        scope: str,
        unit: str,
        period: str,
        requested: Decimal | int,
        available: Decimal | int,
        retry_after: timedelta | None = None,
    ) -> None:
        self.scope = scope
        self.unit = unit
        self.period = period
        self.requested = requested
        self.available = available
        self.retry_after = retry_after
        self._fields = {
            "scope": scope,
            "unit": unit,
            "period": period,
            "requested": requested,
            "available": available,
            "retry_after": retry_after,
        }
        if message is None:
            message = (
                f"{scope} has {_amount_text(unit, available)} available in its {period} "
                f"limit; {_amount_text(unit, requested)} requested"
            )
            if retry_after is not None:
                message += f" (the window resets in {_duration_text(retry_after)})"
        super().__init__(message)


class CounterLimitReached(BudgetExceeded):
    """The account's counter is at the bound it is kept under; it takes no new holds."""

    def __init__(
        self,
        message: str | None = None,
        *,
        scope: str,
        unit: str,
        period: str,
        requested: Decimal | int,
        available: Decimal | int,
        bound: Decimal | int,
    ) -> None:
        """Args:
        message: the whole message; built from the fields below when omitted.
        scope, unit, period: the account (an uncapped ``total`` account, in practice).
        requested: the amount asked for.
        available: what is left below the bound.
        bound: the bound (``capledger.bounds.MAX_COUNTER``, in API units).
        """
        self.bound = bound
        if message is None:
            message = (
                f"{scope} has {_amount_text(unit, available)} left in its {unit}/{period} "
                f"counter before the bound every counter is kept under "
                f"({_amount_text(unit, bound)}); {_amount_text(unit, requested)} requested"
            )
        super().__init__(
            message,
            scope=scope,
            unit=unit,
            period=period,
            requested=requested,
            available=available,
        )
        self._fields = {**self._fields, "bound": bound}
        del self._fields["retry_after"]


class HoldClosed(LedgerError):
    """The hold is already closed and this request conflicts with how it closed."""

    def __init__(
        self,
        message: str | None = None,
        *,
        hold_id: str | None = None,
        state: str | None = None,
        settled: Mapping[str, Decimal | int] | None = None,
    ) -> None:
        """Args:
        message: the whole message; built from the fields below when omitted.
        hold_id: the hold.
        state: how it closed: ``settled``, ``released`` or ``expired``.
        settled: what it settled at, in API units (``Decimal`` dollars, ``int`` counts).
        """
        self.hold_id = hold_id
        self.state = state
        self.settled = None if settled is None else dict(settled)
        self._fields = {"hold_id": hold_id, "state": state, "settled": settled}
        if message is None and hold_id is not None:
            at = f" at {_amounts_text(settled)}" if settled else ""
            message = f"hold {hold_id} is already {state}{at}; a different settle is refused"
        super().__init__(message)


class IdempotentHoldClosed(HoldClosed):
    """This request_id names a hold that is already closed; nothing new was held."""

    def __init__(
        self,
        message: str | None = None,
        *,
        request_id: str | None = None,
        hold_id: str | None = None,
        state: str | None = None,
        settled: Mapping[str, Decimal | int] | None = None,
    ) -> None:
        """Args:
        message: the whole message; built from the fields below when omitted.
        request_id: the request_id of the reserve.
        hold_id: the hold that request_id placed earlier.
        state: how it closed: ``settled``, ``released`` or ``expired``.
        settled: what it settled at, in API units, if it settled.

        ``hold`` is that hold as a ``HoldInfo`` (set by the ledger), so that money spent
        under it can still be settled by id: ``ledger.settle(error.hold.id, usd=...)``.
        """
        self.request_id = request_id
        self.hold: HoldInfo | None = None
        if message is None and hold_id is not None:
            at = f" at {_amounts_text(settled)}" if settled else ""
            message = (
                f"request_id {request_id!r} placed hold {hold_id}, which is already "
                f"{state}{at}; nothing new was held (reserve(..., return_closed=True) "
                "returns the closed hold instead)"
            )
        super().__init__(message, hold_id=hold_id, state=state, settled=settled)
        self._fields = {**self._fields, "request_id": request_id}


class HoldNotFound(LedgerError):
    """No hold has that id."""


class IdempotencyConflict(LedgerError):
    """This request_id was already used with a different payload."""


class InvalidInput(LedgerError, ValueError):
    """The arguments are not valid; nothing was written."""


class InvalidAmount(InvalidInput):
    """The amount is not a finite, non-negative number within the bound."""


class InvalidScope(InvalidInput):
    """A scope must be a string 'kind:id' within the length bounds."""


class InvalidUnit(InvalidInput):
    """The unit must be one of: usd, tokens, requests."""


class InvalidPeriod(InvalidInput):
    """The period must be total, minute, hour, day, week, month, year or a duration like 30d."""


class InvalidTTL(InvalidInput):
    """The TTL must be a positive number of seconds within the bound."""


class InvalidTag(InvalidInput):
    """Tags must map short string keys to short scalar values."""


class ConfigurationError(LedgerError):
    """capledger is not configured correctly."""


class BackendUnavailable(LedgerError):
    """The store could not be reached; the operation may be retried."""


class UnknownModel(LedgerError):
    """No price is known for this model."""


class UnguardedRequest(LedgerError):
    """capledger cannot price or bound this request, so it was not sent.

    ``endpoint`` names the request (``POST /v1/images/generations``, or a server-side tool);
    ``reason`` says why it cannot be held. ``wrap(unguarded=[...])`` lets a named endpoint
    through unheld, journaled as such.
    """

    def __init__(self, message: str | None = None, *, endpoint: str = "", reason: str = "") -> None:
        super().__init__(message)
        self._fields = {"endpoint": endpoint, "reason": reason}
        self.endpoint = endpoint
        self.reason = reason


class LedgerInvariantError(AssertionError):
    """An internal invariant was broken: this is a bug in capledger, please report it."""
