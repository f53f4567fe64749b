"""Local derivatives: ``sympy.diff`` of a gate's formula, rewritten in its cached output.

Every formula is written over positional placeholders ``_a0, _a1, ...`` (one per input); the
output of the gate is the symbol ``_out``. For each input, candidates for the local derivative
are collected and the cheapest by operation count is kept (ties keep the earlier candidate):

1. the derivative as SymPy gives it;
2. the same with the formula replaced by the output (``1 - tanh(a)**2 -> 1 - out**2``);
3. for one-input formulas, the derivative with the input solved from ``out = formula``
   (``exp(-a)/(1 + exp(-a))**2 -> out*(1 - out)``), tried only on formulas SymPy inverts quickly;
4. for one-input formulas, a built-in stable gate equal to the derivative
   (``softplus' = sigmoid``).

Besides being cheaper, the rewritten forms are the stable ones: the naive sigmoid derivative is
``inf/inf = nan`` at a = -800, ``out*(1 - out)`` is 0.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .gates import GATES, OUT, Gate, param_symbol, placeholder, use_local_rule
from .graph import GraphError
from .names import in_float_range

# What a derivative may not contain: SymPy's complex parts and unevaluated calculus (SymPy
# writes d|u|/dx with re() and im() when it cannot tell u is real; every symbp value is).
_NOT_REAL = (sp.re, sp.im, sp.arg, sp.conjugate, sp.Derivative, sp.Subs, sp.DiracDelta,
             sp.Heaviside)


class _RealAbs(sp.Function):
    """|u| for a real u: d|u|/dx = sign(u) du/dx (abs'(0) = sign(0) = 0, the table's rule)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sp.sign(self.args[0])

    def _eval_is_real(self):
        return True

__all__ = ["OUT", "check_derivatives", "gate_derivatives", "local_derivatives", "placeholder"]


def gate_derivatives(gate: Gate) -> tuple[sp.Expr, ...]:
    """Local derivatives of a table gate over placeholders, its parameters as symbols."""
    if "derivatives" not in gate._cache:
        args = tuple(placeholder(k) for k in range(gate.arity))
        params = tuple(param_symbol(n) for n, _ in gate.params)
        formula = gate.formula(*args, *params)
        if gate.derivative is not None:
            gate._cache["derivatives"] = tuple(gate.derivative(*args, *params))
        else:
            gate._cache["derivatives"] = local_derivatives(formula, len(args))
    return gate._cache["derivatives"]


@lru_cache(maxsize=4096)
def local_derivatives(formula: sp.Expr, arity: int) -> tuple[sp.Expr, ...]:
    """Local derivative of ``formula`` with respect to each of its ``arity`` placeholders.

    The results are over the placeholders and :data:`OUT`, the formula's own value.
    """
    return tuple(_rewrite(_diff(formula, placeholder(k)), formula, placeholder(k), arity)
                 for k in range(arity))


def check_derivatives(what: str, formula: sp.Expr, arity: int) -> None:
    """Refuse a formula whose local derivative is not a finite real formula (``0**x``,
    ``(-2)**x``): raises GraphError (the parser adds the position)."""
    for n in formula.atoms(sp.Number):
        if not in_float_range(n) and not in_float_range(1 / n):
            raise GraphError(f"the constant {sp.sstr(n)[:40]} of {what} is beyond float64 "
                             "(folded from the constants written); write it in smaller steps")
    for d in local_derivatives(formula, arity):
        if d.has(sp.nan, sp.zoo, sp.oo, -sp.oo, sp.I):
            raise GraphError(f"the local derivative of {what} is not a finite real number "
                             f"({sp.sstr(d)[:200]}); rewrite the expression")
        if d.has(*_NOT_REAL):
            raise GraphError(f"the local derivative of {what} cannot be written as real code "
                             f"({sp.sstr(d)[:200]}); rewrite the expression")
        for n in d.atoms(sp.Number):
            if not in_float_range(n) and not in_float_range(1 / n):
                raise GraphError(f"the local derivative of {what} has the constant "
                                 f"{sp.sstr(n)[:40]}, beyond float64; rewrite the expression")


