"""What the integrations need of a ledger: a few methods, named here, not the ledger classes.

The integrations sit above the ledger (errors/values -> core -> stores -> ledger ->
integrations) and import nothing of it: ``Ledger`` and ``AsyncLedger`` satisfy these
protocols, and so does any object with the same methods (a ledger behind a service).

A ledger is asynchronous when its reads are coroutine functions (``is_async_ledger``); its
``reserve`` then returns an awaitable hold, and every method of that hold is awaited.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeGuard

__all__ = [
    "AsyncHoldLike",
    "AsyncLedgerLike",
    "BalanceLike",
    "HoldLike",
    "LedgerLike",
    "is_async_ledger",
    "is_ledger",
]


class BalanceLike(Protocol):
    """One unit of a scope's balance, as the clamp policy reads it."""

    @property
    def unit(self) -> str:
        """``usd``, ``tokens`` or ``requests``."""

    @property
    def available(self) -> Decimal | int | None:
        """What is left to hold (``None``: no cap on this unit)."""


class _HoldView(Protocol):
    """What a hold says of itself, sync or async."""

    @property
    def id(self) -> str:
        """The hold's id."""

    @property
    def amounts(self) -> Mapping[str, Any]:
        """What is held, by unit."""

    @property
    def observed(self) -> Mapping[str, Any]:
        """What was observed so far, by unit."""


class HoldLike(_HoldView, Protocol):
    """A hold of a synchronous ledger: what a guarded call observes, extends and closes.

    The methods take the keyword arguments of ``capledger.Hold``'s (``usd=``, ``tokens=``,
    ``requests=``, ``tags=``, ``ttl=``).
    """

    def settle(self, *args: Any, **amounts: Any) -> Any:
        """Close the hold at what was spent (the held amounts when none are given)."""

    def release(self, *args: Any, **options: Any) -> Any:
        """Close the hold having spent nothing."""

    def extend(self, *args: Any, **amounts: Any) -> Any:
        """Hold more, or for longer."""

    def observe(self, *args: Any, **amounts: Any) -> Any:
        """Record a running figure (raises ``BudgetExceeded`` past what can be held)."""


class AsyncHoldLike(_HoldView, Protocol):
    """A hold of an asynchronous ledger: ``HoldLike`` with every method awaited."""

    def settle(self, *args: Any, **amounts: Any) -> Awaitable[Any]:
        """See ``HoldLike.settle``."""

    def release(self, *args: Any, **options: Any) -> Awaitable[Any]:
        """See ``HoldLike.release``."""

    def extend(self, *args: Any, **amounts: Any) -> Awaitable[Any]:
        """See ``HoldLike.extend``."""

    def observe(self, *args: Any, **amounts: Any) -> Awaitable[Any]:
        """See ``HoldLike.observe``."""


class LedgerLike(Protocol):
    """A synchronous ledger: holds and balances (``capledger.Ledger``).

    ``reserve`` takes ``capledger.Ledger.reserve``'s arguments: the scopes, then ``usd=``,
    ``tokens=``, ``requests=``, ``request_id=``, ``ttl=`` and ``tags=`` by keyword.
    """

    def reserve(self, *args: Any, **options: Any) -> HoldLike:
        """Hold budget on every scope, or on none (raises ``BudgetExceeded``)."""

    def balance(self, scope: str) -> Sequence[BalanceLike]:
        """The balance of one scope, a row per unit."""


class AsyncLedgerLike(Protocol):
    """An asynchronous ledger (``capledger.AsyncLedger``): ``LedgerLike``, awaited."""

    def reserve(self, *args: Any, **options: Any) -> Awaitable[AsyncHoldLike]:
        """See ``LedgerLike.reserve``."""

    async def balance(self, scope: str) -> Sequence[BalanceLike]:
        """See ``LedgerLike.balance``."""

    async def settle(self, *args: Any, **amounts: Any) -> Any:
        """Settle a hold by its id (Datasette's accountant keeps only the id)."""

    async def release(self, *args: Any, **options: Any) -> Any:
        """Release a hold by its id."""


def is_ledger(candidate: object) -> bool:
    """Whether ``candidate`` has a ledger's ``reserve`` and ``balance``."""
    return callable(getattr(candidate, "reserve", None)) and callable(
        getattr(candidate, "balance", None)
    )


def is_async_ledger(ledger: object) -> TypeGuard[AsyncLedgerLike]:
    """Whether ``ledger`` is asynchronous: its ``balance`` is a coroutine function."""
    return inspect.iscoroutinefunction(getattr(ledger, "balance", None))
