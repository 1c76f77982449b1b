"""Argument normalisation, done once for the sync and the async API.

Every check here runs before an operation reaches a store, so bad input is refused with a
typed error and nothing is written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from functools import lru_cache
from typing import Final, TypeGuard

from capledger._text import short, storable_text
from capledger.bounds import (
    MAX_HOLD_ID_LENGTH,
    MAX_REQUEST_ID_LENGTH,
    MAX_TAG_KEY_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TAGS,
    MAX_TAGS_BYTES,
    MAX_TTL_S,
)
from capledger.errors import ConfigurationError, InvalidAmount, InvalidInput, InvalidTag, InvalidTTL
from capledger.money import AmountLike, Unit, to_units
from capledger.scopes import parse_scopes

__all__ = [
    "amounts_of",
    "caps_of",
    "fingerprint",
    "hold_id_of",
    "hold_terms",
    "moment_of",
    "new_hold_id",
    "request_id_of",
    "tags_of",
    "threshold_bps",
    "ttl_us_of",
]

#: Thresholds are scaled to basis points here, not in the caller's decimal context.
_THRESHOLD_CONTEXT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])

#: Integer tag values are bounded as every store keeps them exactly (a signed 64-bit
#: integer), so a huge one is refused before ``str`` would take quadratic time over it.
_MAX_TAG_INT: Final = 2**63 - 1


@lru_cache(maxsize=2048, typed=True)
def _cached_units(unit: Unit, value: AmountLike) -> int:
    # The same few amounts recur (a hold per call of one model); parsing a Decimal is not free.
    # Measured: uncached, memory:// reserve+settle pairs run at 0.87x (74,179 vs 85,952/s).
    return to_units(unit, value)


def _given(
    usd: AmountLike | None, tokens: int | None, requests: int | None
) -> tuple[tuple[Unit, AmountLike | None], ...]:
    """Each unit with the amount a call gives for it (None if none), in the order of
    ``UNITS``."""
    return (("usd", usd), ("tokens", tokens), ("requests", requests))


def amounts_of(
    usd: AmountLike | None,
    tokens: int | None,
    requests: int | None,
    *,
    required: bool = True,
) -> dict[str, int]:
    """Convert the keyword amounts of a call to ``{unit: integer}``, leaving out Nones.

    Raises:
        InvalidAmount: a bad amount, or none at all when ``required``.
    """
    amounts: dict[str, int] = {}
    for unit, value in _given(usd, tokens, requests):
        if value is None:
            continue
        try:
            amounts[unit] = _cached_units(unit, value)
        except TypeError:
            # Unhashable (a list) or a signaling NaN, which refuses to be hashed: neither is
            # an amount, and to_units says which error it is.
            amounts[unit] = to_units(unit, value)
    if required and not amounts:
        raise InvalidAmount("give at least one amount: usd=, tokens= or requests=")
    return amounts


def caps_of(usd: AmountLike | None, tokens: int | None, requests: int | None) -> dict[str, int]:
    """Convert the keyword caps of ``set_limit`` to ``{unit: integer}``, leaving out Nones.

    Raises:
        InvalidAmount: a bad cap (checked against ``MAX_CAP``; a usd cap is never rounded).
        InvalidInput: no cap at all.
    """
    caps: dict[str, int] = {
        unit: to_units(unit, value, cap=True)
        for unit, value in _given(usd, tokens, requests)
        if value is not None
    }
    if not caps:
        raise InvalidInput("give at least one cap: usd=, tokens= or requests=")
    return caps


# A busy app places the same few holds again and again (one per model and scope set), so
# the checked terms are cached; ``typed`` keeps 1, 1.0 and True apart. Measured: uncached,
# memory:// reserve+settle pairs run at 0.90x (78,170 vs 86,451/s).
@lru_cache(maxsize=1024, typed=True)
def hold_terms(
    scopes: str | Sequence[str],
    usd: AmountLike | None,
    tokens: int | None,
    requests: int | None,
    ttl: float | int | Decimal | timedelta,
) -> tuple[tuple[str, ...], dict[str, int], int]:
    """The checked scopes, amounts and TTL (in microseconds) of a reserve, cached.

    The amounts dictionary is shared by every call with the same terms: copy it before
    handing it on. An unhashable argument raises ``TypeError`` from the cache; call
    ``hold_terms.__wrapped__`` to check it uncached.

    Raises:
        InvalidScope, InvalidAmount, InvalidTTL: as ``parse_scopes``, ``amounts_of`` and
            ``ttl_us_of`` do; a TTL is required here.
    """
    ttl_us = ttl_us_of(ttl)
    if ttl_us is None:
        raise InvalidTTL("ttl is required")
    return parse_scopes(scopes), amounts_of(usd, tokens, requests), ttl_us


def ttl_us_of(ttl: float | int | Decimal | timedelta | None) -> int | None:
    """Convert a TTL (seconds or a timedelta) to microseconds; None stays None.

    Raises:
        InvalidTTL: zero, negative, not finite, or past ``MAX_TTL_S``.
    """
    if ttl is None:
        return None
    if type(ttl) is int and 0 < ttl <= MAX_TTL_S:  # the usual case, checked cheaply
        return ttl * 1_000_000
    if isinstance(ttl, timedelta):
        seconds: float | Decimal = ttl.total_seconds()
    elif isinstance(ttl, bool) or not isinstance(ttl, int | float | Decimal):
        raise InvalidTTL(f"ttl must be seconds or a timedelta, not {ttl!r}")
    else:
        seconds = ttl
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise InvalidTTL(f"ttl must be finite, not {ttl!r}")
    if isinstance(seconds, Decimal) and not seconds.is_finite():
        raise InvalidTTL(f"ttl must be finite, not {ttl!r}")
    if not 0 < seconds <= MAX_TTL_S:
        raise InvalidTTL(
            f"ttl must be more than 0 and at most {MAX_TTL_S} seconds, not {short(ttl)}"
        )
    return max(1, int(seconds * 1_000_000))


def _is_printable_id(value: object, max_length: int) -> TypeGuard[str]:
    """Whether ``value`` is an id every store can keep: a non-empty printable string of at
    most ``max_length`` characters (printable excludes NUL and lone surrogates)."""
    return isinstance(value, str) and 0 < len(value) <= max_length and value.isprintable()


def request_id_of(request_id: str | None) -> str | None:
    """Validate a request_id: a non-empty printable string of bounded length."""
    if request_id is None:
        return None
    if not _is_printable_id(request_id, MAX_REQUEST_ID_LENGTH):
        raise InvalidInput(
            f"request_id must be 1 to {MAX_REQUEST_ID_LENGTH} printable characters, "
            f"not {short(request_id)}"
        )
    return request_id


def hold_id_of(hold_id: object) -> str:
    """Validate a hold id given by a caller: a non-empty printable string of bounded length.

    Checked before the operation joins a batch, so a hold id that no store could look up
    (a list, a number, a NUL or a lone surrogate) fails its own call and no other.

    Raises:
        InvalidInput: anything else.
    """
    if not _is_printable_id(hold_id, MAX_HOLD_ID_LENGTH):
        shown = short(hold_id) if isinstance(hold_id, str) else f"a {type(hold_id).__name__}"
        raise InvalidInput(
            f"a hold id is 1 to {MAX_HOLD_ID_LENGTH} printable characters (hold.id), not {shown}"
        )
    return hold_id


def tags_of(tags: Mapping[str, object] | None) -> dict[str, object]:
    """Validate attribution tags: short string keys, scalar values, bounded in size.

    Every value returned is a ``str``, ``int``, ``float``, ``bool`` or None; ``Decimal``
    values are kept as strings, so a cost in a tag stays exact.

    Raises:
        InvalidTag: more than ``MAX_TAGS`` tags, a long key or value, a non-scalar value,
            text with a NUL or a lone surrogate, an integer past 64 bits, or more than
            ``MAX_TAGS_BYTES`` once encoded.
    """
    if not tags:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidTag(f"tags must be a mapping, not {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise InvalidTag(f"at most {MAX_TAGS} tags, got {len(tags)}")
    clean: dict[str, object] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > MAX_TAG_KEY_LENGTH:
            raise InvalidTag(f"tag keys must be 1 to {MAX_TAG_KEY_LENGTH} characters: {key!r}")
        if not storable_text(key):
            raise InvalidTag(f"tag key {key!r} holds a NUL or a lone surrogate")
        if isinstance(value, Decimal):
            value = str(value)  # noqa: PLW2901 - normalised in place on purpose
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidTag(f"tag {key!r} must be finite")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidTag(f"tag {key!r} must be a string, number or bool, not {value!r}")
        if isinstance(value, str):
            if len(value) > MAX_TAG_VALUE_LENGTH:
                raise InvalidTag(f"tag {key!r} is longer than {MAX_TAG_VALUE_LENGTH} characters")
            if not storable_text(value):
                raise InvalidTag(f"tag {key!r} holds a NUL or a lone surrogate")
        elif isinstance(value, int) and not -_MAX_TAG_INT - 1 <= value <= _MAX_TAG_INT:
            raise InvalidTag(
                f"tag {key!r} must be a 64-bit integer, not one of {value.bit_length()} bits"
            )
        clean[key] = value
    if len(json.dumps(clean, separators=(",", ":"))) > MAX_TAGS_BYTES:
        raise InvalidTag(f"tags are larger than {MAX_TAGS_BYTES} bytes once encoded")
    return clean


def fingerprint(
    scopes: tuple[str, ...], amounts: Mapping[str, int], ttl_us: int, tags: Mapping[str, object]
) -> str:
    """A digest of what a reserve asked for, so a reused request_id can be compared."""
    payload = json.dumps(
        [sorted(scopes), sorted(amounts.items()), ttl_us, sorted(tags.items())],
        separators=(",", ":"),
    )
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


class _HoldIds:
    """Hold ids: a random 80-bit prefix per process, then a counter.

    Unique across processes and hosts in practice (the prefix), and cheap to make (the
    counter). The prefix is drawn again in a forked child, which would otherwise repeat
    its parent's ids.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = "h_" + os.urandom(10).hex()
        # Counting from 2**48 and dropping hex()'s "0x1" leaves 12 zero-padded hex digits
        # (twice as fast as a format spec), so one process's ids sort in the order it made
        # them: a database index then grows at its end instead of splitting pages all over.
        self.counter = itertools.count(1 << 48)

    def __call__(self) -> str:
        return self.prefix + hex(next(self.counter))[3:]


