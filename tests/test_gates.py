"""Every gate of the table, tested generically: adding a row to the table adds its tests."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from conftest import check_gradient, compiled

import symbp
from symbp.gates import GATES, OPERATORS

_SYMBOL = {v: k for k, v in OPERATORS.items()}
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
NAMES = ("x", "y", "z")


def expression(gate) -> str:
    """The gate applied to inputs x (and y), as a user writes it."""
    args = NAMES[:gate.arity]
    if gate.name in _INFIX:
        return f"x {_INFIX[gate.name]} y"
    if gate.name == "neg":
        return "-x"
    if gate.name == "identity":
        return "x"
    return f"{gate.name}({', '.join(args)})"


ROWS = sorted(n for n in GATES if GATES[n].array is None)  # array rows: test_arrays.py


def points(gate, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(lo, hi, n) for lo, hi in gate.domains])


def exact(gate, point, derivative: int | None = None) -> mpmath.mpf:
    """The gate's formula (or a derivative) at ``point`` in 50-digit arithmetic."""
    syms = sp.symbols(f"v0:{gate.arity}", real=True)
    params = [v for _, v in gate.params]
    expr = gate.formula(*syms, *params)
    expr = expr.replace(lambda e: hasattr(type(e), "symbp_gate"),  # opaque gates: their formula
                        lambda e: type(e).symbp_gate.formula(*e.args))
    if derivative is not None:
        expr = sp.diff(expr, syms[derivative])
    with mpmath.workdps(50):
        f = sp.lambdify(syms, expr, modules="mpmath")
        return f(*[mpmath.mpf(float(p)) for p in point])


@pytest.mark.parametrize("name", ROWS)
def test_gradient_matches_central_differences(name, jit):
    gate = GATES[name]
    f = compiled(expression(gate), jit)
    for point in points(gate, 200):
        check_gradient(f, point)


