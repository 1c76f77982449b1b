"""Exact amounts: integers inside, ``Decimal`` at the API.

``usd`` is counted in nano-USD (1e-9 USD). Money never passes through float arithmetic: a
float argument is converted through ``str`` first, so ``0.1`` means exactly ``Decimal("0.1")``.
A cost finer than a nano-USD is rounded **up**: a cost is never under-recorded. A cap finer
than a nano-USD is refused instead, since rounding a cap up would loosen it.

An amount is checked against its bound by its magnitude before any arithmetic, so
``"1e999999999"`` is refused at once rather than expanded; and no arithmetic runs in the
caller's ``decimal`` context, whose precision could otherwise round a cost down.
"""

from __future__ import annotations

import math
import re
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Final, Literal, TypeAlias

from capledger.bounds import MAX_AMOUNT, MAX_CAP, MAX_COUNTER, NANO_PER_USD
from capledger.errors import InvalidAmount, InvalidUnit, LedgerInvariantError

__all__ = [
    "MAX_AMOUNT_TEXT_LENGTH",
    "UNITS",
    "AmountLike",
    "Unit",
    "from_units",
    "parse_unit",
    "to_units",
]

Unit: TypeAlias = Literal["usd", "tokens", "requests"]
UNITS: Final[tuple[Unit, ...]] = ("usd", "tokens", "requests")
AmountLike: TypeAlias = Decimal | int | str | float

#: The longest amount accepted as text. A real amount needs a few dozen characters; the
#: bound keeps parsing cheap whatever arrives (from an HTTP body, a flag, a config file).
MAX_AMOUNT_TEXT_LENGTH: Final = 100

_NANO: Final = Decimal(NANO_PER_USD)
#: Arithmetic on amounts never uses the caller's decimal context, whose precision could
#: round a cost down. Scaling by a power of ten under this one never rounds.
_UNROUNDED: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
#: Enough precision to divide any counter by 10**9 exactly.
_COUNTER_DIVISION: Final = Context(prec=2 * len(str(MAX_COUNTER)))
#: How many of each unit's smallest steps make one unit, and that as decimal places.
_STEPS: Final[dict[str, int]] = {"usd": NANO_PER_USD, "tokens": 1, "requests": 1}
_PLACES: Final[dict[str, int]] = {unit: len(str(steps)) - 1 for unit, steps in _STEPS.items()}
if any(steps != 10 ** _PLACES[unit] for unit, steps in _STEPS.items()) or set(_STEPS) != set(UNITS):
    raise LedgerInvariantError("each unit's smallest step must be a power of ten of it")
#: Plain ASCII decimal notation, the same in JSON, SQL and every language: no underscores,
#: no digits of other scripts, no hexadecimal, no NaN or infinity.
_PLAIN_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Shown in messages at most this long, so an error about a huge input stays readable.
_SHOWN_LENGTH: Final = 40


def parse_unit(unit: object) -> Unit:
    """Return ``unit`` if it names a unit, else raise ``InvalidUnit``."""
    if unit == "usd":
        return "usd"
    if unit == "tokens":
        return "tokens"
    if unit == "requests":
        return "requests"
    raise InvalidUnit(f"unknown unit {unit!r}; use one of: {', '.join(UNITS)}")


def _shown(value: object) -> str:
    """``repr(value)``, shortened: an error message never carries a megabyte of digits."""
    if isinstance(value, int) and value.bit_length() > 4 * _SHOWN_LENGTH:
        # repr of an int past sys.get_int_max_str_digits() raises ValueError.
        return f"<an integer of {value.bit_length()} bits>"
    text = repr(value)
    if len(text) > _SHOWN_LENGTH:
        return f"{text[: _SHOWN_LENGTH - 8]}...({len(text)} characters)"
    return text


