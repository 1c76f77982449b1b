"""Every code block in README.md and docs/ runs as a test (sybil), so the docs cannot drift.

Each Markdown file is one test module; each fenced block is one test, run in order. A file
runs in a fresh temporary directory (so ``Ledger()`` makes ``capledger.db`` there), with
every ``CAPLEDGER_*`` variable unset, a terminal 100 columns wide (``COLUMNS``), and with a
fake LLM provider (``FakeProvider`` of ``tests/integrations/llm_fakes.py``) served over real
HTTP on 127.0.0.1: the OpenAI and Anthropic SDKs find it through ``OPENAI_BASE_URL`` /
``ANTHROPIC_BASE_URL`` (and fake API keys), so the examples read as a user would write them.

What each block's language means:

- ``python``: executed in the file's namespace (blocks of one file share it, and a block
  runs after the blocks above it, here first if pytest-xdist or ``-k`` left them out). Top-level
  ``await`` works, on one event loop per file. Helpers a reader would write themselves are
  defined there: ``call_llm(...)`` (a real chat completion from the fake provider),
  ``cost_of(response)`` (its price), ``stream`` (an async iterator of chunks) and
  ``running_cost``. A block importing a package that is not installed here is skipped
  (the LiteLLM and Datasette examples need environments of their own).
- ``console``: ``$ command`` lines run, the lines after each are its expected output
  (standard output and error, compared line by line, trailing spaces ignored; a line ``...``
  stands for any number of lines). Each command must exit 0, unless the next command is
  ``echo $?``, whose output is then the expected status.
- ``bash`` / ``sh`` / ``shell``: every line is a command (``#`` starts a comment; ``&&``
  chains), with no output shown; each must exit 0.
- ``text`` or no language: must be one of: a synopsis (every line starts with
  ``capledger``: the command must exist and every ``--option`` named must be one of its
  options), or a block marked with one of the markers below.
- ``toml`` / ``json``: must parse. ``sql``: runs on an in-memory SQLite database.

Commands a block may run: ``capledger ...`` (also ``.venv/bin/capledger``,
``python -m capledger.cli``): the real CLI through click's ``CliRunner``, in the file's
directory; ``NAME=value`` before it sets a variable for that command only; ``< FILE`` feeds
a file as standard input. ``make TARGET``: TARGET must be a target of the Makefile (make is
not run). ``.venv/bin/python benchmarks/SCRIPT.py ARGS``: the script must exist and its
argument parser must accept ARGS (the benchmark is not run). ``echo $?``: see ``console``.
Anything else fails with the line it could not run.

Markers: an HTML comment on the line(s) right before a block's opening fence (blank lines
between are allowed):

- ``<!-- illustrative -->`` or ``<!-- illustrative: why -->``: the block is not run or
  checked. Only for what truly varies run to run (timings, ids, benchmark output) or cannot
  run here (say why).
- ``<!-- output-of: COMMAND -->``: COMMAND runs as above and the block must be an excerpt of
  its output: its lines appear, in order and contiguous, in what COMMAND printed (``...``
  lines stand for any number of lines).
- ``<!-- shape-of: COMMAND -->``: the same, except that every number in the block matches
  any number (for output whose counts vary from run to run). Before a ``console`` block,
  ``<!-- shape-of -->`` (no command) runs the block as usual with numbers free.
- ``<!-- file: NAME -->``: the block's text is written to NAME in the file's directory
  (then checked as its language says), so later blocks can read it.
"""

# This file is imported for every test run: capledger, its CLI, the SDKs and the fakes are
# imported when a document needs them, so a run of other tests never depends on them.
# ruff: noqa: PLC0415

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import threading
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

import click
import pytest
from click.testing import CliRunner
from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parent
# The docs write .venv/bin/python (what make creates); the tests run the interpreter they
# run in, which is that environment or another one built the same way (CI uses .venv-ci).
PYTHON = Path(sys.executable)
FAKES_DIR = ROOT / "tests" / "integrations"

