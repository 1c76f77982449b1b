"""A fake LLM provider served over real HTTP on loopback, that bills like a provider.

``FakeProvider`` answers the OpenAI and Anthropic endpoints the official SDKs call (chat
completions, Responses, embeddings, Messages; JSON and server-sent events) from a stdlib
``ThreadingHTTPServer`` bound to ``127.0.0.1`` on a free port, and keeps the bill a provider
would send. It knows nothing of capledger's estimator: it is the independent party a test
asks "what did the provider charge?".

Example::

    with FakeProvider(want=5) as fake:
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
        client.close()
        fake.bill    # Decimal('0.000005400'): 16 input tokens x $0.15/M + 5 x $0.60/M

OpenAI clients use ``base_url=fake.url + "/v1"``, Anthropic clients ``base_url=fake.url``;
paths without the ``/v1`` prefix are served too.

How a call is billed (every count an integer, every amount a ``Decimal``):

- **input tokens** = ``ceil(B / 3)`` where ``B`` is the UTF-8 byte length of
  ``json.dumps(parts, separators=(",", ":"), sort_keys=True, ensure_ascii=False)`` and
  ``parts`` is the dict of the request's input-bearing keys that are present, among
  ``INPUT_KEYS`` (messages, input, system, instructions, prompt, tools, functions,
  response_format, text, output_config, output_format): schemas and tools are input, as
  providers bill them. ``count_tokens`` / ``input_tokens`` answer the same figure.
- **output tokens**: the model wants ``want`` visible tokens (each the text ``"tok "``; with
  a JSON schema or JSON object format, the pieces of a small JSON value the schema accepts,
  so the SDKs' ``parse`` helpers work); a reasoning model (OpenAI ``o<digit>...`` and
  ``gpt-5...``, Anthropic requests whose ``thinking`` is not disabled) first spends
  ``reasoning`` hidden tokens. Per choice, ``reasoning_used = min(reasoning, limit)`` and
  ``visible = min(want, limit - reasoning_used)``, where ``limit`` is the request's
  ``max_completion_tokens`` (else ``max_tokens``) / ``max_output_tokens`` / ``max_tokens``,
  or ``default_output_limit`` (32,768) when absent. Output = ``n x (reasoning_used +
  visible)``; the reply is cut (``finish_reason="length"``, ``status="incomplete"``,
  ``stop_reason="max_tokens"``) when ``reasoning + want > limit``. Embeddings have no
  output. Reasoning is reported as ``reasoning_tokens`` (OpenAI) and inside
  ``output_tokens`` (Anthropic: a thinking block with an empty text and a signature).
- **cost** = ``(input - cached - cache_write) x input_rate + cached x cached_rate +
  cache_write x cache_write_rate + output x output_rate``, rates in USD per million tokens,
  rounded up to 1e-9 USD per call. Cached and cache-write tokens come only from the script
  (``Behaviour.cached_tokens`` / ``cache_write_tokens``, capped at the input); a missing
  cached or cache-write rate bills those tokens at the input rate. OpenAI endpoints ignore
  cache writes (OpenAI does not bill them). Anthropic reports ``input_tokens`` without the
  cached and written tokens, as Anthropic does; OpenAI reports them inside the input.
- **tier**: a request with ``service_tier="priority"``, or one that pins no tier (absent or
  ``"auto"``) while the fake's ``project_tier`` is ``"priority"``, is billed at priority
  rates (``FakePrices.priority_*``, else the standard rates times ``priority_multiplier``)
  and reports tier ``priority``; every other request is billed at standard rates and
  reports ``default`` (OpenAI) or ``standard`` (Anthropic).
- The bill is recorded **when processing starts** (body read and validated), for the whole
  generation, before any delay or byte of the reply: a client that times out or hangs up
  mid-stream has still been charged. Validation errors (4xx: bad JSON, no model, unknown
  model, no messages or input, Anthropic without ``max_tokens``), scripted 4xx, 503 and 529
  errors and the free endpoints are never billed. Free: every ``GET`` (``/v1/models``,
  ``/v1/models/{id}``, anything), ``DELETE``/``PUT``/``PATCH``, ``POST
  /v1/messages/count_tokens``, ``POST /v1/responses/input_tokens``, and the posts
  providers do not bill (moderations, file uploads, cancellations, metadata updates,
  conversation items). Any other ``POST`` (images, audio, batch submissions, legacy
  completions, ``responses/compact``, ...) answers a small JSON and bills ``other_fee``.

The input figure, one token per 3 bytes of the request's JSON, stays under capledger's
byte bound (every text's UTF-8 bytes, plus framing), which is what capledger holds for
Anthropic models and for OpenAI models when ``bpe-openai`` is not installed. With
``bpe-openai`` installed, capledger counts OpenAI texts exactly, and English runs about 4
bytes a token: a prompt of more than a few hundred bytes is then billed here *above*
capledger's bound (a 6,000-byte English prompt: 2,048 tokens here, a bound of about 1,600).
A test of a guarded OpenAI client must keep its prompts short or raise
``bytes_per_input_token``; text made of 1- or 2-byte tokens (``"a a a a"``) counts fewer
tokens here than the exact tokenizer does.

Faults come from ``script(path, body, attempt)``, called for every ``POST``: ``path`` is the
canonical path (``/v1/chat/completions``), ``body`` the parsed JSON object (``None`` if the
body is not one), ``attempt`` 1 for the first request to that path since construction or
``reset``. It returns a :class:`Behaviour` or ``None``; fields it leaves ``None`` fall back
to the constructor's knobs. Streams are sent with ``Transfer-Encoding: chunked`` and
``Connection: close``: a ``drop_after`` cut is an unfinished chunked body, which the SDKs
raise as a connection error (``openai.APIConnectionError``, ``httpx2.RemoteProtocolError``
from the Anthropic stream).

With ``omit_usage`` an Anthropic stream has no ``usage`` in ``message_start`` nor in
``message_delta``: the raw stream (``messages.create(stream=True)``) reads it, but the
SDK's ``messages.stream`` helper fails on it (it needs a usage to update).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
import re
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import MappingProxyType
from typing import Any, Final, Literal, cast

__all__ = [
    "BYTES_PER_INPUT_TOKEN",
    "DEFAULT_OTHER_FEE_USD",
    "DEFAULT_OUTPUT_LIMIT_TOKENS",
    "DEFAULT_PRICES",
    "INPUT_KEYS",
    "Behaviour",
    "FakeCall",
    "FakePrices",
    "FakeProvider",
    "Script",
    "input_tokens_of",
]

#: The output limit of a request that sets none (a real provider's default is the model's).
DEFAULT_OUTPUT_LIMIT_TOKENS: Final = 32_768
#: What any POST to an endpoint the fake does not model costs.
DEFAULT_OTHER_FEE_USD: Final = Decimal("0.04")
#: The request keys whose JSON counts as input (see the module docstring).
INPUT_KEYS: Final = (
    "messages",
    "input",
    "system",
    "instructions",
    "prompt",
    "tools",
    "functions",
    "response_format",
    "text",
    "output_config",
    "output_format",
)
#: The default of ``FakeProvider(bytes_per_input_token=...)``.
BYTES_PER_INPUT_TOKEN: Final = 3
VISIBLE_TOKEN_TEXT: Final = "tok "
#: Limits on what the fake accepts, so a runaway test fails instead of eating the machine.
MAX_BODY_BYTES: Final = 64 * 1024 * 1024
MAX_CHOICES: Final = 128
MAX_TOKENS_PER_CALL: Final = 10_000_000
#: How long ``close`` waits for each connection's thread once its socket is shut.
CLOSE_JOIN_TIMEOUT_S: Final = 5.0

_NANO_USD: Final = Decimal("1e-9")
_PER_MILLION: Final = Decimal(1_000_000)
_DATED_SUFFIX: Final = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_OPENAI_REASONING: Final = re.compile(r"^(o\d|gpt-5)")
_FREE_POSTS: Final = frozenset({"/v1/messages/count_tokens", "/v1/responses/input_tokens"})
#: Other posts providers do not bill: moderation, uploads, cancellations, metadata updates,
#: conversation items. Answered with a small JSON, never billed.
_FREE_ACTIONS: Final = re.compile(
    r"/v1/(?:moderations|files|uploads(?:/[\w-]+/(?:parts|complete|cancel))?"
    r"|(?:batches|fine_tuning/jobs|responses|messages/batches)/[\w-]+/(?:cancel|pause|resume)"
    r"|chat/completions/[\w-]+|conversations(?:/[\w-]+(?:/items)?)?)"
)
_BILLED_POSTS: Final = frozenset(
    {"/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages"}
)
#: A client that hangs up or times out shows as one of these (all OSError) on a write.
_CONNECTION_ERRORS: Final = (BrokenPipeError, ConnectionError, TimeoutError, OSError)
_EMBEDDING: Final = (0.125, -0.25, 0.5, 0.0)

RateLike = Decimal | str | int
Count = int | Callable[[dict[str, Any]], int]


def _rate(name: str, value: RateLike) -> Decimal:
    rate = Decimal(value)
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"FakePrices.{name} must be a finite rate >= 0, got {value!r}")
    return rate


def _optional_rate(name: str, value: RateLike | None) -> Decimal | None:
    return None if value is None else _rate(name, value)


@dataclass(frozen=True, slots=True, init=False)
class FakePrices:
    """Rates of one model, in USD per million tokens (``str`` and ``int`` are accepted).

    Args:
        input: rate of input tokens.
        output: rate of output tokens (reasoning included).
        cached_input: rate of cached (cache-read) input tokens; ``None``: the input rate.
        cache_write: rate of cache-write input tokens (Anthropic); ``None``: the input rate.
        priority_multiplier: factor on every rate at priority tier when no explicit priority
            rate is given (1: priority costs what standard does).
        priority_input: explicit priority input rate.
        priority_output: explicit priority output rate.
        priority_cached_input: explicit priority cached-input rate.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None
    cache_write: Decimal | None
    priority_multiplier: Decimal
    priority_input: Decimal | None
    priority_output: Decimal | None
    priority_cached_input: Decimal | None

    def __init__(
        self,
        input: RateLike,
        output: RateLike,
        cached_input: RateLike | None = None,
        cache_write: RateLike | None = None,
        *,
        priority_multiplier: RateLike = 1,
        priority_input: RateLike | None = None,
        priority_output: RateLike | None = None,
        priority_cached_input: RateLike | None = None,
    ) -> None:
        setter = object.__setattr__
        setter(self, "input", _rate("input", input))
        setter(self, "output", _rate("output", output))
        setter(self, "cached_input", _optional_rate("cached_input", cached_input))
        setter(self, "cache_write", _optional_rate("cache_write", cache_write))
        setter(self, "priority_multiplier", _rate("priority_multiplier", priority_multiplier))
        setter(self, "priority_input", _optional_rate("priority_input", priority_input))
        setter(self, "priority_output", _optional_rate("priority_output", priority_output))
        setter(
            self,
            "priority_cached_input",
            _optional_rate("priority_cached_input", priority_cached_input),
        )

    def rates(self, *, priority: bool) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """``(input, output, cached_input, cache_write)`` per million tokens at a tier.

        A missing cached or cache-write rate is the input rate of the same tier.
        """
        factor = self.priority_multiplier if priority else Decimal(1)
        input_rate = self.input * factor
        output_rate = self.output * factor
        if priority and self.priority_input is not None:
            input_rate = self.priority_input
        if priority and self.priority_output is not None:
            output_rate = self.priority_output
        cached = input_rate if self.cached_input is None else self.cached_input * factor
        if priority and self.priority_cached_input is not None:
            cached = self.priority_cached_input
        write = input_rate if self.cache_write is None else self.cache_write * factor
        return input_rate, output_rate, cached, write