@pytest.mark.parametrize("name", ROWS)
def test_forward_matches_formula(name):
    gate = GATES[name]
    f = compiled(expression(gate), True)
    for point in points(gate, 50, seed=1):
        assert f(*point) == pytest.approx(float(exact(gate, point)), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("name", ROWS)
def test_numba_and_python_agree(name):
    gate = GATES[name]
    fast, slow = compiled(expression(gate), True), compiled(expression(gate), False)
    assert fast.kernel.py_func.__code__.co_code == slow.kernel.__code__.co_code
    for point in points(gate, 50, seed=2):
        np.testing.assert_allclose(fast.kernel(*point), slow.kernel(*point), rtol=1e-14)


@pytest.mark.parametrize("name", [n for n in ROWS if GATES[n].kinks])
def test_kink_conventions_exact(name, jit):
    gate = GATES[name]
    f = compiled(expression(gate), jit)
    for point, expected in gate.kinks:
        _, grads = f.value_and_grad(*point)
        assert tuple(grads.values()) == expected


EXTREMES = (-1000.0, -800.0, -100.0, -30.0, -1e-300, 0.0, 1e-300, 30.0, 100.0, 800.0, 1000.0)


@pytest.mark.parametrize("name", ROWS)
def test_extreme_inputs_stay_finite(name):
    """|x| up to 1e3: no NaN or Inf where the true value and derivative are finite."""
    gate = GATES[name]
    f = compiled(expression(gate), True)
    grid = [(a,) for a in EXTREMES] if gate.arity == 1 else \
        list(itertools.product(EXTREMES[::2] if gate.arity == 2 else EXTREMES[::5],
                               repeat=gate.arity))
    checked = 0
    for point in grid:
        try:
            truth = [exact(gate, point)] + [exact(gate, point, k) for k in range(gate.arity)]
        except (ZeroDivisionError, ValueError, TypeError):
            continue  # outside the gate's domain (log(-1), 0 ** -1)
        if not all(mpmath.isfinite(t) and mpmath.im(t) == 0 and abs(t) < 1e300 for t in truth):
            continue
        got = f.kernel(*point)
        assert all(math.isfinite(g) for g in got), f"{name}{point}: {got}"
        for g, t in zip(got, truth):
            # absolute slack: s*(1 - s) loses relative accuracy once s rounds near 1
            assert g == pytest.approx(float(t), rel=1e-6, abs=1e-12), f"{name}{point}"
        checked += 1
    assert checked > 0


def test_rewrites_use_cached_output():
    """Derivatives expressible in the gate's output use it (design example 2)."""
    src = {n: compiled(expression(GATES[n]), False).source for n in ("exp", "sigmoid", "tanh")}
    assert "dx = f * df" not in src["exp"]  # the output's own gradient is 1 and left out
    assert "dx = f\n" in src["exp"].replace("  ", "").replace(" #", "\n#").replace("# ", "\n")
    code = {n: [line.split("#")[0].strip() for line in s.splitlines()] for n, s in src.items()}
    assert "dx = sigmoid_grad(x, f)" in code["sigmoid"]  # s*(1 - s) off the tails
    assert "dx = tanh_grad(x, f)" in code["tanh"]  # 1 - t**2 off the tails
    assert "sigmoid(x)" in compiled("softplus(x)", False).source.split("# backward")[1]


def test_custom_gate_is_one_fused_node():
    f = compiled("swish(x)", False)
    forward = f.source.split("# forward pass")[1].split("# backward pass")[0]
    assert forward.count("=") == 1 and "sigmoid(x)" in forward


def test_custom_gate_from_sympy_lambda(jit):
    symbp.gate("cube_plus", lambda a, b: a ** 3 + b)
    f = symbp.compile("cube_plus(x, y)", jit=jit)
    assert f.grad(2.0, 5.0) == {"x": 12.0, "y": 1.0}


def test_gate_registration_errors():
    with pytest.raises(symbp.GateError, match="built-in"):
        symbp.gate("sigmoid", "a")
    with pytest.raises(symbp.GateError, match="identifier"):
        symbp.gate("2bad", "a")
    with pytest.raises(symbp.GateError, match="no input"):
        symbp.gate("const", "3")
    with pytest.raises(symbp.SymbpError):
        symbp.gate("evil", "__import__('os')")


@pytest.mark.parametrize("name", ROWS)
def test_nan_propagates(name):
    """A NaN input gives a NaN value (no gate silently turns it into a number)."""
    gate = GATES[name]
    f = compiled(expression(gate), True)
    for k in range(gate.arity):
        if name == "ifpos" and k == 0:
            continue  # a NaN condition takes the else branch (documented), as relu' does
        point = [lo + 0.37 * (hi - lo) for lo, hi in gate.domains]  # not pow(nan, 0) = 1
        if name == "ifpos":
            point[0] = 1.0 if k == 1 else -1.0  # a NaN in the branch taken
        point[k] = float("nan")
        assert math.isnan(f(*point)), f"{name} at {point}"


def test_the_table_can_be_read_while_a_gate_is_registered():
    """What a compile does in one thread (walk the table) while symbp.gate() runs in another:
    with a plain dict this is 'RuntimeError: dictionary changed size during iteration'."""
    rows = iter(GATES.values())
    first = next(rows)
    try:
        symbp.gate("race_gate_inline", "a * 3")
        rest = list(rows)  # the snapshot the walk started on
    finally:
        GATES.pop("race_gate_inline", None)
    assert [first] + rest == [g for g in GATES.values()]
    assert "race_gate_inline" not in GATES


def test_registering_gates_while_threads_compile():
    """symbp.gate() in one thread while others compile: 'dictionary changed size during
    iteration' (2 of 13 compiles). The table is copy-on-write; four compiling threads work."""
    import threading

    from symbp.gates import GATES

    errors: list[BaseException] = []
    stop = threading.Event()
    names = [f"race_gate_{k}" for k in range(300)]

    def compile_loop(k: int) -> None:
        try:
            for n in range(8):  # a one-input staged line: derive walks the table per formula
                c = 1 + k + n / 10
                f = symbp.compile(f"f = log(1 + exp({c} * x))", jit=False)
                assert f.grad(x=0.5)["x"] == pytest.approx(c / (1 + math.exp(-0.5 * c)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def register_loop() -> None:
        try:
            for name in names:
                if stop.is_set():
                    break
                symbp.gate(name, "a * 2")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=compile_loop, args=(k,)) for k in range(4)]
    writer = threading.Thread(target=register_loop)
    try:
        writer.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        stop.set()
        writer.join(120)
    finally:
        for name in names:
            GATES.pop(name, None)
    assert not errors, f"{len(errors)} failures, the first: {errors[0]!r}"


@pytest.mark.parametrize("name", sorted(n for n in GATES if GATES[n].call and
                                         GATES[n].array is None))
def test_opaque_gates_evaluate_on_numbers_sympy_left_symbolic(name):
    """``softplus(1.5*log(5/2))`` (a number SymPy keeps symbolic) evaluates numerically, to the
    formula's value: the property test's reference (``float(tree.evalf())``) failed on it."""
    gate = GATES[name]
    args = [sp.Float(1.5) * sp.log(sp.Rational(5, 2 + k)) for k in range(gate.arity)]
    args += [sp.Float(v) for _, v in gate.params]
    value = gate.function(*args).evalf()
    assert value.is_Float
    assert float(value) == pytest.approx(float(gate.formula(*args).evalf()), rel=1e-14)
