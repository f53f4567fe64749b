"""Bad input gets a clear SymbpError that points at the problem."""

from __future__ import annotations

import pytest
from conftest import compiled

import symbp


def error_of(expr, **kwargs) -> str:
    with pytest.raises(symbp.SymbpError) as info:
        symbp.compile(expr, jit=False, **kwargs)
    return str(info.value)


def caret_column(message: str) -> int:
    """Column (0-based, in the shown line) of the first caret."""
    lines = message.splitlines()
    return lines[-1].index("^") - 4


def test_syntax_error_has_a_caret():
    message = error_of("(x + y")
    assert "syntax error" in message and "^" in message


def test_unknown_function_lists_the_gates_and_points_at_it():
    message = error_of("x + sigmod(y)")
    assert "unknown function 'sigmod'" in message
    assert "sigmoid" in message and "tanh" in message
    assert caret_column(message) == 4
    assert message.splitlines()[-1].strip() == "^" * len("sigmod")


def test_unknown_name_with_declared_inputs():
    message = error_of("x * z", inputs=["x", "y"])
    assert "unknown name 'z'" in message and "x, y" in message


def test_wrong_arity():
    assert "takes 1 input(s), got 2" in error_of("sigmoid(x, y)") or "sigmoid" in \
        error_of("sigmoid(x, y)")
    assert "takes 2 input(s), got 1" in error_of("max(x)")
    assert "no parameter 'beta'" in error_of("elu(x, beta=2.0)")


def test_gate_parameters_must_be_constants():
    assert "numeric constants" in error_of("leaky_relu(x, y)")


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "# nothing"])
def test_empty_input(text):
    assert "empty" in error_of(text)


def test_assignment_to_a_gate_name():
    message = error_of("sigmoid = x + 1\nf = sigmoid * 2")
    assert "gate name" in message and "line 1" in message


def test_use_before_staged_assignment():
    message = error_of("a = b * 2\nb = x + 1\nf = a + b")
    assert "used before its staged assignment on line 2" in message and "line 1" in message


def test_assigned_twice():
    assert "assigned twice" in error_of("a = x + 1\na = a * 2")


def test_bare_expression_before_the_last_line():
    assert "only the last line" in error_of("x + 1\nf = x * 2")


def test_wrt_must_name_inputs():
    assert "not an input" in error_of("x * y", wrt=["z"])


def test_constant_expression():
    assert "constant" in error_of("2 * 3")


def test_non_finite_constant():
    assert "finite" in error_of("x * 1e999") or "finite" in error_of("x * 1e999")
    assert "finite" in error_of("x + 10.0 ** 400")
    assert "finite" in error_of("x + log(-1)")


def test_deep_valid_expression_compiles_or_refuses_cleanly():
    depth_ok = "sigmoid(" * 60 + "x" + ")" * 60
    f = symbp.compile(depth_ok, jit=False)
    assert 0.5 < f(0.0) < 1.0
    for text in ["sigmoid(" * 5000 + "x" + ")" * 5000, "x" + "+x" * 3000, "-" * 5000 + "x"]:
        with pytest.raises(symbp.SymbpError):
            symbp.compile(text, jit=False)


def test_call_errors():
    f = compiled("(x + y) * z", False)
    with pytest.raises(symbp.CallError, match="missing input"):
        f(1.0, 2.0)
    with pytest.raises(symbp.CallError, match="unknown input 'w'"):
        f(1.0, 2.0, 3.0, w=1.0)
    with pytest.raises(symbp.CallError, match="given twice"):
        f(1.0, 2.0, 3.0, x=1.0)
    with pytest.raises(symbp.CallError, match="real number"):
        f("1", 2.0, 3.0)
    with pytest.raises(symbp.CallError, match="at most 3"):
        f(1.0, 2.0, 3.0, 4.0)


def test_errors_share_one_root():
    for cls in (symbp.ParseError, symbp.GateError, symbp.CompileError, symbp.CallError):
        assert issubclass(cls, symbp.SymbpError)


def test_sympy_expression_input(jit):
    import sympy as sp

    x, y = sp.symbols("x y")
    f = symbp.compile((x + 1 / (1 + sp.exp(-y))) / (1 / (1 + sp.exp(-x)) + (x + y) ** 2), jit=jit)
    assert f.inputs == ("x", "y")
    value, grads = f.value_and_grad(3.0, -4.0)
    assert value == pytest.approx(1.54564488411, rel=1e-9)
    assert grads == {"x": pytest.approx(2.05956979557, rel=1e-9),
                     "y": pytest.approx(1.59223275148, rel=1e-9)}


def test_sympy_unsupported_function():
    import sympy as sp

    x = sp.Symbol("x")
    with pytest.raises(symbp.ParseError, match="not a symbp gate"):
        symbp.compile(sp.besselj(0, x), jit=False)


