"""``guard``: hold an estimate around any function, sync or async, and settle what it cost."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal, ParamSpec, TypeVar, cast

from capledger import attribution
from capledger.errors import ConfigurationError
from capledger.integrations._ledger_like import (
    AsyncLedgerLike,
    LedgerLike,
    is_async_ledger,
    is_ledger,
)
from capledger.integrations._steps import Call, StepFlow, Wire, close
from capledger.pricing import Pricebook, default_pricebook
from capledger.scopes import parse_scopes

__all__ = ["guard"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_AMOUNT_TYPES = (Decimal, int, str, float)


def _amount_of(
    figure: object, model: str | None, provider: str | None, pricebook: Pricebook | None
) -> object:
    """USD from what ``actual`` returned: an amount, or a usage/response to price."""
    if isinstance(figure, _AMOUNT_TYPES) and not isinstance(figure, bool):
        return figure
    if model is None:
        raise ConfigurationError(
            "actual= returned a usage object: give guard(model=...) so it can be priced, or "
            "return the cost in USD"
        )
    return (pricebook or default_pricebook()).cost(model, figure, provider)


def guard(
    ledger: LedgerLike | AsyncLedgerLike,
    *,
    estimate: object | Callable[..., object],
    scopes: str | Sequence[str] = (),
    actual: Callable[[Any], object] | None = None,
    model: str | None = None,
    provider: str | None = None,
    pricebook: Pricebook | None = None,
    ttl: float | timedelta = 60,
    tags: Mapping[str, object] | None = None,
    on_error: Literal["settle", "release"] = "settle",
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a function so each call holds ``estimate`` and settles ``actual(result)``.

    The hold is placed before the function runs, on ``scopes`` plus the ambient attribution
    (``capledger.attribute``), atomically with the cap check: a call the budget cannot pay
    for raises ``BudgetExceeded`` and the function does not run. After it returns, the hold
    settles at ``actual(result)`` (or at the estimate when ``actual`` is None). If it raises,
    the hold settles at the worst case, the held estimate (or at what was observed, if
    anything was), since a call that failed may already have spent, and the exception
    propagates unchanged. ``on_error="release"`` gives the hold back instead: choose it only
    for a function that cannot have spent anything when it raises.

    Args:
        ledger: a ``Ledger`` for a plain function, an ``AsyncLedger`` for a coroutine
            function.
        estimate: the USD to hold (``Decimal``, ``int``, ``str``, ``float`` via ``str``), or a
            callable given the call's arguments that returns it. For G2 it must be an upper
            bound of what the call can cost.
        scopes: charged on every call.
        actual: given the result, returns the USD spent, or a usage object / provider
            response priced with ``model`` (and ``provider``).
        model, provider, pricebook: how to price a usage object returned by ``actual``.
        ttl: seconds the call may take before its hold expires.
        tags: journaled with every call (the function's qualified name is added).
        on_error: what a call that raised is charged: ``settle`` (the default: the held
            estimate, or what was observed) or ``release`` (nothing).

    Raises:
        ConfigurationError: a coroutine function with a sync ``Ledger`` or the reverse, a
            usage returned without ``model``, or ``on_error`` neither ``settle`` nor
            ``release``.
    """
    fixed_scopes = parse_scopes([scopes] if isinstance(scopes, str) else scopes) if scopes else ()
    if on_error not in ("settle", "release"):
        raise ConfigurationError(f"on_error must be 'settle' or 'release', not {on_error!r}")

    def plan(
        args: tuple[Any, ...], kwargs: dict[str, Any], name: str
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The scopes and the ``reserve`` keyword arguments of one call."""
        scope_list = [*fixed_scopes, *attribution.current_scopes()]
        if not scope_list:
            raise ConfigurationError(
                f"{name} is charged to no scope: pass scopes= to guard() or open a "
                "capledger.attribute(...) block"
            )
        held = estimate(*args, **kwargs) if callable(estimate) else estimate
        options = {
            "usd": held,
            "ttl": ttl,
            "tags": {**attribution.current_tags(), **(tags or {}), "function": name},
        }
        return parse_scopes(scope_list), options

    def closing_after_error(hold: Any) -> dict[str, Any] | None:
        """How to close the hold of a call that raised: ``None`` releases it.

        Settling the observed usd, or the held amount when none was observed (``usd=None``),
        never releases money the call may have spent.
        """
        if on_error == "release":
            return None
        return {"usd": hold.observed.get("usd")}

    def actual_usd(result: object) -> object:
        """What the call cost: ``actual(result)`` priced, or None to settle at the estimate."""
        figure = None if actual is None else actual(result)
        return None if figure is None else _amount_of(figure, model, provider, pricebook)

    def guarded_call(
        function: Callable[..., Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepFlow[Any]:
        """One call as a flow: hold, call, settle (a ``Call`` of ``function`` is awaited
        when the ledger, and so the function, is async)."""
        scope_tuple, options = plan(args, kwargs, name)
        hold = yield Call(ledger.reserve, (scope_tuple,), options)
        try:
            result = yield Call(function, args, kwargs)
        except BaseException:
            # The function's error matters more than ours: a ledger error is logged.
            yield from close(hold, closing_after_error(hold), quiet=True)
            raise
        try:
            usd = actual_usd(result)
        except Exception:
            yield from close(hold, {})  # spent, but by how much is unknown: the estimate
            raise
        yield from close(hold, {"usd": usd})
        return result

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        name = getattr(function, "__qualname__", repr(function))[:200]
        wire = Wire(ledger)
        if inspect.iscoroutinefunction(function):
            if not is_async_ledger(ledger):
                raise ConfigurationError(
                    f"{name} is a coroutine function: guard it with an AsyncLedger"
                )

            @functools.wraps(function)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                return await wire.arun(guarded_call(function, name, args, kwargs))

            return cast(Callable[_P, _R], guarded_async)
        if is_async_ledger(ledger) or not is_ledger(ledger):
            raise ConfigurationError(f"{name} is a plain function: guard it with a Ledger")

        @functools.wraps(function)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            result: _R = wire.run(guarded_call(function, name, args, kwargs))
            return result

        return guarded

    return decorate
