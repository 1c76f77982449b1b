"""A psycopg error surfaces as ``BackendUnavailable`` from every public method of the store.

As ``tests/unit/test_store_error_mapping.py`` does for the memory and SQLite stores: the
store's pools are broken underneath it, and each public method is called in turn.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pg_testing import database_url

from capledger.clock import ManualClock
from capledger.errors import BackendUnavailable
from capledger.stores.base import _MAPPED_METHODS
from capledger.stores.postgres import PostgresStore
from capledger.testing.store_calls import STORE_CALLS

pytestmark = pytest.mark.postgres

CALLS = STORE_CALLS


class _Broken:
    """Stands in for a pool: touching anything of it raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        raise self._error


def test_every_public_method_is_called_here() -> None:
    assert set(CALLS) == set(_MAPPED_METHODS)


@pytest.mark.parametrize("method", list(CALLS))
def test_a_driver_error_in_any_method_surfaces_as_backend_unavailable(
    pg_database: str, pg_admin_url: str, method: str
) -> None:
    # A short retry budget: the store retries a lost connection before it gives up.
    store = PostgresStore(
        database_url(pg_database, pg_admin_url, retry_s=0.3, connect_retry_s=0.3), ManualClock()
    )
    store.migrate()
    store.close()  # the pools it opened, before they are replaced by broken ones
    pools = store._pools
    pools._closed = False
    error = psycopg.OperationalError("server closed the connection unexpectedly")

    def no_pool() -> Any:
        raise error

    async def no_async_pool() -> Any:
        raise error

    pools.sync_pool = no_pool  # type: ignore[method-assign]
    pools.async_pool = no_async_pool  # type: ignore[method-assign]
    pools._pool = _Broken(error)  # type: ignore[assignment]
    with pytest.raises(BackendUnavailable) as raised:
        CALLS[method](store)
    assert isinstance(raised.value.__cause__, psycopg.Error)
