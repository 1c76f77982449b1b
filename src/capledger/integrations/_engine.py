"""One guarded call, sync or async: reserve (with the policy), send, settle.

The SDK method is whatever the proxy hands in; this module never imports an SDK.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from capledger.errors import InvalidInput, LedgerError
from capledger.integrations._plan import (
    CALL_OPTIONS,
    Endpoint,
    Flow,
    Prepared,
    Settings,
    adrive,
    drive,
    reserve_flow,
    settlement,
)
from capledger.integrations._streams import AsyncGuardedStream, GuardedStream
from capledger.ledger import AsyncLedger

if TYPE_CHECKING:
    from capledger.ledger import Ledger

__all__ = ["Engine"]

_LOG = logging.getLogger("capledger.integrations")


def _is_timeout(error: BaseException) -> bool:
    # openai/anthropic APITimeoutError, httpx TimeoutException, litellm Timeout, TimeoutError:
    # the request may have run to completion at the provider, so it may have been billed.
    return isinstance(error, TimeoutError) or any(
        "Timeout" in cls.__name__ for cls in type(error).__mro__
    )


def split_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take capledger's per-call options out of the SDK keyword arguments."""
    return {name: kwargs.pop(name) for name in CALL_OPTIONS if name in kwargs}


def _with_stream_usage(request: Mapping[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    body = dict(request)
    if endpoint.shape == "chat":
        # Chat streams only report usage when asked; without it the call settles the bound.
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    return body


class Engine:
    """A ledger and the settings of one ``wrap``: runs guarded calls."""

    __slots__ = ("is_async", "ledger", "settings")

    def __init__(self, ledger: Ledger | AsyncLedger, settings: Settings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.is_async = isinstance(ledger, AsyncLedger)

    # --- decisions shared by both drivers ---------------------------------------------------

    def _flow(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> Flow:
        """The reserve flow of one call; capledger's options are taken out of ``kwargs``."""
        options = split_options(kwargs)
        return reserve_flow(self.settings, endpoint, kwargs, options)

    @staticmethod
    def _to_send(prepared: Prepared, endpoint: Endpoint) -> tuple[dict[str, Any], bool]:
        """The request to send, and whether it streams (a stream is asked for its usage)."""
        if prepared.request.get("stream"):
            return _with_stream_usage(prepared.request, endpoint), True
        return prepared.request, False

    def _failure_settles(self, error: BaseException) -> bool:
        """Whether an error before any output settles the whole hold (else: release)."""
        return self.settings.settle_incomplete == "held" and _is_timeout(error)

    def _settle_plan(
        self, prepared: Prepared, response: Any, usd: Decimal | None
    ) -> dict[str, Any]:
        """The keyword arguments of ``hold.settle`` for a finished call."""
        usage = getattr(response, "usage", None)
        if usage is None and isinstance(response, Mapping):
            usage = response.get("usage")
        try:
            done = settlement(
                self.settings,
                prepared,
                usage,
                service_tier=getattr(response, "service_tier", None),
                usd=usd,
            )
        except InvalidInput:
            # No readable usage: the worst case is the only figure known not to be short.
            _LOG.warning(
                "capledger: the response to %s carries no readable usage; settling the hold",
                prepared.request_id,
            )
            return {"tags": {"usage": "missing"}}
        return {
            "usd": done.usd,
            "tokens": done.tokens,
            "requests": done.requests,
            "tags": done.tags,
        }

    # --- synchronous ------------------------------------------------------------------------

    def call(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        kwargs: dict[str, Any],
        *,
        stream_class: type[GuardedStream] = GuardedStream,
        cost: Callable[[Any], Decimal | None] | None = None,
    ) -> Any:
        """Reserve, call ``method(**request)``, and settle (or wrap the stream).

        Args:
            endpoint: the API being called (its output limit key and pricing names).
            method: the SDK's own method.
            kwargs: the call's keyword arguments; capledger's options are taken out.
            stream_class: what a streamed response is wrapped in.
            cost: reads a provider-computed cost from a response (LiteLLM), or ``None``.
        """
        ledger: Ledger = self.ledger  # type: ignore[assignment]
        prepared, hold = drive(self._flow(endpoint, kwargs), ledger)
        request, streaming = self._to_send(prepared, endpoint)
        try:
            result = method(**request)
        except BaseException as error:
            self.fail(hold, error)
            raise
        if streaming:
            return stream_class(result, hold, prepared, self.settings, endpoint.shape)
        hold.settle(**self._settle_plan(prepared, result, cost(result) if cost else None))
        return result

    def open_stream(
        self, endpoint: Endpoint, kwargs: dict[str, Any]
    ) -> tuple[Prepared, Any, dict[str, Any]]:
        """Reserve for a stream helper (``messages.stream``): the request to send and hold."""
        ledger: Ledger = self.ledger  # type: ignore[assignment]
        prepared, hold = drive(self._flow(endpoint, kwargs), ledger)
        return prepared, hold, dict(prepared.request)

    async def aopen_stream(
        self, endpoint: Endpoint, kwargs: dict[str, Any]
    ) -> tuple[Prepared, Any, dict[str, Any]]:
        """The async ``open_stream``."""
        ledger: AsyncLedger = self.ledger  # type: ignore[assignment]
        prepared, hold = await adrive(self._flow(endpoint, kwargs), ledger)
        return prepared, hold, dict(prepared.request)

    def fail(self, hold: Any, error: BaseException) -> None:
        """Close a sync hold whose call failed before any output; never raises."""
        try:
            if self._failure_settles(error):
                hold.settle(tags={"error": type(error).__name__})
            else:
                hold.release()
        except LedgerError:  # the caller's error matters more; ours goes to the log
            _LOG.exception("capledger could not close hold %s after an error", hold.id)

    async def afail(self, hold: Any, error: BaseException) -> None:
        """Close an async hold whose call failed before any output; never raises."""
        try:
            if self._failure_settles(error):
                await hold.settle(tags={"error": type(error).__name__})
            else:
                await hold.release()
        except LedgerError:
            _LOG.exception("capledger could not close hold %s after an error", hold.id)

    # --- asynchronous -----------------------------------------------------------------------

    async def acall(
        self,
        endpoint: Endpoint,
        method: Callable[..., Any],
        kwargs: dict[str, Any],
        *,
        stream_class: type[AsyncGuardedStream] = AsyncGuardedStream,
        cost: Callable[[Any], Decimal | None] | None = None,
    ) -> Any:
        """The async ``call``: ``method(**request)`` is awaited; the arguments are ``call``'s."""
        ledger: AsyncLedger = self.ledger  # type: ignore[assignment]
        prepared, hold = await adrive(self._flow(endpoint, kwargs), ledger)
        request, streaming = self._to_send(prepared, endpoint)
        try:
            result = await method(**request)
        except BaseException as error:
            await self.afail(hold, error)
            raise
        if streaming:
            return stream_class(result, hold, prepared, self.settings, endpoint.shape)
        await hold.settle(**self._settle_plan(prepared, result, cost(result) if cost else None))
        return result
