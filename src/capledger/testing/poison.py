"""A workload of concurrent operations poisoned with bad input, and the checks of it.

720 operations run at once (from threads, or as asyncio tasks) so that they share store
transactions; every third one carries one kind of bad input (a hold id that is a list, a
number, an object, or holds a NUL or a lone surrogate; a tag with a NUL, a lone surrogate or
a 5,001-digit integer; a bad amount or request_id). Each bad one must get its own typed
error and write nothing; every other one must succeed exactly as if it ran alone. Used by
the batch-isolation tests of every store.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from capledger._core import (
    Account,
    Config,
    Entry,
    Extend,
    HoldRecord,
    Op,
    Outcome,
    Release,
    Reserve,
    SetLimit,
    Settle,
    Sweep,
)
from capledger.errors import InvalidAmount, InvalidInput, InvalidScope, InvalidTag, LedgerError
from capledger.ledger import AsyncLedger, Ledger
from capledger.stores import Store

__all__ = [
    "OPERATIONS",
    "SCOPE",
    "Call",
    "Poisoned",
    "check_poisoned",
    "check_raw_isolation",
    "holds_needed",
    "poisoned_calls",
    "raw_bad_ops",
    "run_tasks",
    "run_threads",
]

#: How many operations one run sends at once.
OPERATIONS = 720
SCOPE = "user:poison"
_AMOUNT = Decimal("0.01")
_CAP = Decimal("100")
_TAGS = {"model": "m-1", "tokens": 12}

_ON = (SCOPE,)
_HOLD = ("{hold}",)


def _paid(**extra: object) -> dict[str, object]:
    return {"usd": _AMOUNT, **extra}


#: Each kind of bad input: (name, method, what it is given, the error it must raise). A
#: ``"{hold}"`` argument is replaced by a real open hold of the bad call's own, which must
#: stay open (nothing written).
_BAD: tuple[tuple[str, str, tuple[Any, ...], dict[str, Any], type[LedgerError]], ...] = (
    ("settle-list-id", "settle", (["h_1"],), {"usd": _AMOUNT}, InvalidInput),
    ("settle-int-id", "settle", (12,), {"usd": _AMOUNT}, InvalidInput),
    ("release-object-id", "release", (object(),), {}, InvalidInput),
    ("release-nul-id", "release", ("h_\x00",), {}, InvalidInput),
    ("settle-surrogate-id", "settle", ("h_\ud800",), {"usd": _AMOUNT}, InvalidInput),
    ("release-long-id", "release", ("h" * 10_000,), {}, InvalidInput),
    ("reserve-nul-tag", "reserve", _ON, _paid(tags={"m": "a\x00"}), InvalidTag),
    ("reserve-surrogate-tag", "reserve", _ON, _paid(tags={"m": "\udc80"}), InvalidTag),
    ("reserve-nul-tag-key", "reserve", _ON, _paid(tags={"m\x00": 1}), InvalidTag),
    ("reserve-huge-int-tag", "reserve", _ON, _paid(tags={"m": 10**5000}), InvalidTag),
    ("settle-surrogate-tag", "settle", _HOLD, _paid(tags={"m": "\ud800"}), InvalidTag),
    ("settle-huge-int-tag", "settle", _HOLD, {"tags": {"n": -(10**30)}}, InvalidTag),
    ("settle-list-amount", "settle", _HOLD, {"usd": [1]}, InvalidAmount),
    ("settle-nan", "settle", _HOLD, {"usd": "NaN"}, InvalidAmount),
    ("reserve-negative", "reserve", _ON, {"usd": -1}, InvalidAmount),
    ("reserve-huge-exponent", "reserve", _ON, {"usd": "1e999999999"}, InvalidAmount),
    ("reserve-fractional-tokens", "reserve", _ON, {"tokens": "1.5"}, InvalidAmount),
    ("reserve-nul-request-id", "reserve", _ON, _paid(request_id="r\x00"), InvalidInput),
    ("reserve-surrogate-scope", "reserve", ("user:\ud800",), {"usd": _AMOUNT}, InvalidScope),
)  # fmt: skip


@dataclass
class Call:
    """One operation of the workload: ``ledger.<method>(*args, **kwargs)``."""

    name: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    #: The error it must raise; None for an innocent call, which must succeed.
    expected: type[LedgerError] | None
    #: The open hold the call names or may leave untouched, if any.
    hold_id: str | None = None


@dataclass
class Poisoned:
    """The calls of one run and what each was told (None: it succeeded)."""

    calls: list[Call]
    results: list[BaseException | None] = field(default_factory=list)


def poisoned_calls(open_holds: Sequence[str], seed: int = 11) -> list[Call]:
    """``OPERATIONS`` calls in a shuffled order: every third one bad, the rest innocent
    reserves, settles and releases.

    Args:
        open_holds: ids of open holds on ``SCOPE`` of ``_AMOUNT``, one for each call that
            names a hold (``holds_needed``); each is named by one call only.
    """
    holds = iter(open_holds)
    calls: list[Call] = []
    for index in range(OPERATIONS):
        if index % 3 == 0:
            name, method, args, kwargs, error = _BAD[(index // 3) % len(_BAD)]
            hold_id = next(holds) if args == _HOLD else None
            if hold_id is not None:
                args = (hold_id,)
            calls.append(Call(name, method, args, kwargs, error, hold_id))
        elif index % 3 == 1 and index % 2 == 0:
            calls.append(Call("reserve", "reserve", _ON, _paid(tags=_TAGS), None))
        elif index % 3 == 1:
            hold_id = next(holds)
            calls.append(Call("release", "release", (hold_id,), {}, None, hold_id))
        else:
            hold_id = next(holds)
            kwargs = {"usd": _AMOUNT, "tags": {"outcome": "ok"}}
            calls.append(Call("settle", "settle", (hold_id,), kwargs, None, hold_id))
    random.Random(seed).shuffle(calls)
    return calls


def holds_needed() -> int:
    """How many open holds ``poisoned_calls`` names."""
    return sum(1 for call in poisoned_calls([f"h_{i}" for i in range(OPERATIONS)]) if call.hold_id)


def _setup(ledger: Ledger) -> list[str]:
    ledger.set_limit(SCOPE, usd=_CAP)
    return [ledger.reserve(SCOPE, usd=_AMOUNT, ttl=3600).id for _ in range(holds_needed())]


def run_threads(
    ledger: Ledger, *, threads: int = 32, prepare: Callable[[], object] | None = None
) -> Poisoned:
    """Place the open holds, then run the poisoned calls from ``threads`` threads at once.

    Args:
        threads: how many threads call at once.
        prepare: called between placing the holds and the concurrent calls (to start
            counting transactions, say).
    """
    run = Poisoned(poisoned_calls(_setup(ledger)))
    if prepare is not None:
        prepare()

    def one(call: Call) -> BaseException | None:
        try:
            getattr(ledger, call.method)(*call.args, **call.kwargs)
        except Exception as error:
            return error
        return None

    with ThreadPoolExecutor(threads) as pool:
        run.results = list(pool.map(one, run.calls))
    return run


async def run_tasks(
    ledger: AsyncLedger, *, prepare: Callable[[], object] | None = None
) -> Poisoned:
    """Place the open holds, then run the poisoned calls as concurrent asyncio tasks.

    Args:
        prepare: called between placing the holds and the concurrent calls (to start
            counting transactions, say).
    """
    await ledger.set_limit(SCOPE, usd=_CAP)
    opened = [
        (await ledger.reserve(SCOPE, usd=_AMOUNT, ttl=3600)).id for _ in range(holds_needed())
    ]
    run = Poisoned(poisoned_calls(opened))
    if prepare is not None:
        prepare()

    async def one(call: Call) -> BaseException | None:
        try:
            await getattr(ledger, call.method)(*call.args, **call.kwargs)
        except Exception as error:
            return error
        return None

    run.results = list(await asyncio.gather(*(one(call) for call in run.calls)))
    return run


def check_poisoned(run: Poisoned, holds: Sequence[Any], balances: Sequence[Any]) -> None:
    """Every bad call got its own typed error, every innocent one succeeded, and the ledger
    holds exactly what the innocent ones did.

    Args:
        holds: ``ledger.holds(scope=SCOPE, state=None, limit=10_000)`` after the run.
        balances: ``ledger.balance(SCOPE)`` after the run.
    """
    innocent_failures = [
        (call.name, repr(result))
        for call, result in zip(run.calls, run.results, strict=True)
        if call.expected is None and result is not None
    ]
    assert innocent_failures == [], (
        f"{len(innocent_failures)} innocent failures: {innocent_failures[:5]}"
    )
    wrong = [
        (call.name, call.expected.__name__, repr(result))
        for call, result in zip(run.calls, run.results, strict=True)
        if call.expected is not None and type(result) is not call.expected
    ]
    assert wrong == [], f"{len(wrong)} bad calls without their typed error: {wrong[:5]}"
    state = {hold.id: hold for hold in holds}
    for call in run.calls:
        if call.hold_id is None:
            continue
        hold = state[call.hold_id]
        if call.expected is not None:  # refused before the store: the hold is untouched
            assert (hold.state, hold.settled) == ("open", None), (call.name, hold)
        elif call.name == "settle":
            assert hold.state == "settled" and hold.settled == {"usd": _AMOUNT}, hold
            assert hold.tags == {"outcome": "ok"}, hold
        else:
            assert hold.state == "released", hold
    settles = sum(1 for call in run.calls if call.name == "settle")
    reserves = sum(1 for call in run.calls if call.name == "reserve")
    left_open = sum(1 for call in run.calls if call.expected is not None and call.hold_id)
    [total] = [b for b in balances if b.unit == "usd" and b.period == "total"]
    assert total.spent == settles * _AMOUNT, total
    assert total.held == (reserves + left_open) * _AMOUNT, total
    opened = [hold for hold in holds if hold.state == "open"]
    assert len(opened) == reserves + left_open
    assert all(hold.tags == _TAGS for hold in opened if hold.id not in _named(run)), opened[:3]


def _named(run: Poisoned) -> set[str]:
    return {call.hold_id for call in run.calls if call.hold_id is not None}


# --- operations built past the ledger's checks ------------------------------------------------


def _innocent_ops() -> list[Op]:
    ttl_us = 600_000_000
    return [
        SetLimit("user:a", "usd", "total", 100, "UTC"),
        Reserve("h_1", ("user:a", "team:t"), {"usd": 10}, ttl_us, None, {"m": "x"}, ""),
        Reserve("h_2", ("user:a",), {"usd": 20}, ttl_us, "req-2", {}, "fp-2"),
        Settle("h_1", {"usd": 7}, {"k": "v"}),
        Extend("h_2", {"usd": 5}, None),
        Reserve("h_3", ("team:t",), {"usd": 1, "tokens": 9}, ttl_us, None, {}, ""),
        Release("h_2"),
        Sweep(10),
    ]


def raw_bad_ops(*, half_way: bool, unhashable_id: bool) -> list[Op]:
    """Operations no ledger call makes (its checks refuse them), whose decisions raise.

    Args:
        half_way: include a reserve that raises half-way: it has already added its usd to
            ``user:a``'s held amount when its token amount (text) fails, so only deciding
            the batch again without it gives the others what they get alone.
        unhashable_id: include a settle whose hold id is a list (the PostgreSQL store
            plans its row locks from the hold ids before any decision, so it is left out
            there).
    """
    ops: list[Op] = []
    if half_way:
        amounts: dict[str, Any] = {"usd": 3, "tokens": "x"}
        ops.append(Reserve("h_bad", ("user:a", "team:t"), amounts, 600_000_000, None, {}, ""))
    if unhashable_id:
        ops.append(Settle(["h_1"], {"usd": 1}, {}))  # type: ignore[arg-type]
    return ops


def check_raw_isolation(
    mixed: Store, alone: Store, *, half_way: bool = True, unhashable_id: bool = True
) -> None:
    """Run the innocent operations with bad ones among them in one batch on ``mixed``, and
    alone on ``alone`` (a fresh store with the same clock): every bad one fails with its
    own exception and every other answer, row and journal entry is the same."""
    config = Config()
    bad = raw_bad_ops(half_way=half_way, unhashable_id=unhashable_id)
    innocent = _innocent_ops()
    batch: list[Op] = []
    for index, op in enumerate(innocent):
        batch.append(op)
        if index < len(bad):
            batch.append(bad[index])
    together = mixed.execute(batch, config)
    by_itself = alone.execute(_innocent_ops(), config)
    failed = [outcome for op, outcome in zip(batch, together, strict=True) if op in bad]
    assert [type(outcome.error) for outcome in failed] == [TypeError] * len(bad), failed
    kept = [outcome for op, outcome in zip(batch, together, strict=True) if op not in bad]
    assert [_answer(o) for o in kept] == [_answer(o) for o in by_itself]
    assert _rows(mixed) == _rows(alone)


def _answer(outcome: Outcome) -> tuple[object, ...]:
    hold = outcome.hold
    fields = None if hold is None else [getattr(hold, name) for name in HoldRecord.__slots__]
    return (type(outcome.error).__name__, repr(outcome.value), fields)


def _rows(store: Store) -> tuple[object, ...]:
    accounts = [
        [getattr(a, name) for name in Account.__slots__]
        for a in sorted(store.accounts(), key=lambda a: a.key)
    ]
    holds = [
        [getattr(h, name) for name in HoldRecord.__slots__]
        for h in store.holds(states=("open", "settled", "released", "expired"))
    ]
    entries = [[getattr(e, name) for name in Entry.__slots__] for e in store.journal()]
    return accounts, holds, entries
