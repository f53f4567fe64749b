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
    assert lines[0] == ("# derivative of f with respect to x; compile with inputs=['x', 'y']: "
                        "the lines read y first")  # compile orders inputs as first read
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
    with pytest.raises(symbp.SymbpError, match=r"is an array.*direction="):
        symbp.derivative("sum(w*w)", "w", shapes={"w": (3,)})
    with pytest.raises(symbp.SymbpError, match="new input's name"):
        symbp.derivative("sum(w*v)", "w", shapes={"w": (3,), "v": (3,)}, direction="v")
    with pytest.raises(symbp.SymbpError, match="integer labels"):
        symbp.derivative("sum(softmax_cross_entropy(z, y))", "y",
                         shapes={"z": (2, 3), "y": symbp.ints((2,))}, direction="v")
    with pytest.raises(symbp.SymbpError, match="length 1"):
        symbp.derivative("sum(sin(a + b))", "b", shapes={"a": (3, 2), "b": (1, 2)},
                         direction="v")
    with pytest.raises(symbp.CallError, match="hvp"):
        symbp.compile("sum(w*w)", shapes={"w": (3,)}, order=2, jit=False).hessian(np.ones(3))
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


# --- arrays ------------------------------------------------------------------------------------

MLP = "mean(softmax_cross_entropy(relu(X @ W1 + b1) @ W2 + b2, y))"
MLP_SHAPES = {"X": ("B", 6), "y": symbp.ints(("B",)), "W1": (6, 5), "b1": (5,), "W2": (5, 3),
              "b2": (3,)}
MLP_WRT = ("W1", "b1", "W2", "b2")


def _mlp_point(rng, batch=8):
    return {"X": rng.normal(size=(batch, 6)), "y": rng.integers(0, 3, batch),
            "W1": rng.normal(size=(6, 5)), "b1": rng.normal(size=5),
            "W2": rng.normal(size=(5, 3)), "b2": rng.normal(size=3)}


@pytest.fixture(scope="module")
def mlp_hvp():
    """The MLP loss with its Hessian-vector product, compiled by Numba (the one array
    compile of this file), and the same first-order function in plain Python."""
    f = symbp.compile(MLP, shapes=MLP_SHAPES, wrt=list(MLP_WRT), order=2)
    return f, symbp.compile(MLP, shapes=MLP_SHAPES, wrt=list(MLP_WRT), jit=False)


def _central_hvp(grad, point: dict, v: dict, h=1e-5) -> dict:
    """Central differences of the gradient along v: (g(p + h v) - g(p - h v)) / 2h."""
    plus = grad(**{**point, **{n: point[n] + h * d for n, d in v.items()}})
    minus = grad(**{**point, **{n: point[n] - h * d for n, d in v.items()}})
    return {n: (plus[n] - minus[n]) / (2 * h) for n in v}


def test_mlp_hvp_matches_central_differences_of_the_gradient(mlp_hvp):
    f, reference = mlp_hvp
    rng = np.random.default_rng(2)
    for batch in (1, 8):
        point = _mlp_point(rng, batch)
        v = {n: rng.normal(size=np.shape(point[n])) for n in MLP_WRT}
        got = f.hvp(v, **point)
        numeric = _central_hvp(reference.grad, point, v)
        assert list(got) == list(MLP_WRT)
        for n in MLP_WRT:
            assert got[n].shape == point[n].shape and got[n].dtype == np.float64
            np.testing.assert_allclose(got[n], numeric[n], rtol=1e-6, atol=1e-7)


