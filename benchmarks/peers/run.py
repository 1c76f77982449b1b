"""Run every contender in its own environment and write the results.

Usage (``run.sh`` builds the environments first, then calls this)::

    benchmarks/peers/.envs/report/bin/python benchmarks/peers/run.py [--runs 3] [--write]

Each contender runs in a subprocess with its own virtual environment's Python
(``.envs/<env>/bin/python peer_<name>.py --out <json>``) and writes what it measured as
JSON. This script reads those files and writes, under ``--out`` (``build/bench-peers/``,
ignored by git), ``benchmarks-peers.md``, ``img/peers.png`` and ``readme-peers.md`` (the
README's head-to-head block), and prints a text bar chart. With ``--write`` (``make
bench-peers WRITE=1``) it also updates the tracked copies: ``docs/benchmarks-peers.md``,
``docs/img/peers.png`` and the README's block. Every figure in them comes from the JSON of
this run, and each page names the commit and the machine; a contender that could not run
is reported with the reason. The PostgreSQL database the capledger contender uses
(``capledger_bench``) is dropped at the end, even when a contender fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import harness

# The benchmarks folder: its _common module is shared with the other benchmark scripts.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import checkout

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENVS = HERE / ".envs"
#: Where a run writes everything; the tracked copies are updated only with --write.
BUILD = ROOT / "build" / "bench-peers"
DOC = ROOT / "docs" / "benchmarks-peers.md"
CHART = ROOT / "docs" / "img" / "peers.png"
README_PART = "readme-peers.md"
#: A contender that takes longer than this is stopped and reported as such.
CONTENDER_TIMEOUT_S = 300


@dataclass(frozen=True)
class Entry:
    """One contender: its name, the environment it runs in, its script, extra arguments."""

    label: str
    env: str
    script: str
    args: tuple[str, ...] = ()


CONTENDERS = (
    Entry("LiteLLM BudgetManager", "litellm", "peer_litellm.py"),
    Entry("Shekel", "shekel", "peer_shekel.py"),
    Entry("cendor-tokenguard (block)", "tokenguard", "peer_tokenguard.py"),
    Entry("token-budget-py", "token-budget", "peer_token_budget.py"),
    Entry("datasette-llm-accountant", "datasette", "peer_datasette.py"),
    Entry("capledger memory://", "capledger", "peer_capledger.py", ("--store", "memory")),
    Entry("capledger sqlite://", "capledger", "peer_capledger.py", ("--store", "sqlite")),
    Entry("capledger postgresql://", "capledger", "peer_capledger.py", ("--store", "postgresql")),
)
THREADS_PER_PROCESS = harness.THREADS // harness.PROCESSES
MODE_TITLES = {
    "asyncio": f"asyncio ({harness.ATTEMPTS} tasks)",
    "threads": f"threads ({harness.THREADS})",
    "processes": f"processes ({harness.PROCESSES} x {THREADS_PER_PROCESS} threads)",
    "sequential": "sequential (control)",
}


def run_contender(entry: Entry, runs: int, attempts: int, results: Path) -> dict[str, Any]:
    """Run one contender in its environment; return its JSON, or why there is none."""
    result = _run_contender(entry, runs, attempts, results)
    result.setdefault("label", entry.label)
    return result


def _run_contender(entry: Entry, runs: int, attempts: int, results: Path) -> dict[str, Any]:
    python = ENVS / entry.env / "bin" / "python"
    name = Path(entry.script).stem + "".join(f"-{a}" for a in entry.args[1:])
    out = results / f"{name}.json"
    log = results / f"{name}.log"
    out.unlink(missing_ok=True)
    if not python.exists():
        return {"key": name, "skipped": f"environment .envs/{entry.env} was not built"}
    install_error = ENVS / entry.env / ".install-error"
    if install_error.exists():
        error = " ".join(install_error.read_text(encoding="utf-8").split())
        return {"key": name, "skipped": f"could not be installed from PyPI: {error}"}
    command = [str(python), str(HERE / entry.script), "--out", str(out), *entry.args]
    command += ["--runs", str(runs), "--attempts", str(attempts)]
    print(f"-> {entry.env}: {shlex.join(command[1:])}", flush=True)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as log_file:
        try:
            # Run from a scratch directory: some peers write files into the working directory.
            subprocess.run(
                command,
                cwd=results,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=CONTENDER_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"key": name, "skipped": f"stopped after {CONTENDER_TIMEOUT_S} s"}
    print(f"   done in {time.perf_counter() - started:.1f} s (log: {log})")
    if not out.exists():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
        return {"key": name, "skipped": f"it failed before writing results: {' '.join(tail)}"}
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


# --- summarising -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One contender in one mode, over its runs."""

    label: str
    mode: str
    calls: list[int]
    recorded: list[Decimal]
    seconds: list[float]
    errors: int
    error_sample: str

    @property
    def billed(self) -> list[Decimal]:
        return [harness.CALL_USD * calls for calls in self.calls]

    @property
    def held_runs(self) -> int:
        return sum(billed <= harness.CAP_USD for billed in self.billed)

    @property
    def median_billed(self) -> Decimal:
        return harness.CALL_USD * int(statistics.median_low(self.calls))

    @property
    def unrecorded(self) -> list[Decimal]:
        return [b - r for b, r in zip(self.billed, self.recorded, strict=True)]


