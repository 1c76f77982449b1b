"""How LiteLLM's calls are priced, and every model one call may reach.

A model named ``provider/model`` is priced as ``model`` at ``provider`` (``price_name``); a
settled call at LiteLLM's own figure when it gives one (``litellm_cost``). A call may be sent
to other models than its own (fallbacks, a router group's deployments): ``module_candidates``
and ``router_candidates`` list them, and ``Reach`` holds the call at the dearest.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from capledger.estimate import estimate
from capledger.integrations._calls import CALL_OPTIONS, Endpoint, Prepared, Settings
from capledger.integrations._engine import Cover
from capledger.pricing._pricebook import round_up_usd

__all__ = [
    "LITELLM_ENDPOINT",
    "MAX_CANDIDATES",
    "Reach",
    "endpoints",
    "litellm_cost",
    "litellm_price_name",
    "module_candidates",
    "price_name",
    "router_candidates",
]

_LOG = logging.getLogger("capledger.integrations")

#: LiteLLM's provider prefixes that name a genai-prices provider.
_PROVIDERS: Final = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai": "google",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "cohere": "cohere",
}
#: The most models one call is held over (the model, its fallbacks, a group's deployments).
MAX_CANDIDATES: Final = 64


def price_name(model: str) -> tuple[str, str | None]:
    """``provider/model`` -> (``model``, genai-prices provider); other names unchanged."""
    prefix, slash, rest = model.partition("/")
    if slash and prefix in _PROVIDERS:
        return rest, _PROVIDERS[prefix]
    return model, None


def litellm_price_name(module: Any) -> Callable[[str], tuple[str, str | None]]:
    """``price_name``, and for a model named without a provider, the provider LiteLLM would
    send it to (``litellm.get_llm_provider``: ``text-embedding-3-small`` is OpenAI's)."""
    finder = getattr(module, "get_llm_provider", None)

    @functools.lru_cache(maxsize=256)
    def priced(model: str) -> tuple[str, str | None]:
        name, provider = price_name(model)
        if provider is not None or finder is None or "/" in model:
            return name, provider
        try:
            found = finder(model=model)[1]
        except Exception:  # LiteLLM raises for a model it cannot route; price it as named
            return name, None
        return name, _PROVIDERS.get(found) if isinstance(found, str) else None

    return priced


# LiteLLM maps ``max_tokens`` onto every provider; ``max_completion_tokens`` on fewer.
LITELLM_ENDPOINT: Final = Endpoint("chat", ("max_tokens", "max_completion_tokens"), price_name)


def endpoints(priced: Callable[[str], tuple[str, str | None]]) -> dict[str, Endpoint]:
    """The APIs LiteLLM guards, by shape, with models priced by ``priced``."""
    return {
        "chat": Endpoint("chat", LITELLM_ENDPOINT.limit_keys, priced),
        "responses": Endpoint("responses", ("max_output_tokens",), priced),
        # The legacy Completions API and embeddings: no default output limit is added (16
        # is sent explicitly for the first; the second has no output).
        "completions": Endpoint("completions", ("max_tokens",), priced, sets_limit=False),
        "embeddings": Endpoint("embeddings", (), priced, sets_limit=False),
    }


def _usd(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        # LiteLLM reports a float: read it through str, as capledger reads every float.
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount <= 0:
        # 0 is what LiteLLM reports for a model it cannot price: use our prices instead.
        return None
    return round_up_usd(amount)


def litellm_cost(module: Any) -> Callable[[Any], Decimal | None]:
    """A function reading LiteLLM's own cost of a response (``None`` if it gives none).

    Args:
        module: the ``litellm`` module, whose ``completion_cost`` is the fallback.
    """

    def cost(response: Any) -> Decimal | None:
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict):
            found = _usd(hidden.get("response_cost"))
            if found is not None:
                return found
        calculator = getattr(module, "completion_cost", None)
        if calculator is None:
            return None
        try:
            return _usd(calculator(completion_response=response))
        except Exception:  # LiteLLM raises many kinds for a model it cannot price
            _LOG.debug("capledger: litellm.completion_cost failed", exc_info=True)
            return None

    return cost


def _model_names(entries: object) -> list[str]:
    """Model names from a fallbacks list: names, or dicts with a ``model``."""
    found: list[str] = []
    if isinstance(entries, str):
        return [entries]
    if not isinstance(entries, Iterable) or isinstance(entries, Mapping):
        return found
    for entry in entries:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, Mapping) and isinstance(entry.get("model"), str):
            found.append(entry["model"])
    return found


