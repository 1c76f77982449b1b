# ruff: noqa: E402  (imports after pytest.importorskip, so a missing SDK skips)
"""The LiteLLM wrapper: LiteLLM's own ``mock_response`` for most, and a fake provider over
real loopback HTTP for the cap itself (no network).

Runs where ``litellm`` is installed (``openai<3``): see ``tests/integrations/run_envs.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import socket
import types
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

litellm = pytest.importorskip("litellm")

# LiteLLM's own models warn as pydantic builds them: third-party noise, not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Items? .* the .ReadOnly. qualifier:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
    # LiteLLM's logging worker, left on an event loop a test closed.
    pytest.mark.filterwarnings("ignore:coroutine 'LoggingWorker._worker_loop':RuntimeWarning"),
]

import httpx
from llm_fakes import HoldClosing, ceil_nano, journal_is_clean, random_prompt

from capledger import (
    AsyncLedger,
    BudgetExceeded,
    ConfigurationError,
    Ledger,
    UnguardedRequest,
    pricing,
)
from capledger.estimate import estimate
from capledger.integrations import wrap
from capledger.integrations._engine import failure_settles
from capledger.integrations._litellm import LiteLLMProxy, LiteLLMRouterProxy
from capledger.integrations._litellm_names import (
    MODULE_GUARDED,
    ROUTER_GUARDED,
    classify,
    classify_router,
)
from capledger.integrations._litellm_reach import module_candidates, router_candidates
from capledger.pricing import Pricebook
from capledger.pricing._pricebook import round_up_usd
from capledger.testing.fake_provider import Behaviour, FakePrices, FakeProvider

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "hello there"}]


def latest(ledger: Ledger) -> Any:
    return ledger.holds(state=None, limit=1, newest_first=True)[0]


def module_with(**functions: Any) -> Any:
    """A stand-in for the litellm module holding only ``functions`` (``wrap`` knows it by
    its name)."""
    module = types.ModuleType("litellm")
    for name, function in functions.items():
        setattr(module, name, function)
    return module


def router_proxy(router: Any, ledger: Ledger | AsyncLedger, **options: Any) -> Any:
    """``wrap(router, ledger)``: a ``LiteLLMRouterProxy``."""
    guarded = wrap(router, ledger, scopes=["user:u1"], **options)
    assert isinstance(guarded, LiteLLMRouterProxy)
    return guarded


# --- the chat completion ------------------------------------------------------------------------


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


def test_positional_arguments_and_a_tool_loop(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    response = guarded.completion(MODEL, list(MESSAGES), mock_response="Hi!")
    messages: list[Any] = list(MESSAGES)
    messages.append(response.choices[0].message)  # the SDK's own object, as tool loops do
    messages.append({"role": "user", "content": "and again"})
    guarded.completion(model=MODEL, messages=messages, mock_response="Again!")
    assert [hold.state for hold in ledger.holds(state=None)] == ["settled", "settled"]
    with pytest.raises(TypeError):
        guarded.completion(MODEL, MESSAGES, "one too many")


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
        model=MODEL,
        messages=MESSAGES,
        mock_response="a b c d",
        stream=True,
        stream_options={"include_usage": True},  # so the usage chunk is shown
        max_tokens=20,
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


# --- the other entry points ---------------------------------------------------------------------


def test_responses_text_completion_and_embedding_are_held(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    guarded.responses(input="hello", model=MODEL, mock_response="Hi there", max_output_tokens=50)
    hold = latest(ledger)
    assert hold.state == "settled"
    expected = estimate(MODEL, {"input": "hello", "max_output_tokens": 50}, shape="responses")
    assert hold.amounts["usd"] >= expected.worst_case_usd

    guarded.text_completion("hello", model="gpt-3.5-turbo-instruct", mock_response="x")
    hold = latest(ledger)
    assert hold.state == "settled"
    # No max_tokens: the Completions API's 16, sent explicitly, bounds the output.
    legacy = estimate(
        "gpt-3.5-turbo-instruct",
        {"prompt": "hello", "max_tokens": 16},
        "openai",
        shape="completions",
    )
    assert hold.amounts["usd"] >= legacy.worst_case_usd  # LiteLLM's own keys count as input
    assert hold.amounts["usd"] < legacy.worst_case_usd * 2

    response = guarded.embedding("text-embedding-3-small", ["hello", "world"], mock_response=[0.1])
    hold = latest(ledger)
    assert hold.settled["usd"] == round_up_usd(
        Decimal(str(response._hidden_params["response_cost"]))
    )
    embedded = estimate(
        "text-embedding-3-small", {"input": ["hello", "world"]}, "openai", shape="embeddings"
    )
    assert embedded.output_tokens_bound == 0
    assert hold.amounts["usd"] >= embedded.worst_case_usd  # LiteLLM's own keys count too
    journal_is_clean(ledger.holds(state=None), ledger.verify())


def test_text_completion_sends_the_default_limit(ledger: Ledger) -> None:
    sent: list[dict[str, Any]] = []

    def text_completion(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return litellm.text_completion(**kwargs)

    guarded = wrap(module_with(text_completion=text_completion), ledger, scopes=["user:u1"])
    guarded.text_completion(prompt="hi", model="gpt-3.5-turbo-instruct", mock_response="x")
    guarded.text_completion(
        prompt="hi", model="gpt-3.5-turbo-instruct", mock_response="x", max_tokens=40
    )
    assert [call["max_tokens"] for call in sent] == [16, 40]


async def test_async_entry_points(aledger: AsyncLedger) -> None:
    guarded = wrap(litellm, aledger, scopes=["user:u1"])
    await guarded.aresponses(input="hello", model=MODEL, mock_response="Hi there")
    await guarded.atext_completion(
        prompt="hello", model="gpt-3.5-turbo-instruct", mock_response="x"
    )
    await guarded.aembedding(model="text-embedding-3-small", input="hello", mock_response=[0.1])
    await guarded.acreate(model=MODEL, messages=MESSAGES, mock_response="Hi!")
    done = await aledger.holds(state=None)
    assert [hold.state for hold in done] == ["settled"] * 4
    with pytest.raises(ConfigurationError):
        guarded.embedding(model="text-embedding-3-small", input="hello")
    journal_is_clean(done, await aledger.verify())


def test_batch_completion_holds_each_request(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    results = guarded.batch_completion(
        model=MODEL,
        messages=[MESSAGES, [{"role": "user", "content": "two"}], MESSAGES],
        mock_response="ok",
        max_tokens=10,
        capledger_request_id="batch-1",
    )
    assert [type(result).__name__ for result in results] == ["ModelResponse"] * 3
    holds = ledger.holds(state=None)
    assert sorted(hold.request_id for hold in holds) == ["batch-1:0", "batch-1:1", "batch-1:2"]
    assert {hold.state for hold in holds} == {"settled"}
    with pytest.raises(Exception, match="list of message lists"):
        guarded.batch_completion(model=MODEL, messages=MESSAGES)


def test_batch_completion_is_all_or_nothing(ledger: Ledger) -> None:
    sent: list[Any] = []

    def completion(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return litellm.completion(**kwargs)

    request = {"model": MODEL, "messages": MESSAGES, "mock_response": "ok", "max_tokens": 10}
    one = estimate(MODEL, request).worst_case_usd  # the request as the guard reads it
    ledger.set_limit("user:u1", usd=one * 2)  # two fit, the third does not
    guarded = wrap(module_with(completion=completion), ledger, scopes=["user:u1"])
    with pytest.raises(BudgetExceeded):
        guarded.batch_completion(
            model=MODEL, messages=[MESSAGES] * 3, mock_response="ok", max_tokens=10
        )
    assert sent == []
    assert [hold.state for hold in ledger.holds(state=None)] == ["released", "released"]
    (usd,) = ledger.balance("user:u1", unit="usd")
    assert usd.spent == 0 and usd.held == 0


def test_moderation_passes_only_when_free(ledger: Ledger) -> None:
    called: list[dict[str, Any]] = []

    def moderation(**kwargs: Any) -> str:
        called.append(kwargs)
        return "flagged: no"

    guarded = wrap(module_with(moderation=moderation), ledger, scopes=["user:u1"])
    assert guarded.moderation("hi", "omni-moderation-latest") == "flagged: no"
    assert guarded.moderation(input="hi", capledger_tags={"a": 1}) == "flagged: no"
    assert called[1] == {"input": "hi"}  # capledger's options are not sent
    with pytest.raises(UnguardedRequest) as refused:
        guarded.moderation(input="hi", model="mistral/mistral-moderation-latest")
    assert refused.value.endpoint == "moderation"
    assert len(called) == 2 and ledger.holds(state=None) == []


# --- fallbacks and routers ------------------------------------------------------------------------


def test_fallbacks_are_held_at_the_dearest_model(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    request = {"model": MODEL, "messages": MESSAGES, "max_tokens": 100, "mock_response": "ok"}
    with_fallbacks = {**request, "fallbacks": ["gpt-4o"]}
    cheap = estimate(MODEL, with_fallbacks).worst_case_usd
    dear = estimate("gpt-4o", with_fallbacks).worst_case_usd
    guarded.completion(**with_fallbacks)
    assert latest(ledger).amounts["usd"] == dear > cheap
    window = {MODEL: "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18": "o1"}
    with_window = {**request, "context_window_fallback_dict": window}
    guarded.completion(**with_window)
    assert latest(ledger).amounts["usd"] == estimate("o1", with_window).worst_case_usd
    fallbacks = [{"model": "gpt-4o", "api_base": "x"}, MODEL]
    assert module_candidates(litellm, MODEL, {"fallbacks": fallbacks}) == [MODEL, "gpt-4o"]


def test_global_fallbacks_and_aliases(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(litellm, "model_alias_map", {"house": MODEL})
    monkeypatch.setattr(litellm, "model_fallbacks", ["gpt-4o"])
    assert module_candidates(litellm, "house", {}) == [MODEL, "gpt-4o"]
    assert module_candidates(litellm, "house", {"fallbacks": ["o1"]}) == [MODEL, "o1"]


def test_model_list_is_refused(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    with pytest.raises(UnguardedRequest, match="every deployment"):
        guarded.completion(model=MODEL, messages=MESSAGES, model_list=[{"model_name": MODEL}])
    assert ledger.holds(state=None) == []


def make_router(**options: Any) -> Any:
    return litellm.Router(
        model_list=[
            {
                "model_name": "chat",
                "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "x"},
            },
            {"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o", "api_key": "x"}},
            {"model_name": "big", "litellm_params": {"model": "openai/o1", "api_key": "x"}},
            {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_key": "x"}},
            {
                "model_name": "embed",
                "litellm_params": {"model": "openai/text-embedding-3-small", "api_key": "x"},
            },
        ],
        **options,
    )


def test_router_group_is_held_at_its_dearest_deployment(ledger: Ledger) -> None:
    router = make_router(fallbacks=[{"big": ["chat"]}])
    guarded = router_proxy(router, ledger)
    request = {"model": "chat", "messages": MESSAGES, "max_tokens": 100, "mock_response": "ok"}
    guarded.completion("chat", MESSAGES, max_tokens=100, mock_response="ok")
    hold = latest(ledger)
    assert hold.state == "settled"
    assert hold.amounts["usd"] == estimate("gpt-4o", request, "openai").worst_case_usd
    assert router_candidates(router, "big", {}) == [
        "openai/o1",
        "openai/gpt-4o-mini",
        "openai/gpt-4o",
    ]
    assert router_candidates(router, "openai/gpt-4.1", {}) == ["openai/gpt-4.1"]
    assert router_candidates(router, "chat", {"fallbacks": ["big"]})[-1] == "openai/o1"
    with_fallbacks = {**request, "fallbacks": ["big"]}
    guarded.completion(**with_fallbacks)
    assert latest(ledger).amounts["usd"] == estimate("o1", with_fallbacks, "openai").worst_case_usd
    guarded.embedding("embed", ["hello"], mock_response=[0.1])
    assert latest(ledger).state == "settled"


@pytest.mark.parametrize("fraction", ["0.3", "0.5", "0.9", "0.99", "1.2", "3"])
def test_clamped_fallbacks_are_covered_whatever_model_answers(
    ledger: Ledger, fraction: str
) -> None:
    """Two models whose worst cases cross as the output limit falls: whatever the clamp
    sends, the hold covers either model (or nothing is sent)."""
    book = Pricebook()
    book.set_price("input-heavy", input="100", output="1", provider="openai")
    book.set_price("output-heavy", input="1", output="100", provider="openai")
    sent: list[dict[str, Any]] = []

    def completion(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return litellm.completion(**kwargs, mock_response="ok")

    models = ["openai/input-heavy", "openai/output-heavy"]
    request = {"messages": [{"role": "user", "content": "word " * 400}], "max_tokens": 4000}
    full = max(
        estimate(name, request, "openai", pricebook=book).worst_case_usd
        for name in ["input-heavy", "output-heavy"]
    )
    budget = round_up_usd(full * Decimal(fraction))
    ledger.set_limit("user:u1", usd=budget)
    guarded = wrap(
        module_with(completion=completion),
        ledger,
        scopes=["user:u1"],
        policy="clamp",
        pricebook=book,
    )
    try:
        guarded.completion(model=models[0], fallbacks=models[1:], **request)
    except BudgetExceeded:
        assert sent == []
        assert {hold.state for hold in ledger.holds(state=None)} <= {"released"}
        return
    (call,) = sent
    hold = latest(ledger)
    assert hold.amounts["usd"] <= budget
    as_sent = {"messages": call["messages"], "max_tokens": call["max_tokens"]}
    for name in ("input-heavy", "output-heavy"):
        assert (
            estimate(name, as_sent, "openai", pricebook=book).worst_case_usd <= hold.amounts["usd"]
        )


async def test_router_async_and_refusals(aledger: AsyncLedger) -> None:
    router = make_router()
    guarded = router_proxy(router, aledger)
    await guarded.acompletion(model="chat", messages=MESSAGES, mock_response="ok")
    await guarded.aembedding(model="embed", input="hi", mock_response=[0.1])
    assert [hold.state for hold in await aledger.holds(state=None)] == ["settled"] * 2
    with pytest.raises(UnguardedRequest) as refused:
        await guarded.aimage_generation(model="chat", prompt="a cat")
    assert refused.value.endpoint == "aimage_generation"
    with pytest.raises(UnguardedRequest):
        guarded.health()
    with pytest.raises(ConfigurationError):
        guarded.completion(model="chat", messages=MESSAGES, mock_response="ok")
    assert guarded.registry().aliases() == router.registry().aliases()  # free
    assert guarded.settings().fallbacks == router.settings().fallbacks  # free


# --- fail closed ----------------------------------------------------------------------------------


def test_billable_entry_points_are_refused(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    for name in ("image_generation", "aspeech", "rerank", "create_batch", "anthropic_messages"):
        with pytest.raises(UnguardedRequest) as refused:
            getattr(guarded, name)(model=MODEL, prompt="x")
        assert refused.value.endpoint == name
        assert f"unguarded=[{name!r}]" in str(refused.value)
    with pytest.raises(UnguardedRequest, match="wrap the router itself"):
        guarded.Router(model_list=[])
    with pytest.raises(UnguardedRequest):
        guarded.images.main.image_generation  # noqa: B018 - the access itself is refused
    assert ledger.holds(state=None) == []


def test_free_attributes_pass(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    assert guarded.token_counter(model=MODEL, messages=MESSAGES) > 0
    assert guarded.get_model_info(MODEL)["max_tokens"]
    assert guarded.supports_vision(MODEL) in (True, False)
    assert guarded.RateLimitError is litellm.RateLimitError
    assert guarded.ModelResponse is litellm.ModelResponse
    assert guarded.exceptions is litellm.exceptions
    assert guarded.model_cost is litellm.model_cost
    guarded.drop_params = True  # configuration is set on the module
    try:
        assert litellm.drop_params is True
    finally:
        litellm.drop_params = False


def test_unguarded_names_pass_journaled(ledger: Ledger) -> None:
    def image_generation(**kwargs: Any) -> str:
        return "an image"

    def shiny_new_endpoint(**kwargs: Any) -> str:
        return "new"

    module = module_with(image_generation=image_generation, shiny_new_endpoint=shiny_new_endpoint)
    guarded = wrap(module, ledger, scopes=["user:u1"])
    with pytest.raises(UnguardedRequest, match="does not know"):
        guarded.shiny_new_endpoint()
    allowed = wrap(module, ledger, scopes=["user:u1"], unguarded=["image_generation"])
    assert allowed.image_generation(prompt="a cat", capledger_tags={"feature": "art"}) == "an image"
    (hold,) = ledger.holds(state=None)
    assert hold.state == "settled"
    assert hold.amounts["usd"] == 0 and hold.settled["usd"] == 0
    assert hold.tags["unguarded"] == "image_generation" and hold.tags["feature"] == "art"


async def test_unguarded_async_names_pass_journaled(aledger: AsyncLedger) -> None:
    async def aimage_generation(**kwargs: Any) -> str:
        return "an image"

    module = module_with(aimage_generation=aimage_generation)
    allowed = wrap(module, aledger, scopes=["user:u1"], unguarded=["aimage_generation"])
    assert await allowed.aimage_generation(prompt="a cat") == "an image"
    (hold,) = await aledger.holds(state=None)
    assert hold.tags["unguarded"] == "aimage_generation" and hold.settled["usd"] == 0


def public_names() -> dict[str, Any]:
    """Every public attribute of ``litellm`` (its lazily loaded ones too) and of
    ``litellm.main``, with its value."""
    names = {name for name in dir(litellm) if not name.startswith("_")}
    try:
        from litellm._lazy_imports_registry import LITELLM_ATTRIBUTES
    except ImportError:  # an older LiteLLM loads everything at import
        LITELLM_ATTRIBUTES = {}
    names |= {name for name in LITELLM_ATTRIBUTES if not name.startswith("_")}
    found = {name: getattr(litellm, name) for name in names}
    for name in dir(litellm.main):
        if not name.startswith("_"):
            found.setdefault(name, getattr(litellm.main, name))
    return found


def test_audit_every_public_callable_of_litellm_is_classified() -> None:
    unknown = sorted(
        name for name, value in public_names().items() if classify(name, value) == "unknown"
    )
    assert unknown == [], (
        "LiteLLM has callables capledger has not classified (they are refused at run time): "
        "add each to MODULE_GUARDED, MODULE_REFUSED or MODULE_FREE in _litellm_names.py"
    )
    for name in MODULE_GUARDED:
        assert name in LiteLLMProxy.__dict__, name
    entry_points = {"completion", "acompletion", "responses", "aresponses", "embedding"}
    entry_points |= {"aembedding", "text_completion", "atext_completion", "batch_completion"}
    assert entry_points <= MODULE_GUARDED
    billable = {"image_generation", "aimage_generation", "transcription", "atranscription"}
    billable |= {"speech", "aspeech", "rerank", "arerank", "create_batch", "acreate_batch"}
    billable |= {"create_fine_tuning_job", "anthropic_messages", "ocr", "video_generation"}
    billable |= {"search", "completion_with_retries", "Router"}
    found = public_names()
    assert {name: classify(name, found[name]) for name in billable} == dict.fromkeys(
        billable, "refused"
    )
    for name in ("token_counter", "completion_cost", "get_model_info", "encode", "exceptions"):
        assert classify(name, found[name]) == "free", name


def test_audit_every_public_method_of_a_router_is_classified() -> None:
    router = make_router()
    names = {name for name in dir(router) if not name.startswith("_")}
    try:
        from litellm.router_rust.invoke.endpoints import endpoint_names
    except ImportError:  # a router without a Rust core lists its endpoints in dir()
        endpoint_names = frozenset
    names |= {name for name in endpoint_names() if not name.startswith("_")}
    with warnings.catch_warnings():  # LiteLLM deprecates some of them
        warnings.simplefilter("ignore", DeprecationWarning)
        values = {name: getattr(router, name, None) for name in names}
    unknown = sorted(
        name for name, value in values.items() if classify_router(name, value) == "unknown"
    )
    assert unknown == [], "add each to ROUTER_GUARDED, ROUTER_REFUSED or ROUTER_FREE"
    for name in ROUTER_GUARDED:
        assert name in LiteLLMRouterProxy.__dict__, name
    for name in ("aimage_generation", "atranscription", "aspeech", "arerank", "acreate_batch"):
        assert classify_router(name, values[name]) == "refused", name


# --- what a failure settles -----------------------------------------------------------------------


def status_response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "http://provider/v1/x"))


def caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def failures() -> Iterator[tuple[str, BaseException, bool]]:
    """(label, error, settles)."""
    m, p = "model", "openai"
    yield "bad request", litellm.BadRequestError("no", m, p), False
    yield "auth", litellm.AuthenticationError("no", p, m), False
    yield "permission", litellm.PermissionDeniedError("no", p, m, status_response(403)), False
    yield "not found", litellm.NotFoundError("no", m, p), False
    yield "unprocessable", litellm.UnprocessableEntityError("no", m, p, status_response(422)), False
    yield "429", litellm.RateLimitError("slow down", p, m), False
    yield "context window", litellm.ContextWindowExceededError("long", m, p), False
    yield "429 after retries", litellm.RateLimitError("slow", p, m, num_retries=2), True
    yield "timeout", litellm.Timeout("late", m, p), True
    yield "connection", litellm.APIConnectionError("reset", p, m), True
    yield "500", litellm.InternalServerError("oops", p, m), True
    yield "api error 502", litellm.APIError(502, "bad gateway", p, m), True
    yield "refused", caused(litellm.APIConnectionError("x", p, m), ConnectionRefusedError()), False
    connect = httpx.ConnectError("refused")
    yield "httpx connect", caused(litellm.APIConnectionError("x", p, m), connect), False
    yield "connect timeout", caused(litellm.Timeout("x", m, p), httpx.ConnectTimeout("t")), False
    read = httpx.ReadTimeout("read")
    yield "read timeout", caused(litellm.APIConnectionError("x", p, m), read), True
    yield "dns", socket.gaierror("no such host"), False
    yield "unreadable reply", json.JSONDecodeError("bad", "{", 0), True
    yield "validation", ValueError("bad usage"), True
    yield "cancelled", asyncio.CancelledError(), True
    yield "interrupted", KeyboardInterrupt(), True


@pytest.mark.parametrize(
    ("label", "error", "settles"), list(failures()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_failure_classification(label: str, error: BaseException, settles: bool) -> None:
    assert failure_settles(error) is settles, label


def test_failures_settle_or_release(ledger: Ledger) -> None:
    guarded = wrap(litellm, ledger, scopes=["user:u1"])
    with pytest.raises(litellm.RateLimitError):
        guarded.completion(model=MODEL, messages=MESSAGES, mock_response="litellm.RateLimitError")
    assert latest(ledger).state == "released"
    with pytest.raises(litellm.Timeout):
        guarded.completion(
            model=MODEL, messages=MESSAGES, mock_response="x", mock_timeout=True, timeout=0.01
        )
    hold = latest(ledger)
    assert hold.state == "settled" and hold.settled["usd"] == hold.amounts["usd"]
    assert hold.tags["error"] == "Timeout"
    journal_is_clean(ledger.holds(state=None), ledger.verify())


async def test_a_cancelled_call_settles_its_hold(aledger: AsyncLedger) -> None:
    started = asyncio.Event()

    async def acompletion(**kwargs: Any) -> Any:
        started.set()
        await asyncio.sleep(30)  # the provider is working on it

    guarded = wrap(module_with(acompletion=acompletion), aledger, scopes=["user:u1"])
    closing = HoldClosing(aledger)
    call = asyncio.create_task(guarded.acompletion(model=MODEL, messages=MESSAGES))
    await started.wait()
    call.cancel()
    await asyncio.sleep(0)
    call.cancel()  # cancelled again while it settles: the settle runs to its end anyway
    with pytest.raises(asyncio.CancelledError):
        await call
    hold = await closing.hold()
    assert hold.state == "settled" and hold.settled["usd"] == hold.amounts["usd"]
    assert hold.tags["error"] == "CancelledError"


# --- streams that end without the provider's usage ------------------------------------------------


def chunks_without_usage(**_kwargs: Any) -> Iterator[dict[str, Any]]:
    for word in ("a ", "b ", "c "):
        yield {"choices": [{"index": 0, "delta": {"content": word}}]}


@pytest.mark.parametrize(("settle_incomplete", "whole"), [("held", True), ("observed", False)])
def test_a_stream_without_usage_settles_the_hold(
    ledger: Ledger, settle_incomplete: str, whole: bool
) -> None:
    guarded = wrap(
        module_with(completion=chunks_without_usage),
        ledger,
        scopes=["user:u1"],
        settle_incomplete=settle_incomplete,
    )
    assert len(list(guarded.completion(model=MODEL, messages=MESSAGES, stream=True))) == 3
    stream = guarded.completion(model=MODEL, messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream  # abandoned
    gc.collect()
    completed, abandoned = ledger.holds(state=None)
    for hold in (completed, abandoned):
        assert hold.state == "settled"
        assert (hold.settled["usd"] == hold.amounts["usd"]) is whole
    assert abandoned.tags["stream"] == "abandoned"


def test_async_stream_left_open_when_its_loop_ends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    kept: list[Any] = []

    async def main() -> None:
        ledger = AsyncLedger(url)
        guarded = wrap(litellm, ledger, scopes=["user:u1"])
        stream = await guarded.acompletion(
            model=MODEL, messages=MESSAGES, mock_response="a b c d e f", stream=True
        )
        await anext(aiter(stream))
        kept.append((stream, ledger))  # still referenced after the loop: no finalizer runs

    asyncio.run(main())
    with Ledger(url) as check:
        (hold,) = check.holds(state=None)
        assert hold.state == "settled"
        assert hold.settled["usd"] == hold.amounts["usd"]  # no usage arrived: the whole hold
        assert hold.tags["stream"] == "abandoned"


async def test_async_stream_completed_and_closed(aledger: AsyncLedger) -> None:
    guarded = wrap(litellm, aledger, scopes=["user:u1"])
    stream = await guarded.acompletion(
        model=MODEL,
        messages=MESSAGES,
        mock_response="a b c",
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=20,
    )
    chunks = [chunk async for chunk in stream]
    usage = next(chunk.usage for chunk in reversed(chunks) if getattr(chunk, "usage", None))
    early = await guarded.acompletion(
        model=MODEL, messages=MESSAGES, mock_response="a b c", stream=True, max_tokens=20
    )
    async with early:
        await anext(early)
    completed, closed = await aledger.holds(state=None)
    assert completed.settled["usd"] == pricing.cost(MODEL, usage)
    assert closed.state == "settled" and closed.settled["usd"] == closed.amounts["usd"]
    journal_is_clean(await aledger.holds(state=None), await aledger.verify())


# --- the cap, against a provider over HTTP --------------------------------------------------------

CAP = Decimal("0.05")
FAKE_MODEL = "fake-gpt"
FAKE_EMBEDDER = "fake-embed"


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    rng = random.Random(7)

    def script(path: str, body: dict[str, Any] | None, attempt: int) -> Behaviour | None:
        roll = rng.random()
        if roll < 0.1:
            return Behaviour(status=429)  # not billed: released
        if roll < 0.2:
            return Behaviour(status=500)  # billed: settled at the hold
        if roll < 0.3 and body and body.get("stream"):
            return Behaviour(drop_after=2)  # billed, cut mid-stream
        return None

    prices = {FAKE_MODEL: FakePrices("15", "60"), FAKE_EMBEDDER: FakePrices("400", "0")}
    # The fake does not model the legacy /v1/completions endpoint (a POST it does not model
    # bills other_fee): there a text completion is held, settled at its hold (the reply
    # carries no usage), and billed nothing.
    with FakeProvider(
        prices, want=lambda body: 150 + len(json.dumps(body)) % 200, script=script, other_fee=0
    ) as provider:
        yield provider


def fake_book() -> Pricebook:
    book = Pricebook()
    book.set_price(FAKE_MODEL, input="15", output="60", provider="openai")
    book.set_price(FAKE_EMBEDDER, input="400", output="0", provider="openai")
    return book


def over_http(fake: FakeProvider) -> dict[str, Any]:
    return {"api_base": fake.url + "/v1", "api_key": "x", "max_retries": 0}


def spent(holds: list[Any]) -> Decimal:
    return sum((Decimal(hold.settled["usd"]) for hold in holds if hold.settled), Decimal(0))


class Refusals:
    """Runs one step of a random run against the fake provider: counts the budget's refusals
    and lets the provider's own failures pass (their holds are checked after the step)."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> Refusals:
        return self

    def __exit__(self, exc_type: object, error: BaseException | None, traceback: object) -> bool:
        if isinstance(error, BudgetExceeded):
            self.count += 1
            return True
        if isinstance(error, Exception):
            assert type(error).__module__.startswith(("litellm", "openai")), repr(error)
            return True
        return False  # success, or an interrupt, which ends the test


