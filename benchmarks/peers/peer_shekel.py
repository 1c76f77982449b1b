"""Shekel: ``with budget(max_usd=5.00):`` around real ``openai`` SDK calls.

Shekel patches ``openai``'s ``Completions.create`` while a budget is open, prices each
response from its ``usage`` with its bundled table, adds the cost to the budget and raises
``BudgetExceededError`` when the total has passed ``max_usd``: the check comes after the call
(it never refuses a call before it runs). The SDK talks to an ``httpx.MockTransport``
(``httpx2``, the HTTP package openai 3.x uses) serving a canned completion of 40 input and
9990 output tokens of gpt-4o, which Shekel prices at exactly $0.10.

One budget is opened around all the attempts, and every task and thread sees it (asyncio
tasks and ``copy_context()`` carry its ContextVar). Shekel's own docstring says a Budget is
not thread-safe when shared across threads or concurrent tasks; a budget per task could not
express one shared cap at all, so this is the only way to ask it for one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import harness
import httpx2
from openai import AsyncOpenAI, OpenAI
from shekel import BudgetExceededError, budget
from shekel._pricing import calculate_cost

CAP = float(harness.CAP_USD)


def _check_price() -> None:
    cost = calculate_cost(harness.MODEL, harness.PROMPT_TOKENS, harness.COMPLETION_TOKENS)
    if not math.isclose(cost, float(harness.CALL_USD), rel_tol=1e-9):
        raise RuntimeError(f"shekel prices the canned completion at ${cost}, not $0.10")


def _create(client: OpenAI) -> None:
    try:
        client.chat.completions.create(
            model=harness.MODEL, messages=harness.MESSAGES, max_tokens=harness.MAX_TOKENS
        )
    except BudgetExceededError as error:
        raise harness.Refused(str(error)) from error


async def _acreate(client: AsyncOpenAI) -> None:
    try:
        await client.chat.completions.create(
            model=harness.MODEL, messages=harness.MESSAGES, max_tokens=harness.MAX_TOKENS
        )
    except BudgetExceededError as error:
        raise harness.Refused(str(error)) from error


@contextmanager
def _trial(provider: harness.FakeProvider) -> Iterator[harness.Trial]:
    handle, _ = harness.mock_handlers(httpx2, provider)
    http = httpx2.Client(transport=httpx2.MockTransport(handle))
    client = OpenAI(api_key="sk-bench", base_url="http://provider.invalid/v1", http_client=http)
    with budget(max_usd=CAP) as shared:
        yield partial(_create, client), lambda: shared.spent
    client.close()


@asynccontextmanager
async def _atrial(provider: harness.FakeProvider) -> AsyncIterator[harness.Trial]:
    _, ahandle = harness.mock_handlers(httpx2, provider)
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(ahandle))
    client = AsyncOpenAI(
        api_key="sk-bench", base_url="http://provider.invalid/v1", http_client=http
    )
    async with budget(max_usd=CAP) as shared:
        yield partial(_acreate, client), lambda: shared.spent
    await client.close()


def build(_args: object) -> harness.Contender:
    warnings.simplefilter("ignore")  # its per-call warnings would flood the log
    _check_price()
    return harness.Contender(
        key="shekel",
        label="Shekel",
        packages=("shekel", "openai", "httpx2"),
        pattern="with budget(max_usd=5.00): client.chat.completions.create(...)",
        modes={
            "asyncio": partial(harness.run_asyncio, _atrial),
            "threads": partial(harness.run_threads, _trial),
            "sequential": partial(harness.run_sequential, _trial),
        },
        not_run={
            "processes": "a budget() is an object in one process (a ContextVar); its Redis "
            "backend is for rolling-window budgets and still checks after the call",
        },
        no_pairs="no two-phase API: it records spend after the call",
        notes=[
            "Shekel checks after the call: BudgetExceededError is raised once the recorded "
            "total has passed the cap, by which time the call was made and billed.",
            "Shekel's Budget docstring says it is not thread-safe when shared across "
            "threads or concurrent asyncio tasks.",
        ],
    )


if __name__ == "__main__":
    harness.main(build)
