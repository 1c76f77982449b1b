"""Rendering rows as an aligned plain-text table, CSV or JSON, exactly.

Every command that lists things builds rows of typed values (``Decimal`` dollars, ``int``
tokens and requests, ``datetime``, ``str``, tuples and dicts of those) and hands them to
``emit``; how a value looks is decided here, once:

- table: dollars as ``$1,234.50`` (at least two decimals, never rounded), counts with
  thousands separators, times as ``2026-01-31T12:00:00Z``, a missing value as ``-``;
- CSV: dollars as plain decimal strings (``1234.50``), times in full ISO 8601;
- JSON: dollars as decimal *strings* (a JSON number would be read back as a float),
  counts as integers, times as ISO 8601 strings, missing values as ``null``.

No value ever passes through ``float``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, TextIO

import click

__all__ = [
    "FORMATS",
    "decimal_text",
    "emit",
    "moment_text",
    "progress",
    "render_table",
    "table_cell",
    "usd_text",
]

#: The output formats of every listing command.
FORMATS: Final = ("table", "csv", "json")


def decimal_text(value: Decimal, *, places: int = 2) -> str:
    """Write ``value`` exactly, in positional notation, with at least ``places`` decimals.

    ``Decimal("5")`` becomes ``"5.00"`` and ``Decimal("0.000123")`` stays ``"0.000123"``:
    padding only adds zeros, so the text always parses back to the same value.
    """
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -places:
        normal = normal.quantize(Decimal(1).scaleb(-places))  # exact: fewer decimals
    return f"{normal:f}"


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(2, -exponent) if isinstance(exponent, int) else 2


def usd_text(value: Decimal, *, places: int = 2) -> str:
    """Dollars for people: ``$1,234.50``, exact, with at least ``places`` decimals."""
    digits = decimal_text(value, places=places)
    whole, _, fraction = digits.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}${int(whole.lstrip('-')):,}.{fraction}"


def moment_text(moment: datetime, *, precise: bool = False) -> str:
    """An aware datetime in UTC ISO 8601 with a ``Z``; to the second unless ``precise``."""
    utc = moment.astimezone(UTC)
    text = utc.isoformat() if precise else utc.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")


@contextmanager
def progress(
    length: int, label: str, *, file: TextIO | None = None, steps: int = 1
) -> Iterator[Callable[[int], object]]:
    """A progress bar on standard error, only when it is a terminal; yields ``advance(n)``.

    Piped or redirected, nothing at all is written (not even the label), so a log or a
    script reading stderr sees only real messages.

    Args:
        length: the number of steps in all.
        label: what is progressing, shown left of the bar.
        file: where to draw it (standard error by default).
        steps: redraw at most once per this many steps.
    """
    stream = sys.stderr if file is None else file
    if not stream.isatty():
        yield lambda count: None
        return
    with click.progressbar(
        length=max(length, 1),
        label=label,
        file=stream,
        show_pos=True,
        update_min_steps=max(1, steps),
    ) as bar:
        yield bar.update


def table_cell(value: object) -> str:
    """How one value reads in a table (see the module docstring)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return usd_text(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return moment_text(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={table_cell(item)}" for key, item in value.items()) or "-"
    if isinstance(value, tuple | list):
        return " ".join(table_cell(item) for item in value) or "-"
    return str(value)


def _cell_in_column(value: object, places: int) -> str:
    if isinstance(value, Decimal):
        return usd_text(value, places=places)
    return table_cell(value)


def _is_numeric_column(values: Sequence[object]) -> bool:
    numbers = [isinstance(v, Decimal | int) and not isinstance(v, bool) for v in values]
    return any(numbers) and all(n or v is None for n, v in zip(numbers, values, strict=True))


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[bool] = ()
) -> str:
    """Align ``rows`` of text under ``headers``, two spaces apart, with a rule below them.

    Args:
        headers: the column titles.
        rows: one sequence of cell texts per row, as long as ``headers``.
        right: per column, True to right-align it (numbers); left-aligned when omitted.
    """
    aligned = list(right) or [False] * len(headers)
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if to_right else cell.ljust(width)
            for cell, width, to_right in zip(cells, widths, aligned, strict=True)
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return moment_text(value, precise=True)
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    return value


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return moment_text(value, precise=True)
    if isinstance(value, Mapping):
        return json.dumps(_json_value(value), sort_keys=True)
    if isinstance(value, tuple | list):
        return " ".join(_csv_value(item) for item in value)
    return str(value)


def emit(
    rows: Sequence[Mapping[str, object]],
    columns: Mapping[str, str],
    fmt: str,
    *,
    empty: str = "nothing to show",
    right: Sequence[str] = (),
) -> None:
    """Print ``rows`` to standard output as a table, CSV or JSON.

    Args:
        rows: the records; each has (at least) the keys of ``columns``.
        columns: key -> table header, in display order. CSV headers and JSON keys are the
            keys themselves, so scripts never depend on the wording of a header.
        fmt: ``table``, ``csv`` or ``json``.
        empty: what a table says when there are no rows (CSV still prints its header and
            JSON an empty list, so a script can always parse the output).
        right: keys of text columns to right-align in a table too (numbers always are).
    """
    keys = list(columns)
    if fmt == "json":
        records = [{key: _json_value(row.get(key)) for key in keys} for row in rows]
        click.echo(json.dumps(records, indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(keys)
        writer.writerows([_csv_value(row.get(key)) for key in keys] for row in rows)
        click.echo(buffer.getvalue(), nl=False)
    elif not rows:
        click.echo(empty)
    else:
        to_right = [
            key in right or _is_numeric_column([row.get(key) for row in rows]) for key in keys
        ]
        # Dollars in one column get the same number of decimals, so their points line up.
        places = {
            key: max(
                (_places(v) for row in rows if isinstance(v := row.get(key), Decimal)), default=2
            )
            for key in keys
        }
        cells = [[_cell_in_column(row.get(key), places[key]) for key in keys] for row in rows]
        click.echo(render_table([columns[key] for key in keys], cells, right=to_right))
