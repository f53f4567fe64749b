"""Check backpropagation line by line: a hand-written backward pass, or symbp's own.

:func:`symbp.check` (:func:`check_source` here) reads a user's staged forward pass followed
by their backward pass in the CS231n notes' style (``dnum = invden``, ``dx += (1) * dnum``),
derives symbp's own local derivatives from the forward lines and runs both at one point. Each
backward line is taken as the contribution of the forward lines whose gradients it reads
(``dx = (1) * dxpy`` is ``xpy``'s contribution to ``dx``; a line that reads no gradient is the
output's contribution), so every line is judged on its own: its value against symbp's local
derivative times the gradients it read. A line whose own formula is right but whose inputs are
wrong is marked as following the first wrong line. Contributions never written are reported at
the end: a missing ``+=`` at a fork is named as such.

:func:`check_function` (``Function.check``) compares each generated backward line's local
derivative, evaluated in float64, with a central difference of its forward line in 50-digit
arithmetic, worst first: a precision loss or a kink shows on the line where it happens.
Functions of arrays are checked statement by statement by :mod:`symbp.checkarrays`, a
layer above this one.

Nothing runs user text. Scalar lines are read by the parser's whitelist into SymPy expressions
and evaluated by substituting numbers; array lines (``shapes=``) go through ``symbp.compile``
(``sum((rhs) * seed)``, whose gradients are the line's value and its vector-Jacobian
products).
"""

from __future__ import annotations

import ast
import math
import numbers
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .derive import OUT, local_derivatives, placeholder
from .emit import SourcePrinter, statement
from .errors import ParseError, SymbpError
from .gates import MODULE_ALIASES
from .graph import GraphBuilder, GraphError
from .naming import gradient_names, value_names
from .parse import _Reader, _SympyBuilder, parse
from .reverse import sweep
from .shapes import Ints, ints, show
from .statements import Accumulate, Assign

RTOL = 1e-9
"""Two float64 values agree when their difference is at most RTOL times the larger (or 1e-300)."""

_PRINT = SourcePrinter()


@dataclass(frozen=True)
class Line:
    """One backward line of :func:`check`'s report.

    ``status`` is ``"ok"``, ``"wrong"`` (this line's own mistake) or ``"follows"`` (its formula
    is right, its value wrong only because of line ``cause``). ``found`` and ``expected`` are the
    gradient variable's value after the line (``found`` is None when it cannot be computed);
    ``local`` is the local derivative symbp uses for it.
    """

    number: int
    text: str
    variable: str
    status: str
    found: float | None
    expected: float
    local: str
    message: str = ""
    cause: int | None = None


@dataclass(frozen=True)
class Missing:
    """A contribution no line writes: forward line ``line`` passes ``variable`` a gradient.
    ``fork`` when the variable gets other contributions (the missing ``+=`` at a fork);
    ``written`` when lines assign the variable, all wrongly (no real contribution)."""

    variable: str
    line: int
    text: str
    suggestion: str
    fork: bool
    written: bool = False


