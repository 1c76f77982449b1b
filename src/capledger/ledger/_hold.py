"""What ``Hold`` and ``AsyncHold`` share, with no I/O: a hold's state and its flows.

Which operation an observe or the end of a ``with`` block sends is decided by the pure
core (``capledger._core.holds``); the flows here send it and keep the hold it answers with.
"""

from __future__ import annotations

import logging
import warnings
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Self, Unpack

from capledger._core import Extend, Flag, HoldRecord, Outcome, Release, Settle, flag_set
from capledger._core.holds import closing_op, observe_extensions, running_amounts
from capledger.clock import from_us
from capledger.errors import BudgetExceeded, InvalidInput, LedgerError
from capledger.money import AmountLike

from ._base import LedgerBase, LedgerFlow
from ._options import Amounts
from ._validate import amounts_of, ttl_us_of
from ._views import UnsettledHoldWarning, api_amounts

__all__ = ["HoldBase"]

_LOG = logging.getLogger("capledger")


class HoldBase:
    """The state and flows of a hold, shared by ``Hold`` and ``AsyncHold``."""

    __slots__ = ("_ledger", "_observed", "_record")

    def __init__(self, ledger: LedgerBase, record: HoldRecord) -> None:
        self._ledger = ledger
        self._record = record
        self._observed: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state} {self.scopes} {self.amounts}>"

    @property
    def id(self) -> str:
        """The hold's id."""
        return self._record.id

    @property
    def request_id(self) -> str | None:
        """The request_id it was placed with, if any."""
        return self._record.request_id

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes it is charged to."""
        return self._record.scopes

    @property
    def amounts(self) -> dict[str, Decimal | int]:
        """The amounts held, per unit (``Decimal`` USD)."""
        return api_amounts(self._record.amounts)

    @property
    def expires_at(self) -> datetime:
        """When the hold expires if it is neither settled nor released."""
        return from_us(self._record.expires_us)

    @property
    def state(self) -> str:
        """open, settled, released or expired (as last seen by this object)."""
        return self._record.state

    @property
    def settled_amounts(self) -> dict[str, Decimal | int] | None:
        """The actual amounts it settled at, once settled."""
        settled = self._record.settled
        return None if settled is None else api_amounts(settled)

    @property
    def observed(self) -> dict[str, Decimal | int]:
        """The running amounts reported with ``observe()``."""
        return api_amounts(self._observed)

    @property
    def flags(self) -> frozenset[Flag]:
        """Once settled: ``late`` (after it expired or was released) and/or ``overrun``
        (above the hold, or past a cap); empty otherwise."""
        return flag_set(self._record.flags)

    @property
    def tags(self) -> dict[str, object]:
        """The attribution tags."""
        return dict(self._record.tags)

    def _update(self, outcome: Outcome) -> Self:
        """Keep the hold an operation answered with (its events fired, its error raised);
        return this hold."""
        if outcome.events or outcome.error is not None:
            self._ledger._unwrap(outcome)
        self._record = outcome.record()
        return self

    # --- the flows of the shells' methods ---------------------------------------------------

    def _release_op(self) -> Release:
        """The operation of ``release``."""
        return Release(self._record.id)

    def _extend_op(
        self,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        ttl: float | timedelta | None = None,
    ) -> Extend:
        """The operation of ``extend``, its arguments checked."""
        amounts = amounts_of(usd, tokens, requests, required=False)
        ttl_us = ttl_us_of(ttl)
        if not amounts and ttl_us is None:
            raise InvalidInput("extend needs an amount (usd=, tokens=, requests=) or a ttl")
        return Extend(self.id, amounts, ttl_us)

    def _observe(self, **amounts: Unpack[Amounts]) -> LedgerFlow[Self]:
        """Keep the running amounts; extend as ``observe_extensions`` proposes, and raise
        the refusal if no extension fits."""
        reported = amounts_of(amounts.get("usd"), amounts.get("tokens"), amounts.get("requests"))
        self._observed = running_amounts(self._observed, reported)
        refusal: BudgetExceeded | None = None
        for op in observe_extensions(self._record, self._observed):
            try:
                self._update((yield op))
                return self
            except BudgetExceeded as error:
                refusal = error
        if refusal is not None:
            raise refusal
        return self

    def _exit(self, exc: BaseException | None) -> LedgerFlow[None]:
        """Close a hold its block left open, as ``closing_op`` decides.

        An unsettled hold with nothing observed is settled in full, with a warning. After
        an exception in the block, the caller's exception matters more: a failure to close
        the hold is logged, and the hold expires at its TTL.
        """
        op = closing_op(self._record, self._observed, failed=exc is not None)
        if op is None:
            return
        if isinstance(op, Settle) and not op.amounts:
            warnings.warn(
                f"hold {self.id} left its block unsettled with nothing observed; "
                "it was settled at the full held amount",
                UnsettledHoldWarning,
                # At the caller's with statement: past this flow, the flow driver's
                # _advance and run, the shell's _run and its __exit__.
                stacklevel=6,
            )
        try:
            self._update((yield op))
        except LedgerError:
            if exc is None:
                raise
            _LOG.exception("capledger could not close hold %s after an error", self.id)
