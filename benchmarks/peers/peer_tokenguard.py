"""cendor-tokenguard: ``budget(usd=5.00, on_exceed="block")`` over an instrumented OpenAI client.

``instrument(client)`` makes every call emit an event; with ``on_exceed="block"`` tokenguard
projects each call's cost before it runs (input tokens counted with tiktoken, output =
``max_tokens``) and raises ``BudgetExceeded`` when the spend so far plus the projection would
pass the cap. The spend is added after the call returns. The SDK talks to an
``httpx.MockTransport`` (``httpx2``, what openai 3.x uses) serving a canned gpt-4o completion
that tokenguard prices at exactly $0.10; the request asks for ``max_tokens=9990``, so the
projection is $0.10 plus the few input tokens of the prompt.

tiktoken downloads its vocabulary on first use, and this machine has no network: the
vocabulary (o200k_base) is taken from the ``bpe-openai`` wheel and put in tiktoken's cache,
where tiktoken checks its SHA-256 before using it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from functools import partial
from importlib import resources
from pathlib import Path

import harness

O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


def _seed_tiktoken_cache() -> None:
    cache = Path(sys.prefix) / "tiktoken-cache"
    target = cache / hashlib.sha1(O200K_URL.encode()).hexdigest()
    if not target.exists():
        cache.mkdir(exist_ok=True)
        packed = resources.files("bpe_openai") / "data" / "o200k_base.tiktoken.gz"
        target.write_bytes(gzip.decompress(packed.read_bytes()))
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


_seed_tiktoken_cache()

import httpx2  # noqa: E402
from cendor.core import instrument, prices  # noqa: E402
from cendor.tokenguard import BudgetExceeded, budget  # noqa: E402
from openai import AsyncOpenAI, OpenAI  # noqa: E402


def _check_price() -> None:
    cost = prices.estimate(harness.MODEL, harness.PROMPT_TOKENS, harness.COMPLETION_TOKENS)
    if Decimal(str(cost.amount)) != harness.CALL_USD:
        raise RuntimeError(f"tokenguard prices the canned completion at {cost}, not $0.10")


def _create(client: OpenAI) -> None:
    try:
        client.chat.completions.create(
            model=harness.MODEL, messages=harness.MESSAGES, max_tokens=harness.MAX_TOKENS
        )
    except BudgetExceeded as error:
        raise harness.Refused(str(error)) from error


async def _acreate(client: AsyncOpenAI) -> None:
    try:
        await client.chat.completions.create(
            model=harness.MODEL, messages=harness.MESSAGES, max_tokens=harness.MAX_TOKENS
        )
    except BudgetExceeded as error:
        raise harness.Refused(str(error)) from error


@contextmanager
def _trial(provider: harness.FakeProvider) -> Iterator[harness.Trial]:
    handle, _ = harness.mock_handlers(httpx2, provider)
    http = httpx2.Client(transport=httpx2.MockTransport(handle))
    client = instrument(
        OpenAI(api_key="sk-bench", base_url="http://provider.invalid/v1", http_client=http)
    )
    with budget(usd=harness.CAP_USD, on_exceed="block") as shared:
        yield partial(_create, client), lambda: shared.spent.amount
    client.close()


@asynccontextmanager
async def _atrial(provider: harness.FakeProvider) -> AsyncIterator[harness.Trial]:
    _, ahandle = harness.mock_handlers(httpx2, provider)
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(ahandle))
    client = instrument(
        AsyncOpenAI(api_key="sk-bench", base_url="http://provider.invalid/v1", http_client=http)
    )
    with budget(usd=harness.CAP_USD, on_exceed="block") as shared:
        yield partial(_acreate, client), lambda: shared.spent.amount
    await client.close()


def build(_args: object) -> harness.Contender:
    warnings.simplefilter("ignore")  # StalePriceTableWarning and friends, once per process
    _check_price()
    return harness.Contender(
        key="cendor-tokenguard",
        label="cendor-tokenguard (block)",
        packages=("cendor-tokenguard", "cendor-core", "openai", "httpx2", "tiktoken", "bpe-openai"),
        pattern='with budget(usd=5.00, on_exceed="block"): client.chat.completions.create(...)',
        modes={
            "asyncio": partial(harness.run_asyncio, _atrial),
            "threads": partial(harness.run_threads, _trial),
            "sequential": partial(harness.run_sequential, _trial),
        },
        not_run={
            "processes": "a budget is a frame in a ContextVar of one process; its SQLite "
            "sink records spend but the cap check reads the in-process frame",
        },
        no_pairs="no two-phase API: 'block' projects, nothing is held until the call returns",
        notes=[
            "'block' projects before the call and adds the spend after it: nothing is held "
            "in between, so concurrent calls all see the same spend.",
        ],
    )


if __name__ == "__main__":
    harness.main(build)
