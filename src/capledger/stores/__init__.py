"""Stores, chosen by URL. Drivers are imported only when their store is opened."""

from __future__ import annotations

import importlib

from capledger.clock import Clock
from capledger.errors import ConfigurationError

from .base import Store

__all__ = ["SCHEMES", "Store", "open_store"]

#: URL scheme -> "module:Class", imported on first use so no driver loads unasked.
SCHEMES: dict[str, str] = {
    "memory": "capledger.stores.memory:MemoryStore",
    "sqlite": "capledger.stores.sqlite:SQLiteStore",
    "postgresql": "capledger.stores.postgres:PostgresStore",
    "postgres": "capledger.stores.postgres:PostgresStore",
}


def open_store(url: str, clock: Clock) -> Store:
    """Open the store for ``url`` (``memory://``, ``sqlite:///path``, ``postgresql://...``)."""
    scheme, separator, _ = url.partition("://")
    if not separator or scheme not in SCHEMES:
        accepted = ", ".join(f"{name}://" for name in SCHEMES)
        raise ConfigurationError(f"unknown store URL {url!r}; accepted schemes: {accepted}")
    module_name, class_name = SCHEMES[scheme].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("capledger"):
            raise ConfigurationError(f"the {scheme} store is not available yet") from error
        extra = "postgres" if scheme.startswith("postgres") else scheme
        raise ConfigurationError(
            f"the {scheme} store needs its driver: pip install 'capledger[{extra}]'"
        ) from error
    store: Store = getattr(module, class_name)(url, clock)
    return store
