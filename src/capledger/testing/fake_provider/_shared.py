"""What the replies of both providers share: server-sent event framing, the model list,
provider-shaped errors, and the canonical path of a request."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final, Literal

StreamEvent = tuple[Literal["head", "content", "tail"], bytes]


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: an optional ``event:`` line and its ``data:``."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event is not None else ""
    return f"{prefix}data: {payload}\n\n".encode()


def models_json(names: Iterable[str]) -> dict[str, Any]:
    """The model list (or, with one name, its page) as both SDKs read it."""
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


def error_json(status: int, message: str, *, anthropic: bool, request_id: str) -> dict[str, Any]:
    """An error body shaped as Anthropic's or OpenAI's."""
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


def billed_by_default(status: int) -> bool:
    """Whether a scripted error ``status`` is billed when the script does not say."""
    return status >= 500 and status not in (503, 529)


def canonical(path: str) -> str:
    """``/v1/...`` for every path, whether the SDK's base URL ended in ``/v1`` or not."""
    bare = path.split("?", 1)[0].split("#", 1)[0].rstrip("/") or "/"
    if bare == "/v1" or bare.startswith("/v1/"):
        return bare
    return "/v1" + bare if bare != "/" else "/v1"
