"""Windows in time zones compiled for the test, for the branches no IANA zone reaches.

Every IANA transition happens at a whole minute of the wall clock it leaves, so no real zone
cuts a minute or an hour in two, and none shows a date before its midnight's first reading.
These zones are written in zic's source format and compiled with the system's ``zic``:

* ``Test/Seconds``: UTC until 2030-01-01 12:00:40 UTC, then 30 seconds ahead of UTC. The
  minute and the hour around the change are cut there.
* ``Test/Midnight``: UTC until 2030-03-06 23:30 UTC, when the clock jumps from 23:30 to
  00:30 on Thursday 7 March (midnight skipped); at 01:00, 30 minutes later, it falls back
  to 23:45 on the 6th (15 minutes behind UTC), and shows 7 March 00:00 for the first time
  at 00:15 UTC. The half hour on the clock's first pass of the 7th belongs to the 6th.
* ``Test/Back``: two hours ahead of UTC until 00:30 on 2030-03-07, when the clock falls back
  to 22:30 on the 6th (UTC). The 7th starts at its first midnight (22:00 UTC on the 6th), so
  the hour and a half the clock then shows the 6th again belongs to the 7th.
* ``Test/Monday``: the same fall-back across Monday 2030-03-11's midnight.
* ``Test/Apia``: ten hours behind UTC until the end of 2011-12-29, then fourteen ahead, so
  the clock goes from the 29th to the 31st (as in Pacific/Apia that year).

The windows are called through ``_clock_window`` and ``_calendar_window`` with the built
``ZoneInfo``: ``window`` takes a zone name, which would look in the IANA database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from capledger._core.periods import _calendar_window, _clock_window
from capledger.clock import to_us

MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

SOURCE = """\
Zone Test/Seconds 0:00 - AAA 2030 Jan 1 12:00:40u
                  0:00:30 - BBB
Zone Test/Midnight 0:00 - AAA 2030 Mar 6 23:30u
                   1:00 - BBB 2030 Mar 7 0:00u
                   -0:15 - CCC
Zone Test/Back 2:00 - AAA 2030 Mar 6 22:30u
               0:00 - BBB
Zone Test/Monday 2:00 - AAA 2030 Mar 10 22:30u
                 0:00 - BBB
Zone Test/Apia -10:00 - AAA 2011 Dec 30 10:00u
               14:00 - BBB