# LiteLLM fetches its price map from the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# --- blocks and markers --------------------------------------------------------------------

MARKER = re.compile(
    r"<!--\s*(?P<kind>illustrative|output-of|shape-of|file)\s*(?::\s*(?P<argument>.*?))?\s*-->"
    r"\s*$"
)
PYTHON_LANGUAGES = {"python", "py"}
SHELL_LANGUAGES = {"bash", "sh", "shell"}
OUTPUT_LANGUAGES = {"", "text"}


@dataclass(frozen=True)
class Marker:
    """A directive comment right before a block's fence."""

    kind: str
    argument: str


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, text, and the markers placed before it."""

    language: str
    source: str
    line: int
    markers: tuple[Marker, ...]

    def marker(self, kind: str) -> Marker | None:
        """The marker of this kind, if the block has one."""
        return next((marker for marker in self.markers if marker.kind == kind), None)


def markers_before(text: str, start: int) -> tuple[Marker, ...]:
    """The marker comments on the lines just above ``start`` (blank lines between allowed)."""
    found: list[Marker] = []
    lines = text[:start].splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    while lines:
        match = MARKER.search(lines[-1].strip())
        if match is None or not lines[-1].strip().startswith("<!--"):
            break
        found.append(Marker(match["kind"], (match["argument"] or "").strip()))
        lines.pop()
    return tuple(reversed(found))


class FencedBlockParser:
    """Yields every fenced block of a Markdown document, with or without a language."""

    def __init__(self) -> None:
        self.lexer = RawFencedCodeBlockLexer(
            info_pattern=re.compile(r"(?P<language>[^\n]*)$\n", re.MULTILINE)
        )

    def __call__(self, document: Document) -> Iterator[Region]:
        for region in self.lexer(document):
            language = str(region.lexemes["language"]).strip().split(" ")[0].lower()
            source = region.lexemes["source"]
            line = document.text.count("\n", 0, region.start) + 1
            region.parsed = Block(
                language, str(source), line, markers_before(document.text, region.start)
            )
            region.evaluator = evaluate_block
            yield region


# --- the fake provider over HTTP ---------------------------------------------------------


def _http_module() -> Any:
    """The httpx flavour the installed OpenAI SDK uses (the fake builds its responses)."""
    try:
        import openai
    except ImportError:
        import httpx

        return httpx
    sys.path.insert(0, str(FAKES_DIR))
    try:
        from llm_fakes import http_module
    finally:
        sys.path.remove(str(FAKES_DIR))
    return http_module(openai)


class FakeProviderServer:
    """``FakeProvider`` served on 127.0.0.1 by a thread: OpenAI and Anthropic paths."""

    def __init__(self) -> None:
        sys.path.insert(0, str(FAKES_DIR))
        try:
            from llm_fakes import FakeProvider
        finally:
            sys.path.remove(str(FAKES_DIR))
        self.httpx = _http_module()
        self.provider = FakeProvider(self.httpx, want=12)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests print nothing per request."""

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self.http.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Hand one HTTP request to the fake provider and write its response back."""
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        request = self.httpx.Request(
            "POST", self.url + handler.path, headers=dict(handler.headers), content=body
        )
        response = self.provider.handle(request)
        handler.send_response(response.status_code)
        hop_by_hop = {"content-length", "transfer-encoding", "connection"}
        for name, value in response.headers.items():
            if name.lower() not in hop_by_hop:
                handler.send_header(name, value)
        if response.headers.get("content-type") == "text/event-stream":
            # HTTP/1.0: the body ends when the connection closes.
            handler.end_headers()
            for frame in response.stream:
                handler.wfile.write(frame)
                handler.wfile.flush()
            return
        content = response.read()
        handler.send_header("content-length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def close(self) -> None:
        """Stop serving and close the socket."""
        self.http.shutdown()
        self.http.server_close()
        self.thread.join()


# --- the per-document environment --------------------------------------------------------


class DocumentEnvironment:
    """One document's directory, event loop, fake provider and reader's helpers."""

    def __init__(self, directory: Path, server: FakeProviderServer) -> None:
        self.directory = directory
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.environ: dict[str, str] = {}
        self._clients: list[Any] = []

    def helpers(self) -> dict[str, Any]:
        """Names a document's examples may use without defining them."""

        async def chunks() -> AsyncIterator[str]:
            for word in ("Ledgers ", "balance ", "debits ", "and ", "credits."):
                yield word

        return {
            "call_llm": self.call_llm,
            "cost_of": self.cost_of,
            "stream": chunks(),
            "running_cost": Decimal("0.02"),
        }

    def call_llm(self, *args: Any, **kwargs: Any) -> Any:
        """A real chat completion from the fake provider, through the OpenAI SDK."""
        import openai

        client = openai.OpenAI(max_retries=0)
        self._clients.append(client)
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Three facts about ledgers."}],
            max_completion_tokens=50,
        )

    def cost_of(self, response: Any) -> Decimal:
        """The price of a chat completion, from capledger's pricing."""
        from capledger import pricing

        return pricing.cost(response.model, response)

    def close(self, namespace: dict[str, Any]) -> None:
        """Close what the examples opened (ledgers, clients), then the loop."""
        ledger_module = sys.modules.get("capledger.ledger")
        for value in list(namespace.values()) if ledger_module else []:
            if isinstance(value, ledger_module.Ledger):
                value.close()
            elif isinstance(value, ledger_module.AsyncLedger):
                self.loop.run_until_complete(value.aclose())
        for client in self._clients:
            client.close()
        stream = namespace.get("stream")
        if inspect.isasyncgen(stream):
            self.loop.run_until_complete(stream.aclose())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@pytest.fixture(scope="module")