def module_candidates(module: Any, model: str, request: Mapping[str, Any]) -> list[str]:
    """Every model ``litellm.completion(model=model, **request)`` may send to.

    The model (through ``litellm.model_alias_map``), its ``fallbacks`` (the request's, else
    ``litellm.model_fallbacks``) and the chain of ``context_window_fallback_dict``.
    """
    aliases = getattr(module, "model_alias_map", None) or {}
    fallbacks = request.get("fallbacks") or getattr(module, "model_fallbacks", None) or ()
    window = request.get("context_window_fallback_dict") or {}
    queue = [model, *_model_names(fallbacks)]
    found: list[str] = []
    while queue and len(found) < MAX_CANDIDATES:
        name = queue.pop(0)
        name = aliases.get(name, name) if isinstance(aliases, Mapping) else name
        if not isinstance(name, str) or name in found:
            continue
        found.append(name)
        if isinstance(window, Mapping) and isinstance(window.get(name), str):
            queue.append(window[name])
    return found


def _wildcard(pattern: str, model: str) -> str | None:
    """The part of ``model`` matched by the ``*`` of ``pattern``, or None if it does not
    match."""
    regex = "^" + ".*?".join(re.escape(part) for part in pattern.split("*")) + "$"
    regex = regex.replace(".*?", "(.*)", 1)
    matched = re.match(regex, model)
    if matched is None:
        return None
    return matched.group(1) if matched.groups() else ""


def _deployment_names(router: Any, group: str) -> list[str]:
    """The model names of the deployments serving ``group`` (wildcard groups included)."""
    names: list[str] = []
    exact = [d for d in _model_list(router) if d.get("model_name") == group]
    chosen = exact
    if not exact:
        chosen = [
            d
            for d in _model_list(router)
            if "*" in str(d.get("model_name", ""))
            and _wildcard(str(d["model_name"]), group) is not None
        ]
    for deployment in chosen:
        params = deployment.get("litellm_params") or {}
        info = deployment.get("model_info") or {}
        name = info.get("base_model") or params.get("base_model") or params.get("model")
        if not isinstance(name, str):
            continue
        if "*" in name:
            matched = _wildcard(str(deployment.get("model_name", "")), group)
            name = name.replace("*", matched if matched is not None else group, 1)
        names.append(name)
    return names


def _model_list(router: Any) -> list[Mapping[str, Any]]:
    registry = getattr(router, "registry", None)
    # LiteLLM 1.110 reads the deployments through registry() (model_list is deprecated).
    listed = registry().all() if callable(registry) else getattr(router, "model_list", None)
    return [entry for entry in listed or () if isinstance(entry, Mapping)]


def _router_setting(router: Any, name: str) -> Any:
    settings = getattr(router, "settings", None)
    if callable(settings):  # LiteLLM 1.110: settings() (the attributes are deprecated)
        return getattr(settings(), name, None)
    return getattr(router, name, None)


def _router_aliases(router: Any) -> Any:
    registry = getattr(router, "registry", None)
    if callable(registry):
        return registry().aliases()
    return getattr(router, "model_group_alias", None)


