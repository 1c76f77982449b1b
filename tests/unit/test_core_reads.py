"""Every row a decision reads is one ``reads`` declared: differential, on the memory store.

The memory store's state is wrapped, for each batch, in a ``State`` that raises
``UndeclaredRead`` on any read its batch's ``reads(ops)`` did not declare, and the whole
contract and the state machine run through it: every operation type, in every case they
draw (refusals, expiry, retries by request id, new limits, batches), and with the same
results as without the wrapper, since the wrapper only checks and passes calls on. The
PostgreSQL store loads exactly what ``reads`` declares, in one round, so a gap here would
be a batch failing there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import capledger.stores.memory as memory_store
from capledger import AsyncLedger, Ledger, ManualClock
from capledger._core import (
    Account,
    Config,
    EntryFields,
    HoldRecord,
    Op,
    Outcome,
    Reads,
    Reserve,
    Settle,
    State,
    UndeclaredRead,
    apply_batch,
    apply_one,
    reads,
    window_start,
)
from capledger.clock import Clock
from capledger.testing import AsyncLedgerContract, LedgerContract, build_ledger_machine


class DeclaredOnly:
    """A ``State`` that passes every call on to ``state`` and refuses undeclared reads."""

    def __init__(self, state: State, declared: Reads, now_us: int) -> None:
        self._state = state
        self._declared = declared
        self._now_us = now_us
        self._scopes = set(declared.scopes)
        self._hold_ids = declared.hold_ids | declared.reserve_ids
        self._request_ids = set(declared.request_ids)
        self._overdue_left = declared.overdue

    def _seen(self, hold: HoldRecord, *, its_accounts: bool) -> HoldRecord:
        # A hold once read is at hand (a store buffers it), by id and by request id.
        self._hold_ids.add(hold.id)
        if hold.request_id is not None:
            self._request_ids.add(hold.request_id)
        if its_accounts:
            self._scopes.update(hold.scopes)
        return hold

    def accounts(self, scope: str) -> list[Account]:
        if scope not in self._scopes:
            raise UndeclaredRead(f"accounts of {scope!r}")
        return self._state.accounts(scope)

    def add_account(self, account: Account) -> None:
        self._state.add_account(account)

    def remove_account(self, account: Account) -> None:
        self._state.remove_account(account)

    def account_changed(self, account: Account) -> None:
        self._state.account_changed(account)

    def hold(self, hold_id: str) -> HoldRecord | None:
        if hold_id not in self._hold_ids:
            raise UndeclaredRead(f"hold {hold_id!r}")
        hold = self._state.hold(hold_id)
        named = hold_id in self._declared.hold_ids
        return None if hold is None else self._seen(hold, its_accounts=named)

    def hold_by_request(self, request_id: str) -> HoldRecord | None:
        if request_id not in self._request_ids:
            raise UndeclaredRead(f"the hold of request {request_id!r}")
        hold = self._state.hold_by_request(request_id)
        return None if hold is None else self._seen(hold, its_accounts=False)

    def add_hold(self, hold: HoldRecord) -> None:
        self._seen(hold, its_accounts=False)
        self._state.add_hold(hold)

    def hold_changed(self, hold: HoldRecord) -> None:
        self._state.hold_changed(hold)

    def overdue_holds(self, now_us: int, limit: int) -> list[HoldRecord]:
        holds = self._state.overdue_holds(now_us, limit)
        self._overdue_left -= len(holds)
        if self._overdue_left < 0:
            raise UndeclaredRead(f"more overdue holds than {self._declared.overdue}")
        return [self._seen(hold, its_accounts=True) for hold in holds]

    def open_holds_on(self, scope: str) -> list[HoldRecord]:
        if scope not in self._declared.open_holds_on:
            raise UndeclaredRead(f"the open holds on {scope!r}")
        return self._state.open_holds_on(scope)

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        declared = {
            (limit.scope, limit.unit, window_start(limit, self._now_us))
            for limit in self._declared.spent_since
        }
        if (scope, unit, since_us) not in declared:
            raise UndeclaredRead(f"the spend on {scope!r} in {unit} since {since_us}")
        return self._state.spent_since(scope, unit, since_us)

    def append(self, entry: EntryFields) -> None:
        self._state.append(entry)


def _checked_batch(
    state: State,
    ops: Sequence[Op],
    now_us: int,
    config: Config,
    failed: dict[int, Outcome] | None = None,
    tick_us: int | None = None,
) -> list[Outcome]:
    return apply_batch(
        DeclaredOnly(state, reads(ops), now_us), ops, now_us, config, failed, tick_us
    )


def _checked_one(
    state: State, op: Op, now_us: int, config: Config, tick_us: int | None = None
) -> Outcome:
    return apply_one(DeclaredOnly(state, reads([op]), now_us), op, now_us, config, tick_us)


@pytest.fixture
def declared_reads_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run every batch of the memory store through ``DeclaredOnly``."""
    monkeypatch.setattr(memory_store, "apply_batch", _checked_batch)
    monkeypatch.setattr(memory_store, "apply_one", _checked_one)
    yield


@pytest.mark.usefixtures("declared_reads_only")
class TestContractReadsOnlyWhatItDeclares(LedgerContract):
    def make_ledger(self, clock: Clock, tmp_path: Path) -> Ledger:
        return Ledger("memory://", clock=clock)


@pytest.mark.usefixtures("declared_reads_only")
class TestAsyncContractReadsOnlyWhatItDeclares(AsyncLedgerContract):
    def make_async_ledger(self, clock: Clock, tmp_path: Path) -> AsyncLedger:
        return AsyncLedger("memory://", clock=clock)


@pytest.mark.usefixtures("declared_reads_only")
def test_the_state_machine_reads_only_what_it_declares() -> None:
    machine = build_ledger_machine(lambda clock: Ledger("memory://", clock=clock))
    machine.TestCase.settings = settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    machine.TestCase().runTest()


def test_an_undeclared_read_is_refused() -> None:
    # The check can fail: a settle whose hold was not declared is caught.
    rows = memory_store._LiveRows()
    now_us = ManualClock().now_us()
    reserve = Reserve("h1", ("user:a",), {"usd": 5}, 60_000_000, None, {}, "")
    [placed] = _checked_batch(rows, [reserve], now_us, Config())
    assert placed.error is None
    settle = Settle("h1", {"usd": 5}, {})
    with pytest.raises(UndeclaredRead, match="hold 'h1'"):
        apply_batch(DeclaredOnly(rows, reads([]), now_us), [settle], now_us, Config())
    [settled] = _checked_batch(rows, [settle], now_us, Config())
    assert settled.hold is not None and settled.hold.state == "settled"
