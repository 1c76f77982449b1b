"""The one table formatter and the exact CSV / JSON writers."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import click
import pytest
from click.testing import CliRunner

from capledger.cli import main
from capledger.cli._output import (
    decimal_text,
    emit,
    moment_text,
    progress,
    render_table,
    table_cell,
    usd_text,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("5"), "5.00"),
        (Decimal("5.1"), "5.10"),
        (Decimal("0.000000001"), "0.000000001"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("0.10000"), "0.10"),
        (Decimal("123456789.123456789"), "123456789.123456789"),
    ],
)
def test_decimal_text_is_exact_with_at_least_two_places(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text
    assert Decimal(text) == value


def test_usd_text_groups_thousands_and_pads_on_request() -> None:
    assert usd_text(Decimal("1234.5")) == "$1,234.50"
    assert usd_text(Decimal("0.25"), places=4) == "$0.2500"
    assert usd_text(Decimal("-3")) == "-$3.00"


def test_moment_text_is_utc_with_z() -> None:
    moment = datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
    assert moment_text(moment) == "2026-01-31T12:00:00Z"
    assert moment_text(moment, precise=True) == "2026-01-31T12:00:00.123456Z"


def test_render_table_aligns_columns() -> None:
    text = render_table(["name", "n"], [["a", "1"], ["long", "100"]], right=[False, True])
    assert text.splitlines() == ["name    n", "----  ---", "a       1", "long  100"]


def _emitted(rows: list[dict[str, object]], fmt: str) -> str:
    @click.command()
    def show() -> None:
        emit(rows, {"name": "Name", "usd": "USD", "tokens": "Tokens", "when": "When"}, fmt)

    result = CliRunner().invoke(show, [])
    assert result.exit_code == 0, result.output
    return result.stdout


ROWS: list[dict[str, object]] = [
    {
        "name": "a",
        "usd": Decimal("0.1") + Decimal("0.2"),
        "tokens": 1_000_000,
        "when": datetime(2026, 1, 1, tzinfo=UTC),
    },
    {"name": "b", "usd": Decimal("0.000000001"), "tokens": 0, "when": None},
]


def test_table_lines_up_dollar_decimals() -> None:
    lines = _emitted(ROWS, "table").splitlines()
    assert lines[0].split() == ["Name", "USD", "Tokens", "When"]
    assert "$0.300000000" in lines[2] and "1,000,000" in lines[2]
    assert "$0.000000001" in lines[3] and lines[3].rstrip().endswith("-")


def test_csv_parses_back_to_exact_values() -> None:
    records = list(csv.DictReader(io.StringIO(_emitted(ROWS, "csv"))))
    assert [Decimal(r["usd"]) for r in records] == [Decimal("0.3"), Decimal("0.000000001")]
    assert [int(r["tokens"]) for r in records] == [1_000_000, 0]
    assert records[1]["when"] == ""


def test_json_keeps_decimals_as_strings() -> None:
    records = json.loads(_emitted(ROWS, "json"))
    assert records[0]["usd"] == "0.30"
    assert Decimal(records[1]["usd"]) == Decimal("0.000000001")
    assert records[0]["tokens"] == 1_000_000
    assert records[0]["when"] == "2026-01-01T00:00:00Z"
    assert records[1]["when"] is None


def test_empty_outputs_stay_parseable() -> None:
    assert _emitted([], "table") == "nothing to show\n"
    assert _emitted([], "csv") == "name,usd,tokens,when\n"
    assert json.loads(_emitted([], "json")) == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_only() -> None:
    terminal = _Terminal()
    with progress(3, "sweeping", file=terminal) as advance:
        advance(3)
    assert "sweeping" in terminal.getvalue()
    piped = io.StringIO()
    with progress(3, "sweeping", file=piped) as advance:
        advance(3)
    assert piped.getvalue() == ""  # neither the bar nor its label


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("0.18000000000000002"), "$0.18"),
        (Decimal("0.68"), "$0.68"),
        (Decimal("0.0375"), "$0.0375"),
        (Decimal("15"), "$15.00"),
        (Decimal("1234.5"), "$1,234.50"),
        (None, "-"),
    ],
)
def test_prices_are_shown_as_published(value: Decimal | None, shown: str) -> None:
    from capledger.cli.prices import published

    assert table_cell(published(value)) == shown


def test_prices_list_shows_no_float_noise() -> None:
    pytest.importorskip("genai_prices")
    result = CliRunner().invoke(main, ["prices", "list"])
    assert result.exit_code == 0, result.output
    assert "000000000" not in result.stdout
    assert "99999999" not in result.stdout
