"""``capledger prices show|list|cost`` and ``capledger estimate``.

Every option also reads a ``CAPLEDGER_*`` environment variable (shown in ``--help``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from capledger.cli._app import BadInput
from capledger.cli._output import _is_numeric_column, render_table, table_cell

__all__ = ["estimate", "prices"]

_Command = TypeVar("_Command", bound=Callable[..., Any])

#: Significant digits a price is shown with. Some upstream prices went through a binary
#: float before becoming a Decimal (0.18000000000000002 for 0.18); no real price has more
#: than a dozen significant digits, so rounding to 12 shows the price as published. Costs
#: are still computed from the exact value.
PRICE_DIGITS: Final = 12


def published(value: object) -> object:
    """A price as published: ``Decimal`` rounded to ``PRICE_DIGITS`` significant digits."""
    if not isinstance(value, Decimal):
        return value
    with localcontext() as context:
        context.prec = PRICE_DIGITS
        return (+value).normalize()  # unary plus rounds to the context's precision


def _batch_option(command: _Command) -> _Command:
    return click.option(
        "--batch",
        is_flag=True,
        envvar="CAPLEDGER_BATCH",
        show_envvar=True,
        help="Price at the provider's batch (asynchronous) rates, where it has them.",
    )(command)


def _provider_option(command: _Command) -> _Command:
    return click.option(
        "--provider",
        envvar="CAPLEDGER_PROVIDER",
        show_envvar=True,
        default=None,
        help="genai-prices provider id (openai, anthropic, google...); inferred if omitted.",
    )(command)


def _prices_file_option(command: _Command) -> _Command:
    return click.option(
        "--prices-file",
        envvar="CAPLEDGER_PRICES_FILE",
        show_envvar=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="TOML file of price overrides and aliases.",
    )(command)


def _pricebook(prices_file: Path | None) -> Any:
    from capledger.pricing import Pricebook  # noqa: PLC0415 - keep `capledger --help` fast

    book = Pricebook()
    if prices_file is not None:
        book.load_toml(prices_file)
    return book


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The CLI's one table layout: numbers right-aligned, money exact."""
    right = [_is_numeric_column([row[i] for row in rows]) for i in range(len(headers))]
    cells = [[table_cell(value) for value in row] for row in rows]
    return render_table(headers, cells, right=right)


def _fail_cleanly(run: Callable[[], None]) -> None:
    # Errors reach the main group, which maps bad input to exit status 2, the rest to 1.
    run()


@click.group()
def prices() -> None:
    """Model prices (USD per million tokens) from genai-prices and your overrides."""


@prices.command("show")
@click.argument("model", envvar="CAPLEDGER_MODEL")
@_provider_option
@_prices_file_option
def show(*, model: str, provider: str | None, prices_file: Path | None) -> None:
    """Show the rates of MODEL, its tiers and where the price comes from."""

    def run() -> None:
        found = _pricebook(prices_file).price(model, provider)
        rows: list[tuple[str, object]] = [
            ("model", found.model),
            ("provider", found.provider),
            ("input", published(found.input_usd_per_mtok)),
            ("output", published(found.output_usd_per_mtok)),
            ("cache read", published(found.cache_read_usd_per_mtok)),
            ("cache write", published(found.cache_write_usd_per_mtok)),
            ("cache write 1h", published(found.cache_write_1h_usd_per_mtok)),
            ("context window", found.context_window_tokens),
        ]
        for tier in found.tiers:
            rows.append((f"input > {tier.above_input_tokens}", published(tier.input_usd_per_mtok)))
            rows.append(
                (f"output > {tier.above_input_tokens}", published(tier.output_usd_per_mtok))
            )
        rows.append(("source", found.source.description))
        rows.append(("as of", found.source.as_of))
        click.echo(_table(("field", "USD per MTok / value"), [(k, table_cell(v)) for k, v in rows]))

    _fail_cleanly(run)


@prices.command("list")
@_provider_option
@_prices_file_option
def list_command(*, provider: str | None, prices_file: Path | None) -> None:
    """List every priced model, optionally of one provider."""

    def run() -> None:
        listed = _pricebook(prices_file).list_prices(provider)
        rows = [
            (
                item.provider,
                item.model,
                published(item.input_usd_per_mtok),
                published(item.output_usd_per_mtok),
                published(item.cache_read_usd_per_mtok),
                published(item.cache_write_usd_per_mtok),
                "yes" if item.tiers else "",
            )
            for item in listed
        ]
        headers = ("provider", "model", "input", "output", "cache read", "cache write", "tiers")
        click.echo(_table(headers, rows))
        click.echo(f"{len(rows)} models; USD per million tokens")

    _fail_cleanly(run)