def test_mlp_hvp_inner_product_test(mlp_hvp):
    """<H u, w> == <u, H w> on random directions over all four arrays, and H is linear."""
    f, _ = mlp_hvp
    rng = np.random.default_rng(3)
    point = _mlp_point(rng)

    def dot(a, b):
        return sum(float(np.sum(a[n] * b[n])) for n in MLP_WRT)

    for _ in range(4):
        u = {n: rng.normal(size=np.shape(point[n])) for n in MLP_WRT}
        w = {n: rng.normal(size=np.shape(point[n])) for n in MLP_WRT}
        hu, hw = f.hvp(u, **point), f.hvp(w, **point)
        assert abs(dot(hu, w) - dot(u, hw)) <= 1e-12 * (1 + abs(dot(hu, w)))
        both = f.hvp({n: 2 * u[n] - 3 * w[n] for n in MLP_WRT}, **point)
        for n in MLP_WRT:
            np.testing.assert_allclose(both[n], 2 * hu[n] - 3 * hw[n], rtol=1e-12,
                                       atol=1e-12)


def test_mlp_hvp_is_shown_in_the_source_and_python_agrees(mlp_hvp):
    f, _ = mlp_hvp
    tail = f.source.split("# --- order=2", 1)[1]
    assert "# others = softmax(sum2) * (1 - onehot(y, sum2))" in tail
    assert ("# dsum2 = (others - onehot(y, sum2) * expand(sum(others, axis=-1), sum2, axis=-1))"
            " * expand(dloss, sum2, axis=-1)") in tail
    assert "# dW1 = X.T @ dsum_" in tail and "# db1 = sum(dsum_, axis=0)" in tail
    assert "def value_and_grad_into(" in tail
    slow = symbp.compile(MLP, shapes=MLP_SHAPES, wrt=list(MLP_WRT), order=2, jit=False)
    rng = np.random.default_rng(4)
    point = _mlp_point(rng)
    v = {n: rng.normal(size=np.shape(point[n])) for n in MLP_WRT}
    fast, python = f.hvp(v, **point), slow.hvp(v, **point)
    for n in MLP_WRT:
        np.testing.assert_allclose(fast[n], python[n], rtol=1e-12, atol=1e-14)


def test_smooth_mlp_hvp_with_weight_decay():
    """tanh and sigmoid layers, a scalar weight-decay input broadcast into the loss."""
    expr = ("h = tanh(X @ W1 + b1)\n"
            "z = sigmoid(h) @ W2 + b2\n"
            "loss = mean(softmax_cross_entropy(z, y)) + lam * sum(W1 * W1)")
    shapes = dict(MLP_SHAPES)
    f = symbp.compile(expr, shapes=shapes, order=2, jit=False)
    assert f.wrt == ("X", "W1", "b1", "W2", "b2", "lam")
    rng = np.random.default_rng(5)
    point = {**_mlp_point(rng, 5), "lam": 0.3}
    v = {n: rng.normal(size=np.shape(point[n])) if np.shape(point[n]) else 0.7 for n in f.wrt}
    got = f.hvp(v, **point)
    numeric = _central_hvp(f.grad, point, v)
    for n in f.wrt:
        np.testing.assert_allclose(got[n], numeric[n], rtol=1e-6, atol=1e-7)
    assert isinstance(got["lam"], float)


# Expressions through every array gate (and broadcasting), each with a nonlinearity around it
# so that its second derivative is not zero: (expression, shapes).
_R = {"R": (3, 4), "r": (3,), "q": (4,)}
ARRAY_CASES = [
    ("sum(sin(A @ M) * S)", {"A": (3, 4), "M": (4, 2), "S": (3, 2)}),
    ("sum(tanh(A @ q) * r)", {"A": (3, 4), "q": (4,), "r": (3,)}),
    ("sum(tanh(r @ A) * q)", {"r": (3,), "A": (3, 4), "q": (4,)}),
    ("tanh(q @ p) * sum(p * p)", {"q": (4,), "p": (4,)}),
    ("sum(exp(A.T) * T)", {"A": (3, 4), "T": (4, 3)}),
    ("sum(sin(sum(A, axis=0)) * q) + sum(A) ** 2", {"A": (3, 4), "q": (4,)}),
    ("sum(sin(mean(A, axis=-1)) * r) + mean(A * A * A)", {"A": (3, 4), "r": (3,)}),
    ("sum(softmax(A) * R)", {"A": (3, 4), "R": (3, 4)}),
    ("sum(softmax(q) * p)", {"q": (4,), "p": (4,)}),
    ("sum(log_softmax(A) * R) + sum(log_softmax(q) ** 2)", {"A": (3, 4), "R": (3, 4),
                                                           "q": (4,)}),
    ("sum(logsumexp(A) * r) + logsumexp(q) ** 2", {"A": (3, 4), "r": (3,), "q": (4,)}),
    ("mean(softmax_cross_entropy(A * A, y)) + sum(softmax_cross_entropy(A, y) * r)",
     {"A": (3, 4), "y": symbp.ints((3,)), "r": (3,)}),
    ("sum(hinge(A * A, y) * r)", {"A": (3, 4), "y": symbp.ints((3,)), "r": (3,)}),
    ("sum(tanh(A + q) * R) + sum(sin(A * s)) + sum(cos(r * s))",
     {"A": (3, 4), "q": (4,), "R": (3, 4), "r": (3,)}),
]


