"""Circuit diagrams: the computation graph drawn as the CS231n notes draw it.

Every gate is a node and every wire an edge, inputs on the left and the output on the right.
At a given point each edge carries the forward value (green, above) and the gradient flowing
back along it (red, below). A value used by several gates first runs into a small fork point:
the wire before the fork carries its whole gradient, the sum of what the branches send back
(gradients add at a fork), and each scalar branch is labelled with its share. Fused gates
(``sigmoid``, a custom gate, a staged line) are one node; an expression written in primitives
(``1/(1 + exp(-x))``) is split into them.

The numbers are read from the generated code itself: the pure-Python twin of the compiled
function runs once while a profile hook copies its local variables on return, so the diagram
shows exactly the intermediates and gradients that ``print(f.source)`` names. (A branch's share
is not a variable of the code, which accumulates with ``+=``: it is the consumer's local
derivative, the one the sweep emitted, evaluated at those values.)
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from . import jit as _jit
from .derive import OUT, local_derivatives, placeholder
from .errors import CallError, SymbpError
from .gates import custom_signature
from .naming import KERNEL_NAME, gradient_names, value_names
from .parse import parse
from .shapes import show

if TYPE_CHECKING:  # pragma: no cover
    from .function import Function

VALUE_COLOR = "#1a7f37"  # green, as the notes draw forward values
GRADIENT_COLOR = "#cf222e"  # red, as they draw gradients
NAME_COLOR = "#57606a"  # grey: the value's name in the generated code, under each gate
MAX_SHOWN_ELEMENTS = 16
"""Largest array whose elements ``values=True`` writes on an edge (larger ones show a shape)."""

INSTALL_COMMANDS = ("apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
                    "conda install graphviz or https://graphviz.org/download/")
INSTALL_GRAPHVIZ = (f"rendering needs the Graphviz program `dot`, which is not installed: "
                    f"{INSTALL_COMMANDS}. The DOT text is available without it: `.source`.")
INSTALL_PACKAGE = ('circuit diagrams need the graphviz Python package: '
                   'pip install "symbp[draw]" (or pip install graphviz)')

# How the notes label a gate; a constant operand is written into the label (`+1`, `*-1`, `1/x`).
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}
_OUTPUT = "output value"  # node ids with a space never clash with a generated name


def _called(signature: list, expr) -> list:
    """The entries of a custom-gate signature whose gate ``expr`` calls (by name): gates the
    expression does not call may change without changing its graph."""
    text = expr if isinstance(expr, str) else sp.srepr(expr)
    return [g for g in signature if re.search(rf"\b{re.escape(g[0])}\b", text)]


def draw(f: Function, inputs: dict, values: bool = False, digits: int = 4, /):
    """The circuit diagram of ``f`` at ``inputs`` (a dict; empty: the structure only); see
    :meth:`symbp.Function.draw`."""
    graphviz = _graphviz()
    if not isinstance(digits, int) or isinstance(digits, bool) or not 1 <= digits <= 17:
        raise SymbpError(f"digits must be an int from 1 to 17, got {digits!r}")
    expr, order, shapes, custom = f.request
    if _called(custom, expr) != _called(custom_signature(), expr):  # the graph is parsed
        raise SymbpError("a custom gate this function calls was defined again since it was "
                         "compiled: compile it again to draw it")  # again, with today's table
    graph = parse(expr, order, shapes)
    names = value_names(graph)
    grads = gradient_names(names)
    at = _trace(f, inputs) if inputs else None
    needed = graph.depends_on(tuple(i for i in graph.inputs if graph.nodes[i].name in f.wrt))

    dot = _circuit_class(graphviz)(
        name="circuit", graph_attr={"rankdir": "LR", "nodesep": "0.35", "ranksep": "0.45",
                                    "fontname": "Helvetica"},
        node_attr={"fontname": "Helvetica", "fontsize": "12"},
        edge_attr={"fontname": "Helvetica", "fontsize": "10", "arrowsize": "0.6"})
    dot.comment = f"symbp circuit of {names[graph.output]}({', '.join(f.inputs)})"

    def wire(k: int) -> dict:
        """The edge label of node ``k``'s value: its value above, its gradient below."""
        if at is None and not graph.nodes[k].shape:
            return {}
        value = at.get(names[k]) if at else None
        shape = _shape_text(graph.nodes[k].shape, value)
        rows = [(VALUE_COLOR, shape if value is None else _number(value, digits, values))]
        if needed[k]:
            grad = 1.0 if k == graph.output else (at.get(grads[k]) if at else None)
            rows.append((GRADIENT_COLOR,
                         _number(grad, digits, values) if grad is not None else shape))
        text = "<br/>".join(f'<font color="{c}">{html.escape(t)}</font>'.replace("\n", "<br/>")
                            for c, t in rows if t)
        return {"label": f"<{text}>"} if text else {}

    with dot.subgraph(name="inputs", graph_attr={"rank": "source"}) as left:
        for i in graph.inputs:
            node = graph.nodes[i]
            label = names[i] + (f" {show(node.shape)}" if node.shape else "")
            left.node(names[i], label=label, shape="plaintext", fontsize="14")
        for above, below in zip(graph.inputs, graph.inputs[1:]):  # top to bottom in call order
            left.edge(names[above], names[below], style="invis")
    uses = graph.consumers()
    for k, node in enumerate(graph.nodes):
        if node.gate != "input":
            label = _gate_label(graph, names, k)  # and the value's name, small, as in the source
            dot.node(names[k], label=f'<{html.escape(label)}<br/><font point-size="9" '
                     f'color="{NAME_COLOR}">{names[k]}</font>>',
                     shape="circle" if len(label) <= 3 and len(names[k]) <= 6 else "ellipse",
                     tooltip=f"{names[k]} = {_describe(graph, names, k)}")
        targets = [names[c] for c, _ in uses[k]] + ([_OUTPUT] if k == graph.output else [])
        if len(targets) > 1:  # a fork: the wire before it carries the whole gradient
            fork = f"{names[k]} fork"
            dot.node(fork, label="", shape="point", width="0.06")
            dot.edge(names[k], fork, arrowhead="none", **wire(k))
            for (consumer, position), target in zip(uses[k], targets):
                share = _branch(graph, names, grads, at, consumer, position) \
                    if at is not None and needed[k] and not graph.nodes[k].shape else None
                label = {} if share is None else {"label": f'<<font color="{GRADIENT_COLOR}">'
                                                           f'{_number(share, digits, False)}'
                                                           f'</font>>'}
                dot.edge(fork, target, **label)
        else:
            for target in targets:
                dot.edge(names[k], target, **wire(k))
    with dot.subgraph(name="output", graph_attr={"rank": "sink"}) as right:
        right.node(_OUTPUT, label=names[graph.output], shape="plaintext", fontsize="14")
    return dot


