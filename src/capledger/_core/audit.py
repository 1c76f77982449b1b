"""Reports and verification: pure folds over the journal, no I/O.

The hot path never reads the journal; these do, so they stream it once and keep memory
proportional to the number of accounts or report groups, not to the journal's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from capledger.clock import from_us
from capledger.money import UNITS, from_units

from .periods import CALENDAR_PERIODS, next_window, retimed_end, window
from .records import Account, AccountKey, Entry, EntryKind, HoldRecord, flag_set

__all__ = ["REPORT_BUILTIN_KEYS", "Breach", "Mismatch", "VerifyReport", "build_report", "verify"]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One account whose counters disagree with the journal or the open holds."""

    scope: str
    unit: str
    period: str
    field: str  # "spent", "held" or "cap"
    stored: int
    expected: int
    detail: str = ""

    def __str__(self) -> str:
        return (
            f"{self.scope} {self.unit}/{self.period}: {self.field} is {self.stored}, "
            f"expected {self.expected}" + (f" ({self.detail})" if self.detail else "")
        )


@dataclass(frozen=True, slots=True)
class Breach:
    """A moment in the journal where an account was past its cap with no recorded reason.

    The journal entry at ``at`` (a ``reserved`` or ``extended`` entry, or a ``settled`` one
    not flagged overrun) of hold ``hold_id`` left the account (``scope``, ``unit``,
    ``period``) holding and spending ``spent_and_held`` in total, past its ``cap``. Like
    ``Mismatch``'s, the amounts are integers in the unit's smallest step (nano-USD for
    ``usd``).
    """

    at: datetime
    kind: EntryKind
    hold_id: str | None
    scope: str
    unit: str
    period: str
    spent_and_held: int
    cap: int

    def __str__(self) -> str:
        return (
            f"{self.at.isoformat()} {self.kind} of hold {self.hold_id} left {self.scope} "
            f"{self.unit}/{self.period} at {self.spent_and_held} past its cap {self.cap}"
        )


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify()`` found: ``ok`` is True when every check passed.

    ``mismatches``: stored counters that disagree with the journal or the open holds.
    ``breaches``: moments in the journal where an account was past its cap with no recorded
    reason (a reserve or extension that overshot, or a settle past the cap not flagged
    overrun), one ``Breach`` each: these must never exist. ``exposures``: settles that
    arrived after their hold expired and its budget was granted to another hold, so that
    money spent within the hold passed the cap (G2 was exposed: a hold expired while its
    call was still spending, e.g. a TTL shorter than the call); they make ``ok`` False, as
    breaches do. ``overruns``: accounts past their cap now for a recorded reason (a settle
    ran over, or the cap was lowered): reported, not errors.
    """

    ok: bool
    accounts_checked: int
    open_holds: int
    entries_read: int
    mismatches: list[Mismatch] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)
    overruns: list[str] = field(default_factory=list)
    exposures: list[str] = field(default_factory=list)


class _Track:
    """One account's window and spend as the store keeps them, rolled as the journal is read.

    The windows are the store's: the same ``window``, ``next_window`` and ``retimed_end``
    at the same instants (a limit's journal entry carries its time zone), so a window rolled
    at a later entry is the one the store rolled to at its operation. A total is always
    live; a limit is live from its ``limit_set`` until its ``limit_removed``. Before that,
    spend is followed in the windows of the time zone last known for it, to start the limit
    from when it is set, as the store does.
    """

    __slots__ = ("anchor_us", "end_us", "live", "period", "spent", "start_us", "tz")

    def __init__(self, account: Account) -> None:
        self.period = account.period
        self.tz = account.tz
        self.anchor_us = account.anchor_us
        self.start_us: int | None = None
        self.end_us: int | None = None
        self.spent = 0
        self.live = account.period == "total"

    def at(self, ts_us: int) -> _Track:
        """Roll into the window the store has at ``ts_us``."""
        end = self.end_us
        if self.start_us is None:
            self.start_us, self.end_us = window(self.period, self.tz, self.anchor_us, ts_us)
            self.spent = 0
        elif end is not None and ts_us >= end:
            self.start_us, self.end_us = next_window(
                self.period, self.tz, self.anchor_us, end, ts_us
            )
            self.spent = 0
        return self

    def add(self, ts_us: int, amount: int) -> None:
        self.at(ts_us)
        # Before a duration's anchor its "window" is its first one, which has not begun:
        # nothing spent then counts in it. A live account counts what the store counted.
        if self.live or ts_us >= (self.start_us or 0):
            self.spent += amount

    def limit_set(self, entry: Entry, tz: str) -> None:
        """Apply a ``limit_set``: create the account, or re-assert it (maybe in a new zone)."""
        ts_us = entry.ts_us
        if not self.live:
            start, end = window(self.period, tz, ts_us, ts_us)
            followed = self.at(ts_us).start_us == start
            recorded = entry.tags.get("spent")
            if self.period not in CALENDAR_PERIODS:
                # A duration starts at its creation: what was settled at that very instant,
                # before it in the journal (an earlier operation of the same batch), counts.
                self.spent = self.spent if followed else 0
            elif not followed and recorded is not None:
                self.spent = int(str(recorded))  # the journal before it had other windows
            self.tz, self.anchor_us, self.start_us, self.end_us = tz, ts_us, start, end
            self.live = True
            return
        self.at(ts_us)
        end = self.end_us
        if self.period in CALENDAR_PERIODS and tz != self.tz and self.start_us is not None:
            if end is not None:
                self.end_us = retimed_end(self.period, tz, self.start_us, end)
            self.tz = tz


class _Replay:
    """Replays the journal in order, keeping each account's spend and cap over time."""

    def __init__(self, accounts: Sequence[Account]) -> None:
        self.by_scope_unit: dict[tuple[str, str], list[Account]] = {}
        self.tracks: dict[AccountKey, _Track] = {}
        for account in accounts:
            self.by_scope_unit.setdefault((account.scope, account.unit), []).append(account)
            self.tracks[account.key] = _Track(account)
        self.open_amounts: dict[str, dict[str, int]] = {}  # open hold id -> held amounts
        self.held: dict[tuple[str, str], int] = {}  # (scope, unit) -> sum of open holds
        self.cap: dict[AccountKey, int | None] = {}
        self.breaches: list[Breach] = []
        # Holds granted per (scope, unit), and for each expired hold not settled since, its
        # amounts and those counts when it expired: a late settle passing the cap within
        # its hold after new grants is an exposure. Kept until the hold settles (an expired
        # hold never settled stays: memory grows with those alone).
        self.grants: dict[tuple[str, str], int] = {}
        self.expired: dict[str, tuple[dict[str, int], dict[tuple[str, str], int]]] = {}
        self.exposures: list[str] = []

    def _spent_now(self, account: Account, ts_us: int) -> int:
        """The account's spend in the window the store has at ``ts_us``."""
        return self.tracks[account.key].at(ts_us).spent

    def _add_spent(self, account: Account, ts_us: int, amount: int) -> None:
        self.tracks[account.key].add(ts_us, amount)

    def _add_held(self, scopes: tuple[str, ...], amounts: dict[str, int], sign: int) -> None:
        for scope in scopes:
            for unit, amount in amounts.items():
                self.held[(scope, unit)] = self.held.get((scope, unit), 0) + sign * amount

    def _check(self, entry: Entry, units: Iterable[str], excused: bool) -> None:
        for scope in entry.scopes:
            for unit in units:
                for account in self.by_scope_unit.get((scope, unit), ()):
                    cap = self.cap.get(account.key)
                    if cap is None:
                        continue
                    total = self._spent_now(account, entry.ts_us) + self.held.get((scope, unit), 0)
                    if total > cap and not excused:
                        self.breaches.append(
                            Breach(
                                from_us(entry.ts_us),
                                entry.kind,
                                entry.hold_id,
                                scope,
                                unit,
                                account.period,
                                spent_and_held=total,
                                cap=cap,
                            )
                        )

    def apply(self, entry: Entry) -> None:
        kind = entry.kind
        if kind in ("limit_set", "limit_removed"):
            scope = entry.scopes[0]
            for unit, cap in entry.amounts.items():
                key = (scope, unit, str(entry.tags.get("period")))
                self.cap[key] = cap if kind == "limit_set" else None
                track = self.tracks.get(key)
                if track is None or track.period == "total":
                    continue
                if kind == "limit_removed":
                    track.live = False  # the store deleted the account
                else:
                    track.limit_set(entry, str(entry.tags.get("tz", track.tz)))
        elif kind == "reserved":
            self.open_amounts[entry.hold_id or ""] = dict(entry.amounts)
            self._add_held(entry.scopes, entry.amounts, 1)
            self._count_grant(entry)
            self._check(entry, entry.amounts, excused=False)
        elif kind == "extended":
            held = self.open_amounts.setdefault(entry.hold_id or "", {})
            for unit, amount in entry.amounts.items():
                held[unit] = held.get(unit, 0) + amount
            self._add_held(entry.scopes, entry.amounts, 1)
            self._count_grant(entry)
            self._check(entry, entry.amounts, excused=False)
        elif kind == "released":
            self._add_held(entry.scopes, self.open_amounts.pop(entry.hold_id or "", {}), -1)
        elif kind == "expired":
            amounts = self.open_amounts.pop(entry.hold_id or "", {})
            self._add_held(entry.scopes, amounts, -1)
            grants = {
                (scope, unit): self.grants.get((scope, unit), 0)
                for scope in entry.scopes
                for unit in amounts
            }
            self.expired[entry.hold_id or ""] = (amounts, grants)
        elif kind == "settled":
            self._add_held(entry.scopes, self.open_amounts.pop(entry.hold_id or "", {}), -1)
            for scope in entry.scopes:
                for unit, amount in entry.amounts.items():
                    for account in self.by_scope_unit.get((scope, unit), ()):
                        self._add_spent(account, entry.ts_us, amount)
            self._check(entry, entry.amounts, excused="overrun" in flag_set(entry.flags))
            expired = self.expired.pop(entry.hold_id or "", None)
            if expired is not None:
                self._check_exposure(entry, *expired)

    def _count_grant(self, entry: Entry) -> None:
        for scope in entry.scopes:
            for unit in entry.amounts:
                self.grants[(scope, unit)] = self.grants.get((scope, unit), 0) + 1

    def _check_exposure(
        self, entry: Entry, held: dict[str, int], grants: dict[tuple[str, str], int]
    ) -> None:
        """Report a settle of an expired hold that passed a cap within what it held, after
        the expiry's budget went to other holds."""
        for scope in entry.scopes:
            for unit, amount in entry.amounts.items():
                if self.grants.get((scope, unit), 0) == grants.get((scope, unit), 0):
                    continue  # no hold was granted there since it expired
                beyond_hold = max(0, amount - held.get(unit, 0))
                for account in self.by_scope_unit.get((scope, unit), ()):
                    cap = self.cap.get(account.key)
                    if cap is None:
                        continue
                    total = self._spent_now(account, entry.ts_us) + self.held.get((scope, unit), 0)
                    if total - beyond_hold > cap:
                        self.exposures.append(
                            f"{from_us(entry.ts_us).isoformat()} late settle of hold "
                            f"{entry.hold_id} left {scope} {unit}/{account.period} at {total} "
                            f"past its cap {cap}: it expired while still spending and its "
                            "budget was granted to another hold"
                        )


def verify(
    accounts: Sequence[Account], open_holds: Iterable[HoldRecord], entries: Iterable[Entry]
) -> VerifyReport:
    """Replay the journal, recompute every account, and check the cap at every step.

    * ``spent`` must equal the settles in the account's stored window, and ``held`` the
      amounts of the open holds on its scope.
    * Replaying the journal in order, no reserve or extension may leave an account with a
      cap past it, and a settle may only do so if it is flagged ``overrun`` (the money was
      spent; the account then refuses new holds).
    * A late settle of an expired hold must not pass a cap within what the hold held after
      the expired budget was granted to another hold (an exposure; see ``VerifyReport``).
    """
    replay = _Replay(accounts)
    entries_read = 0
    for entry in entries:
        entries_read += 1
        replay.apply(entry)

    expected_held: dict[AccountKey, int] = {}
    holds_counted = 0
    for hold in open_holds:
        holds_counted += 1
        for scope in hold.scopes:
            for unit, amount in hold.amounts.items():
                for account in replay.by_scope_unit.get((scope, unit), ()):
                    expected_held[account.key] = expected_held.get(account.key, 0) + amount

    mismatches: list[Mismatch] = []
    overruns: list[str] = []
    for account in accounts:
        key = account.key
        # A balance read may have rolled the stored window past the last journal entry;
        # nothing has been spent in such a window yet.
        track = replay.tracks[key]
        same_window = track.start_us == account.window_start_us
        expected_spent = track.spent if same_window else 0
        if account.spent != expected_spent:
            mismatches.append(Mismatch(*key, "spent", account.spent, expected_spent, "journal sum"))
        held = expected_held.get(key, 0)
        if account.held != held:
            mismatches.append(Mismatch(*key, "held", account.held, held, "open holds"))
        if replay.held.get((account.scope, account.unit), 0) != held:
            mismatches.append(
                Mismatch(
                    *key,
                    "held",
                    replay.held.get((account.scope, account.unit), 0),
                    held,
                    "the journal's open holds disagree with the hold rows",
                )
            )
        if account.cap is not None and account.spent + account.held > account.cap:
            overruns.append(f"{account.scope} {account.unit}/{account.period}")
    return VerifyReport(
        ok=not mismatches and not replay.breaches and not replay.exposures,
        accounts_checked=len(accounts),
        open_holds=holds_counted,
        entries_read=entries_read,
        mismatches=mismatches,
        breaches=replay.breaches,
        overruns=overruns,
        exposures=replay.exposures,
    )


#: Grouping keys with a fixed meaning; any other key groups by the tag of that name.
REPORT_BUILTIN_KEYS: Final = ("scope", "kind", "unit", "day", "hour", "month")


def _group_values(key: str, entry: Entry, scope: str, unit: str) -> str:
    if key == "scope":
        return scope
    if key == "kind":
        return scope.partition(":")[0]
    if key == "unit":
        return unit
    if key in ("day", "hour", "month"):
        moment = from_us(entry.ts_us).astimezone(UTC)
        fmt = {"day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H:00", "month": "%Y-%m"}[key]
        return moment.strftime(fmt)
    value = entry.tags.get(key)
    return "" if value is None else str(value)


def build_report(entries: Iterable[Entry], group_by: Sequence[str]) -> list[dict[str, object]]:
    """Sum settled spend per group; one row per group, sorted by the group keys.

    Each row has the group keys, ``calls`` (settled holds), ``overruns``, ``late`` and the
    spend: ``spent`` when grouped by ``unit``, else one ``usd`` / ``tokens`` / ``requests``
    column each. A hold charged to several scopes counts once per scope when grouped by
    scope or kind, and once otherwise.
    """
    per_scope = "scope" in group_by or "kind" in group_by
    by_unit = "unit" in group_by
    groups: dict[tuple[str, ...], dict[str, int]] = {}
    for entry in entries:
        if entry.kind != "settled":
            continue
        scopes = entry.scopes if per_scope else entry.scopes[:1]
        units = list(entry.amounts) if by_unit else ["-"]
        flags = flag_set(entry.flags)
        seen: set[tuple[str, ...]] = set()
        for scope in scopes:
            for unit in units:
                key = tuple(_group_values(k, entry, scope, unit) for k in group_by)
                if key in seen:
                    continue  # two scopes of one kind: count the hold once for that kind
                seen.add(key)
                counts = groups.setdefault(key, {"calls": 0, "overruns": 0, "late": 0})
                counts["calls"] += 1
                counts["overruns"] += "overrun" in flags
                counts["late"] += "late" in flags
                for spent_unit, amount in entry.amounts.items():
                    if by_unit and spent_unit != unit:
                        continue
                    column = "spent" if by_unit else spent_unit
                    counts[column] = counts.get(column, 0) + amount
    rows: list[dict[str, object]] = []
    for key in sorted(groups):
        counts = groups[key]
        row: dict[str, object] = dict(zip(group_by, key, strict=True))
        row["calls"] = counts["calls"]
        if by_unit:
            row["spent"] = from_units(str(row["unit"]), counts.get("spent", 0))
        else:
            for unit in UNITS:
                row[unit] = from_units(unit, counts.get(unit, 0))
        row["overruns"] = counts["overruns"]
        row["late"] = counts["late"]
        rows.append(row)
    return rows