#: genai-prices (provider openai / anthropic, standard tier, with OpenAI's priority rates).
DEFAULT_PRICES: Final[Mapping[str, FakePrices]] = MappingProxyType(
    {
        "gpt-4o-mini": FakePrices(
            "0.15",
            "0.60",
            "0.075",
            priority_input="0.25",
            priority_output="1.00",
            priority_cached_input="0.125",
        ),
        "gpt-4.1-nano": FakePrices(
            "0.10",
            "0.40",
            "0.025",
            priority_input="0.20",
            priority_output="0.80",
            priority_cached_input="0.05",
        ),
        "o4-mini": FakePrices(
            "1.10",
            "4.40",
            "0.275",
            priority_input="2.00",
            priority_output="8.00",
            priority_cached_input="0.50",
        ),
        "text-embedding-3-small": FakePrices("0.02", "0"),
        "claude-haiku-4-5": FakePrices("1", "5", "0.10", "1.25"),
        "claude-sonnet-4-5": FakePrices("3", "15", "0.30", "3.75"),
    }
)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What one request should suffer; every field left ``None`` keeps the default.

    Args:
        status: answer this HTTP error status with a provider-shaped JSON error.
        billed: whether that error is billed (default: ``False`` for 4xx, 503 and 529,
            ``True`` for other 5xx, billed as the full generation).
        delay_s: sleep this long before answering (after billing).
        drop_after: streams: write this many content events, then close the connection
            without finishing the body; JSON: close without answering.
        omit_usage: complete normally but report no usage at all.
        want: visible tokens the model wants.
        reasoning: hidden reasoning tokens a reasoning model spends first.
        cached_tokens: input tokens read from the prompt cache.
        cache_write_tokens: input tokens written to the prompt cache (Anthropic).
    """

    status: int | None = None
    billed: bool | None = None
    delay_s: float | None = None
    drop_after: int | None = None
    omit_usage: bool | None = None
    want: int | None = None
    reasoning: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


#: ``(path, body, attempt) -> Behaviour | None``; see :class:`FakeProvider`.
Script = Callable[[str, dict[str, Any] | None, int], Behaviour | None]


@dataclass(frozen=True, slots=True)
class FakeCall:
    """One request the fake received, as it stood when ``FakeProvider.calls`` was read.

    ``status`` is the HTTP status sent (0: the connection was closed without one);
    ``usage`` is the provider-shaped usage of the reply (kept even when ``omit_usage`` hid
    it from the client); ``completed`` says the whole reply was handed to the socket;
    ``output_tokens`` includes reasoning.
    """

    path: str
    method: str
    body: Any
    status: int
    billed: Decimal
    model: str | None
    usage: dict[str, Any]
    streamed: bool
    completed: bool
    attempt: int
    service_tier: str | None
    input_tokens: int
    output_tokens: int


@dataclass(slots=True)
class _Record:
    path: str
    method: str
    body: Any
    attempt: int
    generation: int
    status: int = 0
    billed: Decimal = Decimal(0)
    model: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    streamed: bool = False
    completed: bool = False
    service_tier: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    def snapshot(self) -> FakeCall:
        return FakeCall(
            path=self.path,
            method=self.method,
            body=self.body,
            status=self.status,
            billed=self.billed,
            model=self.model,
            usage=json.loads(json.dumps(self.usage)),
            streamed=self.streamed,
            completed=self.completed,
            attempt=self.attempt,
            service_tier=self.service_tier,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
        )


@dataclass(frozen=True, slots=True)
class _Knobs:
    status: int | None
    billed: bool | None
    delay_s: float
    drop_after: int | None
    omit_usage: bool
    want: int
    reasoning: int
    cached_tokens: int
    cache_write_tokens: int


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything one billed generation is: counts, text, tier and cost."""

    model: str
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int  # per choice
    pieces: tuple[str, ...]  # visible pieces written, per choice
    choices: int
    truncated: bool
    priority: bool
    thinking: bool
    cost: Decimal

    @property
    def visible_tokens(self) -> int:
        return len(self.pieces)

    @property
    def output_tokens(self) -> int:
        return self.choices * (self.reasoning_tokens + self.visible_tokens)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def input_tokens_of(body: Mapping[str, Any], bytes_per_token: int = BYTES_PER_INPUT_TOKEN) -> int:
    """The fake's input token count of a request (see the module docstring)."""
    parts = {key: body[key] for key in INPUT_KEYS if key in body}
    encoded = json.dumps(parts, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return -(-len(encoded.encode("utf-8")) // bytes_per_token)  # exact integer ceiling


def _round_up(value: Decimal) -> Decimal:
    return value.quantize(_NANO_USD, rounding=ROUND_CEILING)


def _cost(
    prices: FakePrices,
    *,
    priority: bool,
    input_tokens: int,
    cached_tokens: int,
    cache_write_tokens: int,
    output_tokens: int,
) -> Decimal:
    input_rate, output_rate, cached_rate, write_rate = prices.rates(priority=priority)
    with localcontext() as context:
        context.prec = 60  # exact for any count below MAX_TOKENS_PER_CALL
        plain = input_tokens - cached_tokens - cache_write_tokens
        total = (
            plain * input_rate
            + cached_tokens * cached_rate
            + cache_write_tokens * write_rate
            + output_tokens * output_rate
        ) / _PER_MILLION
        return _round_up(total)


def _example(schema: Any, definitions: Mapping[str, Any], depth: int = 0) -> Any:
    """A small JSON value that a JSON schema accepts (for structured outputs)."""
    if depth > 32 or not isinstance(schema, Mapping):
        return None
    reference = schema.get("$ref")
    if isinstance(reference, str):
        return _example(definitions.get(reference.rsplit("/", 1)[-1]), definitions, depth + 1)
    if "const" in schema:
        return schema["const"]
    choices = schema.get("enum")
    if isinstance(choices, list) and choices:
        return choices[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [option for option in options if option.get("type") != "null"] or options
            return _example(usable[0], definitions, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((name for name in kind if name != "null"), None)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: _example(sub, definitions, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        item = _example(schema.get("items"), definitions, depth + 1)
        return [item] * int(schema.get("minItems") or 0)
    if kind == "string":
        formats = {"date-time": "2025-01-01T00:00:00Z", "date": "2025-01-01", "uuid": ""}
        text = formats.get(str(schema.get("format")), "tok")
        return text.ljust(int(schema.get("minLength") or 0), "x")
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        start = 0 if low is None else math.ceil(low)
        return start + 1 if "exclusiveMinimum" in schema and low is not None else start
    if kind == "boolean":
        return False
    return None


def _json_schema_text(body: Mapping[str, Any]) -> str | None:
    """The JSON document a structured-output request must get back, else ``None``."""
    format_spec: Any = None
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        format_spec = response_format
        if isinstance(response_format.get("json_schema"), Mapping):
            format_spec = {"type": "json_schema", **response_format["json_schema"]}
    for outer, inner in (("text", "format"), ("output_config", "format")):
        holder = body.get(outer)
        if isinstance(holder, Mapping) and isinstance(holder.get(inner), Mapping):
            format_spec = holder[inner]
    if isinstance(body.get("output_format"), Mapping):
        format_spec = body["output_format"]
    if not isinstance(format_spec, Mapping):
        return None
    if format_spec.get("type") == "json_object":
        return "{}"
    if format_spec.get("type") != "json_schema":
        return None
    schema = format_spec.get("schema")
    if not isinstance(schema, Mapping):
        return "{}"
    definitions = schema.get("$defs") or schema.get("definitions") or {}
    return json.dumps(_example(schema, definitions), separators=(",", ":"))


def _pieces(body: Mapping[str, Any], want: int) -> list[str]:
    """The ``want`` visible tokens' texts: ``"tok "`` each, or a JSON document cut up."""
    document = _json_schema_text(body)
    if document is None:
        return [VISIBLE_TOKEN_TEXT] * want
    if want == 0:
        return []
    size = len(document)
    return [document[index * size // want : (index + 1) * size // want] for index in range(want)]


def _count(name: str, value: object, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _BadRequest(400, f"{name} must be an integer >= {low}, got {value!r}")
    if value > MAX_TOKENS_PER_CALL:
        raise _BadRequest(400, f"{name} must be at most {MAX_TOKENS_PER_CALL}")
    return value


def _check_knob(name: str, value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_TOKENS_PER_CALL
    ):
        raise ValueError(f"{name} must be an integer in [0, {MAX_TOKENS_PER_CALL}], got {value!r}")
    return value


class _Server(ThreadingHTTPServer):
    """The HTTP server; tracks every connection and its thread so ``close`` can end them."""

    daemon_threads = True
    block_on_close = False
    # Tests open many connections at once; the default backlog (5) would make the kernel
    # drop SYNs and a client wait a second to retry.
    request_queue_size = 1024
    timeout = 0  # handle_request is only called once the listening socket is readable

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.tracking_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn); loopback needs no name.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="capledger-fake-provider-connection",
            daemon=True,
        )
        with self.tracking_lock:
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # the connection's own failure; the server carries on
            self.handle_error(request, client_address)
        finally:
            with self.tracking_lock:
                self.connections.discard(request)
                self.threads.discard(threading.current_thread())
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up is an expected event here, not an error worth a traceback.
        import sys  # noqa: PLC0415 - only on the error path

        error = sys.exc_info()[1]
        if isinstance(error, _CONNECTION_ERRORS):
            return
        super().handle_error(request, client_address)

    def end_connections(self) -> list[threading.Thread]:
        """Shut every open connection (idle keep-alive ones too); their threads to join."""
        with self.tracking_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            return list(self.threads)


class FakeProvider:
    """A fake OpenAI + Anthropic provider on ``127.0.0.1``, started on construction.

    Args:
        prices: model name -> rates (default ``DEFAULT_PRICES``); a model not listed gets a
            404 and is not billed. A dated name (``gpt-4o-mini-2024-07-18``,
            ``claude-haiku-4-5-20251001``) uses its undated entry.
        want: visible tokens the model wants, or a function of the request body.
        reasoning: hidden tokens a reasoning model spends first, or a function of the body.
        script: ``(path, body, attempt) -> Behaviour | None``, per request.
        other_fee: what a POST to an unmodelled endpoint costs.
        project_tier: the tier of requests that pin none (``"default"`` or ``"priority"``).
        default_output_limit: the output limit of a request that sets no max tokens.
        bytes_per_input_token: the divisor of the input formula (3; see the module
            docstring for when a larger one is needed).
        delay_s, drop_after, omit_usage, cached_tokens, cache_write_tokens: defaults of the
            same :class:`Behaviour` fields.
    """

    def __init__(
        self,
        prices: Mapping[str, FakePrices] | None = None,
        want: Count = 5,
        reasoning: Count = 0,
        script: Script | None = None,
        *,
        other_fee: RateLike = DEFAULT_OTHER_FEE_USD,
        project_tier: Literal["default", "priority"] = "default",
        default_output_limit: int = DEFAULT_OUTPUT_LIMIT_TOKENS,
        bytes_per_input_token: int = BYTES_PER_INPUT_TOKEN,
        delay_s: float = 0.0,
        drop_after: int | None = None,
        omit_usage: bool = False,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> None:
        self.prices: Mapping[str, FakePrices] = dict(DEFAULT_PRICES if prices is None else prices)
        if not callable(want):
            _check_knob("want", want)
        if not callable(reasoning):
            _check_knob("reasoning", reasoning)
        if project_tier not in ("default", "priority"):
            raise ValueError(f"project_tier must be 'default' or 'priority', not {project_tier!r}")
        self.want = want
        self.reasoning = reasoning
        self.script = script
        self.other_fee = _rate("other_fee", other_fee)
        self.project_tier = project_tier
        self.default_output_limit = _check_knob("default_output_limit", default_output_limit)
        if _check_knob("bytes_per_input_token", bytes_per_input_token) < 1:
            raise ValueError("bytes_per_input_token must be >= 1")
        self.bytes_per_input_token = bytes_per_input_token
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s!r}")
        self.delay_s = float(delay_s)
        self.drop_after = None if drop_after is None else _check_knob("drop_after", drop_after)
        self.omit_usage = bool(omit_usage)
        self.cached_tokens = _check_knob("cached_tokens", cached_tokens)
        self.cache_write_tokens = _check_knob("cache_write_tokens", cache_write_tokens)
        self._lock = threading.Lock()
        self._records: list[_Record] = []
        self._generation = 0  # bumped by reset: a reply in flight then bills nothing
        self._bill = Decimal(0)
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._attempts: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._stopping = threading.Event()
        self._server = _Server(self)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        # serve_forever polls for its stop flag; a socket pair wakes our loop at once, so
        # close() takes no polling interval (tests open and close one fake each).
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(
            target=self._serve, name="capledger-fake-provider", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_reader:
                        return
                    self._server.handle_request()  # ready: accepts without waiting

    def __enter__(self) -> FakeProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<FakeProvider {self.url} {state} bill={self.bill}>"

    @property
    def bill(self) -> Decimal:
        """Total USD billed since construction or the last ``reset``."""
        with self._lock:
            return self._bill

    @property
    def calls(self) -> list[FakeCall]:
        """A snapshot of every request received since construction or the last ``reset``."""
        with self._lock:
            return [record.snapshot() for record in self._records]

    def reset(self) -> None:
        """Forget the calls, the bill and the attempt counts (replies in flight included)."""
        with self._lock:
            self._records = []
            self._generation += 1
            self._bill = Decimal(0)
            self._attempts = {}

    def wait_idle(self, timeout_s: float = CLOSE_JOIN_TIMEOUT_S) -> bool:
        """Wait until no request is being answered; ``False`` if ``timeout_s`` passed first.

        A client can finish (or give up) before the fake has finished writing: read
        ``calls`` after this to see every reply's final ``completed``.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout_s)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def close(self) -> None:
        """Stop serving, shut every connection and join the server's threads."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake_writer.send(b"x")
        self._thread.join(CLOSE_JOIN_TIMEOUT_S)
        self._server.server_close()
        self._wake_reader.close()
        self._wake_writer.close()
        for thread in self._server.end_connections():
            thread.join(CLOSE_JOIN_TIMEOUT_S)

    # -- bookkeeping used by the handler -------------------------------------------------

    def _begin(self, path: str, method: str, body: Any) -> _Record:
        with self._lock:
            attempt = self._attempts.get(path, 0) + 1
            self._attempts[path] = attempt
            record = _Record(
                path=path, method=method, body=body, attempt=attempt, generation=self._generation
            )
            self._records.append(record)
            return record

    def _charge(self, record: _Record, amount: Decimal) -> None:
        with self._lock:
            record.billed = amount
            if record.generation == self._generation:
                self._bill += amount

    def _update(self, record: _Record, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(record, name, value)

    def _next_id(self) -> int:
        return next(self._ids)

    def _knobs(self, path: str, body: dict[str, Any] | None, attempt: int) -> _Knobs:
        behaviour = Behaviour()
        if self.script is not None:
            behaviour = self.script(path, body, attempt) or behaviour
        request = body or {}

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        want = behaviour.want
        if want is None:
            want = self.want(request) if callable(self.want) else self.want
        reasoning = behaviour.reasoning
        if reasoning is None:
            reasoning = self.reasoning(request) if callable(self.reasoning) else self.reasoning
        status = behaviour.status
        if status is not None and (isinstance(status, bool) or status not in range(400, 600)):
            raise ValueError(f"Behaviour.status must be an HTTP error status, got {status!r}")
        delay_s = float(pick(behaviour.delay_s, self.delay_s))
        if not 0 <= delay_s < math.inf:
            raise ValueError(f"delay_s must be >= 0, got {delay_s!r}")
        drop_after = pick(behaviour.drop_after, self.drop_after)
        return _Knobs(
            status=status,
            billed=behaviour.billed,
            delay_s=delay_s,
            drop_after=None if drop_after is None else _check_knob("drop_after", drop_after),
            omit_usage=bool(pick(behaviour.omit_usage, self.omit_usage)),
            want=_check_knob("want", want),
            reasoning=_check_knob("reasoning", reasoning),
            cached_tokens=_check_knob(
                "cached_tokens", pick(behaviour.cached_tokens, self.cached_tokens)
            ),
            cache_write_tokens=_check_knob(
                "cache_write_tokens", pick(behaviour.cache_write_tokens, self.cache_write_tokens)
            ),
        )

    def _prices_of(self, model: str) -> FakePrices | None:
        found = self.prices.get(model)
        if found is None:
            undated = _DATED_SUFFIX.sub("", model)
            found = self.prices.get(undated)
        return found

    def _plan(self, path: str, body: dict[str, Any], knobs: _Knobs) -> _Plan:
        """Validate a billed request and decide its whole generation (raises _BadRequest)."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _BadRequest(400, "you must provide a model parameter")
        prices = self._prices_of(model)
        if prices is None:
            raise _BadRequest(404, f"The model `{model}` does not exist")
        anthropic = path == "/v1/messages"
        choices = 1
        thinking = False
        if path == "/v1/chat/completions":
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise _BadRequest(400, "messages must be a non-empty list")
            choices = _count("n", body.get("n", 1), low=1)
            if choices > MAX_CHOICES:
                raise _BadRequest(400, f"n must be at most {MAX_CHOICES}")
            limit_value = body.get("max_completion_tokens")
            if limit_value is None:
                limit_value = body.get("max_tokens")
        elif path == "/v1/responses":
            if not any(
                body.get(key) is not None
                for key in ("input", "prompt", "previous_response_id", "conversation")
            ):
                raise _BadRequest(400, "input is required")
            limit_value = body.get("max_output_tokens")
        elif path == "/v1/embeddings":
            embedded = body.get("input")
            if not isinstance(embedded, str | list) or not embedded:
                raise _BadRequest(400, "input must be a non-empty string or list")
            limit_value = 0
        else:
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise _BadRequest(400, "messages: field required")
            if body.get("max_tokens") is None:
                raise _BadRequest(400, "max_tokens: field required")
            limit_value = body["max_tokens"]
            thinking_config = body.get("thinking")
            if isinstance(thinking_config, Mapping):
                thinking = thinking_config.get("type") not in (None, "disabled")
                budget = thinking_config.get("budget_tokens")
                if thinking_config.get("type") == "enabled":
                    budget = _count("thinking.budget_tokens", budget, low=1)
                    if budget >= _count("max_tokens", limit_value, low=1):
                        raise _BadRequest(
                            400, "max_tokens must be greater than thinking.budget_tokens"
                        )
        limit = (
            self.default_output_limit
            if limit_value is None
            else _count("max tokens", limit_value, low=1 if path != "/v1/embeddings" else 0)
        )
        reasoning_model = thinking or (not anthropic and bool(_OPENAI_REASONING.match(model)))
        if path == "/v1/embeddings":
            reasoning_model = False
        wanted = 0 if path == "/v1/embeddings" else knobs.want
        reasoning = min(knobs.reasoning, limit) if reasoning_model else 0
        visible = min(wanted, limit - reasoning)
        pieces = tuple(_pieces(body, wanted)[:visible])
        input_tokens = input_tokens_of(body, self.bytes_per_input_token)
        cached = min(knobs.cached_tokens, input_tokens)
        written = min(knobs.cache_write_tokens, input_tokens - cached) if anthropic else 0
        requested_tier = body.get("service_tier")
        priority = requested_tier == "priority" or (
            requested_tier in (None, "auto") and self.project_tier == "priority"
        )
        output = choices * (reasoning + len(pieces))
        cost = _cost(
            prices,
            priority=priority,
            input_tokens=input_tokens,
            cached_tokens=cached,
            cache_write_tokens=written,
            output_tokens=output,
        )
        return _Plan(
            model=model,
            input_tokens=input_tokens,
            cached_tokens=cached,
            cache_write_tokens=written,
            reasoning_tokens=reasoning,
            pieces=pieces,
            choices=choices,
            truncated=(knobs.reasoning if reasoning_model else 0) + wanted > limit,
            priority=priority,
            thinking=thinking,
            cost=cost,
        )


# -- reply bodies (pure) ------------------------------------------------------------------


def _openai_tier(plan: _Plan) -> str:
    return "priority" if plan.priority else "default"


def _chat_usage(plan: _Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": plan.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": plan.choices * plan.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _responses_usage(plan: _Plan) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {"cached_tokens": plan.cached_tokens},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }


def _anthropic_usage(plan: _Plan) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens - plan.cached_tokens - plan.cache_write_tokens,
        "cache_creation_input_tokens": plan.cache_write_tokens,
        "cache_read_input_tokens": plan.cached_tokens,
        "output_tokens": plan.output_tokens,
        "service_tier": "priority" if plan.priority else "standard",
    }


def _embeddings_usage(plan: _Plan) -> dict[str, Any]:
    return {"prompt_tokens": plan.input_tokens, "total_tokens": plan.input_tokens}


def _usage(path: str, plan: _Plan) -> dict[str, Any]:
    makers = {
        "/v1/chat/completions": _chat_usage,
        "/v1/responses": _responses_usage,
        "/v1/embeddings": _embeddings_usage,
        "/v1/messages": _anthropic_usage,
    }
    return makers[path](plan)


def _finish_reason(plan: _Plan) -> str:
    return "length" if plan.truncated else "stop"


def _chat_json(plan: _Plan, ident: str, created: int, omit_usage: bool) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": plan.model,
        "service_tier": _openai_tier(plan),
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": index,
                "message": {
                    "role": "assistant",
                    "content": plan.text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": _finish_reason(plan),
            }
            for index in range(plan.choices)
        ],
        "usage": None if omit_usage else _chat_usage(plan),
    }


_Event = tuple[Literal["head", "content", "tail"], bytes]


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event is not None else ""
    return f"{prefix}data: {payload}\n\n".encode()


def _chat_events(
    plan: _Plan, ident: str, created: int, body: Mapping[str, Any], omit_usage: bool
) -> Iterator[_Event]:
    options = body.get("stream_options")
    include_usage = (
        isinstance(options, Mapping) and options.get("include_usage") is True and not omit_usage
    )

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "service_tier": _openai_tier(plan),
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if include_usage:
            data["usage"] = None
        return data

    def choice(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    for index in range(plan.choices):
        opening = {"role": "assistant", "content": "", "refusal": None}
        yield ("head", _sse(chunk([choice(index, opening, None)])))
    for index in range(plan.choices):
        yield from (
            ("content", _sse(chunk([choice(index, {"content": piece}, None)])))
            for piece in plan.pieces
        )
    for index in range(plan.choices):
        yield ("tail", _sse(chunk([choice(index, {}, _finish_reason(plan))])))
    if include_usage:
        final = chunk([])
        final["usage"] = _chat_usage(plan)
        yield ("tail", _sse(final))
    yield ("tail", _sse("[DONE]"))


def _responses_object(
    plan: _Plan,
    ident: str,
    created: int,
    body: Mapping[str, Any],
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    text_config = body.get("text") if isinstance(body.get("text"), Mapping) else None
    return {
        "id": ident,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": ({"reason": "max_output_tokens"} if status == "incomplete" else None),
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": _openai_tier(plan),
        "store": True,
        "temperature": 1.0,
        "text": text_config or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _responses_items(plan: _Plan, ident: int, *, done: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if plan.reasoning_tokens:
        items.append({"type": "reasoning", "id": f"rs_fake{ident}", "summary": []})
    status = "incomplete" if plan.truncated else "completed"
    items.append(
        {
            "type": "message",
            "id": f"msg_fake{ident}",
            "status": status if done else "in_progress",
            "role": "assistant",
            "content": ([_output_text(plan.text)] if done else []),
        }
    )
    return items


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _responses_json(
    plan: _Plan, ident: int, created: int, body: Mapping[str, Any], omit_usage: bool
) -> dict[str, Any]:
    return _responses_object(
        plan,
        f"resp_fake{ident}",
        created,
        body,
        status="incomplete" if plan.truncated else "completed",
        output=_responses_items(plan, ident, done=True),
        usage=None if omit_usage else _responses_usage(plan),
    )


def _responses_events(
    plan: _Plan, ident: int, created: int, body: Mapping[str, Any], omit_usage: bool
) -> Iterator[_Event]:
    sequence = itertools.count(0)
    response_id = f"resp_fake{ident}"
    message_id = f"msg_fake{ident}"

    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    pending = _responses_object(
        plan, response_id, created, body, status="in_progress", output=[], usage=None
    )
    yield ("head", event("response.created", response=pending))
    yield ("head", event("response.in_progress", response=pending))
    final_items = _responses_items(plan, ident, done=True)
    message_index = len(final_items) - 1
    if plan.reasoning_tokens:
        reasoning_item = final_items[0]
        yield ("head", event("response.output_item.added", output_index=0, item=reasoning_item))
        yield ("head", event("response.output_item.done", output_index=0, item=reasoning_item))
    opened = _responses_items(plan, ident, done=False)[-1]
    where = {"item_id": message_id, "output_index": message_index, "content_index": 0}
    yield ("head", event("response.output_item.added", output_index=message_index, item=opened))
    yield ("head", event("response.content_part.added", **where, part=_output_text("")))
    yield from (
        ("content", event("response.output_text.delta", **where, delta=piece, logprobs=[]))
        for piece in plan.pieces
    )
    yield ("tail", event("response.output_text.done", **where, text=plan.text, logprobs=[]))
    yield ("tail", event("response.content_part.done", **where, part=_output_text(plan.text)))
    yield (
        (
            "tail",
            event(
                "response.output_item.done",
                output_index=message_index,
                item=final_items[-1],
            ),
        )
    )
    final = _responses_json(plan, ident, created, body, omit_usage)
    kind = "response.incomplete" if plan.truncated else "response.completed"
    yield ("tail", event(kind, response=final))


def _stop_reason(plan: _Plan) -> str:
    return "max_tokens" if plan.truncated else "end_turn"


def _anthropic_content(plan: _Plan) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if plan.thinking and plan.reasoning_tokens:
        content.append({"type": "thinking", "thinking": "", "signature": "fake-signature"})
    if plan.pieces or not plan.thinking:
        content.append({"type": "text", "text": plan.text, "citations": None})
    return content


def _anthropic_json(plan: _Plan, ident: int, omit_usage: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": f"msg_fake{ident}",
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": _anthropic_content(plan),
        "stop_reason": _stop_reason(plan),
        "stop_sequence": None,
    }
    if not omit_usage:
        message["usage"] = _anthropic_usage(plan)
    return message


def _anthropic_events(plan: _Plan, ident: int, omit_usage: bool) -> Iterator[_Event]:
    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, **fields}, kind)

    started: dict[str, Any] = {
        "id": f"msg_fake{ident}",
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if not omit_usage:
        # As Anthropic does: the input side is final here, the output count is a placeholder
        # that message_delta replaces with the cumulative total.
        started["usage"] = {**_anthropic_usage(plan), "output_tokens": min(1, plan.output_tokens)}
    yield ("head", event("message_start", message=started))
    index = 0
    if plan.thinking and plan.reasoning_tokens:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        yield ("head", event("content_block_start", index=0, content_block=block))
        signature = {"type": "signature_delta", "signature": "fake-signature"}
        yield ("head", event("content_block_delta", index=0, delta=signature))
        yield ("head", event("content_block_stop", index=0))
        index = 1
    if plan.pieces or not plan.thinking:
        text_block = {"type": "text", "text": "", "citations": None}
        yield ("head", event("content_block_start", index=index, content_block=text_block))
        yield from (
            (
                "content",
                event(
                    "content_block_delta",
                    index=index,
                    delta={"type": "text_delta", "text": piece},
                ),
            )
            for piece in plan.pieces
        )
        yield ("tail", event("content_block_stop", index=index))
    delta: dict[str, Any] = {
        "delta": {"stop_reason": _stop_reason(plan), "stop_sequence": None},
    }
    if not omit_usage:
        usage = _anthropic_usage(plan)
        delta["usage"] = {key: value for key, value in usage.items() if key != "service_tier"}
    yield ("tail", event("message_delta", **delta))
    yield ("tail", event("message_stop"))


def _embeddings_json(plan: _Plan, body: Mapping[str, Any], omit_usage: bool) -> dict[str, Any]:
    embedded = body.get("input")
    count = len(embedded) if isinstance(embedded, list) and embedded else 1
    if isinstance(embedded, list) and embedded and isinstance(embedded[0], int):
        count = 1  # one prompt given as token ids
    vector: Any = list(_EMBEDDING)
    if body.get("encoding_format") == "base64":
        vector = base64.b64encode(struct.pack(f"<{len(_EMBEDDING)}f", *_EMBEDDING)).decode()
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": vector} for index in range(count)
        ],
        "model": plan.model,
        "usage": None if omit_usage else _embeddings_usage(plan),
    }


def _models_json(names: Iterable[str]) -> dict[str, Any]:
    # One shape both SDKs read: OpenAI's list (object/created/owned_by) and Anthropic's
    # page (type/display_name/created_at, has_more).
    models = [
        {
            "id": name,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "capledger-fake",
            "type": "model",
            "display_name": name,
            "created_at": "2023-11-14T22:13:20Z",
        }
        for name in sorted(names)
    ]
    return {
        "object": "list",
        "data": models,
        "has_more": False,
        "first_id": models[0]["id"] if models else None,
        "last_id": models[-1]["id"] if models else None,
    }


_ERROR_TYPES: Final = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "authentication_error"),
    403: ("invalid_request_error", "permission_error"),
    404: ("invalid_request_error", "not_found_error"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_error"),
    500: ("server_error", "api_error"),
    503: ("server_error", "overloaded_error"),
    529: ("server_error", "overloaded_error"),
}


def _error_json(status: int, message: str, *, anthropic: bool, request_id: str) -> dict[str, Any]:
    openai_type, anthropic_type = _ERROR_TYPES.get(
        status, ("invalid_request_error", "invalid_request_error")
    )
    if status >= 500 and status not in _ERROR_TYPES:
        openai_type, anthropic_type = "server_error", "api_error"
    if anthropic:
        return {
            "type": "error",
            "error": {"type": anthropic_type, "message": message},
            "request_id": request_id,
        }
    code = "rate_limit_exceeded" if status == 429 else None
    if status == 404:
        code = "model_not_found"
    return {"error": {"message": message, "type": openai_type, "param": None, "code": code}}


def _billed_by_default(status: int) -> bool:
    return status >= 500 and status not in (503, 529)


def _canonical(path: str) -> str:
    """``/v1/...`` for every path, whether the SDK's base URL ended in ``/v1`` or not."""
    bare = path.split("?", 1)[0].split("#", 1)[0].rstrip("/") or "/"
    if bare == "/v1" or bare.startswith("/v1/"):
        return bare
    return "/v1" + bare if bare != "/" else "/v1"


# -- the HTTP shell -----------------------------------------------------------------------


class _Dropped(Exception):
    """The reply was cut on purpose (``drop_after``) or the fake is closing."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "capledger-fake-provider/1"
    sys_version = ""

    @property
    def fake(self) -> FakeProvider:
        return cast(_Server, self.server).fake

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test's output is not the place for an access log."""

    # -- reading ---------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(64).split(b";", 1)[0].strip()
                try:
                    size = int(line or b"0", 16)
                except ValueError:
                    raise _BadRequest(400, "bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(8192).strip():
                        pass  # trailers
                    return b"".join(parts)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _BadRequest(413, "request body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(8)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest(400, "bad Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        return self.rfile.read(length) if length > 0 else b""

    # -- writing ---------------------------------------------------------------------

    def _request_id(self) -> str:
        return f"req_fake{self.fake._next_id()}"

    def _send_json(
        self, record: _Record | None, status: int, payload: Any, request_id: str | None = None
    ) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        request_id = request_id or self._request_id()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", request_id)
        self.send_header("request-id", request_id)
        if status in (429, 503, 529):
            # Both SDKs honour these: a retrying client waits 10 ms, not seconds.
            self.send_header("retry-after-ms", "10")
            self.send_header("retry-after", "0")
        if self.close_connection:
            self.send_header("Connection", "close")
        if record is not None:
            # Marked before the last write so a client that has the reply sees it complete.
            self.fake._update(record, status=status, completed=True)
        try:
            self.end_headers()
            self.wfile.write(data)
        except _CONNECTION_ERRORS:
            if record is not None:
                self.fake._update(record, completed=False)
            self.close_connection = True

    def _send_error_json(self, record: _Record | None, status: int, message: str) -> None:
        anthropic = record is not None and record.path.startswith("/v1/messages")
        anthropic = anthropic or "anthropic-version" in self.headers
        request_id = self._request_id()
        payload = _error_json(status, message, anthropic=anthropic, request_id=request_id)
        self._send_json(record, status, payload, request_id)

    def _drop(self) -> None:
        """Close the connection without finishing the reply (the client sees a cut body)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _wait(self, delay_s: float) -> None:
        if delay_s > 0 and self.fake._stopping.wait(delay_s):
            raise _Dropped

    def _stream(self, record: _Record, events: Iterator[_Event], drop_after: int | None) -> None:
        """Write SSE events, one chunk each; with ``drop_after``, cut the body short.

        The cut comes after the ``drop_after``-th content event, or before the first closing
        event when the stream has fewer. The last event and the chunked terminator go out in
        one write, after the call is marked completed, so a client never sees the end of a
        stream before the fake does.
        """
        request_id = self._request_id()
        self.close_connection = True
        self.fake._update(record, status=200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.send_header("x-request-id", request_id)
        self.send_header("request-id", request_id)
        content_written = 0
        try:
            self.end_headers()
            pending: bytes | None = None
            for kind, data in events:
                if drop_after is not None and (
                    kind == "tail" or (kind == "content" and content_written >= drop_after)
                ):
                    break
                if pending is not None:
                    self.wfile.write(pending)
                if self.fake._stopping.is_set():
                    raise _Dropped
                pending = b"%x\r\n%s\r\n" % (len(data), data)
                content_written += kind == "content"
            else:
                self.fake._update(record, completed=True)
                self.wfile.write((pending or b"") + b"0\r\n\r\n")
                return
            if pending is not None:
                self.wfile.write(pending)
            self._drop()
        except _CONNECTION_ERRORS:
            self.fake._update(record, completed=False)

    # -- dispatch --------------------------------------------------------------------

    def _tracked(self, answer: Callable[[], None]) -> None:
        self.fake._enter()
        try:
            answer()
        finally:
            self.fake._leave()

    def do_GET(self) -> None:
        """Free: the model list and anything else read-only."""
        self._tracked(self._free_request)

    def do_DELETE(self) -> None:
        """Free, like every request that is not a POST."""
        self._tracked(self._free_request)

    def do_PUT(self) -> None:
        """Free, like every request that is not a POST."""
        self._tracked(self._free_request)

    def do_PATCH(self) -> None:
        """Free, like every request that is not a POST."""
        self._tracked(self._free_request)

    def do_POST(self) -> None:
        """Billed endpoints, free counting endpoints, and the flat fee of the rest."""
        self._tracked(self._post)

    def _free_request(self) -> None:
        path = _canonical(self.path)
        try:
            raw = self._read_body()
        except _BadRequest as error:
            self.close_connection = True
            self._send_error_json(None, error.status, error.message)
            return
        record = self.fake._begin(path, self.command, _parse(raw))
        names = self.fake.prices
        if path == "/v1/models":
            self._send_json(record, 200, _models_json(names))
        elif path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            if self.fake._prices_of(name) is None:
                self._send_error_json(record, 404, f"The model `{name}` does not exist")
            else:
                self._send_json(record, 200, _models_json([name])["data"][0])
        else:
            self._send_json(record, 200, {"object": "fake.free", "path": path})

    def _post(self) -> None:
        path = _canonical(self.path)
        try:
            raw = self._read_body()
        except (_BadRequest, ValueError) as error:
            self.close_connection = True
            status = error.status if isinstance(error, _BadRequest) else 400
            self._send_error_json(None, status, str(error))
            return
        parsed = _parse(raw)
        record = self.fake._begin(path, "POST", parsed)
        body = parsed if isinstance(parsed, dict) else None
        try:
            knobs = self.fake._knobs(path, body, record.attempt)
            if path in _BILLED_POSTS:
                self._billed(record, path, body, knobs)
            elif path in _FREE_POSTS:
                self._count_tokens(record, path, body, knobs)
            elif _FREE_ACTIONS.fullmatch(path):
                self._send_json(record, 200, {"object": "fake.free", "path": path})
            else:
                self._other(record, knobs)
        except _BadRequest as error:
            self._send_error_json(record, error.status, error.message)
        except _Dropped:
            self._drop()
        except Exception as error:  # a bug in a test's callable; say so to the client
            self.close_connection = True
            self._send_error_json(record, 500, f"fake provider failed: {error!r}")

    def _count_tokens(
        self, record: _Record, path: str, body: dict[str, Any] | None, knobs: _Knobs
    ) -> None:
        if knobs.status is not None:  # free: even a "billed" scripted error costs nothing
            self._wait(knobs.delay_s)
            raise _BadRequest(knobs.status, "scripted error")
        self._wait(knobs.delay_s)
        if body is None:
            raise _BadRequest(400, "the body must be a JSON object")
        model = body.get("model")
        if isinstance(model, str):
            self.fake._update(record, model=model)
            if self.fake._prices_of(model) is None:
                raise _BadRequest(404, f"The model `{model}` does not exist")
        tokens = input_tokens_of(body, self.fake.bytes_per_input_token)
        if path == "/v1/responses/input_tokens":
            self._send_json(
                record, 200, {"object": "response.input_tokens", "input_tokens": tokens}
            )
        else:
            self._send_json(record, 200, {"input_tokens": tokens})

    def _other(self, record: _Record, knobs: _Knobs) -> None:
        body = record.body
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            self.fake._update(record, model=body["model"])
        if knobs.status is not None:
            billed = _billed_by_default(knobs.status) if knobs.billed is None else knobs.billed
            if billed:
                self.fake._charge(record, self.fake.other_fee)
            self._wait(knobs.delay_s)
            self._send_error_json(record, knobs.status, "scripted error")
            return
        self.fake._charge(record, self.fake.other_fee)
        self._wait(knobs.delay_s)
        if knobs.drop_after is not None:
            raise _Dropped
        ident = self.fake._next_id()
        payload = {
            "id": f"fake_other_{ident}",
            "object": "fake.other",
            "path": record.path,
            "billed_usd": str(self.fake.other_fee),
        }
        self._send_json(record, 200, payload)

    def _billed(
        self, record: _Record, path: str, body: dict[str, Any] | None, knobs: _Knobs
    ) -> None:
        status = knobs.status
        billed_error = status is not None and (
            _billed_by_default(status) if knobs.billed is None else knobs.billed
        )
        if status is not None and not billed_error:
            if body is not None and isinstance(body.get("model"), str):
                self.fake._update(record, model=body["model"])
            self._wait(knobs.delay_s)
            self._send_error_json(record, status, "scripted error")
            return
        if body is None:
            raise _BadRequest(400, "We could not parse the JSON body of your request.")
        if isinstance(body.get("model"), str):
            self.fake._update(record, model=body["model"])
        plan = self.fake._plan(path, body, knobs)
        streamed = body.get("stream") is True and path != "/v1/embeddings"
        usage = _usage(path, plan)
        tier = "priority" if plan.priority else "default"
        if path == "/v1/messages":
            tier = "priority" if plan.priority else "standard"
        self.fake._update(
            record,
            usage=usage,
            streamed=streamed,
            service_tier=tier,
            input_tokens=plan.input_tokens,
            output_tokens=plan.output_tokens,
        )
        self.fake._charge(record, plan.cost)
        self._wait(knobs.delay_s)
        if status is not None:
            self._send_error_json(record, status, "scripted error")
            return
        ident = self.fake._next_id()
        created = int(time.time())
        if not streamed and knobs.drop_after is not None:
            raise _Dropped
        if path == "/v1/chat/completions":
            chat_id = f"chatcmpl-fake{ident}"
            if streamed:
                events = _chat_events(plan, chat_id, created, body, knobs.omit_usage)
                self._stream(record, events, knobs.drop_after)
            else:
                self._send_json(record, 200, _chat_json(plan, chat_id, created, knobs.omit_usage))
        elif path == "/v1/responses":
            if streamed:
                events = _responses_events(plan, ident, created, body, knobs.omit_usage)
                self._stream(record, events, knobs.drop_after)
            else:
                reply = _responses_json(plan, ident, created, body, knobs.omit_usage)
                self._send_json(record, 200, reply)
        elif path == "/v1/embeddings":
            self._send_json(record, 200, _embeddings_json(plan, body, knobs.omit_usage))
        elif streamed:
            self._stream(record, _anthropic_events(plan, ident, knobs.omit_usage), knobs.drop_after)
        else:
            self._send_json(record, 200, _anthropic_json(plan, ident, knobs.omit_usage))


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
