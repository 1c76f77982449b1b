"""The ``capledger`` command line: ``demo``, ``limits``, ``balance``, ``holds``, ``sweep``,
``report``, ``verify``, ``migrate`` (and ``prices`` / ``estimate`` when pricing is installed).

``main`` is the click group (the ``capledger`` entry point). Every option also reads a
``CAPLEDGER_*`` environment variable, shown in each command's ``--help``. Bad input prints
one line and exits with status 2; other ledger errors exit with status 1.
"""

from __future__ import annotations

import importlib

import click

from ._app import CliState, main
from ._commands import balance, holds, limits, migrate, report, sweep, verify
from ._demo import demo

__all__ = ["CliState", "add_pricing_commands", "main"]

for _command in (demo, limits, balance, holds, sweep, report, verify, migrate):
    main.add_command(_command)


def _pricing_missing(name: str, error: ImportError) -> click.Command:
    """A stand-in for a pricing command whose dependencies are not installed."""

    @click.command(
        name,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    def missing() -> None:
        raise click.ClickException(
            f"'capledger {name}' needs genai-prices: pip install 'capledger[prices]' ({error})"
        )

    missing.help = "(needs: pip install 'capledger[prices]')"
    missing.short_help = missing.help
    return missing


def add_pricing_commands(group: click.Group) -> None:
    """Add ``prices`` and ``estimate`` to ``group`` if their module imports.

    The module is imported by name so that the rest of the CLI works (and type-checks)
    whether it exists or not. If it exists but a dependency is missing, the commands are
    still listed and say what to install.
    """
    try:
        module = importlib.import_module("capledger.cli.prices")
    except ImportError as error:
        if error.name == "capledger.cli.prices":
            return  # not shipped in this build
        for name in ("prices", "estimate"):
            group.add_command(_pricing_missing(name, error))
        return
    for attribute in ("prices", "estimate"):
        command = getattr(module, attribute, None)
        if isinstance(command, click.Command):
            group.add_command(command)


add_pricing_commands(main)
