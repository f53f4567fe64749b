"""Accuracy against 60-digit arithmetic (mpmath, through SymPy): every scalar gate of the table,
value and local derivatives, on a grid that reaches the tails; and the row-wise array gates
(logsumexp, log_softmax, softmax, softmax_cross_entropy) with a dominant entry, where a plain
``log(1 + tiny)`` or ``p - 1`` returns 0 instead of the tiny answer.

Goal: relative error <= 1e-12 wherever the value is finite and normal in float64, reached for
every gate. ``sigmoid'`` and ``tanh'`` are the gates ``sigmoid_grad(x, s)`` and ``tanh_grad(x,
t)``: the cached output's ``s*(1 - s)`` and ``1 - t**2`` off the tails, an exact form from x in
them (where the output rounds towards 1); a loop runs a row in the vectorized fast form unless
one of its entries is in a tail (docs/internals.md, "Accuracy"). float32 keeps the fast form.
"""

from __future__ import annotations

import functools
import math
import warnings

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

import symbp
import symbp.runtime
from symbp.gates import GATES

mp.mp.dps = 60
RTOL = 1e-12
_SCALAR = [g for g in GATES.values() if g.array is None and not g.custom and g.call or
           g.name in ("exp", "log", "sqrt", "sin", "cos", "abs", "xlogy",
                      "sigmoid_cross_entropy")]
_MAGNITUDES = (0.0, 1e-8, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 40.0, 100.0,
               300.0, 700.0)
GRID = sorted({s * v for v in _MAGNITUDES for s in (1.0, -1.0)})
TAILS = {"sigmoid_grad": symbp.gates.GATES["sigmoid"].function,
         "tanh_grad": symbp.gates.GATES["tanh"].function}
"""The gates evaluated where they are meant to be: (x, s) with s the output at x."""


def _points(gate):
    if gate.name in TAILS:
        out = TAILS[gate.name]
        return [(x, float(sp.N(out(sp.Float(x, 60)), 60))) for x in GRID]
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
    """``expr`` at the float64 ``point`` (its exact binary values) in 60 digits."""
    value = sp.N(expr.subs({s: sp.Float(p, 60) for s, p in zip(symbols, point)}), 60)
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
            worst.append((_error(grad[f"x{k}"], _exact(d, symbols, point)), f"d/dx{k}", point))
    error, what, point = max(worst)
    assert error <= RTOL, f"{gate.name} {what} at {point}: relative error {error:.2e}"


FINE = [k / 8 for k in range(-8 * 720, 8 * 720 + 1)]  # every 1/8 from -720 to 720


def _truth(gate: str, x: float) -> float:
    """sigmoid'(x) or tanh'(x) in 60 digits, as a float."""
    v = mp.mpf(float(x))  # the float's exact binary value
    d = mp.exp(-v) / (1 + mp.exp(-v)) ** 2 if gate == "sigmoid" else 1 / mp.cosh(v) ** 2
    return float(d)


def _worst(gate: str, xs, found) -> tuple[float, float]:
    return max((_error(float(g), _truth(gate, x)), x) for x, g in zip(xs, found))


@pytest.mark.parametrize("jit", [False, True], ids=["python", "numba"])
def test_sigmoid_and_tanh_derivatives_exact_over_the_whole_range(jit):
    """Every 1/8 from -720 to 720 (s rounds to 1 from x = 37, tanh to +-1 from 19), scalar
    code: the derivative within 1e-12 wherever it is a finite normal float64 (|x| < 708 and
    354); at 40 and 20, 4.2e-18 and 1.7e-17, where s*(1 - s) and 1 - t**2 are 0."""
    f = _scalar_tails(jit)
    xs = np.array(FINE)
    _, grad = f.value_and_grad(x=xs, y=xs)
    for gate, name in (("sigmoid", "x"), ("tanh", "y")):
        error, at = _worst(gate, FINE, grad[name])
        assert error <= RTOL, f"{gate}' at {at}: relative error {error:.2e}"
    _, grad = f.value_and_grad(x=40.0, y=20.0)
    assert grad["x"] == pytest.approx(4.248354255291589e-18, rel=1e-14)
    assert grad["y"] == pytest.approx(1.6993417021166355e-17, rel=1e-14)


