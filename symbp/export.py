"""``Function.export``: one standalone module (NumPy and Numba only) of a compiled function.

The module holds the generated functions, each under ``@numba.njit(cache=True)``, and the
runtime helpers they call, copied by name from :mod:`symbp.runtime`'s own source (with the
helpers, constants and Numba overloads those use in turn, and nothing else). Its docstring
says what it computes: the expression, the inputs and their shapes, the gradients, the symbp
version. It is written atomically (a temporary file in the target folder, then
``os.replace``).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from . import __version__, files, runtime
from .errors import ExportError
from .names import KERNEL_NAME
from .shapes import show

_JIT = '@numba.njit(cache=True, error_model="numpy"{})'


def module_text(fn, expression: str, summary: str | None = None, notes: tuple = (),
                imports: tuple = (), gates: tuple = ()) -> str:
    """The standalone module of the compiled Function ``fn`` (``expression``: its text): a
    docstring opening with ``summary`` (if given) and the lines ``notes``, the lines
    ``gates`` after the expression; the statements ``imports`` join its imports."""
    tree = ast.parse(fn.source)
    lines = fn.source.splitlines()
    extra_imports = imports
    helpers, imports, body = [], [], []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == f"{__package__}.runtime":
            helpers += [a.name for a in node.names]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if not (isinstance(node, ast.ImportFrom) and node.module == "numba.extending"):
                imports.append(ast.unparse(node))
        elif isinstance(node, ast.FunctionDef):
            parallel = ", parallel=True" if node.name.endswith("_parallel") else ""
            body += ["", "", _JIT.format(parallel),
                     *lines[node.lineno - 1:node.end_lineno]]
        else:  # a module-level constant or the like: as written
            body += ["", *lines[node.lineno - 1:node.end_lineno]]
    runtime_imports, runtime_code = _runtime(helpers)
    head = _ordered({"import numba", *imports, *runtime_imports, *extra_imports})
    parts = [_docstring(fn, expression, summary, notes, gates), "",
             f"# Written by symbp {__version__} (Function.export); needs NumPy and Numba only.",
             *head, "",
             f"INPUTS = {fn.inputs!r}", f"WRT = {fn.wrt!r}",
             f"SHAPES = {_shapes_literal(fn)}"]
    if runtime_code:
        parts += ["", "", "# -- symbp's runtime helpers used below (copied from symbp.runtime) --",
                  *runtime_code]
    parts += ["", "", "# -- the generated functions --", *body[1:]]
    text = "\n".join(parts) + "\n"
    _check_standalone(text)
    return text


def _ordered(imports: set[str]) -> list[str]:
    """Imports sorted: ``import x`` lines first, then ``from x import y``."""
    return sorted(imports, key=lambda s: (s.startswith("from "), s))


def _shapes_literal(fn) -> str:
    items = []
    for name, shape, integer in fn.signature:
        items.append(f"{name!r}: {('ints', tuple(shape)) if integer else tuple(shape)!r}")
    return "{" + ", ".join(items) + "}"


def _describe(fn) -> list[str]:
    rows = []
    for name, shape, integer in fn.signature:
        if not shape:
            rows.append(f"    {name}: a float")
        elif integer:
            rows.append(f"    {name}: int64 labels, shape {show(shape)}")
        else:
            rows.append(f"    {name}: a float array (float32 or float64), shape {show(shape)}")
    return rows


def _docstring(fn, expression: str, summary: str | None, notes: tuple, gates: tuple) -> str:
    scalar = all(not shape for _, shape, _ in fn.signature)
    args = ", ".join(fn.inputs)
    grads = ", ".join(f"d{n}" for n in fn.wrt)
    first = summary or "Value and gradient of one expression"
    text = [f"{first}, written by symbp {__version__}.", "", *notes, *([""] if notes else []),
            "Expression:", *(f"    {line}" for line in expression.strip().splitlines()), "",
            *gates, *([""] if gates else []),
            "Inputs (positional, in this order):", *_describe(fn), "",
            f"Gradients with respect to: {', '.join(fn.wrt) or 'nothing'}.", "",
            "Functions (compiled by Numba at their first call, cached next to this file):",
            f"    {KERNEL_NAME}({args}) -> (value{', ' if grads else ''}{grads})"]
    if scalar:
        outputs = ", ".join([*fn.inputs, "value", *(f"d{n}" for n in fn.wrt)])
        text += [f"    {KERNEL_NAME}_points({outputs}):",
                 "        the same at every point of 1-D float64 arrays, written into the given",
                 f"        output arrays ({KERNEL_NAME}_points_parallel: over threads)"]
    else:
        text += [f"    {KERNEL_NAME}_into(...): the same, writing into buffers made by",
                 f"        {KERNEL_NAME}_buffers({args}) (for training loops)",
                 "    Array inputs must be C-contiguous and share one float dtype; labels int64."]
    text += ["", "Import this module by name; loading it from a path, put it in sys.modules first",
             "(importlib's recipe): Numba's cache finds the module there in the next process.",
             "", "Inputs are not checked here (symbp's Function checks them). Needs NumPy and",
             "Numba only; with SciPy installed, large matrix products use its BLAS, as Numba's",
             "own np.dot does."]
    return _literal("\n".join(text))


def _literal(text: str) -> str:
    """``text`` as a triple-quoted string literal that reads back as exactly ``text``."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n" or (ch.isprintable() and ch != "\x7f"):
            out.append(ch)
        else:
            out.append(f"\\U{ord(ch):08x}")
    literal = '"""' + "".join(out) + '"""'
    if ast.literal_eval(literal) != text:  # pragma: no cover - the escapes above are complete
        raise ExportError("the docstring could not be written safely")
    return literal


