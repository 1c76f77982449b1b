"""What of the pure core the state machine alone runs, checked against a list of reasons.

Runs the ``memory://`` machine by itself (``tests/stateful/test_stateful.py::
TestMemoryMachine``) under coverage.py, measuring branch coverage of ``src/capledger/_core/``
with the derandomized ``ci`` Hypothesis profile (500 examples), so that the same code gives
the same coverage on every run. It prints the report, then compares what the machine missed
with ``tests/stateful/uncovered.toml``: every branch it never takes (and every run of lines
it never reaches that no such branch leads into) must be listed there under a reason, and
every listed one must still be missed, so the list can neither fall behind nor hide a gap
that has closed. ``make test`` runs it.

Entries name the function and the source text, not line numbers, so that an edit elsewhere
in a file does not invalidate them: ``decide.py:_settle: if op.tags: -> hold.tags = ...``
is the branch from that line to that one (``-> exit``: out of the function), and
``decide.py:_counter_refusal: unit = account.unit (not run)`` a run of lines starting there.

    python tests/stateful/core_coverage.py            # measure and check
    python tests/stateful/core_coverage.py --write    # rewrite the list from this run:
                                                      # reasons kept, new entries unexplained

An entry without a reason fails the check, so ``--write`` is a start, never the end.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "capledger" / "_core"
LISTED = Path(__file__).with_name("uncovered.toml")
MACHINE = "tests/stateful/test_stateful.py::TestMemoryMachine"
HEADER = """\
# The branches of src/capledger/_core/ that the state machine alone (memory://, the `ci`
# profile) never takes, each under the reason why; tests/stateful/core_coverage.py (run by
# `make test`) fails when the machine misses one not listed here or takes one listed here.
# Entries are `file:function: from-line -> to-line` (a branch; `exit` leaves the function)
# or `file:function: first-line (not run)` (lines no missed branch leads into). A group with
# `depends_on_the_draw = true` may be taken or missed: which examples are drawn decides it.
"""


def measure(data_file: Path) -> dict[str, dict[str, Any]]:
    """Run the machine under coverage; return coverage.py's JSON report's ``files``."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            "--branch",
            "--source=capledger._core",
            f"--data-file={data_file}",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--hypothesis-profile=ci",
            MACHINE,
        ],
        cwd=ROOT,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"the state machine failed under coverage (pytest exit {run.returncode})")
    coverage = [sys.executable, "-m", "coverage"]
    subprocess.run([*coverage, "report", f"--data-file={data_file}", "-m"], cwd=ROOT, check=True)
    report = data_file.with_suffix(".json")
    subprocess.run(
        [*coverage, "json", "-q", f"--data-file={data_file}", "-o", str(report)],
        cwd=ROOT,
        check=True,
    )
    files: dict[str, dict[str, Any]] = json.loads(report.read_text())["files"]
    return files


def _functions(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function and class, outer first."""
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return spans


def missed(files: dict[str, dict[str, Any]]) -> list[str]:
    """One entry per branch never taken and per run of lines never reached otherwise."""
    entries: list[str] = []
    for path in sorted(CORE.glob("*.py")):
        measured = files.get(str(path.relative_to(ROOT)))
        if measured is None:
            continue
        source = path.read_text()
        lines = source.splitlines()
        spans = _functions(source)

        def where(
            line: int, name: str = path.name, spans: list[tuple[int, int, str]] = spans
        ) -> str:
            inner = [span for span in spans if span[0] <= line <= span[1]]
            return f"{name}:{inner[-1][2] if inner else '<module>'}"

        def text(line: int, lines: list[str] = lines) -> str:
            return lines[line - 1].strip()

        branch_targets = set()
        for start, end in measured["missing_branches"]:
            branch_targets.add(end)
            target = "exit" if end < 0 else text(end)
            entries.append(f"{where(start)}: {text(start)} -> {target}")
        executed = sorted(measured["executed_lines"])
        previous = None
        for line in sorted(measured["missing_lines"]):
            # A run continues while no executed line lies between two missed ones.
            continues = previous is not None and not any(
                previous < done < line for done in executed
            )
            if not continues and line not in branch_targets:
                entries.append(f"{where(line)}: {text(line)} (not run)")
            previous = line
    return entries


def listed() -> list[dict[str, Any]]:
    """The groups of ``uncovered.toml``: each a ``reason`` and its ``branches``."""
    if not LISTED.exists():
        return []
    groups: list[dict[str, Any]] = tomllib.loads(LISTED.read_text()).get("uncovered", [])
    return groups


def write(entries: list[str], groups: list[dict[str, Any]]) -> None:
    """Rewrite the list: each entry under its old reason, new entries under an empty one."""
    remaining = Counter(entries)
    kept: list[tuple[str, bool, list[str]]] = []
    for group in groups:
        either_way = bool(group.get("depends_on_the_draw", False))
        branches = []
        for entry in group["branches"]:
            if either_way or remaining[entry] > 0:
                remaining[entry] -= 1
                branches.append(entry)
        if branches:
            kept.append((str(group["reason"]), either_way, branches))
    new = [entry for entry, count in remaining.items() if count > 0]
    if new:
        kept.append(("", False, new))
    parts = [HEADER]
    for reason, either_way, branches in kept:
        listing = "".join(f"    {json.dumps(entry)},\n" for entry in branches)
        flag = "depends_on_the_draw = true\n" if either_way else ""
        parts.append(
            f"\n[[uncovered]]\nreason = {json.dumps(reason)}\n{flag}branches = [\n{listing}]\n"
        )
    LISTED.write_text("".join(parts))


def check(entries: list[str], groups: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the list, as sentences (none when it matches the run)."""
    problems = []
    expected: Counter[str] = Counter()
    # Branches that some derandomized draws take and others miss: any change to the code
    # or the machine reshuffles the draws, so these may go either way without a failure.
    either_way: set[str] = set()
    for group in groups:
        branches: list[str] = group["branches"]
        if not str(group.get("reason", "")).strip():
            problems.append(f"no reason given for {len(branches)} entries, from {branches[0]!r}")
        if group.get("depends_on_the_draw", False):
            either_way.update(branches)
        else:
            expected.update(branches)
    found = Counter(entry for entry in entries if entry not in either_way)
    for entry in sorted((found - expected).elements()):
        problems.append(f"missed by the machine and not listed: {entry}")
    for entry in sorted((expected - found).elements()):
        problems.append(f"listed, but the machine now covers it (remove it): {entry}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite uncovered.toml")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="capledger-core-coverage-") as folder:
        entries = missed(measure(Path(folder) / ".coverage"))
    groups = listed()
    if arguments.write:
        write(entries, groups)
        groups = listed()
    problems = check(entries, groups)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{LISTED.relative_to(ROOT)} does not match the machine's coverage", file=sys.stderr)
        return 1
    print(
        f"core coverage: every branch the machine misses is listed with its reason ({len(entries)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
