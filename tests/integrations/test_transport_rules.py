"""The wire guard's pure decisions: routing, what a failure settles, per-call options, SSE."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from capledger.errors import ConfigurationError, InvalidInput
from capledger.integrations import call_options, wrap
from capledger.integrations._calls import CHAT, MESSAGES, RESPONSES
from capledger.integrations._routes import (
    failure_releases,
    options_of,
    route,
    status_releases,
)
from capledger.integrations._sse import EventStream
from capledger.integrations._transport import Exchange
from capledger.integrations._wrap import make_settings


@pytest.mark.parametrize(
    ("method", "path", "family", "kind", "label"),
    [
        ("POST", "/v1/chat/completions", "openai", "priced", "POST chat/completions"),
        ("POST", "/v1/responses", "openai", "priced", "POST responses"),
        ("POST", "/v1/embeddings", "openai", "priced", "POST embeddings"),
        ("POST", "/v1/completions", "openai", "priced", "POST completions"),
        ("POST", "/openai/deployments/gpt4/chat/completions", "openai", "priced", None),
        ("POST", "/v1/responses/input_tokens", "openai", "free", None),
        ("POST", "/v1/responses/resp_1/cancel", "openai", "free", None),
        ("POST", "/v1/moderations", "openai", "free", None),
        ("POST", "/v1/files", "openai", "free", None),
        ("GET", "/v1/models", "openai", "free", None),
        ("DELETE", "/v1/files/file_1", "openai", "free", None),
        ("GET", "/v1/files/file_1/content", "openai", "free", None),
        ("POST", "/v1/images/generations", "openai", "refused", "POST images/generations"),
        ("POST", "/v1/audio/speech", "openai", "refused", None),
        ("POST", "/v1/batches", "openai", "refused", None),
        ("POST", "/v1/responses/compact", "openai", "refused", None),
        ("POST", "/v1/fine_tuning/jobs", "openai", "refused", None),
        ("POST", "/v1/threads/runs", "openai", "refused", None),
        ("POST", "/v1/messages", "anthropic", "priced", "POST messages"),
        ("POST", "/v1/messages/count_tokens", "anthropic", "free", None),
        ("POST", "/v1/messages/batches", "anthropic", "refused", None),
        ("POST", "/v1/complete", "anthropic", "refused", None),
        ("GET", "/v1/models", "anthropic", "free", None),
        # The same path means different things to each API: OpenAI has no /messages.
        ("POST", "/v1/messages", "openai", "refused", None),
        ("POST", "/v1/chat/completions", "anthropic", "refused", None),
    ],
)
def test_routes(method: str, path: str, family: str, kind: str, label: str | None) -> None:
    found = route(method, path, family)  # type: ignore[arg-type]
    assert found.kind == kind
    if label is not None:
        assert found.label == label
    assert (found.endpoint is not None) == (kind == "priced")


def test_route_endpoints_know_their_output_limits() -> None:
    assert route("POST", "/v1/chat/completions", "openai").endpoint is CHAT
    assert route("POST", "/v1/responses", "openai").endpoint is RESPONSES
    assert route("POST", "/v1/messages", "anthropic").endpoint is MESSAGES


class _Named(Exception):
    pass


def _error(name: str) -> BaseException:
    return type(name, (_Named,), {})()


@pytest.mark.parametrize(
    ("name", "releases"),
    [
        ("ConnectError", True),
        ("ConnectTimeout", True),
        ("PoolTimeout", True),
        ("ReadTimeout", False),
        ("WriteTimeout", False),
        ("RemoteProtocolError", False),
        ("ReadError", False),
        ("WriteError", False),
        ("APITimeoutError", False),
    ],
)
def test_only_a_connection_never_made_releases(name: str, releases: bool) -> None:
    assert failure_releases(_error(name)) is releases


def test_cancellation_and_interrupts_settle() -> None:
    import asyncio

    assert not failure_releases(asyncio.CancelledError())
    assert not failure_releases(KeyboardInterrupt())
    assert not failure_releases(TimeoutError())


@pytest.mark.parametrize(
    ("status", "releases"),
    [
        *[(status, True) for status in (400, 401, 404, 413, 422, 429, 503, 529)],
        *[(status, False) for status in (408, 500, 502, 504)],
    ],
)
def test_which_error_replies_release(status: int, releases: bool) -> None:
    assert status_releases(status) is releases


def test_call_options_are_headers() -> None:
    headers = call_options(scopes=["user:a", "feature:b"], tags={"k": 1}, request_id="r")
    assert headers == {
        "capledger-scopes": "user:a,feature:b",
        "capledger-tags": '{"k":1}',
        "capledger-request-id": "r",
    }
    options = options_of(headers)
    nonce = options["capledger_tags"].pop("request_nonce")
    assert len(nonce) == 16
    assert options == {
        "capledger_scopes": ["user:a", "feature:b"],
        "capledger_tags": {"k": 1},
        "capledger_request_id": "r",
    }


def test_each_retry_has_its_own_request_id() -> None:
    first = options_of({"capledger-request-id": "r", "x-stainless-retry-count": "0"})
    second = options_of({"capledger-request-id": "r", "x-stainless-retry-count": "2"})
    assert first["capledger_request_id"] == "r"
    assert second["capledger_request_id"] == "r:retry-2"
    generated = {options_of({})["capledger_request_id"] for _ in range(3)}
    assert len(generated) == 3


def test_bad_call_options_are_refused() -> None:
    with pytest.raises(InvalidInput, match="comma"):
        call_options(scopes=["user:a,b"])
    with pytest.raises(InvalidInput, match="JSON"):
        call_options(tags={"k": object()})
    with pytest.raises(InvalidInput, match="not JSON"):
        options_of({"capledger-tags": "{"})
    with pytest.raises(InvalidInput, match="object"):
        options_of({"capledger-tags": "[1]"})


def test_unguarded_must_be_a_list_of_names() -> None:
    from capledger import Ledger

    with Ledger("memory://") as ledger, pytest.raises(ConfigurationError, match="unguarded"):
        wrap(_fake_openai(), ledger, unguarded="images/generations")  # type: ignore[arg-type]


def _fake_openai() -> object:
    class OpenAI:  # recognised by module and class name only
        __module__ = "openai._client"

    return OpenAI()


def _exchange(caller_wants_usage: bool, settle_incomplete: str = "held") -> Exchange:
    from capledger.integrations._plan import _prepare

    settings = make_settings(
        scopes="user:a",
        policy="raise",
        ttl=60,
        tags=None,
        provider=None,
        pricebook=None,
        default_max_tokens=100,
        units=("usd", "tokens", "requests"),
        settle_incomplete=settle_incomplete,  # type: ignore[arg-type]
    )
    exchange = Exchange(settings, CHAT, "openai", "POST chat/completions", caller_wants_usage)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    exchange.prepared = _prepare(settings, CHAT, {**body, "max_tokens": 100}, "r", {})
    return exchange


def _sse(events: list[object]) -> bytes:
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)


_CHUNK = {"choices": [{"index": 0, "delta": {"content": "tok "}}]}
_USAGE = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}


@pytest.mark.parametrize("caller_wants_usage", [False, True])
@pytest.mark.parametrize("split", [1, 7, 1000])
def test_usage_chunk_is_hidden_unless_asked(caller_wants_usage: bool, split: int) -> None:
    stream = EventStream(_exchange(caller_wants_usage))
    raw = _sse([_CHUNK, _CHUNK, _USAGE]) + b"data: [DONE]\n\n"
    out = b"".join(stream.feed(raw[i : i + split]) for i in range(0, len(raw), split))
    out += stream.flush()
    shown = [line for line in out.split(b"\n\n") if line]
    assert shown[-1] == b"data: [DONE]"
    assert (b'"choices": []' in out) is caller_wants_usage
    assert len(shown) == (4 if caller_wants_usage else 3)
    plan = stream.closing("completed")
    assert plan["usd"] > 0 and plan["tags"]["output_tokens"] == 2


def test_crlf_framed_events_are_read() -> None:
    stream = EventStream(_exchange(False))
    raw = _sse([_CHUNK, _USAGE]).replace(b"\n", b"\r\n")
    assert stream.feed(raw).count(b"data:") == 1
    assert stream.meter.final is not None


def test_a_stream_without_usage_settles_the_hold_unless_observed() -> None:
    held = EventStream(_exchange(False))
    held.feed(_sse([_CHUNK]))
    assert held.closing("abandoned") == {"tags": {"usage": "missing", "stream": "abandoned"}}
    assert held.closing("completed")["tags"]["usage"] == "missing"
    observed = EventStream(_exchange(False, "observed"))
    observed.feed(_sse([_CHUNK]))
    plan = observed.closing("failed")
    assert Decimal(0) < plan["usd"] < observed.exchange.prepared.estimate.worst_case_usd  # type: ignore[union-attr]


def test_replies_settle_or_release() -> None:
    exchange = _exchange(False)
    assert exchange.settle_reply(400, b"{}") is None
    assert exchange.settle_reply(500, b"{}") == {"tags": {"status": 500}}
    assert exchange.settle_reply(200, b"not json")["tags"] == {"usage": "unreadable"}  # type: ignore[index]
    assert exchange.settle_reply(200, b"{}")["tags"] == {"usage": "missing"}  # type: ignore[index]
    reply = json.dumps({"usage": _USAGE["usage"], "service_tier": "default"}).encode()
    settled = exchange.settle_reply(200, reply)
    assert settled is not None and settled["usd"] > 0


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions/.",
        "/v1/chat/completions/..",
        "/v1/responses/./cancel",
        "/v1/uploads/%2e/complete",
    ],
)
def test_a_dot_or_an_encoded_id_is_never_free(path: str) -> None:
    """A front end may resolve ``/x/.`` to ``/x``, a priced endpoint: such ids are refused."""
    assert route("POST", path, "openai").kind == "refused"


@pytest.mark.parametrize(
    "path",
    [
        "/openai/v1/chat/completions",  # Azure's v1 API, OpenAI-compatible providers
        "/v1/account/gateway/openai/chat/completions",  # an AI gateway in front of OpenAI
        "/openai/deployments/gpt4o/chat/completions",
        "/v1/chat/completions/",
    ],
)
def test_base_url_prefixes(path: str) -> None:
    assert route("POST", path, "openai").label == "POST chat/completions"


@pytest.mark.parametrize("ending", [b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\r\n", b"\r\n\n"])
def test_every_blank_line_ends_an_event(ending: bytes) -> None:
    stream = EventStream(_exchange(False))
    line = b"\r\n" if ending.startswith(b"\r\n") else ending[:1]
    raw = b"".join(b"data: " + json.dumps(e).encode() + ending for e in (_CHUNK, _USAGE))
    out = stream.feed(raw.replace(b"data: {", b": a comment" + line + b"data: {"))
    assert stream.meter.final is not None, "the usage event was read"
    assert b'"choices": []' not in out, "and hidden from a caller who did not ask"


def test_a_caller_request_id_gets_a_nonce_per_request() -> None:
    first = options_of({"capledger-request-id": "job-42"})
    second = options_of({"capledger-request-id": "job-42"})
    assert first["capledger_request_id"] == second["capledger_request_id"] == "job-42"
    assert first["capledger_tags"]["request_nonce"] != second["capledger_tags"]["request_nonce"]


@pytest.mark.parametrize(
    "path",
    [
        "/model/anthropic.claude-sonnet-4-5-v1:0/invoke",
        "/model/anthropic.claude-sonnet-4-5-v1:0/invoke-with-response-stream",
        "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5:rawPredict",
    ],
)
def test_bedrock_and_vertex_paths_are_refused(path: str) -> None:
    """Their paths carry the model and Bedrock streams in its own framing: not read yet."""
    assert route("POST", path, "anthropic").kind == "refused"
