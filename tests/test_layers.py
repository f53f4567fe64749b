"""The package's layers: each module imports only modules below it (docs: the design's layers).

Read from the source with ``ast``, so a lazy import inside a function counts as much as one at
the top (only ``if TYPE_CHECKING:`` blocks are skipped: they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import symbp

# Bottom to top. `names` and `shapes` hold what several stages share (limits, the identifier
# check, numbers); the gate table and the IR import no stage above them. `draw` needs no
# Function (it is handed one), so it sits below it and `Function.draw` imports downwards.
LAYERS = ("errors", "names", "shapes", "statements", "runtime", "arrays", "gates", "graph",
          "naming", "derive", "parse", "emit", "reverse", "jit", "draw", "function",
          "__init__", "loop", "split", "threads", "_estimator", "_npz", "datasets", "network",
          "nn", "bench_train", "bench_startup", "bench", "cli")

PACKAGE = Path(symbp.__file__).parent


def _imports(path: Path) -> set[str]:
    """The symbp modules ``path`` imports anywhere except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()
    stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:
                if module:
                    found.add(module.split(".")[0])
                else:  # from . import x: a module, or __version__ (set before any import)
                    found.update(a.name for a in node.names if a.name != "__version__")
            elif module == "symbp" or module.startswith("symbp."):
                found.add(module.split(".")[1] if "." in module else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "symbp" or alias.name.startswith("symbp."):
                    parts = alias.name.split(".")
                    found.add(parts[1] if len(parts) > 1 else "__init__")
        stack.extend(ast.iter_child_nodes(node))
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == set(LAYERS), f"place these in LAYERS: {sorted(modules ^ set(LAYERS))}"


def test_each_module_imports_only_modules_below_it():
    wrong = []
    for module in LAYERS:
        level = LAYERS.index(module)
        for dep in sorted(_imports(PACKAGE / f"{module}.py")):
            if dep in LAYERS and LAYERS.index(dep) >= level:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "imports against the layers: " + "; ".join(wrong)


def test_the_ir_and_the_gate_table_import_no_stage_above_them():
    """The issue's cycle parse -> graph -> gates -> derive: graph and gates stand alone."""
    assert not _imports(PACKAGE / "graph.py") & {"parse", "derive", "naming", "function"}
    assert not _imports(PACKAGE / "gates.py") & {"parse", "derive", "graph", "function"}
    assert "function" not in _imports(PACKAGE / "draw.py")


def test_the_derive_stage_installs_its_rule_in_the_table():
    """gates.py cannot import derive.py, so derive installs the rule opaque gates use."""
    from symbp import derive, gates

    assert gates.local_rule is derive.gate_derivatives
