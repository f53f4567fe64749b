"""The IR: a computation graph of gates, in topological order, built deterministically.

A node's ``formula`` is its forward computation over positional placeholders ``_a0, _a1, ...``
that stand for the nodes in ``args`` (constant operands are already inside the formula). Nodes
are appended after their arguments, so the tuple order is a topological order, and the same
input always builds the same graph (tuples and dicts in insertion order, no sets).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import sympy as sp

from .derive import local_derivatives, placeholder
from .errors import ParseError
from .gates import GATES, Gate, callable_gates
from .shapes import Ints, Shape, broadcast, show

MAX_GATES = 2000
"""Most gates in one program (Numba's compile time grows faster than the source)."""

Pos = tuple[int, int]


class GraphError(ValueError):
    """A problem found while building; the parser turns it into a ParseError with position."""


@dataclass(frozen=True)
class Node:
    """One value: an input (``gate == "input"``), a table gate, or a staged line (``"line"``)."""

    gate: str
    args: tuple[int, ...]
    formula: sp.Expr | None
    name: str | None
    pos: Pos = (1, 0)
    operands: tuple = ()  # the gate's operands: node indices and constants, for naming
    shape: Shape = ()  # () for a scalar
    integer: bool = False  # integer labels (inputs declared with symbp.ints)
    params: tuple = ()  # parameters of an array gate (axis)


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order, the input nodes in call order, and the output node."""

    nodes: tuple[Node, ...]
    inputs: tuple[int, ...]
    output: int

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.nodes[i].name for i in self.inputs)

    def consumers(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """For each node, the (consumer, argument position) pairs that use it."""
        uses: list[list[tuple[int, int]]] = [[] for _ in self.nodes]
        for k, node in enumerate(self.nodes):
            for pos, arg in enumerate(node.args):
                uses[arg].append((k, pos))
        return tuple(tuple(u) for u in uses)

    def depends_on(self, sources: tuple[int, ...]) -> tuple[bool, ...]:
        """For each node, whether its value depends on any of ``sources``."""
        flags = [False] * len(self.nodes)
        for s in sources:
            flags[s] = True
        for k, node in enumerate(self.nodes):
            flags[k] = flags[k] or any(flags[a] for a in node.args)
        return tuple(flags)


def _check_derivatives(what: str, formula: sp.Expr, arity: int) -> None:
    """Refuse a gate whose local derivative is not a finite real formula (``0**x``, ``(-2)**x``)."""
    for d in local_derivatives(formula, arity):
        if d.has(sp.nan, sp.zoo, sp.oo, -sp.oo, sp.I):
            raise GraphError(f"the local derivative of {what} is not a finite real number "
                             f"({sp.sstr(d)}); rewrite the expression")


class GraphBuilder:
    """Appends nodes while a parser walks an expression; shares repeated subexpressions."""

    def __init__(self, declared: list[str] | None = None, shapes: dict | None = None) -> None:
        self.shapes = dict(shapes or {})
        self.nodes: list[Node] = []
        self.by_name: dict[str, int] = {}
        self.shared: dict[tuple, int] = {}
        self.declared = list(declared) if declared is not None else None
        if self.declared is not None:
            from .parse import check_name

            for name in self.declared:
                check_name(name, lambda m: ParseError(f"inputs: {m}"))

    def _add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def check_input(self, name: str) -> None:
        """Raise GraphError if ``name`` is neither known nor allowed as a new input."""
        if name not in self.by_name and self.declared is not None and name not in self.declared:
            raise GraphError(f"unknown name {name!r}; declared inputs: "
                             f"{', '.join(self.declared) or '(none)'}")

    def name(self, name: str, pos: Pos) -> int:
        if name in self.by_name:
            return self.by_name[name]
        if self.declared is not None and name not in self.declared:
            raise GraphError(f"unknown name {name!r}; declared inputs: "
                             f"{', '.join(self.declared) or '(none)'}")
        declared = self.shapes.get(name, ())
        integer = isinstance(declared, Ints)
        shape = declared.shape if integer else declared
        self.by_name[name] = self._add(Node("input", (), None, name, pos, shape=shape,
                                            integer=integer))
        return self.by_name[name]

    def apply(self, gate: Gate, operands: list, params: tuple, pos: Pos) -> int | sp.Number:
        # tagged, since SymPy's Integer(2) == 2 would make a constant look like node 2
        key = (gate.name, tuple(("node", o) if isinstance(o, int) else ("const", sp.srepr(o))
                                for o in operands), tuple(sp.srepr(p) for p in params))
        if key in self.shared:
            return self.shared[key]
        args = tuple(o for o in operands if not isinstance(o, sp.Basic))
        shape = self._shape(gate, operands, params)
        if gate.array is not None:
            if len(args) != len(operands):
                raise GraphError(f"{gate.name} needs array inputs, not constants")
            index = self._add(Node(gate.name, args, None, None, pos, tuple(operands), shape,
                                   params=params))
            self.shared[key] = index
            return index
        symbols = iter(placeholder(k) for k in range(len(args)))
        formula = gate.apply(*[o if isinstance(o, sp.Basic) else next(symbols) for o in operands],
                             *params)
        if formula.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            raise GraphError(f"{gate.name} with these constant operands has no finite value "
                             "(division by zero?)")
        if formula.is_Symbol and gate.name != "identity":  # x * 1, x + 0
            return args[int(formula.name[2:])]
        _check_derivatives(gate.name, formula, len(args))
        if len(self.nodes) >= MAX_GATES:
            raise GraphError(f"the expression has more than {MAX_GATES} gates; split it or "
                             "simplify it")
        index = self._add(Node(gate.name, args, formula, None, pos, tuple(operands), shape))
        self.shared[key] = index
        return index

    def _shape(self, gate: Gate, operands: list, params: tuple) -> Shape:
        """The output shape of ``gate`` on ``operands``; GraphError naming both shapes."""
        shapes = [self.nodes[o].shape if isinstance(o, int) else () for o in operands]
        labels = gate.array.labels if gate.array is not None else ()
        for k, o in enumerate(operands):
            is_int = isinstance(o, int) and self.nodes[o].integer
            if is_int and k not in labels:
                raise GraphError(f"{self.nodes[o].name!r} holds integer labels; only "
                                 "softmax_cross_entropy and hinge take labels")
            if k in labels and not is_int:
                raise GraphError(f"{gate.name} takes integer labels as input {k + 1}: declare "
                                 "them with symbp.ints(shape)")
        try:
            if gate.array is not None:
                names = [n for n, _ in gate.params]
                return gate.array.shape(shapes, dict(zip(names, params)))
            return broadcast(shapes)[0] if shapes else ()
        except ValueError as exc:
            raise GraphError(f"{gate.name}: {exc}") from None

    def line(self, name: str | None, expr: sp.Expr, used: list[str], pos: Pos) -> int:
        """A staged line: one gate whose formula is the line's right side."""
        args = tuple(self.name(u, pos) for u in used)
        formula = expr.xreplace({sp.Symbol(u, real=True): placeholder(k)
                                 for k, u in enumerate(used)})
        _check_derivatives("this line", formula, len(args))
        shape = self._shape(GATES["identity"], list(args), ()) if len(args) == 1 else \
            self._shape(GATES["add"], list(args), ()) if args else ()
        index = self._add(Node("line", args, formula, name, pos, args, shape))
        if name is not None:
            self.by_name[name] = index
        return index

    def name_result(self, result, name: str | None, pos: Pos) -> int:
        """Give a staged line's name to the node computing it (an identity gate if that node
        already has a name, being an input or another line)."""
        if isinstance(result, sp.Basic):
            raise GraphError("this line is a constant")
        if self.nodes[result].name is not None or self.nodes[result].gate == "input":
            result = self._add(Node("identity", (result,), placeholder(0), None, pos, (result,),
                                    self.nodes[result].shape))
        node = self.nodes[result]
        self.nodes[result] = Node(node.gate, node.args, node.formula, name, node.pos,
                                  node.operands, node.shape, node.integer, node.params)
        self.shared = {k: v for k, v in self.shared.items() if v != result}  # named: not shared
        if name is not None:
            self.by_name[name] = result
        return result

    def finish(self, result, pos: Pos) -> int:
        """The output node of a single expression (an input alone gets an identity gate)."""
        if isinstance(result, sp.Basic):
            raise GraphError("the expression is a constant; there is nothing to differentiate")
        if self.nodes[result].shape != ():
            raise GraphError(f"the output has shape {show(self.nodes[result].shape)}; a "
                             "gradient needs a scalar output: wrap it in sum(...) or mean(...)")
        if self.nodes[result].gate == "input":
            return self.apply(GATES["identity"], [result], (), pos)
        return result

    def unused_lines(self, output: int) -> list[str]:
        keep = self._ancestors(output)
        return [n.name or "?" for k, n in enumerate(self.nodes)
                if n.gate == "line" and not keep[k]]

    def _ancestors(self, output: int) -> list[bool]:
        keep = [False] * len(self.nodes)
        keep[output] = True
        for k in range(output, -1, -1):
            if keep[k]:
                for a in self.nodes[k].args:
                    keep[a] = True
        return keep

    def graph(self, output: int, fail) -> Graph:
        """The finished graph: nodes the output does not use are dropped, inputs ordered."""
        used_inputs = [n.name for n in self.nodes if n.gate == "input"]
        order = self.declared if self.declared is not None else used_inputs
        if len(set(order)) != len(order):
            raise fail(f"inputs listed twice: {order}")
        for name in order:
            if name not in self.by_name:
                self.name(name, (1, 0))
            elif self.nodes[self.by_name[name]].gate != "input":
                raise fail(f"{name!r} is assigned by a staged line, so it is not an input")
        if not order:
            raise fail("the expression uses no input; there is nothing to differentiate")
        keep = self._ancestors(output)
        for name in order:
            keep[self.by_name[name]] = True
        index, nodes = {}, []
        for k, node in enumerate(self.nodes):
            if keep[k]:
                index[k] = len(nodes)
                nodes.append(Node(node.gate, tuple(index[a] for a in node.args), node.formula,
                                  node.name, node.pos,
                                  tuple(index[o] if isinstance(o, int) else o
                                        for o in node.operands),
                                  node.shape, node.integer, node.params))
        return Graph(tuple(nodes), tuple(index[self.by_name[n]] for n in order), index[output])


def from_sympy(expr: sp.Basic, inputs: list[str] | None = None) -> Graph:
    """Split a SymPy expression into primitive gates (walked without recursion)."""
    from .parse import MAX_INT, check_name, number

    if not isinstance(expr, sp.Expr):
        raise ParseError(f"expected a SymPy expression, got {type(expr).__name__}")
    names = sorted(str(s) for s in expr.free_symbols)
    for n in names:
        check_name(n, ParseError)
        if unicodedata.normalize("NFKC", n) != n:  # Python would read it as another name
            raise ParseError(f"SymPy symbol {n!r} is not in normal form (NFKC: "
                             f"{unicodedata.normalize('NFKC', n)!r})")
    builder = GraphBuilder(declared=inputs if inputs is not None else names)

    simple = {sp.exp: "exp", sp.log: "log", sp.sin: "sin", sp.cos: "cos", sp.tanh: "tanh",
              sp.Abs: "abs"}

    def children(e: sp.Expr) -> list[sp.Expr]:
        supported = (e.is_Symbol or e.is_Number or e.is_NumberSymbol or e.is_Add or e.is_Mul
                     or e.is_Pow or e.func in simple or e.func in (sp.Max, sp.Min)
                     or hasattr(type(e), "symbp_gate"))
        if not supported or (e.func in simple and len(e.args) != 1):
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
                value = float(gate.formula(*[sp.Float(o) for o in operands], *params))
                if not math.isfinite(value):
                    raise ParseError(f"constant {gate.name} has no finite real value")
                return number(value)
            return builder.apply(gate, operands, params, (1, 0))

        if e.is_Symbol:
            return builder.name(str(e), (1, 0))
        if e.is_Integer and abs(int(e)) <= MAX_INT:
            return sp.Integer(e)
        if e.is_Number or e.is_NumberSymbol:
            value = float(e)
            if not math.isfinite(value):
                raise ParseError(f"SymPy constant {e} is not a finite real number")
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
        if e.func in simple:
            return _apply(simple[e.func], vals)
        return chain("max" if e.func is sp.Max else "min", vals)

    try:
        results: dict[int, object] = {}
        alive: list[sp.Expr] = []  # keeps every visited object alive, so ids stay unique
        stack: list[tuple[sp.Expr, list | None]] = [(expr, None)]
        while stack:
            e, kids = stack.pop()
            if kids is None:
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
