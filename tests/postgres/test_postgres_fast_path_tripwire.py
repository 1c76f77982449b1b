"""A tripwire: the core's reserve and settle cannot change without the fast path's review.

The fast path (``capledger_reserve_v1``, ``capledger_settle_v1`` in ``schema.sql`` and the
migrations) decides the common reserve and settle in plpgsql, as the core's ``_reserve``
and ``_settle`` would. The differential tests compare the two on the cases they draw; this
test catches a change to the core that they might not draw. Each side is pinned here: the
core's logic by a digest of the syntax tree of the functions the fast path re-implements
(docstrings, comments and formatting left out), the stored function by its name and the
last migration that defines it. A change to either fails until both are checked together
and the pair below is updated.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import textwrap

import pytest

from capledger._core import decide
from capledger.stores._sql import load_migrations

#: Per fast-path function: the core functions whose decisions it re-implements.
_CORE_FUNCTIONS = {
    "reserve": (
        decide.apply_one,
        decide.expire_overdue,
        decide._reserve,
        decide._accounts_for,
        decide._current,
        decide.roll_window,
        decide._check_and_hold,
    ),
    "settle": (
        decide.apply_one,
        decide.expire_overdue,
        decide._settle,
        decide._accounts_for,
        decide._current,
        decide.roll_window,
        decide._take_off,
        decide._close,
        decide._crossed_thresholds,
        decide._expire_if_overdue,
    ),
}

#: The (core digest, stored function version) pairs that were checked to agree. Update a
#: pair only after re-reading the plpgsql function against the core functions above.
_CHECKED = {
    "reserve": (
        "0bed98895cf3fc17702ed8f014e500deb3f2871bd7b2280014c008396d8f9cd1",
        "capledger_reserve_v1, last defined in migration 0004",
    ),
    "settle": (
        "c98f494fd10616d821a4187f4aa3ec0fa46cb9b38429e73a249cd67a6b8df4bc",
        "capledger_settle_v1, last defined in migration 0002",
    ),
}


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def core_digest(kind: str) -> str:
    """The sha256 of the syntax trees of the core functions behind ``kind``'s fast path."""
    digest = hashlib.sha256()
    for function in _CORE_FUNCTIONS[kind]:
        tree = _without_docstrings(ast.parse(textwrap.dedent(inspect.getsource(function))))
        digest.update(ast.dump(tree, annotate_fields=True, include_attributes=False).encode())
    return digest.hexdigest()


def stored_version(kind: str) -> str:
    """The fast-path function of ``kind`` (name with its version suffix) and the last
    migration that (re)defines it."""
    pattern = re.compile(rf"CREATE (?:OR REPLACE )?FUNCTION (capledger_{kind}_v\d+)\(")
    found = [
        (version, match.group(1))
        for version, _, sql in load_migrations("capledger.stores.postgres.migrations")
        for match in pattern.finditer(sql)
    ]
    assert found, f"no migration defines the {kind} fast-path function"
    version, name = max(found)
    return f"{name}, last defined in migration {version:04d}"


@pytest.mark.parametrize("kind", sorted(_CHECKED))
def test_the_core_and_the_fast_path_change_together(kind: str) -> None:
    checked_digest, checked_version = _CHECKED[kind]
    now = (core_digest(kind), stored_version(kind))
    assert now == (checked_digest, checked_version), (
        f"the core's {kind} changed ({now[0]}) or its stored function did ({now[1]}): "
        f"re-check the plpgsql fast path (capledger_{kind}_v* in "
        "src/capledger/stores/postgres/schema.sql and migrations/) against the core functions "
        f"listed in this test; if the core's decision changed, change the function in a new "
        f"migration and bump its version, then update this fingerprint in _CHECKED: {now!r}"
    )


def test_the_digest_sees_a_change_of_logic_but_not_of_comments() -> None:
    source = "def f(a):\n    '''Doc.'''\n    return a + 1  # why\n"
    reworded = "def f(a):\n    '''Other words.'''\n    # a comment\n    return a + 1\n"
    changed = "def f(a):\n    return a - 1\n"

    def digest(text: str) -> str:
        return ast.dump(_without_docstrings(ast.parse(text)))

    assert digest(source) == digest(reworded)
    assert digest(source) != digest(changed)