@dataclass(frozen=True)
class Report:
    """What :func:`check` found: ``lines`` in the user's order, then ``missing``."""

    lines: tuple[Line, ...]
    missing: tuple[Missing, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and all(line.status == "ok" for line in self.lines)

    @property
    def first_wrong_line(self) -> int | None:
        """The number of the first line that is wrong on its own (None if there is none)."""
        return next((line.number for line in self.lines if line.status == "wrong"), None)

    def __str__(self) -> str:
        if self.ok:
            n = len(self.lines)
            return (f"backward pass is right: {n} line{'s' if n != 1 else ''} "
                    f"agree{'s' if n == 1 else ''} with symbp's")
        out = []
        for line in self.lines:
            if line.status == "ok":
                continue
            out.append(f"line {line.number}: {line.text}")
            if line.status == "follows":
                because = (f"line {line.cause}" if line.cause is not None
                           else "a missing contribution")
                out.append(f"    wrong only because of {because}: {line.variable} = "
                           f"{_num(line.found)}, expected {_num(line.expected)}")
                continue
            out.extend(f"    {problem}" for problem in line.message.split("; "))
            out.append(f"    {line.variable} = {_num(line.found)}, expected "
                       f"{_num(line.expected)}; symbp's local derivative: {line.local}")
        for m in self.missing:
            what = ("missing += at a fork" if m.fork else "missing" if m.written
                    else "never computed")
            out.append(f"{m.variable}: {what}: no line adds the gradient from line {m.line} "
                       f"({m.text}); write {m.suggestion}")
        return "\n".join(out)


@dataclass(frozen=True)
class Local:
    """One generated backward line of :func:`check_function`: ``line`` as generated, its local
    derivative ``local`` and its ``value`` in float64, the central difference ``numeric`` of its
    forward line (50 digits) and their relative difference ``error``.

    Array functions (:mod:`symbp.checkarrays`): ``index`` is the element where the line is
    worst (the element of the loop for a local derivative, of the gradient written for a
    vector-Jacobian product); ``what`` says what ``value`` is (``"local"``, ``"sum"`` for a sum
    over broadcast axes, ``"vector-Jacobian product"`` for an array gate's adjoint),
    ``reference`` how ``numeric`` was found. ``ok``: ``error`` within ``tolerance``, the
    reference's own accuracy (1e-12 for 50 digits, 1e-8 for float64 Ridders)."""

    line: str
    local: str
    value: float
    numeric: float
    error: float
    index: tuple | None = None
    what: str = "local"
    reference: str = "central difference"
    tolerance: float = 1e-12

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance


@dataclass(frozen=True)
class LocalReport:
    """The generated backward lines, worst first; ``ok`` when every one is within its
    tolerance."""

    lines: tuple[Local, ...]

    @property
    def ok(self) -> bool:
        return all(x.ok for x in self.lines)

    def __str__(self) -> str:
        rows = [f"{x.error:10.2e}  {x.line}\n{'':12}"
                + (f"at {list(x.index)}: " if x.index else "")
                + f"{x.what} {x.local} = {x.value:.17g}; {x.reference} {x.numeric:.17g}"
                for x in self.lines]
        return "\n".join(["rel. error  generated backward line (worst first)"] + rows)


def _num(value) -> str:
    """A float, or an array (its elements), as the report prints it."""
    if value is None:
        return "(not computed)"
    if np.ndim(value):
        text = np.array2string(np.asarray(value), separator=", ", max_line_width=200,
                               formatter={"float_kind": lambda x: f"{x:.12g}"})
        return " ".join(text.split())  # rows on one line
    return f"{float(value):.12g}"


def _close(a, b) -> bool:
    """Whether ``a`` (None: not computed) and ``b`` agree to RTOL (arrays: every element)."""
    if a is None or np.shape(a) != np.shape(b):
        return False
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.all(np.abs(a - b) <= np.maximum(RTOL * np.maximum(abs(a), abs(b)), 1e-300)))


def _evaluate(expr: sp.Expr, values: dict, where: str) -> float:
    """``expr`` at ``values`` (name -> float), in floating point; SymbpError if not finite."""
    try:  # substituting Floats evaluates: exp(exp(50)) overflows SymPy's integers there
        result = float(expr.xreplace({s: sp.Float(values[s.name]) for s in expr.free_symbols}))
    except (TypeError, ValueError, OverflowError, MemoryError):
        result = math.nan
    if not math.isfinite(result):
        raise SymbpError(f"{where} has no finite value at this point")
    return result


def _point(at, names: tuple[str, ...], shapes: dict) -> dict:
    if not isinstance(at, dict):
        raise SymbpError(f"at must be a dict name -> number, got {type(at).__name__}")
    unknown = [n if isinstance(n, str) else repr(n) for n in at if n not in names]
    missing = [n for n in names if n not in at]
    if unknown or missing:
        raise SymbpError(f"at must give every input of the forward pass ({', '.join(names)}): "
                         + "; ".join(filter(None, [unknown and f"unknown {', '.join(unknown)}",
                                                   missing and f"missing {', '.join(missing)}"])))
    point = {}
    for name in names:
        value = at[name]
        if isinstance(shapes.get(name), Ints):
            value = np.asarray(value)
            if value.dtype.kind not in "iu":
                raise SymbpError(f"at[{name!r}] holds labels: give an integer array, got "
                                 f"{value.dtype}")
            point[name] = value.astype(np.int64)
            continue
        if shapes.get(name):
            try:
                value = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise SymbpError(f"at[{name!r}] must be an array of numbers") from None
            if not np.all(np.isfinite(value)):
                raise SymbpError(f"at[{name!r}] must hold finite real numbers")
            point[name] = value
            continue
        if isinstance(value, np.ndarray) and value.ndim == 0:  # as a compiled Function takes
            value = value[()]
        try:  # NumPy's scalars too; not bools or strings
            number = float(value) if isinstance(value, numbers.Real) and not isinstance(
                value, (bool, np.bool_)) else math.nan
        except OverflowError:  # an int beyond float64
            number = math.nan
        if not math.isfinite(number):
            raise SymbpError(f"at[{name!r}] must be a finite real number, got {value!r}")
        point[name] = number
    return point


