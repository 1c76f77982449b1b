"""Proxies over the OpenAI and Anthropic SDK clients: the billable methods are guarded,
everything else is the SDK's own attribute (``__getattr__``). No SDK class is patched.

Guarded: ``chat.completions.create`` / ``parse``, ``responses.create`` / ``parse`` (OpenAI);
``messages.create`` / ``parse`` / ``stream`` (Anthropic). Not guarded (they reach the SDK
unchanged): ``with_raw_response`` / ``with_streaming_response``, ``beta.*``, the legacy
``completions``, embeddings, images, audio, batches and the other endpoints.
"""

from __future__ import annotations

from typing import Any

from capledger.integrations._engine import Engine
from capledger.integrations._plan import CHAT, MESSAGES, RESPONSES, Endpoint
from capledger.integrations._streams import AsyncGuardedMessageStream, GuardedMessageStream

__all__ = ["AnthropicProxy", "OpenAIProxy"]


class _Delegate:
    """Everything not defined here is the wrapped object's."""

    __slots__ = ("_engine", "_target")

    def __init__(self, target: Any, engine: Engine) -> None:
        self._target = target
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        if name in ("_target", "_engine"):
            raise AttributeError(name)
        return getattr(self._target, name)

    def __repr__(self) -> str:
        return f"<capledger guarded {self._target!r}>"

    def _guarded(self, endpoint: Endpoint, method_name: str, kwargs: dict[str, Any]) -> Any:
        method = getattr(self._target, method_name)
        if self._engine.is_async:
            return self._engine.acall(endpoint, method, kwargs)
        return self._engine.call(endpoint, method, kwargs)


class _ChatCompletions(_Delegate):
    __slots__ = ()

    def create(self, **kwargs: Any) -> Any:
        """``chat.completions.create``, guarded (streamed or not)."""
        return self._guarded(CHAT, "create", kwargs)

    def parse(self, **kwargs: Any) -> Any:
        """``chat.completions.parse``, guarded."""
        return self._guarded(CHAT, "parse", kwargs)


class _Chat(_Delegate):
    __slots__ = ()

    @property
    def completions(self) -> _ChatCompletions:
        """``chat.completions``, with ``create`` and ``parse`` guarded."""
        return _ChatCompletions(self._target.completions, self._engine)


class _Responses(_Delegate):
    __slots__ = ()

    def create(self, **kwargs: Any) -> Any:
        """``responses.create``, guarded (streamed or not)."""
        return self._guarded(RESPONSES, "create", kwargs)

    def parse(self, **kwargs: Any) -> Any:
        """``responses.parse``, guarded."""
        return self._guarded(RESPONSES, "parse", kwargs)


class OpenAIProxy(_Delegate):
    """An ``openai.OpenAI`` / ``AsyncOpenAI`` whose billable calls are guarded."""

    __slots__ = ()

    @property
    def chat(self) -> _Chat:
        """``chat``, whose ``completions`` are guarded."""
        return _Chat(self._target.chat, self._engine)

    @property
    def responses(self) -> _Responses:
        """``responses``, with ``create`` and ``parse`` guarded."""
        return _Responses(self._target.responses, self._engine)

    def with_options(self, **kwargs: Any) -> OpenAIProxy:
        """The SDK's ``with_options``, still guarded."""
        return OpenAIProxy(self._target.with_options(**kwargs), self._engine)

    copy = with_options


class _MessageStreamManager:
    """``messages.stream(...)``: the hold is placed when the block is entered."""

    def __init__(self, messages: Any, engine: Engine, kwargs: dict[str, Any]) -> None:
        self._messages = messages
        self._engine = engine
        self._kwargs = kwargs
        self._manager: Any = None
        self._stream: GuardedMessageStream | None = None

    def __enter__(self) -> GuardedMessageStream:
        prepared, hold, request = self._engine.open_stream(MESSAGES, self._kwargs)
        try:
            self._manager = self._messages.stream(**request)
            inner = self._manager.__enter__()
        except BaseException as error:
            self._engine.fail(hold, error)
            raise
        self._stream = GuardedMessageStream(
            inner, hold, prepared, self._engine.settings, MESSAGES.shape
        )
        return self._stream

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        try:
            if self._stream is not None:
                self._stream.__exit__(exc_type, exc, traceback)
        finally:
            # Even when settling fails, the SDK manager must close its HTTP response.
            if self._manager is not None:
                self._manager.__exit__(exc_type, exc, traceback)


class _AsyncMessageStreamManager:
    """``messages.stream(...)`` on an async client: ``async with`` places the hold."""

    def __init__(self, messages: Any, engine: Engine, kwargs: dict[str, Any]) -> None:
        self._messages = messages
        self._engine = engine
        self._kwargs = kwargs
        self._manager: Any = None
        self._stream: AsyncGuardedMessageStream | None = None

    async def __aenter__(self) -> AsyncGuardedMessageStream:
        prepared, hold, request = await self._engine.aopen_stream(MESSAGES, self._kwargs)
        try:
            self._manager = self._messages.stream(**request)
            inner = await self._manager.__aenter__()
        except BaseException as error:
            await self._engine.afail(hold, error)
            raise
        self._stream = AsyncGuardedMessageStream(
            inner, hold, prepared, self._engine.settings, MESSAGES.shape
        )
        return self._stream

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        try:
            if self._stream is not None:
                await self._stream.__aexit__(exc_type, exc, traceback)
        finally:
            # Even when settling fails, the SDK manager must close its HTTP response.
            if self._manager is not None:
                await self._manager.__aexit__(exc_type, exc, traceback)


class _Messages(_Delegate):
    __slots__ = ()

    def create(self, **kwargs: Any) -> Any:
        """``messages.create``, guarded (streamed or not)."""
        return self._guarded(MESSAGES, "create", kwargs)

    def parse(self, **kwargs: Any) -> Any:
        """``messages.parse``, guarded."""
        return self._guarded(MESSAGES, "parse", kwargs)

    def stream(self, **kwargs: Any) -> Any:
        """``messages.stream``, guarded: enter it (``with`` / ``async with``) to send."""
        if self._engine.is_async:
            return _AsyncMessageStreamManager(self._target, self._engine, kwargs)
        return _MessageStreamManager(self._target, self._engine, kwargs)


class AnthropicProxy(_Delegate):
    """An ``anthropic.Anthropic`` / ``AsyncAnthropic`` whose billable calls are guarded."""

    __slots__ = ()

    @property
    def messages(self) -> _Messages:
        """``messages``, with ``create``, ``parse`` and ``stream`` guarded."""
        return _Messages(self._target.messages, self._engine)

    def with_options(self, **kwargs: Any) -> AnthropicProxy:
        """The SDK's ``with_options``, still guarded."""
        return AnthropicProxy(self._target.with_options(**kwargs), self._engine)

    copy = with_options
