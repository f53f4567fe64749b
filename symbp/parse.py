"""Safe parsing: Python's ``ast`` with a whitelist, never ``eval``.

A string is one expression (split into primitive gates), or staged lines ``name = expr`` (each
line one gate, the last line the output). A SymPy expression is walked the same way. Both build
a :class:`~symbp.graph.Graph` through :class:`~symbp.graph.GraphBuilder`; a staged line's right
side, and a custom gate's formula, become SymPy expressions through :class:`_SympyBuilder`.

Traversals are iterative and inputs are bounded in length, nesting depth and constant size, so no
input hangs the parser or ends in a RecursionError.
"""

from __future__ import annotations

import ast
import keyword
import math
import textwrap
import warnings

import sympy as sp

from .errors import ParseError
from .gates import GATES, OPERATORS, Gate, callable_gates, lookup
from .graph import MAX_GATES, Graph, GraphBuilder, GraphError  # noqa: F401  (limits live here)

MAX_LENGTH = 20_000
"""Longest expression text accepted, in characters."""
MAX_DEPTH = 1000
"""Deepest nesting of operations in a single expression (split into gates, walked iteratively)."""
MAX_LINE_DEPTH = 100
"""Deepest nesting in one staged line or gate formula (a SymPy expression: SymPy recurses)."""
MAX_LINE_OPS = 64
"""Most operations in one staged line or gate formula: its derivative grows with the square."""

MAX_INT = 2 ** 53
"""Largest integer constant (exact as a float64)."""

_MODULE_ALIASES = ("math", "np", "numpy")

_REFUSED = {
    ast.Attribute: "attribute access (only math./np. before a gate name)",
    ast.Subscript: "indexing", ast.Lambda: "lambda", ast.IfExp: "conditional expressions",
    ast.Compare: "comparisons", ast.BoolOp: "boolean operators", ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions", ast.List: "lists", ast.Tuple: "tuples",
    ast.Set: "sets", ast.Dict: "dicts", ast.Starred: "starred arguments",
    ast.NamedExpr: "assignment expressions", ast.JoinedStr: "f-strings", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slices",
}


