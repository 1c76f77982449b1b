"""The input bound is never below the exact token count of a real tokenizer (bpe-openai)."""

from __future__ import annotations

import json
import unicodedata
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capledger.estimate import input_token_bound
from capledger.estimate._tokens import byte_bound
from capledger.pricing import Pricebook

with warnings.catch_warnings():
    # bpe-openai 0.1.4 loads its data with importlib.resources.open_binary, deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    import bpe_openai

    O200K = bpe_openai.get_encoding("o200k_base")
    CL100K = bpe_openai.get_encoding("cl100k_base")

ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
cjk_text = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=80)
emoji_text = st.lists(
    st.sampled_from(["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "🎉", "\u200d", "\ufe0f"]), max_size=40
).map("".join)
whitespace_runs = st.lists(
    st.sampled_from([" ", "\n", "\t", "\r\n", "\u3000", "\xa0"]), max_size=60
).map("".join)
code = st.sampled_from(
    [
        "def f(x):\n    return x ** 2\n",
        "for (let i = 0; i < n; i++) { sum += a[i]; }",
        'SELECT id, name FROM users WHERE email = "a@b.c";',
        "    \n\n\t\t# comment\n",
        '{"key": [1, 2.5e-3, null, true], "ü": "\\u00fc"}',
    ]
)
any_text = st.lists(
    st.one_of(ascii_text, cjk_text, emoji_text, whitespace_runs, code, st.text(max_size=50)),
    max_size=6,
).map("".join)
names = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)


@st.composite
def messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        role = draw(st.sampled_from(["system", "user", "assistant", "tool"]))
        message: dict[str, Any] = {"role": role, "content": draw(any_text)}
        if draw(st.booleans()):
            message["name"] = draw(names)
        if role == "assistant" and draw(st.booleans()):
            message["tool_calls"] = [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": draw(names),
                        "arguments": json.dumps({"q": draw(any_text)}, ensure_ascii=False),
                    },
                }
            ]
        result.append(message)
    return result


def exact_count(encoding: Any, messages: list[dict[str, Any]]) -> int:
    """OpenAI's published count: 3 per message + 1 per name + 3 to prime the reply, plus the
    exact tokens of every string the model sees."""
    total = 3
    for message in messages:
        total += 3
        for key in ("role", "content", "name"):
            if key in message:
                total += len(encoding.encode_ordinary(message[key]))
        total += "name" in message
        for call in message.get("tool_calls", ()):
            total += len(encoding.encode_ordinary(call["function"]["name"]))
            total += len(encoding.encode_ordinary(call["function"]["arguments"]))
    return total


BOOK = Pricebook()
BOOK.set_price("unknown-tokenizer-llm", input=1, output=1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_bound_is_never_below_the_exact_count(request_messages: list[dict[str, Any]]) -> None:
    request = {"messages": request_messages}
    exact_o200k = exact_count(O200K, request_messages)
    exact_cl100k = exact_count(CL100K, request_messages)
    assert input_token_bound("gpt-4o", request, "openai", pricebook=BOOK) >= exact_o200k
    assert input_token_bound("gpt-4", request, "openai", pricebook=BOOK) >= exact_cl100k
    # The fallback knows no tokenizer and must still bound both encodings.
    fallback = input_token_bound("unknown-tokenizer-llm", request, pricebook=BOOK)
    assert fallback >= max(exact_o200k, exact_cl100k)


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_byte_bound_is_never_below_either_encoding(text: str) -> None:
    assert byte_bound(text) >= len(O200K.encode_ordinary(text))
    assert byte_bound(text) >= len(CL100K.encode_ordinary(text))


@pytest.mark.parametrize("text", ["ﷺ", "㍿", "ﬃ" * 3, "é", ""])
def test_byte_bound_covers_nfkc_expansion(text: str) -> None:
    assert byte_bound(text) >= len(unicodedata.normalize("NFKC", text).encode())
