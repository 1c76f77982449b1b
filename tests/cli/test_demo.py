"""``capledger demo``: the simulation, the command, and one real run of the installed CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from capledger import ConfigurationError, Ledger
from capledger.cli import main
from capledger.cli._demo import MAX_DEMO_AGENTS
from capledger.cli._demo_simulation import (
    FEATURES,
    TENANTS,
    USERS,
    demo_caps,
    plan_agents,
    run_demo,
)


def test_plans_are_deterministic_and_never_settle_above_the_hold() -> None:
    first = plan_agents(500, seed=3)
    assert first == plan_agents(500, seed=3)
    assert first != plan_agents(500, seed=4)
    for plan in first:
        assert Decimal(0) < plan.actual_usd <= plan.worst_usd
        assert plan.scopes[0] in USERS and plan.scopes[1] in TENANTS and plan.scopes[2] in FEATURES
        assert plan.worst_usd == plan.worst_usd.quantize(Decimal("0.000001"))


def test_caps_scale_with_agents_and_stay_positive() -> None:
    assert demo_caps(1000)["tenant:acme"] == Decimal("1.20")
    assert demo_caps(2000)["tenant:acme"] == Decimal("2.40")
    assert min(demo_caps(1).values()) == Decimal("0.01")


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_every_kind_of_cap_refuses_and_every_cap_holds(store: str, tmp_path: Path) -> None:
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'demo.db'}"
    result = await run_demo(url, agents=1000, seed=1)
    assert result.caps_held
    assert result.verify.ok and not result.errors
    denied_kinds = {scope.partition(":")[0] for scope, count in result.denied.items() if count}
    assert denied_kinds == {"user", "tenant", "feature"}
    assert result.calls_allowed + result.calls_denied == 1000
    for scope, cap in result.caps.items():
        balance = result.balances[scope]
        assert balance.cap == cap
        assert balance.held == 0
        assert balance.spent == result.agents_usd.get(scope, Decimal(0)) <= cap


async def test_run_demo_refuses_a_ledger_that_is_not_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'real.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit("user:someone", usd="1")
    with pytest.raises(ConfigurationError, match="needs an empty ledger"):
        await run_demo(url, agents=10, seed=1)


def test_demo_command_on_memory() -> None:
    result = CliRunner().invoke(
        main, ["--url", "memory://", "demo", "--agents", "300", "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "capledger demo: 300 concurrent agents" in out
    for title in ("users (cap per day", "tenants (cap per day", "features (cap per day"):
        assert title in out
    assert "calls allowed" in out and "calls denied" in out
    assert "  ok    every account's spent and held match the journal" in out
    assert out.rstrip().endswith("checked from the journal.")
    assert "Every cap held" in out
    assert result.stderr == ""  # a progress bar only on a terminal: nothing when piped


def test_demo_ignores_capledger_url_and_cleans_up(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    result = CliRunner().invoke(
        main, ["demo", "--agents", "50"], env={"CAPLEDGER_URL": f"sqlite:///{real}"}
    )
    assert result.exit_code == 0, result.output
    assert "sqlite:///capledger-demo.db" in result.stdout
    assert not real.exists()
    assert list(tmp_path.iterdir()) == []  # the demo file is removed without --keep


def test_demo_keep_leaves_a_ledger_to_explore(tmp_path: Path) -> None:
    first = CliRunner().invoke(main, ["demo", "--agents", "100", "--keep"])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "capledger-demo.db").exists()
    assert "capledger --url sqlite:///capledger-demo.db report" in first.stdout
    report = CliRunner().invoke(
        main, ["--url", "sqlite:///capledger-demo.db", "report", "--group-by", "kind"]
    )
    assert report.exit_code == 0
    assert [line.split()[0] for line in report.stdout.splitlines()[2:]] == [
        "feature",
        "tenant",
        "user",
    ]
    # Run again: the demo's own file is recreated, not added to.
    again = CliRunner().invoke(main, ["demo", "--agents", "100", "--keep"])
    assert again.exit_code == 0, again.output


def test_demo_refuses_to_overwrite_a_file_named_by_url(tmp_path: Path) -> None:
    precious = tmp_path / "precious.db"
    precious.write_bytes(b"do not touch")
    result = CliRunner().invoke(main, ["demo", "--url", f"sqlite:///{precious}"])
    assert result.exit_code == 2
    assert "exists; the demo needs a fresh store" in result.stderr
    assert precious.read_bytes() == b"do not touch"


def test_demo_in_a_real_process_on_a_fresh_folder(tmp_path: Path) -> None:
    """The README's first command, as a user runs it: the module entry point, real SQLite."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "capledger.cli", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed_s = time.perf_counter() - started
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1,000 concurrent agents" in completed.stdout
    assert "Every cap held" in completed.stdout
    assert "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []
    assert elapsed_s < 10  # about 0.5 s on a laptop; generous for a loaded CI machine


def test_ctrl_c_stops_the_demo_with_one_line_and_status_130(tmp_path: Path) -> None:
    """A real process and a real SIGINT, sent once the demo has printed its first line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "capledger.cli", "demo", "--agents", str(MAX_DEMO_AGENTS)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the demo is running (or about to)
        assert first.startswith("capledger demo: 20,000 concurrent agents")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait(timeout=10)
    if process.returncode == 0:  # the whole run beat the signal on a fast machine
        pytest.skip("the demo finished before SIGINT arrived")
    assert process.returncode == 130, stderr
    assert stderr == "capledger demo: interrupted\n"
    assert list(tmp_path.iterdir()) == []  # the demo's file is removed as after any run


def test_a_non_empty_store_is_refused_before_anything_is_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SQLite file named by --url is already refused for existing; a store that is not a
    # file (PostgreSQL) is checked for limits and holds instead: pretend this one is such.
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit("user:someone", usd="1")
    monkeypatch.setattr("capledger.cli._demo.sqlite_path", lambda url: None)
    result = CliRunner().invoke(main, ["demo", "--url", url, "--agents", "10"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: the demo needs an empty ledger, and {url}")
    with Ledger(url) as ledger:
        assert [limit.scope for limit in ledger.limits()] == ["user:someone"]


def test_the_demo_url_reads_capledger_demo_url(tmp_path: Path) -> None:
    target = tmp_path / "from-env.db"
    result = CliRunner().invoke(
        main,
        ["demo", "--agents", "20", "--keep"],
        env={"CAPLEDGER_DEMO_URL": f"sqlite:///{target}"},
    )
    assert result.exit_code == 0, result.output
    assert f"on sqlite:///{target}" in result.stdout
    assert target.exists()
