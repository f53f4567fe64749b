"""Arrays through the same pipeline: every gate of the table checked on arrays, generically.

Gradients are checked as vector-Jacobian products: the compiled function is
``sum(gate(inputs) * R)`` for a fixed random direction ``R``, whose gradient is ``J^T R``;
central differences in float64 over every element of every input.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import vjp_check

import symbp
from symbp.gates import GATES
from symbp.shapes import Ints

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
ELEMENTWISE = sorted(n for n, g in GATES.items() if g.array is None and n != "identity")
ARRAY = sorted(n for n, g in GATES.items() if g.array is not None)
# broadcasting cases: same shape, row vector against a matrix, scalar
BROADCASTS = ((("B", 3), ("B", 3)), (("B", 3), (3,)), (("B", 3), ()))


@functools.cache
def compiled(expr: str, shapes: tuple, jit: bool, wrt: tuple) -> symbp.Function:
    return symbp.compile(expr, shapes=dict(shapes), jit=jit, wrt=list(wrt))


def call_expression(gate, args: list[str], params: dict | None = None) -> str:
    if gate.name in _INFIX:
        return f"({args[0]} {_INFIX[gate.name]} {args[1]})"
    if gate.name == "neg":
        return f"(-{args[0]})"
    if gate.name == "matmul":
        return f"({args[0]} @ {args[1]})"
    if gate.name == "transpose":
        return f"{args[0]}.T"
    extra = [f"{k}={v}" for k, v in (params or {}).items() if v is not None]
    return f"{gate.name}({', '.join(args + extra)})"


def concrete(shape, batch: int) -> tuple:
    return tuple(batch if d == "B" else d for d in shape)


def sample(rng, shape, low=-2.0, high=2.0, batch=4):
    return rng.uniform(low, high, size=concrete(shape, batch))


def _elementwise_case(name: str, shapes: tuple):
    gate = GATES[name]
    names = ["X", "Y", "Z"][:gate.arity]
    declared = dict(zip(names, shapes[:gate.arity]))
    out_shape = max(declared.values(), key=len)
    expr = f"sum({call_expression(gate, names)} * R)"
    declared["R"] = out_shape
    return expr, tuple(sorted(declared.items())), tuple(names)


CASES = [(name, shapes, batch) for name in ELEMENTWISE
         for shapes in (BROADCASTS if GATES[name].arity == 2 else BROADCASTS[:1]
                        if GATES[name].arity == 1 else ((("B", 3),) * 3,))
         for batch in (1, 4)]


@pytest.mark.parametrize("name, shapes, batch", CASES,
                         ids=[f"{n}-{'x'.join(map(str, s[1])) or 'scalar'}-B{b}"
                              for n, s, b in CASES])
def test_elementwise_gate_on_arrays(name, shapes, batch):
    gate = GATES[name]
    expr, declared, wrt = _elementwise_case(name, shapes)
    jit = batch == 4 and shapes == (BROADCASTS[1] if gate.arity == 2 else BROADCASTS[0])
    f = compiled(expr, declared, jit, wrt)  # Numba: one compile per gate (one function with
    # every gate compiles slower than all of them one by one: 27 s against 30 x 1 s)
    rng = np.random.default_rng(len(CASES) + CASES.index((name, shapes, batch)))
    values = {}
    for n, (low, high) in zip(wrt, gate.domains):
        shape = dict(declared)[n]
        values[n] = sample(rng, shape, low, high, batch) if shape else rng.uniform(low, high)
    values["R"] = sample(rng, dict(declared)["R"], batch=batch)
    vjp_check(f, values)


@pytest.mark.parametrize("name", ARRAY)
def test_array_gate(name):
    gate = GATES[name]
    rng = np.random.default_rng(7)
    for shapes, params in gate.array.examples:
        for batch in (1, 3):
            names = ["X", "Y"][:gate.arity]
            declared = {}
            values = {}
            for position, (n, shape) in enumerate(zip(names, shapes)):
                if position in gate.array.labels:
                    declared[n] = symbp.ints(shape)
                    values[n] = rng.integers(0, 4, size=concrete(shape, batch))
                else:
                    declared[n] = shape
                    values[n] = sample(rng, shape, batch=batch)
            wrt = tuple(n for p, n in enumerate(names) if p not in gate.array.labels)
            core = call_expression(gate, names, params)
            out_shape = gate.array.shape(list(shapes), params)
            if out_shape:
                declared["R"] = out_shape
                values["R"] = sample(rng, out_shape, batch=batch)
                expr = f"sum({core} * R)"
            else:
                expr = f"{core} * 1.5"
            for jit in (False, True):
                if jit and batch == 1:
                    continue
                f = compiled(expr, tuple(sorted(declared.items(), key=lambda kv: kv[0])), jit,
                             wrt)
                vjp_check(f, values)


def test_worked_example_5():
    f = compiled("sum((W @ x)**2)", (("W", (2, 2)), ("x", (2,))), True, ("W", "x"))
    value, grads = f.value_and_grad(W=[[0.1, 0.5], [-0.3, 0.8]], x=[0.2, 0.4])
    assert value == pytest.approx(0.116, rel=1e-12)
    np.testing.assert_allclose(grads["W"], [[0.088, 0.176], [0.104, 0.208]], rtol=1e-12)
    np.testing.assert_allclose(grads["x"], [-0.112, 0.636], rtol=1e-12)


MLP = "mean(softmax_cross_entropy(relu(X @ W1 + b1) @ W2 + b2, y))"
MLP_SHAPES = (("X", ("B", 6)), ("y", Ints(("B",))), ("W1", (6, 5)), ("b1", (5,)),
              ("W2", (5, 3)), ("b2", (3,)))


def mlp_values(rng, batch=4, dtype=np.float64):
    return {"X": rng.normal(size=(batch, 6)).astype(dtype), "y": rng.integers(0, 3, batch),
            "W1": rng.normal(size=(6, 5)).astype(dtype), "b1": rng.normal(size=5).astype(dtype),
            "W2": rng.normal(size=(5, 3)).astype(dtype), "b2": rng.normal(size=3).astype(dtype)}


@pytest.mark.parametrize("jit", [False, True])
def test_mlp_loss_against_numerical_gradients(jit):
    f = compiled(MLP, MLP_SHAPES, jit, ("W1", "b1", "W2", "b2"))
    vjp_check(f, mlp_values(np.random.default_rng(3)))


def test_two_layer_net(jit=True):
    f = compiled("sum(W2 @ max(0, W1 @ x))", (("W1", (4, 3)), ("W2", (2, 4)), ("x", (3,))),
                 jit, ("W1", "W2", "x"))
    rng = np.random.default_rng(5)
    vjp_check(f, {"W1": rng.normal(size=(4, 3)), "W2": rng.normal(size=(2, 4)),
                  "x": rng.normal(size=3)})


def test_float32_in_float32_out():
    f = compiled(MLP, MLP_SHAPES, True, ("W1", "b1", "W2", "b2"))
    rng = np.random.default_rng(4)
    values64 = mlp_values(rng)
    values32 = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v)
                for k, v in values64.items()}
    v64, g64 = f.value_and_grad(**values64)
    v32, g32 = f.value_and_grad(**values32)
    assert v32 == pytest.approx(v64, rel=1e-5)
    for name in f.wrt:
        assert g32[name].dtype == np.float32 and g64[name].dtype == np.float64
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-4, atol=1e-5)


def test_jit_and_python_agree_on_arrays():
    fast = compiled(MLP, MLP_SHAPES, True, ("W1", "b1", "W2", "b2"))
    slow = compiled(MLP, MLP_SHAPES, False, ("W1", "b1", "W2", "b2"))
    values = mlp_values(np.random.default_rng(6))
    a, b = fast.value_and_grad(**values), slow.value_and_grad(**values)
    assert a[0] == pytest.approx(b[0], rel=1e-13)
    for name in fast.wrt:
        np.testing.assert_allclose(a[1][name], b[1][name], rtol=1e-12, atol=1e-14)


TRANSPOSED = ("sum((X.T @ Y + X.T @ V.T) * R1) + sum((X @ Z.T) * R2) + sum((x @ Z.T) * r)"
              " + sum((Z.T @ w) * x)")
TRANSPOSED_SHAPES = (("R1", (12, 20)), ("R2", ("B", 24)), ("V", (20, "B")), ("X", ("B", 12)),
                     ("Y", ("B", 20)), ("Z", (24, 12)), ("r", (24,)), ("w", (24,)), ("x", (12,)))


def transposed_values(rng, batch):
    shapes = dict(TRANSPOSED_SHAPES)
    return {n: rng.normal(size=concrete(s, batch)) for n, s in shapes.items()}


@pytest.mark.parametrize("jit", [False, True])
def test_products_of_transposed_views(jit):
    """``.T`` views (F-layout arrays in compiled code) into every product: the helpers get them
    as the stored arrays with the transpose flag flipped. Batch 1 multiplies by loops, batch 10
    by BLAS (with SciPy); Python runs NumPy whatever the size."""
    f = compiled(TRANSPOSED, TRANSPOSED_SHAPES, jit, ("V", "X", "Y", "Z", "w", "x"))
    for batch in (1, 10) if jit else (1,):
        vjp_check(f, transposed_values(np.random.default_rng(batch), batch))


def test_products_of_transposed_views_in_float32():
    f = compiled(TRANSPOSED, TRANSPOSED_SHAPES, True, ("V", "X", "Y", "Z", "w", "x"))
    for batch in (1, 10):
        values = transposed_values(np.random.default_rng(batch), batch)
        v64, g64 = f.value_and_grad(**values)
        v32, g32 = f.value_and_grad(**{n: v.astype(np.float32) for n, v in values.items()})
        assert v32 == pytest.approx(v64, rel=1e-4, abs=1e-3)
        for name in f.wrt:
            assert g32[name].dtype == np.float32
            np.testing.assert_allclose(g32[name], g64[name], rtol=1e-4, atol=1e-4)


def test_runtime_matmul_takes_any_layout():
    """The compiled helper against NumPy for every flag, for inputs that are transposed views,
    strided slices or C arrays and an output that is not C-contiguous, both sides of the loops'
    crossover, float32 and float64."""
    import itertools

    import numba

    from symbp import runtime

    @numba.njit
    def product(a, b, out, add, ta, tb):
        runtime.matmul(a, b, out, add, ta, tb)

    rng = np.random.default_rng(9)
    for dtype, (m, k, n) in itertools.product((np.float32, np.float64),
                                              ((3, 5, 9), (3, 5, 2), (40, 30, 50))):
        tol = 1e-4 if dtype == np.float32 else 1e-12
        for ta, tb, add in itertools.product((False, True), repeat=3):
            a = rng.normal(size=(k, m) if ta else (m, k)).astype(dtype)
            b = rng.normal(size=(n, k) if tb else (k, n)).astype(dtype)
            start = rng.normal(size=(m, n)).astype(dtype)
            want = (a.T if ta else a) @ (b.T if tb else b) + (start if add else 0)
            layouts = [(a, b, start.copy())]  # C arrays
            if dtype == np.float64:  # one compiled version per layout: not all of them
                layouts += [(np.asfortranarray(a), np.repeat(b, 2, axis=1)[:, ::2],
                             np.asfortranarray(start))]
            for x, y, out in layouts:
                product(x, y, out, add, ta, tb)
                np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
                out = start.copy()
                runtime.matmul(x, y, out, add, ta, tb)  # the Python path
                np.testing.assert_allclose(out, want, rtol=tol, atol=tol)


def test_fan_out_never_aliases():
    """u fans out; its gradient is the sum of two contributions, the first being another
    gradient buffer (du = dv); accumulating the second must not change dv."""
    src = "u = X * 2.0\nv = u + 1.0\nf = sum(v * v) + sum(u * 3.0)"
    f = symbp.compile(src, shapes={"X": (3,)})
    x = np.array([0.5, -1.0, 2.0])
    _, grads = f.value_and_grad(X=x)
    np.testing.assert_allclose(grads["X"], 2 * (2 * (2 * x + 1) + 3))


def test_fan_out_of_an_upstream_that_is_reused():
    f = compiled("sum(exp(A @ B) + (A @ B) * (A @ B))", (("A", (2, 3)), ("B", (3, 2))), True,
                 ("A", "B"))
    rng = np.random.default_rng(8)
    vjp_check(f, {"A": rng.normal(size=(2, 3)), "B": rng.normal(size=(3, 2))})


def test_logsumexp_is_finite_for_large_logits():
    f = compiled("sum(logsumexp(Z)) + sum(softmax(Z) * R) + sum(log_softmax(Z) * R)",
                 (("Z", ("B", 3)), ("R", ("B", 3))), True, ("Z",))
    z = np.array([[1000.0, -1000.0, 999.0], [-1000.0, -1001.0, -1002.0]])
    value, grads = f.value_and_grad(Z=z, R=np.ones_like(z))
    assert np.isfinite(value) and np.all(np.isfinite(grads["Z"]))


def test_shape_mismatch_is_reported_with_both_shapes_and_position():
    with pytest.raises(symbp.ParseError) as info:
        symbp.compile("sum(X @ W)", shapes={"X": ("B", 4), "W": (3, 2)}, jit=False)
    message = str(info.value)
    assert "(B, 4)" in message and "(3, 2)" in message and "^" in message


def test_call_time_shape_and_dtype_errors():
    f = compiled(MLP, MLP_SHAPES, False, ("W1", "b1", "W2", "b2"))
    values = mlp_values(np.random.default_rng(9))
    with pytest.raises(symbp.CallError, match="shape"):
        f(**{**values, "W1": np.zeros((5, 6))})
    with pytest.raises(symbp.CallError, match="dimension B"):
        f(**{**values, "y": np.zeros(7, dtype=int)})
    with pytest.raises(symbp.CallError, match="integer"):
        f(**{**values, "y": values["y"].astype(float)})
    with pytest.raises(symbp.CallError, match="mix dtypes"):
        f(**{**values, "W1": values["W1"].astype(np.float32)})
    with pytest.raises(symbp.CallError, match="label"):
        f(**{**values, "y": np.full(4, 3)})


def test_output_must_be_scalar():
    with pytest.raises(symbp.ParseError, match="wrap it in sum"):
        symbp.compile("X * 2", shapes={"X": (3,)}, jit=False)


def test_kernel_into_writes_buffers_without_allocating():
    f = compiled(MLP, MLP_SHAPES, True, ("W1", "b1", "W2", "b2"))
    values = mlp_values(np.random.default_rng(10))
    expected_value, expected = f.value_and_grad(**values)
    head = f.source.split("def value_and_grad_into(")[1].split(")")[0].split(", ")
    assert head[-1] == "backward=True"  # every gradient is an array: the forward-only flag
    head = head[:-1]
    args = [values.get(n) for n in head]
    buffers = {}
    for k, n in enumerate(head):
        if args[k] is None:  # a buffer: shapes from the allocating wrapper's np.empty line
            line = next(s for s in f.source.splitlines()
                        if s.strip().startswith(f"{n} = np.empty"))
            shape = eval(line.split("np.empty(")[1].split(", dtype")[0],  # noqa: S307 our source
                         {"B": 4})
            buffers[n] = np.full(shape, np.nan)
            args[k] = buffers[n]
    (value,) = f.kernel_into(*args, False)  # the forward pass alone: no gradient written
    assert value == pytest.approx(expected_value, rel=1e-13)
    assert all(np.isnan(buffers[f"d{name}"]).all() for name in f.wrt)
    (value,) = f.kernel_into(*args)
    assert value == pytest.approx(expected_value, rel=1e-13)
    for name in f.wrt:
        np.testing.assert_allclose(buffers[f"d{name}"], expected[name], rtol=1e-13)


CS231N = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"


@pytest.mark.parametrize("jit", [False, True])
def test_points_of_a_scalar_function(jit):
    f = symbp.compile(CS231N, jit=jit)
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    values, grads = f.value_and_grad(x=x, y=y)
    assert values.shape == (3, 5) and grads["x"].shape == (3, 5)
    for idx in np.ndindex(3, 5):
        v, g = f.value_and_grad(x=float(x[idx]), y=float(y[idx]))
        assert values[idx] == pytest.approx(v, rel=1e-14)
        assert grads["x"][idx] == pytest.approx(g["x"], rel=1e-14)
        assert grads["y"][idx] == pytest.approx(g["y"], rel=1e-14)
    np.testing.assert_allclose(f(x, 0.5), [[f(float(a), 0.5) for a in row] for row in x],
                               rtol=1e-14)  # a scalar broadcasts against the arrays


def test_points_parallel_matches_serial_and_writes_out():
    f = symbp.compile(CS231N)
    n = symbp.function.PARALLEL_MIN_POINTS + 17
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=n), rng.normal(size=n)
    out = (np.empty(n), {"x": np.empty(n), "y": np.empty(n)})
    result = f.value_and_grad(x=x, y=y, out=out)
    assert result[0] is out[0] and result[1]["x"] is out[1]["x"]
    serial = f._points_kernel(False)
    expected = [np.empty(n) for _ in range(3)]
    serial(x, y, *expected)
    np.testing.assert_array_equal(out[0], expected[0])
    np.testing.assert_array_equal(out[1]["y"], expected[2])


def test_points_float32_and_errors():
    f = symbp.compile(CS231N)
    x = np.linspace(-1, 1, 7, dtype=np.float32)
    values = f(x, x)
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, [f(float(a), float(a)) for a in x], rtol=1e-6)
    with pytest.raises(symbp.CallError, match="one shape"):
        f(np.zeros(3), np.zeros(4))
    with pytest.raises(symbp.CallError, match="C-contiguous"):
        f(np.zeros(3), np.zeros(3), out=np.zeros(4))


def test_forward_only_array_function():
    f = symbp.compile("sum(X * X)", shapes={"X": (3,)}, wrt=[])
    assert f(X=np.array([1.0, 2.0, 3.0])) == 14.0
    assert f.value_and_grad(X=np.ones(3)) == (3.0, {})


ESCAPED = ("np", "dtype", "range", "prange", "matmul", "dot", "softmax_backward",
           "value_and_grad_into", "value_and_grad_points", "backward")


def test_names_the_generated_code_uses_are_escaped():
    """Inputs named like what the generated code uses (modules, builtins, helpers, its own
    functions and flags) are renamed in it: one function with all of them (one compile)."""
    expr = " + ".join(f"sum(X * {name})" for name in ESCAPED) + " + sum(X @ W)"
    f = symbp.compile(expr, shapes={"X": ("B", 2), "W": (2, 3),
                                    **{name: ("B", 2) for name in ESCAPED}})
    x = np.arange(4.0).reshape(2, 2)
    values = {name: x * (k + 1) for k, name in enumerate(ESCAPED)}
    value, grads = f.value_and_grad(X=x, W=np.ones((2, 3)), **values)
    assert value == pytest.approx(float(sum(np.sum(x * v) for v in values.values())
                                        + np.sum(x @ np.ones((2, 3)))))
    for name in ESCAPED:
        np.testing.assert_allclose(grads[name], x)
    np.testing.assert_allclose(grads["X"], sum(values.values()) + np.ones((2, 3)).sum(axis=1))


def test_labels_are_never_differentiated():
    f = compiled(MLP, MLP_SHAPES, False, ("W1", "b1", "W2", "b2"))
    default = symbp.compile(MLP, shapes=dict(MLP_SHAPES), jit=False)
    assert default.wrt == ("X", "W1", "b1", "W2", "b2") and f.wrt == default.wrt[1:]
    with pytest.raises(symbp.SymbpError, match="integer labels"):
        symbp.compile(MLP, shapes=dict(MLP_SHAPES), jit=False, wrt=["W1", "y"])


def test_call_errors_for_arrays():
    f = compiled(MLP, MLP_SHAPES, False, ("W1", "b1", "W2", "b2"))
    values = mlp_values(np.random.default_rng(13))
    with pytest.raises(symbp.CallError, match="empty"):
        f(**{**values, "X": np.zeros((0, 6)), "y": np.zeros(0, dtype=int)})
    with pytest.raises(symbp.CallError, match="rectangular"):
        f(**{**values, "b1": [[1.0], [1.0, 2.0]]})
    with pytest.raises(symbp.CallError, match="out="):
        f(**values, out=np.zeros(1))
    lists = {**{k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in values.items()},
             "b2": [0.0, 0.1, 0.2]}  # a list follows the arrays' dtype
    assert f.grad(**lists)["b2"].dtype == np.float32


def test_points_dtype_follows_arrays_not_python_numbers():
    f = symbp.compile(CS231N)
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    assert f(x, 0.5).dtype == np.float32
    with pytest.raises(symbp.CallError, match="out="):
        f.value_and_grad(x, x, out=np.zeros(5, np.float32))
