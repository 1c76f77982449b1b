"""Shared helpers of the benchmark scripts: repeated runs, medians, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """One line naming the machine the figures come from."""
    cores = os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()}, {cores} cores, {memory_gib:.0f} GiB, "
        f"Python {sys.version.split()[0]}, {platform.system()} {platform.release()}"
    )


def checkout() -> str:
    """The commit the figures come from: ``commit abc1234``, with ``+ uncommitted changes``
    when the code (``src/``, ``benchmarks/``) differs from it.

    Read-only: ``--no-optional-locks`` keeps git from refreshing its index.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks")
    except (OSError, subprocess.SubprocessError):
        return "an unknown commit"
    return f"commit {commit} + uncommitted changes" if dirty else f"commit {commit}"


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Run ``measure`` ``runs`` times; return the median and every value."""
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


def export_source(commit: str, folder: Path) -> Path:
    """``src/`` of ``commit``, exported with ``git archive`` into ``folder``; returns the
    path to put on ``PYTHONPATH`` to import that commit's ``capledger``."""
    archive = folder / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def run_worker(script: str, source: Path, *args: str) -> list[float]:
    """Run ``script --worker ARGS`` in a fresh process importing capledger from ``source``;
    return the numbers it prints."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run(
        [sys.executable, script, "--worker", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(figure) for figure in done.stdout.split()]
