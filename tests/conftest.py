"""Shared fixtures: service URLs, the rule that, under CI, a missing service fails, and the
Hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Hypothesis profiles. ``ci`` (loaded when CI=true) is Hypothesis's own ``ci`` profile
# (derandomized, no example database) with 500 examples: every state machine runs 500 per
# store. ``dev`` (loaded otherwise) runs fewer, to keep a local run short. ``mutation`` is
# ``ci`` at ``dev``'s size, for ``make mutation``, which runs the suites once per mutant. A
# test's own ``@settings`` still wins over a profile. A stateful step is a ledger call and a
# check of every balance, the open holds and the journal: 25 steps keep an example fast
# while letting holds expire, windows roll and batches build on earlier steps.
_STATE_MACHINE_STEPS = 25
settings.register_profile(
    "ci",
    parent=settings.get_profile("ci"),
    max_examples=500,
    stateful_step_count=_STATE_MACHINE_STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=60,
    stateful_step_count=_STATE_MACHINE_STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("mutation", parent=settings.get_profile("ci"), max_examples=60)
settings.load_profile("ci" if IN_CI else "dev")


def service_missing(name: str, reason: str) -> None:
    """Skip locally, fail in CI: CI must never pass by skipping a store's tests."""
    message = f"{name} is not reachable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)