def test_stream_over_http_hides_the_usage_chunk_it_asked_for(ledger: Ledger) -> None:
    with FakeProvider(want=3) as fake:
        guarded = wrap(litellm, ledger, scopes=["user:u1"])
        http = over_http(fake)
        request = {"model": "openai/" + MODEL, "messages": MESSAGES, "max_tokens": 10}
        chunks = list(guarded.completion(**request, stream=True, **http))
        assert all(chunk.choices for chunk in chunks)  # chunk.choices[0] always works
        asked = list(
            guarded.completion(
                **request, stream=True, stream_options={"include_usage": True}, **http
            )
        )
        assert not asked[-1].choices and asked[-1].usage.completion_tokens == 3
        assert fake.wait_idle()
        holds = ledger.holds(state=None)
        assert [hold.tags["stream"] for hold in holds] == ["completed", "completed"]
        assert spent(holds) == fake.bill  # both settled at the provider's usage


def test_fake_provider_bill_never_passes_the_cap(ledger: Ledger, fake: FakeProvider) -> None:
    ledger.set_limit("tenant:acme", usd=CAP)
    guarded = wrap(litellm, ledger, scopes=["tenant:acme"], policy="clamp", pricebook=fake_book())
    http = over_http(fake)
    rng = random.Random(11)
    model = "openai/" + FAKE_MODEL

    def one(step: int) -> None:
        prompt = random_prompt(rng)
        messages = [{"role": "user", "content": prompt}]
        kind = step % 5
        if kind == 0:
            guarded.completion(model=model, messages=messages, max_tokens=400, **http)
        elif kind == 1:
            guarded.text_completion(model=model, prompt=prompt, max_tokens=300, **http)
        elif kind == 2:
            guarded.embedding(model="openai/" + FAKE_EMBEDDER, input=[prompt], **http)
        elif kind == 3:
            guarded.responses(model=model, input=prompt, max_output_tokens=300, **http)
        else:
            stream = guarded.completion(
                model=model, messages=messages, max_tokens=400, stream=True, **http
            )
            for index, _chunk in enumerate(stream):
                if index == 2:
                    stream.close()  # broken early: the provider billed the whole reply
                    break

    refusals = Refusals()
    for step in range(80):
        with refusals:
            one(step)
        if refusals.count >= 5:
            break
        assert fake.wait_idle()
        assert fake.bill <= CAP
        assert spent(ledger.holds(state=None, limit=1000)) >= fake.bill
    assert refusals.count >= 1, "the budget was never exhausted"
    assert fake.bill > CAP / 2
    journal_is_clean(ledger.holds(state=None, limit=1000), ledger.verify())


