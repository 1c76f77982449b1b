"""The workload every contender runs, the fake provider, and the JSON the runner reads.

Standard library only: this module is imported inside every contender's own virtual
environment. A contender module supplies the library-specific part (how to check, call and
record) and calls ``main``; everything that is measured is measured here, the same way for
all of them.

One *attempt* is what one request of an application does: ask the library whether it may
spend $0.10, call the model (the fake provider: 1 ms, and it counts the call, which is what
the provider would bill), and record the cost. ``ATTEMPTS`` attempts run against one shared
$5.00 cap, so at most 50 calls should reach the provider.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import importlib.metadata
import inspect
import json
import platform
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

ATTEMPTS = 1000
CALL_USD = Decimal("0.10")
CAP_USD = Decimal("5.00")
LATENCY_S = 0.001
THREADS = 32
PROCESSES = 8
RUNS = 3
#: Each two-phase trial runs sequential reserve+settle pairs for this long.
PAIRS_SECONDS = 1.0
#: The cap used by the two-phase trials: far above what they spend, so nothing is refused.
PAIRS_CAP_USD = Decimal("1000000")

MODES = ("asyncio", "threads", "processes", "sequential")

# The canned chat completion the OpenAI-SDK contenders receive. gpt-4o is priced at $2.50
# per million input tokens and $10.00 per million output tokens in every price table used
# here (each contender checks its own table at start-up), so this usage costs
# 40 x 2.5e-6 + 9990 x 1e-5 = $0.0001 + $0.0999 = $0.10. The request asks for
# max_tokens=9990, so a pre-flight projection (tokenguard's "block") sees ~$0.10 too.
MODEL = "gpt-4o"
PROMPT_TOKENS = 40
COMPLETION_TOKENS = 9990
MAX_TOKENS = COMPLETION_TOKENS
MESSAGES = [{"role": "user", "content": "Summarise the attached report in one line."}]
CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The report is fine."},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    },
}


class Refused(Exception):
    """The library said no (before the call, or after it when it only checks afterwards)."""


class FakeProvider:
    """The model: waits ``LATENCY_S`` and counts every call that reaches it."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def call(self) -> None:
        with self._lock:
            self.calls += 1
        time.sleep(LATENCY_S)

    async def acall(self) -> None:
        with self._lock:
            self.calls += 1
        await asyncio.sleep(LATENCY_S)


@dataclass
class Run:
    """One run of one mode: what reached the provider, what the library recorded."""

    calls: int = 0
    ok: int = 0
    refused: int = 0
    errors: int = 0
    error_sample: str = ""
    recorded_usd: str = "0"
    seconds: float = 0.0


@dataclass
class Tally:
    """Outcomes of the attempts of one run, shared by its threads or tasks."""

    ok: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outcome(self, error: BaseException | None) -> None:
        with self.lock:
            if error is None:
                self.ok += 1
            elif isinstance(error, Refused):
                self.refused += 1
            else:
                self.errors.append(f"{type(error).__name__}: {error}"[:300])

    def run(self, calls: int, recorded: Decimal | float, seconds: float) -> Run:
        return Run(
            calls=calls,
            ok=self.ok,
            refused=self.refused,
            errors=len(self.errors),
            error_sample=self.errors[0] if self.errors else "",
            recorded_usd=str(recorded),
            seconds=seconds,
        )


#: What a contender hands the harness for one run, given the run's provider: ``attempt()``
#: (a function, or a coroutine function in asyncio mode) and ``recorded()`` (the spend the
#: library recorded, or an awaitable of it in asyncio mode).
Trial = tuple[Callable[[], Any], Callable[[], Any]]
SyncTrial = Callable[[FakeProvider], AbstractContextManager[Trial]]
AsyncTrial = Callable[[FakeProvider], AbstractAsyncContextManager[Trial]]


def _attempt_sync(attempt: Callable[[], Any], tally: Tally) -> None:
    try:
        attempt()
    except Exception as error:
        tally.outcome(error)
    else:
        tally.outcome(None)


def run_threads(trial: SyncTrial, *, threads: int = THREADS, attempts: int = ATTEMPTS) -> Run:
    """``attempts`` attempts from a pool of ``threads`` threads, one shared budget."""
    provider, tally = FakeProvider(), Tally()
    with trial(provider) as (attempt, recorded):
        started = time.perf_counter()
        thread_attempts(attempt, tally, threads=threads, attempts=attempts)
        seconds = time.perf_counter() - started
        spent = _resolve(recorded())
    return tally.run(provider.calls, spent, seconds)


