"""The ``capledger`` command group: global options, the ledger it opens, error mapping.

Errors are mapped once, here, for every command (prices and estimate included):

- bad input (``InvalidInput``, ``ConfigurationError``, ``UnknownModel``, or a click usage
  error) prints one line, ``Error: ...``, and exits with status 2;
- any other ``LedgerError`` (``BackendUnavailable``, ``BudgetExceeded``, ...) prints one line
  and exits with status 1;
- anything else is a bug in capledger and keeps its traceback.

A library message that suggests a Python call (``Pricebook.set_price``, ``usd=``) is
rewritten with the command-line remedy (``--prices-file``, ``--usd``) in ``cli_message``:
the library keeps speaking Python, the CLI speaks flags.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import unquote, urlsplit

import click
from click.core import ParameterSource

from capledger import __version__
from capledger.errors import ConfigurationError, InvalidInput, LedgerError, UnknownModel
from capledger.ledger import DEFAULT_URL, Ledger

__all__ = [
    "BadInput",
    "CliState",
    "cli_message",
    "main",
    "open_ledger",
    "option",
    "sqlite_path",
]

_F = TypeVar("_F", bound=Callable[..., Any])

# Click raises this (a UsageError) to show the help of a group run without a command; it
# must keep showing the help, not become a one-line error. Absent before click 8.2.
_HELP_ERRORS: tuple[type[BaseException], ...] = tuple(
    kind
    for kind in (getattr(click.exceptions, "NoArgsIsHelpError", None),)
    if isinstance(kind, type)
)


def option(*param_decls: str, **attrs: Any) -> Callable[[_F], _F]:
    """``click.option`` that lists its environment variable in ``--help``.

    With ``auto_envvar_prefix="CAPLEDGER"`` every option also reads
    ``CAPLEDGER_<COMMAND>_<OPTION>`` (``CAPLEDGER_REPORT_FORMAT``); an explicit ``envvar``
    is tried first.
    """
    attrs.setdefault("show_envvar", True)
    return click.option(*param_decls, **attrs)


#: Remedies in library messages that name Python calls, and the same remedy in flags.
_CLI_REMEDIES: Final = (
    (
        "price it with Pricebook.set_price or alias it to a known model with Pricebook.set_alias",
        'price it in a --prices-file ([prices."MODEL"] with input and output) or alias it '
        "to a known model there ([aliases])",
    ),
    (
        "set one with Pricebook.set_price",
        'set one in a --prices-file ([prices."MODEL"] with input and output)',
    ),
    ("usd=, tokens= or requests=", "--usd, --tokens or --requests"),
)


def cli_message(error: BaseException) -> str:
    """The message of ``error`` with command-line remedies in place of Python calls."""
    text = str(error)
    for python, flags in _CLI_REMEDIES:
        text = text.replace(python, flags)
    return text


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names, or None for another store."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or not parts.path.startswith("/"):
        return None
    return Path(unquote(parts.path[1:]))


def _existing_only(url: str) -> str:
    """``url``, opened only if its ledger exists: SQLite's ``mode=rw`` unless a mode is set."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or "mode=" in parts.query:
        return url  # other stores create nothing on disk by being opened
    # Appended as text: urlunsplit would turn sqlite:////abs.db into sqlite://abs.db.
    return f"{url}{'&' if parts.query else '?'}mode=rw"


class BadInput(click.UsageError):
    """Bad input: one line on standard error, exit status 2, nothing written."""

    def show(self, file: Any = None) -> None:
        """Print ``Error: <message>`` and where to find help, on one line."""
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", err=True)


def _brief(error: click.UsageError) -> click.UsageError:
    if isinstance(error, (BadInput, *_HELP_ERRORS)):
        return error
    return BadInput(error.format_message(), error.ctx)


class CapledgerGroup(click.Group):
    """A group that turns every error into a one-line message and an exit status."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the group's own options; a usage error there becomes ``BadInput``."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            raise _brief(error) from error

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand, mapping ledger and usage errors (module docstring)."""
        try:
            return super().invoke(ctx)
        except (InvalidInput, ConfigurationError, UnknownModel) as error:
            context = click.get_current_context(silent=True) or ctx
            raise BadInput(cli_message(error), context) from error
        except LedgerError as error:
            raise click.ClickException(cli_message(error)) from error
        except click.UsageError as error:
            raise _brief(error) from error


@dataclass
class CliState:
    """What the group passes to its commands: the store URL and a ledger opened on demand.

    The ledger is opened only when a command needs it, after its arguments were checked,
    so bad input never creates a database file.
    """

    url: str
    url_on_command_line: bool
    _ledger: Ledger | None = field(default=None, repr=False)

    def ledger(self, *, existing: bool = False) -> Ledger:
        """The ledger at ``url``, opened on first use and closed when the command ends.

        Args:
            existing: open it only if it exists (read-only commands): a mistyped SQLite
                path is refused with ``ConfigurationError`` instead of creating an empty
                ledger that reports nothing.
        """
        if self._ledger is None:
            if not existing:
                self._ledger = Ledger(self.url)
                return self._ledger
            try:
                self._ledger = Ledger(_existing_only(self.url))
            except ConfigurationError as error:
                path = sqlite_path(self.url)
                if path is None or path.exists() or not path.parent.is_dir():
                    raise  # not a missing ledger: the store's own message says what is wrong
                raise ConfigurationError(
                    f"there is no ledger at {str(path)!r} ({self.url}): check --url or "
                    "CAPLEDGER_URL; 'capledger limits set' or 'capledger migrate' creates one"
                ) from error
        return self._ledger

    def close(self) -> None:
        """Close the ledger if it was opened."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


def open_ledger(ctx: click.Context, *, existing: bool = False) -> Ledger:
    """The ledger of the running command (see ``CliState.ledger``)."""
    state = ctx.find_object(CliState)
    if state is None:  # a command invoked on its own, without the group (embedding, tests)
        root = ctx.find_root()
        state = CliState(
            url=os.environ.get("CAPLEDGER_URL") or DEFAULT_URL, url_on_command_line=False
        )
        root.obj = state
        root.call_on_close(state.close)
    return state.ledger(existing=existing)


@click.group(
    cls=CapledgerGroup,
    context_settings={
        "auto_envvar_prefix": "CAPLEDGER",
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
    },
)
@option(
    "--url",
    envvar="CAPLEDGER_URL",
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    help=(
        "The ledger's store: sqlite:///path.db (the embedded default), "
        "postgresql://user@host/db (PostgreSQL), or memory://."
    ),
)
@click.version_option(__version__, "-V", "--version", prog_name="capledger")
@click.pass_context
def main(ctx: click.Context, url: str) -> None:
    """capledger: a hard cap on LLM spend.

    Budget is held on every scope of a call (user, tenant, feature, key) before the call,
    in one atomic step with the cap check, and settled or released after it. Start with
    `capledger demo`.
    """
    source = ctx.get_parameter_source("url")
    state = CliState(url=url, url_on_command_line=source is ParameterSource.COMMANDLINE)
    ctx.obj = state
    ctx.call_on_close(state.close)