def capledger_docs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DocumentEnvironment]:
    """A Markdown file's environment: its own directory, no CAPLEDGER_*, a fake provider."""
    directory = tmp_path_factory.mktemp(Path(str(request.node.path)).stem)
    server = FakeProviderServer()
    environment = DocumentEnvironment(directory, server)
    namespaces = [document.namespace for document in getattr(request.node, "documents", [])]
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("CAPLEDGER_"):
                patch.delenv(name)
        for name, value in {
            "OPENAI_BASE_URL": server.url + "/v1",
            "OPENAI_API_KEY": "sk-docs-test",
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_API_KEY": "sk-ant-docs-test",
            # Help text wraps at the terminal's width: the docs show a 100-column terminal.
            "COLUMNS": "100",
        }.items():
            patch.setenv(name, value)
        patch.chdir(directory)
        with contextlib.suppress(ImportError):
            # Overrides a document sets on the default pricebook stay in its module.
            from capledger.pricing import _pricebook

            patch.setattr(_pricebook, "_DEFAULT", _pricebook.Pricebook())
        for namespace in namespaces:
            namespace.update(environment.helpers())
        try:
            yield environment
        finally:
            for namespace in namespaces:
                environment.close(namespace)
            server.close()


# --- evaluation ----------------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    """Fail the block's test with ``message`` alone (no traceback into this module)."""
    __tracebackhide__ = True
    pytest.fail(message, pytrace=False)


def evaluate_block(example: Example) -> None:
    """Run or check one block, after the blocks above it in its document.

    A block builds on the ones above it. When they have not run in this process (pytest-xdist
    handed them to another worker, or ``-k`` left them out), they run here first.
    """
    __tracebackhide__ = True
    done: set[int] = example.namespace.setdefault("__blocks_run__", set())
    for earlier in example.document.examples():
        if earlier.start >= example.start:
            break
        if earlier.start not in done:
            done.add(earlier.start)
            try:
                evaluate_one(earlier)
            except Exception as error:
                fail(
                    f"the block at line {earlier.line}, which this one builds on, failed: {error!r}"
                )
    done.add(example.start)
    evaluate_one(example)


