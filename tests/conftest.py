"""Shared fixtures: service URLs and the rule that, under CI, a missing service fails."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(name: str, reason: str) -> None:
    """Skip locally, fail in CI: CI must never pass by skipping a store's tests."""
    message = f"{name} is not reachable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)
