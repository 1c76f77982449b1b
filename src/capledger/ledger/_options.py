"""The keyword arguments the ledger's methods share, named once for both shells.

``Ledger`` and ``AsyncLedger`` (and ``Hold`` and ``AsyncHold``) take the same keywords; each
set is a ``TypedDict`` unpacked into ``**options``, which type checkers and editors read as
the keyword-only parameters it lists. Omitted keys take the defaults noted here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TypedDict

from capledger.money import AmountLike

from ._views import Moment

__all__ = [
    "Amounts",
    "ExtendOptions",
    "HoldsQuery",
    "LimitOptions",
    "ReportRange",
    "ReserveOptions",
    "SettleOptions",
]


class Amounts(TypedDict, total=False):
    """An amount per unit; at least one is needed where amounts are required."""

    #: Dollars as ``Decimal``, ``int``, ``str`` or ``float`` (taken through ``str``).
    usd: AmountLike | None
    #: Whole tokens.
    tokens: int | None
    #: Whole requests.
    requests: int | None


class SettleOptions(Amounts, total=False):
    """A settle's actual amounts (units not given settle at their held amount), and tags."""

    #: Attribution tags added to the settled entry.
    tags: Mapping[str, object] | None


class ExtendOptions(Amounts, total=False):
    """What an extend adds, and the expiry it pushes to."""

    #: Seconds (or a timedelta) from now that the hold lasts at least; None keeps it.
    ttl: float | timedelta | None


class ReserveOptions(Amounts, total=False):
    """A reserve's amounts and terms."""

    #: Makes the call idempotent: the same id returns the same open hold.
    request_id: str | None
    #: Seconds (at most a day) after which an unsettled hold expires (default 60).
    ttl: float | timedelta
    #: Attribution tags (model, feature, ...), journaled with every entry.
    tags: Mapping[str, object] | None
    #: Return the closed hold a ``request_id`` names instead of raising (default False).
    return_closed: bool


class LimitOptions(Amounts, total=False):
    """A limit's caps, and the period they apply to."""

    #: ``total`` (the default), ``minute`` ... ``year``, or a duration such as ``30d``.
    period: str
    #: The IANA time zone of a calendar period (default: the ledger's ``timezone``).
    tz: str | None


class HoldsQuery(TypedDict, total=False):
    """Which holds ``holds()`` lists."""

    #: Only holds charged to this scope.
    scope: str | None
    #: ``open`` (the default), ``settled``, ``released``, ``expired``, or None for all.
    state: str | None
    #: At most this many (default 1000).
    limit: int
    #: The most recent first (default False: oldest first).
    newest_first: bool


class ReportRange(TypedDict, total=False):
    """The time range a report covers."""

    #: From this moment (inclusive).
    since: Moment | None
    #: To this moment (exclusive).
    until: Moment | None
