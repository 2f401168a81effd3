"""The layers of DESIGN.md hold in the code: each layer imports only from the layers above it in the list.

storage -> metadata -> channels -> jobs -> runtime -> serving -> workflow -> facade -> cli. ``sluice.errors``,
``sluice.config`` and ``sluice.io`` (standard-library readers for scripts) sit above them all. The workflow
package holds both the engine (the executor, its runners, the execution record, the cache, the graph and its
validation) and the pipeline entities at the SDK's import paths; the entities build requests for users and
may reach the facade, but the engine must not: it runs definitions from any source, so it depends on no
SDK-shaped class. Imports under ``if TYPE_CHECKING:`` are type hints, not dependencies, and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sluice"
LOWER = ["base", "storage", "metadata", "channels", "jobs", "runtime", "serving"]
ENGINE = ("graph", "validation", "expressions", "executor", "execution", "runners", "cache", "display",
          "remote_function")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if module in ("sluice.errors", "sluice.config") or parts[:2] == ["sluice", "io"]:
        return "base"
    if len(parts) > 1 and parts[1] in LOWER:
        return parts[1]
    if parts[:2] == ["sluice", "workflow"]:
        if len(parts) > 2 and parts[2] in ENGINE:
            return "engine"
        return "facade" if len(parts) > 2 and parts[2] in ("pipeline_context", "repack") else "workflow"
    return "cli" if module == "sluice.cli" else "facade"


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every sluice import, at any depth, except those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("sluice"):
            if node.module == "sluice":
                found += [(node.lineno, f"sluice.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("sluice")]
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    assert {layer(module_name(p)) for p in SOURCES} >= {*LOWER, "engine", "workflow", "facade", "cli"}


@pytest.mark.parametrize("path", [p for p in SOURCES if layer(module_name(p)) in LOWER],
                         ids=lambda p: module_name(p))
def test_the_lower_layers_import_only_from_above_them(path):
    mine = LOWER.index(layer(module_name(path)))
    wrong = [f"line {line}: {target} ({layer(target)})" for line, target in imports(path)
             if layer(target) not in LOWER or LOWER.index(layer(target)) > mine]
    assert not wrong, f"{module_name(path)} reaches below its layer: {wrong}"


@pytest.mark.parametrize("path", [p for p in SOURCES if layer(module_name(p)) == "engine"],
                         ids=lambda p: module_name(p))
def test_the_pipeline_engine_never_imports_the_sdk_facade(path):
    wrong = [f"line {line}: {target}" for line, target in imports(path) if layer(target) in ("facade", "cli")]
    assert not wrong, f"{module_name(path)} imports the facade: {wrong}"
