"""Reports and verification: pure folds over the journal, no I/O.

The hot path never reads the journal; these do, so they stream it once and keep memory
proportional to the number of accounts or report groups, not to the journal's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Final

from capledger.clock import from_us
from capledger.money import UNITS, from_units

from .periods import window
from .records import Account, AccountKey, Entry, HoldRecord

__all__ = ["REPORT_BUILTIN_KEYS", "Mismatch", "VerifyReport", "build_report", "verify"]


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
class VerifyReport:
    """What ``verify()`` found: ``ok`` is True when every check passed.

    ``mismatches``: stored counters that disagree with the journal or the open holds.
    ``breaches``: moments in the journal where an account was past its cap with no recorded
    reason (a reserve or extension that overshot, or a settle past the cap not flagged
    overrun): these must never exist. ``overruns``: accounts past their cap now for a
    recorded reason (a settle ran over, or the cap was lowered): reported, not errors.
    """

    ok: bool
    accounts_checked: int
    open_holds: int
    entries_read: int
    mismatches: list[Mismatch] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)
    overruns: list[str] = field(default_factory=list)


class _Replay:
    """Replays the journal in order, keeping each account's spend and cap over time."""

    def __init__(self, accounts: Sequence[Account]) -> None:
        self.by_scope_unit: dict[tuple[str, str], list[Account]] = {}
        for account in accounts:
            self.by_scope_unit.setdefault((account.scope, account.unit), []).append(account)
        self.open_amounts: dict[str, dict[str, int]] = {}  # open hold id -> held amounts
        self.held: dict[tuple[str, str], int] = {}  # (scope, unit) -> sum of open holds
        self.spent: dict[AccountKey, int] = {}
        self.window_start: dict[AccountKey, int] = {}
        self.cap: dict[AccountKey, int | None] = {}
        self.breaches: list[str] = []

    def _spent_now(self, account: Account, ts_us: int) -> int:
        """The account's spend in the window that contains ``ts_us``.

        Before a fixed-duration limit's anchor, the "window" is its first one, which has
        not begun: nothing spent then counts in it.
        """
        key = account.key
        start, _ = window(account.period, account.tz, account.anchor_us, ts_us)
        if self.window_start.get(key) != start:
            self.window_start[key] = start
            self.spent[key] = 0
        return self.spent[key]

    def _add_spent(self, account: Account, ts_us: int, amount: int) -> None:
        self._spent_now(account, ts_us)
        if ts_us >= self.window_start[account.key]:
            self.spent[account.key] += amount

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
                            f"{from_us(entry.ts_us).isoformat()} {entry.kind} of hold "
                            f"{entry.hold_id} left {scope} {unit}/{account.period} at "
                            f"{total} past its cap {cap}"
                        )

    def apply(self, entry: Entry) -> None:
        kind = entry.kind
        if kind in ("limit_set", "limit_removed"):
            scope = entry.scopes[0]
            for unit, cap in entry.amounts.items():
                key = (scope, unit, str(entry.tags.get("period")))
                self.cap[key] = cap if kind == "limit_set" else None
        elif kind == "reserved":
            self.open_amounts[entry.hold_id or ""] = dict(entry.amounts)
            self._add_held(entry.scopes, entry.amounts, 1)
            self._check(entry, entry.amounts, excused=False)
        elif kind == "extended":
            held = self.open_amounts.setdefault(entry.hold_id or "", {})
            for unit, amount in entry.amounts.items():
                held[unit] = held.get(unit, 0) + amount
            self._add_held(entry.scopes, entry.amounts, 1)
            self._check(entry, entry.amounts, excused=False)
        elif kind in ("released", "expired"):
            self._add_held(entry.scopes, self.open_amounts.pop(entry.hold_id or "", {}), -1)
        elif kind == "settled":
            self._add_held(entry.scopes, self.open_amounts.pop(entry.hold_id or "", {}), -1)
            for scope in entry.scopes:
                for unit, amount in entry.amounts.items():
                    for account in self.by_scope_unit.get((scope, unit), ()):
                        self._add_spent(account, entry.ts_us, amount)
            self._check(entry, entry.amounts, excused="overrun" in entry.flags.split(","))


def verify(
    accounts: Sequence[Account], open_holds: Iterable[HoldRecord], entries: Iterable[Entry]
) -> VerifyReport:
    """Replay the journal, recompute every account, and check the cap at every step.

    * ``spent`` must equal the settles in the account's stored window, and ``held`` the
      amounts of the open holds on its scope.
    * Replaying the journal in order, no reserve or extension may leave an account with a
      cap past it, and a settle may only do so if it is flagged ``overrun`` (the money was
      spent; the account then refuses new holds).
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
        same_window = replay.window_start.get(key) == account.window_start_us
        expected_spent = replay.spent.get(key, 0) if same_window else 0
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
        ok=not mismatches and not replay.breaches,
        accounts_checked=len(accounts),
        open_holds=holds_counted,
        entries_read=entries_read,
        mismatches=mismatches,
        breaches=replay.breaches,
        overruns=overruns,
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
        flags = entry.flags.split(",") if entry.flags else []
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
