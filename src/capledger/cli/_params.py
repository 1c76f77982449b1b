"""Click parameter types that check input with the ledger's own validators.

Checking at parse time, before a ledger is opened, means bad input is refused with the
library's message and exit status 2 and nothing is written: not even an empty database file
is created.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import click
from click.shell_completion import CompletionItem

from capledger._core import parse_period, parse_timezone
from capledger.bounds import MAX_TAG_KEY_LENGTH
from capledger.errors import InvalidInput
from capledger.ledger._validate import moment_of
from capledger.money import UNITS, Unit, parse_unit, to_units
from capledger.scopes import parse_scope

__all__ = [
    "PERIOD",
    "SCOPE",
    "TIMESTAMP",
    "TIMEZONE",
    "UNIT",
    "CapType",
    "GroupByType",
]

_GROUP_KEY: Final = re.compile(rf"[A-Za-z_][A-Za-z0-9_.-]{{0,{MAX_TAG_KEY_LENGTH - 1}}}")


if TYPE_CHECKING:
    _ParamType = click.ParamType[Any]
else:  # ParamType is generic only from click 8.3; subscripting it fails on older ones
    _ParamType = click.ParamType


class _LedgerCheckedType(_ParamType):
    """A type whose ``check`` raises the ledger's ``InvalidInput``; click reports it."""

    def check(self, value: str) -> Any:
        """Return the converted value or raise ``InvalidInput``."""
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Convert ``value`` (already converted values, such as defaults, pass through)."""
        if not isinstance(value, str):
            return value
        try:
            return self.check(value)
        except InvalidInput as error:
            self.fail(str(error), param, ctx)


class _ScopeType(_LedgerCheckedType):
    name = "scope"

    def check(self, value: str) -> str:
        return parse_scope(value)


class _PeriodType(_LedgerCheckedType):
    name = "period"

    def check(self, value: str) -> str:
        return parse_period(value)


class _TimeZoneType(_LedgerCheckedType):
    name = "tz"

    def check(self, value: str) -> str:
        parse_timezone(value)
        return value


class _UnitType(_LedgerCheckedType):
    name = "unit"

    def check(self, value: str) -> str:
        return parse_unit(value.strip().lower())

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """Complete unit names."""
        return [CompletionItem(unit) for unit in UNITS if unit.startswith(incomplete)]


class CapType(_LedgerCheckedType):
    """A cap in one unit: ``Decimal`` dollars for ``usd``, a whole ``int`` otherwise.

    The amount is checked against the cap bound here, so ``--usd abc``, ``--usd -1`` or
    ``--tokens 1.5`` never reach the ledger.
    """

    def __init__(self, unit: Unit) -> None:
        self.unit: Unit = unit
        self.name = "usd" if unit == "usd" else "count"

    def check(self, value: str) -> Decimal | int:
        text = value.strip()
        count = to_units(self.unit, text, cap=True)
        # Dollars are passed on as the exact Decimal typed (the ledger rounds nano-USD up
        # itself); counts as the integer they denote ("1e6" is a million tokens).
        return Decimal(text) if self.unit == "usd" else count


class _TimestampType(_LedgerCheckedType):
    """An ISO 8601 date or date-time; a date means midnight UTC, a naive time means UTC."""

    name = "timestamp"

    def check(self, value: str) -> datetime:
        return moment_of(value)  # the API's own reading of a time, so both agree


class GroupByType(_LedgerCheckedType):
    """Comma-separated report keys: ``scope``, ``kind``, ``unit``, ``day``, ``hour``,
    ``month``, or the name of any tag (``model``)."""

    name = "keys"

    def check(self, value: str) -> tuple[str, ...]:
        keys = tuple(key.strip() for key in value.split(","))
        for key in keys:
            if _GROUP_KEY.fullmatch(key) is None:
                raise InvalidInput(
                    f"bad group-by key {key!r} in {value!r}: give names such as "
                    "scope,kind,unit,day,hour,month or a tag name like model, comma-separated"
                )
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"group-by keys must be distinct, got {value!r}")
        return keys


SCOPE: Final = _ScopeType()
PERIOD: Final = _PeriodType()
TIMEZONE: Final = _TimeZoneType()
UNIT: Final = _UnitType()
TIMESTAMP: Final = _TimestampType()