def _diff(formula: sp.Expr, arg: sp.Symbol) -> sp.Expr:
    """``sympy.diff``, except a power with a variable exponent, which follows the pow row of
    the gate table: ``b*a**(b - 1)`` and ``0 if a == 0 else a**b*log(a)`` (SymPy's
    ``a**b*b/a`` and ``a**b*log(a)`` are NaN at a = 0, where the truth is finite)."""
    if formula.is_Pow and not formula.exp.is_Number and formula.base.free_symbols:
        base, exp = formula.base, formula.exp
        d_base, d_exp = GATES["pow"].derivative(base, exp)
        return sp.diff(base, arg) * d_base + sp.diff(exp, arg) * d_exp
    if formula.has(sp.Abs):
        return sp.diff(formula.replace(sp.Abs, _RealAbs), arg).replace(_RealAbs, sp.Abs)
    return sp.diff(formula, arg)


def _cost(expr: sp.Expr) -> int:
    return int(sp.count_ops(expr))


def _rewrite(d: sp.Expr, formula: sp.Expr, arg: sp.Symbol, arity: int) -> sp.Expr:
    candidates = [d]
    if not (formula.is_Symbol or formula.is_Number):
        candidates.append(d.subs(formula, OUT))
    if arity == 1 and arg in candidates[-1].free_symbols:
        solved = _solve_for_input(formula, arg)
        if solved is not None:
            candidate = sp.simplify(d.xreplace({arg: solved}))
            if arg not in candidate.free_symbols:
                candidates.append(candidate)
    if arity == 1 and _cost(d) <= 12:
        candidates.extend(_known_gate(d, formula, arg))
    safe = [c for c in candidates if _divides_by(c) <= _divides_by(d)]
    best = min(safe, key=_cost)  # min keeps the first of equal cost
    return _tidy_sign(best)


def _divides_by(expr: sp.Expr) -> set:
    """Inputs in the denominator: a rewrite must not divide by an input the original did not."""
    return {s for s in sp.fraction(expr)[1].free_symbols if s is not OUT}


# Functions whose inverse SymPy finds quickly and uniquely; others are not solved for.
_INVERTIBLE = (sp.exp, sp.log)


def _solve_for_input(formula: sp.Expr, arg: sp.Symbol) -> sp.Expr | None:
    """``arg`` as a function of the output, if SymPy finds exactly one real solution fast."""
    if _cost(formula) > 10 or formula.has(sp.Piecewise):
        return None
    for node in sp.preorder_traversal(formula):
        if node.is_Function and not isinstance(node, _INVERTIBLE):
            return None
        if node.is_Pow and node.exp not in (-1, sp.Rational(1, 2), sp.Rational(-1, 2)):
            return None
    try:
        solutions = sp.solve(sp.Eq(formula, OUT), arg)
    except (NotImplementedError, ValueError, TypeError):
        return None
    return solutions[0] if len(solutions) == 1 else None


def _known_gate(d: sp.Expr, formula: sp.Expr, arg: sp.Symbol) -> list[sp.Expr]:
    """Built-in stable one-input gates equal to ``d`` (softplus' is sigmoid)."""
    found = []
    for g in GATES.values():
        if g.call and g.arity == 1 and not g.params and not g.custom:
            candidate = g.apply(arg)
            if candidate == formula or not _agree_numerically(d, g.formula(arg), arg):
                continue
            if sp.simplify(d - g.formula(arg)) == 0:  # confirm exactly
                found.append(candidate)
    return found


def _agree_numerically(a: sp.Expr, b: sp.Expr, arg: sp.Symbol) -> bool:
    """Cheap filter before ``simplify``: equal at a few points."""
    if a.free_symbols - {arg} or b.free_symbols - {arg}:
        return False
    try:
        return all(abs(complex(a.evalf(subs={arg: v})) - complex(b.evalf(subs={arg: v}))) < 1e-9
                   for v in (0.37, -1.21, 2.53))
    except (TypeError, ValueError, ZeroDivisionError):
        return False


def _tidy_sign(expr: sp.Expr) -> sp.Expr:
    """``-s*(s - 1)`` -> ``s*(1 - s)``: fold a leading minus sign into a sum factor."""
    if expr.is_Mul:
        coeff, rest = expr.as_coeff_mul()
        if coeff.is_negative:
            for k, factor in enumerate(rest):
                if factor.is_Add:
                    others = rest[:k] + rest[k + 1:]
                    return sp.Mul(-coeff, sp.expand(-factor), *others, evaluate=True) \
                        if coeff != -1 else sp.Mul(sp.expand(-factor), *others)
    return expr


use_local_rule(gate_derivatives)  # SymPy's fdiff of an opaque gate uses this stage's rule
