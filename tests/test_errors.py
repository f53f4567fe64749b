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
