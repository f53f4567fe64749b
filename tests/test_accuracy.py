"""Accuracy against 60-digit arithmetic (mpmath, through SymPy): every scalar gate of the table,
value and local derivatives, on a grid that reaches the tails; and the row-wise array gates
(logsumexp, log_softmax, softmax, softmax_cross_entropy) with a dominant entry, where a plain
``log(1 + tiny)`` or ``p - 1`` returns 0 instead of the tiny answer.

Goal: relative error <= 1e-12 wherever the value is finite and normal in float64. Two local
derivatives do not reach it in the far tails: ``sigmoid' = out*(1 - out)`` and ``tanh' = 1 -
out**2``, rewritten in the cached output, lose digits where ``out`` rounds towards 1. An exact
form (``out*sigmoid(-x)``, ``4*sigmoid(2x)*sigmoid(-2x)``) costs exponentials in the backward
pass: it measured the float32 tanh epoch at 0.44 M samples/s against 1.02 M (digits, 64-64-10),
so it is not used; :data:`EXACT_UP_TO` holds where they stay within 1e-12, and the test pins
that region (docs/internals.md, "Accuracy").
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

import symbp
from symbp.gates import GATES

mp.mp.dps = 60
RTOL = 1e-12
_SCALAR = [g for g in GATES.values() if g.array is None and not g.custom and g.call or
           g.name in ("exp", "log", "sqrt", "sin", "cos", "abs", "xlogy",
                      "sigmoid_cross_entropy")]
_MAGNITUDES = (0.0, 1e-8, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 40.0, 100.0,
               300.0, 700.0)
GRID = sorted({s * v for v in _MAGNITUDES for s in (1.0, -1.0)})
EXACT_UP_TO = {("sigmoid", 0): 9.0, ("tanh", 0): 5.0}
"""(gate, input) -> the |x| up to which the derivative rewritten in the output is within 1e-12."""


def _points(gate):
    if gate.name in ("log", "sqrt"):
        return [(x,) for x in GRID if x > 0]
    if gate.name == "xlogy":
        return [(a, b) for a in (0.0, 1e-8, 0.5, 3.0, 100.0) for b in GRID if b > 0]
    if gate.name == "sigmoid_cross_entropy":
        return [(z, t) for z in GRID for t in (0.0, 1.0, 0.3)]
    if gate.arity == 2:
        return [(a, b) for a in GRID[::3] for b in GRID[::3]]
    return [(x,) for x in GRID]


def _exact(expr, symbols, point):
    value = sp.N(expr.subs({s: sp.Float(repr(p), 60) for s, p in zip(symbols, point)}), 60)
    return float(value) if value.is_real and value.is_finite else None


def _error(found, exact) -> float:
    if exact is None or exact == 0.0 or not math.isfinite(exact) or abs(exact) < 2.3e-308:
        return 0.0  # not a finite normal number: nothing to compare to a relative bound
    return abs(found - exact) / abs(exact)


@pytest.mark.parametrize("gate", _SCALAR, ids=[g.name for g in _SCALAR])
def test_scalar_gate_value_and_derivatives(gate):
    symbols = sp.symbols(f"a0:{gate.arity}", real=True)
    formula = gate.formula(*symbols, *(sp.Float(v) for _, v in gate.params))
    derivatives = [sp.diff(formula, s) for s in symbols]
    f = symbp.compile(f"{gate.name}({', '.join(f'x{k}' for k in range(gate.arity))})",
                      jit=False)
    worst = []
    for point in _points(gate):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value, grad = f.value_and_grad(**{f"x{k}": p for k, p in enumerate(point)})
        worst.append((_error(value, _exact(formula, symbols, point)), "value", point))
        for k, d in enumerate(derivatives):
            if d.has(sp.Piecewise, sp.sign, sp.Heaviside, sp.DiracDelta) and 0.0 in point:
                continue  # a kink: the table's convention, tested by test_gates
            if gate.name in ("max", "min") and point[0] == point[1]:
                continue
            if abs(point[0]) > EXACT_UP_TO.get((gate.name, k), math.inf):
                continue
            worst.append((_error(grad[f"x{k}"], _exact(d, symbols, point)), f"d/dx{k}", point))
    error, what, point = max(worst)
    assert error <= RTOL, f"{gate.name} {what} at {point}: relative error {error:.2e}"


def test_the_pinned_tails_are_what_the_docstring_says():
    """Beyond EXACT_UP_TO the rewritten derivatives lose digits (not silently: this test
    fails once they are made exact, so the bound can go)."""
    f = symbp.compile("sigmoid(x) + tanh(y)", jit=False)
    _, grad = f.value_and_grad(x=40.0, y=20.0)
    assert grad["x"] == 0.0 and grad["y"] == 0.0  # truth 4.2e-18 and 1.7e-17


def _rows():
    rng = np.random.RandomState(0)
    return np.vstack([[0.0, -40.0, -40.0], [0.0, -1.0, -2.0], [3.0, 3.0, -700.0],
                      [1e3, 0.0, -1e3], [-40.0, 0.0, -40.0], rng.normal(size=(3, 3)) * 5])


def _mp_rows(z):
    """Per row, in 60 digits: logsumexp, log_softmax and softmax."""
    out = []
    for row in z:
        e = [mp.exp(mp.mpf(repr(float(v)))) for v in row]
        lse = mp.log(mp.fsum(e))
        out.append((lse, [mp.mpf(repr(float(v))) - lse for v in row], [x / mp.fsum(e) for x in e]))
    return out


def _close(found, exact) -> None:
    for f, x in zip(np.ravel(found), np.ravel(exact)):
        x = float(x)
        assert _error(float(f), x) <= RTOL, f"{f!r} against {x!r}"


@pytest.mark.parametrize("jit", [False, True], ids=["python", "numba"])
def test_row_gates_with_a_dominant_entry(jit):
    z = _rows()
    exact = _mp_rows(z)
    labels = np.array([0, 0, 1, 0, 1, 2, 0, 1])
    shapes = {"z": ("B", "C"), "y": symbp.shapes.ints("B")}
    f = symbp.compile("sum(softmax_cross_entropy(z, y))", shapes=shapes, wrt=["z"], jit=jit)
    loss, grad = f.value_and_grad(z=z, y=labels)
    each = [exact[i][0] - mp.mpf(repr(float(z[i, labels[i]]))) for i in range(len(z))]
    _close([loss], [mp.fsum(each)])
    _close(grad["z"], [[p - (j == labels[i]) for j, p in enumerate(exact[i][2])]
                       for i in range(len(z))])
    one = symbp.compile("sum(softmax_cross_entropy(z, y))", shapes=shapes, wrt=["z"], jit=jit)
    loss, grad = one.value_and_grad(z=z[:1], y=labels[:1])  # [0, -40, -40], label 0
    _close([loss], [each[0]])  # 8.5e-18, where log(1 + 2 exp(-40)) is 0
    _close(grad["z"][0, :1], [exact[0][2][0] - 1])  # -8.5e-18, where p - 1 is 0
    g = symbp.compile("sum(logsumexp(z))", shapes={"z": ("B", "C")}, jit=jit)
    value, grad = g.value_and_grad(z=z)
    _close([value], [mp.fsum(e[0] for e in exact)])
    _close(grad["z"], [e[2] for e in exact])  # softmax
    h = symbp.compile("sum(V * log_softmax(z))", shapes={"z": ("B", "C"), "V": ("B", "C")},
                      wrt=["z"], jit=jit)
    V = np.eye(3)[labels % 3]
    value, grad = h.value_and_grad(z=z, V=V)
    _close(grad["z"], [[float(V[i, j]) - exact[i][2][j] * float(V[i].sum()) for j in range(3)]
                       for i in range(len(z))])
    _close([value], [mp.fsum(float(V[i, j]) * exact[i][1][j] for i in range(len(z))
                             for j in range(3))])


def test_logsumexp_of_a_dominant_row_is_not_zero():
    f = symbp.compile("logsumexp(z)", shapes={"z": (3,)}, jit=False)
    value, _ = f.value_and_grad(z=np.array([0.0, -40.0, -40.0]))
    assert value == pytest.approx(8.533047625744065e-18, rel=1e-12)
