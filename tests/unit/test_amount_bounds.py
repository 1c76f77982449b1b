"""Hostile amounts: every one is refused with ``InvalidAmount``, at once, writing nothing.

An amount is checked by its magnitude before any arithmetic, so ``"1e999990"`` costs as
little as ``"1"``; each refusal below is also timed against a bound far above what it costs
(microseconds) and far below what the old scale-then-check cost (minutes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from capledger import AsyncLedger, Ledger
from capledger.bounds import MAX_AMOUNT, MAX_CAP, NANO_PER_USD
from capledger.cli import main
from capledger.errors import InvalidAmount, InvalidInput
from capledger.money import MAX_AMOUNT_TEXT_LENGTH, Unit, from_units, to_units

#: Far above the microseconds a refusal costs, far below the minutes a regression costs.
FAST_S = 5.0

HUGE = [
    "1e999990",  # was scaled to a million digits before the bound was checked
    "1e999999999",  # was a raw decimal.Overflow
    "1E+999999999",
    "1e999999999999999999999",  # past what decimal can represent at all
    Decimal("1e999999999"),
    Decimal("9" * 100_000),
    10**5000,  # its repr alone would raise ValueError (the int string limit)
    1e308,
]
NOT_FINITE = [
    "nan",
    "NaN",
    "-nan",
    "sNaN",
    "inf",
    "-Infinity",
    Decimal("NaN"),
    Decimal("sNaN"),  # cannot even be hashed
    Decimal("-Infinity"),
    float("nan"),
    float("inf"),
    float("-inf"),
]
NOT_A_NUMBER = [
    "",
    "   ",
    "abc",
    "1,000",
    "1_000",  # Decimal() accepts it; JSON, SQL and the HTTP API would not
    "1 000",
    "\u0661\u0662\u0663",  # Arabic-Indic digits: Decimal() reads 123
    "\uff15",  # fullwidth 5
    "0x10",
    "1e",
    "e5",
    ".",
    "--1",
    "1e1.5",
    "$5",
    "1" * (MAX_AMOUNT_TEXT_LENGTH + 1),
    "0." + "0" * 1_000_000 + "1",
    True,
    False,
    None,
    [1],
    {"usd": 1},
    b"1",
    Fraction(1, 3),
    1j,
]
NEGATIVE = ["-1", "-0.000000001", "-1e-999999999", Decimal("-1e999999999"), -1, -(10**5000), -0.5]


def _id(value: object) -> str:
    """A short test id (the repr of a 5000-digit int raises ValueError)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"int-of-{value.bit_length()}-bits"
    text = repr(value)
    return text if len(text) <= 30 else f"{text[:20]}...{len(text)}"


def _refused_fast(call: Callable[[], object], match: str | None = None) -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidAmount, match=match):
        call()
    assert time.perf_counter() - start < FAST_S


@pytest.mark.parametrize("cap", [False, True])
@pytest.mark.parametrize("unit", ["usd", "tokens", "requests"])
@pytest.mark.parametrize(
    ("values", "match"),
    [
        (HUGE, "past the bound|out of range"),
        (NOT_FINITE, "finite"),
        (NOT_A_NUMBER, "not a number|must be a number|must be Decimal|longer than"),
        (NEGATIVE, "must not be negative"),
    ],
    ids=["huge", "not-finite", "not-a-number", "negative"],
)
def test_hostile_amounts_are_refused_fast(
    values: list[object], match: str, unit: Unit, cap: bool
) -> None:
    for value in values:
        _refused_fast(lambda value=value: to_units(unit, value, cap=cap), match)  # type: ignore[misc]


def test_messages_stay_short() -> None:
    for value in ["1" * 10_000, Decimal("9" * 100_000), 10**5000, "0x" + "f" * 50]:
        with pytest.raises(InvalidAmount) as refusal:
            to_units("usd", value)  # type: ignore[arg-type]
        assert len(str(refusal.value)) < 200


