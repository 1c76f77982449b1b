"""LiteLLM: ``completion`` / ``acompletion`` guarded like the SDK clients.

LiteLLM speaks the OpenAI Chat Completions shape for every provider, so the request is
estimated as a chat request and its usage read as chat usage. The model name
``provider/model`` is priced as ``model`` at ``provider`` (``gemini/`` and ``vertex_ai/`` as
``google``). A settled call is priced with LiteLLM's own figure when the response carries one
(``_hidden_params["response_cost"]``, else ``litellm.completion_cost``), converted through
``str`` to ``Decimal`` and rounded up to the nano-USD; otherwise with capledger's prices.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from capledger.errors import ConfigurationError
from capledger.integrations._engine import Engine
from capledger.integrations._plan import LITELLM_CHAT, Endpoint
from capledger.pricing._pricebook import round_up_usd

__all__ = ["LITELLM_ENDPOINT", "LiteLLMProxy", "litellm_cost", "price_name"]

_LOG = logging.getLogger("capledger.integrations")

#: LiteLLM's provider prefixes that name a genai-prices provider.
_PROVIDERS: Final = {
    "openai": "openai",
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


def price_name(model: str) -> tuple[str, str | None]:
    """``provider/model`` -> (``model``, genai-prices provider); other names unchanged."""
    prefix, slash, rest = model.partition("/")
    if slash and prefix in _PROVIDERS:
        return rest, _PROVIDERS[prefix]
    return model, None


LITELLM_ENDPOINT: Final = Endpoint(LITELLM_CHAT.shape, LITELLM_CHAT.limit_keys, price_name)


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


def litellm_cost(module: Any) -> Any:
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


class LiteLLMProxy:
    """The ``litellm`` module with ``completion`` (sync ledger) and ``acompletion``
    (``AsyncLedger``) guarded; every other attribute is the module's."""

    __slots__ = ("_cost", "_engine", "_target")

    def __init__(self, module: Any, engine: Engine) -> None:
        self._target = module
        self._engine = engine
        self._cost = litellm_cost(module)

    def __getattr__(self, name: str) -> Any:
        if name in ("_target", "_engine", "_cost"):
            raise AttributeError(name)
        return getattr(self._target, name)

    def __repr__(self) -> str:
        return f"<capledger guarded {self._target!r}>"

    def completion(self, **kwargs: Any) -> Any:
        """``litellm.completion``, guarded; needs a ``Ledger``."""
        if self._engine.is_async:
            raise ConfigurationError(
                "litellm.completion is synchronous: wrap litellm with a Ledger, or call "
                "acompletion on this AsyncLedger wrapper"
            )
        return self._engine.call(LITELLM_ENDPOINT, self._target.completion, kwargs, cost=self._cost)

    async def acompletion(self, **kwargs: Any) -> Any:
        """``litellm.acompletion``, guarded; needs an ``AsyncLedger``."""
        if not self._engine.is_async:
            raise ConfigurationError(
                "litellm.acompletion needs an AsyncLedger: wrap litellm with one, or call "
                "completion on this Ledger wrapper"
            )
        return await self._engine.acall(
            LITELLM_ENDPOINT, self._target.acompletion, kwargs, cost=self._cost
        )