def _fallback_groups(rules: object, group: str) -> list[str]:
    """The fallback groups a router's rules (``[{group: [fallbacks]}]``) name for
    ``group``, with the ``*`` default."""
    found: list[str] = []
    for rule in rules if isinstance(rules, list | tuple) else ():
        if isinstance(rule, str):
            found.append(rule)  # a per-call list of fallback groups
        elif isinstance(rule, Mapping):
            for key in (group, "*"):
                found.extend(_model_names(rule.get(key)))
    return found


def router_candidates(router: Any, model: str, request: Mapping[str, Any]) -> list[str]:
    """Every model a router may send ``model`` (a group, an alias or a model) to.

    The deployments of the group (through ``model_group_alias``), and those of every
    fallback group (``fallbacks``, ``context_window_fallbacks``,
    ``content_policy_fallbacks``: the router's and the request's), transitively.
    """
    aliases = _router_aliases(router) or {}
    rules: list[object] = []
    for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        rules.extend(rule for rule in (request.get(key), _router_setting(router, key)) if rule)
    queue = [model]
    seen: set[str] = set()
    found: list[str] = []
    while queue and len(seen) < MAX_CANDIDATES:
        group = queue.pop(0)
        alias = aliases.get(group) if isinstance(aliases, Mapping) else None
        if isinstance(alias, Mapping):
            alias = alias.get("model")
        group = alias if isinstance(alias, str) else group
        if group in seen:
            continue
        seen.add(group)
        deployments = _deployment_names(router, group)
        for name in deployments or [group]:
            if name not in found:
                found.append(name)
        for rule in rules:
            queue.extend(_fallback_groups(rule, group))
    return found


class Reach:
    """The models one call may reach, and the worst case over them for a request."""

    __slots__ = ("_candidates", "_endpoint", "_settings")

    def __init__(
        self, settings: Settings, endpoint: Endpoint, candidates: Callable[[str], list[str]]
    ) -> None:
        self._settings = settings
        self._endpoint = endpoint
        self._candidates = candidates

    def _estimates(self, model: str, request: Mapping[str, Any]) -> list[tuple[str, Any]]:
        settings = self._settings
        body = {key: value for key, value in request.items() if key not in CALL_OPTIONS}
        endpoint = self._endpoint
        if (
            endpoint.sets_limit
            and settings.default_max_tokens is not None
            and all(body.get(key) is None for key in endpoint.limit_keys)
        ):
            body[endpoint.limit_keys[0]] = settings.default_max_tokens  # as reserve_flow does
        found = []
        for name in self._candidates(model):
            price_model, provider = endpoint.price_name(name)
            est = estimate(
                price_model,
                body,
                settings.provider or provider,
                shape=endpoint.shape,
                pricebook=settings.pricebook,
            )
            found.append((name, est))
        return found

    def endpoint(self, request: Mapping[str, Any]) -> Endpoint:
        """The endpoint whose price names map each model to its most expensive reach."""
        base = self._endpoint
        worst: dict[str, tuple[str, str | None]] = {}

        def priced_as(model: str) -> tuple[str, str | None]:
            if model not in worst:
                reached = self._estimates(model, request)
                name = max(reached, key=lambda pair: pair[1].worst_case_usd)[0]
                worst[model] = base.price_name(name)
            return worst[model]

        return Endpoint(base.shape, base.limit_keys, priced_as, sets_limit=base.sets_limit)

    def cover(self, prepared: Prepared) -> Cover | None:
        """The largest worst case over every model the request as sent may reach."""
        reached = self._estimates(prepared.model, prepared.request)
        if len(reached) < 2:
            return None
        usd = max(est.worst_case_usd for _name, est in reached)
        tokens = max(_held_tokens(est) for _name, est in reached)
        return Cover(usd, tokens)


def _held_tokens(est: Any) -> int:
    extra = getattr(est, "extra_output_tokens", 0)
    return int((est.input_tokens_bound + est.output_tokens_bound + extra) * est.choices)
