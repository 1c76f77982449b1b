"""``AsyncLedger`` and ``AsyncHold``: the same ledger for asyncio.

Each method runs the same flow as its ``Ledger`` or ``Hold`` twin, performing the steps
with ``await``; the docstrings are those of the twins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack

from capledger._core import Config, Op, Outcome
from capledger._core.audit import VerifyReport
from capledger._core.records import Reserve
from capledger._flow import arun
from capledger.errors import LedgerError

from . import _options as keywords
from ._base import LedgerBase, LedgerFlow, Read, Step, Together, settle_op
from ._batcher import AsyncBatcher
from ._hold import HoldBase
from ._views import Balance, HoldInfo, Limit

__all__ = ["AsyncHold", "AsyncLedger"]

_T = TypeVar("_T")


class AsyncLedger(LedgerBase):
    """The same ledger for asyncio: every method of ``Ledger`` as a coroutine.

    ``reserve`` returns an object to ``await`` or to enter with ``async with``. Arguments are
    those of ``Ledger``.
    """

    _batcher: AsyncBatcher | None
    _execute_now: Callable[[Op], Outcome]

    def _open(self) -> None:
        self._batcher = AsyncBatcher(self._store, self._config) if self._store.batches else None
        self._execute_now = self._store.executor(self._config)

    def _use_config(self, config: Config) -> None:
        super()._use_config(config)
        # The store's executor keeps the config it was made with: make one with the new.
        self._execute_now = self._store.executor(config)
        if self._batcher is not None:
            self._batcher.config = config

    async def _execute(self, op: Op) -> Outcome:
        if self._batcher is not None:
            return await self._batcher.submit(op)
        # A store that does not batch has no transaction to wait on (see ``_read``).
        return self._execute_now(op)

    async def _execute_all(self, ops: Sequence[Op]) -> list[Outcome]:
        return await self._store.aexecute(ops, self._config)

    async def _read(self, read: Callable[[], _T]) -> _T:
        # Reads are synchronous on every store; keep the event loop free while they run.
        if not self._store.batches:
            return read()
        return await asyncio.to_thread(read)

    async def _perform(self, step: Step) -> object:
        if isinstance(step, Read):
            return await self._read(step.read)
        return await (
            self._execute_all(step.ops) if isinstance(step, Together) else self._execute(step)
        )

    async def _arun(self, flow: LedgerFlow[_T]) -> _T:
        try:
            return await arun(flow, self._perform, catch=LedgerError)
        except BaseException:
            flow.close()  # see ``Ledger._run``
            raise

    def reserve(
        self, scopes: str | Sequence[str], **options: Unpack[keywords.ReserveOptions]
    ) -> _PendingHold:
        """Hold budget on every scope, or on none; see ``Ledger.reserve``.

        Bad arguments raise at once; the hold is placed when the result is awaited or
        entered (once). A result neither awaited nor entered holds nothing, and Python warns
        "coroutine 'AsyncLedger.reserve' was never awaited" when it is collected.
        """
        op = self._reserve_op(scopes, **options)
        return _PendingHold(self, op, options.get("return_closed", False))

    async def settle(self, hold_id: str, **options: Unpack[keywords.SettleOptions]) -> HoldInfo:
        """Settle a hold by id; see ``Ledger.settle``."""
        return self._hold_info(await self._execute(self._settle_op(hold_id, **options)))

    async def release(self, hold_id: str) -> HoldInfo:
        """Release a hold by id; see ``Ledger.release``."""
        return self._hold_info(await self._execute(self._release_op(hold_id)))

    async def set_limit(self, scope: str, **options: Unpack[keywords.LimitOptions]) -> None:
        """Cap ``scope`` per ``period``; see ``Ledger.set_limit``."""
        return await self._arun(self._set_limit(scope, **options))

    async def remove_limit(
        self, scope: str, *, period: str = "total", unit: str | None = None
    ) -> int:
        """Remove caps of ``scope``; see ``Ledger.remove_limit``."""
        return await self._arun(self._remove_limit(scope, period, unit))

    async def limits(self, scope: str | None = None) -> list[Limit]:
        """Every cap; see ``Ledger.limits``."""
        return await self._arun(self._limits(scope))

    async def balance(self, scope: str, *, unit: str | None = None) -> list[Balance]:
        """The accounts of ``scope``; see ``Ledger.balance``."""
        return await self._arun(self._balance(scope, unit))

    async def holds(self, **query: Unpack[keywords.HoldsQuery]) -> list[HoldInfo]:
        """Holds; see ``Ledger.holds``."""
        return await self._arun(self._holds(**query))

    async def report(
        self, group_by: Sequence[str] = ("scope",), **window: Unpack[keywords.ReportRange]
    ) -> list[dict[str, object]]:
        """Settled spend by group; see ``Ledger.report``."""
        return await self._arun(self._report(group_by, **window))

    async def verify(self) -> VerifyReport:
        """Recompute every account from the journal; see ``Ledger.verify``."""
        return await self._arun(self._verify())

    async def sweep(self, *, progress: Callable[[int], object] | None = None) -> int:
        """Expire every overdue hold now; see ``Ledger.sweep``."""
        return await self._arun(self._sweep(progress))

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; see ``Ledger.migrate``."""
        return await self._arun(self._migrate())

    async def aclose(self) -> None:
        """Close the store's connections; the ledger cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            await self._store.aclose()

    async def __aenter__(self) -> AsyncLedger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncHold(HoldBase):
    """A hold placed by ``AsyncLedger.reserve``; its methods are coroutines."""

    __slots__ = ()
    _ledger: AsyncLedger

    async def settle(self, **options: Unpack[keywords.SettleOptions]) -> AsyncHold:
        """Record the actual spend; see ``Hold.settle``."""
        return self._update(await self._ledger._execute(settle_op(self._record.id, **options)))

    async def release(self) -> AsyncHold:
        """Give the held amounts back; see ``Hold.release``."""
        return self._update(await self._ledger._execute(self._release_op()))

    async def extend(self, **options: Unpack[keywords.ExtendOptions]) -> AsyncHold:
        """Add to the hold atomically and/or push its expiry; see ``Hold.extend``."""
        return self._update(await self._ledger._execute(self._extend_op(**options)))

    async def observe(self, **amounts: Unpack[keywords.Amounts]) -> AsyncHold:
        """Report the running cost while streaming; see ``Hold.observe``."""
        return await self._ledger._arun(self._observe(**amounts))

    async def __aenter__(self) -> AsyncHold:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._ledger._arun(self._exit(exc))


async def _place_hold(ledger: AsyncLedger, op: Reserve, return_closed: bool) -> AsyncHold:
    return AsyncHold(ledger, ledger._placed(await ledger._execute(op), return_closed))


# A pending hold makes this coroutine at once, so a forgotten ``await`` is reported by
# Python's own mechanism when the unused coroutine is collected, under the name the caller
# wrote: "RuntimeWarning: coroutine 'AsyncLedger.reserve' was never awaited" (and where it
# was made, in asyncio's debug mode).
_place_hold.__qualname__ = "AsyncLedger.reserve"


class _PendingHold:
    """What ``AsyncLedger.reserve`` returns: await it, or enter it with ``async with``, once.

    Neither awaited nor entered, it holds nothing, and Python warns that it was never
    awaited, as for any coroutine.
    """

    __slots__ = ("_hold", "_placing")

    def __init__(self, ledger: AsyncLedger, op: Reserve, return_closed: bool) -> None:
        # Made now (not when awaited) so that one never awaited is reported; it refers to
        # the ledger and the operation, not to this object, so an unused one is collected (and
        # reported) as soon as it is dropped, with no reference cycle to wait for.
        self._placing = _place_hold(ledger, op, return_closed)
        self._hold: AsyncHold | None = None

    def __await__(self) -> Generator[Any, None, AsyncHold]:
        return self._placing.__await__()

    async def __aenter__(self) -> AsyncHold:
        self._hold = await self._placing
        return self._hold

    async def __aexit__(self, *exc_info: Any) -> None:
        hold = self._hold
        if hold is not None:  # the hold's own exit, as deep in the stack (see ``HoldBase._exit``)
            await hold._ledger._arun(hold._exit(exc_info[1]))
