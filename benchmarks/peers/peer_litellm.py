"""LiteLLM ``BudgetManager``: check, call, record, the pattern of its "budget manager" docs.

    if budget_manager.get_current_cost(user=user) <= budget_manager.get_total_budget(user):
        response = completion(model=..., messages=...)
        budget_manager.update_cost(completion_obj=response, user=user)
    else:
        response = "Sorry - no budget!"

``completion`` / ``acompletion`` run through LiteLLM's OpenAI provider with ``client=`` an
``openai`` client over an ``httpx.MockTransport`` serving a canned gpt-4o completion that
LiteLLM's ``completion_cost`` prices at exactly $0.10. The price map is LiteLLM's bundled
copy (``LITELLM_LOCAL_MODEL_COST_MAP=True``: no network here). ``BudgetManager`` keeps its
totals in a dict and, in its default "local" mode, rewrites ``user_cost.json`` in the
working directory from a new thread after every update: each run gets its own directory.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import harness

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_TELEMETRY", "False")

import httpx
import litellm
from litellm import BudgetManager, acompletion, completion
from openai import AsyncOpenAI, OpenAI

USER = "bench-user"


def _check_price() -> None:
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=harness.MODEL,
        prompt_tokens=harness.PROMPT_TOKENS,
        completion_tokens=harness.COMPLETION_TOKENS,
    )
    if not math.isclose(prompt_cost + completion_cost, float(harness.CALL_USD), rel_tol=1e-9):
        raise RuntimeError(
            f"LiteLLM prices the canned completion at ${prompt_cost + completion_cost}"
        )


def _attempt(manager: BudgetManager, client: OpenAI) -> None:
    if manager.get_current_cost(user=USER) <= manager.get_total_budget(USER):
        response = completion(
            model=harness.MODEL,
            messages=harness.MESSAGES,
            max_tokens=harness.MAX_TOKENS,
            client=client,
        )
        manager.update_cost(completion_obj=response, user=USER)
    else:
        raise harness.Refused("Sorry - no budget!")


async def _aattempt(manager: BudgetManager, client: AsyncOpenAI) -> None:
    if manager.get_current_cost(user=USER) <= manager.get_total_budget(USER):
        response = await acompletion(
            model=harness.MODEL,
            messages=harness.MESSAGES,
            max_tokens=harness.MAX_TOKENS,
            client=client,
        )
        manager.update_cost(completion_obj=response, user=USER)
    else:
        raise harness.Refused("Sorry - no budget!")


@contextmanager
def _workdir() -> Iterator[BudgetManager]:
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="litellm-bench-") as directory:
        os.chdir(directory)
        try:
            manager = BudgetManager(project_name="capledger-bench")
            manager.create_budget(total_budget=float(harness.CAP_USD), user=USER)
            yield manager
            _join_writers()
        finally:
            os.chdir(previous)


def _join_writers() -> None:
    """Wait for the threads that rewrite user_cost.json, so none spills into the next run."""
    for thread in threading.enumerate():
        if thread.name.endswith("(save_data)"):  # Thread(target=self.save_data) names them so
            thread.join()


@contextmanager
def _trial(provider: harness.FakeProvider) -> Iterator[harness.Trial]:
    handle, _ = harness.mock_handlers(httpx, provider)
    http = httpx.Client(transport=httpx.MockTransport(handle))
    client = OpenAI(api_key="sk-bench", base_url="http://provider.invalid/v1", http_client=http)
    with _workdir() as manager:
        yield partial(_attempt, manager, client), lambda: manager.get_current_cost(user=USER)
    client.close()


@asynccontextmanager
async def _atrial(provider: harness.FakeProvider) -> AsyncIterator[harness.Trial]:
    _, ahandle = harness.mock_handlers(httpx, provider)
    http = httpx.AsyncClient(transport=httpx.MockTransport(ahandle))
    client = AsyncOpenAI(
        api_key="sk-bench", base_url="http://provider.invalid/v1", http_client=http
    )
    with _workdir() as manager:
        yield partial(_aattempt, manager, client), lambda: manager.get_current_cost(user=USER)
    await client.close()


def build(_args: object) -> harness.Contender:
    _check_price()
    return harness.Contender(
        key="litellm",
        label="LiteLLM BudgetManager",
        packages=("litellm", "openai", "httpx"),
        pattern="if get_current_cost(user) <= get_total_budget(user): "
        "completion(...); update_cost(completion_obj=..., user=user)",
        modes={
            "asyncio": partial(harness.run_asyncio, _atrial),
            "threads": partial(harness.run_threads, _trial),
            "sequential": partial(harness.run_sequential, _trial),
        },
        not_run={
            "processes": "BudgetManager keeps totals in a dict; its local mode reads "
            "user_cost.json once at start-up and overwrites it unlocked, so processes "
            "never see each other's spend",
        },
        no_pairs="no two-phase API: it records spend after the call",
        notes=[
            "The docs' check uses <=, so the call that starts at exactly the cap is "
            "allowed: one call past the cap even with no concurrency.",
        ],
    )


if __name__ == "__main__":
    harness.main(build)
