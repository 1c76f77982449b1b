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

from .records import Account, Entry, HoldRecord

__all__ = ["REPORT_BUILTIN_KEYS", "Mismatch", "VerifyReport", "build_report", "verify"]

_NO_END: Final = 2**63


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
    """What ``verify()`` found: ``ok`` is True when every account matches."""

    ok: bool
    accounts_checked: int
    open_holds: int
    entries_read: int
    mismatches: list[Mismatch] = field(default_factory=list)
    #: Accounts past their cap for a recorded reason: a settle ran over, or the cap was
    #: lowered below what was already spent and held. Not mismatches.
    overruns: list[str] = field(default_factory=list)


def verify(
    accounts: Sequence[Account], open_holds: Iterable[HoldRecord], entries: Iterable[Entry]
) -> VerifyReport:
    """Recompute every account from the journal and the open holds and compare.

    ``spent`` must equal the settled amounts in the account's stored window; ``held`` must
    equal the amounts of the open holds on its scope; ``spent + held`` may pass the cap only
    if an overrun entry on that scope falls in the window, or its cap was set after the
    window began (a cap lowered below the spend and holds already there).
    """
    by_scope_unit: dict[tuple[str, str], list[Account]] = {}
    for account in accounts:
        by_scope_unit.setdefault((account.scope, account.unit), []).append(account)
    expected_held = {account.key: 0 for account in accounts}
    expected_spent = dict(expected_held)
    overrun_seen: set[tuple[str, str, str]] = set()

    holds_counted = 0
    for hold in open_holds:
        holds_counted += 1
        for scope in hold.scopes:
            for unit, amount in hold.amounts.items():
                for account in by_scope_unit.get((scope, unit), ()):
                    expected_held[account.key] += amount

    entries_read = 0
    for entry in entries:
        entries_read += 1
        if entry.kind == "limit_set":
            # A cap lowered below what is already spent and held is not a breach: the
            # holds placed under the old cap settle normally (nothing is stranded).
            scope = entry.scopes[0]
            for unit in entry.amounts:
                for account in by_scope_unit.get((scope, unit), ()):
                    end = account.window_end_us or _NO_END
                    if account.period == entry.tags.get("period") and entry.ts_us < end:
                        overrun_seen.add(account.key)
            continue
        if entry.kind not in ("settled", "overrun"):
            continue
        for scope in entry.scopes:
            for unit, amount in entry.amounts.items():
                for account in by_scope_unit.get((scope, unit), ()):
                    end = account.window_end_us or _NO_END
                    if account.window_start_us <= entry.ts_us < end:
                        if entry.kind == "settled":
                            expected_spent[account.key] += amount
                        else:
                            overrun_seen.add(account.key)

    mismatches: list[Mismatch] = []
    overruns: list[str] = []
    for account in accounts:
        key = account.key
        if account.spent != expected_spent[key]:
            mismatches.append(
                Mismatch(*key, "spent", account.spent, expected_spent[key], "journal sum")
            )
        if account.held != expected_held[key]:
            mismatches.append(
                Mismatch(*key, "held", account.held, expected_held[key], "open holds")
            )
        if account.cap is not None and account.spent + account.held > account.cap:
            label = f"{account.scope} {account.unit}/{account.period}"
            if key in overrun_seen:
                overruns.append(label)
            else:
                mismatches.append(
                    Mismatch(
                        *key,
                        "cap",
                        account.spent + account.held,
                        account.cap,
                        "spent + held is past the cap with no overrun recorded",
                    )
                )
    return VerifyReport(
        ok=not mismatches,
        accounts_checked=len(accounts),
        open_holds=holds_counted,
        entries_read=entries_read,
        mismatches=mismatches,
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
