"""Exact amounts: integers inside, ``Decimal`` at the API.

``usd`` is counted in nano-USD (1e-9 USD). Money never passes through float arithmetic: a
float argument is converted through ``str`` first, so ``0.1`` means exactly ``Decimal("0.1")``.
Amounts finer than a nano-USD are rounded **up**: a cost is never under-recorded.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Final, Literal, TypeAlias

from capledger.bounds import MAX_AMOUNT, MAX_CAP, NANO_PER_USD
from capledger.errors import InvalidAmount, InvalidUnit

__all__ = [
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

_NANO: Final = Decimal(NANO_PER_USD)
_ONE: Final = Decimal(1)


def parse_unit(unit: object) -> Unit:
    """Return ``unit`` if it names a unit, else raise ``InvalidUnit``."""
    if unit == "usd":
        return "usd"
    if unit == "tokens":
        return "tokens"
    if unit == "requests":
        return "requests"
    raise InvalidUnit(f"unknown unit {unit!r}; use one of: {', '.join(UNITS)}")


def _to_decimal(value: object, unit: str) -> Decimal:
    if isinstance(value, bool):  # bool is an int, but True dollars is a bug
        raise InvalidAmount(f"{unit} amount must be a number, not {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, float | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise InvalidAmount(f"{unit} amount {value!r} is not a number") from None
    else:
        raise InvalidAmount(f"{unit} amount must be Decimal, int, str or float, not {value!r}")
    if not number.is_finite():
        raise InvalidAmount(f"{unit} amount must be finite, not {value!r}")
    return number


def to_units(unit: Unit, value: AmountLike, *, cap: bool = False) -> int:
    """Convert an API amount to the integer count the ledger stores.

    Args:
        unit: ``usd`` (returns nano-USD, rounded up) or ``tokens`` / ``requests`` (whole
            numbers only).
        value: a ``Decimal``, ``int``, ``str`` or ``float`` (taken through ``str``).
        cap: check against the cap bound instead of the per-operation amount bound.

    Raises:
        InvalidAmount: NaN, infinite, negative, not a number, fractional tokens or requests,
            or past the bound.
    """
    if type(value) is int and unit != "usd":  # the hot path for tokens and requests
        count = value
    else:
        number = _to_decimal(value, unit)
        if number < 0:
            raise InvalidAmount(f"{unit} amount must not be negative, got {value!r}")
        if unit == "usd":
            count = int((number * _NANO).to_integral_value(rounding=ROUND_CEILING))
        else:
            if number != number.to_integral_value():
                raise InvalidAmount(f"{unit} must be a whole number, not {value!r}")
            count = int(number)
    if count < 0:
        raise InvalidAmount(f"{unit} amount must not be negative, got {value!r}")
    bound = MAX_CAP[unit] if cap else MAX_AMOUNT[unit]
    if count > bound:
        raise InvalidAmount(
            f"{unit} amount {value!r} is past the bound of {from_units(unit, bound)}"
        )
    return count


def from_units(unit: str, count: int) -> Decimal | int:
    """Convert a stored integer count back to its API value (``Decimal`` USD or ``int``)."""
    if unit == "usd":
        return Decimal(count) / _NANO
    return count