def evaluate_one(example: Example) -> None:
    """Run or check one block, as its language and markers say."""
    __tracebackhide__ = True
    block: Block = example.parsed
    environment: DocumentEnvironment = example.namespace["capledger_docs"]
    if block.marker("illustrative"):
        return
    file_marker = block.marker("file")
    if file_marker:
        (environment.directory / file_marker.argument).write_text(block.source)
    if block.language == "console" and block.marker("shape-of"):
        run_console(block, environment, shape=True)
        return
    for kind in ("output-of", "shape-of"):
        marker = block.marker(kind)
        if marker:
            check_excerpt(block, marker, environment)
            return
    language = block.language
    if language in PYTHON_LANGUAGES:
        run_python(example, block, environment)
    elif language == "console":
        run_console(block, environment)
    elif language in SHELL_LANGUAGES:
        run_shell(block, environment)
    elif language == "toml":
        tomllib.loads(block.source)
    elif language == "json":
        json.loads(block.source)
    elif language == "sql":
        with contextlib.closing(sqlite3.connect(":memory:")) as connection:
            connection.executescript(block.source)
    elif language in OUTPUT_LANGUAGES and is_synopsis(block.source):
        for line in block.source.splitlines():
            if line.strip():
                check_synopsis(line.strip())
    else:
        fail(
            f"line {block.line}: a {language or 'plain'!r} block that is neither run nor "
            "checked: give it a language that runs (python, console, bash), or put "
            "<!-- output-of: COMMAND -->, <!-- shape-of: COMMAND --> or "
            "<!-- illustrative: why --> right before it (see conftest.py)"
        )


def run_python(example: Example, block: Block, environment: DocumentEnvironment) -> None:
    """Execute a Python block in the document's namespace; top-level ``await`` allowed."""
    __tracebackhide__ = True
    namespace = example.namespace
    if namespace.get("__skip_reason__"):
        pytest.skip(namespace["__skip_reason__"])
    source = "\n" * example.line + block.source
    flags = 0x2000  # ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code = compile(source, example.path, "exec", flags=flags, dont_inherit=True)
    try:
        if code.co_flags & inspect.CO_COROUTINE:
            environment.loop.run_until_complete(eval(code, namespace))
        else:
            exec(code, namespace)
    except ModuleNotFoundError as missing:
        top = (missing.name or "").split(".")[0]
        if top and not top.startswith("capledger"):
            # The document's later blocks build on this one: skip them too.
            namespace["__skip_reason__"] = f"needs {top}, not installed in this environment"
            pytest.skip(namespace["__skip_reason__"])
        raise
    finally:
        namespace.pop("__builtins__", None)


# --- commands ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a command did: its exit status and everything it printed."""

    status: int
    output: str


def makefile_targets() -> set[str]:
    """The targets the Makefile defines."""
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", text, re.MULTILINE))


