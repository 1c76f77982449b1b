"""A fake LLM provider served over real HTTP on loopback, that bills like a provider.

``FakeProvider`` answers the OpenAI and Anthropic endpoints the official SDKs call (chat
completions, Responses, embeddings, Messages; JSON and server-sent events) from a stdlib
``ThreadingHTTPServer`` bound to ``127.0.0.1`` on a free port, and keeps the bill a provider
would send. It knows nothing of capledger's estimator: it is the independent party a test
asks "what did the provider charge?".

Example::

    with FakeProvider(want=5) as fake:
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
        )
        client.close()
        fake.bill    # Decimal('0.000005400'): 16 input tokens x $0.15/M + 5 x $0.60/M

OpenAI clients use ``base_url=fake.url + "/v1"``, Anthropic clients ``base_url=fake.url``;
paths without the ``/v1`` prefix are served too.

How a call is billed (every count an integer, every amount a ``Decimal``):

- **input tokens** = ``ceil(B / 3)`` where ``B`` is the UTF-8 byte length of
  ``json.dumps(parts, separators=(",", ":"), sort_keys=True, ensure_ascii=False)`` and
  ``parts`` is the dict of the request's input-bearing keys that are present, among
  ``INPUT_KEYS`` (messages, input, system, instructions, prompt, tools, functions,
  response_format, text, output_config, output_format): schemas and tools are input, as
  providers bill them. ``count_tokens`` / ``input_tokens`` answer the same figure.
- **output tokens**: the model wants ``want`` visible tokens (each the text ``"tok "``; with
  a JSON schema or JSON object format, the pieces of a small JSON value the schema accepts,
  so the SDKs' ``parse`` helpers work); a reasoning model (OpenAI ``o<digit>...`` and
  ``gpt-5...``, Anthropic requests whose ``thinking`` is not disabled) first spends
  ``reasoning`` hidden tokens. Per choice, ``reasoning_used = min(reasoning, limit)`` and
  ``visible = min(want, limit - reasoning_used)``, where ``limit`` is the request's
  ``max_completion_tokens`` (else ``max_tokens``) / ``max_output_tokens`` / ``max_tokens``,
  or ``default_output_limit`` (32,768) when absent. Output = ``n x (reasoning_used +
  visible)``; the reply is cut (``finish_reason="length"``, ``status="incomplete"``,
  ``stop_reason="max_tokens"``) when ``reasoning + want > limit``. Embeddings have no
  output. Reasoning is reported as ``reasoning_tokens`` (OpenAI) and inside
  ``output_tokens`` (Anthropic: a thinking block with an empty text and a signature).
- **cost** = ``(input - cached - cache_write) x input_rate + cached x cached_rate +
  cache_write x cache_write_rate + output x output_rate``, rates in USD per million tokens,
  rounded up to 1e-9 USD per call. Cached and cache-write tokens come only from the script
  (``Behaviour.cached_tokens`` / ``cache_write_tokens``, capped at the input); a missing
  cached or cache-write rate bills those tokens at the input rate. OpenAI endpoints ignore
  cache writes (OpenAI does not bill them). Anthropic reports ``input_tokens`` without the
  cached and written tokens, as Anthropic does; OpenAI reports them inside the input.
- **tier**: a request with ``service_tier="priority"``, or one that pins no tier (absent or
  ``"auto"``) while the fake's ``project_tier`` is ``"priority"``, is billed at priority
  rates (``FakePrices.priority_*``, else the standard rates times ``priority_multiplier``)
  and reports tier ``priority``; every other request is billed at standard rates and
  reports ``default`` (OpenAI) or ``standard`` (Anthropic).
- The bill is recorded **when processing starts** (body read and validated), for the whole
  generation, before any delay or byte of the reply: a client that times out or hangs up
  mid-stream has still been charged. Validation errors (4xx: bad JSON, no model, unknown
  model, no messages or input, Anthropic without ``max_tokens``), scripted 4xx, 503 and 529
  errors and the free endpoints are never billed. Free: every ``GET`` (``/v1/models``,
  ``/v1/models/{id}``, anything), ``DELETE``/``PUT``/``PATCH``, ``POST
  /v1/messages/count_tokens``, ``POST /v1/responses/input_tokens``, and the posts
  providers do not bill (moderations, file uploads, cancellations, metadata updates,
  conversation items). Any other ``POST`` (images, audio, batch submissions, legacy
  completions, ``responses/compact``, ...) answers a small JSON and bills ``other_fee``.

The input figure, one token per 3 bytes of the request's JSON, stays under capledger's
byte bound (every text's UTF-8 bytes, plus framing), which is what capledger holds for
Anthropic models and for OpenAI models when ``bpe-openai`` is not installed. With
``bpe-openai`` installed, capledger counts OpenAI texts exactly, and English runs about 4
bytes a token: a prompt of more than a few hundred bytes is then billed here *above*
capledger's bound (a 6,000-byte English prompt: 2,048 tokens here, a bound of about 1,600).
A test of a guarded OpenAI client must keep its prompts short or raise
``bytes_per_input_token``; text made of 1- or 2-byte tokens (``"a a a a"``) counts fewer
tokens here than the exact tokenizer does.

Faults come from ``script(path, body, attempt)``, called for every ``POST``: ``path`` is the
canonical path (``/v1/chat/completions``), ``body`` the parsed JSON object (``None`` if the
body is not one), ``attempt`` 1 for the first request to that path since construction or
``reset``. It returns a :class:`Behaviour` or ``None``; fields it leaves ``None`` fall back
to the constructor's knobs. Streams are sent with ``Transfer-Encoding: chunked`` and
``Connection: close``: a ``drop_after`` cut is an unfinished chunked body, which the SDKs
raise as a connection error (``openai.APIConnectionError``, ``httpx2.RemoteProtocolError``
from the Anthropic stream).

With ``omit_usage`` an Anthropic stream has no ``usage`` in ``message_start`` nor in
``message_delta``: the raw stream (``messages.create(stream=True)``) reads it, but the
SDK's ``messages.stream`` helper fails on it (it needs a usage to update).

Where each part lives: ``_provider`` (the server, its life and the bookkeeping of calls
and the bill), ``_handler`` (the HTTP shell), ``_prices`` (rates and cost), ``_calls``
(scripts, plans and call records), and the reply bodies in ``_openai``, ``_anthropic`` and
``_shared``.
"""

from capledger.testing.fake_provider._calls import Behaviour, FakeCall, Script
from capledger.testing.fake_provider._prices import (
    BYTES_PER_INPUT_TOKEN,
    DEFAULT_OTHER_FEE_USD,
    DEFAULT_OUTPUT_LIMIT_TOKENS,
    DEFAULT_PRICES,
    INPUT_KEYS,
    FakePrices,
    input_tokens_of,
)
from capledger.testing.fake_provider._provider import FakeProvider

__all__ = [
    "BYTES_PER_INPUT_TOKEN",
    "DEFAULT_OTHER_FEE_USD",
    "DEFAULT_OUTPUT_LIMIT_TOKENS",
    "DEFAULT_PRICES",
    "INPUT_KEYS",
    "Behaviour",
    "FakeCall",
    "FakePrices",
    "FakeProvider",
    "Script",
    "input_tokens_of",
]
