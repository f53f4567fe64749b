"""Higher-order derivatives: a backward pass printed back as symbp input.

The reverse sweep's statements are staged code, the very format symbp reads. So a derivative is
the forward lines followed by the backward lines that lead to ``d<wrt>``, printed as staged
lines (:func:`derivative`); compiled again, its gradient is the second derivative, and so on.

Printing for the parser, not for Python: opaque gates by their table names (``sigmoid(y)``),
``abs``, ``sign`` (abs'), and every piecewise local derivative as the table's ``ifpos(c, a, b)``
(``a if c > 0 else b``): relu' is ``ifpos(x, 1, 0)``, max's tie rule
``ifpos(a - b, 1, ifpos(abs(a - b), 0, 1/2))``. The derivative of ``sign`` and of ``ifpos`` in
its condition is 0, so a piecewise-linear gate has second derivative 0 away from its kinks, and
at a kink the first-order conventions of the gate table hold (relu'(0) = 0, abs'(0) = 0, max
ties split 0.5/0.5).

Several contributions to one gradient (a value used twice) are summed into one line, written
where the last one is, since staged lines assign each name once.

Arrays: the reverse sweep emits loops and helper calls for array values, which are not symbp
input, so an expression with arrays is swept here, on the graph (:func:`_array_lines`). An
elementwise node passes its SymPy local derivative times the upstream gradient, summed over the
axes an input was broadcast along (a bias added to every row gets ``sum(dz, axis=0)``); an
array gate passes its gate-table row's *staged adjoint* (:mod:`symbp.arrays`: ``dA = dC @ B.T``,
``expand(dsum, x, axis=1)`` for a sum, ``(softmax(z) - onehot(y, z)) * expand(dloss, z,
axis=-1)`` for softmax cross-entropy), written with gates that have adjoints of their own, so
the lines differentiate again. The derivative with respect to an array is an array, so an array
``wrt`` needs a ``direction`` (a new input of its shape): the lines end in the scalar
``dot = sum(dW * V)``, whose gradient is the Hessian-vector product ``compile(order=2)`` uses.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import sympy as sp
from sympy.printing.str import StrPrinter

from .arrays import Site
from .derive import OUT, local_derivatives, placeholder
from .emit import _off_the_tails, _tail_calls
from .errors import IdentifierError, SymbpError
from .gates import ALIASES, CONSTANTS, GATES, MODULE_ALIASES
from .names import MAX_LINE_OPS
from .naming import gradient_names, value_names
from .parse import _BARE_CONSTANTS, check_name, parse
from .reverse import sweep
from .shapes import broadcast, checked_shapes, show
from .statements import Accumulate

__all__ = ["derivative", "directional"]


class _InputPrinter(StrPrinter):
    """SymPy expressions as symbp input: gate names, exact floats, ``ifpos`` for piecewise."""

    def _print_Function(self, expr) -> str:
        gate = getattr(expr.func, "symbp_gate", None)
        name = gate.name if gate is not None else type(expr).__name__
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Abs(self, expr) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_sign(self, expr) -> str:
        return f"sign({self._print(expr.args[0])})"

    def _print_Float(self, expr) -> str:
        return repr(float(expr))

    def _print_Exp1(self, expr) -> str:
        return "exp(1)"

    def _print_Max(self, expr) -> str:
        return self._nested("max", expr.args)

    def _print_Min(self, expr) -> str:
        return self._nested("min", expr.args)

    def _nested(self, name: str, args) -> str:
        text = self._print(args[-1])
        for a in reversed(args[:-1]):
            text = f"{name}({self._print(a)}, {text})"
        return text

    def _print_Piecewise(self, expr) -> str:
        (value, cond), rest = expr.args[0], expr.args[1:]
        if cond == sp.true:
            return self._print(value)
        other = self._print(sp.Piecewise(*rest)) if rest else "0"
        then = self._print(value)
        if isinstance(cond, sp.Eq):  # a == b: |a - b| > 0 is its negation
            return f"ifpos(abs({self._print(cond.lhs - cond.rhs)}), {other}, {then})"
        if isinstance(cond, sp.Ne):
            return f"ifpos(abs({self._print(cond.lhs - cond.rhs)}), {then}, {other})"
        if isinstance(cond, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan,
                             sp.LessThan)):
            big, small = (cond.lhs, cond.rhs) if isinstance(
                cond, (sp.StrictGreaterThan, sp.GreaterThan)) else (cond.rhs, cond.lhs)
            c = self._print(big - small)
            if cond.rel_op in (">", "<"):  # big > small
                return f"ifpos({c}, {then}, {other})"
            # big >= small is not small > big
            return f"ifpos({self._print(small - big)}, {other}, {then})"
        raise SymbpError(f"cannot write the condition {cond} of a local derivative as symbp "
                         "input (only comparisons are)")


_TAKEN = frozenset(GATES) | frozenset(ALIASES) | frozenset(CONSTANTS) | frozenset(MODULE_ALIASES)
"""Names a staged line cannot assign: a value named so (``max``) is renamed (``max_``)."""

_PRINTER = _InputPrinter({"full_prec": True})


def _rhs(expr: sp.Expr) -> str:
    return _PRINTER.doprint(expr)


def _lines(expr, wrt: Sequence[str], inputs, shapes, directions: Sequence[str] | None):
    """The staged lines: forward values, backward gradients, and the output line."""
    graph = parse(expr, list(inputs) if inputs is not None else None, shapes)
    input_names = graph.input_names
    for w in wrt:
        if w not in input_names:
            raise SymbpError(f"cannot differentiate with respect to {w!r}: not an input "
                             f"(inputs: {', '.join(input_names)})")
        node = graph.nodes[graph.inputs[input_names.index(w)]]
        if node.integer:
            raise SymbpError(f"cannot differentiate with respect to {w!r}: it holds integer "
                             "labels")
        if node.shape and directions is None:
            raise SymbpError(f"{w!r} is an array: its derivative is an array, not one staged "
                             "value; name a direction, derivative(..., direction='v'), for the "
                             f"scalar sum(d/d{w} * v) (v a new input of {w}'s shape)")
    if len(set(wrt)) != len(wrt):
        raise SymbpError(f"wrt lists a name twice: {list(wrt)}")
    if directions is not None:
        for d in directions:
            check_name(d, lambda m: SymbpError(f"direction: {m}"))
            if d in _BARE_CONSTANTS:  # the lines would multiply by the constant, not the input
                raise SymbpError(f"direction {d!r} is read as the constant {d} in symbp input; "
                                 "choose another name")
        clash = sorted(set(directions) & set(input_names)) or (
            [d for d in directions if directions.count(d) > 1])
        if clash:
            raise SymbpError(f"direction {clash[0]!r} must be a new input's name, not an input "
                             "of the expression or another direction")
    wrt_nodes = tuple(graph.inputs[input_names.index(w)] for w in wrt)
    # inputs keep the user's names (generated Python escapes some, dot -> dot_: these lines
    # are symbp input, whose inputs must stay the expression's); a line named like a gate or
    # a constant is renamed (max -> max_), and one the parser reserves (__cube, the cube of
    # an input _, escaped __ in Python) too
    escaped = value_names(graph)
    new_inputs = set(directions or ())  # a temporary named like one (v_xcube) is renamed
    taken = set(escaped) | set(input_names) | new_inputs
    renamed = []
    for k, n in enumerate(escaped):
        if k in graph.inputs:
            n = graph.nodes[k].name
        elif n in _TAKEN or n.startswith("__") or n in new_inputs:
            n = _fresh(n + "_" if n in _TAKEN or n in new_inputs else "t" + n.lstrip("_"), taken)
            taken.add(n)
        renamed.append(n)
    names = tuple(renamed)
    grads = gradient_names(names)
    clash = sorted(new_inputs & set(grads))
    if clash:
        raise SymbpError(f"direction {clash[0]!r} is a name the derivative's lines use; "
                         "choose another")
    if any(node.shape for node in graph.nodes):
        return (names[graph.output], input_names,
                _array_lines(graph, names, grads, wrt_nodes, directions))
    program = sweep(graph, names, grads, wrt_nodes)
    lines: list[tuple[str, str, str]] = []  # (target, right side, comment)
    for s in program.forward:
        lines.append((s.target, _rhs(s.value), s.comment))
    terms: dict[str, list] = {}
    last: dict[str, int] = {}
    backward = [s for s in program.backward if isinstance(s, Accumulate)]
    for k, s in enumerate(backward):
        terms.setdefault(s.target, []).append(s)
        last[s.target] = k
    known: dict[str, sp.Number] = {}  # gradients that are constants: folded into their uses
    for k, s in enumerate(backward):
        if last[s.target] != k:
            continue
        contributions = terms[s.target]
        if all(t.upstream is None or t.upstream in known for t in contributions):
            total = sum(t.local * known.get(t.upstream, 1) for t in contributions)
            if total.is_Number:
                known[s.target] = total
                continue
        parts = [_term(t, known) for t in contributions]
        comment = "; ".join(t.comment + ("" if t.local in (1, -1) or t.upstream is None
                                          else _local_note(t.local)) for t in terms[s.target])
        lines.append((s.target, " + ".join(parts).replace("+ -", "- "), comment))
    out_grads = [grads[i] for i in wrt_nodes]
    zero = {g for g in out_grads if g not in last}
    if directions is None:
        target = out_grads[0]
        if target in zero or target in known:
            value = _rhs(known.get(target, sp.Integer(0)))
            why = "a constant" if target in known else "no path from the output reaches it"
            return names[graph.output], input_names, [(target, value, why)]
    else:
        target = _fresh("dot", {t for t, _, _ in lines} | set(input_names) | set(directions))
        used = [_term(Accumulate("", known[g], v, False), {}) if g in known else f"{g} * {v}"
                for g, v in zip(out_grads, directions) if g not in zero]
        lines.append((target, " + ".join(used) or "0",
                      f"sum of d{names[graph.output]}/d(input) times its direction"))
    return names[graph.output], input_names, _needed(lines, target)


def _array_lines(graph, names, grads, wrt, directions):
    """The staged lines through array values: the forward lines, then, node by node from the
    output back, each input's gradient contribution: an elementwise gate's local derivative
    times the upstream gradient (summed over the axes its input was broadcast along), an
    array gate's staged adjoint from the gate table. Contributions to one gradient are summed
    on one line; a gradient that is another's array (``dmm = dsum``) is not copied, and one
    that is a constant is folded into its uses (or named, for an array gate's adjoint)."""
    needed = graph.depends_on(wrt)
    taken = set(names) | set(grads) | set(directions or ())
    clash = sorted(set(directions or ()) & (set(names) | set(grads)))
    if clash:
        raise SymbpError(f"direction {clash[0]!r} is a name the derivative's lines use; "
                         "choose another")
    lines: list[tuple[str, str, str]] = []
    step: dict[int, int] = {}
    for k, node in enumerate(graph.nodes):
        if node.gate != "input":
            step[k] = len(step) + 1
            label = "" if node.gate == "line" else f" {node.gate}"
            shape = f": {show(node.shape)}" if node.shape else ""
            lines.append((names[k], _forward_text(graph, names, k), f"({step[k]}){label}{shape}"))
    sym = tuple(sp.Symbol(n, real=True) for n in names)
    parts: dict[int, list] = {graph.output: [(sp.Integer(1), "")]}
    grad: dict[int, str | sp.Expr] = {}

    def gather(k: int):
        """The gradient of node ``k`` from its contributions: a name or a SymPy number."""
        items = parts.get(k, [])
        if all(isinstance(t, sp.Basic) for t, _ in items):
            total = sum((t for t, _ in items), sp.Integer(0))
            if total.is_Number:
                return total
        texts = [_rhs(t) if isinstance(t, sp.Basic) else t for t, _ in items]
        if len(texts) == 1 and texts[0].isidentifier():
            return texts[0]  # that same array
        lines.append((grads[k], " + ".join(texts).replace("+ -", "- "),
                      "; ".join(c for _, c in items if c)))
        return grads[k]

    for k in range(len(graph.nodes) - 1, -1, -1):
        node = graph.nodes[k]
        if node.gate == "input" or not needed[k] or k not in parts:
            continue
        g = grad[k] = gather(k)
        gate = GATES.get(node.gate)
        what = f"({step[k]}) {'' if node.gate == 'line' else node.gate + ': '}"
        if gate is not None and gate.array is not None:
            if isinstance(g, sp.Basic):  # an adjoint needs the upstream as a name
                lines.append((grads[k], _rhs(g), "a constant, named for the adjoint"))
                g = grads[k]
            site = Site(out=names[k], args=tuple(names[a] for a in node.args),
                        shapes=tuple(graph.nodes[a].shape for a in node.args),
                        out_shape=node.shape, params=dict(zip([n for n, _ in gate.params],
                                                              node.params)), dout=g)
            for p, a in enumerate(node.args):
                if not needed[a] or p in gate.array.labels + gate.array.shape_only:
                    continue
                staged = gate.array.staged(site, p)
                named: dict[str, str] = {}
                for label, text in staged[:-1]:
                    named[label] = _fresh(label, taken)
                    taken.add(named[label])
                    lines.append((named[label], text.format(**named), f"{what}{label}"))
                parts.setdefault(a, []).append((staged[-1][1].format(**named),
                                                f"{what}d{names[k]}/d{names[a]}"))
            continue
        locals_ = local_derivatives(node.formula, len(node.args))
        bind = {placeholder(p): sym[a] for p, a in enumerate(node.args)}
        bind[OUT] = sym[k]
        maps = broadcast([graph.nodes[a].shape for a in node.args])[1]
        summed: dict[int, sp.Expr] = {}  # x * x: one contribution, 2*x, not two
        for p, a in enumerate(node.args):
            if needed[a]:
                summed[a] = summed.get(a, sp.Integer(0)) + locals_[p].xreplace(bind)
        for a, local in summed.items():
            p = node.args.index(a)
            if local == 0:
                continue
            comment = f"{what}d{names[k]}/d{names[a]}"
            if isinstance(g, sp.Basic):  # a scalar node: scalar inputs
                parts.setdefault(a, []).append((local * g, comment))
                continue
            term = _term(Accumulate("", local, g, False), {})
            parts.setdefault(a, []).append(
                (_summed(term, graph.nodes[a].shape, node.shape, maps[p], names[a]), comment))

    out_grads = {i: gather(i) if i in parts else None for i in wrt}
    if directions is None:
        (i,) = wrt
        value = out_grads[i]
        if value is None or isinstance(value, sp.Basic):
            why = "a constant" if value is not None else "no path from the output reaches it"
            return [(grads[i], _rhs(value if value is not None else sp.Integer(0)), why)]
        if value != grads[i]:
            lines.append((grads[i], value, f"the same array as {value}"))
        return _needed(lines, grads[i])
    target = _fresh("dot", taken)
    used = []
    for i, v in zip(wrt, directions):
        value, array = out_grads[i], bool(graph.nodes[i].shape)
        if value is None:
            continue
        text = _rhs(value) if isinstance(value, sp.Basic) else value
        used.append(f"sum({text} * {v})" if array else f"{text} * {v}")
    lines.append((target, " + ".join(used) or "0",
                  f"sum of d{names[graph.output]}/d(input) times its direction"))
    return _needed(lines, target)


def _forward_text(graph, names, k: int) -> str:
    """Node ``k``'s value as the right side of a staged line."""
    node = graph.nodes[k]
    args = [names[a] for a in node.args]
    gate = GATES.get(node.gate)
    if gate is None or gate.array is None:
        return _rhs(node.formula.xreplace({placeholder(p): sp.Symbol(a, real=True)
                                           for p, a in enumerate(args)}))
    if node.gate == "matmul":
        return f"{args[0]} @ {args[1]}"
    if node.gate == "transpose":
        return f"{args[0]}.T"
    params = [f"{n}={v}" for (n, default), v in zip(gate.params, node.params)
              if v is not None and v != default]
    return f"{node.gate}({', '.join(args + params)})"


def _summed(term: str, shape, out_shape, axes, name: str) -> str:
    """A contribution of ``out_shape`` summed to the ``shape`` of the input it goes to (which
    was broadcast along ``axes``, its index map)."""
    if None in axes:
        raise SymbpError(f"{name!r} of shape {show(shape)} is broadcast along a dimension of "
                         f"length 1 to {show(out_shape)}; symbp.derivative stages broadcasting "
                         "of a scalar, or of a vector along a matrix's rows, only")
    if len(shape) == len(out_shape):
        return term
    return f"sum({term})" if not shape else f"sum({term}, axis=0)"


def _local_note(local: sp.Expr) -> str:
    """`` = local`` for a line's comment; a gate exact in its tails (sigmoid_grad) shown in its
    fast form and how the tails are computed, as f.source says it."""
    calls = _tail_calls(local)
    if len(calls) != 1:
        return f" = {_rhs(local)}"
    gate, arg = calls[0].func.symbp_gate, calls[0].args[0]
    how = gate.note.format(x=_rhs(arg) if arg.is_Symbol else "x")
    return f" = {_rhs(_off_the_tails(local))}, {how}"


def _term(s: Accumulate, known: dict) -> str:
    if s.upstream is None:
        return _rhs(s.local)
    if s.upstream in known:
        return _rhs(s.local * known[s.upstream])
    if s.local == 1:
        return s.upstream
    if s.local == -1:
        return f"-{s.upstream}"
    local = _rhs(s.local)
    simple = s.local.is_Symbol or s.local.is_Function or (s.local.is_Number and s.local > 0)
    return f"{local} * {s.upstream}" if simple else f"({local}) * {s.upstream}"


def _fresh(name: str, taken: set[str]) -> str:
    k = 0
    candidate = name
    while candidate in taken:
        k += 1
        candidate = f"{name}{k}"
    return candidate


def _needed(lines, target: str):
    """The lines ``target`` depends on, in order, ending with ``target``'s."""
    index = {t: k for k, (t, _, _) in enumerate(lines)}
    keep = {index[target]}
    for k in range(index[target], -1, -1):
        if k in keep:
            for name in _names_in(lines[k][1]):
                if name in index and index[name] < k:
                    keep.add(index[name])
    return [line for k, line in enumerate(lines) if k in keep]


def _names_in(text: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}


def _split(lines) -> list[tuple[str, str, str]]:
    """The lines, each within the parser's limit of MAX_LINE_OPS operations: of a longer right
    side (a gradient summing many contributions), the largest parts are hoisted into lines
    of their own, ``dx_1 = ...``, just before it."""
    taken = {t for t, _, _ in lines} | {n for _, r, _ in lines for n in _names_in(r)}
    out = []
    for target, rhs, comment in lines:
        tree = ast.parse(rhs, mode="eval")
        if _ops(tree) <= MAX_LINE_OPS:
            out.append((target, rhs, comment))
            continue
        order, stack = [], [tree.body]  # post-order without recursion: sums can be long
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr))
        cost: dict[int, int] = {}
        for node in reversed(order):
            children = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)]
            total = _ops(node, shallow=True) + sum(cost[id(c)] for c in children)
            while total > MAX_LINE_OPS:
                child = max(children, key=lambda c: cost[id(c)])
                name = _fresh(f"{target}_1", taken)
                taken.add(name)
                out.append((name, ast.unparse(child), f"part of {target}"))
                _replace(node, child, ast.Name(name, ast.Load()))
                children.remove(child)
                total -= cost[id(child)]
            cost[id(node)] = total
        out.append((target, ast.unparse(tree), comment))
    return out


