"""The layers point one way, ``import capledger`` loads only the ledger, modules stay short.

values and errors → the pure core → stores → the ledger → integrations, CLI, testing.
Pricing and estimates stand beside the core: they know values and errors, not the ledger.
An import that points up (at run time, wherever it stands in the module; imports under
``if TYPE_CHECKING:`` only name types) is a failure, and so is a cycle between modules
imported at load time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

#: Each layer and the layers its modules may import from (itself included).
LAYERS: dict[str, tuple[str, ...]] = {
    "values": ("values",),
    "core": ("values", "core"),
    "stores": ("values", "core", "stores"),
    "ledger": ("values", "core", "stores", "ledger"),
    "pricing": ("values", "pricing"),
    "top": ("values", "core", "stores", "ledger", "pricing", "top"),
}
#: The layer of each module, by its dotted name's longest matching prefix.
PREFIXES: dict[str, str] = {
    "capledger.errors": "values",
    "capledger.money": "values",
    "capledger.scopes": "values",
    "capledger.clock": "values",
    "capledger.bounds": "values",
    "capledger._flow": "values",
    "capledger._text": "values",
    "capledger._core": "core",
    "capledger.stores": "stores",
    "capledger.ledger": "ledger",
    "capledger.attribution": "ledger",
    "capledger.pricing": "pricing",
    "capledger.estimate": "pricing",
    "capledger.integrations": "top",
    "capledger.cli": "top",
    "capledger.testing": "top",
    "capledger.server": "top",
    "capledger.__main__": "top",
    # The package's front door re-exports every layer, the top ones lazily (PEP 562).
    "capledger": "top",
}
#: What ``import capledger`` may load: the ledger's layers, and only the embedded stores.
LOADED_BY_IMPORT = ("values", "core", "stores", "ledger")
NOT_LOADED_BY_IMPORT = ("capledger.stores.postgres",)


def layer_of(module: str) -> str:
    for prefix in sorted(PREFIXES, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return PREFIXES[prefix]
    raise AssertionError(f"{module} is in no layer: add it to PREFIXES")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST, *, top_level_only: bool) -> Iterator[str]:
    """The capledger modules a tree imports at run time (not under ``TYPE_CHECKING``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from imports(
                ast.Module(body=node.orelse, type_ignores=[]), top_level_only=top_level_only
            )
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("capledger"):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("capledger"))
        if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield from imports(node, top_level_only=top_level_only)


MODULES = {module_name(path): path for path in sorted(SRC.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    allowed = LAYERS[layer_of(module)]
    upward = sorted(
        {
            target
            for target in imports(TREES[module], top_level_only=False)
            if layer_of(target) not in allowed
        }
    )
    assert not upward, f"{module} ({layer_of(module)}) imports a higher layer: {upward}"


def _resolve(target: str) -> str | None:
    """The module a ``from target import ...`` loads, as a key of MODULES."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def test_no_cycle_between_modules_at_load_time() -> None:
    graph = {
        module: {
            resolved
            for target in imports(tree, top_level_only=True)
            if (resolved := _resolve(target))
            and resolved != module
            # a package's own __init__ importing its children is how packages are built
            and not resolved.startswith(module + ".")
            and not module.startswith(resolved + ".")
        }
        for module, tree in TREES.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, f"import cycles: {cycles}"


def test_import_capledger_loads_only_the_ledger() -> None:
    code = "import sys, capledger; print(*(m for m in sys.modules if m.startswith('capledger')))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    beyond = [
        module
        for module in loaded
        if module != "capledger"
        and (layer_of(module) not in LOADED_BY_IMPORT or module.startswith(NOT_LOADED_BY_IMPORT))
    ]
    assert not beyond, f"import capledger loads more than the ledger: {beyond}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_keep_to_500_lines_or_say_why(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    docstring = ast.get_docstring(TREES[module]) or ""
    assert lines <= 500 or "longer than the 500 lines" in docstring, (
        f"{module} has {lines} lines: split it, or say in its docstring why it is "
        "longer than the 500 lines the package keeps to"
    )
