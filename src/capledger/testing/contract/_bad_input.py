"""The contract for bad input: every invalid argument raises a typed error, and nothing is
written."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest

from capledger import (
    Hold,
    InvalidAmount,
    InvalidInput,
    InvalidPeriod,
    InvalidScope,
    InvalidTag,
    InvalidTTL,
    InvalidUnit,
    Ledger,
)
from capledger.testing.contract._support import balance_of, count_rows

__all__ = ["BadInputContract"]


class BadInputContract:
    """Bad input: a typed error each, and nothing written."""

    @pytest.mark.parametrize(
        ("arguments", "error"),
        [
            ({"usd": float("nan")}, InvalidAmount),
            ({"usd": "NaN"}, InvalidAmount),
            ({"usd": Decimal("sNaN")}, InvalidAmount),
            ({"usd": math.inf}, InvalidAmount),
            ({"usd": "-Infinity"}, InvalidAmount),
            ({"usd": "-0.01"}, InvalidAmount),
            ({"usd": Decimal("-0.0000000001")}, InvalidAmount),
            ({"usd": "1000000.01"}, InvalidAmount),
            ({"usd": "abc"}, InvalidAmount),
            ({"usd": True}, InvalidAmount),
            ({"usd": [1]}, InvalidAmount),
            ({"tokens": 1.5}, InvalidAmount),
            ({"tokens": -1}, InvalidAmount),
            ({"requests": 10**10}, InvalidAmount),
            ({}, InvalidAmount),
            ({"usd": "1", "ttl": 0}, InvalidTTL),
            ({"usd": "1", "ttl": -5}, InvalidTTL),
            ({"usd": "1", "ttl": 86_401}, InvalidTTL),
            ({"usd": "1", "ttl": math.nan}, InvalidTTL),
            ({"usd": "1", "tags": {"k": "v" * 513}}, InvalidTag),
            ({"usd": "1", "tags": {f"k{i}": i for i in range(33)}}, InvalidTag),
            ({"usd": "1", "tags": {"k" * 65: 1}}, InvalidTag),
            ({"usd": "1", "tags": {"k": [1, 2]}}, InvalidTag),
            ({"usd": "1", "tags": {"k": math.inf}}, InvalidTag),
            ({"usd": "1", "request_id": ""}, InvalidInput),
            ({"usd": "1", "request_id": "x" * 201}, InvalidInput),
        ],
    )
    def test_bad_reserve_arguments(
        self, ledger: Ledger, arguments: dict[str, object], error: type[Exception]
    ) -> None:
        ledger.set_limit("user:a", usd="5")
        before = count_rows(ledger)
        with pytest.raises(error):
            ledger.reserve("user:a", **arguments)  # type: ignore[arg-type]
        assert count_rows(ledger) == before

    @pytest.mark.parametrize(
        "scopes",
        [[], "", "user", "user:", ":id", "User:a", "user:a b", "user:" + "x" * 201,
         "k" * 33 + ":a", ["user:a", 7], 42, [f"user:{i}" for i in range(17)]],
    )  # fmt: skip
    def test_bad_scopes(self, ledger: Ledger, scopes: object) -> None:
        before = count_rows(ledger)
        with pytest.raises(InvalidScope):
            ledger.reserve(scopes, usd="0.1")  # type: ignore[arg-type]
        with pytest.raises(InvalidScope):
            ledger.set_limit(scopes, usd="1")  # type: ignore[arg-type]
        assert count_rows(ledger) == before

    @pytest.mark.parametrize(
        ("call", "error"),
        [
            (lambda ledger, hold: ledger.settle(hold.id + "\x00junk", usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.settle(hold.id + "\ud800", usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.release(hold.id + "\x00"), InvalidInput),
            (lambda ledger, hold: ledger.release("h\x00"), InvalidInput),
            (lambda ledger, hold: ledger.release("h\udfff"), InvalidInput),
            (lambda ledger, hold: hold.settle(usd="0.1", tags={"k": "v\x00"}), InvalidTag),
            (lambda ledger, hold: hold.settle(usd="0.1", tags={"k\ud800": "v"}), InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", tags={"k": "\ud800"}),
             InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", tags={"k\x00": "v"}),
             InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a\ud800", usd="0.1"), InvalidScope),
            (lambda ledger, hold: ledger.reserve(["user:b", "user:a\x00"], usd="0.1"),
             InvalidScope),
            (lambda ledger, hold: ledger.set_limit("user:\ud800", usd="1"), InvalidScope),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", request_id="r\x00"),
             InvalidInput),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", request_id="r\ud800"),
             InvalidInput),
        ],
        ids=["settle-id-nul", "settle-id-surrogate", "release-id-nul", "release-nul",
             "release-surrogate", "settle-tag-nul", "settle-tag-key-surrogate",
             "reserve-tag-surrogate", "reserve-tag-key-nul", "scope-surrogate", "scope-nul",
             "limit-scope-surrogate", "request-id-nul", "request-id-surrogate"],
    )  # fmt: skip
    def test_text_no_store_can_keep_is_refused_before_any_write(
        self, ledger: Ledger, call: Callable[[Ledger, Hold], object], error: type[Exception]
    ) -> None:
        # PostgreSQL's text and jsonb refuse NUL, and libpq sends text parameters as C strings
        # (a hold id "id\x00junk" would reach the server as "id"); a lone surrogate has no
        # UTF-8 form. Every store refuses them the same way, before anything is written.
        self._refused_before_any_write(ledger, call, error)

    @pytest.mark.parametrize(
        ("call", "error"),
        [
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", tags={"n": 10**5000}),
             InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", tags={"n": 2**63}),
             InvalidTag),
            (lambda ledger, hold: hold.settle(usd="0.1", tags={"n": -(10**5000)}), InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", ttl=10**5000), InvalidTTL),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", request_id=10**5000),
             InvalidInput),
            (lambda ledger, hold: hold.extend(ttl=-(10**5000)), InvalidTTL),
            (lambda ledger, hold: ledger.release(object()), InvalidInput),
            (lambda ledger, hold: ledger.release([hold.id]), InvalidInput),
            (lambda ledger, hold: ledger.release(""), InvalidInput),
            (lambda ledger, hold: ledger.settle(12, usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.settle([hold.id], usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.settle(hold.id + "x" * 200, usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit="x"), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit=0), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit=1.5), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit=True), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit=-(10**5000)), InvalidInput),
            (lambda ledger, hold: ledger.holds(state=["open"]), InvalidInput),
            (lambda ledger, hold: ledger.holds(scope=12), InvalidScope),
            (lambda ledger, hold: ledger.report(since=datetime(2026, 1, 1)), InvalidInput),
            (lambda ledger, hold: ledger.report(until=datetime(2026, 1, 1)), InvalidInput),
            (lambda ledger, hold: ledger.report(since=1_767_225_600), InvalidInput),
            (lambda ledger, hold: ledger.report(group_by=5), InvalidInput),
            (lambda ledger, hold: ledger.set_limit("user:a", usd="1", period=["day"]),
             InvalidPeriod),
            (lambda ledger, hold: ledger.set_limit("user:a", usd="1", period="day", tz=["UTC"]),
             InvalidPeriod),
            (lambda ledger, hold: ledger.remove_limit("user:a", period={"day": 1}),
             InvalidPeriod),
            (lambda ledger, hold: ledger.balance(object()), InvalidScope),
        ],
        ids=["reserve-tag-10**5000", "reserve-tag-2**63", "settle-tag-huge", "reserve-ttl-huge",
             "reserve-request-id-10**5000",
             "extend-ttl-huge", "release-object", "release-list", "release-empty",
             "settle-int", "settle-list", "settle-long-id", "holds-limit-text",
             "holds-limit-0", "holds-limit-float", "holds-limit-bool", "holds-limit-huge",
             "holds-state-list", "holds-scope-int", "report-since-naive",
             "report-until-naive", "report-since-int", "report-group-by-int",
             "limit-period-list", "limit-tz-list", "remove-limit-period-dict",
             "balance-scope-object"],
    )  # fmt: skip
    def test_bad_arguments_of_any_type_raise_typed_errors(
        self, ledger: Ledger, call: Callable[[Ledger, Hold], object], error: type[Exception]
    ) -> None:
        # Never a raw TypeError, ValueError (str() of a 5,001-digit int), OverflowError or
        # BackendUnavailable (a driver refusing a parameter), and nothing written.
        self._refused_before_any_write(ledger, call, error)

    @staticmethod
    def _refused_before_any_write(
        ledger: Ledger, call: Callable[[Ledger, Hold], object], error: type[Exception]
    ) -> None:
        """``call`` on a ledger with one open $0.50 hold raises ``error`` and writes nothing."""
        ledger.set_limit("user:a", usd="5")
        hold = ledger.reserve("user:a", usd="0.5")
        before = count_rows(ledger)
        with pytest.raises(error):
            call(ledger, hold)
        assert count_rows(ledger) == before
        assert [h.state for h in ledger.holds()] == ["open"]
        assert balance_of(ledger, "user:a").held == Decimal("0.5")

    def test_a_holds_limit_past_any_count_lists_them_all(self, ledger: Ledger) -> None:
        held = [ledger.reserve("user:a", usd="0.1").id for _ in range(3)]
        assert [h.id for h in ledger.holds(limit=10**30)] == held
        assert [h.id for h in ledger.holds(limit=2**63, newest_first=True)] == held[::-1]

    def test_bad_limit_arguments(self, ledger: Ledger) -> None:
        before = count_rows(ledger)
        with pytest.raises(InvalidPeriod):
            ledger.set_limit("user:a", usd="1", period="fortnight")
        with pytest.raises(InvalidPeriod):
            ledger.set_limit("user:a", usd="1", period="0d")
        with pytest.raises(InvalidPeriod):
            ledger.set_limit("user:a", usd="1", period="day", tz="Mars/Olympus")
        with pytest.raises(InvalidAmount):
            ledger.set_limit("user:a", usd="-1")
        with pytest.raises(InvalidAmount):
            ledger.set_limit("user:a", usd="1e10")  # past the cap bound
        with pytest.raises(InvalidInput):
            ledger.set_limit("user:a")
        with pytest.raises(InvalidUnit):
            ledger.remove_limit("user:a", unit="gallons")
        with pytest.raises(InvalidUnit):
            ledger.balance("user:a", unit="gallons")
        assert count_rows(ledger) == before

    def test_bad_settle_and_extend_arguments(self, ledger: Ledger) -> None:
        hold = ledger.reserve("user:a", usd="0.5")
        before = count_rows(ledger)
        with pytest.raises(InvalidAmount):
            hold.settle(usd="-0.1")
        with pytest.raises(InvalidAmount):
            hold.settle(usd=math.nan)
        with pytest.raises(InvalidAmount):
            hold.extend(usd="inf")
        with pytest.raises(InvalidInput):
            hold.extend()
        with pytest.raises(InvalidTTL):
            hold.extend(ttl=0)
        with pytest.raises(InvalidTag):
            hold.settle(usd="0.1", tags={"x": object()})
        assert count_rows(ledger) == before
        assert hold.state == "open"