def _ops(node: ast.AST, shallow: bool = False) -> int:
    """Operations as the parser counts them (of ``node`` alone when ``shallow``)."""
    nodes = (node,) if shallow else ast.walk(node)
    return sum(isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) for n in nodes)


def _replace(parent: ast.AST, old: ast.expr, new: ast.expr) -> None:
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
        elif isinstance(value, list):
            setattr(parent, field, [new if v is old else v for v in value])


def _render(title: str, lines) -> str:
    lines = _split(lines)
    width = max(len(f"{t} = {r}") for t, r, _ in lines)
    out = [f"# {title}"]
    for t, r, c in lines:
        code = f"{t} = {r}"
        out.append(f"{code:<{width}}  # {c}" if c and width < 100 else
                   (f"{code}  # {c}" if c else code))
    return "\n".join(out) + "\n"


def derivative(expr: str | sp.Expr, wrt: str, *, inputs: Sequence[str] | None = None,
               shapes: dict | None = None, direction: str | None = None) -> str:
    """Staged lines computing the derivative of ``expr`` with respect to the input ``wrt``.

    The result is symbp input (staged lines ``name = expr``, annotated like ``f.source``): the
    forward lines the derivative needs, then the backward lines down to ``d<wrt>``. Compile it
    for the value and gradient of the derivative, or differentiate it again:
    ``symbp.derivative(symbp.derivative("x**5", "x"), "x")`` computes 20*x**3.

    Parameters
    ----------
    expr : str or sympy.Expr
        A scalar expression or staged lines, as :func:`symbp.compile` reads them.
    wrt : str
        The input to differentiate with respect to.
    inputs, shapes : optional
        As in :func:`symbp.compile`.
    direction : str, optional
        The name of a new input of ``wrt``'s shape: the lines then end in the scalar
        ``dot = sum(d<wrt> * direction)``, the derivative along that direction. Required
        for an array ``wrt`` (its derivative is an array); compile the lines with ``shapes``
        giving the direction ``wrt``'s shape. Its gradient is a Hessian-vector product.

    Returns
    -------
    str
        The staged lines. A derivative that is identically zero is the single line
        ``d<wrt> = 0`` (valid syntax, but a constant, which :func:`symbp.compile` refuses).
        :func:`symbp.compile` orders positional inputs as the text first reads them; when the
        lines read them in another order than ``expr``, the header line says so: ``compile
        with inputs=['x', 'y']: the lines read y first``.

    Notes
    -----
    Non-smooth gates: piecewise local derivatives are written with ``ifpos`` and ``sign``,
    whose own derivatives are 0, so relu, abs, leaky_relu, max and min have second derivative 0
    away from their kinks, and their first-order conventions at them (relu'(0) = 0,
    abs'(0) = 0, ties split 0.5/0.5). elu' is ``ifpos(x, 1, alpha*exp(x))``: elu'' is
    ``alpha*exp(x)`` for x <= 0 and 0 above.

    Arrays: an array gate's adjoint is its gate-table row's staged adjoint, written with gates
    (``dA = dC @ B.T``; sum's is ``expand(dsum, x, axis=1)``; softmax cross-entropy's
    ``(softmax(z) - onehot(y, z)) * expand(dloss, z, axis=-1)``); a vector added to each row of
    a matrix gets its gradient summed over the rows (``sum(dz, axis=0)``). Hinge's violated
    margins are ``ifpos`` masks: its second derivative is 0.

    Examples
    --------
    >>> print(derivative("x**3", "x"))  # doctest: +NORMALIZE_WHITESPACE
    # derivative of f with respect to x
    dx = 3*x**2  # (1) pow: df/dx
    <BLANKLINE>
    >>> print(derivative("sum(w * w)", "w", shapes={"w": (3,)}, direction="v"))
    ... # doctest: +NORMALIZE_WHITESPACE
    # derivative of f with respect to w along v
    wtw = w**2              # (1) mul: (3,)
    df = 1                  # a constant, named for the adjoint
    dwtw = expand(df, wtw)  # (2) sum: df/dwtw
    dw = (2*w) * dwtw       # (1) mul: dwtw/dw
    dot = sum(dw * v)       # sum of df/d(input) times its direction
    <BLANKLINE>
    """
    if not isinstance(wrt, str):
        raise SymbpError(f"wrt must be one input's name (a str), got {type(wrt).__name__}")
    check_name(wrt, lambda m: IdentifierError(f"wrt: {m}"))  # "ﬁ", which names read as "fi"
    if direction is not None and not isinstance(direction, str):
        raise SymbpError(f"direction must be a new input's name (a str), got "
                         f"{type(direction).__name__}")
    directions = None if direction is None else (direction,)
    shapes = checked_shapes(shapes) or None  # as compile: (0,) or a list is refused
    output, names, lines = _lines(expr, (wrt,), inputs, shapes, directions)
    along = "" if direction is None else f" along {direction}"
    title = f"derivative of {output} with respect to {wrt}{along}"
    text = _render(title, lines)
    read = _first_read(_split(lines))
    if not read:  # a constant (dx = 1): no input to order
        return text
    used = {n for _, r, _ in lines for n in _names_in(r)}
    kept = [n for n in (*names, *(directions or ()))
            if n in read or n in _BARE_CONSTANTS and n in used]
    if list(read) != kept:  # compile() orders inputs as the lines first read them
        why = ("pi is the constant without it" if set(read) != set(kept)  # an input named pi
               else f"the lines read {read[0]} first")
        text = _render(f"{title}; compile with inputs={kept}: {why}", lines)
    return text


