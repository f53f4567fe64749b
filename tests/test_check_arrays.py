"""Function.check on functions of arrays: every generated backward statement at a point.

Elementwise lines are checked per element against 50-digit central differences, array gates'
adjoints as vector-Jacobian products against float64 Ridders differences of their forward
code (symbp.checkarrays). All Functions here are jit=False: Numba is not the point.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import sympy as sp
from conftest import vjp_check
from test_arrays import call_expression

import symbp
from symbp import CallError, SymbpError
from symbp.gates import GATES
from symbp.shapes import Ints

MLP = """h = relu(X @ W + b)
s = h @ V
loss = mean(softmax_cross_entropy(s, y))"""
MLP_SHAPES = {"X": (20, 5), "W": (5, 8), "b": (8,), "V": (8, 3), "y": symbp.ints((20,))}


@functools.cache
def mlp() -> symbp.Function:
    return symbp.compile(MLP, shapes=MLP_SHAPES, jit=False)


def _point(seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {"X": rng.standard_normal((20, 5)), "W": rng.standard_normal((5, 8)),
            "b": 0.1 * rng.standard_normal(8), "V": rng.standard_normal((8, 3)),
            "y": rng.integers(0, 3, 20)}


def _backward_lines(f: symbp.Function) -> list[str]:
    """The code of the generated backward pass, one stripped line each (comments cut)."""
    backward = f.source.split("# backward pass", 1)[1].split("\n    return", 1)[0]
    return [line.split("  #")[0].strip() for line in backward.splitlines() if line.strip()]


def _code(entry) -> str:
    return entry.line.split("  #")[0].split(" (and ")[0]


def test_a_right_mlp_is_within_tolerance_on_every_generated_line():
    f = mlp()
    point = _point()
    vjp_check(f, point)  # the function itself is right (float64 central differences)
    report = f.check(**point)
    assert report.ok, str(report)
    errors = [x.error for x in report.lines]
    assert errors == sorted(errors, reverse=True)
    lines = _backward_lines(f)
    assert all(_code(x) in lines for x in report.lines)
    gradient_lines = [line for line in lines if not line.startswith(("for ", "dloss = 1.0"))
                      and not line.endswith("= 0.0")]
    assert sorted(_code(x) for x in report.lines) == sorted(gradient_lines)
    kinds = {x.what for x in report.lines}
    assert kinds == {"local", "vector-Jacobian product"}
    relu = next(x for x in report.lines if "relu" in x.line)
    assert relu.what == "local" and len(relu.index) == 2 and relu.tolerance == 1e-12
    matmuls = [x for x in report.lines if x.line.startswith("matmul(")]
    assert len(matmuls) == 4 and all(x.error < 1e-10 for x in matmuls)
    text = str(report)
    assert text.startswith("rel. error  generated backward line (worst first)")
    assert "vector-Jacobian product" in text and "Ridders" in text


def test_a_relu_kink_shows_at_its_element():
    f = mlp()
    point = _point()
    b = point["b"].copy()
    b[3] = -(point["X"] @ point["W"])[7, 3]  # sum[7, 3] = XW[7, 3] + b[3] is exactly 0
    point["b"] = b
    report = f.check(**point)
    worst = report.lines[0]
    assert not report.ok and not worst.ok
    assert worst.line.startswith("dsum[i, j] = (0.0 if sum[i, j] <= 0 else 1.0) * dh[i, j]")
    assert worst.index == (7, 3) and worst.value == 0.0 and worst.numeric == pytest.approx(0.5)
    assert worst.error == pytest.approx(1.0)
    assert all(x.ok for x in report.lines[1:])
    assert "at [7, 3]: local (0.0 if sum <= 0 else 1.0) = 0; central difference 0.5" in \
        str(report)


def test_a_precision_loss_shows_at_its_element():
    f = symbp.compile("q = x**3 - x\nf = sum(q)", shapes={"x": (3,)}, jit=False)
    x = np.array([1.0, 0.5773502691896258, 2.0])  # 3x**2 - 1 cancels near 1/sqrt(3)
    report = f.check(x=x)
    worst = report.lines[0]
    assert worst.line.startswith("dx[i] = (3*x[i]**2 - 1) * dq[i]")
    assert worst.index == (1,) and worst.error > 0.1
    truth = sp.Float(3, 60) * sp.Float(x[1], 60) ** 2 - 1
    assert worst.numeric == pytest.approx(float(truth), rel=1e-12)
    assert report.lines[1].ok


def test_a_precision_loss_in_an_array_gate_shows_at_its_element(monkeypatch):
    f = symbp.compile("mean(softmax_cross_entropy(z, y))",
                      shapes={"z": (3, 3), "y": symbp.ints((3,))}, jit=False)
    z = np.array([[0.0, -40.0, -40.0], [0.5, -1.0, 2.0], [1.0, 1.0, 0.0]])  # row 0 dominant
    y = np.array([0, 2, 1])
    assert f.check(z=z, y=y).ok  # the runtime's adjoint is exact there: -(p1 + p2)

    def naive(probs, labels, dloss, out, add):  # probs - onehot: 1 - 1 = 0 at row 0
        for i in range(probs.shape[0]):
            for j in range(probs.shape[1]):
                g = (probs[i, j] - (j == labels[i])) * dloss[i]
                out[i, j] = out[i, j] + g if add else g

    monkeypatch.setitem(f.kernel.__globals__, "softmax_cross_entropy_backward", naive)
    report = f.check(z=z, y=y)
    worst = report.lines[0]
    assert worst.line.startswith("softmax_cross_entropy_backward(probs, y, dloss, dz, False)")
    assert worst.index == (0, 0) and worst.value == 0.0 and worst.error == pytest.approx(1.0)
    truth = -2 * np.exp(-40.0) / (1 + 2 * np.exp(-40.0)) / 3  # -(p1 + p2) * dloss
    assert worst.numeric == pytest.approx(truth, rel=1e-10)
    assert [x for x in report.lines if not x.ok] == [worst]


def test_scalars_broadcasts_and_reductions():
    f = symbp.compile("c * sum(tanh(x * c + b)) + c**2", shapes={"x": (4, 3), "b": (3,)},
                      jit=False)
    rng = np.random.default_rng(3)
    point = {"x": rng.standard_normal((4, 3)), "b": rng.standard_normal(3), "c": 0.7}
    report = f.check(**point)
    assert report.ok, str(report)
    codes = {_code(x): x for x in report.lines}
    assert codes["db[j] += dsum[i, j]"].index[1] in range(3)  # the loop's element (i, j)
    assert codes["dc = (2*c) * dcsqr"].index is None  # a scalar line, as the scalar check
    assert any(code.startswith("dc += x[i, j]") for code in codes)


ARRAY = sorted(n for n, g in GATES.items() if g.array is not None)


def _cases():
    for name in ARRAY:
        for k, (shapes, params) in enumerate(GATES[name].array.examples):
            yield pytest.param(name, shapes, params, id=f"{name}-{k}")


@pytest.mark.parametrize("name, shapes, params", list(_cases()))
def test_every_array_gate_adjoint_is_checked(name, shapes, params):
    gate = GATES[name]
    concrete = [tuple(4 if d == "B" else d for d in s) for s in shapes]
    args = [f"a{p}" for p in range(gate.arity)]
    out = gate.array.shape(concrete, params)
    call = call_expression(gate, args, params)
    expr = f"sum(({call}) * R)" if out else call
    declared = {a: (Ints(s) if p in gate.array.labels else s)
                for p, (a, s) in enumerate(zip(args, concrete))}
    if out:
        declared["R"] = out
    f = symbp.compile(expr, shapes=declared, jit=False)
    rng = np.random.default_rng(7)
    classes = next(s[-1] for p, s in enumerate(concrete)
                   if p not in gate.array.labels and len(s) == 2) if gate.array.labels else 0
    point = {a: (rng.integers(0, classes, s) if p in gate.array.labels
                 else rng.standard_normal(s))
             for p, (a, s) in enumerate(zip(args, concrete))}
    if out:
        point["R"] = rng.standard_normal(out)
    report = f.check(**point)
    assert report.ok, str(report)
    adjoints = [x for x in report.lines if f"{name}: d" in x.line and "/da" in x.line]
    untouched = set(gate.array.labels) | set(getattr(gate.array, "shape_only", ()))
    assert len(adjoints) == gate.arity - len(untouched)
    assert all(x.what == "vector-Jacobian product" for x in adjoints)


def _broken_matmul(monkeypatch, tmp_path):
    """The table's matmul with a wrong adjoint for its second input (one element off)."""
    monkeypatch.setenv("SYMBP_CACHE_DIR", str(tmp_path))  # the wrong source is cached there
    row = GATES["matmul"]
    right = row.array.adjoint

    def adjoint(c, position):
        out = right(c, position)
        if position == 1:
            out.append(symbp.statements.Code(f"{c.dargs[1]}[0, 1] += 0.001"))
        return out

    monkeypatch.setitem(GATES, "matmul", dataclasses.replace(
        row, array=dataclasses.replace(row.array, adjoint=adjoint), _cache={}))


