"""Ambient attribution: who a call is charged to, carried by ``contextvars``.

``attribute(user="u_42", feature="search")`` opens a block inside which every guarded call
(``capledger.wrap``, ``guard``, the LiteLLM wrapper) is also charged to ``user:u_42`` and
``feature:search`` and tagged ``user=u_42``, ``feature=search``. Blocks nest: an inner block
adds kinds and overrides the same kind for its duration.

Context variables follow asyncio tasks on their own (a task copies the context it was
created in), but not work handed to a thread pool: ``ThreadPoolExecutor.submit`` runs the
function in the worker's own context. Carry the context explicitly with ``carry(fn)`` (binds
the *current* context to ``fn``) or use ``ContextThreadPoolExecutor``, whose ``submit`` and
``map`` do it for every task. ``asyncio.to_thread`` and ``loop.run_in_executor`` differ:
``to_thread`` copies the context, ``run_in_executor`` does not (wrap the function with
``carry``).

Example::

    from capledger.attribution import ContextThreadPoolExecutor, attribute, carry

    with attribute(user="u_42", tenant="acme"):
        client.chat.completions.create(...)      # charged to user:u_42 and tenant:acme
        with ContextThreadPoolExecutor() as pool:
            pool.submit(summarise, doc)          # the worker sees the same attribution
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, Final, ParamSpec, TypeVar

from capledger.scopes import parse_scope

__all__ = [
    "ContextThreadPoolExecutor",
    "attribute",
    "carry",
    "current",
    "current_scopes",
    "current_tags",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
# One immutable mapping (kind -> id) per context: nesting replaces it, never mutates it, so a
# copied context (a task, a carried function) can never see a later change in its parent.
_ATTRIBUTION: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "capledger_attribution", default=_EMPTY
)


@contextmanager
def attribute(
    *,
    user: str | None = None,
    tenant: str | None = None,
    feature: str | None = None,
    key: str | None = None,
    **other: str | None,
) -> Iterator[Mapping[str, str]]:
    """Charge every guarded call inside the block to these scopes, and tag it with them.

    Each keyword is a scope kind and its value the id: ``user="u_42"`` is the scope
    ``user:u_42`` and the tag ``user=u_42``. ``None`` leaves a kind as the outer block set it.
    Any other kind may be given as a keyword (``project="p1"``).

    Args:
        user, tenant, feature, key: the usual kinds; ``other``: any further kinds.

    Yields:
        The attribution in force inside the block (kind -> id).

    Raises:
        InvalidScope: a kind or id is not valid in a scope (checked on entry, before the
            block runs).
    """
    given = {"user": user, "tenant": tenant, "feature": feature, "key": key, **other}
    merged = dict(_ATTRIBUTION.get())
    for kind, identifier in given.items():
        if identifier is None:
            continue
        # Validate here so a bad id fails where it was written, not at the first LLM call.
        parse_scope(f"{kind}:{identifier}")
        merged[kind] = identifier
    token = _ATTRIBUTION.set(MappingProxyType(merged))
    try:
        yield _ATTRIBUTION.get()
    finally:
        _ATTRIBUTION.reset(token)


def current() -> Mapping[str, str]:
    """The attribution in force here: kind -> id (empty outside any ``attribute`` block)."""
    return _ATTRIBUTION.get()


def current_scopes() -> tuple[str, ...]:
    """The scopes of the attribution in force here, as ``kind:id`` strings."""
    return tuple(f"{kind}:{identifier}" for kind, identifier in _ATTRIBUTION.get().items())


def current_tags() -> dict[str, str]:
    """The tags of the attribution in force here (kind -> id)."""
    return dict(_ATTRIBUTION.get())


def carry(function: Callable[_P, _T]) -> Callable[_P, _T]:
    """Bind the current context (attribution included) to ``function``.

    The returned callable runs ``function`` inside a copy of the context taken *now*, in
    whatever thread calls it: hand it to ``ThreadPoolExecutor.submit``,
    ``loop.run_in_executor`` or ``threading.Thread(target=...)``.
    """
    context = contextvars.copy_context()

    def carried(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        # A Context can be entered by one thread at a time: run each call in its own copy, so
        # the carried function may be called concurrently (as pool.map does).
        return context.copy().run(function, *args, **kwargs)

    carried.__wrapped__ = function  # type: ignore[attr-defined]
    return carried


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in the context they were submitted from.

    ``map`` goes through ``submit`` in the calling thread, so it carries the context too.
    """

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)`` in a copy of the caller's context."""
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)