def _first_read(lines) -> list[str]:
    """The names the lines read before a line assigns them, in the order the parser meets
    them (line by line, left to right): the inputs :func:`symbp.compile` finds, in its order
    (a bare ``pi`` is the constant)."""
    assigned: set[str] = set()
    order: list[str] = []
    for target, rhs, _ in lines:
        tree = ast.parse(rhs, mode="eval")
        skip = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        skip |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                 and isinstance(n.value, ast.Name) and n.value.id in MODULE_ALIASES}
        found = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name)
                        and id(n) not in skip), key=lambda n: n.col_offset)
        for n in found:
            if n.id not in assigned and n.id not in order and n.id not in _BARE_CONSTANTS:
                order.append(n.id)
        assigned.add(target)
    return order


def directional(expr, wrt: Sequence[str], directions: Sequence[str], *, inputs=None,
                shapes=None) -> str:
    """Staged lines of ``sum_i d expr/d wrt_i * directions_i`` (``sum(...)`` of the product for
    an array): its gradient with respect to ``wrt`` is the Hessian-vector product (used by
    ``compile(order=2)``)."""
    output, _, lines = _lines(expr, tuple(wrt), inputs, shapes, tuple(directions))
    return _render(f"directional derivative of {output} along "
                   f"({', '.join(directions)})", lines)