new_hold_id = _HoldIds()


def moment_of(value: object, *, name: str = "") -> datetime:
    """An aware datetime from an ISO 8601 string, a ``date`` or an aware ``datetime``.

    A ``date`` means its midnight in UTC; a string without an offset (``"2026-01-01"``,
    ``"2026-01-01T12:00"``) means UTC, as on the command line. A naive ``datetime`` object
    is refused: it is usually local time, and taking it as UTC would shift the result by
    hours without a word.

    Args:
        value: what the caller passed.
        name: the argument's name, to start the message with (``since``); none if empty.

    Raises:
        InvalidInput: a naive datetime, a string that is not ISO 8601, or another type.
    """
    label = f"{name}=" if name else ""
    if isinstance(value, datetime):  # before date: a datetime is a date too
        if value.utcoffset() is None:
            raise InvalidInput(
                f"{label}{value!r} has no time zone: give an aware datetime "
                "(tzinfo=UTC), a date, or an ISO 8601 string"
            )
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"{label}{value!r} is not an ISO 8601 date or time "
                "(such as 2026-01-31 or 2026-01-31T12:00:00Z)"
            ) from None
        return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)
    raise InvalidInput(
        f"{label}{value!r} is not a time: give an ISO 8601 string, a date or an aware datetime"
    )


