"""Every ``make`` target and ``capledger`` command the docs name exists, and every benchmark
command in the docs runs from a fresh clone as written (its script exists, ``--help`` works
and its parser accepts the arguments shown).

The code blocks themselves run under the root ``conftest.py``; this also reads the inline
code of the prose and the blocks marked illustrative, which that does not run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from capledger.cli import main

ROOT = Path(__file__).resolve().parents[2]
# The docs write .venv/bin/python (what make creates); the tests run the interpreter they
# run in, which is that environment or another one built the same way (CI uses .venv-ci).
PYTHON = Path(sys.executable)
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BENCHMARK_DOCS = sorted((ROOT / "docs").glob("benchmarks*.md"))
FENCE = re.compile(r"^[ \t]*(`{3,})([^\n]*)\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
SHELL = {"bash", "sh", "shell", "console"}
INLINE = re.compile(r"`([^`\n]+)`")


def code_of(path: Path) -> list[str]:
    """Every line of code in a Markdown file: fenced blocks' lines and inline code spans."""
    text = path.read_text(encoding="utf-8")
    lines = [line for block in FENCE.findall(text) for line in block[2].splitlines()]
    prose = FENCE.sub("", text)
    return lines + INLINE.findall(prose)


def named(pattern: str) -> list[tuple[str, str]]:
    """(file, match) for every match of ``pattern`` in the docs' code, once per file."""
    found: dict[tuple[str, str], None] = {}
    for path in DOCS:
        for line in code_of(path):
            for match in re.finditer(pattern, line):
                found[(str(path.relative_to(ROOT)), match.group(1).strip())] = None
    return list(found)


