"""PostgreSQL fixtures: a fresh database per test, created and dropped here.

The server comes from ``$CAPLEDGER_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); its database is only used to run
``CREATE DATABASE`` / ``DROP DATABASE`` for the test databases, never touched otherwise.
When the server is unreachable the tests skip, except under ``CI=true``, where they fail.

``DROP DATABASE`` waits for a checkpoint (about a second on a busy machine), so drops run on
a background thread while the next test runs; the session waits for all of them at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from pg_testing import (
    ADMIN_URL,
    DATABASE_PREFIX,
    IN_CI,
    Dropper,
    create_database,
    database_url,
)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The admin URL, after checking that the server answers (skip, or fail under CI)."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        # The same rule as tests/conftest.py's service_missing (not importable from here:
        # the test folders are not packages).
        message = f"PostgreSQL is not reachable at {ADMIN_URL}: {str(error).strip()}"
        if IN_CI:
            pytest.fail(message + " (CI=true: services are required)")
        pytest.skip(message)
    return ADMIN_URL


@pytest.fixture(scope="session")
def _dropper() -> Iterator[Dropper]:
    dropper = Dropper()
    yield dropper
    dropper.finish()
    assert not dropper.failures, dropper.failures


@pytest.fixture
def pg_database(pg_admin_url: str, _dropper: Dropper) -> Iterator[str]:
    """A fresh, empty database for this test; its name."""
    name = DATABASE_PREFIX + uuid.uuid4().hex[:12]
    create_database(pg_admin_url, name)
    yield name
    _dropper.drop(pg_admin_url, name)


@pytest.fixture
def pg_url(pg_database: str, pg_admin_url: str) -> str:
    """A capledger URL on this test's fresh database."""
    return database_url(pg_database, pg_admin_url, retry_s=20)
