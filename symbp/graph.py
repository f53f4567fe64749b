"""The IR: a computation graph of gates, in topological order, built deterministically.

A node's ``formula`` is its forward computation over positional placeholders ``_a0, _a1, ...``
that stand for the nodes in ``args`` (constant operands are already inside the formula). Nodes
are appended after their arguments, so the tuple order is a topological order, and the same
input always builds the same graph (tuples and dicts in insertion order, no sets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .errors import ParseError
from .gates import GATES, Gate, placeholder
from .names import MAX_GATES
from .names import names as checked_names
from .shapes import Ints, Shape, broadcast, show

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
        """For each node, whether a gradient flows from it to any of ``sources``: whether its
        value depends on them, not counting the inputs of an array gate that are labels or
        read for their shape only (``onehot(y, z)`` is constant in ``z``)."""
        flags = [False] * len(self.nodes)
        for s in sources:
            flags[s] = True
        for k, node in enumerate(self.nodes):
            gate = GATES.get(node.gate)
            skip = (gate.array.labels + gate.array.shape_only
                    if gate is not None and gate.array is not None else ())
            flags[k] = flags[k] or any(flags[a] for p, a in enumerate(node.args)
                                       if p not in skip)
        return tuple(flags)


class GraphBuilder:
    """Appends nodes while a parser walks an expression; shares repeated subexpressions.

    ``check(what, formula, arity)`` vets every formula before it becomes a node (the parser
    passes the derive stage's check that its local derivatives are finite: this IR imports no
    stage above it). ``declared`` names go through the identifier check of :mod:`symbp.names`.
    """

    def __init__(self, declared: list[str] | None = None, shapes: dict | None = None,
                 check: Callable[[str, sp.Expr, int], None] | None = None) -> None:
        self.shapes = dict(shapes or {})
        self.nodes: list[Node] = []
        self.by_name: dict[str, int] = {}
        self.shared: dict[tuple, int] = {}
        self.check = check or (lambda what, formula, arity: None)
        self.declared = (checked_names(declared, "inputs", ParseError)
                         if declared is not None else None)
        if self.declared is not None:
            unknown = [n for n in self.shapes if n not in self.declared]
            if unknown:
                raise ParseError(f"shapes names {', '.join(map(repr, unknown))}, not an input "
                                 f"(inputs: {', '.join(self.declared) or '(none)'})")

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
        self.check(gate.name, formula, len(args))
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
                takers = ", ".join(g.name for g in GATES.values()
                                   if g.array is not None and g.array.labels)
                raise GraphError(f"{self.nodes[o].name!r} holds integer labels; only "
                                 f"{takers} take labels")
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
        self.check("this line", formula, len(args))
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
        unknown = [n for n in self.shapes if n not in order]
        if unknown:
            error = ParseError(f"shapes names {', '.join(map(repr, unknown))}, not an input of "
                               f"the expression (inputs: {', '.join(order)})")
            error.unknown_shapes, error.inputs = tuple(unknown), tuple(order)  # for the CLI
            raise error
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
