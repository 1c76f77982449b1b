"""Shared helpers of the benchmark scripts: repeated runs, medians, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable


def machine() -> str:
    """One line naming the machine the figures come from."""
    cores = os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()}, {cores} cores, {memory_gib:.0f} GiB, "
        f"Python {sys.version.split()[0]}, {platform.system()} {platform.release()}"
    )


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Run ``measure`` ``runs`` times; return the median and every value."""
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values