def thread_attempts(
    attempt: Callable[[], Any],
    tally: Tally,
    *,
    threads: int,
    attempts: int,
) -> None:
    """Run ``attempts`` attempts on a pool of ``threads`` threads and wait for them all."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # Each attempt runs in a copy of the caller's context, as asyncio tasks do, so
        # libraries that keep their budget in a ContextVar see it in every thread (this is
        # what their docs ask for: contextvars.copy_context()).
        futures = [
            pool.submit(contextvars.copy_context().run, _attempt_sync, attempt, tally)
            for _ in range(attempts)
        ]
        for future in futures:
            future.result()


def run_sequential(trial: SyncTrial, *, attempts: int = ATTEMPTS) -> Run:
    """The control: the same attempts one after another, no concurrency at all."""
    provider, tally = FakeProvider(), Tally()
    with trial(provider) as (attempt, recorded):
        started = time.perf_counter()
        for _ in range(attempts):
            _attempt_sync(attempt, tally)
        seconds = time.perf_counter() - started
        spent = _resolve(recorded())
    return tally.run(provider.calls, spent, seconds)


def run_asyncio(trial: AsyncTrial, *, attempts: int = ATTEMPTS) -> Run:
    """``attempts`` asyncio tasks started at once on one event loop, one shared budget."""

    async def one(attempt: Callable[[], Awaitable[Any]], tally: Tally) -> None:
        try:
            await attempt()
        except Exception as error:
            tally.outcome(error)
        else:
            tally.outcome(None)

    async def body() -> Run:
        provider, tally = FakeProvider(), Tally()
        async with trial(provider) as (attempt, recorded):
            started = time.perf_counter()
            await asyncio.gather(*(one(attempt, tally) for _ in range(attempts)))
            seconds = time.perf_counter() - started
            spent = recorded()
            if inspect.isawaitable(spent):
                spent = await spent
        return tally.run(provider.calls, spent, seconds)

    return asyncio.run(body())


def _resolve(value: Any) -> Any:
    if inspect.isawaitable(value):
        raise TypeError("a sync trial returned an awaitable spend")
    return value


def time_pairs(pair: Callable[[], Any], *, seconds: float = PAIRS_SECONDS) -> float:
    """Sequential reserve+settle pairs per second: run ``pair()`` for ``seconds``."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        pair()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


async def atime_pairs(pair: Callable[[], Awaitable[Any]], *, seconds: float = PAIRS_SECONDS):
    """``time_pairs`` for a library whose two-phase API is a coroutine."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        await pair()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


@dataclass
class Contender:
    """One library (or one library on one store) and what it can run.

    ``modes`` maps a mode to a function ``(*, attempts) -> Run``; ``not_run`` maps a mode it
    cannot run to the reason. ``pairs`` returns one two-phase rate (pairs per second), or is
    None when the library has no two-phase API (``no_pairs`` says why).
    """

    key: str
    label: str
    packages: tuple[str, ...]
    pattern: str
    modes: dict[str, Callable[[int], Run]]
    not_run: dict[str, str] = field(default_factory=dict)
    pairs: Callable[[], float] | None = None
    no_pairs: str = ""
    notes: list[str] = field(default_factory=list)


def versions(packages: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each distribution, read from this environment."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--attempts", type=int, default=ATTEMPTS)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-pairs", action="store_true", help="skip the two-phase table")
    parser.add_argument("--store", default="", help="capledger only: memory, sqlite, postgresql")
    return parser.parse_args()


def main(build: Callable[[argparse.Namespace], Contender]) -> None:
    """Build the contender, run every mode ``--runs`` times, write the JSON to ``--out``."""
    args = _arguments()
    wanted = [m for m in args.modes.split(",") if m]
    result: dict[str, Any] = {"python": platform.python_version(), "argv": sys.argv[1:]}
    try:
        contender = build(args)
    except Exception as error:  # cannot be installed or started here: say so, run nothing
        result.update(key=args.store or "unknown", skipped=f"{type(error).__name__}: {error}")
        _write(args.out, result)
        return
    result.update(
        key=contender.key,
        label=contender.label,
        pattern=contender.pattern,
        versions=versions(contender.packages),
        notes=contender.notes,
        attempts=args.attempts,
        modes={},
    )
    for mode in wanted:
        if mode not in contender.modes:
            result["modes"][mode] = {"not_run": contender.not_run.get(mode, "not applicable")}
            continue
        runs = []
        for _ in range(args.runs):
            runs.append(asdict(contender.modes[mode](attempts=args.attempts)))
            print(f"  {contender.key} {mode}: {runs[-1]}", file=sys.stderr)
        result["modes"][mode] = {"runs": runs}
    if args.no_pairs:
        result["pairs"] = None
    elif contender.pairs is None:
        result["pairs"] = {"not_run": contender.no_pairs}
    else:
        rates = [contender.pairs() for _ in range(args.runs)]
        result["pairs"] = {"rates": rates, "median": statistics.median(rates)}
    _write(args.out, result)


def _write(path: str, result: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)


def mock_handlers(httpx: Any, provider: FakeProvider) -> tuple[Callable[..., Any], Any]:
    """An ``httpx.MockTransport`` handler pair (sync, async) serving ``CHAT_COMPLETION``.

    ``httpx`` is the module the contender's OpenAI SDK uses (``httpx`` for openai 2.x,
    ``httpx2`` for openai 3.x); every request that reaches a handler is a provider call.
    """

    def handle(request: Any) -> Any:
        provider.call()
        return httpx.Response(200, json=CHAT_COMPLETION)

    async def ahandle(request: Any) -> Any:
        await provider.acall()
        return httpx.Response(200, json=CHAT_COMPLETION)

    return handle, ahandle