"""


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> int:
    return to_us(datetime(year, month, day, hour, minute, second, us, tzinfo=UTC))


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], ZoneInfo]:
    zic = shutil.which("zic") or ("/usr/sbin/zic" if Path("/usr/sbin/zic").exists() else None)
    if zic is None:
        if IN_CI:
            pytest.fail("zic is needed to compile the test time zones")
        pytest.skip("zic is not installed")
    directory = tmp_path_factory.mktemp("zones")
    (directory / "test.zi").write_text(SOURCE)
    subprocess.run([zic, "-d", str(directory / "out"), str(directory / "test.zi")], check=True)

    def load(name: str) -> ZoneInfo:
        with (directory / "out" / name).open("rb") as file:
            return ZoneInfo.from_file(file, key=name)

    return load


def check_partition(
    find: Callable[[int], tuple[int, int]], now: int, expected: tuple[int, int]
) -> None:
    """The window is the expected one, contains now, and abuts both neighbours."""
    start, end = find(now)
    assert (start, end) == expected
    assert start <= now < end
    assert find(start) == (start, end)
    assert find(end - 1) == (start, end)
    assert find(end)[0] == end
    assert find(start - 1)[1] == start


# --- a minute and an hour cut by a change of 30 seconds --------------------------------------

CHANGE = utc(2030, 1, 1, 12, 0, 40)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Before the change the minute starts at 12:00:00 UTC and is cut at the change.
        (utc(2030, 1, 1, 12, 0, 0), (utc(2030, 1, 1, 12), CHANGE)),
        (utc(2030, 1, 1, 12, 0, 10), (utc(2030, 1, 1, 12), CHANGE)),
        (CHANGE - 1, (utc(2030, 1, 1, 12), CHANGE)),
        # After it the clock's minute starts at :30 UTC; the first one begins at the change.
        (CHANGE, (CHANGE, utc(2030, 1, 1, 12, 1, 30))),
        (utc(2030, 1, 1, 12, 0, 50), (CHANGE, utc(2030, 1, 1, 12, 1, 30))),
        (utc(2030, 1, 1, 12, 1, 29, 999_999), (CHANGE, utc(2030, 1, 1, 12, 1, 30))),
        (utc(2030, 1, 1, 12, 1, 30), (utc(2030, 1, 1, 12, 1, 30), utc(2030, 1, 1, 12, 2, 30))),
    ],
)
def test_a_minute_is_cut_where_the_offset_changes_by_seconds(
    zones: Callable[[str], ZoneInfo], now: int, expected: tuple[int, int]
) -> None:
    zone = zones("Test/Seconds")
    check_partition(lambda moment: _clock_window(zone, MINUTE_US, moment), now, expected)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2030, 1, 1, 12, 0, 30), (utc(2030, 1, 1, 12), CHANGE)),
        (CHANGE - 1, (utc(2030, 1, 1, 12), CHANGE)),
        (CHANGE, (CHANGE, utc(2030, 1, 1, 12, 59, 30))),
        (utc(2030, 1, 1, 12, 30), (CHANGE, utc(2030, 1, 1, 12, 59, 30))),
        (utc(2030, 1, 1, 13), (utc(2030, 1, 1, 12, 59, 30), utc(2030, 1, 1, 13, 59, 30))),
    ],
)
def test_an_hour_is_cut_where_the_offset_changes_by_seconds(
    zones: Callable[[str], ZoneInfo], now: int, expected: tuple[int, int]
) -> None:
    zone = zones("Test/Seconds")
    check_partition(lambda moment: _clock_window(zone, HOUR_US, moment), now, expected)


# --- a date shown before its midnight's first reading -----------------------------------------

MARCH_6 = utc(2030, 3, 6)  # its midnight, in UTC
MARCH_7 = utc(2030, 3, 7, 0, 15)  # its only midnight, at -0:15
MARCH_8 = utc(2030, 3, 8, 0, 15)


@pytest.mark.parametrize(
    ("period", "now", "expected"),
    [
        ("day", utc(2030, 3, 6, 23, 29), (MARCH_6, MARCH_7)),
        # The clock shows 7 March 00:30 to 01:00 (+1), before 7 March's midnight is read.
        ("day", utc(2030, 3, 6, 23, 30), (MARCH_6, MARCH_7)),
        ("day", utc(2030, 3, 6, 23, 40), (MARCH_6, MARCH_7)),
        ("day", utc(2030, 3, 6, 23, 59, 59, 999_999), (MARCH_6, MARCH_7)),
        # Back on 6 March (23:45 at -0:15), then 7 March from its midnight.
        ("day", utc(2030, 3, 7), (MARCH_6, MARCH_7)),
        ("day", MARCH_7, (MARCH_7, MARCH_8)),
        # The week (from Monday 4 March) and the month keep their ends around it.
        ("week", utc(2030, 3, 6, 23, 40), (utc(2030, 3, 4), utc(2030, 3, 11, 0, 15))),
        ("month", utc(2030, 3, 6, 23, 40), (utc(2030, 3, 1), utc(2030, 4, 1, 0, 15))),
    ],
)
def test_a_date_shown_before_its_midnight_belongs_to_the_day_before(
    zones: Callable[[str], ZoneInfo], period: str, now: int, expected: tuple[int, int]
) -> None:
    zone = zones("Test/Midnight")
    check_partition(lambda moment: _calendar_window(period, zone, moment), now, expected)


# --- a fall-back of two hours across midnight -------------------------------------------------

BACK_MARCH_6 = utc(2030, 3, 5, 22)  # 6 March 00:00 at +2
BACK_MARCH_7 = utc(2030, 3, 6, 22)  # 7 March 00:00 at +2, its first reading
BACK_MARCH_8 = utc(2030, 3, 8)  # 8 March 00:00 at +0


@pytest.mark.parametrize(
    ("period", "now", "expected"),
    [
        ("day", BACK_MARCH_7 - 1, (BACK_MARCH_6, BACK_MARCH_7)),
        ("day", BACK_MARCH_7, (BACK_MARCH_7, BACK_MARCH_8)),
        ("day", utc(2030, 3, 6, 22, 29), (BACK_MARCH_7, BACK_MARCH_8)),
        # After the fall-back the clock shows 6 March 22:30 to 24:00 again: still the 7th.
        ("day", utc(2030, 3, 6, 22, 30), (BACK_MARCH_7, BACK_MARCH_8)),
        ("day", utc(2030, 3, 6, 23, 59), (BACK_MARCH_7, BACK_MARCH_8)),
        ("day", utc(2030, 3, 7, 12), (BACK_MARCH_7, BACK_MARCH_8)),
        # The month and year do not change there: 6 and 7 March are in the same ones.
        ("month", utc(2030, 3, 6, 23), (utc(2030, 2, 28, 22), utc(2030, 4, 1))),
        ("week", utc(2030, 3, 6, 23), (utc(2030, 3, 3, 22), utc(2030, 3, 11))),
    ],
)
def test_a_date_begins_at_its_first_midnight_when_the_clock_falls_back_across_it(
    zones: Callable[[str], ZoneInfo], period: str, now: int, expected: tuple[int, int]
) -> None:
    zone = zones("Test/Back")
    check_partition(lambda moment: _calendar_window(period, zone, moment), now, expected)


def test_a_week_begins_on_a_monday_shown_twice(zones: Callable[[str], ZoneInfo]) -> None:
    """A fall-back across Monday's midnight: Sunday shown again belongs to the new week."""
    zone = zones("Test/Monday")
    week = (utc(2030, 3, 10, 22), utc(2030, 3, 18))  # Monday 11 March 00:00 at +2, then at 0
    for now in (utc(2030, 3, 10, 22), utc(2030, 3, 10, 22, 30), utc(2030, 3, 10, 23, 59)):
        check_partition(lambda moment: _calendar_window("week", zone, moment), now, week)
    before = (utc(2030, 3, 3, 22), week[0])
    check_partition(lambda moment: _calendar_window("week", zone, moment), week[0] - 1, before)


