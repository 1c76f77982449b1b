"""The ledger commands: limits, balance, holds, sweep, report, verify, migrate."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import click

from capledger import Breach, Mismatch, VerifyReport
from capledger._core import HOLD_STATES
from capledger._core.periods import check_timezone_applies
from capledger.ledger import Balance, HoldInfo, Limit
from capledger.money import UNITS, from_units

from ._app import BadInput, open_ledger, option
from ._output import FORMATS, emit, progress, table_cell
from ._params import PERIOD, SCOPE, TIMESTAMP, TIMEZONE, UNIT, CapType, GroupByType

__all__ = [
    "balance",
    "holds",
    "limits",
    "migrate",
    "report",
    "sweep",
    "verify",
]

#: The most holds one ``holds`` listing shows.
MAX_HOLDS_LISTED: Final = 100_000

_LIMIT_COLUMNS: Final = {
    "scope": "scope",
    "unit": "unit",
    "period": "period",
    "cap": "cap",
    "tz": "tz",
}
_BALANCE_COLUMNS: Final = {
    "scope": "scope",
    "unit": "unit",
    "period": "period",
    "cap": "cap",
    "spent": "spent",
    "held": "held",
    "available": "available",
    "window_start": "window start",
    "window_end": "window end",
}
_HOLD_COLUMNS: Final = {
    "id": "id",
    "state": "state",
    "scopes": "scopes",
    "held": "held",
    "settled": "settled",
    "created_at": "created",
    "expires_at": "expires",
    "flags": "flags",
    "request_id": "request id",
    "tags": "tags",
}


#: ``--format`` of every listing command (also ``CAPLEDGER_FORMAT``).
format_option = option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    envvar="CAPLEDGER_FORMAT",
    help="table for people; csv and json for scripts (exact decimal strings).",
)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 hold``, ``2 holds``, ``1,000 holds`` (``nouns`` for irregular plurals)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def period_text(period: str) -> str:
    """``month`` -> ``per month``; ``total`` -> ``in total``; ``30d`` -> ``per 30d``."""
    return "in total" if period == "total" else f"per {period}"


# --- limits -----------------------------------------------------------------------------------


@click.group()
def limits() -> None:
    """Set, list and remove caps (per scope, unit and period)."""


@limits.command("set")
@click.argument("scope", type=SCOPE)
@option("--usd", type=CapType("usd"), help="Cap in US dollars, exact (5, 0.25, 1e3).")
@option("--tokens", type=CapType("tokens"), help="Cap in tokens (a whole number).")
@option("--requests", type=CapType("requests"), help="Cap in requests (a whole number).")
@option(
    "--period",
    type=PERIOD,
    default="total",
    show_default=True,
    help="total, minute, hour, day, week, month, year, or a duration such as 30d or 12h.",
)
@option(
    "--tz",
    type=TIMEZONE,
    default=None,
    help="IANA time zone of calendar periods [UTC]; not for total or a duration.",
)
@click.pass_context
def limits_set(
    ctx: click.Context,
    *,
    scope: str,
    usd: Decimal | None,
    tokens: int | None,
    requests: int | None,
    period: str,
    tz: str | None,
) -> None:
    """Cap SCOPE (kind:id, such as user:u_42) per period; takes effect at once.

    Setting a cap that exists replaces it. A new limit starts from the truth: the spend
    already journaled in its current window and the open holds on the scope.
    """
    if usd is None and tokens is None and requests is None:
        raise click.UsageError("give at least one cap: --usd, --tokens or --requests")
    check_timezone_applies(period, tz)  # before the ledger is opened: nothing is created
    ledger = open_ledger(ctx)
    ledger.set_limit(scope, usd=usd, tokens=tokens, requests=requests, period=period, tz=tz)
    given = {
        unit for unit, cap in zip(UNITS, (usd, tokens, requests), strict=True) if cap is not None
    }
    for limit in _sorted_limits(ledger.limits(scope)):
        if limit.period == period and limit.unit in given:
            click.echo(
                f"{limit.scope}: {limit.unit} cap {table_cell(limit.cap)} "
                f"{period_text(limit.period)} ({limit.tz})"
            )


def _sorted_limits(found: list[Limit]) -> list[Limit]:
    """By scope, then unit in the order usd, tokens, requests, then period."""
    order: dict[str, int] = {unit: index for index, unit in enumerate(UNITS)}
    return sorted(found, key=lambda limit: (limit.scope, order[limit.unit], limit.period))


def _limit_row(limit: Limit) -> dict[str, object]:
    return {
        "scope": limit.scope,
        "unit": limit.unit,
        "period": limit.period,
        "cap": limit.cap,
        "tz": limit.tz,
    }


@limits.command("list")
@option("--scope", type=SCOPE, default=None, help="Only the caps of this scope.")
@format_option
@click.pass_context
def limits_list(ctx: click.Context, scope: str | None, fmt: str) -> None:
    """List every cap, sorted by scope, unit and period."""
    found = _sorted_limits(open_ledger(ctx, existing=True).limits(scope))
    emit([_limit_row(limit) for limit in found], _LIMIT_COLUMNS, fmt, empty="no limits")


@limits.command("remove")
@click.argument("scope", type=SCOPE)
@option("--period", type=PERIOD, required=True, help="The period of the caps to remove.")
@option("--unit", type=UNIT, default=None, help="Only this unit (usd, tokens, requests) [all].")
@click.pass_context
def limits_remove(ctx: click.Context, *, scope: str, period: str, unit: str | None) -> None:
    """Remove the caps of SCOPE for a period (every unit, or one).

    The scope keeps being tracked without a cap. Removing a cap that does not exist is not
    an error (scripts may remove idempotently); the output says nothing matched.
    """
    removed = open_ledger(ctx).remove_limit(scope, period=period, unit=unit)
    what = f"{unit + ' ' if unit else ''}cap {period_text(period)}"
    if removed:
        click.echo(f"{scope}: removed {plural(removed, 'cap')} ({what})")
    else:
        click.echo(f"{scope}: no {what}; nothing removed")


# --- balance and holds ------------------------------------------------------------------------


def _balance_row(balance: Balance) -> dict[str, object]:
    return {
        "scope": balance.scope,
        "unit": balance.unit,
        "period": balance.period,
        "cap": balance.cap,
        "spent": balance.spent,
        "held": balance.held,
        "available": balance.available,
        # A total never resets: its stored window start (the epoch) means nothing to a reader.
        "window_start": None if balance.period == "total" else balance.window_start,
        "window_end": balance.window_end,
    }


@click.command()
@click.argument("scope", type=SCOPE)
@option("--unit", type=UNIT, default=None, help="Only this unit.")
@format_option
@click.pass_context
def balance(ctx: click.Context, scope: str, unit: str | None, fmt: str) -> None:
    """Show the accounts of SCOPE in their current window: cap, spent, held, available.

    A cap of '-' means the scope is tracked without a cap. Expired holds are released
    before the balance is read, so 'held' is what open holds really pin.
    """
    found = open_ledger(ctx, existing=True).balance(scope, unit=unit)
    rows = [_balance_row(item) for item in found]
    emit(rows, _BALANCE_COLUMNS, fmt, empty=f"{scope} has no accounts yet (no limit, no spend)")


def _in_unit_order(amounts: Mapping[str, object] | None) -> dict[str, object] | None:
    if amounts is None:
        return None
    return {unit: amounts[unit] for unit in UNITS if unit in amounts}


def _hold_row(hold: HoldInfo, now: datetime) -> dict[str, object]:
    # An open hold past its expiry is already given back in effect (the next write that
    # touches its accounts, or a sweep, expires it); calling it open would mislead.
    overdue = hold.state == "open" and hold.expires_at <= now
    return {
        "id": hold.id,
        "state": "overdue" if overdue else hold.state,
        "scopes": hold.scopes,
        "held": _in_unit_order(hold.amounts),
        "settled": _in_unit_order(hold.settled),
        "created_at": hold.created_at,
        "expires_at": hold.expires_at,
        "flags": sorted(hold.flags),
        "request_id": hold.request_id,
        "tags": hold.tags,
    }


@click.command()
@option("--scope", type=SCOPE, default=None, help="Only holds charged to this scope.")
@option(
    "--state",
    type=click.Choice([*HOLD_STATES, "all"]),
    default="open",
    show_default=True,
    help="Which holds to list.",
)
@option(
    "--limit",
    type=click.IntRange(1, MAX_HOLDS_LISTED),
    default=100,
    show_default=True,
    help="List at most this many.",
)
@option(
    "--newest-first",
    is_flag=True,
    help="Newest first (--limit 1 --newest-first shows the latest hold).",
)
@format_option
@click.pass_context
def holds(
    ctx: click.Context,
    *,
    scope: str | None,
    state: str,
    limit: int,
    newest_first: bool,
    fmt: str,
) -> None:
    """List holds, oldest first: open ones by default.

    An open hold past its expiry that no write or sweep has expired yet is shown as
    'overdue' (it is listed with the open ones).
    """
    found = open_ledger(ctx, existing=True).holds(
        scope=scope,
        state=None if state == "all" else state,
        limit=limit,
        newest_first=newest_first,
    )
    now = datetime.now(UTC)
    rows = [_hold_row(hold, now) for hold in found]
    emit(rows, _HOLD_COLUMNS, fmt, empty=f"no {state} holds")
    if fmt == "table" and len(found) == limit:
        which = "newest" if newest_first else "first"
        click.echo(f"(the {which} {limit}; raise --limit to see more)", err=True)


_BAR_COUNT_LIMIT: Final = 1_000_000  # open holds read to size the sweep's bar, at most


@click.command()
@click.pass_context
def sweep(ctx: click.Context) -> None:
    """Expire every overdue hold now, giving its budget back.

    Expiry also happens lazily whenever an account is touched, so this is for tidiness
    (reports, 'holds' listings), never needed for the caps to hold.
    """
    ledger = open_ledger(ctx)
    now = datetime.now(UTC)
    # The open holds past their TTL now: the length of the bar (more may fall due meanwhile).
    due = sum(
        1 for hold in ledger.holds(state="open", limit=_BAR_COUNT_LIMIT) if hold.expires_at <= now
    )
    with progress(due, "sweeping") as advance:  # stderr, on a terminal: stdout is the result
        expired = ledger.sweep(progress=advance)
    if expired:
        click.echo(f"expired {plural(expired, 'overdue hold')}")
    else:
        click.echo("no overdue holds")


# --- report, verify, migrate ------------------------------------------------------------------


@click.command()
@option(
    "--group-by",
    type=GroupByType(),
    default="scope",
    show_default=True,
    help="Comma-separated: scope, kind, unit, day, hour, month, or a tag name (model).",
)
@option("--since", type=TIMESTAMP, default=None, help="From this ISO 8601 time (inclusive).")
@option("--until", type=TIMESTAMP, default=None, help="To this ISO 8601 time (exclusive).")
@format_option
@click.pass_context
def report(
    ctx: click.Context,
    *,
    group_by: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    fmt: str,
) -> None:
    """Settled spend from the journal, grouped (by scope and model, by day, ...).

    A call charged to several scopes counts once per scope when grouped by scope or kind,
    and once otherwise. Dates without a time zone are UTC.
    """
    if since is not None and until is not None and since >= until:
        raise BadInput(
            f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})", ctx
        )
    rows = open_ledger(ctx, existing=True).report(list(group_by), since=since, until=until)
    spend = ["spent"] if "unit" in group_by else list(UNITS)
    if fmt == "table":
        # Keep a people's table narrow: a unit nobody spent adds only a column of zeros.
        spend = [key for key in spend if key in ("spent", "usd") or any(row[key] for row in rows)]
    columns = {key: key for key in group_by}
    columns |= {
        "calls": "calls",
        **{key: key for key in spend},
        "overruns": "overruns",
        "late": "late",
    }
    emit(rows, columns, fmt, empty="no settled spend in that range")


def _amount_text(unit: str, amount: int) -> str:
    return table_cell(from_units(unit, amount))


def _mismatch_text(mismatch: Mismatch) -> str:
    detail = f" ({mismatch.detail})" if mismatch.detail else ""
    return (
        f"MISMATCH {mismatch.scope} {mismatch.unit}/{mismatch.period}: {mismatch.field} is "
        f"{_amount_text(mismatch.unit, mismatch.stored)}, expected "
        f"{_amount_text(mismatch.unit, mismatch.expected)}{detail}"
    )


def _breach_text(breach: Breach) -> str:
    return (
        f"BREACH {breach.at.isoformat()} {breach.kind} of hold {breach.hold_id} left "
        f"{breach.scope} {breach.unit}/{breach.period} at "
        f"{_amount_text(breach.unit, breach.spent_and_held)} past its cap "
        f"{_amount_text(breach.unit, breach.cap)}"
    )


def verify_summary(result: VerifyReport) -> str:
    """One line on what ``verify`` read."""
    return (
        f"checked {plural(result.accounts_checked, 'account')} against "
        f"{plural(result.entries_read, 'journal entry', 'journal entries')} and "
        f"{plural(result.open_holds, 'open hold')}"
    )


@click.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Replay the journal: recompute every account and check the cap at every step.

    Exits with status 1 when any account disagrees with the journal, or when the journal
    shows an account past its cap with no recorded reason, printing each. An account past
    its cap now because a settle ran over its hold (the money was spent, so it is kept and
    flagged) or because its cap was lowered is listed as a note.
    """
    result = open_ledger(ctx, existing=True).verify()
    click.echo(verify_summary(result))
    for label in result.overruns:
        click.echo(f"note: {label} is past its cap (a settle overran, or the cap was lowered)")
    if result.ok:
        where = "except as noted above" if result.overruns else "everywhere"
        click.echo(
            "OK: every account matches the journal; replayed in order, spent + held "
            f"stayed <= cap {where}"
        )
        return
    for mismatch in result.mismatches:
        click.echo(_mismatch_text(mismatch))
    for breach in result.breaches:
        click.echo(_breach_text(breach))
    for exposure in result.exposures:
        click.echo(f"EXPOSURE {exposure}")
    problems = len(result.mismatches) + len(result.breaches) + len(result.exposures)
    click.echo(f"FAILED: {plural(problems, 'problem')}", err=True)
    ctx.exit(1)


@click.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the store's schema up to date (safe to repeat)."""
    ledger = open_ledger(ctx)
    applied = ledger.migrate()
    if applied:
        for name in applied:
            click.echo(f"applied {name}")
    else:
        click.echo(f"the schema of {ledger.url} is up to date")