def rows_of(results: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for result in results:
        for mode in harness.MODES:
            runs = result.get("modes", {}).get(mode, {}).get("runs")
            if not runs:
                continue
            rows.append(
                Row(
                    label=result["label"],
                    mode=mode,
                    calls=[run["calls"] for run in runs],
                    recorded=[Decimal(run["recorded_usd"]) for run in runs],
                    seconds=[run["seconds"] for run in runs],
                    errors=sum(run["errors"] for run in runs),
                    error_sample=next((r["error_sample"] for r in runs if r["error_sample"]), ""),
                )
            )
    return rows


def times(billed: Decimal) -> str:
    """How many times the cap: ``1.02x``, ``20x``."""
    ratio = billed / harness.CAP_USD
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def usd(amount: Decimal) -> str:
    return f"${amount.quantize(Decimal('0.01'))}"


def spread(values: list[Any], show: Any = str) -> str:
    low, high = min(values), max(values)
    return show(low) if low == high else f"{show(low)} to {show(high)}"


def duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def results_table(rows: list[Row], runs: int) -> list[str]:
    lines = [
        "| Contender | Mode | Calls that reached the provider | Billed (calls x $0.10) "
        "| Spend the library recorded | Billed but not recorded | Cap held "
        f"| Wall time (median of {runs}) |",
        "|---|---|--:|--:|--:|--:|---|--:|",
    ]
    for row in rows:
        unrecorded = [u for u in row.unrecorded if u >= Decimal("0.005")]
        held = row.held_runs
        verdict = (
            f"yes ({held}/{len(row.calls)})"
            if held == len(row.calls)
            else f"**no** ({len(row.calls) - held}/{len(row.calls)} runs over)"
        )
        lines.append(
            f"| {row.label} | {MODE_TITLES[row.mode]} | {spread(row.calls)} "
            f"| {spread(row.billed, usd)} | {spread(row.recorded, usd)} "
            f"| {spread(unrecorded, usd) if unrecorded else '-'} | {verdict} "
            f"| {duration(statistics.median(row.seconds))} |"
        )
    return lines


def text_chart(rows: list[Row], width: int = 60) -> list[str]:
    """Billed spend against the cap, one bar per contender and mode (median run)."""
    if not rows:
        return ["no contender ran"]
    top = max([harness.CAP_USD, *(row.median_billed for row in rows)])
    cap_at = round(width * harness.CAP_USD / top)
    label_width = max(len(f"{row.label} / {row.mode}") for row in rows)
    lines = [
        f"{'cap':<{label_width}}  [{'#' * cap_at}{' ' * (width - cap_at)}] {usd(harness.CAP_USD)}"
    ]
    for row in rows:
        filled = round(width * row.median_billed / top)
        bar = "".join(
            "#" if i < filled else ("|" if i == cap_at - 1 else " ") for i in range(width)
        )
        billed = row.median_billed
        verdict = (
            "held"
            if billed <= harness.CAP_USD
            else f"OVER by {usd(billed - harness.CAP_USD)} ({times(billed)} the cap)"
        )
        lines.append(
            f"{row.label + ' / ' + row.mode:<{label_width}}  [{bar}] {usd(billed)}  {verdict}"
        )
    return lines


def money(amount: Decimal) -> str:
    """``usd`` for matplotlib, where a bare ``$`` starts mathematical text."""
    return usd(amount).replace("$", r"\$")


def png_chart(rows: list[Row], path: Path, attempts: int) -> str:
    """The bar chart as a PNG; returns an empty string, or why it could not be drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        return f"matplotlib is not installed in this environment ({error})"
    labels = list(dict.fromkeys(row.label for row in rows))
    modes = [m for m in harness.MODES if any(row.mode == m for row in rows)]
    colours = {
        "asyncio": "#4c72b0",
        "threads": "#dd8452",
        "processes": "#55a868",
        "sequential": "#bbbbbb",
    }
    height = 0.8 / len(modes)
    figure, axes = plt.subplots(figsize=(10, 1.0 + 0.75 * len(labels)))
    for index, mode in enumerate(modes):
        legend = MODE_TITLES[mode]
        for position, label in enumerate(labels):
            match = [row for row in rows if row.label == label and row.mode == mode]
            if not match:
                continue
            billed = float(match[0].median_billed)
            y = position + (index - (len(modes) - 1) / 2) * height
            axes.barh(y, billed, height=height, color=colours[mode], label=legend)
            legend = None  # one legend entry per mode
            axes.text(billed + 0.5, y, money(Decimal(str(billed))), va="center", fontsize=7)
    axes.axvline(
        float(harness.CAP_USD),
        color="#c44e52",
        linestyle="--",
        linewidth=1.5,
        label=f"cap {money(harness.CAP_USD)}",
    )
    axes.set_yticks(range(len(labels)), labels)
    axes.invert_yaxis()
    axes.set_xlabel(
        f"billed spend, USD (calls that reached the provider x "
        f"{money(harness.CALL_USD)}; median of runs)"
    )
    axes.set_title(
        f"{attempts} attempts of {money(harness.CALL_USD)} against a shared "
        f"{money(harness.CAP_USD)} cap"
    )
    axes.legend(loc="lower right", fontsize=8)
    axes.set_xlim(0, max(float(r.median_billed) for r in rows) * 1.12 + 1)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return ""


def pairs_table(results: list[dict[str, Any]], runs: int) -> list[str]:
    lines = [
        f"| Contender | reserve+settle pairs per second (median of {runs}) | every run |",
        "|---|--:|---|",
    ]
    for result in results:
        pairs = result.get("pairs")
        if pairs and "rates" in pairs:
            every = ", ".join(f"{rate:,.0f}" for rate in pairs["rates"])
            lines.append(f"| {result['label']} | {pairs['median']:,.0f} | {every} |")
    return lines


def findings(rows: list[Row], results: list[dict[str, Any]]) -> list[str]:
    """Sentences computed from this run's figures (nothing here is typed in by hand)."""
    lines = []
    for label in dict.fromkeys(row.label for row in rows):
        mine = [row for row in rows if row.label == label and row.mode != "sequential"]
        over = [row for row in mine if row.held_runs < len(row.calls)]
        if not mine:
            continue
        if not over:
            lines.append(
                f"- **{label}** held the cap in every run of every concurrent mode "
                f"it ran ({', '.join(row.mode for row in mine)})."
            )
        else:
            worst = max(over, key=lambda row: max(row.calls))
            lines.append(
                f"- **{label}** passed the cap in {' and '.join(row.mode for row in over)}; "
                f"worst: {max(worst.calls)} calls reached the provider ({worst.mode}), "
                f"{usd(max(worst.billed))} billed, {times(max(worst.billed))} the cap."
            )
        for row in mine:
            if max(row.unrecorded) >= Decimal("0.005"):
                lines.append(
                    f"  - in {row.mode}, up to {usd(max(row.unrecorded))} was billed by the "
                    "provider but not recorded by the library."
                )
        sequential = [row for row in rows if row.label == label and row.mode == "sequential"]
        if sequential and sequential[0].held_runs < len(sequential[0].calls):
            lines.append(
                "  - even with no concurrency (the sequential control), "
                f"{max(sequential[0].calls)} calls reached the provider: the overshoot is in "
                "the pattern, not only in the race."
            )
    rates = {
        r["label"]: r["pairs"]["median"]
        for r in results
        if r.get("pairs") and "median" in r["pairs"]
    }
    if rates:
        ordered = sorted(rates.items(), key=lambda item: -item[1])
        fastest, top = ordered[0]
        lines.append(
            f"- Two-phase speed: the fastest here is **{fastest}** at {top:,.0f} pairs/s. "
            "Order: " + ", ".join(f"{name} {rate:,.0f}" for name, rate in ordered) + "."
        )
        memory = rates.get("capledger memory://")
        if memory and memory < top:
            lines.append(
                f"  - Like for like (both in one process, nothing written to disk), {fastest} "
                f"did {top / memory:.1f}x the pairs per second of capledger memory://: a "
                "counter behind one lock costs less than capledger's validated, journaled "
                "holds."
            )
    return lines


def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"runner Python {platform.python_version()}"
    ]