# --- a date skipped whole ---------------------------------------------------------------------

APIA_CHANGE = utc(2011, 12, 30, 10)  # 29 December 24:00 at -10 = 31 December 00:00 at +14


@pytest.mark.parametrize(
    ("period", "now", "expected"),
    [
        ("day", APIA_CHANGE - 1, (utc(2011, 12, 29, 10), APIA_CHANGE)),
        ("day", APIA_CHANGE, (APIA_CHANGE, utc(2011, 12, 31, 10))),
        ("week", APIA_CHANGE, (utc(2011, 12, 26, 10), utc(2012, 1, 1, 10))),
        ("week", APIA_CHANGE - 1, (utc(2011, 12, 26, 10), utc(2012, 1, 1, 10))),
        ("month", APIA_CHANGE, (utc(2011, 12, 1, 10), utc(2011, 12, 31, 10))),
        ("year", APIA_CHANGE, (utc(2011, 1, 1, 10), utc(2011, 12, 31, 10))),
    ],
)
def test_a_date_skipped_whole_has_no_window(
    zones: Callable[[str], ZoneInfo], period: str, now: int, expected: tuple[int, int]
) -> None:
    zone = zones("Test/Apia")
    check_partition(lambda moment: _calendar_window(period, zone, moment), now, expected)