def _backward_start(body: list[ast.stmt], inputs) -> int | None:
    """Index of the first backward line: a ``+=`` or ``d<name> = ...`` for a name seen before."""
    known = set(inputs or ())
    for k, stmt in enumerate(body):
        if isinstance(stmt, ast.AugAssign):
            return k
        if isinstance(stmt, ast.Assign):
            targets = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
            if any(t.startswith("d") and t[1:] in known for t in targets):
                return k
            known.update(targets)
            known.update(n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name))
    return None


def _example_values(body: list[ast.stmt]) -> dict:
    """The leading lines that assign a number to a name (the notes' ``x = 3  # example
    values``), as {name: (value, statement)}; a name assigned twice ends them."""
    found: dict = {}
    for stmt in body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id not in found):
            break
        value, sign = stmt.value, 1.0
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, (ast.USub, ast.UAdd)):
            value, sign = value.operand, -1.0 if isinstance(value.op, ast.USub) else 1.0
        if not (isinstance(value, ast.Constant) and type(value.value) in (int, float)):
            break
        found[stmt.targets[0].id] = (sign * float(value.value), stmt)
    return found


def check_source(source: str, at: dict | None, inputs, shapes, compile) -> Report:
    """The work of :func:`symbp.check`; ``compile`` is :func:`symbp.compile` (it sits in a
    layer above this module, which :meth:`Function.check` imports). Without ``at``, the
    leading lines assigning numbers are the point (:func:`_example_values`)."""
    if not isinstance(source, str):
        raise SymbpError(f"source must be a string, got {type(source).__name__}")
    reader = _Reader(source)
    body = reader.statements()
    given = bool(at)
    examples = _example_values(body)
    if given:  # the value lines of the names at gives are replaced by at's values
        examples = {n: v for n, v in examples.items() if isinstance(at, dict) and n in at}
    elif not examples:
        raise SymbpError("no point to check at: pass at={'x': 3, ...} (--at x=3 on the "
                         "command line), or begin the source with the inputs' values, as "
                         "the notes do (x = 3, then y = -4)")
    if examples:
        if len(examples) == len(body):
            raise SymbpError("the source holds only the inputs' values (name = number): the "
                             "forward and backward lines follow them")
        at = {**{name: value for name, (value, _) in examples.items()}, **(at or {})}
        lines = source.splitlines()
        for _, stmt in examples.values():  # blanked, so line numbers stay the source's
            for k in range(stmt.lineno - 1, stmt.end_lineno):
                lines[k] = ""
        reader = _Reader("\n".join(lines))
        body = [s for s in body if all(s is not stmt for _, stmt in examples.values())]
    start = _backward_start(body, inputs)
    if start is None:
        last = body[-1] if len(body) > 1 and isinstance(body[-1], ast.Assign) else None
        guess = next((t.id for t in last.targets if isinstance(t, ast.Name)
                      and t.id.startswith("d") and len(t.id) > 1), None) if last else None
        hint = (f" (if line {last.lineno}, {guess} = ..., is a backward line: no forward value "
                f"is named {guess[1:]})" if guess else "")
        raise SymbpError("no backward pass found: it starts at the first line assigning "
                         f"d<name> for a forward value (dnum = ...) or at the first +={hint}")
    if start == 0:
        raise reader.error("the backward pass needs a forward pass before it", body[0])
    text = reader.text.splitlines()
    graph = parse("\n".join(text[:body[start].lineno - 1]),
                  list(inputs) if inputs is not None else None, shapes)
    if not given:  # a value line whose name the forward pass never reads is left out
        at = {name: value for name, value in at.items() if name in graph.input_names}
    point = _point(at, graph.input_names, shapes or {})
    if not shapes:
        return _Checker(graph, reader, text, point).run(body[start:])
    if not all(isinstance(s, ast.Assign) for s in body[:start]):
        raise reader.error("check reads named forward lines (name = expression)", body[0])
    return _Arrays(graph, reader, text, body[:start], point, shapes, compile).run(body[start:])