def render_needs_graphviz() -> bool:
    """Whether rendering (SVG, PNG, PDF) would fail for want of the Graphviz program."""
    return shutil.which("dot") is None


def _graphviz():
    try:
        import graphviz
    except ImportError:
        raise SymbpError(INSTALL_PACKAGE) from None
    return graphviz


_CIRCUIT = None


def _circuit_class(graphviz):
    """``graphviz.Digraph`` whose rendering says how to install Graphviz when ``dot`` is
    missing (and shows that hint, with the DOT text, in Jupyter instead of a traceback)."""
    global _CIRCUIT
    if _CIRCUIT is None:
        class Circuit(graphviz.Digraph):
            """A symbp circuit diagram: a :class:`graphviz.Digraph` (``.source`` is the DOT
            text; ``.render``, ``.pipe`` and Jupyter display need the Graphviz program)."""

            def pipe(self, *args, **kwargs):
                try:
                    return super().pipe(*args, **kwargs)
                except graphviz.ExecutableNotFound:
                    raise SymbpError(INSTALL_GRAPHVIZ) from None

            def render(self, *args, **kwargs):
                try:
                    return super().render(*args, **kwargs)
                except graphviz.ExecutableNotFound:
                    raise SymbpError(INSTALL_GRAPHVIZ) from None

            def _repr_svg_(self) -> str:
                return self.pipe(format="svg", encoding="utf-8")

            def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
                try:
                    return super()._repr_mimebundle_(include, exclude, **kwargs)
                except SymbpError as exc:
                    return {"text/plain": f"{exc}\n\n{self.source}"}

        _CIRCUIT = Circuit
    return _CIRCUIT


