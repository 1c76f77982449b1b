"""Every public path of the ``openai`` and ``anthropic`` clients, called once, requests recorded.

``walk`` lists the dotted attribute paths of a client that are callables: resource methods,
their ``with_raw_response`` / ``with_streaming_response`` twins at every level, ``.stream``
and ``.parse`` helpers, pollers, uploaders, the client's own ``get`` / ``post`` /
``request``. ``arguments`` builds a call from a method's signature; ``run`` makes each call
and drives what it returns (a context manager is entered, a stream read, a paginator
awaited), so every request a path can send is sent to a ``Recorder``.

``test_sdk_surface_audit.py`` compares what was recorded with a pinned table, then calls
every path again through ``capledger.wrap``. After an SDK upgrade,
``python tests/integrations/sdk_surface.py`` prints the table of the installed SDKs
(``--verdicts``: and the transport guard's verdict on each distinct request).
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import copy
import datetime
import enum
import importlib
import inspect
import json
import os
import sys
import tempfile
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

#: The SDKs audited: client class names and the model a dummy call names.
FAMILIES: Final = {
    "openai": ("OpenAI", "AsyncOpenAI", "gpt-4o-mini"),
    "anthropic": ("Anthropic", "AsyncAnthropic", "claude-haiku-4-5"),
}

# A path is named ``family:dotted`` in the tables below, or ``dotted`` for both families;
# ``dotted`` is canonical (wrapper segments removed); ``x()`` is what calling ``x`` returned.

#: Callables that send nothing: skipped, each for the reason given. The audit fails when one
#: is no longer found, so the list cannot go stale.
LOCAL_HELPERS: Final[Mapping[str, str]] = {
    "close": "closes the connection pool",
    "is_closed": "reads a flag",
    "platform_headers": "computes the X-Stainless-* headers",
    "openai:webhooks.unwrap": "verifies a webhook signature and parses the payload, locally",
    "openai:webhooks.verify_signature": "checks a webhook HMAC locally",
    "anthropic:beta.webhooks.unwrap": "verifies a webhook signature and parses the payload",
    "anthropic:beta.webhooks.parse_unverified": "parses a webhook payload locally",
    "anthropic:beta.messages.thread().append": "stages messages for the next turn",
    "anthropic:beta.messages.thread().update": "changes the parameters of later turns",
    "anthropic:beta.messages.thread().fork": "copies the thread's local state",
}

#: Callables that return a new client. Not requests themselves: the audit sends one probe
#: (``copy().post``) through the new client, which must still be guarded.
CLIENT_FACTORIES: Final = frozenset({"copy", "with_options", "with_middleware"})

#: Callables that return an object whose own methods send requests (not reachable by
#: attribute): the audit walks what they return as ``path().method``.
BUILDERS: Final[Mapping[str, str]] = {
    "anthropic:beta.messages.thread": "a server-held conversation: send, parse, stream...",
    "openai:beta.agents.sessions.artifacts.for_result": "a turn's artifacts: content, download",
}

#: Callables that open a WebSocket with the ``websockets`` package: no HTTP transport ever
#: sees them, so the wrapped client itself must refuse them.
WEBSOCKETS: Final = frozenset(
    {
        "openai:beta.realtime.connect",
        "openai:beta.responses.connect",
        "openai:live.connect",
        "openai:live.forks.connect",
        "openai:live.sideband.connect",
        "openai:realtime.connect",
        "openai:realtime.translations.connect",
        "openai:responses.connect",
    }
)

#: Paths that send but are not called, each for the reason given.
NOT_CALLED: Final[Mapping[str, str]] = {
    "anthropic:beta.environments.work.worker": (
        "(async only) builds a self-hosted environment worker that polls for work until"
        " stopped; it sends only through work.poller, work.heartbeat / stop and"
        " sessions.events.tool_runner on the same client, each audited on its own"
    ),
}

#: Paths that run a loop that reconnects until the server ends it: called for
#: ``LONG_RUNNING_S`` only (a first round of their requests is recorded).
LONG_RUNNING: Final = frozenset(
    {
        "anthropic:beta.environments.work.poller",
        "anthropic:beta.sessions.events.tool_runner",
    }
)
LONG_RUNNING_S: Final = 0.05
#: An async call that takes longer than this is cut off (and fails the audit).
CALL_TIMEOUT_S: Final = 5.0

#: Paths of SDK helpers that wrap any error of a later request in their own exception: a
#: refusal surfaces as that exception, ``UnguardedRequest`` its ``__cause__``.
WRAPS_ERRORS: Final[Mapping[str, str]] = {
    "openai:beta.agents.environments.files.upload": (
        "uploads the file (POST /files), then stages it; a failure to stage is raised as"
        " AgentFileStagingError, the upload left to the caller"
    ),
}

#: Paths that still fail before sending anything with the dummy arguments, and why.
FAILS_LOCALLY: Final[Mapping[str, str]] = {}

#: Segments whose methods send exactly the request of the method they wrap (raw response,
#: or the same deferred to ``__enter__``).
WRAPPERS: Final = ("with_raw_response", "with_streaming_response")

#: How many requests one call may send before the recorder cuts it off: a poller whose
#: terminal status is not ``REPLY``'s (``files.wait_for_processing`` waits for "processed")
#: would poll until its own deadline.
MAX_REQUESTS_PER_CALL: Final = 4
#: How many items of a returned stream or iterator are read.
MAX_ITEMS_READ: Final = 4
#: The JSON reply to every request that is not a stream: an object with an id, in a
#: terminal state, so that a helper that creates then polls (``create_and_poll``,
#: ``upload_file_chunked``) sends its follow-up requests once and stops.
REPLY: Final = {"id": "{id}", "status": "completed"}
#: The path given to the client's own ``get`` / ``post`` / ``request``... and to probes.
PROBE_PATH: Final = "{path}"


def canonical(dotted: str) -> str:
    """The path with its raw/streaming wrapper segments removed: the method that sends."""
    return ".".join(part for part in dotted.split(".") if part not in WRAPPERS)


def listed(table: Mapping[str, Any] | frozenset[str], family: str, dotted: str) -> bool:
    """Whether the canonical ``dotted`` of ``family`` is in ``table`` (for it or for all)."""
    key = canonical(dotted)
    return key in table or f"{family}:{key}" in table


def listed_value(table: Mapping[str, Any], family: str, dotted: str) -> Any:
    """The entry of ``dotted`` in ``table`` (the family's own first), or None."""
    key = canonical(dotted)
    return table.get(f"{family}:{key}", table.get(key))


def kind(family: str, dotted: str) -> str:
    """``local``, ``skipped``, ``factory``, ``builder``, ``websocket``, ``long-running`` or
    ``request``: how the audit treats a path."""
    if listed(LOCAL_HELPERS, family, dotted):
        return "local"
    if listed(NOT_CALLED, family, dotted):
        return "skipped"
    if listed(LONG_RUNNING, family, dotted):
        return "long-running"
    if canonical(dotted) in CLIENT_FACTORIES:
        return "factory"
    if listed(BUILDERS, family, dotted):
        return "builder"
    if listed(WEBSOCKETS, family, dotted):
        return "websocket"
    return "request"


# --- walking -------------------------------------------------------------------------------


def _is_surface_object(value: object, family: str) -> bool:
    """A resource, a wrapper of resources, or anything else the SDK hangs off the client."""
    module = getattr(type(value), "__module__", "") or ""
    # The query-string encoder is the one SDK-defined value attribute of the clients.
    return module.startswith(f"{family}.") and not module.endswith("._qs")


def walk(obj: Any, family: str, prefix: str = "") -> Iterator[tuple[str, Callable[..., Any]]]:
    """Yield ``(dotted path, bound callable)`` for each public callable reachable from ``obj``.

    Attributes are read (``cached_property`` resources get built) and every object the SDK
    defines is descended into, in name order; a cycle back to an ancestor is not followed.
    """
    yield from _walk(obj, family, prefix, frozenset({id(obj)}))


def _walk(
    obj: Any, family: str, prefix: str, ancestors: frozenset[int]
) -> Iterator[tuple[str, Callable[..., Any]]]:
    for name in sorted(dir(obj)):
        if name.startswith("_"):
            continue
        value = getattr(obj, name)
        dotted = f"{prefix}{name}"
        if callable(value) and not isinstance(value, type):
            yield dotted, value
        elif _is_surface_object(value, family) and id(value) not in ancestors:
            yield from _walk(value, family, f"{dotted}.", ancestors | {id(value)})


def resolve(obj: Any, dotted: str) -> Any:
    """The attribute at ``dotted`` below ``obj``."""
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def listed_surface(client: Any, family: str, table: frozenset[str]) -> Surface:
    """A surface of just the paths of ``family`` in ``table`` (no walk)."""
    prefix = f"{family}:"
    paths = sorted(key.removeprefix(prefix) for key in table if key.startswith(prefix))
    functions = {dotted: resolve(client, dotted) for dotted in paths}
    return Surface(family, client, {dotted: dotted for dotted in paths}, functions)


def same_paths(surface: Surface, client: Any) -> Surface:
    """``surface``'s paths on another client of the same class (looked up, not walked)."""
    functions = {dotted: resolve(client, dotted) for dotted in surface.functions}
    return Surface(surface.family, client, surface.representative, functions, surface.skipped)


def bound_object(function: Callable[..., Any]) -> Any:
    """The object the method under ``function``'s wrappers is bound to (None: unbound)."""
    current: Any = function
    while current is not None:
        if hasattr(current, "__self__"):
            return current.__self__
        # A decorated method's __wrapped__ is the undecorated function: look at the method
        # before going through it.
        current = getattr(current, "__wrapped__", None)
    return None


def sends_through(function: Callable[..., Any], client: Any) -> bool:
    """Whether ``function`` is bound to ``client`` or to one of its resources, or is one of
    the functions ``capledger.wrap`` puts on a wrapped client (its ``copy`` / ``with_options``
    that keep copies guarded, its WebSocket refusals)."""
    if getattr(function, "__module__", None) == "capledger.integrations._wrap":
        return True
    bound = bound_object(function)
    return bound is client or getattr(bound, "_client", None) is client


# --- dummy arguments -----------------------------------------------------------------------


@dataclass(frozen=True)
class Workdir:
    """A folder holding one small file, for parameters that take a path."""

    root: Path

    @property
    def file(self) -> Path:
        """The one file, ``a.txt``."""
        return self.root / "a.txt"

    @classmethod
    def make(cls, root: Path) -> Workdir:
        """Write ``a.txt`` under ``root``."""
        (root / "a.txt").write_bytes(b"x")
        return cls(root)


#: A file parameter's value: (name, content, content type).
FILE: Final = ("a.txt", b"x", "text/plain")
MESSAGE: Final = {"role": "user", "content": "hi"}
_NONE = type(None)


def _members(hint: Any) -> list[Any]:
    """The members of a (nested) union, ``Annotated`` and ``Required`` wrappers removed."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _members(typing.get_args(hint)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [member for arg in typing.get_args(hint) for member in _members(arg)]
    return [hint]


def _is_file(members: list[Any]) -> bool:
    """``FileTypes``: bytes, an IO of bytes, or (name, content...) tuples."""
    return bytes in members and any(typing.get_origin(m) is typing.IO for m in members)


def _is_sentinel(member: Any) -> bool:
    """``Omit`` / ``NotGiven``: the SDKs' "not passed" markers."""
    return isinstance(member, type) and member.__name__ in {"Omit", "NotGiven"}


def _is_typeddict(hint: Any) -> bool:
    # typing.is_typeddict misses typing_extensions TypedDicts on Python 3.11.
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__")


def _value_for(name: str, hint: Any, workdir: Workdir) -> Any:
    """A value of type ``hint`` that the SDK sends without checking it further.

    Raises:
        TypeError: no value is known for ``hint``.
    """
    members = [m for m in _members(hint) if m is not _NONE and not _is_sentinel(m)]
    if _is_file(members):
        return FILE
    if str in members:
        # Braces survive into the decoded URL path: a path parameter shows as its template.
        return f"{{{name}}}"
    hint = members[0] if members else hint
    origin = typing.get_origin(hint) or hint
    scalars: dict[Any, Any] = {
        bytes: b"x",
        bool: True,
        int: 1,
        float: 1.0,
        datetime.datetime: datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        datetime.date: datetime.date(2025, 1, 1),
        type: object,
        os.PathLike: workdir.file,
    }
    if origin in scalars:
        return scalars[origin]
    if origin is Literal:
        return typing.get_args(hint)[0]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return next(iter(hint))
    if _is_typeddict(hint) or origin in {dict, collections.abc.Mapping}:
        return {}
    if origin in {list, tuple, set, collections.abc.Iterable, collections.abc.Sequence} or (
        getattr(origin, "__name__", "") == "SequenceNotStr"
    ):
        (item, *_) = typing.get_args(hint) or (Any,)
        return [FILE] if _is_file(_members(item)) else []
    raise TypeError(f"no dummy value for parameter {name!r}: {hint!r}")


def _agent_turn_result() -> Any:
    """An ``AgentTurnResult`` naming a turn, for ``artifacts.for_result``."""
    from openai.lib.beta.agents._result import AgentTurnResult
    from openai.types.beta.agents.sessions.turn import Turn

    turn = Turn.construct(id="{turn_id}", session_id="{session_id}")
    return AgentTurnResult(turn=turn, messages=[])


#: In ``PATH_ARGUMENTS``: leave this parameter at its default (no dummy value).
DEFAULT: Final = object()

#: Arguments a path needs that its signature does not tell (keyword -> value, a factory of
#: it given the ``Workdir``, or ``DEFAULT``). Several dicts: the path is called once with
#: each.
PATH_ARGUMENTS: Final[Mapping[str, tuple[Mapping[str, Any], ...]]] = {
    # Two modes: a new response (POST /responses), or resuming one (GET /responses/{id}).
    "openai:responses.stream": (
        {"input": "hi", "model": "gpt-4o-mini"},
        {"response_id": "{response_id}", "model": DEFAULT},
    ),
    # Agent file destinations must be absolute paths under /workspace.
    "openai:beta.agents.environments.files.prepare": (
        {"files": lambda workdir: {"/workspace/a.txt": workdir.file}},
    ),
    "openai:beta.agents.environments.files.prepare_directory": ({"destination": "/workspace"},),
    "openai:beta.agents.environments.files.upload": ({"path": "/workspace/a.txt"},),
    "openai:beta.agents.sessions.artifacts.for_result": (
        {"result": lambda _: _agent_turn_result()},
    ),
    "openai:beta.agents.sessions.artifacts.for_result().content": ({"path": "a.txt"},),
    "openai:beta.agents.sessions.artifacts.for_result().download": (
        {"path": "a.txt", "to": lambda workdir: workdir.root / "out.bin"},
    ),
    "anthropic:beta.messages.thread": ({"messages": [MESSAGE]},),
}

#: Parameters named here get this value whatever their annotation (when required).
_BY_NAME: Final = {
    "messages": [MESSAGE],
    "max_tokens": 16,
    "cast_to": object,
    "include": ["a.txt"],
    "path": PROBE_PATH,
    "tools": [],
}
#: Optional parameters given a value anyway: pollers wait as little as they can, and a
#: request that may name a model names one (``responses.create`` needs none to be sent,
#: but the guard cannot price a request without one).
_OPTIONAL: Final = {"poll_interval_ms": 1, "poll_interval": 0.001, "model": None}


def _target(function: Callable[..., Any]) -> Any:
    """The plain function under wrappers and binding, which a signature belongs to."""
    target = inspect.unwrap(function)
    return getattr(target, "__func__", target)


def _hint(target: Any, name: str) -> Any:
    """The annotation of parameter ``name``, resolved (``Any`` when it does not resolve).

    One at a time: ``typing.get_type_hints`` would compile every annotation of the method
    (long unions of model names), most of them for parameters left at their default.
    """
    annotation = getattr(target, "__annotations__", {}).get(name, Any)
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, getattr(target, "__globals__", {}))
    except Exception:  # a name imported under TYPE_CHECKING only
        return Any


