"""The store contract: one atomic step that runs the core's decisions, plus reads.

A store never decides anything. ``execute`` opens its atomic step (a lock, a transaction),
hands the core a ``State`` over its rows, and makes the changes durable before it returns.
Driver exceptions are turned into ``BackendUnavailable`` here, once, for every store: each
store only declares which exceptions its driver raises for a lost or busy backend.
"""

from __future__ import annotations

import asyncio
import json
import json.encoder
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, ClassVar

from capledger._core import Account, Config, Entry, HoldRecord, Op, Outcome
from capledger.clock import Clock
from capledger.errors import BackendUnavailable

__all__ = ["Store", "account_of", "dumps", "entry_of", "hold_of", "loads"]


def _json_encoder() -> Callable[[object], str]:
    """A compact, key-sorted JSON encoder, made once.

    ``JSONEncoder.encode`` builds its C encoder again on every call, which costs more than
    encoding a small column; this builds it once, as ``encode`` would (no circular check:
    columns hold plain values). Where the C encoder is missing, ``encode`` is used.
    """
    encoder = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
    make_c_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_c_encoder is None:
        return encoder.encode
    one_shot = make_c_encoder(
        None, encoder.default, json.encoder.encode_basestring_ascii, None, ":", ",",
        True, False, True,  # sort_keys, skipkeys, allow_nan: as the encoder above
    )  # fmt: skip
    return lambda value: "".join(one_shot(value, 0))


_ENCODE = _json_encoder()


@lru_cache(maxsize=4096)
def _encode_scopes(scopes: tuple[str, ...]) -> str:
    return _ENCODE(scopes)  # the same few scope sets recur on every hold and entry


def dumps(value: object) -> str:
    """Encode a JSON column compactly and deterministically."""
    if type(value) is tuple:
        return _encode_scopes(value)
    return _ENCODE(value)


def loads(text: str | None) -> Any:
    """Decode a JSON column (None stays None)."""
    return None if text is None else json.loads(text)


def account_of(row: Sequence[Any]) -> Account:
    """Decode an account row, columns in the order of the schemas' account tables (which is
    also the order of ``Account``'s parameters)."""
    return Account(*row)


def _as_is(value: Any) -> Any:
    return value


def hold_of(row: Sequence[Any], decode: Callable[[Any], Any] = _as_is) -> HoldRecord:
    """Decode a hold row; ``decode`` turns its JSON columns into values (a driver that
    decodes JSON itself passes none)."""
    return HoldRecord(  # positional, in the order of both the columns and the parameters
        row[0],  # id
        row[1],  # request_id
        tuple(decode(row[2])),  # scopes
        decode(row[3]),  # amounts
        row[4],  # state
        row[5],  # created_us
        row[6],  # expires_us
        decode(row[7]),  # tags
        row[8],  # fingerprint
        decode(row[9]),  # settled
        row[10],  # closed_us
        row[11],  # flags
        row[12] if len(row) > 12 else None,  # deadline_us, where the store keeps one
    )


def entry_of(row: Sequence[Any], decode: Callable[[Any], Any] = _as_is) -> Entry:
    """Decode a journal row, columns in the order of the schemas' journal tables;
    ``decode`` as in ``hold_of``."""
    return Entry(
        row[0],
        row[1],
        row[2],
        row[3],
        tuple(decode(row[4])),
        decode(row[5]),
        decode(row[6]),
        row[7],
    )


class Store(ABC):
    """Where accounts, holds and the journal live.

    Subclasses set ``driver_errors`` (exceptions meaning the backend is unreachable) and
    ``batches`` (True when coalescing concurrent operations into one transaction pays:
    every store with a real transaction does; the in-memory store does not).
    """

    scheme: ClassVar[str] = ""
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    batches: ClassVar[bool] = True

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = url
        self.clock = clock

    @contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Turn a driver exception into ``BackendUnavailable``, keeping it as the cause."""
        try:
            yield
        except self.driver_errors as error:
            raise BackendUnavailable(f"{self.scheme} store unavailable: {error}") from error

    @abstractmethod
    def execute(self, ops: Sequence[Op], config: Config) -> list[Outcome]:
        """Apply ``ops`` in one atomic step and return one outcome per operation."""

    async def aexecute(self, ops: Sequence[Op], config: Config) -> list[Outcome]:
        """The async form of ``execute``; by default it runs ``execute`` in a thread."""
        return await asyncio.to_thread(self.execute, ops, config)

    def executor(self, config: Config) -> Callable[[Op], Outcome]:
        """A function applying one operation in its own atomic step: what a ledger whose
        store does not batch calls for every operation."""

        def execute_one(op: Op) -> Outcome:
            return self.execute([op], config)[0]

        return execute_one

    @abstractmethod
    def accounts(self, scope: str | None = None) -> list[Account]:
        """Copies of every account (of ``scope`` if given), as stored (not rolled)."""

    @abstractmethod
    def holds(
        self, *, scope: str | None = None, states: Sequence[str] = ("open",), limit: int = 1000
    ) -> list[HoldRecord]:
        """Copies of up to ``limit`` holds in ``states`` (charged to ``scope`` if given)."""

    def newest_holds(
        self, *, scope: str | None = None, states: Sequence[str] = ("open",), limit: int = 1000
    ) -> list[HoldRecord]:
        """Like ``holds``, newest first: the last ``limit`` holds, the latest one first.

        The default reads every matching hold and keeps the last ones, which is right on
        any store but costs as much as the holds listed; stores with an index on the
        creation time override it with a descending read.
        """
        every = self.holds(scope=scope, states=states, limit=2**62)
        return every[::-1][:limit]

    @abstractmethod
    def journal(self, since_us: int | None = None, until_us: int | None = None) -> Iterator[Entry]:
        """The journal entries with ``since_us <= ts_us < until_us``, in order."""

    def audit_snapshot(self) -> tuple[list[Account], list[HoldRecord], Iterator[Entry]]:
        """Accounts, open holds and the journal, read as one consistent snapshot.

        The default reads them one after the other; stores with read transactions override
        it so that ``verify`` never sees an operation half-way.
        """
        return (
            self.accounts(),
            self.holds(states=("open",), limit=2**62),
            self.journal(),
        )

    def migrate(self) -> list[str]:
        """Bring the schema up to date; return the migrations applied (none by default)."""
        return []

    def close(self) -> None:  # noqa: B027 - a hook: stores without resources keep it empty
        """Release connections and files."""

    async def aclose(self) -> None:
        """The async form of ``close``."""
        self.close()
