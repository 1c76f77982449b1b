"""One sans-I/O flow protocol, with one synchronous and one asynchronous driver.

A flow is a generator that *yields* the I/O it needs (a step) and is *sent* each step's
outcome, or *thrown* the error the step raised, as httpx drives an ``auth_flow`` from
``Client`` and ``AsyncClient``. Every decision lives in the flow; ``run`` performs its steps
with a plain function and ``arun`` with a coroutine function, and the two differ only by
``await``. The flow's return value is the driver's.

``catch`` names the errors a flow decides about (a refused reserve, a failed send); any
other error leaves the driver at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeAlias, TypeVar

__all__ = ["Flow", "arun", "run"]

_Step = TypeVar("_Step")
_Result = TypeVar("_Result")
#: A generator of steps, sent their outcomes, returning a result.
Flow: TypeAlias = Generator[_Step, Any, _Result]
_Errors: TypeAlias = type[BaseException] | tuple[type[BaseException], ...]


def _advance(flow: Flow[_Step, _Result], outcome: object, failed: bool) -> tuple[bool, Any]:
    """``(False, next step)`` after an outcome (sent) or an error (thrown), or ``(True,
    result)`` once the flow has returned."""
    try:
        if failed:
            assert isinstance(outcome, BaseException)
            return False, flow.throw(outcome)
        return False, flow.send(outcome)
    except StopIteration as finished:
        return True, finished.value


def run(
    flow: Flow[_Step, _Result],
    perform: Callable[[_Step], object],
    *,
    catch: _Errors = Exception,
) -> _Result:
    """Drive ``flow`` to its end, performing each step with ``perform``.

    Args:
        flow: a fresh flow.
        perform: does one step's I/O and returns its outcome.
        catch: the errors of a step that are thrown into the flow (others propagate).
    """
    finished, step = _advance(flow, None, False)
    while not finished:
        try:
            outcome, failed = perform(step), False
        except catch as error:
            outcome, failed = error, True
        finished, step = _advance(flow, outcome, failed)
    result: _Result = step
    return result


async def arun(
    flow: Flow[_Step, _Result],
    perform: Callable[[_Step], Awaitable[object]],
    *,
    catch: _Errors = Exception,
) -> _Result:
    """``run`` with a coroutine function performing the steps (the same loop, awaited)."""
    finished, step = _advance(flow, None, False)
    while not finished:
        try:
            outcome, failed = await perform(step), False
        except catch as error:
            outcome, failed = error, True
        finished, step = _advance(flow, outcome, failed)
    result: _Result = step
    return result