def test_a_broken_adjoint_is_caught_at_its_line(monkeypatch, tmp_path):
    _broken_matmul(monkeypatch, tmp_path)
    f = symbp.compile(MLP, shapes=MLP_SHAPES, jit=False)
    assert "+= 0.001" in f.source
    report = f.check(**_point())
    bad = [x for x in report.lines if not x.ok]
    assert not report.ok and bad == list(report.lines[:2])  # worst first
    assert sorted(x.line.split("  #")[0] for x in bad) == [  # both products' second input
        "matmul(X, dXW, dW, False, True, False)", "matmul(h, ds, dV, False, True, False)"]
    for x in bad:
        assert x.line.endswith("(and 1 more lines)") and x.what == "vector-Jacobian product"
        assert x.index == (0, 1) and x.value - x.numeric == pytest.approx(0.001, rel=1e-6)
    assert all(x.error < 1e-10 for x in report.lines[2:])
    monkeypatch.undo()  # the table is right again: f's code is not what symbp derives now
    with pytest.raises(SymbpError, match="compile it again"):
        f.check(**_point())


def test_a_broken_local_derivative_is_caught_at_its_line(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMBP_CACHE_DIR", str(tmp_path))
    right = symbp.reverse.local_derivatives

    def wrong(formula, arity):  # tanh' doubled
        return tuple(2 * d if formula.has(GATES["tanh"].function) else d
                     for d in right(formula, arity))

    monkeypatch.setattr(symbp.reverse, "local_derivatives", wrong)
    f = symbp.compile("sum(tanh(x @ W))", shapes={"x": (3, 2), "W": (2, 2)}, jit=False)
    rng = np.random.default_rng(5)
    report = f.check(x=rng.standard_normal((3, 2)), W=rng.standard_normal((2, 2)))
    (bad,) = [x for x in report.lines if not x.ok]
    assert bad.line.startswith("dxW[i, j] = (2*tanh_grad(xW[i, j], tanhxW[i, j])) * dtanhxW[i, j]")
    assert bad.error == pytest.approx(1.0) and bad.what == "local" and len(bad.index) == 2
    assert bad.value == pytest.approx(2 * bad.numeric)


@pytest.mark.parametrize("change, error, message", [
    ({"X": None}, CallError, "missing input"),
    ({"Z": 1.0}, CallError, "unknown input 'Z'"),
    ({"X": np.ones((20, 4))}, CallError, "must have shape"),
    ({"W": np.ones(3)}, CallError, "must have shape"),
    ({"X": np.full((20, 5), np.nan)}, CallError, "finite"),
    ({"b": np.array([np.inf] * 8)}, CallError, "finite"),
    ({"y": np.full(20, 7)}, CallError, "label is outside"),
    ({"y": np.zeros(20)}, CallError, "integer array"),
    ({"V": "hello"}, CallError, "float array"),
])
def test_bad_input_is_a_clear_error(change, error, message):
    point = _point()
    for name, value in change.items():
        if value is None:
            del point[name]
        else:
            point[name] = value
    with pytest.raises(error, match=message):
        mlp().check(**point)
    assert issubclass(error, SymbpError)


def test_inputs_of_very_different_sizes():
    point = _point()
    point["X"] = point["X"] * 1e100  # b's step resolved next to XW ~ 1e100: 155 digits
    report = mlp().check(**point)
    assert report.ok, str(report)
    f = symbp.compile("sum(exp(x))", shapes={"x": (3,)}, jit=False)
    assert f.check(x=np.array([1.0, 2.0, 700.0])).ok  # e**1 + e**700: 1 is lost in the sum


def test_a_forward_pass_that_overflows_is_refused():
    point = _point()
    point["X"] = point["X"] * 1e307
    with pytest.warns(RuntimeWarning), pytest.raises(CallError, match="is not finite at"):
        mlp().check(**point)
    f = symbp.compile("sum(exp(x))", shapes={"x": (3,)}, jit=False)
    with pytest.raises(CallError, match=r"math\.exp\(x\[i\]\)' cannot be evaluated"):
        f.check(x=np.array([1.0, 2.0, 800.0]))


def test_a_numba_function_is_checked_through_its_python_twin():
    f = symbp.compile("sum(relu(x) * w)", shapes={"x": (2, 3), "w": (3,)})  # jit: at 1st call
    report = f.check(x=np.array([[1.0, 0.0, -2.0], [0.5, 3.0, -1.0]]), w=np.ones(3))
    (kink,) = [x for x in report.lines if not x.ok]
    assert kink.index == (0, 1) and kink.numeric == pytest.approx(0.5)


def test_a_custom_gate_and_a_second_order_function():
    f = symbp.compile("sum(swish(x) * w)", shapes={"x": (2, 3), "w": (3,)}, jit=False, order=2)
    x = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -0.25]])
    report = f.check(x=x, w=np.array([1.0, 2.0, -1.0]))
    assert report.ok, str(report)
    swish = next(x for x in report.lines if "swish" in x.line)
    assert swish.what == "local" and len(swish.index) == 2


def test_float32_inputs_are_checked_in_float64():
    point = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v)
             for k, v in _point().items()}
    assert mlp().check(**point).ok


def test_the_ridders_reference_on_linear_smooth_and_kinked_functions():
    from symbp.checkarrays import _ridders

    calls = []

    def central_of(f, x):
        def central(h):
            calls.append(h)
            return np.array([(f(x + h) - f(x - h)) / ((x + h) - (x - h))])
        return central

    assert _ridders(central_of(lambda t: 3.0 * t - 1.0, 0.7), 0.25)[0] == pytest.approx(3.0,
                                                                                     rel=1e-15)
    assert _ridders(central_of(lambda t: 3.0 * t - 1.0, 0.7), 0.25)[2] == 0.125
    assert len(calls) == 4  # linear: settled at the second step (twice)
    assert _ridders(central_of(np.exp, 0.3), 0.25)[0] == pytest.approx(np.exp(0.3), rel=1e-13)
    hinge = lambda t: max(0.0, t - 0.75) + 0.5 * t  # noqa: E731  a kink 0.05 from x
    assert _ridders(central_of(hinge, 0.7), 0.25)[0] == pytest.approx(0.5, rel=1e-14)
