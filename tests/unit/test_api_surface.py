"""The public surface: pinned names, and sync/async twins that cannot drift apart."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import capledger
from capledger import AsyncHold, AsyncLedger, Hold, Ledger

# close/aclose and the context-manager dunders are the only names allowed to differ.
RENAMED = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__"}


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_") or name in RENAMED or name in RENAMED.values()
    }


def _assert_twins(sync_cls: type, async_cls: type) -> None:
    sync_methods = _public_methods(sync_cls)
    async_methods = _public_methods(async_cls)
    expected = {RENAMED.get(name, name) for name in sync_methods}
    assert expected == set(async_methods)
    for name, signature in sync_methods.items():
        twin = async_methods[RENAMED.get(name, name)]
        assert list(signature.parameters) == list(twin.parameters), name
        for parameter, twin_parameter in zip(
            signature.parameters.values(), twin.parameters.values(), strict=True
        ):
            assert parameter.kind == twin_parameter.kind, (name, parameter.name)
            assert parameter.default == twin_parameter.default, (name, parameter.name)
            assert parameter.annotation == twin_parameter.annotation, (name, parameter.name)


def test_ledger_and_async_ledger_have_the_same_methods_and_signatures() -> None:
    _assert_twins(Ledger, AsyncLedger)


def test_hold_and_async_hold_have_the_same_methods_and_signatures() -> None:
    _assert_twins(Hold, AsyncHold)


def test_async_methods_are_coroutines_except_reserve() -> None:
    for name, member in inspect.getmembers(AsyncLedger, callable):
        if name.startswith("_") or name in ("on", "off"):
            continue
        assert inspect.iscoroutinefunction(member) == (name != "reserve"), name


def test_pinned_ledger_and_hold_methods() -> None:
    """The methods exactly: the decorator is ``capledger.guard(ledger, ...)``, not a method
    (a ledger that imported the integrations would point a layer up)."""
    public = {name for name, _ in inspect.getmembers(Ledger, callable) if not name.startswith("_")}
    assert sorted(public) == [
        "balance",
        "close",
        "holds",
        "limits",
        "migrate",
        "off",
        "on",
        "release",
        "remove_limit",
        "report",
        "reserve",
        "set_limit",
        "settle",
        "sweep",
        "verify",
    ]
    hold = {name for name, _ in inspect.getmembers(Hold, callable) if not name.startswith("_")}
    assert sorted(hold) == ["extend", "observe", "release", "settle"]


def test_every_public_method_has_a_docstring() -> None:
    for cls in (Ledger, AsyncLedger, Hold, AsyncHold):
        for name, member in inspect.getmembers(cls, callable):
            if not name.startswith("_"):
                assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


def test_pinned_public_names() -> None:
    """The surface exactly: a name added or removed is a decision, made here too."""
    assert sorted(capledger.__all__) == [
        "AsyncHold",
        "AsyncLedger",
        "BackendUnavailable",
        "Balance",
        "Breach",
        "BudgetExceeded",
        "Clamp",
        "Clock",
        "ConfigurationError",
        "CounterLimitReached",
        "Downgrade",
        "Event",
        "Flag",
        "Hold",
        "HoldClosed",
        "HoldInfo",
        "HoldNotFound",
        "IdempotencyConflict",
        "IdempotentHoldClosed",
        "InvalidAmount",
        "InvalidInput",
        "InvalidPeriod",
        "InvalidScope",
        "InvalidTTL",
        "InvalidTag",
        "InvalidUnit",
        "Ledger",
        "LedgerError",
        "Limit",
        "ManualClock",
        "Mismatch",
        "ShortBudget",
        "SystemClock",
        "UnguardedRequest",
        "UnknownModel",
        "UnsettledHoldWarning",
        "VerifyReport",
        "__version__",
        "attribute",
        "attribution",
        "guard",
        "wrap",
    ]
    for name in capledger.__all__:
        assert hasattr(capledger, name), name


def test_errors_form_one_tree() -> None:
    from capledger import errors

    for name in errors.__all__:
        error = getattr(errors, name)
        if name == "LedgerInvariantError":
            assert not issubclass(error, errors.LedgerError)  # bugs are never swallowed
        else:
            assert issubclass(error, errors.LedgerError), name


def test_a_ledger_loads_only_the_store_its_url_names(tmp_path: Path) -> None:
    code = (
        "import sys, capledger\n"
        f"capledger.Ledger('sqlite:///{tmp_path}/l.db').balance('user:a')\n"
        "print(sorted(m for m in sys.modules if m.startswith('capledger.stores.')))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "capledger.stores.sqlite" in output
    assert "capledger.stores.postgres" not in output
    assert "capledger.stores.memory" not in output


def test_importing_capledger_loads_no_driver_or_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys, capledger; "
        "bad = [m for m in ('psycopg', 'redis', 'genai_prices', 'openai', 'anthropic', "
        "'litellm', 'bpe_openai') if m in sys.modules]; print(bad)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_import_capledger_loads_the_ledger_only() -> None:
    """The SDK glue, pricing and estimates load when first used, not with the ledger."""
    code = (
        "import sys, capledger\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('capledger.'))\n"
        "print('\\n'.join(loaded))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    lazy = ("capledger.integrations", "capledger.pricing", "capledger.estimate")
    for layer in (*lazy, "capledger.attribution", "capledger.stores.postgres"):
        assert not any(name.startswith(layer) for name in loaded), (layer, loaded)
    assert "capledger.ledger" in loaded
    assert capledger.attribute is capledger.attribution.attribute
    assert capledger.wrap.__module__ == "capledger.integrations._wrap"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        capledger.nothing  # noqa: B018
