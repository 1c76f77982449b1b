"""Guard real LLM calls: OpenAI, Anthropic, LiteLLM, any function, and Datasette's accountant.

- ``wrap(client, ledger, scopes=..., policy=...)``: an OpenAI / Anthropic client, guarded at
  the wire (every request its HTTP client sends is held at its worst case, clamped or
  refused by the policy, and settled at the provider's own usage; endpoints that cannot be
  priced are refused), or the ``litellm`` module, guarded at its functions (guarantee G2).
  ``call_options(...)`` gives one call its own scopes, tags or request id.
- ``guard(ledger, scopes=..., estimate=..., actual=...)``: the same for any function.
- ``capledger.integrations.datasette.CapledgerAccountant``: a ledger as an accountant for
  ``datasette-llm-accountant`` (imported on its own, as it needs that package).
- Policies: ``"raise"``, ``"clamp"`` / ``Clamp(floor=...)``, ``Downgrade({...})``, or a
  callable given a ``ShortBudget``.

No SDK is imported here: clients are recognised by their module and class names.
"""

from capledger.integrations._guard import guard
from capledger.integrations._policy import Clamp, Downgrade, ShortBudget
from capledger.integrations._routes import call_options
from capledger.integrations._streams import AsyncGuardedStream, GuardedStream
from capledger.integrations._wrap import DEFAULT_MAX_TOKENS, GUARDED_CALL_TTL_S, wrap

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "GUARDED_CALL_TTL_S",
    "AsyncGuardedStream",
    "Clamp",
    "Downgrade",
    "GuardedStream",
    "ShortBudget",
    "call_options",
    "guard",
    "wrap",
]
