"""Prices and aliases read from a TOML file, into a pricebook (``Pricebook.load_toml``
has the format)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capledger.errors import ConfigurationError, InvalidInput
from capledger.pricing._records import OVERRIDE_KEYS

if TYPE_CHECKING:
    from capledger.pricing._pricebook import Pricebook


def load_price_file(book: Pricebook, path: str | Path) -> None:
    """Read the prices and aliases of the TOML file at ``path`` into ``book``."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            document = tomllib.load(file, parse_float=Decimal)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"cannot read prices from {path}: {error}") from None
    unknown = document.keys() - {"prices", "aliases"}
    if unknown:
        raise ConfigurationError(
            f'{path}: unknown tables {sorted(unknown)}; use [prices."MODEL"] and [aliases]'
        )
    try:
        for model, entry in _table(document, "prices", path).items():
            _load_price(book, model, entry, path)
        for alias, target in _table(document, "aliases", path).items():
            if isinstance(target, str):
                book.set_alias(alias, target)
            elif isinstance(target, dict) and isinstance(target.get("model"), str):
                book.set_alias(alias, target["model"], provider=target.get("provider"))
            else:
                raise ConfigurationError(
                    f"{path}: alias {alias!r} must name a model, as a string or "
                    "{ model = ..., provider = ... }"
                )
    except InvalidInput as error:
        raise ConfigurationError(f"{path}: {error}") from None


def _load_price(book: Pricebook, model: str, entry: object, path: Path) -> None:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{path}: [prices.{model!r}] must be a table")
    allowed = {*OVERRIDE_KEYS, "provider", "as_of"}
    if entry.keys() - allowed or not {"input", "output"} <= entry.keys():
        raise ConfigurationError(
            f"{path}: [prices.{model!r}] needs input and output and accepts only {sorted(allowed)}"
        )
    as_of = entry.get("as_of")
    if as_of is not None and (not isinstance(as_of, date) or isinstance(as_of, datetime)):
        raise ConfigurationError(f"{path}: as_of of {model!r} must be a date (2026-01-01)")
    book.set_price(
        model,
        input=entry["input"],
        output=entry["output"],
        cache_read=entry.get("cache_read"),
        cache_write=entry.get("cache_write"),
        cache_write_1h=entry.get("cache_write_1h"),
        provider=str(entry.get("provider", "custom")),
        as_of=as_of,
        origin=f"from {path.name}",
    )


def _table(document: Mapping[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [{name}] must be a table")
    return table
