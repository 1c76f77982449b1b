"""Scopes name what a call is charged to: ``kind:id`` such as ``user:u_42``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from capledger.bounds import MAX_SCOPE_ID_LENGTH, MAX_SCOPE_KIND_LENGTH, MAX_SCOPES_PER_HOLD
from capledger.errors import InvalidScope

__all__ = ["parse_scope", "parse_scopes", "scope_kind"]

# Kinds are free-form but tame (they become report columns); ids may hold the characters
# that real user ids, tenant slugs, emails and API key prefixes use, including ':'.
_SCOPE_PATTERN: Final = re.compile(
    rf"[a-z][a-z0-9_.-]{{0,{MAX_SCOPE_KIND_LENGTH - 1}}}"
    rf":[A-Za-z0-9_.@+=/:#~-]{{1,{MAX_SCOPE_ID_LENGTH}}}"
)


def parse_scope(scope: str) -> str:
    """Return ``scope`` if it is a valid ``kind:id``, else raise ``InvalidScope``.

    The kind is 1 to 32 characters of lower-case letters, digits, ``_ . -`` starting with a
    letter; the id is 1 to 200 characters of letters, digits and ``_ . @ + = / : # ~ -``.
    """
    if not isinstance(scope, str):
        raise InvalidScope(f"a scope must be a string 'kind:id', not {scope!r}")
    if _SCOPE_PATTERN.fullmatch(scope) is None:
        shown = scope if len(scope) <= 60 else scope[:57] + "..."
        raise InvalidScope(
            f"invalid scope {shown!r}: use 'kind:id' with a lower-case kind of at most "
            f"{MAX_SCOPE_KIND_LENGTH} characters and an id of at most {MAX_SCOPE_ID_LENGTH}"
        )
    return scope


def parse_scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """Validate a scope or a list of scopes; duplicates are dropped, order is kept.

    Raises:
        InvalidScope: an empty list, more than 16 scopes, or any malformed scope.
    """
    if type(scopes) is str:
        return (parse_scope(scopes),)
    try:
        unique = tuple(dict.fromkeys(parse_scope(scope) for scope in scopes))
    except TypeError:
        raise InvalidScope(
            f"scopes must be a string or a list of strings, not {scopes!r}"
        ) from None
    if not unique:
        raise InvalidScope("at least one scope is needed")
    if len(unique) > MAX_SCOPES_PER_HOLD:
        raise InvalidScope(f"at most {MAX_SCOPES_PER_HOLD} scopes per hold, got {len(unique)}")
    return unique


def scope_kind(scope: str) -> str:
    """Return the kind of a valid scope (``user`` for ``user:u_42``)."""
    return scope.partition(":")[0]
