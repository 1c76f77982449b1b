"""The warning policy: capledger's own warnings fail the suite, a third party's are reported.

pyproject.toml's ``filterwarnings`` decides by the module a warning is attributed to. These
tests check the decision itself, and that no module of ``src/`` or ``tests/`` falls outside
the error rule (a helper module with a new name would otherwise have its warnings ignored).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def warn_as(module_name: str) -> None:
    """Raise a UserWarning attributed to ``module_name``, as code in that module would."""
    code = compile("warnings.warn('from ' + __name__, UserWarning)", module_name, "exec")
    exec(code, {"__name__": module_name, "warnings": warnings})


def action_for(module_name: str, lines: list[str]) -> str:
    """The action the configured filters give a plain warning from ``module_name``."""
    action = "default"
    for line in lines:  # later lines take precedence, as pytest applies them
        fields = [*line.split(":"), "", "", ""][:4]
        chosen, message, category, module = fields
        if message or category:
            continue
        if not module or re.match(module, module_name):
            action = chosen
    return action


def test_a_third_party_warning_is_reported_not_raised() -> None:
    # catch_warnings keeps the configured filters: the warning is recorded (pytest would
    # list it in its summary) instead of raised.
    with warnings.catch_warnings(record=True) as caught:
        warn_as("some_vendor_sdk._internal")
    assert [str(warning.message) for warning in caught] == ["from some_vendor_sdk._internal"]


@pytest.mark.parametrize("module_name", ["capledger", "capledger.ledger", "test_something"])
def test_our_own_warnings_are_errors(module_name: str) -> None:
    with pytest.raises(UserWarning, match=f"from {module_name}"):
        warn_as(module_name)


def test_every_module_of_ours_is_under_the_error_rule(pytestconfig: pytest.Config) -> None:
    lines = [str(line) for line in pytestconfig.getini("filterwarnings")]
    ours = [
        ".".join(path.relative_to(ROOT / "src").with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "src").rglob("*.py")
    ]
    # The test folders are not packages: pytest imports their modules by file name.
    ours += [path.stem for path in (ROOT / "tests").rglob("*.py") if path.stem != "run_envs"]
    assert len(ours) > 50
    lax = sorted(name for name in set(ours) if action_for(name, lines) != "error")
    assert lax == []
    assert action_for("litellm.types", lines) == "default"
