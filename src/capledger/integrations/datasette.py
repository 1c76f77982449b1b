"""A capledger ledger as an accountant for ``datasette-llm-accountant``.

``datasette-llm-accountant`` asks every registered ``Accountant`` to ``reserve`` an amount
in nanocents before a prompt runs, then to ``settle`` the actual amount, or to ``rollback``.
``CapledgerAccountant`` turns those into capledger holds, so Datasette plugins get
capledger's caps, periods, stores and journal through the hook they already use::

    from datasette import hookimpl
    from capledger import AsyncLedger
    from capledger.integrations.datasette import CapledgerAccountant

    ledger = AsyncLedger("sqlite:///spend.db")

    @hookimpl
    def register_llm_accountants(datasette):
        return [CapledgerAccountant(ledger, scopes=["tenant:acme"])]

Money: 1 nanocent is 1e-11 USD, 100 nanocents are capledger's 1 nano-USD. Amounts are
converted exactly with integers and rounded **up** to the nano-USD, so a reservation or a
spend is never under-recorded (at most 99 nanocents over).

Note that datasette-llm-accountant sizes its reservations from configuration
(``auto_reservation_usd``, default $0.10), not from a worst case of the prompt: capledger
never lets the holds pass a cap (G1), but a prompt that costs more than its reservation is
recorded as an overrun. Guarantee G2 needs a worst-case reservation.

Requires ``datasette-llm-accountant`` (imported when this module is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final

from datasette_llm_accountant import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
    Accountant,
    InsufficientBalanceError,
    Tx,
)

from capledger.errors import BudgetExceeded, ConfigurationError, InvalidScope
from capledger.integrations._ledger_like import AsyncLedgerLike, is_async_ledger
from capledger.scopes import parse_scopes

__all__ = [
    "NANOCENTS_PER_NANO_USD",
    "CapledgerAccountant",
    "nano_usd_from_nanocents",
    "usd_from_nanocents",
]

#: 1 nano-USD (1e-9 USD) = 100 nanocents (1e-11 USD).
NANOCENTS_PER_NANO_USD: Final = 100
_NANO_USD_PER_USD: Final = Decimal(1_000_000_000)

ScopesFor = Callable[[str | None, str | None, str | None], Sequence[str]]


def nano_usd_from_nanocents(nanocents: int) -> int:
    """Whole nano-USD of an amount in nanocents, rounded up (exact integer arithmetic).

    Raises:
        ConfigurationError: ``nanocents`` is not a non-negative whole number.
    """
    if isinstance(nanocents, bool) or not isinstance(nanocents, int) or nanocents < 0:
        raise ConfigurationError(f"nanocents must be a whole number >= 0, not {nanocents!r}")
    return -(-nanocents // NANOCENTS_PER_NANO_USD)


def usd_from_nanocents(nanocents: int) -> Decimal:
    """The ``Decimal`` USD of an amount in nanocents, rounded up to the nano-USD."""
    return Decimal(nano_usd_from_nanocents(nanocents)) / _NANO_USD_PER_USD


def _default_scopes(
    model_id: str | None, purpose: str | None, actor_id: str | None
) -> Sequence[str]:
    scopes = []
    if actor_id:
        scopes.append(f"user:{actor_id}")
    if purpose:
        scopes.append(f"feature:{purpose}")
    return scopes


class CapledgerAccountant(Accountant):  # type: ignore[misc, unused-ignore]
    """An ``Accountant`` whose reservations are holds in a capledger ``AsyncLedger``.

    Args:
        ledger: the ``AsyncLedger`` (Datasette runs on asyncio).
        scopes: charged on every reservation.
        scopes_for: ``(model_id, purpose, actor_id) -> scopes`` added per reservation; the
            default charges ``user:<actor_id>`` and ``feature:<purpose>`` when given.
        ttl: seconds a reservation may stay open before it expires (a Datasette group may
            run several prompts; the default is ten minutes).
        tags: journaled with every reservation (``model``, ``purpose``, ``actor`` are added).

    Raises:
        ConfigurationError: ``ledger`` is not an ``AsyncLedger``.
    """

    def __init__(
        self,
        ledger: AsyncLedgerLike,
        *,
        scopes: Sequence[str] = (),
        scopes_for: ScopesFor = _default_scopes,
        ttl: float | timedelta = 600,
        tags: dict[str, object] | None = None,
    ) -> None:
        if not is_async_ledger(ledger):
            raise ConfigurationError("CapledgerAccountant needs an AsyncLedger")
        self.ledger = ledger
        self.scopes = tuple(scopes)
        self.scopes_for = scopes_for
        self.ttl = ttl
        self.tags = dict(tags or {})

    async def reserve(
        self,
        nanocents: int,
        model_id: str | None = None,
        purpose: str | None = None,
        actor_id: str | None = None,
    ) -> Any:
        """Hold ``nanocents`` (rounded up to the nano-USD) on every scope, or raise.

        Raises:
            InsufficientBalanceError: a cap cannot pay (the ``BudgetExceeded`` is its cause).
        """
        try:
            scopes = parse_scopes([*self.scopes, *self.scopes_for(model_id, purpose, actor_id)])
        except InvalidScope as error:
            raise ConfigurationError(
                "this reservation is charged to no valid scope: pass scopes= or scopes_for="
            ) from error
        tags: dict[str, object] = {**self.tags}
        for key, value in (("model", model_id), ("purpose", purpose), ("actor", actor_id)):
            if value is not None:
                tags[key] = value
        try:
            hold = await self.ledger.reserve(
                scopes, usd=usd_from_nanocents(nanocents), ttl=self.ttl, tags=tags
            )
        except BudgetExceeded as error:
            raise InsufficientBalanceError(str(error)) from error
        return Tx(hold.id)

    async def settle(
        self,
        tx: Any,
        nanocents: int,
        model_id: str | None = None,
        purpose: str | None = None,
        actor_id: str | None = None,
    ) -> None:
        """Record the actual spend (rounded up to the nano-USD); above the hold it is an
        overrun, recorded in full."""
        await self.ledger.settle(str(tx), usd=usd_from_nanocents(nanocents))

    async def rollback(self, tx: Any) -> None:
        """Release the reservation: nothing was spent."""
        await self.ledger.release(str(tx))
