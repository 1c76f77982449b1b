"""Helpers shared by the PostgreSQL tests and their conftest (a plain module: the test
folders are not packages, so conftest.py cannot be imported by name)."""

from __future__ import annotations

import os
import queue
import threading
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ADMIN_URL = os.environ.get("CAPLEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DATABASE_PREFIX = "capledger_test_"


def database_url(name: str, admin_url: str = ADMIN_URL, **options: object) -> str:
    """The URL of database ``name`` on the admin URL's server, with capledger options."""
    parts = urlsplit(admin_url)
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", query, ""))


class Dropper:
    """Drops test databases on one background thread."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="drop-databases", daemon=True)
        self._thread.start()
        self.failures: list[str] = []

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            admin_url, name = item
            try:
                drop_database(admin_url, name)
            except psycopg.Error as error:
                self.failures.append(f"{name}: {error}")

    def drop(self, admin_url: str, name: str) -> None:
        self._queue.put((admin_url, name))

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()


def create_database(admin_url: str, name: str) -> None:
    """Create an empty database (WAL_LOG: no checkpoint, fast for an empty template)."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(
            sql.SQL("CREATE DATABASE {} STRATEGY WAL_LOG").format(sql.Identifier(name))
        )


def drop_database(admin_url: str, name: str) -> None:
    """Drop a test database, ending any connection a test left behind."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