def _variants(function: Callable[..., Any]) -> tuple[str, ...]:
    """The first variant of an SDK ``@required_args`` decorator: parameters it demands."""
    current: Any = function
    while current is not None:
        plain = getattr(current, "__func__", current)
        for cell_name, cell in zip(
            getattr(getattr(plain, "__code__", None), "co_freevars", ()),
            getattr(plain, "__closure__", None) or (),
            strict=False,
        ):
            if cell_name == "variants" and cell.cell_contents:
                return tuple(cell.cell_contents[0])
        current = getattr(current, "__wrapped__", None)
    return ()


@dataclass(frozen=True)
class _Plan:
    """How to call one function: which parameters to fill, by value or by keyword."""

    positional: tuple[tuple[str, Any], ...]
    keywords: tuple[tuple[str, Any], ...]
    var_messages: bool


_PLANS: dict[tuple[Any, str, Workdir, frozenset[str]], _Plan] = {}


def _plan(
    function: Callable[..., Any], family: str, workdir: Workdir, given: frozenset[str]
) -> _Plan:
    """The plan of ``function`` (cached: the raw, streaming, sync twins... share one)."""
    target = _target(function)
    key = (target, family, workdir, given)
    if key not in _PLANS:
        _PLANS[key] = _make_plan(function, target, family, workdir, given)
    return _PLANS[key]


