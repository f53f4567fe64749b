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
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp
from sympy.printing.str import StrPrinter

from .errors import SymbpError
from .gates import ALIASES, CONSTANTS, GATES, MODULE_ALIASES
from .naming import gradient_names, value_names
from .parse import parse
from .reverse import sweep
from .statements import Accumulate, Assign

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
        if node.shape:
            raise SymbpError(f"{w!r} is an array: its derivative is not staged yet "
                             "(symbp.derivative differentiates with respect to scalar inputs; "
                             "arrays are unfinished)")
    if len(set(wrt)) != len(wrt):
        raise SymbpError(f"wrt lists a name twice: {list(wrt)}")
    wrt_nodes = tuple(graph.inputs[input_names.index(w)] for w in wrt)
    names = tuple(_fresh(n + "_", set(input_names)) if n in _TAKEN and k not in graph.inputs
                  else n for k, n in enumerate(value_names(graph)))
    grads = gradient_names(names)
    program = sweep(graph, names, grads, wrt_nodes)
    if any(not isinstance(s, (Assign, Accumulate)) for s in program.forward + program.backward):
        raise SymbpError("symbp.derivative stages scalar code only; this expression has array "
                         "values (unfinished)")
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
                                          else f" = {_rhs(t.local)}") for t in terms[s.target])
        lines.append((s.target, " + ".join(parts).replace("+ -", "- "), comment))
    out_grads = [grads[i] for i in wrt_nodes]
    zero = {g for g in out_grads if g not in last}
    if directions is None:
        target = out_grads[0]
        if target in zero or target in known:
            value = _rhs(known.get(target, sp.Integer(0)))
            why = "a constant" if target in known else "no path from the output reaches it"
            return names[graph.output], [(target, value, why)]
    else:
        target = _fresh("dot", {t for t, _, _ in lines} | set(input_names) | set(directions))
        used = [_term(Accumulate("", known[g], v, False), {}) if g in known else f"{g} * {v}"
                for g, v in zip(out_grads, directions) if g not in zero]
        lines.append((target, " + ".join(used) or "0",
                      f"sum of d{names[graph.output]}/d(input) times its direction"))
    return names[graph.output], _needed(lines, target)


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
    import ast
    return {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}


def _render(title: str, lines) -> str:
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
        The scalar input to differentiate with respect to.
    inputs, shapes : optional
        As in :func:`symbp.compile`.
    direction : str, optional
        For an array ``wrt``: a new input of its shape, the lines computing
        ``sum(d expr/d wrt * direction)``. Not implemented yet (arrays raise SymbpError).

    Returns
    -------
    str
        The staged lines. A derivative that is identically zero is the single line
        ``d<wrt> = 0`` (valid syntax, but a constant, which :func:`symbp.compile` refuses).

    Notes
    -----
    Non-smooth gates: piecewise local derivatives are written with ``ifpos`` and ``sign``,
    whose own derivatives are 0, so relu, abs, leaky_relu, max and min have second derivative 0
    away from their kinks, and their first-order conventions at them (relu'(0) = 0,
    abs'(0) = 0, ties split 0.5/0.5). elu' is ``ifpos(x, 1, alpha*exp(x))``: elu'' is
    ``alpha*exp(x)`` for x <= 0 and 0 above.

    Examples
    --------
    >>> print(derivative("x**3", "x"))  # doctest: +NORMALIZE_WHITESPACE
    # derivative of xpow with respect to x
    dx = 3*x**2  # (1) pow: dxpow/dx
    """
    if not isinstance(wrt, str):
        raise SymbpError(f"wrt must be one input's name (a str), got {type(wrt).__name__}")
    if direction is not None:
        raise SymbpError("direction= is for an array wrt, and array derivatives are not "
                         "staged yet (unfinished); for scalars leave it out")
    output, lines = _lines(expr, (wrt,), inputs, shapes, None)
    return _render(f"derivative of {output} with respect to {wrt}", lines)


def directional(expr, wrt: Sequence[str], directions: Sequence[str], *, inputs=None,
                shapes=None) -> str:
    """Staged lines of ``sum_i d expr/d wrt_i * directions_i`` (scalar inputs): its gradient
    with respect to ``wrt`` is the Hessian-vector product (used by ``compile(order=2)``)."""
    output, lines = _lines(expr, tuple(wrt), inputs, shapes, tuple(directions))
    return _render(f"directional derivative of {output} along "
                   f"({', '.join(directions)})", lines)

