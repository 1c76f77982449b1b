"""How tight is the input-token upper bound? Ratio of bound to exact tokens.

Usage::

    .venv/bin/python benchmarks/estimate_tightness.py [--requests 600] [--runs 3] [--seed 7]

The corpus is generated deterministically from ``--seed``: chat turns, code, JSON,
multilingual text (CJK, Cyrillic, Arabic, Hindi, emoji) and tool calls. The exact count is
OpenAI's published chat count with ``o200k_base`` (bpe-openai): 3 tokens per message, 1 per
name, 3 to prime the reply, plus the exact tokens of every string the model sees. Two
bounds are compared against it:

- ``tokenizer``: ``input_token_bound("gpt-4o", ...)``, the exact-tokenizer path;
- ``bytes``: the same request for a model with no known tokenizer (the UTF-8 byte bound).

Ratios are deterministic; the timing (microseconds per bound) is the median of ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from capledger.estimate import input_token_bound
from capledger.pricing import Pricebook

SENTENCES = (
    "the budget cap holds every call before it runs and settles the actual cost after",
    "a ledger never overshoots when many threads processes and hosts call at once",
    "please summarise the following report and list the three main risks",
)
WORDS = [word for sentence in SENTENCES for word in sentence.split()]
MULTILINGUAL = [
    "请帮我总结这份报告，并列出三个主要风险。",
    "この関数は入力をソートして重複を取り除きます。",
    "Пожалуйста, переведите этот абзац на английский язык.",
    "يرجى تلخيص هذا التقرير في ثلاث نقاط.",
    "कृपया इस रिपोर्ट का सारांश तीन बिंदुओं में दें।",
    "Merci de résumer ce rapport en trois points clés, s'il vous plaît.",
    "Großartig! Können Sie die Übersetzung prüfen? 🎉👍🏽",
]
CODE = [
    "def fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
    "    return a\n",
    "SELECT u.id, u.email, COUNT(o.id) AS orders\nFROM users u\nLEFT JOIN orders o ON "
    "o.user_id = u.id\nGROUP BY u.id, u.email\nHAVING COUNT(o.id) > 3;\n",
    "export async function fetchJson(url) {\n  const res = await fetch(url);\n  if (!res.ok) "
    "throw new Error(`HTTP ${res.status}`);\n  return res.json();\n}\n",
    "fn main() {\n    let v: Vec<u64> = (1..=10).map(|x| x * x).collect();\n    println!"
    '("{:?}", v);\n}\n',
]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(5, 30))]
    return " ".join(words).capitalize() + rng.choice([".", "?", "!"])


def _json_blob(rng: random.Random) -> str:
    record = {
        "id": rng.randint(1, 10**6),
        "name": rng.choice(["Ada", "Grace", "Linus", "Zoë", "李雷"]),
        "scores": [round(rng.random() * 100, 2) for _ in range(rng.randint(1, 6))],
        "active": rng.random() < 0.5,
        "tags": rng.sample(WORDS, k=3),
    }
    return json.dumps(record, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2]))


def _content(rng: random.Random) -> str:
    kind = rng.choice(["prose", "prose", "code", "json", "multilingual", "mixed"])
    if kind == "prose":
        return " ".join(_sentence(rng) for _ in range(rng.randint(1, 8)))
    if kind == "code":
        return "Fix this:\n```\n" + rng.choice(CODE) + "```"
    if kind == "json":
        return "Validate this record:\n" + _json_blob(rng)
    if kind == "multilingual":
        return " ".join(rng.choice(MULTILINGUAL) for _ in range(rng.randint(1, 4)))
    return _sentence(rng) + "\n\n" + rng.choice(CODE) + "\n" + rng.choice(MULTILINGUAL)


def make_request(rng: random.Random) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": _sentence(rng)}]
    for turn in range(rng.randint(1, 6)):
        user: dict[str, Any] = {"role": "user", "content": _content(rng)}
        if rng.random() < 0.2:
            user["name"] = f"user_{turn}"
        messages.append(user)
        if rng.random() < 0.3:
            arguments = json.dumps({"query": _sentence(rng), "limit": rng.randint(1, 50)})
            call = {"id": f"call_{turn}", "type": "function"}
            call["function"] = {"name": "search_docs", "arguments": arguments}  # type: ignore[assignment]
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append({"role": "tool", "content": _json_blob(rng)})
        messages.append({"role": "assistant", "content": _content(rng)})
    return {"messages": messages, "max_tokens": 256}


def exact_tokens(count: Callable[[str], int], request: dict[str, Any]) -> int:
    total = 3  # reply priming
    for message in request["messages"]:
        total += 3
        for key in ("role", "content", "name"):
            if isinstance(message.get(key), str):
                total += count(message[key])
        total += "name" in message
        for call in message.get("tool_calls") or ():
            total += count(call["function"]["name"]) + count(call["function"]["arguments"])
    return total


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        encoding = bpe_openai.get_encoding("o200k_base")

    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    rng = random.Random(args.seed)
    corpus = [make_request(rng) for _ in range(args.requests)]
    exact = [exact_tokens(count, request) for request in corpus]

    book = Pricebook()
    book.set_price("no-tokenizer-model", input=1, output=1)
    paths: dict[str, Callable[[dict[str, Any]], int]] = {
        "tokenizer": lambda request: input_token_bound("gpt-4o", request, "openai", pricebook=book),
        "bytes": lambda request: input_token_bound("no-tokenizer-model", request, pricebook=book),
    }
    print(f"command: {' '.join([sys.executable.rsplit('/', 1)[-1], *sys.argv])}")
    print(
        f"corpus: {len(corpus)} chat requests, seed {args.seed}, "
        f"{statistics.median(exact):.0f} exact o200k tokens median, {max(exact)} max"
    )
    print(f"{'path':<10} {'median':>7} {'p95':>7} {'max':>7} {'min':>7} {'us/bound':>9}")
    for name, bound in paths.items():
        timings_us: list[float] = []
        bounds: list[int] = []
        for _ in range(args.runs):
            started = time.perf_counter()
            bounds = [bound(request) for request in corpus]
            timings_us.append((time.perf_counter() - started) / len(corpus) * 1e6)
        ratios = [b / e for b, e in zip(bounds, exact, strict=True)]
        if min(ratios) < 1:
            raise SystemExit(f"{name}: a bound fell below the exact count")
        print(
            f"{name:<10} {statistics.median(ratios):>7.3f} {_percentile(ratios, 0.95):>7.3f} "
            f"{max(ratios):>7.3f} {min(ratios):>7.3f} {statistics.median(timings_us):>9.1f}"
        )


if __name__ == "__main__":
    main()
