"""Check backpropagation line by line: a hand-written backward pass, or symbp's own.

:func:`check` reads a user's staged forward pass followed by their backward pass in the CS231n
notes' style (``dnum = invden``, ``dx += (1) * dnum``), derives symbp's own local derivatives
from the forward lines and runs both at one point. Each backward line is taken as the
contribution of the forward lines whose gradients it reads (``dx = (1) * dxpy`` is ``xpy``'s
contribution to ``dx``; a line that reads no gradient is the output's contribution), so every
line is judged on its own: its value against symbp's local derivative times the gradients it
read. A line whose own formula is right but whose inputs are wrong is marked as following the
first wrong line. Contributions never written are reported at the end: a missing ``+=`` at a
fork is named as such.

:func:`check_function` (``Function.check``) compares each generated backward line's local
derivative, evaluated in float64, with a central difference of its forward line in 50-digit
arithmetic, worst first: a precision loss or a kink shows on the line where it happens.

Everything is scalar for now, and nothing runs user text: the backward lines are read by the
parser's whitelist into SymPy expressions and evaluated by substituting numbers.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

import sympy as sp

from .derive import OUT, local_derivatives, placeholder
from .emit import SourcePrinter, statement
from .errors import SymbpError
from .graph import GraphError
from .naming import gradient_names, value_names
from .parse import _Reader, _SympyBuilder, parse
from .reverse import sweep
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
    ``fork`` when the variable gets other contributions (the missing ``+=`` at a fork)."""

    variable: str
    line: int
    text: str
    suggestion: str
    fork: bool


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
            return f"backward pass is right: {len(self.lines)} lines agree with symbp's"
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
            out.append(f"    {line.message}")
            out.append(f"    {line.variable} = {_num(line.found)}, expected "
                       f"{_num(line.expected)}; symbp's local derivative: {line.local}")
        for m in self.missing:
            what = ("missing += at a fork" if m.fork else "never computed")
            out.append(f"{m.variable}: {what}: no line adds the gradient from line {m.line} "
                       f"({m.text}); write {m.suggestion}")
        return "\n".join(out)


@dataclass(frozen=True)
class Local:
    """One generated backward line of :func:`check_function`: ``line`` as generated, its local
    derivative ``local`` and its ``value`` in float64, the central difference ``numeric`` of its
    forward line (50 digits) and their relative difference ``error``."""

    line: str
    local: str
    value: float
    numeric: float
    error: float


@dataclass(frozen=True)
class LocalReport:
    """The generated backward lines, worst first."""

    lines: tuple[Local, ...]

    def __str__(self) -> str:
        rows = [f"{x.error:10.2e}  {x.line}\n{'':12}local {x.local} = {x.value:.17g}; central "
                f"difference {x.numeric:.17g}" for x in self.lines]
        return "\n".join(["rel. error  generated backward line (worst first)"] + rows)


def _num(value: float | None) -> str:
    return "(not computed)" if value is None else f"{value:.12g}"


def _close(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) <= max(RTOL * max(abs(a), abs(b)), 1e-300)


def _evaluate(expr: sp.Expr, values: dict, where: str) -> float:
    """``expr`` at ``values`` (name -> float), in floating point; SymbpError if not finite."""
    number = expr.xreplace({s: sp.Float(values[s.name]) for s in expr.free_symbols})
    try:
        result = float(number)
    except (TypeError, ValueError, OverflowError):
        result = math.nan
    if not math.isfinite(result):
        raise SymbpError(f"{where} has no finite value at this point")
    return result


