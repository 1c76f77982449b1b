"""From a model name to what prices it: case-insensitive keys, the provider a name
implies, fine-tunes never priced as their base model, and the sentence said when no price
is found."""

from __future__ import annotations

import re
from typing import Final

from capledger.errors import InvalidInput
from capledger.pricing import _genai
from capledger.pricing._records import Resolved

#: Model names that say which provider serves them, for lookups that name no provider:
#: OpenAI fine-tunes and embeddings, Bedrock model ids (``anthropic.claude-...-v1:0``, with
#: an optional cross-region prefix such as ``us.`` or ``global.``) and Vertex AI's
#: ``claude-...@date`` ids (priced at Vertex's own rates, genai-prices' ``google``).
PROVIDER_BY_NAME: Final = (
    (re.compile(r"^ft:|^text-embedding-"), "openai"),
    (
        re.compile(
            r"^(?:(?:us|eu|apac|global|us-gov|jp|au|ca)\.)?"
            r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|qwen|openai|writer)\."
        ),
        "aws",
    ),
    (re.compile(r"^claude-[^@]*@"), "google"),
)
#: Fine-tuned model names: they are priced only at a fine-tuned rate, never the base's.
FINE_TUNED: Final = re.compile(r"^ft:|\.ft-")


def model_key(model: str) -> str:
    """The key a model name is priced under: stripped, lower case."""
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput(f"a model name must be a non-empty string, not {model!r}")
    return model.strip().lower()


def provider_from_name(model: str) -> str | None:
    """The provider a model name implies (``PROVIDER_BY_NAME``), if any."""
    name = model.strip().lower()
    for pattern, provider in PROVIDER_BY_NAME:
        if pattern.search(name):
            return provider
    return None


def unknown_message(model: str, provider: str | None) -> str:
    """What ``UnknownModel`` says for a model nobody priced."""
    where = f" from provider {provider!r}" if provider else ""
    fine_tuned = ""
    if FINE_TUNED.search(model.strip().lower()):
        fine_tuned = (
            " (a fine-tune is priced at its own fine-tuned rate, never its base model's, "
            "and genai-prices has none for it)"
        )
    return (
        f"no price is known for model {model!r}{where}{fine_tuned}; price it with "
        "Pricebook.set_price or alias it to a known model with Pricebook.set_alias"
    )


def resolve_in_package(target: str, provider: str | None, alias_note: str) -> Resolved | None:
    """``target`` in the genai-prices data (``provider`` ``None``: implied by the name)."""
    found = _genai.lookup(target, provider or provider_from_name(target))
    if found is None:
        return None
    provider_info, model_info = found
    if FINE_TUNED.search(target.lower()) and not FINE_TUNED.search(model_info.id):
        # Fine-tuned inference costs more than the base model's: never price it as the
        # base. genai-prices carries fine-tuned rates for a few models (ft:gpt-4o...).
        return None
    return Resolved(model_info.id, provider_info.id, alias_note, None, found)
