"""Safe parsing: Python's ``ast`` with a whitelist, never ``eval``.

A string is one expression (split into primitive gates), or staged lines ``name = expr`` (each
line one gate, the last line the output). A SymPy expression is walked the same way. Both build
a :class:`~symbp.graph.Graph` through :class:`~symbp.graph.GraphBuilder`; a staged line's right
side, and a custom gate's formula, become SymPy expressions through :class:`_SympyBuilder`.

Traversals are iterative and inputs are bounded in length, nesting depth and constant size, so no
input hangs the parser or ends in a RecursionError; a SymPy expression is screened by one
iterative walk (size, depth, constants, names) before anything of SymPy's recursive machinery
(``free_symbols``, ``srepr``) touches it. Every name goes through :func:`symbp.names.check`.
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
import warnings
from collections.abc import Callable

import sympy as sp

from .derive import check_derivatives
from .errors import GateError, ParseError
from .gates import (
    ALIASES,
    CONSTANTS,
    GATES,
    MODULE_ALIASES,
    OPERATORS,
    Domain,
    Gate,
    callable_gates,
    lookup,
    register,
)
from .graph import Graph, GraphBuilder, GraphError
from .names import (  # noqa: F401
    MAX_DEPTH,
    MAX_GATES,
    MAX_INT,
    MAX_LENGTH,
    MAX_LINE_DEPTH,
    MAX_LINE_OPS,
    number,
    problem,
    screen_text,
)
from .names import check as check_identifier

_MODULE_ALIASES = MODULE_ALIASES
_BARE_CONSTANTS = frozenset({"pi"})  # `e` stays an ordinary name

MAX_SYMPY_NODES = 3 * MAX_GATES
"""Most nodes of a SymPy expression (each becomes at most one gate; constants fold)."""
MAX_CONSTANT_BITS = 1100
"""Largest integer (numerator, denominator) of a SymPy constant, in bits (beyond float64)."""

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

    def __init__(self, text: str, constants=_BARE_CONSTANTS) -> None:
        screen_text(text)
        self.text = textwrap.dedent(text)  # lines indented together, as in a triple-quoted string
        self.constants = frozenset(constants)

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
        if isinstance(node, ast.Attribute) and _module_constant(node) is not None:
            return []
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
            if node.id in self.constants:
                return number(CONSTANTS[node.id])
            return builder.name(node.id, pos)
        if isinstance(node, ast.Attribute) and _module_constant(node) is not None:
            return number(_module_constant(node))
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
            if kw.arg in keywords:  # Python refuses this too
                raise self.error(f"{name}() got parameter {kw.arg!r} twice", kw.value)
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


def _module_constant(node: ast.Attribute) -> float | None:
    """The value of ``math.pi``, ``np.pi``, ``math.e``, ``np.e`` (``numpy.`` too), else None."""
    if isinstance(node.value, ast.Name) and node.value.id in MODULE_ALIASES \
            and node.attr in CONSTANTS:
        return CONSTANTS[node.attr]
    return None


def check_name(name: str, fail) -> None:
    """Refuse a name that is not a valid symbp name (see :func:`symbp.names.problem`):
    ``fail(message)`` builds the exception."""
    message = problem(name)
    if message is not None:
        raise fail(message)


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


def parse_formula(text: str, params=()) -> tuple[sp.Expr, list[str]]:
    """A formula string as a SymPy expression and its names in order of first appearance
    (``pi`` is the constant unless it is one of ``params``)."""
    reader = _Reader(text, _BARE_CONSTANTS - set(params))
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
        if shapes:
            raise ParseError("shapes apply to string expressions; a SymPy expression is scalar")
        return from_sympy(source, inputs)
    constants = _BARE_CONSTANTS - set(inputs or ())  # an input named pi stays an input
    reader = _Reader(source, constants)
    body = reader.statements()
    builder = GraphBuilder(declared=inputs, shapes=shapes, check=check_derivatives)
    if len(body) == 1 and isinstance(body[0], ast.Expr):
        result = reader.expression(body[0].value, builder)
        try:
            output = builder.finish(result, (1, 0))
        except GraphError as exc:
            raise reader.error(str(exc), body[0].value) from None
    else:
        output = _staged(reader, body, builder)
    return builder.graph(output, lambda m: ParseError(m, source if len(source) < 2000 else None))


def uses_array_gates(value: ast.expr) -> bool:
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
            if lookup(target.id) or target.id in _MODULE_ALIASES or target.id in ALIASES:
                raise reader.error(f"cannot assign to {target.id!r}: it is a gate name", target)
            if target.id in reader.constants:
                raise reader.error(f"cannot assign to {target.id!r}: it is the constant "
                                   f"{CONSTANTS[target.id]!r}", target)
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
        if uses_array_gates(value):  # not one SymPy formula: split into gates, name the last
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


# --- SymPy expressions -------------------------------------------------------------------------

_SIMPLE = {sp.exp: "exp", sp.log: "log", sp.sin: "sin", sp.cos: "cos", sp.tanh: "tanh",
           sp.Abs: "abs"}


def screen_sympy(expr) -> tuple[str, list[str]]:
    """Walk a SymPy expression, iteratively, within the limits strings have; return a
    canonical text of it (for the compile cache key: ``srepr`` recurses) and its symbol names,
    sorted. Raises ParseError for a tree too large or too deep, a huge constant, a symbol whose
    name is not a valid symbp name, or something that is not a SymPy expression. The limits are
    checked first, in a walk that only counts, so a huge tree is refused at once."""
    if not isinstance(expr, sp.Expr):
        raise ParseError(f"expected a SymPy expression, got {type(expr).__name__}")
    symbols: set[str] = set()
    seen: set[int] = set()
    alive: list = []  # keeps visited objects alive, so ids stay unique
    level: list = [expr]  # breadth first, one level of the tree at a time: depth is the count
    for depth in range(MAX_DEPTH + 2):
        if not level:
            break
        if depth > MAX_DEPTH:
            raise ParseError(f"the SymPy expression is nested too deeply (limit {MAX_DEPTH})")
        below: list = []
        for e in level:
            if id(e) in seen:
                continue
            seen.add(id(e))
            alive.append(e)
            if len(seen) > MAX_SYMPY_NODES:
                raise ParseError(f"the SymPy expression has more than {MAX_SYMPY_NODES} nodes "
                                 f"(at most {MAX_GATES} gates); split it or simplify it")
            if not isinstance(e, sp.Expr):
                raise ParseError(f"SymPy {type(e).__name__} is not a symbp gate; known gates: "
                                 f"{', '.join(callable_gates())}")
            if e.is_Symbol:
                check_name(e.name, lambda m: ParseError(f"SymPy symbol: {m}"))
                symbols.add(e.name)
            elif e.is_Rational:
                if max(abs(e.p).bit_length(), e.q.bit_length()) > MAX_CONSTANT_BITS:
                    raise ParseError("a constant of the SymPy expression is too large "
                                     f"(more than {MAX_CONSTANT_BITS} bits)")
            elif not e.is_Atom:  # _args: not sorted (args sorts a big Add first)
                below.extend(getattr(e, "_args", e.args))
        level = below
    tokens: list[str] = []  # postfix, with arities: one text per tree
    todo: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while todo:
        e, done = todo.pop()
        if done:
            tokens.append(f"{type(e).__module__}.{type(e).__qualname__}/{len(e.args)}")
        elif e.is_Atom:
            tokens.append(sp.srepr(e))
        else:
            todo.append((e, True))
            todo.extend((a, False) for a in reversed(e.args))
    return "\n".join(tokens), sorted(symbols)


def from_sympy(expr: sp.Basic, inputs: list[str] | None = None) -> Graph:
    """Split a SymPy expression into primitive gates (screened, then walked without
    recursion)."""
    _, names = screen_sympy(expr)
    builder = GraphBuilder(declared=inputs if inputs is not None else names,
                           check=check_derivatives)

    def children(e: sp.Expr) -> list[sp.Expr]:
        supported = (e.is_Symbol or e.is_Number or e.is_NumberSymbol or e.is_Add or e.is_Mul
                     or e.is_Pow or e.func in _SIMPLE or e.func in (sp.Max, sp.Min)
                     or hasattr(type(e), "symbp_gate"))
        if not supported or (e.func in _SIMPLE and len(e.args) != 1):
            raise ParseError(f"SymPy {e.func.__name__} is not a symbp gate; known gates: "
                             f"{', '.join(callable_gates())}")
        if e.is_Add:
            return [(-t if t.could_extract_minus_sign() else t) for t in e.args]
        if e.is_Mul:
            coeff, factors = e.as_coeff_mul()
            num = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
            den = [1 / f for f in factors if f.is_Pow and f.exp.is_negative]
            if coeff not in (1, -1):
                num.insert(0, coeff)
            return num + den
        if e.is_Pow:
            return [e.base] if e.exp in (sp.Rational(1, 2), -1) else [e.base, e.exp]
        if e.is_Atom:
            return []
        return list(e.args)

    def combine(e: sp.Expr, vals: list):
        def chain(gate, items):
            acc = items[0]
            for v in items[1:]:
                acc = _apply(gate, [acc, v])
            return acc

        def _apply(gate, operands, params=()):
            gate = GATES[gate] if isinstance(gate, str) else gate
            if all(isinstance(o, sp.Basic) for o in operands):
                try:
                    value = float(gate.formula(*[sp.Float(o) for o in operands], *params))
                except (TypeError, ValueError, OverflowError, ZeroDivisionError):
                    value = math.nan
                if not math.isfinite(value):
                    raise ParseError(f"constant {gate.name} has no finite real value")
                return number(value)
            return builder.apply(gate, operands, params, (1, 0))

        if e.is_Symbol:
            return builder.name(str(e), (1, 0))
        if e.is_Integer and abs(int(e)) <= MAX_INT:
            return sp.Integer(e)
        if e.is_Number or e.is_NumberSymbol:
            try:
                value = float(e)
            except (TypeError, ValueError, OverflowError):
                value = math.nan
            if not math.isfinite(value):
                raise ParseError(f"SymPy constant {sp.sstr(e)[:40]} is not a finite real "
                                 "number (in float64)")
            return number(value)
        if e.is_Add:
            first = e.args[0].could_extract_minus_sign()
            acc = _apply("neg", [vals[0]]) if first else vals[0]
            for t, v in zip(e.args[1:], vals[1:]):
                acc = _apply("sub" if t.could_extract_minus_sign() else "add", [acc, v])
            return acc
        if e.is_Mul:
            coeff, factors = e.as_coeff_mul()
            n_den = sum(1 for f in factors if f.is_Pow and f.exp.is_negative)
            num, den = vals[:len(vals) - n_den], vals[len(vals) - n_den:]
            acc = chain("mul", num) if num else sp.Integer(1)
            if den:
                acc = _apply("div", [acc, chain("mul", den)])
            return _apply("neg", [acc]) if coeff == -1 else acc
        if e.is_Pow:
            if e.exp == sp.Rational(1, 2):
                return _apply("sqrt", vals)
            if e.exp == -1:
                return _apply("div", [sp.Integer(1), vals[0]])
            return _apply("pow", vals)
        gate = getattr(type(e), "symbp_gate", None)
        if gate is not None:
            return _apply(gate, vals[:gate.arity], tuple(e.args[gate.arity:]))
        if e.func in _SIMPLE:
            return _apply(_SIMPLE[e.func], vals)
        return chain("max" if e.func is sp.Max else "min", vals)

    try:
        results: dict[int, object] = {}
        alive: list[sp.Expr] = []  # keeps every visited object alive, so ids stay unique
        stack: list[tuple[sp.Expr, list | None]] = [(expr, None)]
        while stack:
            e, kids = stack.pop()
            if kids is None:
                if id(e) in results:
                    continue  # a shared subexpression, built once
                kids = children(e)
                alive.extend(kids)
                stack.append((e, kids))
                stack.extend((c, None) for c in reversed(kids))
            else:
                results[id(e)] = combine(e, [results[id(c)] for c in kids])
        output = builder.finish(results[id(expr)], (1, 0))
        return builder.graph(output, ParseError)
    except GraphError as exc:
        raise ParseError(str(exc)) from None


# --- custom gates ------------------------------------------------------------------------------

def gate(name: str, formula: str | Callable[..., sp.Expr], *,
         params: dict[str, float] | None = None,
         domain: tuple[Domain, ...] | None = None) -> Gate:
    """Register a custom fused gate; SymPy derives its local derivatives.

    Parameters
    ----------
    name : str
        A new identifier, usable afterwards as ``name(...)`` in expressions. Re-registering a
        custom name replaces it; built-in gates cannot be replaced. It passes the identifier
        check of :mod:`symbp.names` (no keyword, no ``__`` prefix, unchanged by NFKC) and may
        not be a module name (``math``, ``np``), an alias (``maximum``) or ``pi``.
    formula : str or callable
        A safe expression over the gate's inputs (``"a * sigmoid(a)"``; inputs are the free names
        in order of first appearance, parameters excluded), or a function of SymPy symbols
        (``lambda a: a / (1 + sympy.exp(-a))``).
    params : dict, optional
        Numeric parameters (finite real numbers) and their defaults, named in the formula.
    domain : tuple of (low, high), optional
        Where tests sample each input (default (-3, 3)).

    Returns
    -------
    Gate
        The registered row. The gate is *fused*: one node in a graph, one local derivative per
        input, rewritten in terms of the gate's output where that is cheaper.

    Raises
    ------
    GateError
        For a bad name, parameter or formula (a ParseError, with a caret, for a formula string
        that cannot be read).
    """
    check_identifier(name, "gate name", GateError)
    if name in MODULE_ALIASES or name in ALIASES or name in CONSTANTS:
        raise GateError(f"gate name {name!r} is taken: it is a module, an alias of a gate or a "
                        "constant in expressions")
    if name in GATES and not GATES[name].custom:
        raise GateError(f"{name!r} is a built-in gate and cannot be redefined")
    if params is not None and not isinstance(params, dict):
        raise GateError(f"params of gate {name!r} must be a dict name -> default, got "
                        f"{type(params).__name__}")
    params = dict(params or {})
    defaults: dict[str, float] = {}
    for p, v in params.items():
        check_identifier(p, f"parameter of gate {name!r}", GateError)
        try:
            value = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        except OverflowError:
            value = None
        if value is None or not math.isfinite(value):
            raise GateError(f"parameter {p!r} of gate {name!r} needs a finite real number as its "
                            f"default, got {type(v).__name__}")
        defaults[p] = value
    if isinstance(formula, str):
        expr, names = parse_formula(formula, params)
        inputs = [n for n in names if n not in params]
        symbols = {n: sp.Symbol(n, real=True) for n in names}
        order = [symbols[n] for n in inputs] + [symbols.get(p, sp.Symbol(p)) for p in params]
    elif callable(formula):
        try:
            count = len(inspect.signature(formula).parameters) - len(params)
        except (TypeError, ValueError) as exc:
            raise GateError(f"cannot read the arguments of the formula of {name!r}") from exc
        if count < 0:
            raise GateError(f"the formula of {name!r} takes fewer arguments than its parameters")
        order = [sp.Symbol(f"a{k}", real=True) for k in range(count)]
        order += [sp.Symbol(p, real=True) for p in params]
        try:
            expr = sp.sympify(formula(*order), strict=True)
        except Exception as exc:  # a user's callable may raise anything
            raise GateError(f"the formula of {name!r} failed on SymPy symbols: {exc}") from exc
        inputs = order[:count]
        if isinstance(expr, sp.Expr):
            screen_sympy(expr)  # bounded like any SymPy input
    else:
        raise GateError(f"formula of {name!r} must be a string or a function")
    if not isinstance(expr, sp.Expr):
        raise GateError(f"the formula of {name!r} is not a SymPy expression")
    stray = sorted(str(s) for s in expr.free_symbols - set(order))
    if stray:  # it would read whatever the generated code calls by that name
        raise GateError(f"the formula of {name!r} uses {', '.join(map(repr, stray))}, neither "
                        "one of its inputs (the function's arguments) nor a parameter; pass it "
                        "as an argument or declare it in params=")
    if not inputs:
        raise GateError(f"the formula of {name!r} uses no input")
    arity = len(inputs)

    def build(*args, _expr=expr, _order=tuple(order)):
        return _expr.xreplace(dict(zip(_order, args)))

    if domain is not None:
        try:
            domain = tuple((float(lo), float(hi)) for lo, hi in domain)
        except (TypeError, ValueError, OverflowError):
            raise GateError(f"domain of gate {name!r} must be one (low, high) pair of numbers "
                            "per input") from None
        if len(domain) != arity:
            raise GateError(f"gate {name!r} has {arity} input(s) but {len(domain)} domain(s)")
    row = Gate(name, arity, build, f"custom: {sp.sstr(expr)}",
               params=tuple(defaults.items()),
               domain=tuple(domain or ()), label=name[:4], custom=True,
               text=formula if isinstance(formula, str) else None)
    return register(row)