def _make_plan(
    function: Callable[..., Any], target: Any, family: str, workdir: Workdir, given: frozenset[str]
) -> _Plan:
    signature = inspect.signature(function)
    demanded = set(_variants(function))
    by_name = {**_BY_NAME, "model": FAMILIES[family][2], "root": workdir.root}
    positional: list[tuple[str, Any]] = []
    keywords: list[tuple[str, Any]] = []
    var_messages = False
    for name, parameter in signature.parameters.items():
        if parameter.kind is parameter.VAR_POSITIONAL:
            var_messages = name == "messages"
            continue
        if parameter.kind is parameter.VAR_KEYWORD or name in given:
            continue
        if parameter.default is not parameter.empty and name not in demanded:
            if name in _OPTIONAL:
                keywords.append((name, by_name[name] if name == "model" else _OPTIONAL[name]))
            continue
        hint = _hint(target, name)
        if name in by_name and not (name == "model" and typing.get_origin(hint) is type):
            value = by_name[name]
        elif name == "options" and family in sys.modules:
            final = sys.modules[family]._models.FinalRequestOptions
            value = final.construct(method="post", url=PROBE_PATH)
        else:
            value = _value_for(name, hint, workdir)
        if parameter.kind is parameter.POSITIONAL_ONLY:
            positional.append((name, value))
        else:
            keywords.append((name, value))
    return _Plan(tuple(positional), tuple(keywords), var_messages)