@pytest.mark.parametrize("expr, at, expected", [
    ("x*(x + y) + x*2", (0.7, -1.3), 0.7 * (0.7 - 1.3) + 1.4),  # constant 2 vs node 2
    ("0*x + x*x", (0.7, 0.0), 0.49),
    ("x*x + 0*x", (0.7, 0.0), 0.49),
])
def test_shared_subexpressions_never_confuse_constants_with_nodes(expr, at, expected):
    f = symbp.compile(expr, jit=False, inputs=["x", "y"])
    assert f(*at) == pytest.approx(expected, rel=1e-12)


def test_sympy_signs_and_constants():
    import sympy as sp

    x, y = sp.symbols("x y")
    assert symbp.compile(-(x + y), jit=False).value_and_grad(x=0.5, y=2.0) == \
        (-2.5, {"x": -1.0, "y": -1.0})
    f = symbp.compile(sp.sqrt(2) * x + sp.log(x) / sp.log(2) + sp.sin(1), jit=False)
    assert f(0.5) == pytest.approx(float((sp.sqrt(2) * 0.5 + sp.log(0.5) / sp.log(2)
                                          + sp.sin(1)).evalf()), rel=1e-12)


@pytest.mark.parametrize("expr", ["0**x", "(-2)**x"])
def test_derivative_that_is_not_finite_and_real_is_refused(expr):
    assert "not a finite real number" in error_of(expr)


def test_arity_is_reported_as_arity():
    assert "takes 2 input(s), got 3" in error_of("max(x, y, z)")
    assert "takes 1 input(s) and parameters slope, got 3" in error_of("leaky_relu(x, 0.1, 2)")


def test_caret_counts_characters_not_bytes():
    message = error_of("αβγ + foo(x)")
    assert caret_column(message) == 6 and message.splitlines()[-1].strip() == "^^^"


def test_wide_flat_sum_compiles_but_huge_staged_line_is_refused():
    assert len(symbp.compile("+".join(f"x{i}" for i in range(150)), jit=False).inputs) == 150
    balanced = "*".join(f"(x{2 * i}*x{2 * i + 1})" for i in range(40))
    assert "split it into several lines" in error_of(f"f = {balanced}")


def test_unknown_name_in_staged_line_points_at_the_name():
    message = error_of("a = q * 2\nf = a + x", inputs=["x"])
    assert "unknown name 'q'" in message and caret_column(message) == 4


def test_huge_call_value_is_a_call_error():
    with pytest.raises(symbp.CallError, match="too large"):
        compiled("(x + y) * z", False)(10 ** 400, 1.0, 1.0)


# --- issue 10: every accepted expression gives the right answer, every failure a SymbpError ---

def _numeric(f, point: dict, name: str, eps: float = 1e-6) -> float:
    up, down = dict(point), dict(point)
    up[name] += eps
    down[name] -= eps
    return (f(**up) - f(**down)) / (2 * eps)


@pytest.mark.parametrize("expr", ["f = abs(x**y)", "f = abs(x**x)", "abs(x**y)", "abs(x**x)"])
def test_abs_of_a_power_compiles_and_differentiates(expr):
    """SymPy writes d|x**y|/dx with re() and im(), which no printer prints."""
    f = symbp.compile(expr, jit=False)
    point = {n: v for n, v in (("x", 1.7), ("y", -1.3)) if n in f.inputs}
    value, grads = f.value_and_grad(**point)
    assert value == pytest.approx(abs(1.7 ** point.get("y", 1.7)))
    for name in f.wrt:
        assert grads[name] == pytest.approx(_numeric(f, point, name), rel=1e-6)


def test_constant_beyond_float64_prints_exactly(jit):
    """x/1e-320 is x*1e320 to SymPy: printed as 'inf*x' it was a NameError (Python) and a
    CompileError (Numba); the truth at x = 1e-20 is 1e-20/1e-320 (about 1e300)."""
    f = compiled("x/1e-320", jit)
    assert "x/1e-320" in f.source and " inf" not in f.source
    assert f(1e-20) == 1e-20 / 1e-320


def test_folded_constant_beyond_float64_both_ways_is_refused():
    assert "beyond float64" in error_of("f = x * 1e-200 * 1e-200")


def test_draw_and_python_path_run_what_they_accept():
    pytest.importorskip("graphviz")
    f = symbp.compile("x/1e-320 + y * 1e300 * 1e300", jit=False)
    value = f(x=1e-20, y=0.0)
    assert value == 1e-20 / 1e-320
    assert "math.inf" in f.source or "1e+300" in f.source
    assert "digraph" in f.draw(x=1e-20, y=0.0).source


