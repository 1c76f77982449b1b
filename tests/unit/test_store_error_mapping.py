"""Driver errors surface as ``BackendUnavailable`` from every public method of every store.

The mapping lives in ``Store`` alone (``__init_subclass__``), so these tests break a store's
driver underneath it and call each public method in turn: none may let the driver's own
exception through, and each keeps it as the cause.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capledger._core import Config, Reserve, Settle
from capledger.clock import ManualClock
from capledger.errors import BackendUnavailable
from capledger.stores.base import _MAPPED_METHODS, Store
from capledger.stores.memory import MemoryStore
from capledger.stores.sqlite import SQLiteStore
from capledger.testing.store_calls import STORE_CALLS

CALLS = STORE_CALLS


def test_every_public_method_of_a_store_is_mapped_and_tested() -> None:
    public = {
        name for name in dir(Store) if not name.startswith("_") and callable(getattr(Store, name))
    }
    assert set(_MAPPED_METHODS) == public
    assert set(CALLS) == public


class DriverLost(Exception):
    """What a broken driver raises in these tests."""


class _Broken:
    """Stands in for a driver object: touching anything of it raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        raise self._error


class DriverBackedMemoryStore(MemoryStore):
    """``memory://`` as a store with a driver would build on it (an HTTP store, say): a
    subclass declaring ``driver_errors`` gets every inherited method mapped."""

    driver_errors = (DriverLost,)


def broken_memory(tmp_path: Path) -> Store:
    store = DriverBackedMemoryStore("memory://", ManualClock())
    store._rows = _Broken(DriverLost("the rows are gone"))  # type: ignore[assignment]
    return store


def broken_sqlite(tmp_path: Path) -> Store:
    store = SQLiteStore(f"sqlite:///{tmp_path}/ledger.db", ManualClock())
    store._connection.close()
    error = sqlite3.DatabaseError("database disk image is malformed")
    store._connection = _Broken(error)  # type: ignore[assignment]

    def no_reader() -> sqlite3.Connection:
        raise error

    store._reader = no_reader  # type: ignore[method-assign]
    return store


BROKEN_STORES = {"memory": broken_memory, "sqlite": broken_sqlite}
DRIVER_ERRORS: dict[str, type[BaseException]] = {
    "memory": DriverLost,
    "sqlite": sqlite3.Error,
}


def _methods_of(store_name: str) -> Iterator[Any]:
    for name in CALLS:
        # The memory store keeps Store's own close, aclose and migrate: nothing to break.
        if store_name == "memory" and name in ("close", "aclose", "migrate"):
            continue
        yield pytest.param(store_name, name, id=f"{store_name}-{name}")


@pytest.mark.parametrize(
    ("store_name", "method"), [p for name in BROKEN_STORES for p in _methods_of(name)]
)
def test_a_driver_error_in_any_method_surfaces_as_backend_unavailable(
    tmp_path: Path, store_name: str, method: str
) -> None:
    store = BROKEN_STORES[store_name](tmp_path)
    with pytest.raises(BackendUnavailable, match=f"{store.scheme} store unavailable") as raised:
        CALLS[method](store)
    assert isinstance(raised.value.__cause__, DRIVER_ERRORS[store_name])


def test_the_memory_store_has_no_driver_and_keeps_its_direct_calls() -> None:
    assert MemoryStore.executor is MemoryStore.__dict__["executor"]
    assert not hasattr(MemoryStore.executor, "_capledger_maps_driver_errors")
    assert hasattr(DriverBackedMemoryStore.executor, "_capledger_maps_driver_errors")


class _FailingCursor:
    def __init__(self, cursor: sqlite3.Cursor, batches: int) -> None:
        self._cursor, self._batches = cursor, batches

    def fetchmany(self, size: int) -> list[Any]:
        if self._batches == 0:
            raise sqlite3.OperationalError("disk I/O error")
        self._batches -= 1
        return self._cursor.fetchmany(size)


class _JournalFailsLater:
    """A reader connection whose journal cursor fails after its first batch of rows."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, query: str, *args: Any) -> Any:
        cursor = self._connection.execute(query, *args)
        return _FailingCursor(cursor, 1) if "capledger_journal" in query else cursor

    def close(self) -> None:
        self._connection.close()


@pytest.mark.parametrize("read", ["journal", "audit_snapshot"])
def test_a_driver_error_while_the_journal_is_read_is_mapped_too(tmp_path: Path, read: str) -> None:
    clock = ManualClock()
    store = SQLiteStore(f"sqlite:///{tmp_path}/ledger.db", clock)
    for index in range(600):  # 1,200 entries: more than one batch of 1,000
        hold_id = f"h{index}"
        store.execute(
            [
                Reserve(
                    hold_id=hold_id,
                    scopes=("user:a",),
                    amounts={"usd": 10},
                    ttl_us=60_000_000,
                    request_id=None,
                    tags={},
                    fingerprint="",
                ),
                Settle(hold_id=hold_id, amounts={"usd": 10}, tags={}),
            ],
            Config(),
        )
    reader = store._reader
    store._reader = lambda: _JournalFailsLater(reader())  # type: ignore[assignment, method-assign, return-value]
    entries = iter(store.journal() if read == "journal" else store.audit_snapshot()[2])
    read_first = [next(entries) for _ in range(1000)]
    assert len(read_first) == 1000
    with pytest.raises(BackendUnavailable) as raised:
        next(entries)
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    store.close()