def threshold_bps(thresholds: Sequence[float | Decimal | str]) -> tuple[int, ...]:
    """Fractions of a cap whose crossing fires an event, in basis points, sorted, unique.

    Raises:
        ConfigurationError: a fraction outside (0, 1], not a number, or finer than 0.0001.
    """
    bps = []
    for fraction in thresholds:
        if isinstance(fraction, int) and fraction.bit_length() > 64:  # str() of a huge one raises
            size = f"an integer of {fraction.bit_length()} bits"
            raise ConfigurationError(f"thresholds are fractions in (0, 1], not {size}")
        try:
            value = Decimal(str(fraction))
        except ArithmeticError:
            raise ConfigurationError(f"threshold {fraction!r} is not a number") from None
        if not value.is_finite() or not 0 < value <= 1:
            raise ConfigurationError(f"thresholds are fractions in (0, 1], not {fraction!r}")
        scaled = value.scaleb(4, _THRESHOLD_CONTEXT)  # exact, whatever the caller's context
        if scaled != scaled.to_integral_value(context=_THRESHOLD_CONTEXT):
            # Truncating would move the threshold, or drop one below 0.0001 to nothing.
            raise ConfigurationError(
                f"thresholds are counted in steps of 0.0001 (one basis point), not {fraction!r}"
            )
        bps.append(int(scaled))
    return tuple(sorted(set(bps)))
