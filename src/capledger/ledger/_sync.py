"""``Ledger`` and ``Hold``: the ledger for threads and plain code.

Each method runs one flow of ``LedgerBase`` or ``HoldBase``, performing its steps with
plain calls. The methods are documented here; ``AsyncLedger`` and ``AsyncHold`` refer to
these docstrings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TypeVar, Unpack

from capledger._core import Config, Op, Outcome
from capledger._core.audit import VerifyReport
from capledger._flow import run
from capledger.errors import LedgerError

from . import _options as keywords
from ._base import LedgerBase, LedgerFlow, Read, Step, Together, settle_op
from ._batcher import Batcher
from ._hold import HoldBase
from ._views import Balance, HoldInfo, Limit

__all__ = ["Hold", "Ledger"]

_T = TypeVar("_T")


class Ledger(LedgerBase):
    """A cost ledger over a store, for threads and plain code.

    Args:
        url: ``sqlite:///path`` (default ``$CAPLEDGER_URL``, else ``sqlite:///capledger.db``),
            ``memory://`` or ``postgresql://...``.
        store: a store object instead of a URL (``capledger.stores.open_store(url,
            clock)``, or a ``Store`` subclass of your own); not with ``url``. The ledger
            owns it from then on: ``close()`` closes it, so give each ledger its own.
        clock: where time comes from (``ManualClock`` in tests); with ``store=``, the
            store's own clock (give none, or that one).
        thresholds: fractions of a cap whose crossing fires a ``threshold`` event, once per
            window.
        timezone: the IANA time zone of calendar periods when ``set_limit`` names none.
    """

    _batcher: Batcher | None
    _execute: Callable[[Op], Outcome]

    def _open(self) -> None:
        self._batcher = Batcher(self._store, self._config) if self._store.batches else None
        # Run one operation: bound once here, since every call of the API goes through it.
        self._execute = (
            self._store.executor(self._config) if self._batcher is None else self._batcher.submit
        )

    def _use_config(self, config: Config) -> None:
        super()._use_config(config)
        # The store's executor keeps the config it was made with: make one with the new.
        if self._batcher is None:
            self._execute = self._store.executor(config)
        else:
            self._batcher.config = config

    def _execute_all(self, ops: Sequence[Op]) -> list[Outcome]:
        return self._store.execute(ops, self._config)

    def _perform(self, step: Step) -> object:
        if not isinstance(step, (Read, Together)):  # one operation: the hot path
            return self._execute(step)
        if isinstance(step, Read):
            return step.read()
        return self._execute_all(step.ops)

    def _run(self, flow: LedgerFlow[_T]) -> _T:
        # A ledger error of a step is the flow's to decide about (an observe tries again).
        try:
            return run(flow, self._perform, catch=LedgerError)
        except BaseException:
            # Closed now, not when collected: an interrupt (a signal handler's exception)
            # that lands while a flow left early closes then reaches the caller, where in
            # a finalizer Python could only print it and drop it.
            flow.close()
            raise

    def reserve(
        self, scopes: str | Sequence[str], **options: Unpack[keywords.ReserveOptions]
    ) -> Hold:
        """Hold ``usd`` / ``tokens`` / ``requests`` on every limit of every scope, or on none.

        Args:
            scopes: ``"kind:id"`` or a list of them (at most 16).
            usd: dollars as ``Decimal``, ``int``, ``str`` or ``float`` (taken through ``str``).
            tokens: whole tokens.
            requests: whole requests.
            request_id: makes the call idempotent: the same id returns the same open hold.
            ttl: seconds (at most a day; default 60) after which an unsettled hold expires.
            tags: attribution tags (model, feature, ...), journaled with every entry.
            return_closed: when ``request_id`` names a hold that is already settled,
                released or expired, return that closed hold instead of raising
                ``IdempotentHoldClosed``. It holds nothing; money settled or observed under
                it is still recorded, flagged ``late``.

        Raises:
            BudgetExceeded: a limit cannot pay; nothing was held anywhere.
            IdempotencyConflict: ``request_id`` was used with a different payload.
            IdempotentHoldClosed: ``request_id`` names a closed hold (``.hold``); nothing
                was held.
            InvalidInput: bad arguments (``InvalidAmount``, ``InvalidScope``, ...).
        """
        placed = self._execute(self._reserve_op(scopes, **options))
        return Hold(self, self._placed(placed, options.get("return_closed", False)))

    def settle(self, hold_id: str, **options: Unpack[keywords.SettleOptions]) -> HoldInfo:
        """Settle a hold by id (for a hold placed by another process); see ``Hold.settle``."""
        return self._hold_info(self._execute(self._settle_op(hold_id, **options)))

    def release(self, hold_id: str) -> HoldInfo:
        """Release a hold by id; see ``Hold.release``."""
        return self._hold_info(self._execute(self._release_op(hold_id)))

    def set_limit(self, scope: str, **options: Unpack[keywords.LimitOptions]) -> None:
        """Cap ``scope`` (``usd=``, ``tokens=``, ``requests=``) per ``period=``.

        The period is ``total`` (the default), ``minute`` … ``year``, or a duration like
        ``30d``; ``tz=`` names the IANA time zone of a calendar period. A new cap takes
        effect at once. A new limit starts from the truth: the spend its current window
        already has in the journal, and the open holds on the scope.
        """
        return self._run(self._set_limit(scope, **options))

    def remove_limit(self, scope: str, *, period: str = "total", unit: str | None = None) -> int:
        """Remove the caps of ``scope`` for ``period`` (one ``unit`` or all); return how many."""
        return self._run(self._remove_limit(scope, period, unit))

    def limits(self, scope: str | None = None) -> list[Limit]:
        """Every cap (of ``scope`` if given)."""
        return self._run(self._limits(scope))

    def balance(self, scope: str, *, unit: str | None = None) -> list[Balance]:
        """The accounts of ``scope`` in their current window (of ``unit`` if given)."""
        return self._run(self._balance(scope, unit))

    def holds(self, **query: Unpack[keywords.HoldsQuery]) -> list[HoldInfo]:
        """Up to ``limit`` holds, oldest first (or newest first).

        Args:
            scope: only holds charged to this scope.
            state: ``open`` (the default), ``settled``, ``released``, ``expired``, or None
                for every state.
            limit: at most this many (default 1000).
            newest_first: list the most recent first: ``holds(state=None, limit=1,
                newest_first=True)[0]`` is the latest hold, however many there are.
        """
        return self._run(self._holds(**query))

    def report(
        self, group_by: Sequence[str] = ("scope",), **window: Unpack[keywords.ReportRange]
    ) -> list[dict[str, object]]:
        """Settled spend grouped by scope, kind, unit, day, hour, month or any tag name.

        Args:
            group_by: the keys; a key that is not built in must be a tag some settled call
                in the range has (``model``), else ``InvalidInput`` lists the valid ones.
            since: from this moment (inclusive): an ISO 8601 string, a ``date`` or an aware
                ``datetime``. A date, or a string without an offset, is UTC; a naive
                ``datetime`` is refused (``InvalidInput``).
            until: to this moment (exclusive), written the same way.
        """
        return self._run(self._report(group_by, **window))

    def verify(self) -> VerifyReport:
        """Recompute every account from the journal and the open holds and compare."""
        return self._run(self._verify())

    def sweep(self, *, progress: Callable[[int], object] | None = None) -> int:
        """Expire every overdue hold now; return how many (expiry also happens lazily).

        It works in steps of at most 1000 holds, each its own transaction; ``progress`` is
        called with the number each step expired.
        """
        return self._run(self._sweep(progress))

    def migrate(self) -> list[str]:
        """Apply pending schema migrations; return their names."""
        return self._run(self._migrate())

    def close(self) -> None:
        """Close the store's connections; the ledger cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Hold(HoldBase):
    """A hold placed by ``Ledger.reserve``; also a context manager (see DESIGN section 6)."""

    __slots__ = ()
    _ledger: Ledger

    def settle(self, **options: Unpack[keywords.SettleOptions]) -> Hold:
        """Record the actual spend (``usd=``, ``tokens=``, ``requests=``, ``tags=``).

        Units not given settle at their held amount. A settle above the hold is recorded in
        full and flagged ``overrun``; settling an expired or released hold records the spend
        flagged ``late`` (money spent is never refused). Repeating the same settle is a
        no-op; a different one raises ``HoldClosed``.
        """
        return self._update(self._ledger._execute(settle_op(self._record.id, **options)))

    def release(self) -> Hold:
        """Give the held amounts back (nothing was spent); a no-op if already released."""
        return self._update(self._ledger._execute(self._release_op()))

    def extend(self, **options: Unpack[keywords.ExtendOptions]) -> Hold:
        """Add ``usd=`` / ``tokens=`` / ``requests=`` to the hold atomically (or raise
        ``BudgetExceeded``) and/or push its expiry to at least ``ttl=`` seconds from now."""
        return self._update(self._ledger._execute(self._extend_op(**options)))

    def observe(self, **amounts: Unpack[keywords.Amounts]) -> Hold:
        """Report the running cost while streaming (totals so far, not increments).

        When the running cost passes the hold, the hold is extended; if the budget cannot
        pay, ``BudgetExceeded`` is raised and the caller should stop the stream. What was
        observed is settled when the hold's block ends, even after an exception.
        """
        return self._ledger._run(self._observe(**amounts))

    def __enter__(self) -> Hold:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ledger._run(self._exit(exc))
