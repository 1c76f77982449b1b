"""The store contract: one atomic step that runs the core's decisions, plus reads.

A store never decides anything. ``execute`` opens its atomic step (a lock, a transaction),
hands the core a ``State`` over its rows, and makes the changes durable before it returns.
Reads (``snapshot``, ``accounts``, ``holds``, ``journal``, ``audit_snapshot``) take no write
lock.

Driver exceptions are turned into ``BackendUnavailable`` here, once, for every store: each
store only declares which exceptions its driver raises (``driver_errors``), and
``Store.__init_subclass__`` wraps every public method of the subclass (and the iterators and
functions they hand back) so that none of them lets a driver exception through.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import json.encoder
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from capledger._core import Account, Config, Entry, HoldRecord, Op, Outcome
from capledger._core.views import Snapshot
from capledger.clock import Clock, deadline_now
from capledger.errors import BackendUnavailable

__all__ = ["Store", "account_of", "dumps", "entry_of", "hold_of", "loads"]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


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


# Measured: json.dumps instead costs 10% of SQLite reserve+settle pairs per CPU-second (12
# columns a pair; compare_commits.py's pairs workload, 15 ABBA runs: 5,051 vs 5,623 pairs/s).
_ENCODE = _json_encoder()


def dumps(value: object) -> str:
    """Encode a JSON column compactly and deterministically."""
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
    return HoldRecord(
        id=row[0],
        request_id=row[1],
        scopes=tuple(decode(row[2])),
        amounts=decode(row[3]),
        state=row[4],
        created_us=row[5],
        expires_us=row[6],
        tags=decode(row[7]),
        fingerprint=row[8],
        settled=decode(row[9]),
        closed_us=row[10],
        flags=row[11],
        deadline_us=row[12] if len(row) > 12 else None,  # where the store keeps one
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap every public method of a store with a driver so that its driver's errors
        surface as ``BackendUnavailable``, however the method is reached.

        A store without ``driver_errors`` (``memory://``) has nothing to map and keeps its
        direct calls. Methods inherited from ``Store`` itself are left as they are: they
        only call the wrapped ones.
        """
        super().__init_subclass__(**kwargs)
        if not cls.driver_errors:
            return
        for name, wrap in _MAPPED_METHODS.items():
            method = getattr(cls, name)
            if method is not getattr(Store, name) and not hasattr(method, _MAPPED_MARK):
                setattr(cls, name, wrap(method))

    def _unavailable(self, error: BaseException) -> BackendUnavailable:
        """The ``BackendUnavailable`` that a driver exception becomes (raise it ``from``
        the error, so that the cause is kept)."""
        return BackendUnavailable(f"{self.scheme} store unavailable: {error}")

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

    def snapshot(self, scopes: Sequence[str]) -> Snapshot:
        """Every account on ``scopes`` and every open hold charged to any of them, read at
        one instant without a write lock, with the clocks the write path would decide by.

        The default reads them one scope after the other; stores with read transactions
        (or one lock, like ``memory://``) override it so that no write falls in between.
        """
        wanted = list(dict.fromkeys(scopes))
        accounts = [account for scope in wanted for account in self.accounts(scope)]
        holds: dict[str, HoldRecord] = {}
        for scope in wanted:
            for hold in self.holds(scope=scope, states=("open",), limit=2**62):
                holds.setdefault(hold.id, hold)
        open_holds = sorted(holds.values(), key=lambda hold: (hold.created_us, hold.id))
        _boot_id, tick_us = deadline_now(self.clock)
        return Snapshot(accounts, open_holds, self.clock.now_us(), tick_us)

    def migrate(self) -> list[str]:
        """Bring the schema up to date; return the migrations applied (none by default)."""
        return []

    def close(self) -> None:  # noqa: B027 - a hook: stores without resources keep it empty
        """Release connections and files."""

    async def aclose(self) -> None:
        """The async form of ``close``."""
        self.close()


# --- mapping driver errors, once, for every store with a driver -------------------------------

#: Set on a method once it maps driver errors, so that a subclass does not wrap it again.
_MAPPED_MARK = "_capledger_maps_driver_errors"


def _marked(wrapper: _F) -> _F:
    setattr(wrapper, _MAPPED_MARK, True)
    return wrapper


def _mapped_iterator(store: Store, entries: Iterator[_T]) -> Iterator[_T]:
    """``entries``, read with driver errors mapped (a journal is read after its method has
    returned, often long after)."""
    try:
        yield from entries
    except store.driver_errors as error:
        raise store._unavailable(error) from error


def _mapping(
    hand_back: Callable[[Store, Any], Any],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A wrapper maker for methods whose result ``hand_back(store, result)`` wraps further
    (an iterator read later, a function called later)."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def amapped(store: Store, *args: Any, **kwargs: Any) -> Any:
                try:
                    return hand_back(store, await method(store, *args, **kwargs))
                except store.driver_errors as error:
                    raise store._unavailable(error) from error

            return _marked(amapped)

        @functools.wraps(method)
        def mapped(store: Store, *args: Any, **kwargs: Any) -> Any:
            try:
                return hand_back(store, method(store, *args, **kwargs))
            except store.driver_errors as error:
                raise store._unavailable(error) from error

        return _marked(mapped)

    return wrap


def _as_returned(store: Store, result: Any) -> Any:
    return result


def _iterator_mapped(store: Store, result: Iterator[Any]) -> Iterator[Any]:
    return _mapped_iterator(store, result)


def _entries_mapped(
    store: Store, result: tuple[list[Account], list[HoldRecord], Iterator[Entry]]
) -> tuple[list[Account], list[HoldRecord], Iterator[Entry]]:
    accounts, holds, entries = result
    return accounts, holds, _mapped_iterator(store, entries)


def _function_mapped(store: Store, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def mapped(*args: Any) -> Any:
        try:
            return function(*args)
        except store.driver_errors as error:
            raise store._unavailable(error) from error

    return mapped


#: Every public method of ``Store``, with what of its result is wrapped too.
_MAPPED_METHODS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "execute": _mapping(_as_returned),
    "aexecute": _mapping(_as_returned),
    "executor": _mapping(_function_mapped),
    "accounts": _mapping(_as_returned),
    "holds": _mapping(_as_returned),
    "newest_holds": _mapping(_as_returned),
    "snapshot": _mapping(_as_returned),
    "journal": _mapping(_iterator_mapped),
    "audit_snapshot": _mapping(_entries_mapped),
    "migrate": _mapping(_as_returned),
    "close": _mapping(_as_returned),
    "aclose": _mapping(_as_returned),
}