def _array_point(f, rng) -> dict:
    point = {}
    for n in f.inputs:
        shape = f.shapes[n]
        if isinstance(shape, symbp.Ints):
            point[n] = rng.integers(0, 4, size=shape.shape)
        else:
            point[n] = rng.uniform(-1.5, 1.5, size=shape) if shape else rng.uniform(-1, 1)
    return point


@pytest.mark.parametrize("expr, shapes", ARRAY_CASES, ids=[c[0][:40] for c in ARRAY_CASES])
def test_array_hvp_against_central_differences(expr, shapes):
    f = symbp.compile(expr, shapes=shapes, order=2, jit=False)
    rng = np.random.default_rng(len(expr))
    point = _array_point(f, rng)
    for _ in range(2):
        v = {n: rng.normal(size=f.shapes[n]) if f.shapes[n] else rng.normal()
             for n in f.wrt}
        got = f.hvp(v, **point)
        numeric = _central_hvp(f.grad, point, v)
        for n in f.wrt:
            assert np.shape(got[n]) == np.shape(point[n])
            np.testing.assert_allclose(got[n], numeric[n], rtol=1e-6, atol=1e-7,
                                       err_msg=f"(H v)[{n}] of {expr}")


@pytest.mark.parametrize("expr, shapes", ARRAY_CASES, ids=[c[0][:40] for c in ARRAY_CASES])
def test_array_derivative_along_a_direction_and_again(expr, shapes):
    """derivative(expr, A, direction="V") is sum(dexpr/dA * V): its value is the central
    difference of expr along V; differentiated again along U (through the staged adjoints'
    own gates, expand and onehot), the central difference of that along U."""
    wrt = next(n for n, s in shapes.items() if not isinstance(s, symbp.Ints))
    f = symbp.compile(expr, shapes=shapes, jit=False)
    once = symbp.derivative(expr, wrt, shapes=shapes, direction="V")
    assert once.splitlines()[0].endswith(f"with respect to {wrt} along V")
    assert once.splitlines()[-1].startswith(f"dot = sum(d{wrt} * V)")
    shapes_v = {**shapes, "V": shapes[wrt]}
    d1 = symbp.compile(once, shapes=shapes_v, inputs=[*f.inputs, "V"], jit=False)
    twice = symbp.derivative(once, wrt, shapes=shapes_v, inputs=[*f.inputs, "V"],
                             direction="U")
    d2 = symbp.compile(twice, shapes={**shapes_v, "U": shapes[wrt]},
                       inputs=[*f.inputs, "V", "U"], jit=False)
    rng = np.random.default_rng(len(expr) + 1)
    point = _array_point(f, rng)
    V, U = rng.normal(size=shapes[wrt]), rng.normal(size=shapes[wrt])
    h = 1e-5
    along = (f(**{**point, wrt: point[wrt] + h * V})
             - f(**{**point, wrt: point[wrt] - h * V})) / (2 * h)
    assert d1(**point, V=V) == pytest.approx(along, rel=1e-7, abs=1e-8)
    exact = float(np.sum(f.grad(**point)[wrt] * V))  # the kernel's own gradient
    assert d1(**point, V=V) == pytest.approx(exact, rel=1e-12, abs=1e-13)
    second = (d1(**{**point, wrt: point[wrt] + h * U}, V=V)
              - d1(**{**point, wrt: point[wrt] - h * U}, V=V)) / (2 * h)
    assert d2(**point, V=V, U=U) == pytest.approx(second, rel=1e-6, abs=1e-7)


