"""Every public method of a store, called with harmless arguments and read to the end.

For tests that must reach each method of a ``Store`` (that driver errors are mapped on
every one, say): ``STORE_CALLS[name](store)`` calls the method ``name``, consuming what it
hands back, so a lazy journal is read too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from capledger._core import Config, Inspect
from capledger.stores.base import Store

__all__ = ["STORE_CALLS"]

#: How each public method of ``Store`` is called, reading whatever it hands back.
STORE_CALLS: dict[str, Callable[[Store], object]] = {
    "execute": lambda store: store.execute([Inspect("user:a")], Config()),
    "aexecute": lambda store: asyncio.run(store.aexecute([Inspect("user:a")], Config())),
    "executor": lambda store: store.executor(Config())(Inspect("user:a")),
    "accounts": lambda store: store.accounts(),
    "holds": lambda store: store.holds(),
    "newest_holds": lambda store: store.newest_holds(),
    "snapshot": lambda store: store.snapshot(["user:a"]),
    "journal": lambda store: list(store.journal()),
    "audit_snapshot": lambda store: list(store.audit_snapshot()[2]),
    "migrate": lambda store: store.migrate(),
    "close": lambda store: store.close(),
    "aclose": lambda store: asyncio.run(store.aclose()),
}
