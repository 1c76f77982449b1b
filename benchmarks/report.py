"""Run the core benchmarks and write docs/benchmarks.md from what they print.

Nothing in docs/benchmarks.md is typed by hand: this script runs each command, pastes its
output verbatim under the command, and appends the pages the other benchmark scripts
generate (PostgreSQL, estimates, integrations, peers) as they stand.

    .venv/bin/python benchmarks/report.py            # run everything (a few minutes)
    .venv/bin/python benchmarks/report.py --quick    # fewer runs, for a smoke test
    .venv/bin/python benchmarks/report.py --pages-only   # keep the figures, include the
                                                         # other pages as they stand now

The page says which commit and machine produced it. The pages it includes must speak only
of this repository: one that names a path outside it (``/tmp/...``) or a file that is not
in it (``DESIGN.md``) stops the script before anything is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import checkout

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
INCLUDED = [
    ("PostgreSQL", ROOT / "docs" / "benchmarks-postgres.md"),
    ("Estimates: how tight the input bound is", ROOT / "docs" / "benchmarks-estimate.md"),
    ("Integrations: overhead of a guarded call", ROOT / "docs" / "benchmarks-integrations.md"),
    (
        "Structure: this checkout beside the commit before it",
        ROOT / "docs" / "benchmarks-structure.md",
    ),
    ("Head to head with the peers", ROOT / "docs" / "benchmarks-peers.md"),
]


#: What an included page must not name: paths outside the repository, files not in it.
FOREIGN = re.compile(r"DESIGN\.md|(?<![\w.])/tmp/")


def commands(quick: bool) -> list[tuple[str, str, list[str]]]:
    runs = "3" if quick else "5"
    return [
        (
            "cap_correctness on SQLite and memory",
            "1000 concurrent asyncio reservations of $0.10 against $5.00, 1 ms fake call "
            "between reserve and settle. Target: exact cap, 0 errors, under 0.15 s on SQLite.",
            ["benchmarks/cap_correctness.py", "--store", "sqlite", "--store", "memory",
             "--runs", runs],
        ),
        (
            "throughput on SQLite, empty and with history",
            "Sequential reserve+settle pairs per second on two scopes with day and month "
            "limits. Target: at least 3,000/s, and with 100,000 settled holds already in the "
            "journal at least 0.9x the empty rate. The two ledgers alternate run by run.",
            ["benchmarks/throughput.py", "--store", "sqlite", "--history",
             "20000" if quick else "100000", "--runs", runs],
        ),
        (
            "memory:// beside token-budget-py",
            "Single-thread reserve+settle pairs per second beside token-budget-py's "
            "reserve+commit, in one process, the two alternating every 1,000 pairs through "
            "each run of 50,000. Target: at least 0.25x of it.",
            ["benchmarks/memory_vs_token_budget.py", "--runs", "3" if quick else "9"],
        ),
    ]  # fmt: skip


def demote(markdown: str) -> str:
    """Push an included page's headings one level down, below this page's sections.

    Lines inside fenced code blocks are left alone (a ``#`` there is a comment).
    """
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines)


def included_pages() -> list[tuple[str, str]]:
    """The included pages' titles and bodies; stops if one names something foreign."""
    pages = []
    for title, page in INCLUDED:
        if not page.exists():
            continue
        body = page.read_text(encoding="utf-8").split("\n", 1)[1]  # drop its title
        foreign = sorted({match.group() for match in FOREIGN.finditer(body)})
        if foreign:
            raise SystemExit(
                f"{page.relative_to(ROOT)} names {', '.join(foreign)}: the docs speak only of "
                "this repository; fix the page, then run this again"
            )
        pages.append((title, f"(from `{page.relative_to(ROOT)}`)\n\n{demote(body).strip()}"))
    return pages


def included(pages: list[tuple[str, str]]) -> str:
    """The included pages, each under its own section."""
    return "\n".join(f"## {title}\n\n{page}\n" for title, page in pages)


def measured_part(document: str) -> str:
    """The page up to its first included section: the figures this script measured."""
    start = document.find(f"\n## {INCLUDED[0][0]}\n")
    if start < 0:
        raise SystemExit(f"{DOC.relative_to(ROOT)} has no section {INCLUDED[0][0]!r}")
    return document[: start + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, a smaller history")
    parser.add_argument(
        "--pages-only",
        action="store_true",
        help="run nothing: keep the page's measured sections, include the other pages again",
    )
    args = parser.parse_args()
    pages = included_pages()
    if args.pages_only:
        DOC.write_text(measured_part(DOC.read_text(encoding="utf-8")) + included(pages))
        print(f"wrote {DOC.relative_to(ROOT)} (measured sections kept)")
        return
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        "# Benchmarks",
        "",
        "<!-- Generated by benchmarks/report.py: do not edit by hand; run it again. -->",
        "",
        "Every figure below was printed by the command above it, on the machine it names. "
        "The machines are shared and noisy, so each benchmark repeats its runs and reports "
        "medians, and comparisons alternate the contenders run by run.",
        "",
        f"The first three sections were generated {now} from {checkout()} by "
        "`.venv/bin/python benchmarks/report.py`; `make bench` runs the same benchmarks. Each "
        "output's `machine:` line names the machine. The sections after them are included "
        "from their own pages, which say how and where they were measured.",
        "",
    ]
    for title, description, argv in commands(args.quick):
        command = ".venv/bin/python " + " ".join(argv)
        print(f"running: {command}", flush=True)
        load = os.getloadavg()[0]  # other work on the machine slows every figure below
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, check=True
        )
        sections += [
            f"## {title}",
            "",
            description,
            "",
            f"Command (from the repository root, {time.perf_counter() - started:.0f} s; load "
            f"average {load:.2f} on {os.cpu_count()} cores when it started):",
            "",
            f"```bash\n{command}\n```",
            "",
            result.stdout.strip(),
            "",
        ]
    DOC.write_text("\n".join(sections) + "\n" + included(pages), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
