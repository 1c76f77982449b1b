"""Guard real LLM calls: OpenAI, Anthropic, LiteLLM, any function, and Datasette's accountant.

- ``wrap(client, ledger, scopes=..., policy=...)``: an OpenAI / Anthropic client (sync or
  async, streamed or not, Chat Completions, Responses, Messages) or the ``litellm`` module,
  with every billable call held at its worst case, clamped or refused by the policy, and
  settled at its exact cost (guarantee G2).
- ``guard(ledger, scopes=..., estimate=..., actual=...)``: the same for any function.
- ``capledger.integrations.datasette.CapledgerAccountant``: a ledger as an accountant for
  ``datasette-llm-accountant`` (imported on its own, as it needs that package).
- Policies: ``"raise"``, ``"clamp"`` / ``Clamp(floor=...)``, ``Downgrade({...})``, or a
  callable given a ``ShortBudget``.

No SDK is imported here: clients are recognised by their module and class names.
"""

from capledger.integrations._guard import guard
from capledger.integrations._policy import Clamp, Downgrade, ShortBudget
from capledger.integrations._streams import (
    AsyncGuardedMessageStream,
    AsyncGuardedStream,
    GuardedMessageStream,
    GuardedStream,
)
from capledger.integrations._wrap import DEFAULT_MAX_TOKENS, DEFAULT_TTL_S, wrap

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TTL_S",
    "AsyncGuardedMessageStream",
    "AsyncGuardedStream",
    "Clamp",
    "Downgrade",
    "GuardedMessageStream",
    "GuardedStream",
    "ShortBudget",
    "guard",
    "wrap",
]