def _tokens_option(
    name: str, envvar: str, help_text: str, *, required: bool = False
) -> Callable[[_Command], _Command]:
    # A required option gets no default at all: from click 8.3 an explicit default=None is
    # a value, and the option would no longer be reported as missing.
    default: dict[str, Any] = {} if required else {"default": 0, "show_default": True}
    return click.option(
        name,
        envvar=envvar,
        show_envvar=True,
        type=click.IntRange(min=0),
        required=required,
        help=help_text,
        **default,
    )


@prices.command("cost")
@click.argument("model", envvar="CAPLEDGER_MODEL")
@_tokens_option(
    "--input", "CAPLEDGER_INPUT_TOKENS", "All input tokens, cached ones included.", required=True
)
@_tokens_option(
    "--output", "CAPLEDGER_OUTPUT_TOKENS", "All output tokens, reasoning included.", required=True
)
@_tokens_option("--cached", "CAPLEDGER_CACHED_TOKENS", "Input tokens read from the cache.")
@_tokens_option("--cache-write", "CAPLEDGER_CACHE_WRITE_TOKENS", "Input tokens written to it.")
@_tokens_option("--reasoning", "CAPLEDGER_REASONING_TOKENS", "Output tokens spent reasoning.")
@_batch_option
@_provider_option
@_prices_file_option
def cost_command(
    *,
    model: str,
    input: int,
    output: int,
    cached: int,
    cache_write: int,
    reasoning: int,
    batch: bool,
    provider: str | None,
    prices_file: Path | None,
) -> None:
    """Print what a call of MODEL with these token counts costs, in USD."""

    def run() -> None:
        from capledger.pricing import Usage  # noqa: PLC0415 - keep `capledger --help` fast

        usage = Usage(
            input_tokens=input,
            output_tokens=output,
            cache_read_tokens=cached,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
        )
        book = _pricebook(prices_file)
        total = book.cost(model, usage, provider, batch=batch)
        click.echo(table_cell(total))

    _fail_cleanly(run)


@click.command("estimate")
@click.option(
    "--model",
    envvar="CAPLEDGER_MODEL",
    show_envvar=True,
    required=True,
    help="The model the request is for (gpt-4o-mini, claude-sonnet-4-5, ...).",
)
@click.option(
    "--max-tokens",
    envvar="CAPLEDGER_MAX_TOKENS",
    show_envvar=True,
    type=click.IntRange(min=0),
    default=None,
    help="Output limit; overrides the request's max_tokens / max_output_tokens.",
)
@click.option(
    "--file-tokens",
    envvar="CAPLEDGER_FILE_TOKENS",
    show_envvar=True,
    type=click.IntRange(min=0),
    default=None,
    help="Upper bound per attached file (default: the model's context window).",
)
@_batch_option
@_provider_option
@_prices_file_option
def estimate(
    *,
    model: str,
    max_tokens: int | None,
    file_tokens: int | None,
    batch: bool,
    provider: str | None,
    prices_file: Path | None,
) -> None:
    """Print the worst-case cost of the request JSON read from standard input."""

    def run() -> None:
        from capledger.estimate import estimate as estimate_request  # noqa: PLC0415

        try:
            request = json.load(sys.stdin)
        except json.JSONDecodeError as error:
            raise BadInput(f"standard input is not JSON: {error}") from None
        found = estimate_request(
            model,
            request,
            provider,
            max_output_tokens=max_tokens,
            file_tokens=file_tokens,
            pricebook=_pricebook(prices_file),
            batch=batch,
        )
        rows = [
            ("model", f"{found.model} ({found.provider})"),
            ("input tokens (upper bound)", found.input_tokens_bound),
            ("counted by", found.encoding or "UTF-8 bytes (no exact tokenizer)"),
            ("output tokens (limit)", found.output_tokens_bound),
            ("choices", found.choices),
            ("input USD per token", table_cell(found.input_usd_per_token)),
            ("output USD per token", table_cell(found.output_usd_per_token)),
            ("worst case USD", table_cell(found.worst_case_usd)),
        ]
        click.echo(_table(("", "value"), [(k, table_cell(v)) for k, v in rows]))

    _fail_cleanly(run)
