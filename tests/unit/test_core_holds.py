"""What a hold in a caller's hands does next (``capledger._core.holds``), decision by decision."""

from __future__ import annotations

import pytest

from capledger._core import Extend, HoldRecord, Release, Settle
from capledger._core.holds import closing_op, observe_extensions, running_amounts


def _hold(state: str = "open", amounts: dict[str, int] | None = None) -> HoldRecord:
    held = {"usd": 100} if amounts is None else amounts
    return HoldRecord("h_1", None, ("user:a",), held, state, 0, 60_000_000, {}, "")  # type: ignore[arg-type]


def test_running_amounts_only_grow() -> None:
    observed = {"usd": 50, "tokens": 10}
    assert running_amounts(observed, {"usd": 40, "tokens": 12, "requests": 1}) == {
        "usd": 50,
        "tokens": 12,
        "requests": 1,
    }
    assert observed == {"usd": 50, "tokens": 10}  # a new dictionary: the old one is kept


def test_no_extension_while_the_hold_covers_what_was_observed() -> None:
    assert observe_extensions(_hold(), {"usd": 100}) == []


def test_extensions_ask_for_headroom_then_for_the_exact_gap() -> None:
    # Gap 20; a quarter of the hold (25) is more than the gap, so the headroom is 25.
    assert observe_extensions(_hold(), {"usd": 120}) == [
        Extend("h_1", {"usd": 45}, None),
        Extend("h_1", {"usd": 20}, None),
    ]
    # Gap 60 is more than a quarter of the hold: the headroom doubles the gap.
    assert observe_extensions(_hold(), {"usd": 160})[0] == Extend("h_1", {"usd": 120}, None)


def test_a_unit_the_hold_does_not_have_is_extended_by_what_was_observed() -> None:
    assert observe_extensions(_hold(), {"tokens": 8}) == [
        Extend("h_1", {"tokens": 16}, None),
        Extend("h_1", {"tokens": 8}, None),
    ]


@pytest.mark.parametrize("state", ["settled", "released", "expired"])
def test_a_closed_hold_is_never_extended(state: str) -> None:
    assert observe_extensions(_hold(state), {"usd": 500}) == []


@pytest.mark.parametrize("failed", [False, True])
def test_a_settled_hold_needs_nothing_on_exit(failed: bool) -> None:
    assert closing_op(_hold("settled"), {"usd": 5}, failed=failed) is None


@pytest.mark.parametrize("state", ["open", "released", "expired"])
@pytest.mark.parametrize("failed", [False, True])
def test_what_was_observed_is_settled_on_exit_whatever_happened(state: str, failed: bool) -> None:
    assert closing_op(_hold(state), {"usd": 5}, failed=failed) == Settle("h_1", {"usd": 5}, {})


def test_a_failure_with_nothing_observed_releases_an_open_hold() -> None:
    assert closing_op(_hold(), {}, failed=True) == Release("h_1")


@pytest.mark.parametrize("failed", [False, True])
def test_a_released_hold_with_nothing_observed_needs_nothing(failed: bool) -> None:
    assert closing_op(_hold("released"), {}, failed=failed) is None


def test_an_expired_hold_after_a_failure_needs_nothing() -> None:
    assert closing_op(_hold("expired"), {}, failed=True) is None


@pytest.mark.parametrize("state", ["open", "expired"])
def test_a_normal_exit_with_nothing_observed_settles_in_full(state: str) -> None:
    assert closing_op(_hold(state), {}, failed=False) == Settle("h_1", {}, {})
