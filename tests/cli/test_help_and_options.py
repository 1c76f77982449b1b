"""Every command and option documents itself; required options say they are missing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import click
import pytest
from click.testing import CliRunner, Result

from capledger.cli import main

Invoke = Callable[..., Result]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(_commands(main))


def test_the_tree_is_walked() -> None:
    assert {("demo",), ("limits", "set"), ("report",), ("verify",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda path: " ".join(path) or "capledger")
def test_every_command_and_option_has_help(path: tuple[str, ...]) -> None:
    command = _command(path)
    assert (command.help or "").strip(), f"{path} has no help"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} has no help"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_shows_a_capledger_environment_variable(path: tuple[str, ...]) -> None:
    for param in _command(path).params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        assert param.show_envvar, f"{' '.join(path)} {param.opts} hides its variable"
        if param.envvar is None:  # click's automatic CAPLEDGER_<COMMAND>_<OPTION>
            assert param.name is not None
            # An option named after its command would read CAPLEDGER_DEMO_DEMO_URL.
            assert not param.name.startswith(f"{path[-1]}_"), param.opts


def test_the_demo_url_variable_has_its_documented_name() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert "CAPLEDGER_DEMO_URL" in result.output
    assert "CAPLEDGER_DEMO_DEMO_URL" not in result.output


def test_url_help_names_postgresql() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "postgresql://" in result.output and "PostgreSQL" in result.output


REQUIRED = [
    (["limits", "remove", "user:a"], "Missing option '--period'"),
    (["prices", "cost", "gpt-4o-mini", "--input", "10"], "Missing option '--output'"),
    (["prices", "cost", "gpt-4o-mini", "--output", "10"], "Missing option '--input'"),
    (["prices", "cost", "--input", "1", "--output", "1"], "Missing argument 'MODEL'"),
    (["prices", "show"], "Missing argument 'MODEL'"),
    (["estimate"], "Missing option '--model'"),
    (["balance"], "Missing argument 'SCOPE'"),
    (["limits", "set"], "Missing argument 'SCOPE'"),
]


@pytest.mark.parametrize(("args", "words"), REQUIRED, ids=[" ".join(a) for a, _ in REQUIRED])
def test_a_missing_required_option_or_argument_says_so(
    cli: Invoke, args: list[str], words: str
) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_every_required_parameter_is_in_the_table_above() -> None:
    required = {
        (" ".join(path), param.name)
        for path in COMMANDS
        for param in _command(path).params
        if param.required
    }
    named = {
        ("limits remove", "period"),
        ("prices cost", "input"),
        ("prices cost", "output"),
        ("prices cost", "model"),
        ("prices show", "model"),
        ("estimate", "model"),
        ("balance", "scope"),
        ("limits set", "scope"),
        ("limits remove", "scope"),
    }
    assert required == named
