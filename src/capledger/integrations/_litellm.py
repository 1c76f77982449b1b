"""LiteLLM: every entry point of the ``litellm`` module and of a ``litellm.Router`` is guarded
or refused.

LiteLLM sends through several HTTP stacks (httpx, aiohttp, boto), so it is guarded at its
functions, not at the wire:

- **guarded** (held at the worst case, clamped or refused by the policy, settled):
  ``completion`` / ``acompletion`` (chat), ``responses`` / ``aresponses``,
  ``text_completion`` / ``atext_completion`` (legacy completions; ``max_tokens`` 16 when
  absent, sent explicitly since LiteLLM turns the call into a chat call for most
  providers), ``embedding`` / ``aembedding`` and ``batch_completion`` (every request held
  before any is sent); ``moderation`` passes when it is OpenAI's (free);
- **free** (no request, or one no provider bills): helpers, types, settings, reads;
- **refused** with ``UnguardedRequest`` before anything is sent: every other callable
  (images, audio, rerank, batches, fine-tuning, agents, passthrough, the clients and the
  ``Router`` class, and any callable a new LiteLLM release adds), unless
  ``wrap(unguarded=[name])`` lets it through, journaled as a zero hold tagged
  ``unguarded``.

A call LiteLLM may send to another model (``fallbacks=``, ``context_window_fallback_dict``,
``litellm.model_fallbacks``, a router group's deployments and fallback groups) is held at
the most expensive of them for the request as sent.

The model name ``provider/model`` is priced as ``model`` at ``provider`` (``gemini/`` and
``vertex_ai/`` as ``google``). A settled call is priced with LiteLLM's own figure when the
response carries one (``_hidden_params["response_cost"]``, else ``litellm.completion_cost``),
converted through ``str`` to ``Decimal`` and rounded up to the nano-USD; otherwise with
capledger's prices.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, TypeVar

from capledger.errors import ConfigurationError, InvalidInput
from capledger.integrations._calls import Endpoint, Prepared
from capledger.integrations._engine import Cover, Engine, split_options
from capledger.integrations._litellm_names import (
    Kind,
    RefusedModule,
    classify,
    classify_router,
    free_moderation,
    refusal,
    refusal_reason,
    refused_callable,
)
from capledger.integrations._litellm_reach import (
    LITELLM_ENDPOINT,
    Reach,
    endpoints,
    litellm_cost,
    litellm_price_name,
    module_candidates,
    price_name,
    router_candidates,
)
from capledger.integrations._steps import NO_WIRE, close

__all__ = [
    "LITELLM_ENDPOINT",
    "LiteLLMProxy",
    "LiteLLMRouterProxy",
    "classify",
    "classify_router",
    "litellm_cost",
    "price_name",
]

#: The most requests one ``batch_completion`` may hold at once.
MAX_BATCH: Final = 1000
#: What the legacy Completions API writes when a request sets no ``max_tokens``.
COMPLETIONS_DEFAULT_MAX_TOKENS: Final = 16


# --- calling ----------------------------------------------------------------------------------


def _with_async_twins(positional: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Each function's positional parameters, for it and for its async twin (``a`` + name),
    which LiteLLM gives the same ones."""
    return {**positional, **{"a" + name: names for name, names in positional.items()}}


#: Positional parameters of the guarded functions, in LiteLLM's order.
_MODULE_POSITIONAL: Final = _with_async_twins(
    {
        "completion": ("model", "messages"),
        "responses": ("input", "model"),
        "text_completion": ("prompt", "model"),
        "embedding": ("model", "input"),
        "batch_completion": ("model", "messages"),
        "moderation": ("input", "model"),
    }
)
_ROUTER_POSITIONAL: Final = _with_async_twins(
    {
        "completion": ("model", "messages"),
        "embedding": ("model", "input"),
        "text_completion": ("model", "prompt"),
        "responses": (),
        "moderation": (),
    }
)


