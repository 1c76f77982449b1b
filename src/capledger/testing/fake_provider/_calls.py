"""What a request suffers and leaves behind: the script's ``Behaviour`` and the knobs it
resolves to, the ``Plan`` of a billed generation with its visible text, and the record of
the call (``FakeCall``)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

VISIBLE_TOKEN_TEXT: Final = "tok "
MAX_TOKENS_PER_CALL: Final = 10_000_000
Count = int | Callable[[dict[str, Any]], int]


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
class Record:
    """A call as it is being answered; ``snapshot`` freezes it into a ``FakeCall``."""

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
class Knobs:
    """What one request suffers: its ``Behaviour`` with every default filled in."""

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
class Plan:
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


class BadRequest(Exception):
    """A request the provider would refuse: answered with ``status`` and never billed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


def visible_pieces(body: Mapping[str, Any], want: int) -> list[str]:
    """The ``want`` visible tokens' texts: ``"tok "`` each, or a JSON document cut up."""
    document = _json_schema_text(body)
    if document is None:
        return [VISIBLE_TOKEN_TEXT] * want
    if want == 0:
        return []
    size = len(document)
    return [document[index * size // want : (index + 1) * size // want] for index in range(want)]


def checked_count(name: str, value: object, *, low: int = 0) -> int:
    """A token count from a request, refused (``BadRequest``) unless a whole number in bounds."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BadRequest(400, f"{name} must be an integer >= {low}, got {value!r}")
    if value > MAX_TOKENS_PER_CALL:
        raise BadRequest(400, f"{name} must be at most {MAX_TOKENS_PER_CALL}")
    return value


def check_knob(name: str, value: object) -> int:
    """A count given to the fake, refused (``ValueError``) unless a whole number in bounds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_TOKENS_PER_CALL
    ):
        raise ValueError(f"{name} must be an integer in [0, {MAX_TOKENS_PER_CALL}], got {value!r}")
    return value