def test_array_derivatives_keep_the_first_order_conventions_at_kinks():
    """At a relu input of exactly 0 and a hinge margin of exactly 0 the staged lines give what
    the compiled gradient gives (relu'(0) = 0; a margin of 0 is not violated)."""
    cases = [("sum(relu(A - B) * R)", {"A": (2, 3), "B": (2, 3), "R": (2, 3)}),
             ("sum(hinge(A - B, y) * r)", {"A": (2, 3), "B": (2, 3), "y": symbp.ints((2,)),
                                            "r": (2,)})]
    A = np.array([[1.0, 0.0, 2.0], [-1.0, 3.0, 2.0]])
    point = {"A": A, "B": np.zeros((2, 3)), "R": np.arange(6.0).reshape(2, 3) + 1,
             "y": np.array([0, 2]), "r": np.array([1.5, -0.5])}
    V = np.array([[0.3, -1.1, 0.7], [2.0, 0.4, -0.9]])
    for expr, shapes in cases:
        f = symbp.compile(expr, shapes=shapes, jit=False)
        d = symbp.compile(symbp.derivative(expr, "A", shapes=shapes, direction="V"),
                          shapes={**shapes, "V": (2, 3)}, inputs=[*f.inputs, "V"], jit=False)
        given = {n: point[n] for n in f.inputs}
        assert d(**given, V=V) == float(np.sum(f.grad(**given)["A"] * V))


def test_array_derivative_reads_like_the_notes():
    text = symbp.derivative(MLP, "W2", shapes=MLP_SHAPES, direction="V")
    lines = text.splitlines()
    assert lines[0] == "# derivative of f with respect to W2 along V"
    code = [line.split("  #")[0].strip() for line in lines[1:]]
    assert "mm = relusum @ W2" in code
    assert "others = softmax(sum2) * (1 - onehot(y, sum2))" in code
    assert ("dsum2 = (others - onehot(y, sum2) * expand(sum(others, axis=-1), sum2, axis=-1)) * "
            "expand(dloss, sum2, axis=-1)") in code
    assert "dW2 = relusum.T @ dsum2" in code and code[-1] == "dot = sum(dW2 * V)"
    assert not any(c.startswith("dW1") for c in code)  # only what dW2 needs


def test_an_array_second_order_function_pickles_and_keeps_float32():
    import pickle

    shapes = {"X": ("B", 2), "y": symbp.ints(("B",)), "W": (2, 3)}
    f = symbp.compile("mean(softmax_cross_entropy(X @ W, y))", shapes=shapes, wrt=["W"],
                      order=2, jit=False)
    g = pickle.loads(pickle.dumps(f))
    rng = np.random.default_rng(6)
    X, y, W, V = rng.normal(size=(5, 2)), rng.integers(0, 3, 5), rng.normal(size=(2, 3)), \
        rng.normal(size=(2, 3))
    exact = f.hvp({"W": V}, X=X, y=y, W=W)["W"]
    np.testing.assert_array_equal(g.hvp({"W": V}, X=X, y=y, W=W)["W"], exact)
    low = f.hvp({"W": V.astype(np.float32)}, X=X.astype(np.float32), y=y,
                W=W.astype(np.float32))
    assert low["W"].dtype == np.float32
    np.testing.assert_allclose(low["W"], exact, rtol=1e-4, atol=1e-5)
