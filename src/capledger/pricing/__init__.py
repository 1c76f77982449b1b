"""Prices of LLM calls: what a call cost, from its usage, rounded up to the nano-USD.

Prices come from the ``genai-prices`` package (``pip install 'capledger[prices]'``), which
is imported only when a price is first needed. On top of it, a :class:`Pricebook` holds the
user's own prices and aliases (in code or from a TOML file) and the policy for models that
nobody has priced: ``raise`` (the default, so an unpriced call is never treated as free) or
``warn``.

Example::

    from capledger import pricing

    pricing.cost("gpt-4o", response.usage)              # Decimal('0.00725')
    book = pricing.default_pricebook()
    book.set_alias("prod-gpt", "gpt-4o", provider="openai")
    book.set_price("my-finetune", input="3", output="12")
"""

from capledger.pricing._pricebook import (
    Policy,
    Price,
    Pricebook,
    PriceSource,
    PriceTier,
    Rates,
    UnpricedModelWarning,
    cost,
    default_pricebook,
    list_prices,
    price,
)
from capledger.pricing._usage import Usage, parse_usage

__all__ = [
    "Policy",
    "Price",
    "PriceSource",
    "PriceTier",
    "Pricebook",
    "Rates",
    "UnpricedModelWarning",
    "Usage",
    "cost",
    "default_pricebook",
    "list_prices",
    "parse_usage",
    "price",
]