class _Checker:
    """The forward values, symbp's local derivatives and gradients, and the user's lines.

    Values are indexed like the graph's nodes: ``args[k]`` are the values line ``k`` reads.
    Scalars: the local derivatives are SymPy expressions, values floats. Arrays
    (:class:`_Arrays`) replace the hooks ``_vjp``, ``_value``, ``_local_text`` and ``_term``.
    """

    def __init__(self, graph, reader: _Reader, text: list[str], point: dict) -> None:
        self.graph, self.reader, self.text = graph, reader, text
        self.index = {}
        for k, node in enumerate(graph.nodes):
            if node.shape != ():
                raise SymbpError("arrays need their shapes: pass shapes= (check(..., "
                                 "shapes={'W': (2, 2), 'x': (2, 1)}))")
            if node.name is None:
                raise SymbpError("check needs every forward line named (name = expression)")
            self.index[node.name] = k
        self.names = tuple(n.name for n in graph.nodes)
        self.args = tuple(n.args for n in graph.nodes)
        self.lineno = tuple(n.pos[0] for n in graph.nodes)
        self.output = graph.output
        self.values = dict(point)
        self.local: dict[tuple[int, int], sp.Expr] = {}  # (consumer, input node) -> over names
        for k, node in enumerate(graph.nodes):
            if node.gate == "input":
                continue
            symbols = {placeholder(p): sp.Symbol(self.names[a], real=True)
                       for p, a in enumerate(node.args)}
            self.values[node.name] = _evaluate(node.formula.xreplace(symbols), self.values,
                                               f"line {node.pos[0]}")
            symbols[OUT] = sp.Symbol(node.name, real=True)
            for p, d in enumerate(local_derivatives(node.formula, len(node.args))):
                self.local[k, node.args[p]] = d.xreplace(symbols)
        self._gradients()

    def _gradients(self) -> None:
        """symbp's own backward pass: the whole gradient of every value."""
        self.grad = [self._zero(k) for k in range(len(self.names))]
        self.grad[self.output] = self._one()
        for k in range(len(self.names) - 1, -1, -1):
            for a in self.args[k]:
                self.grad[a] = self.grad[a] + self._vjp(k, a, self.grad[k])

    # --- the hooks: scalars -------------------------------------------------------------------

    def _zero(self, k: int):
        return 0.0

    def _one(self):
        return 1.0

    def _vjp(self, consumer: int, node: int, upstream):
        """``node``'s share of the gradient through ``consumer``, given ``consumer``'s."""
        local = self.local[consumer, node]
        return _evaluate(local, self.values, "a local derivative") * upstream

    def _local_text(self, u: int, v: int) -> str:
        return f"d{self.names[u]}/d{self.names[v]} = {_PRINT.doprint(self.local[u, v])}"

    def _term(self, u: int, v: int) -> str | None:
        """The right side symbp would write for ``v``'s share through ``u`` (None: it is 0)."""
        local = self.local[u, v]
        if local == 0:
            return None
        factor = "" if local == 1 else f"{_PRINT.parenthesize(local, 50)} * "
        upstream = "d" + self.names[u] if u != self.output else ""
        return (factor + upstream).rstrip(" *") or "1.0"

    def _parse(self, stmt, known) -> object:
        builder = _SympyBuilder(on_name=known)
        return sp.sympify(self.reader.expression(stmt.value, builder)), builder.names

    def _value(self, parsed, v: int, env: dict, number: int):
        return _evaluate(parsed, env, f"line {number}")

    def _shape_problem(self, parsed, v: int) -> str | None:
        """Why a line's right side cannot be ``v``'s gradient by its shape (None: it can)."""
        return None

    # --- shared ----------------------------------------------------------------------------

    def _code(self, k: int) -> str:
        """Forward line ``k`` as written, without its comment."""
        return self.text[self.lineno[k] - 1].split("#")[0].strip()

    def _where(self, k: int) -> str:
        return f"line {self.lineno[k]} ({self._code(k)})"

    labels: frozenset[str] | set[str] = frozenset()  # integer inputs: they have no gradient

    def _gradient_of(self, name: str) -> str | None:
        """The value whose gradient ``name`` is, or None."""
        if name in self.index or not name.startswith("d"):
            return None
        return name[1:] if name[1:] in self.index and name[1:] not in self.labels else None

    def _read(self, stmt) -> tuple[str, object, list[str]]:
        r = self.reader
        if isinstance(stmt, ast.AugAssign) and not isinstance(stmt.op, ast.Add):
            raise r.error("a backward line accumulates with +=, no other operator", stmt)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
        elif isinstance(stmt, ast.AugAssign):
            target = stmt.target
        else:
            raise r.error("a backward line is 'dname = expression' or 'dname += expression'",
                          stmt)
        if not isinstance(target, ast.Name) or self._gradient_of(target.id) is None:
            raise r.error("a backward line assigns the gradient d<name> of a forward value "
                          f"({', '.join('d' + n for n in self.names if n not in self.labels)})",
                          target)
        r.check_line(stmt)

        def known(name: str) -> None:
            if name not in self.index and self._gradient_of(name) is None:
                raise GraphError(f"unknown name {name!r}: a backward line reads forward values "
                                 "and their gradients d<name>")

        parsed, names = self._parse(stmt, known)
        return target.id, parsed, [n for n in names if self._gradient_of(n)]

    def run(self, backward: list[ast.stmt]) -> Report:
        parsed = [self._read(stmt) for stmt in backward]
        user: dict[str, object] = {}  # the user's gradients so far (None: not computable)
        written: dict[str, int] = {}  # gradient -> line that first assigned it
        covered: dict[int, dict[int, int]] = {k: {} for k in range(len(self.names))}
        cause: dict[str, int] = {}  # gradient -> the wrong line it depends on
        output = self.output
        out = "d" + self.names[output]
        lines = []
        for i, (stmt, (dv, expr, reads)) in enumerate(zip(backward, parsed)):
            number = stmt.lineno
            v = self.index[dv[1:]]
            sources = [self.index[g[1:]] for g in reads] or ([output] if v != output else [])
            problems = []
            for g in reads:
                later = [s.lineno for s, (t, _, _) in zip(backward[i + 1:], parsed[i + 1:])
                         if t == g]
                if g not in user and g != out:
                    problems.append(f"reads {g}, which no earlier line computes")
                elif later:
                    problems.append(f"reads {g} before line {later[0]} adds to it")
            for u in sources:
                if v not in self.args[u]:
                    problems.append(f"{self.names[v]} is not an input of {self._where(u)}, so "
                                    f"{'d' + self.names[u]} passes it no gradient")
                elif u in covered[v]:
                    problems.append(f"the gradient from {self._where(u)} was already added to "
                                    f"{dv} on line {covered[v][u]}")
            shape = self._shape_problem(expr, v)
            if shape is not None:
                problems.append(shape)
            if isinstance(stmt, ast.AugAssign) and dv not in user:
                problems.append(f"adds to {dv} before any line assigns it (a NameError in "
                                "Python): the first contribution is '=', later ones '+='")
            repeated = bool(sources) and all(u in covered[v] for u in sources)
            if isinstance(stmt, ast.Assign) and dv in user and not repeated:
                problems.append(f"overwrites {dv} from line {written[dv]}: "
                                f"{self.names[v]} is used on several lines (a fork), so its "
                                "gradients add up: write +=")
            upstream = {g: user[g] if g in user else self._one() if g == out else None
                        for g in reads}
            env = dict(self.values)
            env.update(upstream)
            computable = all(u is not None for u in upstream.values())
            found = self._value(expr, v, env, number) if computable else None
            edges = [u for u in sources if v in self.args[u]]
            if v == output:
                own, local_text = self._one(), "1 (the output's own gradient)"
            else:
                own = self._zero(v)
                for u in edges if computable else ():
                    own = own + self._vjp(u, v, upstream.get("d" + self.names[u], self._one()))
                local_text = ", ".join(self._local_text(u, v) for u in edges) or "0"
            if not problems and found is not None and not _close(found, own):
                problems.append(f"wrong local derivative: this line's term is {_num(found)}, "
                                f"symbp's is {_num(own)}")
            total = (user[dv] + found if found is not None and user.get(dv) is not None
                     and isinstance(stmt, ast.AugAssign) else found)
            if (problems and found is not None and not _close(found, own)
                    and np.any(self.grad[v] != 0) and _close(total, self.grad[v])):
                problems.append(f"{dv} = {_num(total)} is {self.names[v]}'s whole gradient, "
                                "which is right, but each line must be one forward line's "
                                "contribution (the line whose gradient it reads): this one "
                                "takes a shortcut through several")  # e.g. dx = (y + 1) * db
            for u in sources:
                covered[v].setdefault(u, number)
            if found is None:
                user[dv] = None
            elif isinstance(stmt, ast.AugAssign) and user.get(dv) is not None:
                user[dv] = user[dv] + found
            else:
                user[dv] = found
            written.setdefault(dv, number)
            expected = self._one() if v == output else self._zero(v)
            for u in covered[v]:
                if v in self.args[u]:
                    expected = expected + self._vjp(u, v, self.grad[u])
            status, origin = "ok", None
            if problems:
                status, origin = "wrong", number
            elif not _close(user[dv], expected):
                status = "follows"
                origin = min([cause[g] for g in reads if g in cause]
                             + ([cause[dv]] if dv in cause else []), default=None)
                if origin is None:
                    problems.append("its formula is right; a gradient it reads misses a "
                                    "contribution (see below)")
            if status == "ok":
                cause.pop(dv, None)
            elif origin is not None:
                cause[dv] = origin
            lines.append(Line(number, self.text[number - 1].strip(), dv, status, user[dv],
                              expected, local_text, "; ".join(problems),
                              origin if status == "follows" else None))
        return Report(tuple(lines), tuple(self._missing(covered)))

    def _missing(self, covered: dict) -> list[Missing]:
        found = []
        suggested = set()  # gradients given a first (=) contribution here
        for u in range(len(self.names) - 1, -1, -1):  # the backward order
            for v in self.args[u]:
                term = None if u in covered[v] else self._term(u, v)
                if term is None:
                    continue
                fork = any(v in self.args[w] for w in covered[v])  # a real contribution
                op = "+=" if covered[v] or v in suggested else "="
                suggested.add(v)
                found.append(Missing("d" + self.names[v], self.lineno[u], self._code(u),
                                     f"d{self.names[v]} {op} {term}", fork,
                                     bool(covered[v]) and not fork))
        return found