def _check_standalone(text: str) -> None:
    """The written module must parse and import nothing from symbp."""
    for node in ast.walk(ast.parse(text)):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n == "symbp" or n.startswith("symbp.") for n in names):
            raise ExportError("the exported module would import symbp")  # pragma: no cover


# -- the runtime helpers, copied by name ------------------------------------------------------


def _runtime(wanted: list[str]) -> tuple[list[str], list[str]]:
    """(imports, code) of the runtime definitions ``wanted`` needs: the named helpers, and
    every top-level function, constant and ``@overload`` of :mod:`symbp.runtime` they use."""
    if not wanted:
        return [], []
    source = Path(runtime.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    defs: dict[str, ast.stmt] = {}
    overloads: dict[str, list[ast.stmt]] = {}
    bound: dict[str, ast.stmt] = {}  # imported name -> its import statement
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            defs[node.name] = node
            for dec in node.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name)
                        and dec.func.id == "overload" and isinstance(dec.args[0], ast.Name)):
                    overloads.setdefault(dec.args[0].id, []).append(node)
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            for t in node.targets:
                if t.id != "__all__":
                    defs[t.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", "") \
                != "__future__":
            for alias in node.names:
                bound[(alias.asname or alias.name).split(".")[0]] = alias
    missing = [n for n in wanted if n not in defs]
    if missing:
        raise ExportError(f"symbp.runtime defines no {', '.join(missing)}")
    keep: set[int] = set()
    used_imports: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        for node in [defs[name], *overloads.get(name, [])]:
            if id(node) in keep:
                continue
            keep.add(id(node))
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name):
                    if sub.id in defs:
                        todo.append(sub.id)
                    elif sub.id in bound:
                        used_imports.add(sub.id)
    imports = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            imports += [f"import {a.name}" + (f" as {a.asname}" if a.asname else "")
                        for a in node.names if (a.asname or a.name).split(".")[0] in used_imports]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names = [a for a in node.names if (a.asname or a.name) in used_imports]
            if names:
                imports.append(f"from {node.module} import " + ", ".join(
                    a.name + (f" as {a.asname}" if a.asname else "") for a in names))
    code: list[str] = []
    previous_function = True
    for node in tree.body:
        if id(node) not in keep:
            continue
        function = isinstance(node, ast.FunctionDef)
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        chunk = lines[start - 1:node.end_lineno]
        if function:
            chunk = _cached(node, chunk, start)
        code += (["", ""] if function or previous_function else []) + chunk
        previous_function = function
    return imports, code