def write_markdown(
    results: list[dict[str, Any]],
    rows: list[Row],
    args: argparse.Namespace,
    elapsed_s: float,
    chart_error: str,
    path: Path,
) -> str:
    ran = [r for r in results if "skipped" not in r]
    skipped = [r for r in results if "skipped" in r]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# capledger against its peers",
        "",
        "<!-- Generated by benchmarks/peers/run.py: do not edit by hand, run "
        "benchmarks/peers/run.sh again. -->",
        "",
        f"Generated {now} by `benchmarks/peers/run.sh` in {elapsed_s:.0f} s on {machine()[0]}.",
        "",
        "## What each run measured",
        "",
        f"- {args.attempts} attempts, each trying to spend {usd(harness.CALL_USD)} against one "
        f"shared cap of {usd(harness.CAP_USD)}: at most "
        f"{int(harness.CAP_USD / harness.CALL_USD)} calls may reach the provider.",
        f"- An attempt asks the library, calls the fake provider "
        f"(a {harness.LATENCY_S * 1000:g} ms sleep that counts every call reaching it: that "
        "count is what the provider would bill), then records the cost the way the "
        "library's docs show. The OpenAI-SDK "
        f"contenders get a canned {harness.MODEL} completion over `httpx.MockTransport`: "
        f"{harness.PROMPT_TOKENS} input and {harness.COMPLETION_TOKENS} output tokens, which "
        "each of their price tables values at exactly $0.10 (each contender checks this at "
        "start-up and stops if not).",
        f"- Modes: **asyncio**, {args.attempts} tasks started at once on one event loop; "
        f"**threads**, the attempts spread over a pool of {harness.THREADS} threads; "
        f"**processes**, {harness.PROCESSES} OS processes of "
        f"{harness.THREADS // harness.PROCESSES} threads each, started together behind a "
        "barrier, sharing the cap through the store (only where the library can share a cap "
        "between processes); **sequential**, one attempt after another, a control that shows "
        "what a pattern does with no concurrency at all.",
        f"- Each mode ran {args.runs} times with fresh state. Counts are shown as a range when "
        "runs differed; wall times are medians. A wall time includes the provider calls the "
        "library let through, so a library that admits 1000 calls waits for 1000 calls: "
        "compare wall times between contenders that admitted the same number of calls.",
        "- *Billed but not recorded*: the provider was paid for a call whose cost the library "
        "did not add to its total.",
        "",
        "## Results",
        "",
        *results_table(rows, args.runs),
        "",
        *[
            f"- {row.label}, {row.mode}: {row.errors} attempts raised an unexpected error, "
            f"for example `{row.error_sample}`."
            for row in rows
            if row.errors
        ],
        "![Billed spend against the cap](img/peers.png)"
        if not chart_error
        else f"(No PNG chart: {chart_error}.)",
        "",
        "<!-- illustrative: this run's figures, drawn as bars; the table above has them -->",
        "```text",
        *text_chart(rows),
        "```",
        "",
        "### What the figures say",
        "",
        *findings(rows, ran),
        "",
        "## Sequential two-phase throughput",
        "",
        f"Pairs of reserve then settle, one after another on one thread, for "
        f"{harness.PAIRS_SECONDS:g} s per run against a cap far above what the run spends, "
        "for every contender with a two-phase API. The in-process counters hold their state "
        "in a Python object and pay nothing for durability; capledger's SQLite and PostgreSQL "
        "stores commit each reserve and each settle as a database transaction (a "
        "sequential caller gets no batching: there is nothing to batch with).",
        "",
        *pairs_table(ran, args.runs),
        "",
    ]
    no_pairs = [r for r in ran if r.get("pairs") and "not_run" in r["pairs"]]
    if no_pairs:
        out += ["Not in this table:", ""]
        out += [f"- {r['label']}: {r['pairs']['not_run']}." for r in no_pairs]
        out.append("")
    out += ["## Sharing a cap across processes", ""]
    for result in ran:
        mode = result.get("modes", {}).get("processes", {})
        if "not_run" in mode:
            out.append(f"- {result['label']}: not run: {mode['not_run']}.")
        elif "runs" in mode:
            out.append(f"- {result['label']}: run (see the processes rows above).")
    out += ["", "## How each contender was used", ""]
    for result in ran:
        out.append(f"- **{result['label']}**: `{result['pattern']}`")
        out += [f"  - {note}" for note in result.get("notes", [])]
    out += [
        "",
        "The adapters are `benchmarks/peers/peer_*.py`; the workload and the fake provider "
        "are `benchmarks/peers/harness.py`.",
        "",
        "## Versions (read from each environment during this run)",
        "",
        "| Contender | Python | Packages |",
        "|---|---|---|",
    ]
    for result in ran:
        packages = ", ".join(f"{name} {version}" for name, version in result["versions"].items())
        out.append(f"| {result['label']} | {result['python']} | {packages} |")
    out += [
        "",
        f"capledger is installed (editable) from this checkout: `{checkout()}`. The peers are "
        "pinned in `benchmarks/peers/locks/requirements-*.txt`, one virtual environment each "
        "(LiteLLM needs openai 2.x, Shekel and tokenguard openai 3.x).",
    ]
    if skipped:
        out += ["", "## Could not run here", ""]
        out += [f"- {r['label']}: {' '.join(r['skipped'].split())}" for r in skipped]
    out.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")
    return "\n".join(out)


