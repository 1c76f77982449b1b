"""What the ledger hands its callers: read-only views in API units, built from records.

Amounts are ``Decimal`` USD and ``int`` tokens and requests here; times are aware
``datetime``s. The records they come from count integers in each unit's smallest step and
microseconds (``capledger._core``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypeAlias

from capledger._core import Account, Flag, HoldRecord, flag_set
from capledger.clock import from_us
from capledger.money import from_units

__all__ = [
    "Balance",
    "Flag",
    "HoldInfo",
    "Limit",
    "Moment",
    "UnsettledHoldWarning",
    "api_amounts",
    "balance_of",
    "hold_info_of",
    "limit_of",
]

#: What ``report(since=..., until=...)`` accepts (see ``moment_of``).
Moment: TypeAlias = str | date | datetime


class UnsettledHoldWarning(UserWarning):
    """A hold left its ``with`` block unsettled with nothing observed: it was settled in full."""


@dataclass(frozen=True, slots=True)
class Balance:
    """One account of a scope, in API units (``Decimal`` USD, ``int`` tokens and requests).

    ``available`` is ``cap - spent - held`` (never below zero), or None with no cap.
    ``window_end`` is None for the ``total`` period.
    """

    scope: str
    unit: str
    period: str
    cap: Decimal | int | None
    spent: Decimal | int
    held: Decimal | int
    available: Decimal | int | None
    window_start: datetime
    window_end: datetime | None


@dataclass(frozen=True, slots=True)
class Limit:
    """A cap on one (scope, unit, period)."""

    scope: str
    unit: str
    period: str
    cap: Decimal | int
    tz: str


@dataclass(frozen=True, slots=True)
class HoldInfo:
    """A read-only view of a hold, as listed by ``holds()``.

    ``flags`` marks a settled hold: ``late`` (settled after it expired or was released),
    ``overrun`` (settled above its hold, or past a cap), both, or neither (empty).
    """

    id: str
    request_id: str | None
    scopes: tuple[str, ...]
    amounts: dict[str, Decimal | int]
    state: str
    created_at: datetime
    expires_at: datetime
    settled: dict[str, Decimal | int] | None
    flags: frozenset[Flag]
    tags: dict[str, object]


def api_amounts(amounts: Mapping[str, int]) -> dict[str, Decimal | int]:
    """Amounts per unit in API units."""
    return {unit: from_units(unit, amount) for unit, amount in amounts.items()}


def balance_of(account: Account) -> Balance:
    """The balance an account shows."""
    unit = account.unit
    cap = account.cap
    return Balance(
        scope=account.scope,
        unit=unit,
        period=account.period,
        cap=None if cap is None else from_units(unit, cap),
        spent=from_units(unit, account.spent),
        held=from_units(unit, account.held),
        available=None
        if cap is None
        else from_units(unit, max(0, cap - account.spent - account.held)),
        window_start=from_us(account.window_start_us),
        window_end=None if account.window_end_us is None else from_us(account.window_end_us),
    )


def limit_of(account: Account) -> Limit | None:
    """The limit an account enforces; None for an account with no cap."""
    if account.cap is None:
        return None
    return Limit(
        account.scope,
        account.unit,
        account.period,
        from_units(account.unit, account.cap),
        account.tz,
    )


def hold_info_of(record: HoldRecord) -> HoldInfo:
    """The read-only view of a hold record."""
    return HoldInfo(
        id=record.id,
        request_id=record.request_id,
        scopes=record.scopes,
        amounts=api_amounts(record.amounts),
        state=record.state,
        created_at=from_us(record.created_us),
        expires_at=from_us(record.expires_us),
        settled=None if record.settled is None else api_amounts(record.settled),
        flags=flag_set(record.flags),
        tags=dict(record.tags),
    )