async def test_fake_provider_bill_never_passes_the_cap_async(
    aledger: AsyncLedger, fake: FakeProvider
) -> None:
    await aledger.set_limit("tenant:acme", usd=CAP)
    guarded = wrap(litellm, aledger, scopes=["tenant:acme"], policy="clamp", pricebook=fake_book())
    http = over_http(fake)
    rng = random.Random(13)
    model = "openai/" + FAKE_MODEL

    async def one(step: int) -> None:
        prompt = random_prompt(rng)
        messages = [{"role": "user", "content": prompt}]
        kind = step % 4
        if kind == 0:
            await guarded.acompletion(model=model, messages=messages, max_tokens=400, **http)
        elif kind == 1:
            await guarded.aembedding(model="openai/" + FAKE_EMBEDDER, input=prompt, **http)
        elif kind == 2:
            await guarded.aresponses(model=model, input=prompt, max_output_tokens=300, **http)
        else:
            stream = await guarded.acompletion(
                model=model, messages=messages, max_tokens=400, stream=True, **http
            )
            async for index, _chunk in _enumerate(stream):
                if index == 2:
                    await stream.close()
                    break

    refusals = Refusals()
    for step in range(60):
        with refusals:
            await one(step)
        if refusals.count >= 4:
            break
        assert fake.wait_idle()
        assert fake.bill <= CAP
        assert spent(await aledger.holds(state=None, limit=1000)) >= fake.bill
    assert refusals.count >= 1
    journal_is_clean(await aledger.holds(state=None, limit=1000), await aledger.verify())


async def _enumerate(stream: Any) -> Any:
    index = 0
    async for chunk in stream:
        yield index, chunk
        index += 1


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