@pytest.mark.parametrize(
    ("value", "nano"),
    [
        (" 2.5 ", 2_500_000_000),
        ("\t2.5\n", 2_500_000_000),
        ("+5", 5_000_000_000),
        ("5.", 5_000_000_000),
        (".5", 500_000_000),
        ("1E-3", 1_000_000),
        ("0e999999999", 0),
        (Decimal("0E+999999999"), 0),
        ("-0", 0),  # negative zero is zero
        ("-0.0", 0),
        (Decimal("-0"), 0),
        (-0.0, 0),
        (0, 0),
        ("0" * (MAX_AMOUNT_TEXT_LENGTH - 1) + "1", NANO_PER_USD),  # long, but within bound
        ("1e-999999999", 1),  # a tiny cost is one nano-USD, rounded up
        (Decimal("1e-999999999"), 1),
        (5e-324, 1),
        (0.1, 100_000_000),  # a float through str: exactly a tenth
        (Decimal("0.1" + "0" * 100_000), 100_000_000),  # many digits, all zero past the nano
        (Decimal("0." + "0" * 100_000 + "1"), 1),
        ("1000000", MAX_AMOUNT["usd"]),
        (1_000_000, MAX_AMOUNT["usd"]),
    ],
)
def test_plain_amounts_are_read_exactly(value: object, nano: int) -> None:
    assert to_units("usd", value) == nano  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("unit", "value", "count"),
    [
        ("tokens", "1e6", 1_000_000),
        ("tokens", Decimal("1.000"), 1),
        ("tokens", 12.0, 12),
        ("tokens", "-0", 0),
        ("requests", MAX_AMOUNT["requests"], MAX_AMOUNT["requests"]),
        ("tokens", Decimal(MAX_AMOUNT["tokens"]), MAX_AMOUNT["tokens"]),
    ],
)
def test_counts_are_whole_and_bounded(unit: Unit, value: object, count: int) -> None:
    assert to_units(unit, value) == count  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("unit", "value"),
    [
        ("tokens", "1e-999999999"),
        ("tokens", Decimal("1." + "0" * 100_000 + "1")),
        ("requests", 0.5),
        ("tokens", MAX_AMOUNT["tokens"] + 1),
        ("tokens", Decimal(MAX_AMOUNT["tokens"]) + Decimal("0.5")),
        ("requests", str(MAX_AMOUNT["requests"] + 1)),
    ],
)
def test_counts_past_a_whole_number_or_the_bound_are_refused(unit: Unit, value: object) -> None:
    _refused_fast(lambda: to_units(unit, value), "whole number|past the bound")  # type: ignore[arg-type]


def test_the_callers_decimal_context_never_rounds_a_cost() -> None:
    # 32 significant digits: the default context (28) would round the nano count down.
    exact = Decimal("1000.0000000000000000000000000001")
    assert to_units("usd", exact) == 1_000_000_000_001
    with localcontext() as context:
        context.prec = 3
        context.rounding = ROUND_FLOOR
        assert to_units("usd", "123.456789123") == 123_456_789_123
        assert to_units("usd", exact) == 1_000_000_000_001
        assert from_units("usd", 123_456_789_123) == Decimal("123.456789123")
        assert from_units("usd", MAX_CAP["usd"]) == Decimal(MAX_CAP["usd"] // NANO_PER_USD)


@st.composite
def _decimals(draw: st.DrawFn) -> Decimal:
    """Finite decimals with any sign, up to 40 digits and exponents far past both bounds."""
    digits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=40))
    return Decimal((draw(st.integers(0, 1)), tuple(digits), draw(st.integers(-60, 30))))


@given(_decimals(), st.sampled_from(["usd", "tokens"]), st.booleans(), st.booleans())
def test_counts_agree_with_exact_fractions(
    number: Decimal, unit: Unit, cap: bool, as_text: bool
) -> None:
    """The count is the exact value scaled, rounded up for a usd cost, or a refusal."""
    scaled = Fraction(number) * (NANO_PER_USD if unit == "usd" else 1)
    ceiling = -(-scaled.numerator // scaled.denominator)
    bound = (MAX_CAP if cap else MAX_AMOUNT)[unit]
    whole = scaled.denominator == 1
    value: Decimal | str = str(number) if as_text else number
    if len(str(number)) > MAX_AMOUNT_TEXT_LENGTH and as_text:
        expected: int | None = None
    elif scaled < 0 or ceiling > bound or (not whole and (cap or unit != "usd")):
        expected = None
    else:
        expected = ceiling
    if expected is None:
        with pytest.raises(InvalidAmount):
            to_units(unit, value, cap=cap)
    else:
        assert to_units(unit, value, cap=cap) == expected


# --- caps: refused below a nano-USD, never rounded up -------------------------------------------


#: Caps finer than a nano-USD, each with the nano-USD the same figure costs (rounded up).
SUB_NANO_CAPS = [
    ("0.0000000001", 1),
    ("1.0000000001", 1_000_000_001),
    ("4.9999999999", 5_000_000_000),
    (Decimal("5.0000000005"), 5_000_000_001),
    (Decimal("1e-999999999"), 1),
    (1e-10, 1),
    ("0." + "0" * 80 + "1", 1),
]


@pytest.mark.parametrize(("cap", "cost_nano"), SUB_NANO_CAPS, ids=_id)
def test_a_cap_finer_than_a_nano_usd_is_refused(cap: object, cost_nano: int) -> None:
    _refused_fast(lambda: to_units("usd", cap, cap=True), "nano-USD")  # type: ignore[arg-type]
    # The same figure as a cost is rounded up: costs are never under-recorded.
    assert to_units("usd", cap) == cost_nano  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cap", "nano"),
    [("1.000000001", 1_000_000_001), ("1.000000001000", 1_000_000_001), ("5", 5 * NANO_PER_USD)],
)
def test_a_cap_of_whole_nano_usd_is_kept_exactly(cap: str, nano: int) -> None:
    assert to_units("usd", cap, cap=True) == nano


