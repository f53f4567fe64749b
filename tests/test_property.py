"""Property-based: random expression trees over the gate table, gradients vs numerical ones.

The examples are the same on every run (conftest.py's ``repeatable`` profile: a red CI is a
change's fault, not the draw's); ``HYPOTHESIS_PROFILE=explore python -m pytest
tests/test_property.py`` draws new random ones on each run (as many per test as its
``max_examples``).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import check_gradient, gradient_matches, numeric_gradient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbp
from symbp.gates import GATES

NAMES = ("x", "y", "z")


def _POSITIVE(e):
    return f"(1.5 + ({e})**2)"


def _call(name: str, args: list[str]) -> str:
    gate = GATES[name]
    lo = min(lo for lo, _ in gate.domains)
    if lo > 0:  # a gate defined for positive inputs only
        args = [_POSITIVE(a) for a in args]
    infix = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
    if name in infix:
        if name == "div":
            args[1] = _POSITIVE(args[1])
        if name == "pow":
            args = [_POSITIVE(args[0]), f"sin({args[1]})"]
        return f"({args[0]} {infix[name]} {args[1]})"
    if name == "neg":
        return f"(-{args[0]})"
    if name == "identity":
        return args[0]
    return f"{name}({', '.join(args)})"


# sign and ifpos jump (at 0, at c = 0), and a central difference across a jump means nothing;
# so do sigmoid_grad(x, s) and tanh_grad(x, t) off their curve s = sigmoid(x), t = tanh(x) (at
# x = 7, |x| = 4), the only place they are meant for (sigmoid and tanh, drawn here, use them)
GATE_NAMES = sorted(n for n in GATES if GATES[n].array is None
                     and n not in ("sign", "ifpos", "sigmoid_grad", "tanh_grad")
                     and (not GATES[n].custom or n == "swish"))

leaves = st.one_of(st.sampled_from(NAMES),
                   st.floats(0.25, 3.0).map(lambda v: repr(round(v, 3))))


def _extend(children):
    return st.sampled_from(GATE_NAMES).flatmap(
        lambda name: st.lists(children, min_size=GATES[name].arity,
                              max_size=GATES[name].arity).map(lambda a, n=name: _call(n, a)))


expressions = st.recursive(leaves, _extend, max_leaves=8).filter(
    lambda e: any(n in e for n in NAMES))
points = st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3)


# Irrational offsets keep hypothesis' favourite points (0.0, x == y) off the kinks of relu, abs
# and max, where central differences straddle two branches.
_OFFSET = 1e-3 * np.sqrt([2.0, 3.0, 5.0])


def _checked(expr: str, point, jit: bool) -> None:
    point = np.asarray(point) + _OFFSET
    try:
        f = symbp.compile(expr, jit=jit, inputs=NAMES)
    except symbp.ParseError as exc:  # e.g. a constant subtree with no finite value
        assert "constant" in str(exc)
        return
    value = f.kernel(*point)[0]
    if not np.isfinite(value) or abs(value) > 1e6:
        return  # far outside where central differences are meaningful
    check_gradient(f, point, rtol=1e-4, atol=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_random_trees_python(expr, point):
    _checked(expr, point, jit=False)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_random_trees_numba(expr, point):
    _checked(expr, point, jit=True)


@pytest.mark.parametrize("expr", ["(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)",
                                  "tanh(x * y) + log(1.5 + z**2)"])
def test_checker_catches_a_derivative_off_by_a_tenth_of_a_percent(expr):
    f = symbp.compile(expr, jit=False, inputs=NAMES)
    point = np.array([0.3, -0.7, 1.1])
    grads = np.array(f.kernel(*point)[1:])
    numeric = numeric_gradient(lambda *p: f.kernel(*p)[0], point)
    assert gradient_matches(grads, numeric)
    for k in range(3):
        if grads[k] != 0:
            wrong = grads.copy()
            wrong[k] *= 1.001
            assert not gradient_matches(wrong, numeric)
            assert not gradient_matches(wrong, numeric, rtol=1e-4, atol=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_random_sympy_trees(expr, point):
    """The same trees handed over as SymPy expressions (SymPy reorders and flattens them)."""
    from symbp.parse import parse_formula

    tree, _ = parse_formula(expr)
    point = np.asarray(point) + _OFFSET
    try:
        f = symbp.compile(tree, jit=False, inputs=NAMES)
    except symbp.ParseError as exc:
        assert "constant" in str(exc) or "finite" in str(exc)
        return
    value = f.kernel(*point)[0]
    exact = float(tree.subs(dict(zip(sp.symbols(NAMES, real=True), point))).evalf())
    if not np.isfinite(value) or abs(value) > 1e6:
        return
    assert value == pytest.approx(exact, rel=1e-9, abs=1e-12)
    check_gradient(f, point, rtol=1e-4, atol=1e-6)
