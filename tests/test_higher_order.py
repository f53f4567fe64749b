"""Higher-order derivatives: symbp.derivative and compile(order=2) (issue 13).

Values only, so nearly everything compiles with ``jit=False`` (plain Python, no Numba); one
Rosenbrock function is compiled by Numba and shared.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symbp
from symbp.gates import GATES

X, Y = sp.symbols("x y", real=True)
POINT = {"x": 0.7, "y": 0.4}
_OPERATORS = {"add": "({0}) + ({1})", "sub": "({0}) - ({1})", "mul": "({0}) * ({1})",
              "div": "({0}) / ({1})", "pow": "({0}) ** ({1})", "neg": "-({0})",
              "identity": "({0})"}
_NOT_SMOOTH = (sp.Piecewise, sp.Abs, sp.Max, sp.Min, sp.sign)


def _smooth_gates() -> list[str]:
    """Every built-in scalar gate whose formula has no kink (no piecewise part)."""
    out = []
    for name, gate in GATES.items():
        if gate.array is not None or gate.custom:
            continue
        args = sp.symbols(f"a0:{gate.arity}", real=True)
        params = [sp.Float(v) for _, v in gate.params]
        formula = gate.formula(*args, *params)
        if formula.has(*_NOT_SMOOTH) or any(
                getattr(f.func, "symbp_gate", None) is not None
                and f.func.symbp_gate.kinks for f in formula.atoms(sp.Function)):
            continue
        out.append(name)
    return out


def _case(name: str):
    """A scalar expression of x and y through the gate, its arguments inside the gate's
    domain at POINT: the text for symbp, the SymPy truth."""
    gate = GATES[name]
    shifts = []
    inner = [(X * Y, "x*y", 0.28), (X - Y ** 2, "x - y**2", 0.54)]
    for (low, high), (_, _, at) in zip(gate.domains, inner):
        shifts.append(0.4 * low + 0.6 * high - at)
    sym_args = [e + sp.Float(c) for (e, _, _), c in zip(inner, shifts)]
    text_args = [f"{t} + {c!r}" for (_, t, _), c in zip(inner, shifts)]
    params = [sp.Float(v) for _, v in gate.params]
    truth = gate.formula(*sym_args, *params) * (1 + X)  # one more product: mixed terms
    call = (_OPERATORS[name].format(*text_args) if name in _OPERATORS
            else f"{name}({', '.join(text_args)})")
    return f"({call}) * (1 + x)", truth


@pytest.mark.parametrize("name", _smooth_gates())
def test_hessian_of_every_smooth_gate_matches_sympy(name):
    text, truth = _case(name)
    f = symbp.compile(text, inputs=["x", "y"], order=2, jit=False)
    exact = sp.hessian(truth, (X, Y)).subs({X: POINT["x"], Y: POINT["y"]}).evalf(30)
    expected = np.array(exact.tolist(), dtype=float)
    got = f.hessian(**POINT)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


def test_the_smooth_gates_are_the_table_less_its_kinked_ones():
    names = _smooth_gates()
    assert {"exp", "log", "sigmoid", "tanh", "softplus", "div", "pow"} <= set(names)
    assert not {"relu", "abs", "max", "min", "leaky_relu", "elu", "sign", "ifpos"} & set(names)


ROSENBROCK = "(1 - x)**2 + 100*(y - x**2)**2"


@pytest.fixture(scope="module")
def rosenbrock():
    return symbp.compile(ROSENBROCK, order=2)  # Numba: the one jit compile of this file


def _rosenbrock_hessian(x, y):
    return np.array([[2 - 400 * (y - 3 * x * x), -400 * x], [-400 * x, 200.0]])


@pytest.mark.parametrize("x, y", [(1.0, 1.0), (-1.2, 1.0), (0.3, -2.5)])
def test_rosenbrock_hessian(rosenbrock, x, y):
    np.testing.assert_allclose(rosenbrock.hessian(x, y), _rosenbrock_hessian(x, y),
                               rtol=1e-14, atol=1e-12)
    h = rosenbrock.hvp({"x": 0.5, "y": -2.0}, x=x, y=y)
    np.testing.assert_allclose([h["x"], h["y"]], _rosenbrock_hessian(x, y) @ [0.5, -2.0],
                               rtol=1e-14, atol=1e-12)


def test_order_2_shows_the_hvp_in_the_source(rosenbrock):
    tail = rosenbrock.source.split("# --- order=2", 1)[1]
    assert "dot = dx * v_x + dy * v_y" in tail
    assert "# def value_and_grad(x, y, v_x, v_y):" in tail
    assert rosenbrock.kernel_source.startswith("@register_jitable\ndef value_and_grad(x, y):") \
        or "def value_and_grad(x, y):" in rosenbrock.kernel_source


MIXED = "sigmoid(x*y) * tanh(x - z) + log(1 + x**2) * exp(-y*z) + relu(x + y) * abs(z)"


@pytest.fixture(scope="module")
def mixed():
    return symbp.compile(MIXED, inputs=["x", "y", "z"], order=2, jit=False)


def test_hvp_matches_central_differences_of_the_gradient(mixed):
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = dict(zip("xyz", rng.uniform(-1.5, 1.5, 3)))
        v = dict(zip("xyz", rng.normal(size=3)))
        h = 1e-5
        plus = mixed.grad(**{k: p[k] + h * v[k] for k in p})
        minus = mixed.grad(**{k: p[k] - h * v[k] for k in p})
        numeric = [(plus[k] - minus[k]) / (2 * h) for k in "xyz"]
        got = mixed.hvp(v, **p)
        np.testing.assert_allclose([got[k] for k in "xyz"], numeric, rtol=1e-6, atol=1e-7)


def test_inner_product_test_on_random_directions(mixed):
    """<H u, w> == <u, H w>: the Hessian the hvp applies is symmetric, and linear in v."""
    rng = np.random.default_rng(1)
    for _ in range(5):
        p = dict(zip("xyz", rng.uniform(-1.5, 1.5, 3)))
        u, w = rng.normal(size=3), rng.normal(size=3)
        hu = mixed.hvp(dict(zip("xyz", u)), **p)
        hw = mixed.hvp(dict(zip("xyz", w)), **p)
        left = sum(hu[k] * wk for k, wk in zip("xyz", w))
        right = sum(hw[k] * uk for k, uk in zip("xyz", u))
        assert abs(left - right) <= 1e-12 * (1 + abs(left))
        both = mixed.hvp(dict(zip("xyz", 2 * u - 3 * w)), **p)
        np.testing.assert_allclose([both[k] for k in "xyz"],
                                   [2 * hu[k] - 3 * hw[k] for k in "xyz"], rtol=1e-12,
                                   atol=1e-12)
        hess = mixed.hessian(**p)
        np.testing.assert_allclose(hess, hess.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("expr", ["x**5", "sin(x)*exp(x)", "sigmoid(x)*tanh(2*x) + log(x)",
                                  "sqrt(x) / (1 + x**2)"])
def test_third_derivative_through_derivative_twice(expr):
    second = symbp.derivative(symbp.derivative(expr, "x"), "x")
    f = symbp.compile(second, jit=False)
    sym = sp.sympify(expr.replace("sigmoid(x)", "(1/(1 + exp(-x)))"), locals={"x": X})
    for at in (0.3, 1.1, 2.7):
        value, grad = f.value_and_grad(at)
        assert value == pytest.approx(float(sp.diff(sym, X, 2).subs(X, at)), rel=1e-10)
        assert grad["x"] == pytest.approx(float(sp.diff(sym, X, 3).subs(X, at)), rel=1e-10)


def test_the_issue_example_composes():
    once = symbp.derivative("x**5", "x")
    assert "dx = 5*x**4" in once
    f = symbp.compile(symbp.derivative(once, "x"), jit=False)
    for x in (-1.5, 0.5, 2.0):
        value, grad = f.value_and_grad(x)
        assert value == pytest.approx(20 * x ** 3, rel=1e-14)
        assert grad["x"] == pytest.approx(60 * x ** 2, rel=1e-14)


def test_derivative_lines_read_like_the_notes():
    text = symbp.derivative("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)", "x")
    lines = text.splitlines()
    assert lines[0] == "# derivative of f with respect to x"
    assert any(line.startswith("dxpy = (2*xpy) * dxpysqr") for line in lines)
    assert lines[-1].startswith("dx = ")
    # the lines are symbp input: their value is the derivative
    g = symbp.compile("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)", jit=False)
    d = symbp.compile(text, inputs=["x", "y"], jit=False)
    assert d(3.0, -4.0) == pytest.approx(g.grad(3.0, -4.0)["x"], rel=1e-14)


KINKED = ["relu(x*y)", "abs(x - y) * x", "leaky_relu(x*y, 0.1)", "max(x, y) * x",
          "min(x**2, y) * y", "elu(x*y, 0.7)",
          "sigmoid_cross_entropy(x*y, y)"]  # smooth, written with relu and abs (stable)


@pytest.mark.parametrize("expr", KINKED)
def test_non_smooth_gates_away_from_their_kinks(expr):
    f = symbp.compile(expr, inputs=["x", "y"], order=2, jit=False)
    for p in ({"x": 0.8, "y": 0.5}, {"x": -0.9, "y": 0.6}, {"x": 1.3, "y": -0.4}):
        h = 1e-6
        numeric = np.empty((2, 2))
        for j, k in enumerate("xy"):
            plus = f.grad(**{n: v + h * (n == k) for n, v in p.items()})
            minus = f.grad(**{n: v - h * (n == k) for n, v in p.items()})
            numeric[:, j] = [(plus[n] - minus[n]) / (2 * h) for n in "xy"]
        np.testing.assert_allclose(f.hessian(**p), numeric, rtol=1e-6, atol=1e-6)


def test_piecewise_linear_gates_have_second_derivative_zero():
    for expr in ("relu(x)", "abs(x)", "leaky_relu(x)", "max(x, 0.5)", "min(x, 0.5)"):
        f = symbp.compile(expr, order=2, jit=False)
        for x in (-1.3, -0.2, 0.0, 0.5, 0.9):
            assert f.hessian(x)[0, 0] == 0.0


def test_first_order_conventions_at_the_kinks():
    at_zero = {"relu(x)": 0.0, "abs(x)": 0.0, "leaky_relu(x, 0.1)": 0.1, "elu(x, 0.7)": 0.7}
    for expr, expected in at_zero.items():
        d = symbp.compile(symbp.derivative(expr, "x"), jit=False)
        assert d(0.0) == expected
    tie = symbp.compile(symbp.derivative("max(x, y)", "x"), inputs=["x", "y"], jit=False)
    assert tie(1.0, 1.0) == 0.5
    assert tie(2.0, 1.0) == 1.0
    assert tie(1.0, 2.0) == 0.0


def test_errors_are_clear():
    with pytest.raises(symbp.SymbpError, match="not an input"):
        symbp.derivative("x*y", "z")
    with pytest.raises(symbp.SymbpError, match="array"):
        symbp.derivative("sum(w*w)", "w", shapes={"w": (3,)})
    with pytest.raises(symbp.SymbpError, match="scalar inputs"):
        symbp.compile("sum(w*w)", shapes={"w": (3,)}, order=2, jit=False)
    with pytest.raises(symbp.SymbpError, match="order must be 1 or 2"):
        symbp.compile("x*x", order=3)
    f = symbp.compile("x*y", jit=False)
    with pytest.raises(symbp.CallError, match="order=2"):
        f.hessian(1.0, 2.0)
    g = symbp.compile("x*y", order=2, jit=False)
    with pytest.raises(symbp.CallError, match="missing y"):
        g.hvp({"x": 1.0}, 1.0, 2.0)
    with pytest.raises(symbp.CallError, match="unknown 'z'"):
        g.hvp({"x": 1.0, "y": 1.0, "z": 0.0}, 1.0, 2.0)
    np.testing.assert_array_equal(g.hessian(1.0, 2.0), [[0.0, 1.0], [1.0, 0.0]])


def test_a_constant_derivative_is_one_line():
    assert symbp.derivative("3*x + y", "x").splitlines()[1].startswith("dx = 3")
    assert symbp.derivative("x + y", "x", inputs=["x", "y"]).splitlines()[1].startswith("dx = 1")


def test_a_second_order_function_pickles_with_its_hvp():
    import pickle

    f = symbp.compile("x**3 * y + sin(y)", order=2, jit=False)
    g = pickle.loads(pickle.dumps(f))
    assert g.order == 2
    np.testing.assert_array_equal(g.hessian(1.5, 0.5), f.hessian(1.5, 0.5))