def test_cap_bounds_are_inclusive() -> None:
    assert to_units("usd", from_units("usd", MAX_CAP["usd"]), cap=True) == MAX_CAP["usd"]
    _refused_fast(lambda: to_units("usd", from_units("usd", MAX_CAP["usd"] + 1), cap=True))
    assert to_units("tokens", MAX_CAP["tokens"], cap=True) == MAX_CAP["tokens"]
    _refused_fast(lambda: to_units("tokens", str(MAX_CAP["tokens"] + 1), cap=True))


# --- through the ledger: the typed error, and nothing written --------------------------------


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with Ledger("memory://") as opened:
        yield opened


def _written(ledger: Ledger) -> list[str]:
    """Everything the store holds, as text: accounts, holds of every state, journal entries."""
    store = ledger._store
    return [repr(row) for row in (*store.accounts(), *ledger.holds(state=None), *store.journal())]


HOSTILE = [*HUGE, *NOT_FINITE, *NOT_A_NUMBER[:16], *NEGATIVE]


@pytest.mark.parametrize("value", HOSTILE, ids=_id)
def test_the_ledger_refuses_hostile_amounts_and_writes_nothing(
    ledger: Ledger, value: object
) -> None:
    before = _written(ledger)
    _refused_fast(lambda: ledger.reserve("user:a", usd=value))  # type: ignore[arg-type]
    _refused_fast(lambda: ledger.reserve("user:a", tokens=value))  # type: ignore[arg-type]
    _refused_fast(lambda: ledger.set_limit("user:a", usd=value))  # type: ignore[arg-type]
    _refused_fast(lambda: ledger.set_limit("user:a", requests=value))  # type: ignore[arg-type]
    assert _written(ledger) == before == []


@pytest.mark.parametrize("value", HOSTILE, ids=_id)
def test_a_hold_refuses_hostile_amounts_and_stays_as_it_was(ledger: Ledger, value: object) -> None:
    ledger.set_limit("user:a", usd="1.00")
    hold = ledger.reserve("user:a", usd="0.10")
    before = _written(ledger)
    _refused_fast(lambda: hold.settle(usd=value))  # type: ignore[arg-type]
    _refused_fast(lambda: hold.extend(usd=value))  # type: ignore[arg-type]
    _refused_fast(lambda: hold.observe(usd=value))  # type: ignore[arg-type]
    _refused_fast(lambda: ledger.settle(hold.id, tokens=value))  # type: ignore[arg-type]
    assert _written(ledger) == before
    assert hold.state == "open"
    hold.release()
    assert ledger.verify().ok


async def test_the_async_ledger_refuses_hostile_amounts_and_writes_nothing() -> None:
    async with AsyncLedger("memory://") as ledger:
        for value in ["1e999990", "1e999999999", Decimal("sNaN"), "1_000", -1]:
            start = time.perf_counter()
            with pytest.raises(InvalidAmount):
                await ledger.reserve("user:a", usd=value)  # type: ignore[arg-type]
            with pytest.raises(InvalidAmount):
                await ledger.set_limit("user:a", usd=value)  # type: ignore[arg-type]
            assert time.perf_counter() - start < FAST_S
        assert await ledger.holds(state=None) == []
        assert await ledger.limits() == []


@pytest.mark.parametrize("cap", [cap for cap, _ in SUB_NANO_CAPS], ids=_id)
def test_set_limit_refuses_a_sub_nano_cap_and_keeps_the_old_one(
    ledger: Ledger, cap: object
) -> None:
    ledger.set_limit("user:a", usd="5", period="day")
    before = _written(ledger)
    with pytest.raises(InvalidAmount, match="nano-USD"):
        ledger.set_limit("user:a", usd=cap, period="day")  # type: ignore[arg-type]
    assert _written(ledger) == before
    (limit,) = ledger.limits("user:a")
    assert limit.cap == Decimal(5)


def test_a_sub_nano_cost_is_still_rounded_up(ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="0.000000002")
    hold = ledger.reserve("user:a", usd="0.0000000001")
    assert hold.amounts["usd"] == Decimal("0.000000001")
    hold.settle(usd="0.0000000011")
    assert hold.settled_amounts == {"usd": Decimal("0.000000002")}


def test_the_cli_reports_a_sub_nano_cap_and_writes_nothing(tmp_path: Path) -> None:
    database = tmp_path / "ledger.db"
    runner = CliRunner()
    for figure in ["0.0000000001", "1e999999999", "1_000"]:
        result = runner.invoke(
            main,
            ["limits", "set", "user:a", "--usd", figure],
            env={"CAPLEDGER_URL": f"sqlite:///{database}"},
        )
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)
    assert not database.exists()


def test_invalid_amount_is_invalid_input() -> None:
    # One except clause catches every refusal of an argument, whatever the amount was.
    assert issubclass(InvalidAmount, InvalidInput)
    assert issubclass(InvalidAmount, ValueError)