def _trace(f: Function, inputs: dict) -> dict:
    """Every named value and gradient of the generated code at ``inputs``.

    Runs the module's pure-Python functions (the same source Numba compiles) under a profile
    hook that copies the locals of each of its frames as the frame returns.
    """
    given = f._given((), inputs)
    if f._points_mode(given):
        raise CallError("draw() takes one point: give every input a single value")
    args = f._values(given)
    module = _jit.load(f.source)
    filename = module.__file__
    seen: dict = {}

    def profile(frame, event, arg):
        if event == "return" and frame.f_code.co_filename == filename:
            seen.update(frame.f_locals)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        getattr(module, KERNEL_NAME)(*args)
    except (ArithmeticError, ValueError, TypeError) as exc:  # Python's math raises where Numba
        raise CallError(f"cannot draw the values at this point: the generated code, run as "
                        f"Python to read its variables, fails with '{exc}' (the compiled "
                        f"kernel may return inf or nan here)") from None
    finally:
        sys.setprofile(previous)
    if any(isinstance(v, complex) for v in seen.values()):  # (-2)**0.5 in Python; NaN in Numba
        raise CallError("cannot draw the values at this point: run as Python, the generated code "
                        "gives a complex number (a negative base with a fractional exponent)")
    return seen


def _branch(graph, names, grads, at: dict, consumer: int, position: int) -> float | None:
    """What one branch of a fork sends back: the consumer's local derivative (the one the
    sweep uses, evaluated at the traced values) times the consumer's gradient."""
    node = graph.nodes[consumer]
    if node.formula is None or node.shape:
        return None
    local = local_derivatives(node.formula, len(node.args))[position]
    bind = {placeholder(p): sp.Float(float(at[names[a]])) for p, a in enumerate(node.args)}
    bind[OUT] = sp.Float(float(at[names[consumer]]))
    upstream = 1.0 if consumer == graph.output else at.get(grads[consumer])
    if upstream is None:
        return None
    try:
        return float(local.xreplace(bind).evalf()) * float(upstream)
    except TypeError:  # not a number here (a kink SymPy leaves symbolic)
        return None


def _number(value, digits: int, values: bool) -> str:
    """A scalar to ``digits`` significant digits; an array as its elements (small ones, when
    asked) or its shape."""
    if np.ndim(value) == 0:
        return f"{float(value):.{digits}g}"
    array = np.asarray(value)
    if values and array.size <= MAX_SHOWN_ELEMENTS:
        return np.array2string(array.astype(np.float64), separator=", ",
                               formatter={"float_kind": lambda v: f"{v:.{digits}g}"})
    return show(array.shape)


def _shape_text(declared: tuple, value) -> str:
    if value is not None and np.ndim(value) > 0:
        return show(np.shape(value))
    return show(declared) if declared else ""


def _operand_text(graph, names, operand) -> str:
    return names[operand] if isinstance(operand, int) else sp.sstr(operand)


def _gate_label(graph, names, k: int) -> str:
    """``+``, ``*-1``, ``+1``, ``1/x``, ``**2``, ``exp``, ``sum``; a staged line: its formula."""
    node = graph.nodes[k]
    if node.gate == "line":  # a staged line: its formula, or the gate it applies (`relu`)
        f, args = node.formula, tuple(placeholder(p) for p in range(len(node.args)))
        if isinstance(f, sp.Function) and f.args == args:
            return type(f).__name__
        if isinstance(f, (sp.Add, sp.Mul)) and len(args) > 1 and set(f.args) == set(args):
            return "+" if isinstance(f, sp.Add) else "*"
        return _describe(graph, names, k)
    if node.gate == "neg":
        return "*-1"
    constants = [(p, o) for p, o in enumerate(node.operands) if not isinstance(o, int)]
    symbol = _SYMBOLS.get(node.gate)
    if symbol is None:  # a named gate: constant operands and parameters in the call
        if not constants and not any(p is not None for p in node.params):
            return node.gate
        inside = [("·" if isinstance(o, int) else _constant(o)) for o in node.operands]
        inside += [str(p) for p in node.params if p is not None]
        return f"{node.gate}({', '.join(inside)})"
    if not constants:
        return symbol
    (position, constant), = constants[:1]
    text = _constant(constant)
    if node.gate in ("add", "mul") or position == 1:
        return f"{symbol}{text}"
    return f"{text}{symbol}x"  # a constant on the left of a non-commutative gate: 1/x, 2**x


def _constant(number) -> str:
    """A constant operand as a short decimal: ``2``, ``2.5``, ``0.1``, ``1e-300``."""
    return str(int(number)) if number.is_Integer else f"{float(number):g}"


def _describe(graph, names, k: int) -> str:
    """The node's formula over the names of its inputs (``x + y``, ``1/(exp(-y) + 1)``)."""
    node = graph.nodes[k]
    if node.formula is None:
        args = ", ".join(_operand_text(graph, names, o) for o in node.operands)
        return f"{node.gate}({args})"
    symbols = {placeholder(p): sp.Symbol(names[a], real=True) for p, a in enumerate(node.args)}
    return sp.sstr(node.formula.xreplace(symbols))