def _to_decimal(value: object, unit: str) -> Decimal:
    """The exact ``Decimal`` an API amount denotes; refuse what is not a finite number."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidAmount(f"{unit} amount must be finite, not {value!r}")
        number = Decimal(str(value))  # the shortest text that round-trips: 0.1 is 0.1
    elif isinstance(value, str):
        number = _parse_text(value, unit)
    else:
        raise InvalidAmount(
            f"{unit} amount must be Decimal, int, str or float, not {_shown(value)}"
        )
    if not number.is_finite():
        raise InvalidAmount(f"{unit} amount must be finite, not {_shown(value)}")
    return number


def _parse_text(value: str, unit: str) -> Decimal:
    if len(value) > MAX_AMOUNT_TEXT_LENGTH:
        raise InvalidAmount(
            f"{unit} amount {_shown(value)} is longer than {MAX_AMOUNT_TEXT_LENGTH} characters"
        )
    text = value.strip()
    if _PLAIN_NUMBER.fullmatch(text) is None:
        if text.lower().lstrip("+-") in ("nan", "snan", "inf", "infinity"):
            raise InvalidAmount(f"{unit} amount must be finite, not {value!r}")
        raise InvalidAmount(
            f"{unit} amount {value!r} is not a number (write plain decimal digits, "
            "such as 0.25 or 1e-3)"
        )
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent past what decimal can represent
        raise InvalidAmount(f"{unit} amount {value!r} is out of range") from None


def _count_of(number: Decimal, unit: str, value: object, *, cap: bool, bound: int) -> int:
    """``number`` (finite) in the unit's smallest steps, rounded up for usd.

    The magnitude is checked before any arithmetic (``adjusted()`` is the exponent of the
    leading digit), so the integer built afterwards has at most as many digits as ``bound``.
    """
    if number.is_zero():  # also -0 and 0E+999999999
        return 0
    if number.is_signed():
        raise InvalidAmount(f"{unit} amount must not be negative, got {_shown(value)}")
    places = _PLACES[unit]
    magnitude = number.adjusted() + places
    if magnitude >= len(str(bound)):  # at least 10**len(str(bound)) steps
        raise _past_bound(unit, value, bound)
    if magnitude < 0:  # less than one step, and not zero
        whole, exact = 0, False
    else:
        scaled = number.scaleb(places, _UNROUNDED)
        whole = int(scaled)  # truncates, exactly
        exact = scaled == whole
    if exact:
        return whole
    if unit != "usd":
        raise InvalidAmount(f"{unit} must be a whole number, not {_shown(value)}")
    if cap:
        raise InvalidAmount(
            f"a usd cap must be a whole number of nano-USD (1e-9 USD), not {_shown(value)}: "
            "a cap is never rounded, since rounding it up would loosen it"
        )
    return whole + 1  # a cost is rounded up, never down


def _past_bound(unit: str, value: object, bound: int) -> InvalidAmount:
    return InvalidAmount(
        f"{unit} amount {_shown(value)} is past the bound of {from_units(unit, bound)}"
    )


def to_units(unit: Unit, value: AmountLike, *, cap: bool = False) -> int:
    """Convert an API amount to the integer count the ledger stores.

    Args:
        unit: ``usd`` (returns nano-USD) or ``tokens`` / ``requests`` (whole numbers only).
        value: a ``Decimal``, an ``int``, a ``float`` (taken through ``str``), or a ``str`` of
            at most ``MAX_AMOUNT_TEXT_LENGTH`` characters in plain ASCII decimal notation
            (``"0.25"``, ``"1e-3"``, surrounding whitespace ignored; no underscores, no
            digits of other scripts). Negative zero is zero.
        cap: the amount is a cap: check it against ``MAX_CAP`` instead of ``MAX_AMOUNT``,
            and refuse a usd cap finer than a nano-USD instead of rounding it up.

    Returns:
        The count: ``value * 10**9`` for usd, rounded up (a cost is never under-recorded),
        ``value`` for the others; at most the bound.

    Raises:
        InvalidAmount: not a number, a bool, NaN or infinite, negative, past the bound
            (checked by magnitude before any arithmetic, so it is cheap for any input),
            fractional tokens or requests, or a usd cap finer than a nano-USD.
    """
    bound = MAX_CAP[unit] if cap else MAX_AMOUNT[unit]
    if isinstance(value, int):
        if isinstance(value, bool):  # bool is an int, but True dollars is a bug
            raise InvalidAmount(f"{unit} amount must be a number, not {value!r}")
        if value < 0:
            raise InvalidAmount(f"{unit} amount must not be negative, got {_shown(value)}")
        if value > bound:  # checked before scaling, whatever the size of the int
            raise _past_bound(unit, value, bound)
        count = int(value) * _STEPS[unit]
    else:
        count = _count_of(_to_decimal(value, unit), unit, value, cap=cap, bound=bound)
    if count > bound:
        raise _past_bound(unit, value, bound)
    return count


def from_units(unit: str, count: int) -> Decimal | int:
    """Convert a stored integer count back to its API value (``Decimal`` USD or ``int``)."""
    if unit == "usd":
        return _COUNTER_DIVISION.divide(Decimal(count), _NANO)
    return count
