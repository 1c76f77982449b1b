"""A stepped or skewed wall clock never expires a live hold (issue 11, item 3).

Deadlines are measured on a clock that does not step (``Clock.deadline_now``: the boot-time
clock and the boot id); the wall clock only stamps the journal and places windows. A hold
stamped under another boot expires at once. ``verify`` reports a late settle whose expired
budget went to another hold as a G2 exposure.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from capledger import BudgetExceeded, Ledger, ManualClock
from capledger.clock import BOOT_ID, SystemClock, deadline_now
from capledger.stores._sql import load_migrations

MakeLedger = Callable[[ManualClock], Ledger]


@pytest.fixture(params=["memory", "sqlite"])
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeLedger]:
    opened: list[Ledger] = []

    def make(clock: ManualClock) -> Ledger:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/l.db"
        ledger = Ledger(url, clock=clock)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


def test_a_wall_clock_step_keeps_a_live_hold_open(make_ledger: MakeLedger) -> None:
    clock = ManualClock()
    ledger = make_ledger(clock)
    ledger.set_limit("user:a", usd="10")
    hold = ledger.reserve("user:a", usd="10", ttl=120)
    clock.step_wall(600)  # NTP steps the host's clock 10 minutes forward
    assert ledger.sweep() == 0
    with pytest.raises(BudgetExceeded):  # its budget is not granted again
        ledger.reserve("user:a", usd="10")
    assert [h.id for h in ledger.holds()] == [hold.id]
    hold.settle(usd="10")
    assert (hold.state, hold.flags) == ("settled", frozenset())
    assert ledger.verify().ok


def test_a_hold_still_expires_when_its_deadline_passes(make_ledger: MakeLedger) -> None:
    clock = ManualClock()
    ledger = make_ledger(clock)
    ledger.set_limit("user:a", usd="10")
    hold = ledger.reserve("user:a", usd="10", ttl=120)
    clock.advance(119.999)
    assert ledger.sweep() == 0
    clock.advance(0.001)
    assert ledger.sweep() == 1
    assert ledger.holds(state="expired")[0].id == hold.id
    ledger.reserve("user:a", usd="10")  # the budget is free again


def test_an_extension_is_measured_on_the_deadline_clock(make_ledger: MakeLedger) -> None:
    clock = ManualClock()
    ledger = make_ledger(clock)
    hold = ledger.reserve("user:a", usd="1", ttl=120)
    clock.step_wall(600)
    hold.extend(usd="1", ttl=60)  # 60 s from now is before the deadline: it stays at 120 s
    clock.advance(119)
    assert ledger.sweep() == 0
    clock.advance(1)
    assert ledger.sweep() == 1


def test_a_process_whose_wall_clock_runs_ahead_keeps_others_holds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    here = ManualClock()
    ahead = ManualClock(here.now_us() + 600_000_000)  # same host and boot, wall 10 min ahead
    with Ledger(url, clock=here) as first, Ledger(url, clock=ahead) as second:
        first.set_limit("user:a", usd="10")
        hold = first.reserve("user:a", usd="10", ttl=120)
        assert second.sweep() == 0
        with pytest.raises(BudgetExceeded):
            second.reserve("user:a", usd="10")
        hold.settle(usd="10")
        assert hold.flags == frozenset()
        assert first.verify().ok


def test_a_hold_of_another_boot_expires_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    before = ManualClock(boot_id="boot-1")
    with Ledger(url, clock=before) as ledger:
        ledger.set_limit("user:a", usd="10")
        hold = ledger.reserve("user:a", usd="10", ttl=3600)
    after = ManualClock(before.now_us() + 30_000_000, boot_id="boot-1")
    after.reboot("boot-2")  # the host restarted: its boot-time clock starts again
    with Ledger(url, clock=after) as ledger:
        ledger.reserve("user:a", usd="10")  # the old hold's process is gone: budget freed
        [expired] = ledger.holds(state="expired")
        assert expired.id == hold.id
        assert ledger.verify().ok


def test_a_hold_of_another_boot_is_expired_when_touched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    clock = ManualClock(boot_id="boot-1")
    with Ledger(url, clock=clock) as ledger:
        hold_id = ledger.reserve("user:a", usd="1", ttl=3600).id
    clock.reboot("boot-2")
    with Ledger(url, clock=clock) as ledger:
        held = ledger.settle(hold_id, usd="1")
        assert held.flags == {"late"}


def test_a_version_2_file_keeps_judging_its_holds_on_the_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE capledger_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_us INTEGER NOT NULL);"
    )
    for version, name, sql in load_migrations("capledger.stores.sqlite.migrations")[:2]:
        old.executescript(sql)
        old.execute("INSERT INTO capledger_migrations VALUES (?, ?, 0)", (version, name))
    clock = ManualClock()
    old.execute(
        "INSERT INTO capledger_holds VALUES ('h_old', NULL, '[\"user:a\"]', "
        "'{\"usd\": 1000000000}', 'open', ?, ?, '{}', '', NULL, NULL, '')",
        (clock.now_us(), clock.now_us() + 60_000_000),
    )
    old.execute(
        "INSERT INTO capledger_accounts VALUES ('user:a', 'usd', 'total', 1000000000, 0, "
        "1000000000, ?, NULL, 'UTC', ?, 0)",
        (clock.now_us(), clock.now_us()),
    )
    old.commit()
    old.close()
    with Ledger(f"sqlite:///{path}", clock=clock) as ledger:
        clock.advance(59)
        assert ledger.sweep() == 0
        clock.advance(1)
        assert ledger.sweep() == 1
        assert ledger.verify().ok
    columns = {
        row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(capledger_holds)")
    }
    assert {"deadline_us", "boot_id"} <= columns


# --- verify: a late settle after the budget went to another hold is a G2 exposure -----------


def test_verify_reports_a_late_settle_after_its_budget_was_granted_again(
    make_ledger: MakeLedger,
) -> None:
    clock = ManualClock()
    ledger = make_ledger(clock)
    ledger.set_limit("user:a", usd="10")
    slow = ledger.reserve("user:a", usd="10", ttl=120)
    clock.advance(121)  # the call outlived its TTL: its hold expired
    ledger.reserve("user:a", usd="10").settle(usd="10")  # the budget went to another call
    slow.settle(usd="10")  # spent within what it held, but $20 on a $10 cap
    assert slow.flags == {"late", "overrun"}
    report = ledger.verify()
    assert not report.ok
    assert not report.breaches and not report.mismatches
    [exposure] = report.exposures
    assert f"late settle of hold {slow.id} left user:a usd/total" in exposure
    assert "granted to another hold" in exposure


def test_verify_excuses_a_late_settle_when_no_hold_took_the_budget(
    make_ledger: MakeLedger,
) -> None:
    clock = ManualClock()
    ledger = make_ledger(clock)
    ledger.set_limit("user:a", usd="10")
    ledger.reserve("user:a", usd="4").settle(usd="4")
    slow = ledger.reserve("user:a", usd="5", ttl=120)
    clock.advance(121)
    slow.settle(usd="7")  # above its hold: an ordinary overrun, the caller's estimate
    assert slow.flags == {"late", "overrun"}
    report = ledger.verify()
    assert report.ok, report.exposures
    assert report.overruns == ["user:a usd/total"]


def test_verify_reports_no_exposure_when_the_late_settle_fits(make_ledger: MakeLedger) -> None:
    clock = ManualClock()
    ledger = make_ledger(clock)
    ledger.set_limit("user:a", usd="10")
    slow = ledger.reserve("user:a", usd="5", ttl=120)
    clock.advance(121)
    ledger.reserve("user:a", usd="5")  # a grant, but both fit under the cap
    slow.settle(usd="5")
    assert slow.flags == {"late"}
    report = ledger.verify()
    assert report.ok and not report.exposures


# --- the clocks -------------------------------------------------------------------------------


def test_a_manual_clock_moves_its_two_clocks_together_unless_told() -> None:
    clock = ManualClock(boot_id="b")
    wall, (_, tick) = clock.now_us(), clock.deadline_now()
    clock.advance(2)
    assert (clock.now_us() - wall, clock.deadline_now()) == (2_000_000, ("b", tick + 2_000_000))
    clock.step_wall(600)
    assert (clock.now_us() - wall, clock.deadline_now()) == (602_000_000, ("b", tick + 2_000_000))
    with pytest.raises(ValueError, match="forward"):
        clock.step_wall(-1)
    clock.reboot("c")
    assert clock.deadline_now() == ("c", 0)


def test_the_system_clock_measures_deadlines_on_the_boot_time_clock() -> None:
    clock = SystemClock()
    boot, first = deadline_now(clock)
    assert boot == BOOT_ID and boot
    assert abs(time.clock_gettime_ns(time.CLOCK_BOOTTIME) // 1000 - first) < 60_000_000
    assert deadline_now(clock)[1] >= first


def test_without_a_boot_id_the_system_clock_measures_deadlines_on_the_wall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Outside Linux no boot id tells two processes they count from one boot.
    monkeypatch.setattr("capledger.clock._STEADY_CLOCK", None)
    clock = SystemClock()
    boot, tick = deadline_now(clock)
    assert boot == ""
    assert abs(tick - time.time_ns() // 1000) < 60_000_000


def test_a_clock_without_a_deadline_clock_measures_on_the_wall() -> None:
    class WallOnly:
        def now_us(self) -> int:
            return 42

    assert deadline_now(WallOnly()) == ("", 42)


def test_a_wall_only_clock_still_works_on_every_store(make_ledger: MakeLedger) -> None:
    class WallOnly:
        def __init__(self) -> None:
            self.inner = ManualClock()

        def now_us(self) -> int:
            return self.inner.now_us()

    clock = WallOnly()
    ledger = make_ledger(clock)  # type: ignore[arg-type]
    ledger.reserve("user:a", usd="1", ttl=10)
    clock.inner.advance(10)
    assert ledger.sweep() == 1
    assert ledger.balance("user:a")[0].held == Decimal(0)


def test_the_cli_verify_prints_an_exposure_and_fails(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from capledger.cli import main

    url = f"sqlite:///{tmp_path}/l.db"
    clock = ManualClock()
    with Ledger(url, clock=clock) as ledger:
        ledger.set_limit("user:a", usd="10")
        slow = ledger.reserve("user:a", usd="10", ttl=120)
        clock.advance(121)
        ledger.reserve("user:a", usd="10").settle(usd="10")
        slow.settle(usd="10")
    result = CliRunner().invoke(main, ["verify"], env={"CAPLEDGER_URL": url})
    assert result.exit_code == 1
    assert "EXPOSURE " in result.output and f"hold {slow.id}" in result.output
    assert "FAILED: 1 problem" in result.stderr
