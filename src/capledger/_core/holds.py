"""What a hold in a caller's hands does next: pure decisions, no I/O.

``Hold.observe`` and leaving a hold's ``with`` block decide here, from the hold as last seen
and the running amounts observed under it, which operation to send; the ledger only sends
it. Amounts are integers in each unit's smallest step, as everywhere in the core.
"""

from __future__ import annotations

from collections.abc import Mapping

from .records import Extend, HoldRecord, Release, Settle

__all__ = ["closing_op", "observe_extensions", "running_amounts"]

#: The headroom an extension asks for beyond the running amount: a quarter of the hold.
_HEADROOM_DIVISOR = 4


def running_amounts(observed: Mapping[str, int], reported: Mapping[str, int]) -> dict[str, int]:
    """The running amounts after a report: per unit, the larger of the two.

    Running amounts only grow: a smaller value than one seen before is ignored, so an
    observed cost is never under-recorded.
    """
    running = dict(observed)
    for unit, amount in reported.items():
        if amount > running.get(unit, 0):
            running[unit] = amount
    return running


def observe_extensions(hold: HoldRecord, observed: Mapping[str, int]) -> list[Extend]:
    """The extensions to try, most generous first, when running amounts pass an open hold.

    The first asks for headroom (a quarter of the hold more than the gap), to spare a round
    trip per streamed chunk; the second for the exact gap, for when the budget cannot spare
    the headroom. None when the hold covers what was observed, or is no longer open.
    """
    held = hold.amounts
    gap = {u: a - held.get(u, 0) for u, a in observed.items() if a > held.get(u, 0)}
    if not gap or hold.state != "open":
        return []
    roomy = {u: a + max(a, held.get(u, 0) // _HEADROOM_DIVISOR) for u, a in gap.items()}
    return [Extend(hold.id, roomy, None), Extend(hold.id, gap, None)]


def closing_op(
    hold: HoldRecord, observed: Mapping[str, int], *, failed: bool
) -> Settle | Release | None:
    """What leaving the ``with`` block does to a hold the caller did not settle.

    Settled already: nothing. Something observed: settle at what was observed. After a
    failure: release. Otherwise: settle at the full held amount (``Settle`` with no
    amounts; the ledger warns the caller, who should have settled).

    A hold that closed without a settle (it expired, or was released: by the caller, or
    before a retry that asked for it with ``return_closed=True``) is treated like an open
    one, except that there is nothing to release: what was observed under it was spent, so
    it is settled (the store flags it late), never dropped.
    """
    state = hold.state
    if state == "settled":
        return None
    if observed:
        return Settle(hold.id, dict(observed), {})
    if failed or state == "released":
        return Release(hold.id) if state == "open" else None
    return Settle(hold.id, {}, {})
