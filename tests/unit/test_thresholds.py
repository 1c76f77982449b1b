"""Alert thresholds: fractions of a cap in steps of one basis point, refused otherwise."""

from __future__ import annotations

from decimal import Decimal

import pytest

from capledger import AsyncLedger, ConfigurationError, Ledger


@pytest.mark.parametrize(
    "threshold",
    [0, -0.1, 1.5, "1.0001", "x", "NaN", "Infinity", 10**100, "0.00005", "0.33333", 1 / 3],
    ids=repr,
)
def test_a_threshold_outside_0_to_1_or_finer_than_a_basis_point_is_refused(
    threshold: object,
) -> None:
    # A threshold below 0.0001 used to be truncated to 0 basis points: never announced.
    with pytest.raises(ConfigurationError, match="threshold"):
        Ledger("memory://", thresholds=(threshold,))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="threshold"):
        AsyncLedger("memory://", thresholds=(threshold,))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("threshold", "bps"),
    [("0.0001", 1), (0.8, 8000), (Decimal("0.95"), 9500), (1, 10_000), ("0.33330", 3333)],
)
def test_a_threshold_in_basis_points_is_kept_exactly(threshold: object, bps: int) -> None:
    with Ledger("memory://", thresholds=(threshold,)) as ledger:  # type: ignore[arg-type]
        assert ledger._config.threshold_bps == (bps,)
