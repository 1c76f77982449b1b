"""Pre-flight estimates: an upper bound on what a request can cost, with no network.

A hold is only safe if it is never smaller than what the call can cost, so every figure
here is an upper bound:

- **input tokens**: each text the model will see is counted exactly with OpenAI's encoding
  (``bpe-openai``, ``pip install 'capledger[tokenizers]'``) for OpenAI models, and otherwise
  bounded by its UTF-8 bytes (a byte-level BPE never yields more tokens than bytes), plus
  the framing each provider adds around messages, names, tools and the reply, and
  conservative per-item figures for images and files (see ``capledger.estimate._shapes``
  and docs/estimate.md for each figure and why);
- **output tokens**: the request's ``max_tokens`` (reasoning included), which the provider
  enforces;
- **rates**: the highest that could apply (see ``Pricebook.worst_case_rates``).

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