def _cached(node: ast.FunctionDef, chunk: list[str], start: int) -> list[str]:
    """``chunk`` (the lines of ``node`` from ``start``) with its ``@numba.njit(...)`` given
    ``cache=True``: symbp gives the runtime's compiled functions its own on-disk cache, a
    standalone module uses Numba's."""
    chunk = list(chunk)
    for dec in node.decorator_list:
        if (isinstance(dec, ast.Call) and ast.unparse(dec.func) == "numba.njit"
                and not any(k.arg == "cache" for k in dec.keywords)):
            cached = ast.Call(dec.func, dec.args,
                              [*dec.keywords, ast.keyword("cache", ast.Constant(True))])
            chunk[dec.lineno - start] = f"@{ast.unparse(cached)}"
    return chunk


# -- writing ----------------------------------------------------------------------------------


def write(path, text: str, what: str = "export") -> Path:
    """Write ``text`` to the ``.py`` file ``path`` atomically; its absolute path.

    Refuses a path that is not a string or path-like, that is a folder, that does not end in
    ``.py``, or whose folder does not exist (:class:`ExportError`, naming the path). A
    symbolic link is followed: the file it points to is replaced, the link kept."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise ExportError(f"{what}: the path must be a string or a path-like object, got "
                          f"{type(path).__name__}")
    if not os.fspath(path):
        raise ExportError(f"{what}: the path is empty")
    if "\0" in os.fsdecode(path):
        raise ExportError(f"{what}: the path {os.fsdecode(path)!r} contains a NUL character")
    target = Path(os.path.abspath(os.fspath(path)))
    try:
        return _write(target, text, what)
    except OSError as exc:  # a name too long, a loop of links...
        raise ExportError(f"{what}: cannot write {target} ({exc.strerror or exc})") from None


def _write(target: Path, text: str, what: str) -> Path:
    if target.is_symlink():  # write the file it points to, as open() would, not over the link
        target = Path(os.path.realpath(target))
    if target.is_dir():
        raise ExportError(f"{what}: {target} is a folder; give the path of a .py file to write")
    if target.suffix != ".py":
        raise ExportError(f"{what}: {target} does not end in .py (the module is Python source "
                          "to import)")
    if target.stem in _imported(text):
        raise ExportError(f"{what}: {target.name} would shadow the module {target.stem} it "
                          f"imports (a program in {target.parent} importing {target.stem} "
                          "would get this file); choose another name")
    folder = target.parent
    if not folder.is_dir():
        raise ExportError(f"{what}: the folder {folder} does not exist"
                          if not folder.exists() else f"{what}: {folder} is not a folder")
    files.replace(target, lambda handle: handle.write(text), binary=False)
    return target


def _imported(text: str) -> set[str]:
    """The top-level modules the module ``text`` imports (``numpy``, ``numba``, ``math``)."""
    found = set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def export(fn, path, expression: str) -> Path:
    """Write the standalone module of ``fn`` to ``path`` (see :meth:`Function.export`)."""
    notes = () if getattr(fn, "order", 1) == 1 else (
        "compile(..., order=2): only the value and gradient are here, not hvp or hessian.",)
    return write(path, module_text(fn, expression, notes=notes,
                                   gates=_custom_gates(fn, expression)), "export")


def _custom_gates(fn, expression: str) -> tuple[str, ...]:
    """Docstring lines defining the custom gates ``expression`` calls (their formulas as
    they were when ``fn`` was compiled): the expression alone does not say what they are."""
    custom = fn.request[3] if fn.request is not None and len(fn.request) > 3 else []
    used = {n.func.id for line in expression.splitlines() if line.strip()
            for n in ast.walk(_tree(line)) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)}
    rows = []
    for name, doc, params, _ in custom:
        if name in used:
            shown = ", ".join(f"{k}={v!r}" for k, v in params)
            rows.append(f"    {name}{f' ({shown})' if shown else ''}: "
                        f"{doc.removeprefix('custom: ')}")
    return ("Custom gates (symbp.gate, as defined when compiled):", *rows) if rows else ()


def _tree(line: str) -> ast.AST:
    """One staged line (or expression) as a syntax tree; an empty one if it does not parse
    alone (a comment, an assignment target symbp reads differently)."""
    try:
        return ast.parse(line.split("#", 1)[0].strip() or "0")
    except SyntaxError:
        return ast.parse("0")

