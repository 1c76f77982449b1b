"""Pre-flight estimates: an upper bound on what a request can cost, with no network.

A hold is only safe if it is never smaller than what the call can cost, so every figure
here is an upper bound:

- **input tokens**: each text the model will see is counted exactly with OpenAI's encoding
  (``bpe-openai``, ``pip install 'capledger[tokenizers]'``) for OpenAI models, and otherwise
  bounded by its UTF-8 bytes (a byte-level BPE never yields more tokens than bytes), plus
  the framing each provider adds around messages, names, tools and the reply, and
  conservative per-item figures for images and files (see
  ``capledger.estimate._shapes._figures`` and docs/estimate.md for each figure and why);
- **output tokens**: the request's ``max_tokens`` (reasoning included), which the provider
  enforces, plus output billed beyond it (rejected ``prediction`` tokens, an ``echo``);
- **rates**: the highest that could apply (see ``Pricebook.worst_case_rates``), including
  the dearest service tier genai-prices knows when the request pins none (no
  ``service_tier``, or ``auto``): the project's default tier may be priority. A pinned
  tier is held at its own rate, and refused (``UnknownModel``) when genai-prices cannot
  price it;
- **server-side tools** (web search, file search, MCP, web fetch): each call is held at its
  genai-prices fee plus another turn of at most the context window, when the calls are
  capped (Responses ``max_tool_calls``, Anthropic ``max_uses``). A server-side tool whose
  calls are not capped, whose fee is unknown, or that capledger cannot price at all (code
  execution, image generation, a hosted shell, Chat Completions ``web_search_options``, the
  search models) makes ``estimate`` raise ``UnguardedRequest`` naming the tool.

Top-level keys a shape does not know are counted as input by the bytes of their JSON, so a
field merged in through ``extra_body`` is never free; embeddings and legacy completions
need ``shape=``. docs/estimate.md has every figure and decision.

Example::

    from capledger.estimate import affordable_max_tokens, worst_case_cost

    worst_case_cost("gpt-4o", {"messages": [...], "max_completion_tokens": 500})
    affordable_max_tokens("gpt-4o", {"messages": [...]}, available="0.05")
"""

from capledger.estimate._estimate import (
    Estimate,
    affordable_max_tokens,
    estimate,
    input_token_bound,
    worst_case_cost,
)
from capledger.estimate._shapes import SHAPES, Shape

__all__ = [
    "SHAPES",
    "Estimate",
    "Shape",
    "affordable_max_tokens",
    "estimate",
    "input_token_bound",
    "worst_case_cost",
]