def _bind(
    positional: Mapping[str, tuple[str, ...]],
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """The call's arguments by name (positional ones bound in LiteLLM's order)."""
    names = positional[name]
    if len(args) > len(names):
        raise TypeError(f"{name}() takes at most {len(names)} positional arguments")
    bound = dict(kwargs)
    for key, value in zip(names, args, strict=False):
        if key in bound:
            raise TypeError(f"{name}() got multiple values for argument {key!r}")
        bound[key] = value
    return bound


#: How an entry point reads its arguments: by name, positional ones bound in LiteLLM's order
#: (``bind``); and for a chat call ``model_list=`` refused (``chat``), for a legacy completion
#: the Completions API's default ``max_tokens`` sent explicitly (``text``).
Binding: TypeAlias = Literal["bind", "chat", "text"]


@dataclass(frozen=True, slots=True)
class _EntryPoint:
    """A guarded function and its async twin (``a`` + ``name``), on the module and a Router."""

    name: str
    #: The key of the endpoint in ``_endpoints`` the call is held at.
    shape: str
    binding: Binding
    #: What the docstrings say after the function's name.
    note: str = ""


#: The guarded entry points the module and Router proxies share. Each row becomes a sync and
#: an async method of both (``_with_entry_points``), so a method body is written once and a
#: new entry point is one row.
_ENTRY_POINTS: Final = (
    _EntryPoint("completion", "chat", "chat"),
    _EntryPoint("responses", "responses", "bind"),
    _EntryPoint("text_completion", "completions", "text", " (legacy completions)"),
    _EntryPoint("embedding", "embeddings", "bind", " (input only)"),
)


def _entry_methods(owner: str, entry: _EntryPoint) -> dict[str, Callable[..., Any]]:
    """The sync and async methods of ``entry``, by name, documented as ``owner``'s."""
    name, twin = entry.name, "a" + entry.name

    # The twins differ only by the ledger they check for and the await.
    def sync(self: _GuardedBase, *args: Any, **kwargs: Any) -> Any:
        endpoint, method, bound, cover = self._ready(entry, name, args, kwargs, self._sync)
        return self._engine.call(endpoint, method, bound, cost=self._cost, cover=cover)

    async def asynchronous(self: _GuardedBase, *args: Any, **kwargs: Any) -> Any:
        endpoint, method, bound, cover = self._ready(entry, twin, args, kwargs, self._async)
        return await self._engine.call(endpoint, method, bound, cost=self._cost, cover=cover)

    sync.__doc__ = f"``{owner}.{name}``{entry.note}, guarded; needs a ``Ledger``."
    asynchronous.__doc__ = f"``{owner}.{twin}``{entry.note}, guarded; needs an ``AsyncLedger``."
    return {name: sync, twin: asynchronous}


_Proxy = TypeVar("_Proxy", bound="_GuardedBase")


def _with_entry_points(cls: type[_Proxy]) -> type[_Proxy]:
    """Give a proxy class the methods of every row of ``_ENTRY_POINTS``."""
    for entry in _ENTRY_POINTS:
        for name, method in _entry_methods(cls._owner, entry).items():
            method.__name__ = name
            method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
    return cls


class _GuardedBase:
    """What the module and router wrappers share: the engine, the sync/async checks, the
    unguarded journal and the refusal of everything unclassified."""

    __slots__ = ("_cost", "_endpoints", "_engine", "_target")
    _owner: str = "litellm"
    _positional: Mapping[str, tuple[str, ...]] = _MODULE_POSITIONAL

    def __init__(self, target: Any, engine: Engine, module: Any) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_cost", litellm_cost(module))
        object.__setattr__(self, "_endpoints", endpoints(litellm_price_name(module)))

    def _classify(self, name: str, value: object) -> Kind:
        raise NotImplementedError

    def _candidates(self, model: str, request: Mapping[str, Any]) -> list[str]:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name in _GuardedBase.__slots__:
            raise AttributeError(name)
        value = getattr(self._target, name)
        if name.startswith("__") and name.endswith("__"):
            if callable(value):
                raise AttributeError(f"{name} is not available through the capledger wrapper")
            return value
        if name in self._engine.settings.unguarded:
            return self._unguarded(name, value)
        kind = self._classify(name, value)
        if kind == "free":
            return value
        if isinstance(value, types.ModuleType):
            return RefusedModule(name)
        return refused_callable(self._owner, name, refusal_reason(name, kind))

    def __setattr__(self, name: str, value: Any) -> None:
        # litellm is configured by setting its attributes: set them on the module.
        setattr(self._target, name, value)

    def __dir__(self) -> list[str]:
        return sorted({*dir(self._target), *type(self).__dict__})

    def __repr__(self) -> str:
        return f"<capledger guarded {self._target!r}>"

    def _sync(self, name: str) -> None:
        if self._engine.is_async:
            raise ConfigurationError(
                f"{self._owner}.{name} is synchronous and this wrapper holds an AsyncLedger: "
                f"call its async twin, or wrap {self._owner} with a Ledger"
            )

    def _async(self, name: str) -> None:
        if not self._engine.is_async:
            raise ConfigurationError(
                f"{self._owner}.{name} is asynchronous and needs an AsyncLedger: call its sync "
                f"twin on this Ledger wrapper, or wrap {self._owner} with an AsyncLedger"
            )

    def _unguarded(self, name: str, function: Any) -> Any:
        """``function`` let through unheld, each call journaled as a zero hold."""
        if not callable(function) or isinstance(function, type | types.ModuleType):
            return function
        engine = self._engine
        if inspect.iscoroutinefunction(function):

            async def journaled_async(*args: Any, **kwargs: Any) -> Any:
                self._async(name)
                return await engine.journal(name, function, args, kwargs)

            return journaled_async

        def journaled(*args: Any, **kwargs: Any) -> Any:
            self._sync(name)
            return engine.journal(name, function, args, kwargs)

        return journaled

    def _plan(
        self, endpoint: Endpoint, kwargs: dict[str, Any]
    ) -> tuple[Endpoint, Callable[[Prepared], Cover | None] | None]:
        """The endpoint to hold ``kwargs`` at, and the cover of the other models it may
        reach (fallbacks, deployments); checks the call can be held at all."""
        model = kwargs.get("model")
        if not isinstance(model, str) or self._candidates(model, kwargs) == [model]:
            return endpoint, None
        reach = Reach(self._engine.settings, endpoint, lambda name: self._candidates(name, kwargs))
        return reach.endpoint(kwargs), reach.cover

    def _ready(
        self,
        entry: _EntryPoint,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        check: Callable[[str], None],
    ) -> tuple[Endpoint, Any, dict[str, Any], Callable[[Prepared], Cover | None] | None]:
        """What the guarded call ``name`` (``entry`` or its twin) needs: the endpoint to hold
        it at, the target's function, the arguments by name and the cover of the other
        models it may reach.

        The arguments are read first, so a malformed call (a ``TypeError``, a refused
        ``model_list``) says so whatever the ledger; then ``check`` checks the ledger is of
        the kind ``name`` needs.
        """
        if entry.binding == "chat":
            bound = self._completion_kwargs(name, args, kwargs)
        else:
            bound = _bind(self._positional, name, args, kwargs)
            if entry.binding == "text":
                bound = self._text_kwargs(bound)
        check(name)
        endpoint, cover = self._plan(self._endpoints[entry.shape], bound)
        return endpoint, getattr(self._target, name), bound, cover

    def _moderation(self, name: str, kwargs: dict[str, Any], *, free: bool) -> Any:
        """The function to call for a moderation: itself when ``free`` (OpenAI's), else
        journaled if ``unguarded`` names it, else refused."""
        function = getattr(self._target, name)
        if name in self._engine.settings.unguarded:
            return self._unguarded(name, function)
        if not free:
            raise refusal(self._owner, name, "only OpenAI's moderation models are known to be free")
        split_options(kwargs)
        return function

    def _moderate(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call the module's moderation ``name`` if it is free (an awaitable for
        ``amoderation``, which its method awaits)."""
        bound = _bind(self._positional, name, args, kwargs)
        return self._moderation(name, bound, free=free_moderation(bound))(**bound)

    def _completion_kwargs(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        bound = _bind(self._positional, name, args, kwargs)
        if bound.get("model_list") is not None:
            raise refusal(
                self._owner,
                f"{name}(model_list=...)",
                "it sends the request to every deployment of the list at once",
            )
        return bound

    @staticmethod
    def _text_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
        # LiteLLM turns a text completion into a chat call for most providers, where no
        # max_tokens may mean far more than the Completions API's 16: send the 16.
        if kwargs.get("max_tokens") is None:
            kwargs["max_tokens"] = COMPLETIONS_DEFAULT_MAX_TOKENS
        return kwargs


@_with_entry_points
class LiteLLMProxy(_GuardedBase):
    """The ``litellm`` module, with every entry point guarded or refused.

    The sync functions need a ``Ledger``, the ``a``-prefixed ones an ``AsyncLedger`` (the
    other raises ``ConfigurationError``). Free attributes (helpers, types, settings) are the
    module's; setting an attribute sets it on the module. See the module docstring.
    """

    __slots__ = ()

    def __init__(self, module: Any, engine: Engine) -> None:
        super().__init__(module, engine, module)

    def _classify(self, name: str, value: object) -> Kind:
        return classify(name, value)

    def _candidates(self, model: str, request: Mapping[str, Any]) -> list[str]:
        return module_candidates(self._target, model, request)

    async def acreate(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.acreate`` (LiteLLM's old name of ``acompletion``), guarded."""
        return await self.acompletion(*args, **kwargs)

    def moderation(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.moderation``: passed to OpenAI's free moderation models, else refused."""
        return self._moderate("moderation", args, kwargs)

    async def amoderation(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.amoderation``; see ``moderation``."""
        return await self._moderate("amoderation", args, kwargs)

    def batch_completion(self, *args: Any, **kwargs: Any) -> list[Any]:
        """``litellm.batch_completion``: each message list is its own guarded call.

        Every request is held before any is sent; if one cannot be, the others are
        released and the refusal raised, with nothing sent. The requests are then sent in
        parallel (``max_workers`` threads, 100 by default); as in LiteLLM, a failed one is
        returned as its exception, in order.

        Raises:
            BudgetExceeded: one of the requests does not fit (nothing was sent).
            InvalidInput: ``messages`` is not a list of message lists, or holds more than
                ``MAX_BATCH``.
        """
        self._sync("batch_completion")
        bound = self._completion_kwargs("batch_completion", args, kwargs)
        batches = bound.pop("messages", None)
        max_workers = bound.pop("max_workers", None) or 100
        if not isinstance(batches, list) or not all(isinstance(item, list) for item in batches):
            raise InvalidInput("batch_completion needs messages= as a list of message lists")
        if len(batches) > MAX_BATCH:
            raise InvalidInput(f"batch_completion holds at most {MAX_BATCH} requests at once")
        options = split_options(bound)
        request_id = options.pop("capledger_request_id", None)
        held: list[tuple[Endpoint, Prepared, Any]] = []
        try:
            for index, messages in enumerate(batches):
                one = {**bound, **options, "messages": messages}
                if request_id is not None:
                    one["capledger_request_id"] = f"{request_id}:{index}"
                endpoint, cover = self._plan(self._endpoints["chat"], one)
                prepared, hold = self._engine.hold(endpoint, one, cover=cover)
                held.append((endpoint, prepared, hold))
        except BaseException:
            for _endpoint, _prepared, hold in held:
                NO_WIRE.run(close(hold, None, quiet=True))
            raise
        if not held:
            return []
        send = self._target.completion
        with ThreadPoolExecutor(max_workers=max(1, min(int(max_workers), len(held)))) as pool:
            futures = [
                pool.submit(self._engine.send, endpoint, send, prepared, hold, cost=self._cost)
                for endpoint, prepared, hold in held
            ]
        results: list[Any] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as error:
                results.append(error)
        return results


@_with_entry_points
class LiteLLMRouterProxy(_GuardedBase):
    """A ``litellm.Router`` with every endpoint guarded or refused.

    A model group is held at the most expensive model it may reach for the request: any of
    its deployments, and those of its fallback groups (the router's ``fallbacks``,
    ``context_window_fallbacks`` and ``content_policy_fallbacks``, and the call's). Every
    other attribute is the router's, classified like the module's (``classify_router``).
    """

    __slots__ = ()
    _owner = "Router"
    _positional = _ROUTER_POSITIONAL

    def __init__(self, router: Any, engine: Engine) -> None:
        # A router exists only once litellm was imported: its cost and provider lookups
        # are there.
        super().__init__(router, engine, sys.modules.get("litellm"))

    def _classify(self, name: str, value: object) -> Kind:
        return classify_router(name, value)

    def _candidates(self, model: str, request: Mapping[str, Any]) -> list[str]:
        return router_candidates(self._target, model, request)

    async def amoderation(self, **kwargs: Any) -> Any:
        """``Router.amoderation``: passed when every model it may reach is OpenAI's free
        moderation, else refused."""
        model = kwargs.get("model")
        reach = router_candidates(self._target, model, kwargs) if isinstance(model, str) else []
        free = bool(reach) and all(free_moderation({"model": name}) for name in reach)
        return await self._moderation("amoderation", kwargs, free=free)(**kwargs)