def test_sympy_input_is_bounded_and_a_200_deep_tree_compiles():
    import sympy as sp

    x, y = sp.symbols("x y")
    with pytest.raises(symbp.ParseError, match="too large"):
        symbp.compile(x * sp.Integer(10) ** 5000, jit=False)
    e = x
    for _ in range(200):  # srepr (the cache key) recursed here
        e = sp.Mul(sp.Add(e, 1, evaluate=False), y, evaluate=False)
    f = symbp.compile(e, jit=False)
    expected = 0.5
    for _ in range(200):
        expected = (expected + 1) * 0.99
    assert f(x=0.5, y=0.99) == pytest.approx(expected, rel=1e-12)


def test_pi_and_module_constants():
    import math

    f = symbp.compile("sin(2*pi*x) + math.pi + np.pi * x + math.e + np.e * x + numpy.pi",
                      jit=False)
    assert f.inputs == ("x",)
    value, grads = f.value_and_grad(x=0.1)
    assert value == pytest.approx(math.sin(0.2 * math.pi) + 2 * math.pi + 0.1 * math.pi
                                  + math.e + 0.1 * math.e)
    assert grads["x"] == pytest.approx(2 * math.pi * math.cos(0.2 * math.pi) + math.pi + math.e)


def test_a_bare_e_is_a_name_and_a_declared_pi_is_an_input():
    assert symbp.compile("e1 * e + x", jit=False).inputs == ("e1", "e", "x")
    f = symbp.compile("pi * x", inputs=["pi", "x"], jit=False)
    assert f.inputs == ("pi", "x") and f(pi=2.0, x=3.0) == 6.0
    assert "constant" in error_of("pi = x * 2\npi")


@pytest.mark.parametrize("expr", ["x**y", "f = x**y"])
def test_power_at_zero_has_the_gradient_pytorch_gives(expr, jit):
    """d(x**y) at x = 0, y = 2 is (2*0, 0**2*log 0 -> 0), not NaN."""
    f = symbp.compile(expr, jit=jit) if expr.startswith("f") else compiled(expr, jit)
    value, grads = f.value_and_grad(x=0.0, y=2.0)
    assert (value, grads) == (0.0, {"x": 0.0, "y": 0.0})
    value, grads = f.value_and_grad(x=1.5, y=2.5)  # and elsewhere unchanged
    assert grads["x"] == pytest.approx(2.5 * 1.5 ** 1.5)
    assert grads["y"] == pytest.approx(1.5 ** 2.5 * __import__("math").log(1.5))


@pytest.mark.parametrize("name", ["self", "cls"])
def test_an_input_named_self_or_cls_is_a_keyword_like_any(name):
    f = symbp.compile(f"{name} * y", jit=False)
    assert f(**{name: 2.0, "y": 3.0}) == 6.0
    assert f.value_and_grad(**{name: 2.0, "y": 3.0}) == (6.0, {name: 3.0, "y": 2.0})
    assert f.grad(**{name: 2.0, "y": 3.0}) == {name: 3.0, "y": 2.0}


@pytest.mark.parametrize("kwargs, message", [
    ({"inputs": 5}, "inputs must be a name or a list of names"),
    ({"wrt": 5}, "wrt must be a name or a list of names"),
    ({"wrt": ["x", "x"]}, "twice"),
    ({"shapes": {"Q": (3,)}}, "shapes names 'Q', not an input"),
])
def test_wrong_typed_arguments_are_symbp_errors(kwargs, message):
    assert message in error_of("x * 2", **kwargs)


@pytest.mark.parametrize("params, message", [
    ({1: 1.0}, "must be a string"),
    ({"k": 10 ** 400}, "finite real number"),
])
def test_gate_parameters_are_checked(params, message):
    with pytest.raises(symbp.GateError, match=message):
        symbp.gate("checked_params", "a * k", params=params)


def test_bench_subprocess_ignores_a_symbp_folder_where_the_user_stands(tmp_path, monkeypatch):
    """`symbp bench --quick` from a folder holding a checkout's `symbp/` imported that folder."""
    from symbp import bench

    decoy = tmp_path / "here" / "symbp"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy was imported')\n")
    monkeypatch.chdir(tmp_path / "here")
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    proc = bench.run_child("import symbp, sys; print(symbp.__file__)", [], str(cache))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == symbp.__file__


@pytest.mark.parametrize("expr, point", [("x**y", {"x": -2.0, "y": 0.5}),
                                         ("x**1.5 + y", {"x": -2.0, "y": 1.0})])
def test_draw_where_python_has_no_real_value_is_a_call_error(expr, point):
    pytest.importorskip("graphviz")
    with pytest.raises(symbp.CallError, match="cannot draw the values at this point"):
        symbp.compile(expr, jit=False).draw(**point)
