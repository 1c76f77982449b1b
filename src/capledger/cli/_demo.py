"""``capledger demo``: a thousand concurrent agents against three kinds of cap at once.

The command runs the simulation of ``capledger.cli._demo_simulation`` (every agent charged
to a user, a tenant and a feature, each with a daily cap) on a fresh store, prints what each
cap allowed and refused, and says plainly whether every cap held, recomputed from the
journal; the exit status is 1 if one did not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from ._app import BadInput, CliState, option, sqlite_path
from ._commands import verify_summary
from ._demo_simulation import (
    FEATURES,
    PERIOD,
    REFERENCE_AGENTS,
    TENANTS,
    USERS,
    DemoResult,
    check_empty,
    demo_caps,
    held_usd,
    run_demo,
)
from ._output import emit, progress, table_cell

__all__ = ["DEMO_URL", "MAX_DEMO_AGENTS", "demo"]

DEMO_URL: Final = "sqlite:///capledger-demo.db"
#: The exit status after Ctrl-C: 128 + SIGINT, as a shell reports it.
EXIT_INTERRUPTED: Final = 130
_T = TypeVar("_T")
#: The most agents one demo runs: enough to show contention, bounded so a typo cannot
#: start a million tasks.
MAX_DEMO_AGENTS: Final = 20_000


@contextlib.contextmanager
def _interruptible() -> Iterator[Callable[[Callable[[], Coroutine[Any, Any, _T]]], _T]]:
    """An event loop, made at once, and ``run(main)``: ``asyncio.run(main())`` on it, whose
    cancelled tasks tear down without a word after Ctrl-C.

    The coroutine is made only when it is run, so one that is never run is not left
    unawaited (Python would say so on standard error).

    Ctrl-C cancels the main task, which cancels every agent; an agent interrupted mid-call
    may fail to release on a ledger already closing. That is the expected end of a stopped
    run, not news, so the loop's exception handler is silenced for the teardown only.
    """
    with asyncio.Runner() as runner:
        runner.get_loop()

        def run(main: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
            try:
                return runner.run(main())
            except KeyboardInterrupt:
                runner.get_loop().set_exception_handler(lambda loop, context: None)
                raise

        yield run


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _percent(part: Decimal, whole: Decimal) -> str:
    if not whole:
        return "-"
    return f"{(part * 100 / whole).quantize(Decimal('0.1'))}%"


def _print_tables(result: DemoResult) -> None:
    for title, scopes in (("users", USERS), ("tenants", TENANTS), ("features", FEATURES)):
        rows = []
        for scope in scopes:
            balance = result.balances.get(scope)
            spent = balance.spent if balance is not None else Decimal(0)
            rows.append(
                {
                    "scope": scope,
                    "cap": result.caps[scope],
                    "spent": spent,
                    "held": held_usd(balance),
                    "used": _percent(Decimal(spent), result.caps[scope]),
                    "allowed": result.allowed[scope],
                    "denied": result.denied[scope],
                }
            )
        click.echo(f"\n{title} (cap per {PERIOD}; 'denied' counts the calls this cap refused)")
        emit(
            rows,
            {
                "scope": "scope",
                "cap": "cap",
                "spent": "spent",
                "held": "held",
                "used": "used",
                "allowed": "calls allowed",
                "denied": "calls denied",
            },
            "table",
            right=["used"],
        )


def _denied_by_kind(result: DemoResult) -> str:
    kinds: Counter[str] = Counter()
    for scope, count in result.denied.items():
        kinds[scope.partition(":")[0]] += count
    return ", ".join(f"{kind} caps {kinds[kind]:,}" for kind in ("user", "tenant", "feature"))


def _print_checks(result: DemoResult) -> None:
    click.echo(f"\nverify: {verify_summary(result.verify)}")
    journal_total = sum(result.journal_total_usd.values(), Decimal(0))
    checks: Sequence[tuple[bool, str]] = (
        (result.verify.ok, "every account's spent and held match the journal and the open holds"),
        (
            not result.over_cap() and not result.verify.overruns,
            f"spent + held <= cap on all {len(result.caps)} capped accounts, "
            "spent summed from the journal",
        ),
        (
            not result.lost_or_invented(),
            "the journal holds exactly what the agents settled "
            f"({table_cell(journal_total)} over all scopes)",
        ),
        (not result.errors, "no call failed with an error"),
    )
    for passed, text in checks:
        click.echo(f"  {'ok  ' if passed else 'FAIL'}  {text}")
    for mismatch in result.verify.mismatches:
        click.echo(f"  MISMATCH {mismatch}")
    for scope in result.over_cap():
        click.echo(f"  OVER CAP {scope}")
    for scope in result.lost_or_invented():
        click.echo(
            f"  LOST {scope}: journal "
            f"{table_cell(result.journal_total_usd.get(scope, Decimal(0)))}, "
            f"agents {table_cell(result.agents_usd.get(scope, Decimal(0)))}"
        )
    for name, count in result.errors.items():
        click.echo(f"  ERROR {name} x{count}")


@click.command()
@option(
    "--agents",
    type=click.IntRange(1, MAX_DEMO_AGENTS),
    default=REFERENCE_AGENTS,
    show_default=True,
    help="Concurrent agents (caps scale with it).",
)
@option("--seed", type=int, default=1, show_default=True, help="Fixes each agent's plan.")
@option(
    "--url",
    "demo_url",
    envvar="CAPLEDGER_DEMO_URL",
    default=None,
    metavar="URL",
    help=f"Where to run [{DEMO_URL}, recreated each run]. Never CAPLEDGER_URL.",
)
@option("--keep", is_flag=True, help="Keep the demo's SQLite file afterwards.")
@click.pass_context
def demo(ctx: click.Context, *, agents: int, seed: int, demo_url: str | None, keep: bool) -> None:
    """Watch 1000 concurrent agents hit user, tenant and feature caps; every cap holds.

    Runs on a fresh SQLite file, capledger-demo.db in the current folder (removed at the
    end unless --keep), or on --url (here or before 'demo'). CAPLEDGER_URL is ignored on
    purpose: the demo never writes into your real ledger. An existing file named by --url
    is refused, not overwritten. Exits with status 1 if any cap did not hold, and with 130
    (after one line on standard error) when stopped with Ctrl-C.
    """
    state = ctx.find_object(CliState)
    url = demo_url or (state.url if state is not None and state.url_on_command_line else DEMO_URL)
    path = sqlite_path(url)
    if path is not None:
        if url == DEMO_URL:
            _remove_sqlite(path)  # the demo's own file: recreated every run
        elif path.exists():
            raise BadInput(f"{path} exists; the demo needs a fresh store (name a new file)", ctx)
    try:
        with _interruptible() as run:
            run(lambda: check_empty(url))  # refused before a word is printed
        result = _run_with_output(url, agents=agents, seed=seed)
    except KeyboardInterrupt:
        click.echo("capledger demo: interrupted", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    finally:
        if path is not None and not keep:
            _remove_sqlite(path)
    _print_result(result, url=url, keep=keep, path=path)
    if not result.caps_held:
        ctx.exit(1)


def _run_with_output(url: str, *, agents: int, seed: int) -> DemoResult:
    """Print what is about to run, then run it with a progress bar on a terminal.

    The lines are printed from inside the running loop: once they are out, a Ctrl-C is the
    loop's to handle (it cancels the run), whenever it comes.
    """
    caps = demo_caps(agents)

    async def announced() -> DemoResult:
        click.echo(
            f"capledger demo: {agents:,} concurrent agents, {len(USERS)} users, "
            f"{len(TENANTS)} tenants, {len(FEATURES)} features on {url} (seed {seed})"
        )
        click.echo(
            f"daily caps: users {table_cell(min(caps[u] for u in USERS))} or "
            f"{table_cell(max(caps[u] for u in USERS))}, "
            + ", ".join(f"{scope} {table_cell(caps[scope])}" for scope in (*TENANTS, *FEATURES))
        )
        with progress(agents, "agents", steps=agents // 100) as advance:
            return await run_demo(url, agents=agents, seed=seed, progress=lambda: advance(1))

    with _interruptible() as run:
        return run(announced)


def _print_result(result: DemoResult, *, url: str, keep: bool, path: Path | None) -> None:
    agents = result.agents
    _print_tables(result)
    click.echo(
        f"\n{agents:,} agents in {result.wall_s:.2f} s: {result.calls_allowed:,} calls allowed, "
        f"{result.calls_denied:,} denied ({_denied_by_kind(result)})"
    )
    click.echo(
        "(a call holds its worst case while it runs and gives back what it did not spend, so a\n"
        " cap refuses calls while in-flight holds fill it, and may end the run below 100 % used)"
    )
    _print_checks(result)
    if result.caps_held:
        click.echo(
            "\nEvery cap held: no account's spent + held passed its cap, checked from the journal."
        )
    else:
        click.echo("\nA CAP DID NOT HOLD: see the failures above.", err=True)
    if keep and path is not None:
        click.echo(f"\nkept {path}: try  capledger --url {url} report --group-by kind,model")
