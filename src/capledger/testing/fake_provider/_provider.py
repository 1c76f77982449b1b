"""``FakeProvider``: the server on loopback, its life from construction to ``close``, the
bookkeeping of calls and the bill, and the plan of each billed generation."""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import selectors
import socket
import threading
from collections.abc import Mapping
from decimal import Decimal
from http.server import ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Final, Literal

from capledger.testing.fake_provider._calls import (
    BadRequest,
    Behaviour,
    Count,
    FakeCall,
    Knobs,
    Plan,
    Record,
    Script,
    check_knob,
    checked_count,
    visible_pieces,
)
from capledger.testing.fake_provider._handler import CONNECTION_ERRORS, Handler
from capledger.testing.fake_provider._prices import (
    BYTES_PER_INPUT_TOKEN,
    DEFAULT_OTHER_FEE_USD,
    DEFAULT_OUTPUT_LIMIT_TOKENS,
    DEFAULT_PRICES,
    FakePrices,
    RateLike,
    call_cost,
    checked_rate,
    input_tokens_of,
)

MAX_CHOICES: Final = 128
#: How long ``close`` waits for each connection's thread once its socket is shut.
CLOSE_JOIN_TIMEOUT_S: Final = 5.0
_DATED_SUFFIX: Final = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_OPENAI_REASONING: Final = re.compile(r"^(o\d|gpt-5)")


class Server(ThreadingHTTPServer):
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
        super().__init__(("127.0.0.1", 0), Handler)

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
        if isinstance(error, CONNECTION_ERRORS):
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
            check_knob("want", want)
        if not callable(reasoning):
            check_knob("reasoning", reasoning)
        if project_tier not in ("default", "priority"):
            raise ValueError(f"project_tier must be 'default' or 'priority', not {project_tier!r}")
        self.want = want
        self.reasoning = reasoning
        self.script = script
        self.other_fee = checked_rate("other_fee", other_fee)
        self.project_tier = project_tier
        self.default_output_limit = check_knob("default_output_limit", default_output_limit)
        if check_knob("bytes_per_input_token", bytes_per_input_token) < 1:
            raise ValueError("bytes_per_input_token must be >= 1")
        self.bytes_per_input_token = bytes_per_input_token
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s!r}")
        self.delay_s = float(delay_s)
        self.drop_after = None if drop_after is None else check_knob("drop_after", drop_after)
        self.omit_usage = bool(omit_usage)
        self.cached_tokens = check_knob("cached_tokens", cached_tokens)
        self.cache_write_tokens = check_knob("cache_write_tokens", cache_write_tokens)
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._generation = 0  # bumped by reset: a reply in flight then bills nothing
        self._bill = Decimal(0)
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._attempts: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._stopping = threading.Event()
        self._server = Server(self)
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

    def _begin(self, path: str, method: str, body: Any) -> Record:
        with self._lock:
            attempt = self._attempts.get(path, 0) + 1
            self._attempts[path] = attempt
            record = Record(
                path=path, method=method, body=body, attempt=attempt, generation=self._generation
            )
            self._records.append(record)
            return record

    def _charge(self, record: Record, amount: Decimal) -> None:
        with self._lock:
            record.billed = amount
            if record.generation == self._generation:
                self._bill += amount

    def _update(self, record: Record, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(record, name, value)

    def _next_id(self) -> int:
        return next(self._ids)

    def _knobs(self, path: str, body: dict[str, Any] | None, attempt: int) -> Knobs:
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
        return Knobs(
            status=status,
            billed=behaviour.billed,
            delay_s=delay_s,
            drop_after=None if drop_after is None else check_knob("drop_after", drop_after),
            omit_usage=bool(pick(behaviour.omit_usage, self.omit_usage)),
            want=check_knob("want", want),
            reasoning=check_knob("reasoning", reasoning),
            cached_tokens=check_knob(
                "cached_tokens", pick(behaviour.cached_tokens, self.cached_tokens)
            ),
            cache_write_tokens=check_knob(
                "cache_write_tokens", pick(behaviour.cache_write_tokens, self.cache_write_tokens)
            ),
        )

    def _prices_of(self, model: str) -> FakePrices | None:
        found = self.prices.get(model)
        if found is None:
            undated = _DATED_SUFFIX.sub("", model)
            found = self.prices.get(undated)
        return found

    def _plan(self, path: str, body: dict[str, Any], knobs: Knobs) -> Plan:
        """Validate a billed request and decide its whole generation (raises BadRequest)."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest(400, "you must provide a model parameter")
        prices = self._prices_of(model)
        if prices is None:
            raise BadRequest(404, f"The model `{model}` does not exist")
        anthropic = path == "/v1/messages"
        choices = 1
        thinking = False
        if path == "/v1/chat/completions":
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise BadRequest(400, "messages must be a non-empty list")
            choices = checked_count("n", body.get("n", 1), low=1)
            if choices > MAX_CHOICES:
                raise BadRequest(400, f"n must be at most {MAX_CHOICES}")
            limit_value = body.get("max_completion_tokens")
            if limit_value is None:
                limit_value = body.get("max_tokens")
        elif path == "/v1/responses":
            if not any(
                body.get(key) is not None
                for key in ("input", "prompt", "previous_response_id", "conversation")
            ):
                raise BadRequest(400, "input is required")
            limit_value = body.get("max_output_tokens")
        elif path == "/v1/embeddings":
            embedded = body.get("input")
            if not isinstance(embedded, str | list) or not embedded:
                raise BadRequest(400, "input must be a non-empty string or list")
            limit_value = 0
        else:
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise BadRequest(400, "messages: field required")
            if body.get("max_tokens") is None:
                raise BadRequest(400, "max_tokens: field required")
            limit_value = body["max_tokens"]
            thinking_config = body.get("thinking")
            if isinstance(thinking_config, Mapping):
                thinking = thinking_config.get("type") not in (None, "disabled")
                budget = thinking_config.get("budget_tokens")
                if thinking_config.get("type") == "enabled":
                    budget = checked_count("thinking.budget_tokens", budget, low=1)
                    if budget >= checked_count("max_tokens", limit_value, low=1):
                        raise BadRequest(
                            400, "max_tokens must be greater than thinking.budget_tokens"
                        )
        limit = (
            self.default_output_limit
            if limit_value is None
            else checked_count("max tokens", limit_value, low=1 if path != "/v1/embeddings" else 0)
        )
        reasoning_model = thinking or (not anthropic and bool(_OPENAI_REASONING.match(model)))
        if path == "/v1/embeddings":
            reasoning_model = False
        wanted = 0 if path == "/v1/embeddings" else knobs.want
        reasoning = min(knobs.reasoning, limit) if reasoning_model else 0
        visible = min(wanted, limit - reasoning)
        pieces = tuple(visible_pieces(body, wanted)[:visible])
        input_tokens = input_tokens_of(body, self.bytes_per_input_token)
        cached = min(knobs.cached_tokens, input_tokens)
        written = min(knobs.cache_write_tokens, input_tokens - cached) if anthropic else 0
        requested_tier = body.get("service_tier")
        priority = requested_tier == "priority" or (
            requested_tier in (None, "auto") and self.project_tier == "priority"
        )
        output = choices * (reasoning + len(pieces))
        cost = call_cost(
            prices,
            priority=priority,
            input_tokens=input_tokens,
            cached_tokens=cached,
            cache_write_tokens=written,
            output_tokens=output,
        )
        return Plan(
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
