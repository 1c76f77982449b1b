from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from capledger.cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_prices_show(runner: CliRunner) -> None:
    result = runner.invoke(main, ["prices", "show", "claude-sonnet-4-5", "--provider", "anthropic"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["field", "USD", "per", "MTok", "/", "value"]
    assert "input            $3.00" in lines
    assert "output > 200000  $22.50" in lines
    assert any(line.startswith("source           genai-prices ") for line in lines)


def test_prices_list_filters_by_provider(runner: CliRunner) -> None:
    result = runner.invoke(main, ["prices", "list"], env={"CAPLEDGER_PROVIDER": "x-ai"})
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()[2:-1]
    assert rows and all(row.startswith("x-ai") for row in rows)


def test_prices_cost(runner: CliRunner) -> None:
    # (800 x $2.50 + 200 x $1.25 + 500 x $10) / 1e6
    args = ["prices", "cost", "gpt-4o", "--input", "1000", "--output", "500", "--cached", "200"]
    result = runner.invoke(main, args)
    assert (result.exit_code, result.output) == (0, "$0.00725\n")


def test_prices_cost_reads_environment_variables(runner: CliRunner) -> None:
    env = {
        "CAPLEDGER_MODEL": "claude-sonnet-4-20250514",
        "CAPLEDGER_INPUT_TOKENS": "5100",
        "CAPLEDGER_OUTPUT_TOKENS": "500",
        "CAPLEDGER_CACHE_WRITE_TOKENS": "5000",
    }
    result = runner.invoke(main, ["prices", "cost"], env=env)
    # (100 x $3 + 5000 x $3.75 + 500 x $15) / 1e6
    assert (result.exit_code, result.output) == (0, "$0.02655\n")


def test_prices_cost_rejects_bad_counts(runner: CliRunner) -> None:
    negative = runner.invoke(main, ["prices", "cost", "gpt-4o", "--input", "-1", "--output", "1"])
    assert negative.exit_code == 2
    too_many_cached = runner.invoke(
        main, ["prices", "cost", "gpt-4o", "--input", "1", "--output", "1", "--cached", "2"]
    )
    assert too_many_cached.exit_code == 2  # bad input
    assert "exceed input_tokens" in too_many_cached.output


def test_unknown_model_is_a_clean_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["prices", "show", "acme-llm-9"])
    assert result.exit_code == 2  # bad input, as docs/cli.md says
    assert "no price is known for model 'acme-llm-9'" in result.output


def test_prices_file_overrides(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[prices."house"]\ninput = 1\noutput = 2\n', encoding="utf-8")
    args = ["prices", "cost", "house", "--input", "1000000", "--output", "1000000"]
    result = runner.invoke(main, args, env={"CAPLEDGER_PRICES_FILE": str(path)})
    assert (result.exit_code, result.output) == (0, "$3.00\n")


def test_estimate_reads_the_request_from_stdin(runner: CliRunner) -> None:
    request = json.dumps({"messages": [{"role": "user", "content": "hello"}]})
    result = runner.invoke(
        main,
        ["estimate", "--model", "gpt-4o", "--provider", "openai"],
        input=request,
        env={"CAPLEDGER_MAX_TOKENS": "100"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "input tokens (upper bound)  25" in lines
    assert "counted by                  o200k_base" in lines
    # No service tier pinned: held at gpt-4o's dearest tier, (25 x $4.25 + 100 x $17) / 1e6
    assert "worst case USD              $0.00180625" in lines


def test_estimate_without_a_limit_says_what_to_pass(runner: CliRunner) -> None:
    request = json.dumps({"messages": [{"role": "user", "content": "hello"}]})
    result = runner.invoke(main, ["estimate", "--model", "gpt-4o"], input=request)
    assert result.exit_code == 2  # bad input
    assert "pass max_completion_tokens (or max_tokens) in the request" in result.output


def test_estimate_rejects_non_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["estimate", "--model", "gpt-4o"], input="{not json")
    assert result.exit_code == 2  # bad input
    assert "not JSON" in result.output
