# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""The LiteLLM wrapper, against LiteLLM's own ``mock_response`` support (no network).

Runs where ``litellm`` is installed (``openai<3``): see ``tests/integrations/run_envs.py``.
"""

from __future__ import annotations

import asyncio
import random
import types
from decimal import Decimal
from typing import Any

import pytest

litellm = pytest.importorskip("litellm")

# LiteLLM's own models warn as pydantic builds them: third-party noise, not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Item .* is using the .ReadOnly. qualifier:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
]

from llm_fakes import ceil_nano, journal_is_clean, random_prompt

from capledger import AsyncLedger, BudgetExceeded, ConfigurationError, Ledger, pricing
from capledger.integrations import wrap
from capledger.pricing import Pricebook
from capledger.pricing._pricebook import round_up_usd

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "hello there"}]


def test_completion_is_priced_by_litellm(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    response = guarded.completion(model=MODEL, messages=MESSAGES, mock_response="Hi!")
    (hold,) = ledger.holds(state=None)
    litellm_usd = response._hidden_params["response_cost"]
    assert litellm_usd  # LiteLLM priced it, so its figure is the one settled
    assert hold.settled["usd"] == round_up_usd(Decimal(str(litellm_usd)))
    assert hold.settled["tokens"] == response.usage.total_tokens
    assert hold.amounts["usd"] >= hold.settled["usd"]
    assert hold.tags["model"] == MODEL
    journal_is_clean(ledger.holds(state=None), ledger.verify())


def test_provider_prefix_and_our_prices_when_litellm_has_none(ledger: Ledger) -> None:
    book = Pricebook()
    book.set_price("house-model", input="1", output="2", provider="openai")
    guarded = wrap(litellm, ledger, scopes=["user:u1"], pricebook=book)
    response = guarded.completion(
        model="openai/house-model", messages=MESSAGES, mock_response="Hi!", max_tokens=30
    )
    (hold,) = ledger.holds(state=None)
    assert hold.settled["usd"] == book.cost("house-model", response.usage)


def test_stream_settles_usage(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    stream = guarded.completion(
        model=MODEL, messages=MESSAGES, mock_response="a b c d", stream=True, max_tokens=20
    )
    chunks = list(stream)
    usage = next(chunk.usage for chunk in reversed(chunks) if getattr(chunk, "usage", None))
    (hold,) = ledger.holds(state=None)
    assert hold.state == "settled"
    assert hold.settled["usd"] == pricing.cost(MODEL, usage)
    journal_is_clean(ledger.holds(state=None), ledger.verify())


async def test_acompletion_and_refusal(aledger: AsyncLedger) -> None:
    guarded = wrap(litellm, aledger, scopes=["user:u1"])
    await guarded.acompletion(model=MODEL, messages=MESSAGES, mock_response="Hi!")
    await aledger.set_limit("user:u2", usd="0.000001")
    with pytest.raises(BudgetExceeded):
        await guarded.acompletion(
            model=MODEL, messages=MESSAGES, mock_response="Hi!", capledger_scopes=["user:u2"]
        )
    with pytest.raises(ConfigurationError):
        guarded.completion(model=MODEL, messages=MESSAGES, mock_response="Hi!")
    done = await aledger.holds(state=None)
    assert [hold.state for hold in done] == ["settled"]
    journal_is_clean(done, await aledger.verify())


async def test_1000_concurrent_clamped_calls_never_pass_the_cap(aledger: AsyncLedger) -> None:
    """A provider behind LiteLLM's mock that writes at most max_tokens and bills exactly."""
    cap = Decimal("5.00")
    in_rate, out_rate = Decimal(15) / 1_000_000, Decimal(60) / 1_000_000
    book = Pricebook()
    book.set_price("fake-gpt", input="15", output="60", provider="openai")
    rng = random.Random(5)
    bill = [Decimal(0)]
    sent: list[int] = []

    async def provider(**kwargs: Any) -> Any:
        limit = kwargs["max_tokens"]
        sent.append(limit)
        output = min(limit, rng.randint(1, 3000))
        prompt = len(kwargs["messages"][0]["content"].split()) // 2 + 1
        bill[0] += ceil_nano(prompt * in_rate + output * out_rate)
        mock = {
            "model": "fake-gpt",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "tok " * output}}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": output,
                "total_tokens": prompt + output,
            },
        }
        return await litellm.acompletion(**kwargs, mock_response=mock)

    module = types.ModuleType("litellm")
    module.acompletion = provider  # type: ignore[attr-defined]
    await aledger.set_limit("tenant:acme", usd=cap)
    guarded = wrap(module, aledger, scopes=["tenant:acme"], policy="clamp", pricebook=book)

    async def one() -> bool:
        request = {
            "model": "openai/fake-gpt",
            "messages": [{"role": "user", "content": random_prompt(rng)}],
            "max_tokens": rng.randint(1, 3000),
        }
        try:
            await guarded.acompletion(**request)
        except BudgetExceeded:
            return False
        return True

    outcomes = await asyncio.gather(*(one() for _ in range(1000)))
    (usd,) = await aledger.balance("tenant:acme", unit="usd")
    assert bill[0] <= cap
    assert usd.spent == bill[0]
    assert outcomes.count(True) == len(sent)
    assert bill[0] > cap * Decimal("0.9") and min(sent) < 3000
    journal_is_clean(await aledger.holds(state=None, limit=2000), await aledger.verify())