def _point(at, names: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(at, dict):
        raise SymbpError(f"at must be a dict name -> number, got {type(at).__name__}")
    unknown = [n for n in at if n not in names]
    missing = [n for n in names if n not in at]
    if unknown or missing:
        raise SymbpError(f"at must give every input of the forward pass ({', '.join(names)}): "
                         + "; ".join(filter(None, [unknown and f"unknown {', '.join(unknown)}",
                                                   missing and f"missing {', '.join(missing)}"])))
    point = {}
    for name in names:
        value = at[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise SymbpError(f"at[{name!r}] must be a finite real number, got {value!r}")
        point[name] = float(value)
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


def check(source: str, *, at: dict, inputs=None, shapes=None) -> Report:
    """Check a hand-written backward pass against symbp's, line by line.

    Parameters
    ----------
    source : str
        Staged forward lines (``name = expr``, the last one the output), then the backward
        lines, ``dname = expr`` or ``dname += expr``. The backward pass starts at the first
        ``+=`` or the first line assigning ``d<name>`` for a name already used. Each backward
        line gives one forward line's contribution to one gradient: it reads that line's
        gradient (``dx = (1) * dxpy``), or none for the output line (``dnum = invden``).
    at : dict
        The point: a number for every input of the forward pass.
    inputs : sequence of str, optional
        The forward pass's inputs (as in :func:`symbp.compile`).
    shapes : dict, optional
        Not supported yet: array code is refused with a SymbpError.

    Returns
    -------
    Report
        ``.ok``, ``.first_wrong_line``, ``.lines`` (every backward line, in order) and
        ``.missing`` (contributions never written); ``print(report)`` shows the problems.

    Raises
    ------
    SymbpError
        ``ParseError`` (with a caret) for a line the safe parser refuses, an unknown name or a
        backward target that is no forward value's gradient; SymbpError for a bad point or a
        value that is not finite.
    """
    if shapes:
        raise SymbpError("check handles scalar code only for now; shapes are not supported")
    if not isinstance(source, str):
        raise SymbpError(f"source must be a string, got {type(source).__name__}")
    reader = _Reader(source)
    body = reader.statements()
    start = _backward_start(body, inputs)
    if start is None:
        raise SymbpError("no backward pass found: it starts at the first line assigning "
                         "d<name> for a forward value (dnum = ...) or at the first +=")
    if start == 0:
        raise reader.error("the backward pass needs a forward pass before it", body[0])
    text = reader.text.splitlines()
    graph = parse("\n".join(text[:body[start].lineno - 1]),
                  list(inputs) if inputs is not None else None)
    return _Checker(graph, reader, text, _point(at, graph.input_names)).run(body[start:])


class _Checker:
    """The forward values, symbp's local derivatives and gradients, and the user's lines."""

    def __init__(self, graph, reader: _Reader, text: list[str], point: dict) -> None:
        self.graph, self.reader, self.text = graph, reader, text
        self.index = {}
        for k, node in enumerate(graph.nodes):
            if node.shape != ():
                raise SymbpError("check handles scalar code only for now")
            if node.name is None:
                raise SymbpError("check needs every forward line named (name = expression)")
            self.index[node.name] = k
        self.names = tuple(n.name for n in graph.nodes)
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
        self.grad = [0.0] * len(graph.nodes)  # symbp's: the whole gradient of each value
        self.grad[graph.output] = 1.0
        for k in range(len(graph.nodes) - 1, -1, -1):
            for a in graph.nodes[k].args:
                self.grad[a] += self._local(k, a) * self.grad[k]

    def _local(self, consumer: int, node: int) -> float:
        if (consumer, node) not in self.local:
            return 0.0
        return _evaluate(self.local[consumer, node], self.values, "a local derivative")

    def _code(self, k: int) -> str:
        """Forward line ``k`` as written, without its comment."""
        return self.text[self.graph.nodes[k].pos[0] - 1].split("#")[0].strip()

    def _where(self, k: int) -> str:
        return f"line {self.graph.nodes[k].pos[0]} ({self._code(k)})"

    def _gradient_of(self, name: str) -> str | None:
        """The value whose gradient ``name`` is, or None."""
        if name in self.index or not name.startswith("d"):
            return None
        return name[1:] if name[1:] in self.index else None

    def _read(self, stmt) -> tuple[str, sp.Expr, list[str]]:
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
                          f"({', '.join('d' + n for n in self.names)})", target)
        r.check_line(stmt)

        def known(name: str) -> None:
            if name not in self.index and self._gradient_of(name) is None:
                raise GraphError(f"unknown name {name!r}: a backward line reads forward values "
                                 "and their gradients d<name>")

        builder = _SympyBuilder(on_name=known)
        expr = sp.sympify(r.expression(stmt.value, builder))
        return target.id, expr, [n for n in builder.names if self._gradient_of(n)]

    def run(self, backward: list[ast.stmt]) -> Report:
        parsed = [self._read(stmt) for stmt in backward]
        user: dict[str, float] = {}  # the user's gradients so far
        written: dict[str, int] = {}  # gradient -> line that first assigned it
        covered: dict[int, dict[int, int]] = {k: {} for k in range(len(self.names))}
        cause: dict[str, int] = {}  # gradient -> the wrong line it depends on
        output = self.graph.output
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
                if (u, v) not in self.local:
                    problems.append(f"{self.names[v]} is not an input of {self._where(u)}, so "
                                    f"{'d' + self.names[u]} passes it no gradient")
                elif u in covered[v]:
                    problems.append(f"the gradient from {self._where(u)} was already added to "
                                    f"{dv} on line {covered[v][u]}")
            if isinstance(stmt, ast.AugAssign) and dv not in user:
                problems.append(f"adds to {dv} before any line assigns it (a NameError in "
                                "Python): the first contribution is '=', later ones '+='")
            if isinstance(stmt, ast.Assign) and dv in user:
                problems.append(f"overwrites {dv} from line {written[dv]}: "
                                f"{self.names[v]} is used on several lines (a fork), so its "
                                "gradients add up: write +=")
            upstream = {g: user.get(g, 1.0 if g == out else math.nan) for g in reads}
            upstream = {g: None if math.isnan(u) else u for g, u in upstream.items()}
            env = dict(self.values)
            env.update(upstream)
            found = None if None in upstream.values() else _evaluate(expr, env, f"line {number}")
            if v == output:
                own, local_text = 1.0, "1 (the output's own gradient)"
            else:
                own = None if found is None else sum(
                    self._local(u, v) * upstream.get("d" + self.names[u], 1.0)
                    for u in sources)
                local_text = ", ".join(
                    f"d{self.names[u]}/d{self.names[v]} = "
                    f"{_PRINT.doprint(self.local.get((u, v), sp.Integer(0)))}" for u in sources)
            if not problems and found is not None and not _close(found, own):
                problems.append(f"wrong local derivative: this line's term is {found:.12g}, "
                                f"symbp's is {own:.12g}")
            for u in sources:
                covered[v].setdefault(u, number)
            if found is None:
                user[dv] = math.nan
            else:
                user[dv] = found + (user.get(dv, 0.0) if isinstance(stmt, ast.AugAssign) else 0.0)
            written.setdefault(dv, number)
            expected = 1.0 if v == output else sum(self._local(u, v) * self.grad[u]
                                                   for u in covered[v])
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
            lines.append(Line(number, self.text[number - 1].strip(), dv, status,
                              None if found is None else user[dv], expected, local_text,
                              "; ".join(problems), origin if status == "follows" else None))
        return Report(tuple(lines), tuple(self._missing(covered)))

    def _missing(self, covered: dict) -> list[Missing]:
        found = []
        suggested = set()  # gradients given a first (=) contribution here
        for u in range(len(self.names) - 1, -1, -1):  # the backward order
            for v in self.graph.nodes[u].args:
                if u in covered[v] or self.local[u, v] == 0:
                    continue
                local = self.local[u, v]
                factor = "" if local == 1 else f"{_PRINT.parenthesize(local, 50)} * "
                upstream = "d" + self.names[u] if u != self.graph.output else ""
                value = (factor + upstream).rstrip(" *") or "1.0"
                op = "+=" if covered[v] or v in suggested else "="
                suggested.add(v)
                found.append(Missing("d" + self.names[v], self.graph.nodes[u].pos[0],
                                     self._code(u),
                                     f"d{self.names[v]} {op} {value}", bool(covered[v])))
        return found


def check_function(f, given: dict) -> LocalReport:
    """``f.check(...)``: each generated backward line's local derivative at the point."""
    expr, inputs, shapes, _ = f.request
    if shapes or any(s for _, s, _ in f.signature):
        raise SymbpError("Function.check handles scalar functions only for now")
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


def _central(node, args: list[str], p: int, values: dict, digits: int = 50) -> float:
    """d node / d its p-th input by a central difference in ``digits``-digit arithmetic."""
    x = [sp.Float(values[n], digits) for n in args]
    h = sp.Float(10, digits) ** -20 * max(1, abs(x[p]))

    def at(shift):
        point = list(x)
        point[p] += shift
        return node.formula.xreplace({placeholder(q): point[q] for q in range(len(x))})

    return float(((at(h) - at(-h)) / (2 * h)).evalf(digits))