class _Arrays(_Checker):
    """Array code, through symbp's own pipeline. Forward line ``v = rhs`` is compiled as
    ``sum((rhs) * dv)``: its gradient with respect to ``dv`` is the line's value, with respect
    to an input the vector-Jacobian product symbp's backward pass applies. A backward line
    ``dw = rhs`` is compiled the same way, its value read as the gradient with respect to a seed
    of ``w``'s shape. Everything runs as generated Python (``jit=False``): no Numba compile."""

    def __init__(self, graph, reader: _Reader, text: list[str], forward: list[ast.stmt],
                 point: dict, shapes: dict, compile) -> None:
        self.graph, self.reader, self.text, self.compile = graph, reader, text, compile
        named = {n.name: n.shape for n in graph.nodes if n.name is not None}
        inputs = graph.input_names
        self.names = inputs + tuple(s.targets[0].id for s in forward)
        self.index = {n: k for k, n in enumerate(self.names)}
        unused = [n for n in self.names if n not in named]
        if unused:
            raise SymbpError(f"forward line(s) {', '.join(unused)} not used by the output")
        self.shapes = {n: tuple(named[n]) for n in self.names}
        self.labels = {n.name for n in graph.nodes if n.integer}  # no gradient, int64
        for n, shape in self.shapes.items():
            if not all(isinstance(d, int) for d in shape):
                raise SymbpError(f"check needs concrete shapes: {n} has shape {shape}")
        self.lineno = (1,) * len(inputs) + tuple(s.lineno for s in forward)
        self.output = len(self.names) - 1
        self.values = {}
        for n in inputs:
            value = np.asarray(point[n], dtype=np.int64 if n in self.labels else np.float64)
            if value.shape != self.shapes[n]:
                raise SymbpError(f"at[{n!r}] has shape {value.shape}, declared "
                                 f"{self.shapes[n]}")
            self.values[n] = value
        args, self.functions = [()] * len(inputs), {}
        for k, stmt in enumerate(forward, start=len(inputs)):
            reads = [n for n in _names(stmt.value) if n in self.index]
            args.append(tuple(self.index[n] for n in reads if n not in self.labels))
            seed = "d" + self.names[k]
            self.functions[k] = (self._compile(stmt, reads, seed, self.shapes[self.names[k]]),
                                 reads, seed)
            self.values[self.names[k]] = self._run(k, np.ones(self.shapes[self.names[k]]),
                                                   seed)
        self.args = tuple(args)
        self._gradients()

    def _compile(self, stmt, reads: list[str], seed: str, shape: tuple):
        rhs = ast.get_source_segment(self.reader.text, stmt.value)
        expr = f"sum(({rhs}) * {seed})" if shape else f"({rhs}) * {seed}"
        shapes = {n: ints(self._shape(n)) if n in self.labels else self._shape(n)
                  for n in reads + [seed] if self._shape(n)}
        if shape:
            shapes[seed] = shape
        try:
            return self.compile(expr, inputs=reads + [seed], shapes=shapes, jit=False)
        except SymbpError as exc:
            reason = exc.reason if isinstance(exc, ParseError) else str(exc).splitlines()[0]
            raise self.reader.error(reason, stmt.value) from None  # this line's position

    def _shape(self, name: str) -> tuple:
        """The shape of a value or of a gradient d<value>."""
        return self.shapes.get(name, self.shapes.get(name[1:], ()))

    def _run(self, k: int, upstream, wrt: str):
        f, reads, seed = self.functions[k]
        given = {n: self.values[n] for n in reads}
        given[seed] = upstream
        return np.asarray(_grad(f, given)[wrt], dtype=np.float64)

    def _zero(self, k: int):
        return np.zeros(self.shapes[self.names[k]])

    def _one(self):
        return np.float64(1.0)

    def _vjp(self, consumer: int, node: int, upstream):
        return self._run(consumer, upstream, self.names[node])

    def _local_text(self, u: int, v: int) -> str:
        f = self.functions[u][0]
        backward = f.source.split("# backward pass", 1)[1].split("return")[0]
        gates = [line.split("#", 1)[1].split(")", 1)[1].split(":")[0].strip()
                 for line in backward.splitlines()
                 if "#" in line and line.rstrip().endswith(f"/d{self.names[v]}")]
        return (f"d{self.names[u]}/d{self.names[v]} through symbp's "
                f"{', '.join(dict.fromkeys(gates)) or 'identity'} backward")

    def _term(self, u: int, v: int) -> str | None:
        return f"... ({self.names[v]}'s share of d{self.names[u]}, {self._local_text(u, v)})"

    def _parse(self, stmt, known) -> object:
        names = _names(stmt.value)
        for node in ast.walk(stmt.value):
            if isinstance(node, ast.Name) and node.id in names:
                try:
                    known(node.id)
                except GraphError as exc:
                    raise self.reader.error(str(exc), node) from None
        return (stmt, names), names

    def _shape_problem(self, parsed, v: int) -> str | None:
        # the line runs as sum((rhs) * seed), which broadcasts: compare the shapes first
        stmt, names = parsed
        builder = GraphBuilder(declared=names, shapes={
            n: ints(self._shape(n)) if n in self.labels else self._shape(n)
            for n in names if self._shape(n)})
        try:
            result = self.reader.expression(stmt.value, builder)
        except (GraphError, SymbpError):  # reported when the line is compiled
            return None
        got = () if isinstance(result, sp.Basic) else tuple(builder.nodes[result].shape)
        want = self.shapes[self.names[v]]
        if got == want:
            return None
        rhs = ast.get_source_segment(self.reader.text, stmt.value)
        return (f"d{self.names[v]} = {rhs} has shape {show(got)}, {self.names[v]} has shape "
                f"{show(want)}: a gradient has its value's shape")

    def _value(self, parsed, v: int, env: dict, number: int):
        stmt, names = parsed
        seed = "seed_" + self.names[v]
        f = self._compile(stmt, names, seed, self.shapes[self.names[v]])
        given = {n: env[n] for n in names}
        given[seed] = np.ones(self.shapes[self.names[v]])
        return np.asarray(_grad(f, given)[seed], dtype=np.float64)


