"""Money conversions at their edges (``capledger.money``), from mutation testing survivors.

docs/testing.md lists the survivors these tests were written against.
"""

from __future__ import annotations

import pytest

from capledger.errors import InvalidUnit
from capledger.money import UNITS, parse_unit


@pytest.mark.parametrize("unit", UNITS)
def test_every_unit_is_its_own_name(unit: str) -> None:
    assert parse_unit(unit) == unit


@pytest.mark.parametrize("name", ["USD", "Tokens", "REQUESTS", "token", "request", "", None])
def test_a_unit_is_named_exactly(name: object) -> None:
    with pytest.raises(InvalidUnit):
        parse_unit(name)
