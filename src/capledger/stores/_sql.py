"""SQL kept in ``.sql`` files beside each store, read as named blocks."""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["load_migrations", "load_named_queries"]

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_named_queries(package: str, filename: str) -> dict[str, str]:
    """Split a file of ``-- name: NAME`` blocks into ``{NAME: sql}``."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """Every ``NNNN_name.sql`` file in ``package``, as (version, name, sql), in order."""
    found = []
    for entry in resources.files(package).iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)
