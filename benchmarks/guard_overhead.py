"""Overhead of a guarded OpenAI call over the same call unguarded.

Both arms call ``chat.completions.create`` on a real ``openai.OpenAI`` client whose HTTP
layer is an in-process ``MockTransport`` answering a canned completion at once (a
zero-latency provider). The guarded arm goes through ``capledger.wrap`` on the embedded
SQLite default (a file ledger, WAL): estimate, reserve on two scopes, call, price the usage,
settle. The overhead at a percentile is ``guarded - unguarded`` at that percentile.

Run::

    .venv/bin/python benchmarks/guard_overhead.py [--calls 3000] [--runs 3]

Prints p50 and p99 per run and the median of the runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai

from capledger import Ledger
from capledger.integrations import wrap

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in three bullet points."}]
REPLY = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "- one\n- two\n- three"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    }
).encode()


def _httpx() -> Any:
    base = openai._base_client
    return getattr(base, "httpx2", None) or base.httpx


def _client() -> Any:
    httpx = _httpx()

    def reply(request: Any) -> Any:
        return httpx.Response(200, content=REPLY, headers={"content-type": "application/json"})

    return openai.OpenAI(
        api_key="bench",
        http_client=httpx.Client(transport=httpx.MockTransport(reply)),
        max_retries=0,
    )


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _time(call: Callable[[], object], calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def one_run(calls: int, folder: Path, index: int) -> tuple[float, float, float, float]:
    """(unguarded p50, p99, guarded p50, p99) in seconds."""
    ledger = Ledger(f"sqlite:///{folder / f'bench-{index}.db'}")
    ledger.set_limit("tenant:bench", usd="1000000")
    client = _client()
    guarded = wrap(client, ledger, scopes=["tenant:bench", "user:bench"])

    def plain() -> object:
        return client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=256)

    def held() -> object:
        return guarded.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=256)

    for _ in range(200):  # warm up: imports, tokenizer, price lookup, SQLite pages
        plain()
        held()
    # Interleave the arms in blocks so drift (CPU frequency, WAL growth) hits both alike.
    unguarded: list[float] = []
    guarded_samples: list[float] = []
    block = 250
    for _ in range(calls // block):
        unguarded += _time(plain, block)
        guarded_samples += _time(held, block)
    ledger.close()
    return (
        _percentile(unguarded, 0.5),
        _percentile(unguarded, 0.99),
        _percentile(guarded_samples, 0.5),
        _percentile(guarded_samples, 0.99),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="guarded vs unguarded call overhead")
    parser.add_argument("--calls", type=int, default=3000, help="calls per arm per run")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, openai "
        f"{openai.__version__}, {options.calls} calls per arm, {options.runs} runs"
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(options.runs):
            p50_u, p99_u, p50_g, p99_g = one_run(options.calls, Path(folder), index)
            rows.append((p50_u, p99_u, p50_g, p99_g, p50_g - p50_u, p99_g - p99_u))
            print(
                f"run {index + 1}: unguarded p50 {p50_u * 1e3:.3f} ms p99 {p99_u * 1e3:.3f} ms | "
                f"guarded p50 {p50_g * 1e3:.3f} ms p99 {p99_g * 1e3:.3f} ms | "
                f"overhead p50 {(p50_g - p50_u) * 1e3:.3f} ms p99 {(p99_g - p99_u) * 1e3:.3f} ms",
                flush=True,
            )
    medians = [statistics.median(column) * 1e3 for column in zip(*rows, strict=True)]
    print(
        f"median of {options.runs}: unguarded p50 {medians[0]:.3f} ms p99 {medians[1]:.3f} ms | "
        f"guarded p50 {medians[2]:.3f} ms p99 {medians[3]:.3f} ms | "
        f"overhead p50 {medians[4]:.3f} ms p99 {medians[5]:.3f} ms"
    )
    target_ms = 1.0
    verdict = "meets" if medians[4] < target_ms else "MISSES"
    print(f"target: overhead p50 < {target_ms} ms -> {verdict}")
    sys.exit(0)


if __name__ == "__main__":
    main()