README = ROOT / "README.md"
README_START, README_END = "<!-- peers:start -->", "<!-- peers:end -->"


def readme_summary(rows: list[Row], results: list[dict[str, Any]]) -> list[str]:
    """The head-to-head in a few lines, for the top of the README (median runs)."""
    by_label: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_label.setdefault(row.label, {})[row.mode] = row
    modes = [
        mode
        for mode in ("asyncio", "threads", "processes")
        if any(mode in modes_of for modes_of in by_label.values())
    ]
    header = " | ".join(f"billed, {MODE_TITLES[mode]}" for mode in modes)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    lines = [
        f"**Head to head** (generated by `make bench-peers WRITE=1`): {harness.ATTEMPTS} "
        f"concurrent attempts to spend ${harness.CALL_USD} against a ${harness.CAP_USD} cap, "
        "with a 1 ms fake LLM call between check and record. *Billed* is what the fake "
        "provider was paid: the calls each library let through. Measured "
        f"{now} at capledger `{checkout()}`, on {machine()[0]}.",
        "",
        f"| library | {header} | cap held | recorded all it billed |",
        "|---|" + "--:|" * len(modes) + "---|---|",
    ]
    for label, modes_of in by_label.items():
        cells = []
        for mode in modes:
            row = modes_of.get(mode)
            cells.append("cannot share a cap" if row is None else usd(row.median_billed))
        held = all(r.held_runs == len(r.calls) for r in modes_of.values())
        lost = any(u >= Decimal("0.005") for r in modes_of.values() for u in r.unrecorded)
        lines.append(
            f"| {label} | {' | '.join(cells)} | {'yes' if held else '**no**'} "
            f"| {'**no**' if lost else 'yes'} |"
        )
    lines += [
        "",
        "The in-process counters (token-budget-py, a locked Datasette accountant) hold the cap "
        "in one process and are faster per operation; only capledger's SQLite and PostgreSQL "
        "stores share one cap across processes and hosts. Full results, versions, pairs per "
        "second and the chart: [docs/benchmarks-peers.md](docs/benchmarks-peers.md).",
    ]
    return lines


