"""A ``State`` over rows read from a database inside one transaction.

It reads each row once, hands the core the same object on every later touch, and
remembers what the core created, changed and removed, so that the store writes back only
that. Stores with a transaction (SQLite, PostgreSQL) share it; they differ only in the
``RowSource`` that reads rows and the code that writes the buffer back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from capledger._core import Account, Entry, EntryFields, HoldRecord


class RowSource(Protocol):
    """Reads rows inside the store's current transaction."""

    def load_accounts(self, scope: str) -> list[Account]:
        """Every account row of ``scope``."""
        ...

    def load_hold(self, hold_id: str) -> HoldRecord | None:
        """The hold row with this id."""
        ...

    def load_hold_by_request(self, request_id: str) -> HoldRecord | None:
        """The hold row with this request_id."""
        ...

    def load_overdue(self, now_us: int, limit: int) -> list[HoldRecord]:
        """Up to ``limit`` open hold rows whose deadline is at or before ``now_us`` (on the
        clock deadlines are measured on), oldest first."""
        ...

    def load_open_holds_on(self, scope: str) -> list[HoldRecord]:
        """Every open hold row charged to ``scope``."""
        ...

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        """The settled ``unit`` on ``scope`` since ``since_us``, summed from the journal."""
        ...


class BufferedState:
    """Implements the core's ``State`` over a ``RowSource``, buffering every change."""

    def __init__(self, source: RowSource, absent_hold_ids: Iterable[str] = ()) -> None:
        """``absent_hold_ids``: ids the caller knows no row has (the batch's own new holds,
        on a first attempt), so they are never looked up."""
        self._source = source
        self._accounts: dict[str, list[Account]] = {}
        self._holds: dict[str, HoldRecord | None] = dict.fromkeys(absent_hold_ids)
        self._request_ids: dict[str, str | None] = {}
        self.new_accounts: dict[tuple[str, str, str], Account] = {}
        self.changed_accounts: dict[tuple[str, str, str], Account] = {}
        self.removed_accounts: dict[tuple[str, str, str], Account] = {}
        self.new_holds: dict[str, HoldRecord] = {}
        self.changed_holds: dict[str, HoldRecord] = {}
        self.entries: list[Entry] = []

    # accounts
    def accounts(self, scope: str) -> list[Account]:
        """Every account of ``scope``, read once per transaction."""
        accounts = self._accounts.get(scope)
        if accounts is None:
            accounts = self._accounts[scope] = self._source.load_accounts(scope)
        return accounts

    def add_account(self, account: Account) -> None:
        """Buffer a new account (an update, if this transaction removed the row it replaces,
        so that no DELETE and INSERT of one key meet in a batch)."""
        self.accounts(account.scope).append(account)
        if self.removed_accounts.pop(account.key, None) is not None:
            self.changed_accounts[account.key] = account
        else:
            self.new_accounts[account.key] = account

    def remove_account(self, account: Account) -> None:
        """Buffer the deletion of an account."""
        self.accounts(account.scope).remove(account)
        key = account.key
        self.changed_accounts.pop(key, None)
        if self.new_accounts.pop(key, None) is None:
            self.removed_accounts[key] = account

    def account_changed(self, account: Account) -> None:
        """Buffer an update of an account (a new one is written whole anyway)."""
        key = account.key
        if key not in self.new_accounts:
            self.changed_accounts[key] = account

    # holds
    def _remember(self, hold: HoldRecord) -> HoldRecord:
        known = self._holds.get(hold.id)
        if known is not None:
            return known  # the buffered copy may carry this transaction's changes
        self._holds[hold.id] = hold
        if hold.request_id is not None:
            self._request_ids[hold.request_id] = hold.id
        return hold

    def hold(self, hold_id: str) -> HoldRecord | None:
        """The hold with this id, read once per transaction."""
        if hold_id not in self._holds:
            loaded = self._source.load_hold(hold_id)
            if loaded is None:
                self._holds[hold_id] = None
                return None
            return self._remember(loaded)
        return self._holds[hold_id]

    def hold_by_request(self, request_id: str) -> HoldRecord | None:
        """The hold placed with this request_id."""
        if request_id not in self._request_ids:
            loaded = self._source.load_hold_by_request(request_id)
            if loaded is None:
                self._request_ids[request_id] = None
                return None
            return self._remember(loaded)
        hold_id = self._request_ids[request_id]
        return None if hold_id is None else self._holds[hold_id]

    def add_hold(self, hold: HoldRecord) -> None:
        """Buffer a new hold."""
        self._holds[hold.id] = hold
        if hold.request_id is not None:
            self._request_ids[hold.request_id] = hold.id
        self.new_holds[hold.id] = hold

    def hold_changed(self, hold: HoldRecord) -> None:
        """Buffer an update of a hold."""
        if hold.id not in self.new_holds:
            self.changed_holds[hold.id] = hold

    def overdue_holds(self, now_us: int, limit: int) -> list[HoldRecord]:
        """Overdue open holds, as this transaction sees them."""
        # Holds this transaction already closed still read as open in the database: ask for
        # enough more rows that they cannot crowd out the ones still to expire.
        loaded = self._source.load_overdue(now_us, limit + len(self.changed_holds))
        holds = [self._remember(hold) for hold in loaded]
        due = [hold for hold in holds if hold.state == "open" and hold.deadline_us <= now_us]
        return due[:limit]

    def open_holds_on(self, scope: str) -> list[HoldRecord]:
        """Open holds on ``scope``, including those this transaction placed."""
        holds = {hold.id: self._remember(hold) for hold in self._source.load_open_holds_on(scope)}
        for hold in self.new_holds.values():
            holds.setdefault(hold.id, hold)
        return [hold for hold in holds.values() if hold.state == "open" and scope in hold.scopes]

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        """Journal spend since ``since_us``, including this transaction's settles."""
        pending = sum(
            entry.amounts.get(unit, 0)
            for entry in self.entries
            if entry.kind == "settled" and entry.ts_us >= since_us and scope in entry.scopes
        )
        return self._source.spent_since(scope, unit, since_us) + pending

    def append(self, entry: EntryFields) -> None:
        """Buffer a journal entry."""
        self.entries.append(Entry(*entry))