def arguments(
    function: Callable[..., Any],
    family: str,
    workdir: Workdir,
    extra: Mapping[str, Any] | None = None,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword arguments with which the SDK sends ``function``'s request.

    Required parameters (and those the SDK's ``@required_args`` demands) get a value: by
    name for a few, by annotation for the rest; optional ones keep their default, except a
    poller's interval and a model. ``extra`` (a path's ``PATH_ARGUMENTS``) is added last: a
    callable there is given ``workdir``, ``DEFAULT`` leaves the parameter out.

    Raises:
        TypeError: a required parameter has an annotation no value is known for.
    """
    plan = _plan(function, family, workdir, frozenset(extra or ()))
    # Copies: a call must not see what an earlier call's SDK code did to its arguments.
    args = [copy.deepcopy(value) for _, value in plan.positional]
    if plan.var_messages:
        args.append(dict(MESSAGE))
    kwargs = {name: copy.deepcopy(value) for name, value in plan.keywords}
    for name, value in (extra or {}).items():
        if value is not DEFAULT:
            kwargs[name] = value(workdir) if callable(value) else value
    return tuple(args), kwargs


# --- recording -----------------------------------------------------------------------------


class TooManyRequests(Exception):
    """One call sent more than ``MAX_REQUESTS_PER_CALL`` requests (a poller that never ends)."""


@dataclass
class Recorder:
    """A ``MockTransport`` handler: records each request, answers ``REPLY`` or an empty stream."""

    httpx: Any
    requests: list[tuple[str, str]] = field(default_factory=list)
    _mark: int = 0

    def start(self) -> None:
        """Begin a call: its requests are those recorded from now on."""
        self._mark = len(self.requests)

    def since_start(self) -> tuple[tuple[str, str], ...]:
        """The ``(method, decoded URL path)`` of each request since ``start``."""
        return tuple(self.requests[self._mark :])

    def handle(self, request: Any) -> Any:
        """Record ``request``; reply 200 with ``REPLY``, or with an SSE ``[DONE]`` to a stream."""
        self.requests.append((request.method, request.url.path))
        if len(self.requests) - self._mark > MAX_REQUESTS_PER_CALL:
            raise TooManyRequests(request.url.path)
        if _wants_stream(request):
            return self.httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=b"data: [DONE]\n\n"
            )
        return self.httpx.Response(200, json=REPLY)

    def transport(self) -> Any:
        """A ``MockTransport`` over ``handle``."""
        return self.httpx.MockTransport(self.handle)


def _wants_stream(request: Any) -> bool:
    if "text/event-stream" in request.headers.get("accept", ""):
        return True
    if not request.headers.get("content-type", "").startswith("application/json"):
        return False
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("stream") is True


def http_module(family: str) -> Any:
    """The httpx flavour ``family`` is built on (``httpx2``)."""
    base = importlib.import_module(f"{family}._base_client")
    return getattr(base, "httpx2", None) or base.httpx


def make_client(family: str, *, asynchronous: bool, recorder: Recorder) -> Any:
    """A ``family`` client whose requests go to ``recorder``: no retries, dummy keys."""
    module = importlib.import_module(family)
    sync_name, async_name, _ = FAMILIES[family]
    http = recorder.httpx
    transport = recorder.transport()
    http_client = (
        http.AsyncClient(transport=transport) if asynchronous else http.Client(transport=transport)
    )
    keys = {"api_key": "audit"}
    if family == "openai":
        keys["admin_api_key"] = "audit"  # the admin.* resources refuse to send without it
    cls = getattr(module, async_name if asynchronous else sync_name)
    return cls(**keys, http_client=http_client, max_retries=0)


# --- calling -------------------------------------------------------------------------------


def drive(result: Any) -> Any:
    """Enter a context manager and read a stream or iterator (a little), then close it."""
    if hasattr(result, "__enter__") and hasattr(result, "__exit__"):
        with result as entered:
            if entered is not result:
                drive(entered)
    elif isinstance(result, collections.abc.Iterator):
        for index, _ in enumerate(result):
            if index + 1 >= MAX_ITEMS_READ:
                break
        close = getattr(result, "close", None)
        if callable(close):
            close()
    return result


async def adrive(result: Any) -> Any:
    """The async ``drive``: also awaits a coroutine or a lazy paginator first."""
    if inspect.isawaitable(result):
        result = await result
    if hasattr(result, "__aenter__") and hasattr(result, "__aexit__"):
        async with result as entered:
            if entered is not result:
                await adrive(entered)
    elif hasattr(result, "__aiter__"):
        index = 0
        async for _ in result:
            index += 1
            if index >= MAX_ITEMS_READ:
                break
        close = getattr(result, "close", None)
        closed = close() if callable(close) else None
        if inspect.isawaitable(closed):
            await closed
    else:
        drive(result)
    return result


@dataclass(frozen=True)
class Call:
    """One call to make: the path, the callable, and its extra arguments."""

    dotted: str
    function: Callable[..., Any]
    extra: Mapping[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What one call did: the requests it sent (distinct, in order) and how it ended.

    ``every_request`` has each request as many times as it was sent (a poller's GETs).
    """

    dotted: str
    requests: tuple[tuple[str, str], ...]
    error: BaseException | None
    result: Any = None
    every_request: tuple[tuple[str, str], ...] = ()


def _behaviour(function: Callable[..., Any]) -> tuple[Any, ...]:
    """What decides the request a callable sends: its wrappers' code, the method, its object.

    Two paths with the same behaviour run the same code on the same resource instance (the
    SDK builds each resource once, as a ``cached_property``), so they send the same request:
    ``with_raw_response.chat.completions.create`` and ``chat.completions.with_raw_response.
    create`` are one behaviour; ``chat.completions.create`` is another.
    """
    codes = []
    current: Any = function
    while hasattr(current, "__wrapped__"):
        codes.append(getattr(current, "__code__", None))
        current = current.__wrapped__
    return (tuple(codes), current, id(bound_object(function)))


@dataclass
class Surface:
    """The paths of one client: each path's representative, and each representative's callable.

    Only representatives are called: one per behaviour, the one with the fewest segments.
    """

    family: str
    client: Any
    representative: dict[str, str] = field(default_factory=dict)
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def restricted(self, keep: Callable[[str], bool]) -> Surface:
        """The same surface, calling only the representatives ``keep`` accepts."""
        functions = {dotted: fn for dotted, fn in self.functions.items() if keep(dotted)}
        return Surface(self.family, self.client, self.representative, functions, self.skipped)

    def calls(self) -> Iterator[Call]:
        """The calls to make: each representative with each of its ``PATH_ARGUMENTS``."""
        for dotted, function in self.functions.items():
            for extra in listed_value(PATH_ARGUMENTS, self.family, dotted) or ({},):
                yield Call(dotted, function, extra)


def survey(client: Any, family: str) -> Surface:
    """Walk ``client``: every path, grouped by behaviour; local helpers set aside."""
    surface = Surface(family, client)
    groups: dict[tuple[Any, ...], list[tuple[str, Callable[..., Any]]]] = {}
    for dotted, function in walk(client, family):
        if kind(family, dotted) in {"local", "skipped"}:
            surface.skipped.append(dotted)
            continue
        groups.setdefault(_behaviour(function), []).append((dotted, function))
    for members in groups.values():
        chosen, function = min(members, key=lambda item: (item[0].count("."), item[0]))
        surface.functions[chosen] = function
        for dotted, _ in members:
            surface.representative[dotted] = chosen
    surface.functions = dict(sorted(surface.functions.items()))
    return surface


def _distinct(requests: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Distinct requests, first-seen order: a poller's repeated GET counts once."""
    return tuple(dict.fromkeys(requests))


def follow_ups(family: str, outcome: Outcome) -> Iterator[Call]:
    """The calls a factory's or a builder's result needs: a probe, or each of its methods."""
    if outcome.result is None:
        return
    if kind(family, outcome.dotted) == "factory":
        yield Call(f"{outcome.dotted}().post", outcome.result.post, {})
    elif kind(family, outcome.dotted) == "builder":
        for dotted, function in walk(outcome.result, family, f"{outcome.dotted}()."):
            if kind(family, dotted) != "local":
                for extra in listed_value(PATH_ARGUMENTS, family, dotted) or ({},):
                    yield Call(dotted, function, extra)


Hook = Callable[[Outcome], Any]


class _Runner:
    """The bookkeeping of a run, shared by the sync and the async driver (which only call)."""

    def __init__(self, surface: Surface, recorder: Recorder, workdir: Workdir) -> None:
        self.family = surface.family
        self.recorder = recorder
        self.workdir = workdir
        self.pending = list(surface.calls())
        self.outcomes: list[Outcome] = []

    def next(self) -> Call | None:
        """The next call (a factory's or builder's follow-ups come right after it)."""
        if not self.pending:
            return None
        self.recorder.start()
        return self.pending.pop(0)

    def arguments(self, item: Call) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments (see ``arguments``)."""
        return arguments(item.function, self.family, self.workdir, item.extra)

    def kind(self, item: Call) -> str:
        """How the call is driven (see ``kind``)."""
        return kind(self.family, item.dotted)

    def done(self, item: Call, error: BaseException | None, result: Any) -> Outcome:
        """Record what the call sent and how it ended; queue its follow-ups."""
        sent = self.recorder.since_start()
        outcome = Outcome(item.dotted, _distinct(sent), error, result, sent)
        self.outcomes.append(outcome)
        self.pending[:0] = follow_ups(self.family, outcome)
        return outcome


def run(
    surface: Surface, recorder: Recorder, workdir: Workdir, on_outcome: Hook | None = None
) -> list[Outcome]:
    """Make every call of a sync surface (and of what its factories and builders return).

    ``on_outcome`` is called after each call, before the next.
    """
    runner = _Runner(surface, recorder, workdir)
    while (item := runner.next()) is not None:
        error: BaseException | None = None
        result = None
        try:
            args, kwargs = runner.arguments(item)
            with warnings.catch_warnings():
                # Deprecated endpoints are on the surface too: calling them is the point.
                warnings.simplefilter("ignore", DeprecationWarning)
                result = item.function(*args, **kwargs)
                if runner.kind(item) not in {"factory", "builder"}:
                    drive(result)
        except Exception as caught:  # the audit wants the request, not the reply
            error = caught
        outcome = runner.done(item, error, result)
        if on_outcome is not None:
            on_outcome(outcome)
    return runner.outcomes


async def arun(
    surface: Surface, recorder: Recorder, workdir: Workdir, on_outcome: Hook | None = None
) -> list[Outcome]:
    """``run`` for an async surface: one call after another; ``on_outcome`` may be async."""
    runner = _Runner(surface, recorder, workdir)
    while (item := runner.next()) is not None:
        error: BaseException | None = None
        result = None
        try:
            args, kwargs = runner.arguments(item)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                result = item.function(*args, **kwargs)
                if runner.kind(item) == "long-running":
                    # A loop that reconnects for ever: what it sends in a moment is enough.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(adrive(result), LONG_RUNNING_S)
                elif runner.kind(item) not in {"factory", "builder"}:
                    await asyncio.wait_for(adrive(result), CALL_TIMEOUT_S)
        except Exception as caught:
            error = caught
        outcome = runner.done(item, error, result)
        if on_outcome is not None and inspect.isawaitable(hooked := on_outcome(outcome)):
            await hooked
    return runner.outcomes


def requests_by_path(
    surface: Surface, outcomes: list[Outcome]
) -> dict[str, tuple[tuple[str, str], ...]]:
    """The requests of every path (a representative's for the paths it stands for).

    The calls of one path (one per ``PATH_ARGUMENTS`` entry) are merged; a factory's or a
    builder's follow-ups (``copy().post``) are paths of their own.
    """
    by_call: dict[str, tuple[tuple[str, str], ...]] = {}
    for outcome in outcomes:
        by_call[outcome.dotted] = _distinct(by_call.get(outcome.dotted, ()) + outcome.requests)
    by_path = {dotted: by_call[chosen] for dotted, chosen in surface.representative.items()}
    by_path.update({dotted: sent for dotted, sent in by_call.items() if "()" in dotted})
    return by_path


# --- the pinned table ----------------------------------------------------------------------


Requests = tuple[tuple[str, str], ...]
#: ``(family, canonical path) -> (modes it exists in, requests)``.
Table = dict[tuple[str, str], tuple[frozenset[str], Requests]]


def table_of(family: str, by_mode: Mapping[str, Mapping[str, Requests]]) -> Table:
    """The table rows of ``family``: each canonical path, the modes it exists in, its requests.

    ``by_mode`` maps ``"sync"`` / ``"async"`` to ``requests_by_path``; a path in both modes
    takes the sync requests (the audit checks they are the async ones).
    """
    table: Table = {}
    for mode in ("async", "sync"):
        for dotted, sent in by_mode.get(mode, {}).items():
            if canonical(dotted) == dotted:
                modes = table.get((family, dotted), (frozenset(), ()))[0]
                table[family, dotted] = (modes | {mode}, sent)
    return table


def table_text(table: Table) -> str:
    """The pinned table: ``family path [mode]`` (mode only if one), then a request a line."""
    lines = []
    for (family, dotted), (modes, sent) in sorted(table.items()):
        only = "" if len(modes) == 2 else f" [{next(iter(modes))}]"
        lines.append(f"{family} {dotted}{only}")
        lines.extend(f"    {method} {path}" for method, path in sent)
    return "\n".join(lines)


def parse_table(text: str) -> Table:
    """``table_text`` read back."""
    table: Table = {}
    key: tuple[str, str] | None = None
    for line in text.strip().splitlines():
        if not line.startswith(" "):
            family, dotted, *only = line.split()
            key = (family, dotted)
            modes = frozenset(mode.strip("[]") for mode in only) or frozenset({"sync", "async"})
            table[key] = (modes, ())
        elif key is not None:
            method, path = line.split()
            modes, sent = table[key]
            table[key] = (modes, (*sent, (method, path)))
    return table


def record(family: str, workdir: Workdir) -> dict[str, tuple[Surface, list[Outcome]]]:
    """Survey and run a sync and an async ``family`` client over a fresh recorder, by mode."""
    recorder = Recorder(http_module(family))
    client = make_client(family, asynchronous=False, recorder=recorder)
    sync_surface = survey(client, family)
    sync_outcomes = run(sync_surface, recorder, workdir)
    client.close()
    aclient = make_client(family, asynchronous=True, recorder=recorder)
    async_surface = survey(aclient, family)
    async_outcomes = asyncio.run(_arun_closing(async_surface, recorder, workdir))
    return {"sync": (sync_surface, sync_outcomes), "async": (async_surface, async_outcomes)}


async def _arun_closing(surface: Surface, recorder: Recorder, workdir: Workdir) -> list[Outcome]:
    try:
        return await arun(surface, recorder, workdir)
    finally:
        await surface.client.close()


def _main() -> None:
    """Print the table of the installed SDKs; with ``--verdicts``, each distinct request's."""
    import time

    started = time.perf_counter()
    table: Table = {}
    recorded = {}
    with tempfile.TemporaryDirectory() as root:
        workdir = Workdir.make(Path(root))
        for family in FAMILIES:
            recorded[family] = record(family, workdir)
            by_mode = {
                mode: requests_by_path(surface, outcomes)
                for mode, (surface, outcomes) in recorded[family].items()
            }
            table.update(table_of(family, by_mode))
    print(table_text(table))
    if "--verdicts" in sys.argv:
        from capledger.integrations._routes import classify

        print("\n# distinct requests: verdict, method, path")
        for family in FAMILIES:
            seen = {
                request for (f, _), (_, sent) in table.items() if f == family for request in sent
            }
            for method, path in sorted(seen, key=lambda request: (request[1], request[0])):
                verdict, _ = classify(method, path, family)
                print(f"# {family:9} {verdict:8} {method:6} {path}")
    for family, modes in recorded.items():
        for mode, (surface, outcomes) in modes.items():
            print(
                f"# {family} {mode}: {len(surface.representative)} paths,"
                f" {len(outcomes)} calls; silent:",
                file=sys.stderr,
            )
            for outcome in outcomes:
                if not outcome.requests:
                    print(f"#   {outcome.dotted}: {outcome.error!r}"[:200], file=sys.stderr)
    print(f"# {time.perf_counter() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    _main()