def _grad(f, given: dict) -> dict:
    """``f.grad`` at ``given``, passed positionally (a value may be named ``out``)."""
    return f.grad(*(given[n] for n in f.inputs))


def _names(value: ast.expr) -> list[str]:
    """The names an expression reads, in order (not gate or module names)."""
    skip = {id(n.func) for n in ast.walk(value) if isinstance(n, ast.Call)}
    skip |= {id(n.value) for n in ast.walk(value) if isinstance(n, ast.Attribute)
             and isinstance(n.value, ast.Name) and n.value.id in MODULE_ALIASES}
    found = []
    for node in ast.walk(value):
        if isinstance(node, ast.Name) and id(node) not in skip and node.id not in found:
            found.append(node.id)
    return found


def check_function(f, given: dict) -> LocalReport:
    """``f.check(...)``: each generated backward line's local derivative at the point."""
    if f.request is None:
        raise SymbpError("this Function was not made by symbp.compile: nothing to check")
    if any(s for _, s, _ in f.signature):
        raise SymbpError("check_function checks scalar functions; symbp.checkarrays arrays")
    expr, inputs, shapes, _ = f.request
    graph = parse(expr, inputs, shapes)
    names = value_names(graph)
    grads = gradient_names(names)
    wrt = tuple(graph.inputs[graph.input_names.index(w)] for w in f.wrt)
    program = sweep(graph, names, grads, wrt)
    values = {}
    for name in f.inputs:
        value = given[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SymbpError(f"{name} must be a real number, got {type(value).__name__}")
        values[name] = float(value)
    for s in program.forward:
        if isinstance(s, Assign):
            values[s.target] = _evaluate(s.value, values, f"the forward line {s.target}")
    found = []
    for s in program.backward:
        if not isinstance(s, Accumulate):
            continue
        a, k = grads.index(s.target), (graph.output if s.upstream is None
                                       else grads.index(s.upstream))
        node = graph.nodes[k]
        value = _evaluate(s.local, values, f"the local derivative of {s.target}")
        numeric = _central(node, [names[b] for b in node.args], node.args.index(a), values)
        error = abs(value - numeric) / max(abs(numeric), 1e-300) if value != numeric else 0.0
        found.append(Local(f"{statement(_PRINT, s)}  # {s.comment}", _PRINT.doprint(s.local),
                           value, numeric, error))
    found.sort(key=lambda x: -x.error)
    return LocalReport(tuple(found))


def step_scale(x) -> float:
    """A central difference's step is ``1e-20`` times this: ``|x|`` (at least 1), or ``|x|``
    itself for a small nonzero x, so that ``x - h`` keeps its sign (log, ``x**y`` at 1e-300);
    1 at 0 (a kink there is seen from both sides)."""
    x = abs(float(x))
    return x if 0 < x < 1 else max(1.0, x)


def central_digits(args, p: int, digits: int = 50) -> int:
    """The digits a central difference of step ``1e-20 * step_scale(x_p)`` needs: ``digits``,
    more when another input dwarfs ``x_p`` (1e100 + b resolves b's step in 155 digits)."""
    top = max([1.0] + [abs(float(v)) for v in args])
    return digits + max(0, math.ceil(math.log10(top / step_scale(args[p]))))


def _central(node, args: list[str], p: int, values: dict, digits: int = 50) -> float:
    """d node / d its p-th input by a central difference in ``digits``-digit arithmetic (more
    when another input dwarfs this one: :func:`central_digits`)."""
    # 3 digits more: the difference at h/10, extrapolated, keeps those of one at h
    digits = central_digits([values[n] for n in args], p, digits) + 3
    x = [sp.Float(values[n], digits) for n in args]
    h = sp.Float(10, digits) ** -20 * sp.Float(step_scale(values[args[p]]), digits)

    def at(shift):
        point = list(x)
        point[p] += shift
        return node.formula.xreplace({placeholder(q): point[q] for q in range(len(x))})

    def difference(step):
        up, down = at(step), at(-step)
        if not _real(down) and _real(up):  # at the domain's edge (x**2.5 at 0): one-sided
            return ((up - at(0)) / step).evalf(digits), 1
        if not _real(up) and _real(down):
            return ((at(0) - down) / step).evalf(digits), 1
        return ((up - down) / (2 * step)).evalf(digits), 2

    # at h and h/10, extrapolated: the difference's own error (h**2 times the third
    # derivative over 6: 1e-40 for x**3 at 0, where the derivative is 0) cancels
    (coarse, order), (fine, _) = difference(h), difference(h / 10)
    if not (_real(coarse) and _real(fine)):  # complex on both sides
        return math.nan
    value = (10 ** order * fine - coarse) / (10 ** order - 1)
    noise = sp.Float(10, digits) ** (3 - digits) * max(abs(coarse), 10 ** order * abs(fine))
    return 0.0 if abs(value) <= noise else float(value)  # 0 within the extrapolation's rounding


def _real(value: sp.Expr) -> bool:
    return bool(value.evalf(15).is_extended_real)
