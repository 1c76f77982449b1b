"""The token figures a request's framing, tools and media are counted at.

Figures (tokens), and why:

- OpenAI chat framing, from OpenAI's token-counting cookbook: 3 per message (4 for the
  ``gpt-3.5-turbo-0301`` format; we take 4 so both are covered), 1 per ``name``, 3 to prime
  the reply. ``TEMPLATE_SLACK_TOKENS`` (16 per request) covers framing the cookbook does
  not document (reasoning models' system preamble).
- Tool definitions: the JSON of the definition (OpenAI renders it as a shorter TypeScript
  signature; Anthropic as JSON) plus 16 per tool and 32 per request for the surrounding
  namespace text. This is an argued bound, not a proven one: OpenAI does not publish the
  exact rendering.
- Structured output schemas (chat ``response_format``, Responses ``text``, Anthropic
  ``output_config`` / ``output_format``): the UTF-8 bytes of their JSON (a rendering no
  longer than the JSON cannot take more tokens than its bytes) plus 32 for the surrounding
  text. Anthropic also adds a system prompt for structured outputs and publishes no size
  for it; we take the 600 of its tool-use prompt.
- Anthropic adds a tool-use system prompt whenever tools are sent: at most 530 tokens in
  Anthropic's published table (Claude 3 Opus, ``tool_choice`` auto); we take 600 so a newer
  model with a slightly longer prompt stays covered.
- Images: OpenAI bills at most 1,445 tokens for ``gpt-4o`` (85 + 8 tiles x 170), 3,779 for
  the patch-based minis (1,536 patches x 2.46) and 48,169 for ``gpt-4o-mini`` (2,833 + 8 x
  5,667); we take 4,000, and 48,169 for ``gpt-4o-mini``. Anthropic scales images to about
  1,600 tokens (up to about 4,800 on models that accept 2,576-pixel images); Gemini tiles
  large images into 258-token tiles (16 tiles at 3,072 pixels); for both and every other
  provider we take 5,000.
- Files (PDFs): a page count cannot be read offline from a file id or a compressed PDF, so
  a file is bounded by the model's whole context window unless the caller passes
  ``file_tokens``.
- Server-side state (Responses ``previous_response_id``, ``conversation``, a stored
  ``prompt``, an ``item_reference``; a chat assistant turn's ``audio`` id): the provider
  prepends input the request does not carry, and bills all of it as input, so the input is
  bounded by the model's whole context window.
- Audio and parts we do not recognise: the UTF-8 bytes of their JSON. Audio is billed at
  about 10 tokens a second and even 8 kbit/s audio takes 1,333 base64 bytes a second.
- Token arrays (embeddings ``input``, completions ``prompt`` given as token ids): their
  length, exactly. Embeddings add 2 per input (a start and an end marker, which some
  embedding tokenizers add) and 16 per request; embeddings produce no output tokens.
- Legacy completions: ``max_tokens`` defaults to 16 (OpenAI's documented default); each
  prompt of a list gets ``max(n, best_of)`` completions, all billed; ``suffix`` is input;
  with ``echo`` the prompt comes back in the text, and we hold it again as output (the
  dearer side: OpenAI does not document how echoed tokens are billed, and callers have
  measured them counted twice).
- Chat ``prediction`` (predicted outputs): rejected prediction tokens are billed at the
  output rate beyond ``max_completion_tokens``, so the prediction's tokens are held as output.
- Anthropic extended thinking: ``budget_tokens`` is spent inside ``max_tokens``; a limit at
  or below it is refused by Anthropic, so ``min_output_tokens`` is ``budget_tokens + 1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

OPENAI_TOKENS_PER_MESSAGE: Final = 4
OPENAI_TOKENS_PER_NAME: Final = 1
OPENAI_REPLY_PRIMING_TOKENS: Final = 3
TEMPLATE_SLACK_TOKENS: Final = 16
TOKENS_PER_TOOL_DEFINITION: Final = 16
TOKENS_PER_TOOLS_BLOCK: Final = 32
TOKENS_PER_TOOL_CALL: Final = 8
#: Text around a structured-output schema (as around a tools block).
TOKENS_PER_SCHEMA_BLOCK: Final = TOKENS_PER_TOOLS_BLOCK
ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS: Final = 600
#: Anthropic adds a system prompt for structured outputs and publishes no size for it; we
#: take its tool-use prompt's figure.
ANTHROPIC_STRUCTURED_OUTPUT_PROMPT_TOKENS: Final = ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS
#: Anthropic does not publish its chat framing; we allow as much as OpenAI's, twice over.
ANTHROPIC_TOKENS_PER_MESSAGE: Final = 2 * OPENAI_TOKENS_PER_MESSAGE
#: A start and an end marker around each embedded input (BERT-style tokenizers add both).
EMBEDDING_TOKENS_PER_INPUT: Final = 2
#: OpenAI's documented default ``max_tokens`` of a legacy completion.
COMPLETIONS_DEFAULT_MAX_TOKENS: Final = 16
#: How deeply a request may nest (objects and lists); JSON bodies of real requests nest a
#: dozen levels, and an unbounded depth would end in a RecursionError.
MAX_REQUEST_DEPTH: Final = 256
#: Tools the client runs whose description the provider writes, by type prefix: Anthropic
#: publishes 245 tokens for bash, 700 for the text editor, and 466-499 of system prompt plus
#: 735 per definition for computer use (1,234 at most); memory and OpenAI's client tools
#: have no published figure. We take 300, 800 and 1,500, and 1,500 for the rest.
CLIENT_TOOL_PROMPT_TOKENS: Final = {
    "bash_": 300,
    "text_editor_": 800,
    "computer": 1_500,
    "memory_": 1_500,
    "local_shell": 1_500,
    "shell": 1_500,
    "apply_patch": 1_500,
}
#: Types of tools the client executes (the provider only writes the call), per shape.
CLIENT_TOOL_TYPES: Final[Mapping[str, tuple[str, ...]]] = {
    "chat": ("function", "custom"),
    "responses": (
        "function",
        "custom",
        "namespace",
        "computer_use_preview",
        "computer",
        "local_shell",
        "shell",
        "apply_patch",
    ),
    # Type prefixes (the versions are dated: bash_20250124, computer_20251124...).
    "anthropic": ("custom", "bash_", "text_editor_", "computer_", "memory_"),
}
#: Server-side tools we can bound, by type prefix: the genai-prices fee each call bills
#: (None: the provider documents no fee beyond tokens), and whether the tool loads
#: definitions the request does not carry (an MCP server's tool list).
BOUNDED_SERVER_TOOLS: Final[Mapping[str, Mapping[str, tuple[str | None, bool]]]] = {
    "responses": {
        "web_search": ("web_searches", False),  # web_search, web_search_preview, dated
        "file_search": ("storage_searches", False),
        "mcp": (None, True),
    },
    "anthropic": {
        "web_search_": ("web_searches", False),
        "web_fetch_": (None, False),
    },
}
IMAGE_TOKENS_DEFAULT: Final = 5_000
IMAGE_TOKENS_BY_PROVIDER: Final = {"openai": 4_000, "azure": 4_000}
IMAGE_TOKENS_BY_MODEL_PREFIX: Final = {"gpt-4o-mini": 48_169}