class _Reader:
    """Reads one string: checks nodes against the whitelist and reports positions."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ParseError(f"expected an expression string, got {type(text).__name__}")
        if len(text) > MAX_LENGTH:
            raise ParseError(f"expression is too long ({len(text)} characters; the limit is "
                             f"{MAX_LENGTH})")
        if not text.strip():
            raise ParseError("empty expression")
        if "\x00" in text:
            raise ParseError("expression contains a NUL character")
        self.text = textwrap.dedent(text)  # lines indented together, as in a triple-quoted string

    def error(self, message: str, node: ast.AST | None = None) -> ParseError:
        if node is None or not hasattr(node, "lineno"):
            return ParseError(message, self.text)
        end = getattr(node, "end_col_offset", None)
        if getattr(node, "end_lineno", node.lineno) != node.lineno:
            end = None
        lines = self.text.splitlines()
        line = lines[node.lineno - 1].encode() if node.lineno <= len(lines) else b""

        def chars(offset):  # ast counts UTF-8 bytes; the caret needs characters
            return None if offset is None else len(line[:offset].decode(errors="ignore"))

        return ParseError(message, self.text, node.lineno, chars(node.col_offset), chars(end))

    def statements(self, depth: int = MAX_DEPTH) -> list[ast.stmt]:
        try:
            tree = ast.parse(self.text, mode="exec")
        except SyntaxError as exc:
            line, col = exc.lineno or 1, max((exc.offset or 1) - 1, 0)
            raise ParseError(f"syntax error: {exc.msg}", self.text, line, col) from None
        except (RecursionError, MemoryError, ValueError, OverflowError):
            raise ParseError("expression is too deeply nested to parse") from None
        self._check_depth(tree, depth)
        if not tree.body:
            raise ParseError("empty expression (only comments or blank lines)")
        return tree.body

    def _check_depth(self, tree: ast.AST, limit: int) -> None:
        stack = [(tree, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > limit + 2:  # module and statement levels are not nesting
                raise self.error(f"expression is nested too deeply (limit {limit})", node)
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))

    def check_line(self, stmt: ast.AST) -> None:
        """A staged line or formula becomes one SymPy expression: bound its size and depth."""
        self._check_depth(stmt, MAX_LINE_DEPTH)
        ops = sum(isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) for n in ast.walk(stmt))
        if ops > MAX_LINE_OPS:
            raise self.error(f"this line has {ops} operations (limit {MAX_LINE_OPS}); a staged "
                             "line is one gate whose derivative SymPy expands, so split it into "
                             "several lines", stmt)

    def expression(self, root: ast.expr, builder):
        """Fold ``root`` bottom-up through ``builder`` without recursion."""
        results: dict[ast.AST, object] = {}
        stack: list[tuple[ast.expr, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if not ready:
                children = self._children(node)
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(children))
            else:
                values = [results.pop(c) for c in self._children(node)]
                results[node] = self._combine(node, values, builder)
        return results[root]

    def _children(self, node: ast.expr) -> list[ast.expr]:
        if isinstance(node, ast.BinOp):
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            return [node.operand]
        if isinstance(node, ast.Call):
            return list(node.args) + [k.value for k in node.keywords]
        if isinstance(node, ast.Attribute) and node.attr == "T":
            return [node.value]
        if isinstance(node, (ast.Name, ast.Constant)):
            return []
        what = _REFUSED.get(type(node), type(node).__name__)
        raise self.error(f"{what} not allowed in an expression", node)

    def _combine(self, node: ast.expr, values: list, builder):
        try:
            return self._combine_checked(node, values, builder)
        except GraphError as exc:
            raise self.error(str(exc), node) from None

    def _combine_checked(self, node: ast.expr, values: list, builder):
        pos = (getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            check_name(node.id, lambda m: self.error(m, node))
            return builder.name(node.id, pos)
        if isinstance(node, ast.Attribute):  # .T, the only attribute of a value
            return self._apply(builder, GATES["transpose"], values, (), node, pos)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return values[0]
            if not isinstance(node.op, ast.USub):
                raise self.error(f"operator {type(node.op).__name__} not supported", node)
            return self._apply(builder, GATES["neg"], values, (), node, pos)
        if isinstance(node, ast.BinOp):
            op = OPERATORS.get(type(node.op).__name__)
            if op is None:
                raise self.error(f"operator {type(node.op).__name__} not supported", node)
            return self._apply(builder, GATES[op], values, (), node, pos)
        return self._call(node, values, builder, pos)

    def _constant(self, node: ast.Constant) -> sp.Number:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(f"constant {type(v).__name__} not allowed; numbers only", node)
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise self.error("integer constant too large (limit 2**53)", node)
            return sp.Integer(v)
        if not math.isfinite(v):
            raise self.error("constant is not finite", node)
        return number(v)

    def _call(self, node: ast.Call, values: list, builder, pos):
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id in _MODULE_ALIASES and lookup(func.attr):
            name = func.attr
        elif isinstance(func, ast.Name):
            name = func.id
        else:
            raise self.error("only calls of gate names are allowed (like sigmoid(x) or "
                             "math.exp(x))", func)
        g = lookup(name)
        if g is None:
            raise self.error(f"unknown function {name!r}; known gates: "
                             f"{', '.join(callable_gates())}", func)
        n_pos = len(node.args)
        inputs, rest = values[:min(n_pos, g.arity)], values[min(n_pos, g.arity):n_pos]
        if n_pos < g.arity or len(rest) > len(g.params):
            extra = f" and parameters {', '.join(p for p, _ in g.params)}" if g.params else ""
            raise self.error(f"{name}() takes {g.arity} input(s){extra}, got {n_pos} "
                             "arguments", node)
        keywords = {}
        for kw, value in zip(node.keywords, values[n_pos:]):
            if kw.arg is None:
                raise self.error("** arguments not allowed", kw.value)
            keywords[kw.arg] = value
        for value, where in zip(rest + list(keywords.values()),
                                node.args[g.arity:] + [k.value for k in node.keywords]):
            if not isinstance(value, sp.Number):
                raise self.error(f"parameters of {name}() must be numeric constants", where)
        try:
            params = g.bind_params(rest, keywords)
        except ValueError as exc:
            raise self.error(str(exc), node) from None
        return self._apply(builder, g, inputs, params, node, pos)

    def _apply(self, builder, g: Gate, inputs: list, params: tuple, node, pos):
        if g.array is not None and isinstance(builder, _SympyBuilder):
            raise self.error(f"{g.name} works on whole arrays and cannot be part of a staged "
                             "line or a gate formula yet; write it in a single expression", node)
        if g.array is None and all(isinstance(v, sp.Number) for v in inputs):
            return self._fold(g, inputs, params, node)
        return builder.apply(g, inputs, params, pos)

    def _fold(self, g: Gate, inputs: list, params: tuple, node) -> sp.Number:
        """Evaluate a gate on constants in floating point (exact integers stay integers)."""
        try:
            value = g.formula(*[sp.Float(v) for v in inputs], *params)
            result = float(value)
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            raise self.error("constant expression has no finite real value", node) from None
        if not math.isfinite(result):
            raise self.error("constant expression has no finite real value", node)
        if all(v.is_Integer for v in inputs) and result.is_integer() and abs(result) <= MAX_INT:
            exact = g.formula(*inputs, *params)
            if exact.is_Integer:
                return exact
        return number(result)


def number(value: float) -> sp.Number:
    """A float constant as SymPy holds it, exactly: ``1.0 -> 1``, ``0.5 -> 1/2``."""
    if abs(value) <= MAX_INT:  # beyond, keep a float literal (Numba has no big integers)
        if float(value).is_integer():
            return sp.Integer(int(value))
        if float(2 * value).is_integer():  # 0.5 -> 1/2, so that x**0.5 prints as math.sqrt(x)
            return sp.Rational(int(2 * value), 2)
    return sp.Float(value)


def check_name(name: str, fail) -> None:
    """Refuse names that are not plain identifiers, reserved (dunder) or keywords."""
    if not isinstance(name, str) or not name.isidentifier():
        raise fail(f"{name!r} is not a valid name")
    if name.startswith("__"):
        raise fail(f"name {name!r} is reserved (names may not start with '__')")
    if keyword.iskeyword(name):
        raise fail(f"{name!r} is a Python keyword")


class _SympyBuilder:
    """Builds a SymPy expression; names become real symbols, recorded in order of appearance."""

    def __init__(self, on_name=None) -> None:
        self.names: list[str] = []
        self.on_name = on_name

    def name(self, name: str, pos) -> sp.Expr:
        if self.on_name is not None:
            self.on_name(name)
        if name not in self.names:
            self.names.append(name)
        return sp.Symbol(name, real=True)

    def apply(self, g: Gate, inputs: list, params: tuple, pos) -> sp.Expr:
        return g.apply(*inputs, *params)


def parse_formula(text: str) -> tuple[sp.Expr, list[str]]:
    """A formula string as a SymPy expression and its names in order of first appearance."""
    reader = _Reader(text)
    body = reader.statements()
    if len(body) != 1 or not isinstance(body[0], ast.Expr):
        raise reader.error("a formula is one expression", body[0] if body else None)
    reader.check_line(body[0])
    builder = _SympyBuilder()
    expr = reader.expression(body[0].value, builder)
    return sp.sympify(expr), builder.names


def parse(source, inputs: list[str] | None = None, shapes: dict | None = None) -> Graph:
    """Parse a string (expression or staged lines) or a SymPy expression into a Graph."""
    if isinstance(source, sp.Basic):
        from .graph import from_sympy

        if shapes:
            raise ParseError("shapes apply to string expressions; a SymPy expression is scalar")
        return from_sympy(source, inputs)
    reader = _Reader(source)
    body = reader.statements()
    builder = GraphBuilder(declared=inputs, shapes=shapes)
    if len(body) == 1 and isinstance(body[0], ast.Expr):
        result = reader.expression(body[0].value, builder)
        try:
            output = builder.finish(result, (1, 0))
        except GraphError as exc:
            raise reader.error(str(exc), body[0].value) from None
    else:
        output = _staged(reader, body, builder)
    return builder.graph(output, lambda m: ParseError(m, source if len(source) < 2000 else None))


def _uses_array_gates(value: ast.expr) -> bool:
    """Whether a staged line calls array gates (``@``, ``.T``, ``sum``, ``softmax``...)."""
    for node in ast.walk(value):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult) \
                or isinstance(node, ast.Attribute) and node.attr == "T":
            return True
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            gate = lookup(name) if name else None
            if gate is not None and gate.array is not None:
                return True
    return False


def _staged(reader: _Reader, body: list[ast.stmt], builder: GraphBuilder):
    """Staged lines: each ``name = expr`` is one gate whose formula is the whole right side;
    a line that uses array gates (``@``, ``sum``...) is split into gates, the last one named."""
    assigned = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name in assigned:
                raise reader.error(f"{name!r} is assigned twice; name each value once",
                                   stmt.targets[0])
            assigned[name] = stmt
    result = None
    for k, stmt in enumerate(body):
        last = k == len(body) - 1
        if isinstance(stmt, ast.Expr) and last:
            target, value = None, stmt.value
        elif isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                raise reader.error("each staged line assigns one name: name = expression", stmt)
            target, value = stmt.targets[0], stmt.value
            check_name(target.id, lambda m, t=target: reader.error(m, t))
            if lookup(target.id) or target.id in _MODULE_ALIASES:
                raise reader.error(f"cannot assign to {target.id!r}: it is a gate name", target)
        elif isinstance(stmt, ast.Expr):
            raise reader.error("only the last line may be a bare expression; name this value "
                               "(name = expression)", stmt)
        else:
            raise reader.error(f"{type(stmt).__name__} statements not allowed; staged lines "
                               "are 'name = expression'", stmt)
        for node in ast.walk(value):
            used = node.id if isinstance(node, ast.Name) else None
            if used in assigned and assigned[used].lineno >= stmt.lineno:
                raise reader.error(f"{used!r} is used before its staged assignment on line "
                                   f"{assigned[used].lineno}", node)
        pos = (stmt.lineno, stmt.col_offset)
        name = target.id if target else None
        if _uses_array_gates(value):  # not one SymPy formula: split into gates, name the last
            result = reader.expression(value, builder)
            try:
                result = builder.name_result(result, name, pos)
            except GraphError as exc:
                raise reader.error(str(exc), value) from None
            continue
        reader.check_line(stmt)
        sym = _SympyBuilder(on_name=builder.check_input)
        expr = reader.expression(value, sym)
        try:
            result = builder.line(name, sp.sympify(expr), sym.names, pos)
        except GraphError as exc:
            raise reader.error(str(exc), value) from None
    try:
        result = builder.finish(result, (body[-1].lineno, 0))
    except GraphError as exc:
        raise reader.error(str(exc), body[-1]) from None
    unused = builder.unused_lines(result)
    if unused:
        warnings.warn(f"staged lines not used by the output: {', '.join(unused)}", stacklevel=4)
    return result