@functools.cache
def _scalar_tails(jit):
    return symbp.compile("sigmoid(x) + tanh(y)", jit=jit)


@functools.cache
def _array_tails(jit):
    return symbp.compile("sum(w * (sigmoid(x) + tanh(x)))", shapes={"x": ("B", "C"),
                                                                    "w": ("B", "C")},
                         wrt=["x"], jit=jit)


@pytest.mark.parametrize("jit", [False, True], ids=["python", "numba"])
def test_array_loops_are_exact_in_rows_with_tails_and_without(jit):
    """The generated loop runs a row in the fast form unless an entry is in a tail: rows
    with and without tail entries, every 1/8 over the whole range, all within 1e-12 of
    sigmoid'(x) + tanh'(x)."""
    f = _array_tails(jit)
    x = np.array(FINE[:len(FINE) // 9 * 9]).reshape(-1, 9)  # rows: most in a tail, some not
    x = np.vstack([x, np.linspace(-3.0, 3.0, 36).reshape(-1, 9)])  # rows with no tail entry
    _, grad = f.value_and_grad(x=x, w=np.ones_like(x))
    for xi, g in zip(x.ravel(), grad["x"].ravel()):
        truth = _truth("sigmoid", xi) + _truth("tanh", xi)
        assert _error(g, truth) <= RTOL, f"at {xi}: {g!r} against {truth!r}"
    source = f.source.split("# backward pass")[1]
    assert "tails |= sigmoid_tail(x[i, j])" in source and "tails |= tanh_tail(x[i, j])" in source
    assert "(1 - tanhx[i, j]**2)" in source.split("else:")[1]  # the fast form


def test_float32_keeps_the_fast_form():
    """float32 computes s*(1 - s) and 1 - t**2 everywhere (no exponential, no row split
    taken): the same numbers as before, 0 where the output rounds to 1."""
    f = _array_tails(True)
    x = np.array([[0.5, -2.0, 3.0, 20.0]], dtype=np.float32)
    _, grad = f.value_and_grad(x=x, w=np.ones_like(x))
    assert grad["x"].dtype == np.float32
    s, t = 1 / (1 + np.exp(-x.astype(np.float64))), np.tanh(x.astype(np.float64))
    np.testing.assert_allclose(grad["x"][0, :3], (s * (1 - s) + 1 - t ** 2)[0, :3], rtol=1e-5)
    assert grad["x"][0, 3] == 0.0  # float32: s and t round to 1 at 20


def test_the_tail_thresholds_agree():
    """The table's formulas and the runtime helpers branch at the same x."""
    assert symbp.gates._SIGMOID_TAIL == symbp.runtime.SIGMOID_TAIL
    assert symbp.gates._TANH_TAIL == symbp.runtime.TANH_TAIL


def test_generated_sources_say_how_they_stay_exact():
    """The comments name every accuracy rewrite, on the line that uses it."""
    scalar = _scalar_tails(False).source
    assert "dx = sigmoid_grad(x, sigx) * dsigx" in scalar
    assert "dsigx/dx = sigx*(1 - sigx), written as e/(1 + e)**2, e = exp(-x), where x > 7: " \
        "exact in the tails" in _line(scalar, "dx = ")
    assert "dtanhy/dy = 1 - tanhy**2, written as 4e/(1 + e)**2, e = exp(-2|y|), where |y| > 4" \
        in _line(scalar, "dy = ")
    bce = symbp.compile("sigmoid_cross_entropy(z, t)", wrt=["z"], jit=False).source
    assert "relu(z) - z*t + softplus(-|z|): exact in the tails" in _line(bce, "f = ")
    assert "sigmoid(z) - t written as" in _line(bce, "dz = ")
    shapes = {"z": ("B", "C"), "y": symbp.shapes.ints("B")}
    ce = symbp.compile("sum(softmax_cross_entropy(z, y))", shapes=shapes, wrt=["z"],
                       jit=False).source
    assert "log1p" in _line(ce, "softmax_cross_entropy(z")
    assert "minus the other probabilities" in _line(ce, "softmax_cross_entropy_backward(")
    rows = {g: symbp.compile(f"sum({g}(z))", shapes={"z": ("B", "C")}, jit=False).source
            for g in ("softmax", "log_softmax", "logsumexp")}
    for g, src in rows.items():
        assert "log1p" in _line(src, f"{g}(z"), g
    assert "expm1" in _line(rows["log_softmax"], "log_softmax_backward(")
    forward = symbp.compile("h = elu(x) + softplus(y)", jit=False).source  # a staged line
    assert "alpha*expm1(x): exact near 0" in _line(forward, "h = ")
    assert "max(x, 0) + log1p(exp(-|x|)): exact in the tails" in _line(forward, "h = ")
    staged = symbp.derivative("sigmoid(x) * y", "x")  # symbp input, annotated the same way
    assert "dsigx/dx = sigx*(1 - sigx), written as e/(1 + e)**2" in _line(staged, "dx = ")
    from symbp.nn.compiled import network
    for activation, helper in (("tanh", "tanh_grad"), ("logistic", "sigmoid_grad")):
        net = network(1, activation, "softmax_cross_entropy", False).source
        assert f"{helper}(z1[i, j], h1[i, j])" in net
        assert "exact in the tails" in _line(net, "dz1[i, j] = " + helper)


def _line(source: str, start: str) -> str:
    return next(line for line in source.splitlines() if line.strip().startswith(start))


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


def test_staged_adjoints_of_row_gates_with_a_dominant_entry():
    """symbp.derivative's lines for softmax_cross_entropy and log_softmax are as exact as the
    compiled adjoints at [0, -40, -40]: -8.5e-18 and 8.5e-18, where p - 1 and 1 - p give 0."""
    z, first = np.array([[0.0, -40.0, -40.0]]), np.array([[1.0, 0.0, 0.0]])
    exact = _mp_rows(z)[0][2]  # softmax in 60 digits
    ce = {"z": ("B", "C"), "y": symbp.shapes.ints("B")}
    lines = symbp.derivative("sum(softmax_cross_entropy(z, y))", "z", shapes=ce, direction="V")
    f = symbp.compile(lines, shapes={**ce, "V": ("B", "C")}, jit=False)
    _close([f(z=z, y=np.array([0]), V=first)], [exact[0] - 1])
    rows = {"z": ("B", "C"), "V": ("B", "C")}
    lines = symbp.derivative("sum(V * log_softmax(z))", "z", shapes=rows, direction="U")
    g = symbp.compile(lines, shapes={**rows, "U": ("B", "C")}, jit=False)
    _close([g(z=z, V=first, U=first)], [1 - exact[0]])
    V = np.array([[0.3, -2.0, 5.0]])  # other upstreams: each entry as g - p * sum(g)
    for U in np.eye(3):
        _close([g(z=z, V=V, U=U[None])],
               [sum(float(v) * u for v, u in zip(V[0], U)) - sum(
                   float(u) * exact[j] * float(V.sum()) for j, u in enumerate(U))])


@pytest.mark.parametrize("jit", [False, True], ids=["python", "numba"])
def test_softmax_adjoint_with_a_dominant_entry(jit):
    """softmax's adjoint s * (g - sum(g * s)) at [0, -40, -40]: s_0 (1 - s_0) = 8.5e-18 for g on
    the dominant entry (the plain form gives 0), compiled and as symbp.derivative's lines."""
    z = _rows()
    exact = [e[2] for e in _mp_rows(z)]  # softmax in 60 digits
    shapes = {"z": ("B", "C"), "V": ("B", "C")}
    f = symbp.compile("sum(V * softmax(z))", shapes=shapes, wrt=["z"], jit=jit)
    lines = symbp.derivative("sum(V * softmax(z))", "z", shapes=shapes, direction="U")
    g = symbp.compile(lines, shapes={**shapes, "U": ("B", "C")}, jit=False)
    rng = np.random.RandomState(1)
    for V in (np.eye(3)[[0, 0, 1, 0, 1, 2, 0, 1]], rng.normal(size=z.shape)):
        truth = [[p[j] * (float(V[i, j]) - mp.fsum(float(V[i, k]) * p[k] for k in range(3)))
                  for j in range(3)] for i, p in enumerate(exact)]
        _close(f.value_and_grad(z=z, V=V)[1]["z"], truth)
        for i, j in ((0, 0), (0, 1), (2, 0), (3, 0), (4, 1)):
            U = np.zeros_like(z)
            U[i, j] = 1.0
            _close([g(z=z, V=V, U=U)], [truth[i][j]])
