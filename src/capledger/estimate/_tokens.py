"""Counting the tokens of a text: exactly, with OpenAI's encodings, or bounded by its bytes.

The byte bound, and what is proven about it:

- A byte-level BPE (every OpenAI encoding) splits the UTF-8 bytes of a text into tokens of
  at least one byte each, so ``tokens(text) <= len(text.encode())``. Proven.
- A SentencePiece tokenizer with byte fallback (Gemini's, Llama's) emits at most one token
  per byte of its normalised text, plus the one dummy-prefix marker it may add. We count
  ``max(bytes(text), bytes(NFKC(text))) + 1`` per text, which covers a tokenizer that
  normalises with NFKC (the normalisation that can grow a text). This holds for any
  tokenizer that emits at most one token per byte of its input after NFKC or no
  normalisation; a tokenizer that expands text in other ways is not covered, and none of
  the major providers' public tokenizers do.
"""

from __future__ import annotations

import threading
import unicodedata
import warnings
from collections.abc import Callable
from typing import Final

from capledger.errors import ConfigurationError

__all__ = ["byte_bound", "encoding_for_model", "exact_counter"]

#: Which OpenAI encoding a model family uses, after tiktoken's own model table. The longest
#: matching prefix wins (``gpt-4o`` before ``gpt-4``). Models not listed get the byte bound.
ENCODING_BY_MODEL_PREFIX: Final = {
    "gpt-5": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4o": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
    "gpt-35-turbo": "cl100k_base",
    "text-embedding-3": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
}
#: Providers that serve OpenAI's models with OpenAI's tokenizers.
OPENAI_TOKENIZER_PROVIDERS: Final = frozenset({"openai", "azure"})

#: The extra token a SentencePiece tokenizer may add in front of a text (its dummy prefix).
BYTE_BOUND_SLACK_PER_TEXT: Final = 1


def encoding_for_model(model: str, provider: str | None) -> str | None:
    """The OpenAI encoding of ``model`` if we know it exactly, else ``None``."""
    if provider is not None and provider.lower() not in OPENAI_TOKENIZER_PROVIDERS:
        return None
    name = model.strip().lower()
    for prefix in ("openai/", "azure/", "ft:"):
        name = name.removeprefix(prefix)
    matches = [prefix for prefix in ENCODING_BY_MODEL_PREFIX if name.startswith(prefix)]
    if not matches:
        return None
    return ENCODING_BY_MODEL_PREFIX[max(matches, key=len)]


def byte_bound(text: str) -> int:
    """An upper bound on the tokens of ``text`` under any byte-level or byte-fallback
    tokenizer: ``max(utf8 bytes, utf8 bytes after NFKC) + 1`` (0 for an empty text)."""
    if not text:
        return 0
    if text.isascii():  # NFKC leaves ASCII unchanged
        return len(text) + BYTE_BOUND_SLACK_PER_TEXT
    raw = len(text.encode("utf-8", "surrogatepass"))
    normalised = len(unicodedata.normalize("NFKC", text).encode("utf-8", "surrogatepass"))
    return max(raw, normalised) + BYTE_BOUND_SLACK_PER_TEXT


_counters: dict[str, Callable[[str], int]] = {}
_counters_lock = threading.Lock()


def exact_counter(encoding: str) -> Callable[[str], int] | None:
    """A function counting tokens exactly in ``encoding``, or ``None`` without bpe-openai."""
    with _counters_lock:
        counter = _counters.get(encoding)
        if counter is None:
            counter = _load_counter(encoding)
            if counter is None:
                return None
            _counters[encoding] = counter
        return counter


def _load_counter(encoding: str) -> Callable[[str], int] | None:
    with warnings.catch_warnings():
        # bpe-openai 0.1.4 reads its data, at import, with a deprecated importlib.resources
        # call; the warning is theirs and would fail every caller running with -W error.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import bpe_openai  # noqa: PLC0415 - optional extra, imported on first use
        except ImportError:
            return None
        try:
            # The Rust binding counts a text of any length; the public wrapper refuses texts
            # over 1M characters or 200k tokens, which long-context prompts pass.
            from bpe_openai._bindings import tokenizer_for_encoding  # noqa: PLC0415

            backend = tokenizer_for_encoding(encoding)
        except (ImportError, AttributeError):
            backend = None
        if backend is not None:
            count: Callable[[str], int] = backend.count
            return lambda text: count(_valid_utf8(text))
        try:
            public = bpe_openai.get_encoding(encoding)
        except Exception as error:
            raise ConfigurationError(f"bpe-openai cannot load {encoding}: {error}") from error
    return lambda text: _count_public(public, text)


def _count_public(encoding: object, text: str) -> int:
    # Texts the public wrapper refuses fall back to the byte bound, which is still safe.
    try:
        tokens: list[int] = encoding.encode_ordinary(text)  # type: ignore[attr-defined]
    except ValueError:
        return byte_bound(text)
    return len(tokens)


def _valid_utf8(text: str) -> str:
    # A lone surrogate cannot be sent over the wire as UTF-8; the SDKs replace it, so do we.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