def cli_command(words: list[str]) -> tuple[Any, list[str]]:
    """The click command ``capledger WORDS`` names, and the words that are its own path."""
    from capledger.cli import main

    command: Any = main
    path: list[str] = []
    context = click.Context(main, info_name="capledger")
    for word in words:
        if not isinstance(command, click.Group) or word.startswith("-"):
            break
        sub = command.get_command(context, word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    return command, path


def is_synopsis(source: str) -> bool:
    """A block of ``capledger ...`` usage lines."""
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    return bool(lines) and all(line.startswith("capledger ") for line in lines)


def check_synopsis(line: str) -> None:
    """``capledger CMD [--opt X]``: the command exists and names only its own options."""
    __tracebackhide__ = True
    words = line.split()[1:]
    options = {re.sub(r"[\[\]=].*$", "", w.strip("[]")) for w in words if "--" in w}
    options = {option for option in options if option.startswith("--")}
    names = [w for w in words if re.fullmatch(r"[a-z][a-z-]*", w)]
    command, path = cli_command(names)
    if names and not path:
        fail(f"{line!r}: 'capledger {names[0]}' is not a command")
    declared: set[str] = set()
    for parameter in command.params:
        declared.update(parameter.opts)
        declared.update(parameter.secondary_opts)
    declared.add("--help")
    if command.name == "capledger" or getattr(command, "commands", None):
        # Options of the group itself (``--url``) may come before the command.
        from capledger.cli import main

        for parameter in main.params:
            declared.update(parameter.opts)
    unknown = sorted(options - declared)
    if unknown:
        fail(f"{line!r}: 'capledger {' '.join(path)}' has no option {', '.join(unknown)}")


class TerminalRunner(CliRunner):
    """``CliRunner``, except that help wraps as in a terminal of ``$COLUMNS`` (click's
    runner forces 80 columns)."""

    @contextlib.contextmanager
    def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """The runner's isolation, with the terminal's width left to ``$COLUMNS``."""
        with super().isolation(*args, **kwargs) as streams:
            click.formatting.FORCED_WIDTH = None  # the runner puts its own value back
            yield streams


def run_capledger(args: list[str], environ: dict[str, str], stdin: str | None) -> Outcome:
    """The real CLI, in process, in the current directory."""
    from capledger.cli import main

    runner = TerminalRunner()
    result = runner.invoke(
        main, args, prog_name="capledger", env=environ, input=stdin, catch_exceptions=False
    )
    return Outcome(result.exit_code, result.output)


def check_benchmark_arguments(script: str, args: list[str]) -> Outcome:
    """The script exists and its argument parser accepts ``args``; nothing else runs."""
    return _check_benchmark_arguments(script, tuple(args))


@functools.cache
def _check_benchmark_arguments(script: str, args: tuple[str, ...]) -> Outcome:
    # Cached: docs/benchmarks.md repeats the commands of the pages it includes.
    path = ROOT / script
    if not path.is_file():
        return Outcome(1, f"no such script: {script}\n")
    probe = (
        "import argparse, runpy, sys\n"
        "class Parsed(BaseException): pass\n"
        "original = argparse.ArgumentParser.parse_args\n"
        "def parse_args(self, *a, **k):\n"
        "    original(self, *a, **k)\n"
        "    raise Parsed\n"
        "argparse.ArgumentParser.parse_args = parse_args\n"
        "sys.argv = sys.argv[1:]\n"
        "sys.path.insert(0, str(__import__('pathlib').Path(sys.argv[0]).parent))\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except Parsed:\n"
        "    sys.exit(0)\n"
        "sys.exit('the script ran without parsing arguments')\n"
    )
    completed = subprocess.run(
        [str(PYTHON), "-c", probe, str(path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Outcome(completed.returncode, completed.stdout + completed.stderr)


def split_command(line: str) -> list[list[str]]:
    """A shell line as commands (``&&`` chains), each a list of words; comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="&<|;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token == "&&":
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def run_command(words: list[str], environment: DocumentEnvironment, last: Outcome) -> Outcome:
    """Run one documented command the way this module's docstring describes."""
    environ = dict(environment.environ)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        environ[name] = value
    stdin = None
    if "<" in words:
        at = words.index("<")
        stdin = (environment.directory / words[at + 1]).read_text()
        words = words[:at] + words[at + 2 :]
    if words[:1] == ["export"]:
        for assignment in words[1:]:
            name, _, value = assignment.partition("=")
            environment.environ[name] = value
        return Outcome(0, "")
    if words == ["echo", "$?"]:
        return Outcome(0, f"{last.status}\n")
    if words[:1] in (["capledger"], [".venv/bin/capledger"]):
        return run_capledger(words[1:], environ, stdin)
    if words[:3] == ["python", "-m", "capledger.cli"]:
        return run_capledger(words[3:], environ, stdin)
    if words[:1] == ["make"]:
        missing = [w for w in words[1:] if "=" not in w and w not in makefile_targets()]
        if missing:
            return Outcome(2, f"make: no target {', '.join(missing)} in the Makefile\n")
        return Outcome(0, "")
    if words[:1] == [".venv/bin/python"] and words[1:2] and words[1].startswith("benchmarks/"):
        return check_benchmark_arguments(words[1], words[2:])
    fail(
        f"the doc runner cannot run {shlex.join(words)!r}: write it as a command it knows "
        "(see conftest.py), or mark the block <!-- illustrative: why -->"
    )


def run_console(block: Block, environment: DocumentEnvironment, *, shape: bool = False) -> None:
    """``$ command`` lines with their expected output."""
    __tracebackhide__ = True
    steps: list[tuple[str, list[str]]] = []
    for line in block.source.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            fail(f"line {block.line}: console output before any '$ ' command")
    outcome = Outcome(0, "")
    for index, (line, expected) in enumerate(steps):
        for words in split_command(line):
            outcome = run_command(words, environment, outcome)
        checked_next = index + 1 < len(steps) and steps[index + 1][0].strip() == "echo $?"
        if outcome.status != 0 and not checked_next:
            fail(
                f"$ {line}\nexited {outcome.status}:\n{outcome.output}"
                "(show the status with '$ echo $?' if this is the documented outcome)"
            )
        while expected and not expected[-1].strip():
            expected.pop()
        if not matches(expected, outcome.output.splitlines(), excerpt=False, shape=shape):
            fail(
                f"$ {line}\n--- the docs show:\n" + "\n".join(expected) + "\n--- it printed:\n"
                f"{outcome.output}"
            )


def run_shell(block: Block, environment: DocumentEnvironment) -> None:
    """Every line a command, each expected to exit 0."""
    __tracebackhide__ = True
    outcome = Outcome(0, "")
    for line in block.source.splitlines():
        for words in split_command(line):
            outcome = run_command(words, environment, outcome)
            if outcome.status != 0:
                fail(f"{line}\nexited {outcome.status}:\n{outcome.output}")


def check_excerpt(block: Block, marker: Marker, environment: DocumentEnvironment) -> None:
    """The block is an excerpt of what the marker's command prints."""
    __tracebackhide__ = True
    outcome = Outcome(0, "")
    for words in split_command(marker.argument):
        outcome = run_command(words, environment, outcome)
    if outcome.status != 0:
        fail(f"{marker.argument} exited {outcome.status}:\n{outcome.output}")
    expected = block.source.splitlines()
    shape = marker.kind == "shape-of"
    if not matches(expected, outcome.output.splitlines(), excerpt=True, shape=shape):
        fail(
            f"line {block.line}: not an excerpt of what {marker.argument!r} printed"
            f"{' (numbers aside)' if shape else ''}\n--- the docs show:\n{block.source}"
            f"--- it printed:\n{outcome.output}"
        )


NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def line_pattern(line: str, *, shape: bool) -> str:
    """A regular expression for one expected line (numbers free when ``shape``)."""
    line = line.rstrip()
    if not shape:
        return re.escape(line)
    parts = NUMBER.split(line)
    return r"\d[\d,]*(?:\.\d+)?".join(re.escape(part) for part in parts)


def matches(expected: list[str], actual: list[str], *, excerpt: bool, shape: bool) -> bool:
    """Whether ``actual`` lines are ``expected`` (or contain it, for an excerpt)."""
    pieces = [
        r"(?:[^\n]*\n)*?" if line.strip() == "..." else line_pattern(line, shape=shape) + r"\n"
        for line in expected
    ]
    pattern = "".join(pieces)
    if excerpt:
        pattern = r"(?:[^\n]*\n)*?" + pattern + r"(?:[^\n]*\n)*"
    text = "".join(line.rstrip() + "\n" for line in actual)
    return re.fullmatch(pattern, text) is not None


pytest_collect_file = Sybil(
    parsers=[FencedBlockParser()],
    patterns=["*.md"],
    excludes=["benchmarks/*", ".venv/*", "build/*"],
    fixtures=["capledger_docs"],
).pytest()
