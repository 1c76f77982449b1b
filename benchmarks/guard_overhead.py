"""Overhead of a guarded OpenAI call over the same call unguarded, and beside an older design.

Both arms call ``chat.completions.create`` on a real ``openai.OpenAI`` client whose HTTP
layer is an in-process ``MockTransport`` answering a canned completion at once (a
zero-latency provider), so the difference is capledger's own work. The guarded arm goes
through ``capledger.wrap`` on the embedded SQLite default (a file ledger, WAL): estimate,
reserve on two scopes, call, price the usage, settle. The overhead at a percentile is
``guarded - unguarded`` at that percentile.

``--compare-with COMMIT`` measures the ``capledger`` of that commit too (exported with
``git archive`` into a temporary folder), in separate processes that alternate with this
checkout's run by run, and prints each side's medians and their ratio. The default compares
with 4cb5a59, the last commit whose wrapped clients were method proxies; this checkout's
clients are guarded at the wire (an httpx transport).

Run::

    .venv/bin/python benchmarks/guard_overhead.py [--calls 1000] [--runs 15] \
        [--compare-with 4cb5a59]

Prints p50 and p99 per run and the median of the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import ROOT, checkout, export_source, machine, run_worker

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
#: The last commit whose wrapped clients were method proxies over the SDK.
PROXIES_COMMIT = "4cb5a59"


def _client() -> Any:
    import openai

    base = openai._base_client
    httpx = getattr(base, "httpx2", None) or base.httpx

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


def one_run(calls: int, folder: Path) -> tuple[float, float, float, float]:
    """(unguarded p50, p99, guarded p50, p99) in seconds, for the importable capledger."""
    from capledger import Ledger
    from capledger.integrations import wrap

    ledger = Ledger(f"sqlite:///{folder / 'bench.db'}")
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
    for _ in range(max(1, calls // block)):
        unguarded += _time(plain, block)
        guarded_samples += _time(held, block)
    ledger.close()
    return (
        _percentile(unguarded, 0.5),
        _percentile(unguarded, 0.99),
        _percentile(guarded_samples, 0.5),
        _percentile(guarded_samples, 0.99),
    )


def _line(label: str, figures: tuple[float, ...]) -> str:
    p50_u, p99_u, p50_g, p99_g = figures
    return (
        f"{label}: unguarded p50 {p50_u * 1e3:.3f} ms p99 {p99_u * 1e3:.3f} ms | "
        f"guarded p50 {p50_g * 1e3:.3f} ms p99 {p99_g * 1e3:.3f} ms | "
        f"overhead p50 {(p50_g - p50_u) * 1e3:.3f} ms p99 {(p99_g - p99_u) * 1e3:.3f} ms"
    )


def _medians(rows: list[tuple[float, ...]]) -> tuple[float, float]:
    """Median overhead at p50 and p99, in milliseconds."""
    p50 = statistics.median(row[2] - row[0] for row in rows) * 1e3
    p99 = statistics.median(row[3] - row[1] for row in rows) * 1e3
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description="guarded vs unguarded call overhead")
    parser.add_argument("--calls", type=int, default=1000, help="calls per arm per run")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--compare-with",
        default=PROXIES_COMMIT,
        help="also measure this commit's capledger, alternating ('' to skip)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        with tempfile.TemporaryDirectory() as folder:
            print(*one_run(options.calls, Path(folder)))
        return
    import openai

    print(f"{machine()}; {checkout()}")
    print(
        f"openai {openai.__version__}, {options.calls} calls per arm, {options.runs} runs; "
        f"this checkout (wire transport) alternating with {options.compare_with or 'nothing'}"
        " (method proxies), each run in a fresh process"
    )
    current: list[tuple[float, ...]] = []
    older: list[tuple[float, ...]] = []
    with tempfile.TemporaryDirectory() as folder:
        here = ROOT / "src"
        there = export_source(options.compare_with, Path(folder)) if options.compare_with else None
        for index in range(options.runs):
            # ABBA order: a slow spell of the machine weighs on both sides alike.
            arms = [("transport", here, current), ("proxies  ", there, older)]
            for label, source, rows in arms if index % 2 == 0 else arms[::-1]:
                if source is not None:
                    rows.append(tuple(run_worker(__file__, source, "--calls", str(options.calls))))
                    print(_line(f"run {index + 1} {label}", rows[-1]), flush=True)
    p50, p99 = _medians(current)
    print(f"median overhead, transport: p50 {p50:.3f} ms p99 {p99:.3f} ms")
    if older:
        old_p50, old_p99 = _medians(older)
        print(f"median overhead, proxies:   p50 {old_p50:.3f} ms p99 {old_p99:.3f} ms")
        print(
            f"transport / proxies: p50 {p50 / old_p50:.2f}x, p99 {p99 / old_p99:.2f}x "
            "(below 1 is less overhead)"
        )
        pairs = list(zip(current, older, strict=True))
        p50_ratio = statistics.median((a[2] - a[0]) / (b[2] - b[0]) for a, b in pairs)
        p99_ratio = statistics.median((a[3] - a[1]) / (b[3] - b[1]) for a, b in pairs)
        print(
            f"median of the runs' own ratios (each run beside its neighbour): p50 "
            f"{p50_ratio:.2f}x, p99 {p99_ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