def makefile_targets() -> set[str]:
    """The targets the Makefile defines."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", text, re.MULTILINE))


MAKE = named(r"(?:^|&&|;|\||\$)\s*make[ \t]+((?:[A-Za-z_][\w-]*=\S*[ \t]+)*[a-z][\w-]*)")
# A command line that starts with capledger (after a prompt, variables or a path such as
# .venv/bin/) and a command-like word, up to a comment.
CAPLEDGER = named(
    r"(?:^|&&|;|\|)\s*(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:\S*/)?capledger[ \t]+"
    r"((?:\[|-|[a-z][a-z-]*(?:\|[a-z][a-z-]*)*(?:\s|$))[^\n#]*)"
)


def test_the_docs_name_commands() -> None:
    """The scan finds what the docs plainly show (a broken pattern would pass vacuously)."""
    assert ("README.md", "demo") in MAKE
    assert any(command.startswith("limits set") for _, command in CAPLEDGER)


@pytest.mark.parametrize(("doc", "words"), MAKE, ids=[f"{d}: make {w}" for d, w in MAKE])
def test_make_targets_exist(doc: str, words: str) -> None:
    """``make X`` names a target of the Makefile."""
    target = next(word for word in words.split() if "=" not in word)
    assert target in makefile_targets(), f"{doc}: 'make {words}': the Makefile has no {target}"


def resolve(tokens: list[str]) -> list[str]:
    """Walk ``capledger TOKENS`` down the click tree; returns the command path it names."""
    command: click.Command = main
    path: list[str] = []
    context = click.Context(main, info_name="capledger")
    index = 0
    while index < len(tokens) and isinstance(command, click.Group):
        word = tokens[index]
        index += 1
        if word.startswith("["):  # an optional part of a synopsis: [--url URL]
            while index < len(tokens) and not tokens[index - 1].endswith("]"):
                index += 1
            continue
        if word == "--help":
            break
        if word.startswith("-"):  # the group's own options come before the command
            name = word.split("=")[0]
            option = next((p for p in command.params if name in p.opts), None)
            assert option is not None, f"'capledger {' '.join(path)}' has no option {name}"
            if not getattr(option, "is_flag", False) and "=" not in word:
                index += 1
            continue
        if word.isupper():
            break  # a placeholder: COMMAND
        for alternative in word.split("|"):
            assert command.get_command(context, alternative) is not None, (
                f"'capledger {' '.join([*path, alternative])}' is not a command; "
                f"'capledger {' '.join(path)}' has: {', '.join(command.list_commands(context))}"
            )
        command = command.get_command(context, word.split("|")[0])  # type: ignore[assignment]
        path.append(word)
    return path


@pytest.mark.parametrize(
    ("doc", "words"), CAPLEDGER, ids=[f"{d}: capledger {w}" for d, w in CAPLEDGER]
)
def test_capledger_commands_exist(doc: str, words: str) -> None:
    """``capledger X Y`` names a command of the CLI (and a group's subcommand)."""
    try:
        resolve(shlex.split(words))
    except AssertionError as error:
        raise AssertionError(f"{doc}: 'capledger {words}': {error}") from None


def benchmark_commands() -> list[tuple[str, list[str]]]:
    """The benchmark commands the benchmark pages show in their bash blocks."""
    found: dict[tuple[str, str], None] = {}
    for path in BENCHMARK_DOCS:
        text = path.read_text(encoding="utf-8")
        for _, language, body in FENCE.findall(text):
            if language.strip() not in SHELL:
                continue  # output, which may quote a command
            for line in body.splitlines():
                if re.search(r"(?:^|\s)(?:\S*/)?python3?\s+\S*benchmarks/", line):
                    found[(str(path.relative_to(ROOT)), line.split("#")[0].strip())] = None
    return [(doc, shlex.split(line)) for doc, line in found]


BENCHMARKS = benchmark_commands()


def test_the_benchmark_pages_show_commands() -> None:
    """The scan finds the benchmark commands (a broken pattern would pass vacuously)."""
    assert len(BENCHMARKS) >= 5


@pytest.mark.parametrize(
    ("doc", "argv"), BENCHMARKS, ids=[f"{d}: {shlex.join(a)}" for d, a in BENCHMARKS]
)
def test_benchmark_commands_run_from_a_fresh_clone(doc: str, argv: list[str]) -> None:
    """``.venv/bin/python benchmarks/X.py ARGS`` from the root: exists, ``--help`` works,
    the parser accepts ARGS (the benchmark itself is not run)."""
    while re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
        argv = argv[1:]  # PYTHONPATH=... for a before/after comparison
    assert argv[0] == ".venv/bin/python", (
        f"{doc}: {shlex.join(argv)}: a fresh clone has capledger only in .venv "
        "(make creates it): write .venv/bin/python"
    )
    script = ROOT / argv[1]
    assert script.is_file(), f"{doc}: no such script {argv[1]}"
    helped = subprocess.run(
        [str(PYTHON), str(script), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    parsed = subprocess.run(
        [str(PYTHON), "-c", PARSE_ONLY, str(script), *argv[2:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert parsed.returncode == 0, f"{doc}: {shlex.join(argv)}:\n{parsed.stderr}"


# Runs a script up to its argument parsing and stops there with status 0.
PARSE_ONLY = """
import argparse, runpy, sys
from pathlib import Path
class Parsed(BaseException):
    pass
original = argparse.ArgumentParser.parse_args
def parse_args(self, *args, **kwargs):
    original(self, *args, **kwargs)
    raise Parsed
argparse.ArgumentParser.parse_args = parse_args
sys.argv = sys.argv[1:]
sys.path.insert(0, str(Path(sys.argv[0]).parent))
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except Parsed:
    sys.exit(0)
sys.exit("the script ran to the end without parsing arguments")
"""


def test_a_wrong_argument_is_caught() -> None:
    """The parse-only run fails on an argument the script does not take."""
    parsed = subprocess.run(
        [str(PYTHON), "-c", PARSE_ONLY, str(ROOT / "benchmarks/cap_correctness.py"), "--nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert parsed.returncode == 2 and "--nope" in parsed.stderr


def test_the_docs_speak_only_of_this_repository() -> None:
    """No page names a path outside the repository or a file that is not in it."""
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for foreign in ("DESIGN.md", "/tmp/"):
            assert foreign not in text, f"{path.relative_to(ROOT)} names {foreign}"
