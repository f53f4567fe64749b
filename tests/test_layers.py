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
# Function (it is handed one), so it sits below it and `Function.draw` imports downwards. The
# estimators are the package `nn`, its modules in their own order (`nn` is its `__init__`,
# which loads the others lazily by name). The backprop checker is handed a Function (or, for
# `symbp.check`, symbp.compile by `handwritten`), so `checker` sits below `function`
# (`checkarrays`, its array part, too).
LAYERS = ("errors", "files", "names", "shapes", "statements", "runtime", "arrays", "gates", "graph",
          "naming", "derive", "parse", "emit", "reverse", "checker",
          "checkarrays", "higher", "jit", "draw",
          "export", "travel", "blocks", "function", "handwritten", "__init__", "datasets", "nn",
          "nn._estimator", "nn._npz", "nn.split", "nn.threads", "nn.loop", "nn.network",
          "nn.checks", "nn.compiled", "nn.solvers", "nn.persist", "nn.export", "nn.base",
          "nn.estimators", "bench_train", "bench_startup", "bench_dask", "bench",
          "cli")

PACKAGE = Path(symbp.__file__).parent


def _module(path: Path) -> str:
    """``path``'s name in LAYERS: ``jit``, ``nn`` (its ``__init__``), ``nn.solvers``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The symbp modules ``path`` imports anywhere except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()
    inside = path.parent.relative_to(PACKAGE).parts  # () for symbp/, ("nn",) for symbp/nn/
    stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(inside[:len(inside) - node.level + 1])
            elif node.module == "symbp" or (node.module or "").startswith("symbp."):
                base = []
                node.module = node.module[len("symbp") + 1:] or None
            else:
                base = None
            if base is not None:
                prefix = base + (node.module.split(".") if node.module else [])
                for alias in node.names:  # from . import x: a module, or a name in one
                    if alias.name != "__version__":  # set before any import
                            found.add(_known(prefix + [alias.name]) or _known(prefix)
                                  or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "symbp" or alias.name.startswith("symbp."):
                    found.add(_known(alias.name.split(".")[1:]) or "__init__")
        stack.extend(ast.iter_child_nodes(node))
    return found


def _known(parts: list[str]) -> str | None:
    """The LAYERS entry a dotted path names (``nn.loop``, ``jit``), or None for a name in a
    module or the package itself."""
    name = ".".join(parts)
    return name if name in LAYERS else None


def _path(module: str) -> Path:
    package = PACKAGE / module.replace(".", "/")
    return package / "__init__.py" if package.is_dir() else package.with_suffix(".py")


def test_every_module_has_a_layer():
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    assert modules == set(LAYERS), f"place these in LAYERS: {sorted(modules ^ set(LAYERS))}"


def test_each_module_imports_only_modules_below_it():
    wrong = []
    for module in LAYERS:
        level = LAYERS.index(module)
        for dep in sorted(_imports(_path(module))):
            if dep in LAYERS and LAYERS.index(dep) >= level:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "imports against the layers: " + "; ".join(wrong)


def test_the_ir_and_the_gate_table_import_no_stage_above_them():
    """The issue's cycle parse -> graph -> gates -> derive: graph and gates stand alone."""
    assert not _imports(_path("graph")) & {"parse", "derive", "naming", "function"}
    assert not _imports(_path("gates")) & {"parse", "derive", "graph", "function"}
    assert "function" not in _imports(_path("draw"))


def test_the_derive_stage_installs_its_rule_in_the_table():
    """gates.py cannot import derive.py, so derive installs the rule opaque gates use."""
    from symbp import derive, gates

    assert gates.local_rule is derive.gate_derivatives
