"""Text as every store keeps it, and values shown briefly in error messages.

Below the ledger and the stores alike: the ledger refuses callers' text that some store
cannot keep, and a store that sends text on a wire asks the same question as a last line.
"""

from __future__ import annotations

from capledger.errors import InvalidInput

__all__ = ["short", "storable_text", "unstorable_text"]


def short(value: object) -> str:
    """``repr(value)`` for a message, kept short: a huge integer by its size (its ``repr``
    past ``sys.get_int_max_str_digits()`` raises, and takes quadratic time before that), a
    long text cut after 50 characters."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:50]!r}... ({len(value)} characters)"
    return repr(value)


def storable_text(text: str) -> bool:
    """Whether every store keeps ``text`` as given: no NUL (PostgreSQL's text and jsonb
    refuse it) and no lone surrogate (not encodable as UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_text(text: str, what: str) -> InvalidInput | None:
    """The error for ``text`` if some store cannot keep it as given (see ``storable_text``).

    The callers' text (hold ids, request ids, scopes, tags) is refused by the ledger's
    checks before an operation exists; a store that sends text on a wire also asks this of
    every text parameter, as a last line: libpq sends parameters as C strings, so a NUL
    would cut ``"id\\x00junk"`` to ``"id"`` and name another hold.
    """
    if storable_text(text):
        return None
    return InvalidInput(f"{what} holds a NUL or a lone surrogate: {short(text)}")
