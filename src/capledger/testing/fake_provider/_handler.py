"""The HTTP shell: read a request, route it (billed, counted for free, free, or the flat fee
of the rest), and write the JSON reply or the stream of events, cut short when scripted."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Final, cast

from capledger.testing.fake_provider._anthropic import (
    anthropic_events,
    anthropic_json,
    anthropic_usage,
)
from capledger.testing.fake_provider._calls import BadRequest, Knobs, Plan, Record
from capledger.testing.fake_provider._openai import (
    chat_events,
    chat_json,
    chat_usage,
    embeddings_json,
    embeddings_usage,
    responses_events,
    responses_json,
    responses_usage,
)
from capledger.testing.fake_provider._prices import input_tokens_of
from capledger.testing.fake_provider._shared import (
    StreamEvent,
    billed_by_default,
    canonical,
    error_json,
    models_json,
)

if TYPE_CHECKING:
    from capledger.testing.fake_provider._provider import FakeProvider, Server


#: Limits on what the fake accepts, so a runaway test fails instead of eating the machine.
MAX_BODY_BYTES: Final = 64 * 1024 * 1024
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
CONNECTION_ERRORS: Final = (BrokenPipeError, ConnectionError, TimeoutError, OSError)


def _usage(path: str, plan: Plan) -> dict[str, Any]:
    makers = {
        "/v1/chat/completions": chat_usage,
        "/v1/responses": responses_usage,
        "/v1/embeddings": embeddings_usage,
        "/v1/messages": anthropic_usage,
    }
    return makers[path](plan)


class _Dropped(Exception):
    """The reply was cut on purpose (``drop_after``) or the fake is closing."""


class Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests on behalf of the server's ``FakeProvider``."""

    protocol_version = "HTTP/1.1"
    server_version = "capledger-fake-provider/1"
    sys_version = ""

    @property
    def fake(self) -> FakeProvider:
        return cast("Server", self.server).fake

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
                    raise BadRequest(400, "bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(8192).strip():
                        pass  # trailers
                    return b"".join(parts)
                total += size
                if total > MAX_BODY_BYTES:
                    raise BadRequest(413, "request body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(8)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest(400, "bad Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise BadRequest(413, "request body too large")
        return self.rfile.read(length) if length > 0 else b""

    # -- writing ---------------------------------------------------------------------

    def _request_id(self) -> str:
        return f"req_fake{self.fake._next_id()}"

    def _send_json(
        self, record: Record | None, status: int, payload: Any, request_id: str | None = None
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
        except CONNECTION_ERRORS:
            if record is not None:
                self.fake._update(record, completed=False)
            self.close_connection = True

    def _send_error_json(self, record: Record | None, status: int, message: str) -> None:
        anthropic = record is not None and record.path.startswith("/v1/messages")
        anthropic = anthropic or "anthropic-version" in self.headers
        request_id = self._request_id()
        payload = error_json(status, message, anthropic=anthropic, request_id=request_id)
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

    def _stream(
        self, record: Record, events: Iterator[StreamEvent], drop_after: int | None
    ) -> None:
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
        except CONNECTION_ERRORS:
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
        path = canonical(self.path)
        try:
            raw = self._read_body()
        except BadRequest as error:
            self.close_connection = True
            self._send_error_json(None, error.status, error.message)
            return
        record = self.fake._begin(path, self.command, _parse(raw))
        names = self.fake.prices
        if path == "/v1/models":
            self._send_json(record, 200, models_json(names))
        elif path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            if self.fake._prices_of(name) is None:
                self._send_error_json(record, 404, f"The model `{name}` does not exist")
            else:
                self._send_json(record, 200, models_json([name])["data"][0])
        else:
            self._send_json(record, 200, {"object": "fake.free", "path": path})

    def _post(self) -> None:
        path = canonical(self.path)
        try:
            raw = self._read_body()
        except (BadRequest, ValueError) as error:
            self.close_connection = True
            status = error.status if isinstance(error, BadRequest) else 400
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
        except BadRequest as error:
            self._send_error_json(record, error.status, error.message)
        except _Dropped:
            self._drop()
        except Exception as error:  # a bug in a test's callable; say so to the client
            self.close_connection = True
            self._send_error_json(record, 500, f"fake provider failed: {error!r}")

    def _count_tokens(
        self, record: Record, path: str, body: dict[str, Any] | None, knobs: Knobs
    ) -> None:
        if knobs.status is not None:  # free: even a "billed" scripted error costs nothing
            self._wait(knobs.delay_s)
            raise BadRequest(knobs.status, "scripted error")
        self._wait(knobs.delay_s)
        if body is None:
            raise BadRequest(400, "the body must be a JSON object")
        model = body.get("model")
        if isinstance(model, str):
            self.fake._update(record, model=model)
            if self.fake._prices_of(model) is None:
                raise BadRequest(404, f"The model `{model}` does not exist")
        tokens = input_tokens_of(body, self.fake.bytes_per_input_token)
        if path == "/v1/responses/input_tokens":
            self._send_json(
                record, 200, {"object": "response.input_tokens", "input_tokens": tokens}
            )
        else:
            self._send_json(record, 200, {"input_tokens": tokens})

    def _other(self, record: Record, knobs: Knobs) -> None:
        body = record.body
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            self.fake._update(record, model=body["model"])
        if knobs.status is not None:
            billed = billed_by_default(knobs.status) if knobs.billed is None else knobs.billed
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

    def _billed(self, record: Record, path: str, body: dict[str, Any] | None, knobs: Knobs) -> None:
        status = knobs.status
        billed_error = status is not None and (
            billed_by_default(status) if knobs.billed is None else knobs.billed
        )
        if status is not None and not billed_error:
            if body is not None and isinstance(body.get("model"), str):
                self.fake._update(record, model=body["model"])
            self._wait(knobs.delay_s)
            self._send_error_json(record, status, "scripted error")
            return
        if body is None:
            raise BadRequest(400, "We could not parse the JSON body of your request.")
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
                events = chat_events(plan, chat_id, created, body, knobs.omit_usage)
                self._stream(record, events, knobs.drop_after)
            else:
                self._send_json(record, 200, chat_json(plan, chat_id, created, knobs.omit_usage))
        elif path == "/v1/responses":
            if streamed:
                events = responses_events(plan, ident, created, body, knobs.omit_usage)
                self._stream(record, events, knobs.drop_after)
            else:
                reply = responses_json(plan, ident, created, body, knobs.omit_usage)
                self._send_json(record, 200, reply)
        elif path == "/v1/embeddings":
            self._send_json(record, 200, embeddings_json(plan, body, knobs.omit_usage))
        elif streamed:
            self._stream(record, anthropic_events(plan, ident, knobs.omit_usage), knobs.drop_after)
        else:
            self._send_json(record, 200, anthropic_json(plan, ident, knobs.omit_usage))


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