def drop_bench_database() -> None:
    """Drop the PostgreSQL database the capledger contender made (``capledger_bench``).

    Run in the capledger environment, which has psycopg; a server that is not there (or an
    environment that was not built) is not an error: there is nothing to drop.
    """
    python = ENVS / "capledger" / "bin" / "python"
    if not python.exists():
        return
    code = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from peer_capledger import PG_DATABASE, PG_SERVER\n"
        "import psycopg\n"
        "try:\n"
        "    db = psycopg.connect(f'{PG_SERVER}/postgres', autocommit=True, connect_timeout=5)\n"
        "except psycopg.OperationalError:\n"
        "    sys.exit(0)\n"
        "with db:\n"
        "    db.execute(f'DROP DATABASE IF EXISTS \"{PG_DATABASE}\" WITH (FORCE)')\n"
        "    print(f'dropped database {PG_DATABASE} (if it existed)')\n"
    )
    try:
        subprocess.run([str(python), "-c", code, str(HERE)], timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        print(f"could not drop the benchmark database: {error}", file=sys.stderr)


def update_readme(lines: list[str]) -> None:
    """Replace the README's generated head-to-head block (between its two markers)."""
    text = README.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        print("README has no peers markers; summary not written", file=sys.stderr)
        return
    block = "\n".join([README_START, *lines, README_END])
    README.write_text(text[:start] + block + text[end + len(README_END) :], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=harness.RUNS)
    parser.add_argument("--attempts", type=int, default=harness.ATTEMPTS)
    parser.add_argument("--only", default="", help="comma-separated env names to run")
    parser.add_argument(
        "--out",
        type=Path,
        default=BUILD,
        help=f"where to write (default {BUILD.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="also update docs/benchmarks-peers.md, docs/img/peers.png and the README",
    )
    args = parser.parse_args()
    out = args.out.resolve()
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    only = {name for name in args.only.split(",") if name}
    try:
        results = [
            run_contender(entry, args.runs, args.attempts, results_dir)
            for entry in CONTENDERS
            if not only or entry.env in only
        ]
    finally:
        drop_bench_database()
    rows = rows_of([r for r in results if "skipped" not in r])
    elapsed = time.perf_counter() - started
    doc, chart = out / DOC.name, out / "img" / CHART.name
    chart_error = png_chart(rows, chart, args.attempts) if rows else "no contender ran"
    write_markdown(results, rows, args, elapsed, chart_error, doc)
    complete = bool(rows) and not only and args.attempts == harness.ATTEMPTS
    if complete:
        summary = "\n".join([README_START, *readme_summary(rows, results), README_END, ""])
        (out / README_PART).write_text(summary, encoding="utf-8")
    print()
    print("\n".join(text_chart(rows)) if rows else "no contender ran")
    for result in results:
        if "skipped" in result:
            print(f"skipped {result['label']}: {result['skipped']}")
    print(f"\nwrote {out}: {doc.name}" + ("" if chart_error else f", img/{chart.name}"))
    if chart_error:
        print(f"no PNG: {chart_error}", file=sys.stderr)
    if args.write:
        publish(doc, chart, out / README_PART, chart_error=chart_error, complete=complete)
    else:
        print("tracked files unchanged (make bench-peers WRITE=1, or --write, updates them)")


def publish(doc: Path, chart: Path, summary: Path, *, chart_error: str, complete: bool) -> None:
    """Copy a run's page, chart and README block over the tracked ones."""
    DOC.write_text(doc.read_text(encoding="utf-8"), encoding="utf-8")
    written = [DOC]
    if not chart_error:
        CHART.parent.mkdir(parents=True, exist_ok=True)
        CHART.write_bytes(chart.read_bytes())
        written.append(CHART)
    if complete:
        update_readme(summary.read_text(encoding="utf-8").splitlines()[1:-1])
        written.append(README)
    else:
        print("README unchanged: only a full run (every contender, default attempts) goes there")
    print("updated " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
