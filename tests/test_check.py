"""symbp.check (a hand-written backward pass, line by line), `symbp check` and Function.check.

The reference is the CS231n staged code of the worked examples (section 3), exactly as the notes
write it; each mutation changes one line and must be caught at that line.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import symbp
from symbp import ParseError, SymbpError, bench
from symbp.cli import main
from tests.conftest import compiled, numeric_gradient


def _notes_code() -> tuple[str, str]:
    """The forward and the backward lines of the notes' staged code (worked examples, section
    3) as ``bench.cs231n_by_hand`` writes them: its body after the docstring, one line each."""
    body = inspect.getsource(bench.cs231n_by_hand).split('"""')[2]
    forward, backward = body.split("# backward pass")
    return tuple("".join(f"{line.strip()}\n" for line in part.splitlines()
                         if line.strip() and not line.strip().startswith(("#", "return")))
                 for part in (forward, backward))


FORWARD, BACKWARD = _notes_code()
SOURCE = FORWARD + BACKWARD
AT = {"x": 3.0, "y": -4.0}
FIRST = FORWARD.count("\n") + 1  # the number of the first backward line
LINES = BACKWARD.splitlines()


def _forward(x, y):
    return (x + 1 / (1 + math.exp(-y))) / (1 / (1 + math.exp(-x)) + (x + y) ** 2)


def _with(number: int, new: str | None) -> str:
    """SOURCE with backward line ``number`` (a file line number) replaced, or removed."""
    lines = SOURCE.splitlines()
    lines[number - 1:number] = [] if new is None else [new]
    return "\n".join(lines) + "\n"


def _number(prefix: str) -> int:
    """The file line number of the backward line starting with ``prefix``."""
    return FIRST + next(k for k, line in enumerate(LINES) if line.startswith(prefix))


def test_the_notes_code_is_right():
    report = symbp.check(SOURCE, at=AT)
    assert report.ok and report.first_wrong_line is None and not report.missing
    assert [line.number for line in report.lines] == list(range(FIRST, FIRST + len(LINES)))
    assert all(line.status == "ok" for line in report.lines)
    assert "right" in str(report)
    final = {line.variable: line.found for line in report.lines}  # the last value of each
    numeric = numeric_gradient(_forward, [3.0, -4.0])
    assert final["dx"] == pytest.approx(numeric[0], rel=1e-8)
    assert final["dy"] == pytest.approx(numeric[1], rel=1e-8)
    assert final["dx"] == pytest.approx(2.05956979557, rel=1e-9)  # the worked example
    assert final["dy"] == pytest.approx(1.59223275148, rel=1e-9)


def test_the_benchmarks_hand_written_pass_is_right():
    assert (FORWARD.count("\n"), BACKWARD.count("\n")) == (8, 12)
    assert symbp.check(SOURCE, at=AT).ok


@pytest.mark.parametrize("k", range(len(LINES)))
def test_a_wrong_factor_is_caught_at_its_line_and_later_lines_follow(k):
    target, op, rhs = LINES[k].split("#")[0].split(None, 2)
    number = FIRST + k
    report = symbp.check(_with(number, f"{target} {op} 1.5 * ({rhs.strip()})"), at=AT)
    assert not report.ok and report.first_wrong_line == number
    wrong = next(line for line in report.lines if line.number == number)
    assert wrong.status == "wrong" and wrong.variable == target
    assert wrong.message.startswith("wrong local derivative")
    assert all(line.status == "ok" for line in report.lines if line.number < number)
    later = [line for line in report.lines if line.number > number and line.status != "ok"]
    assert all(line.status == "follows" and line.cause == number for line in later)
    assert f"line {number}: {target} {op} 1.5" in str(report)


@pytest.mark.parametrize("old, new", [
    ("dden = ", "dden = (-1.0 / den) * dinvden"),  # wrong local derivative of 1/den
    ("dxpy = ", "dxpy = (xpy) * dxpysqr"),  # d(xpy**2) is 2*xpy
    ("dx += ((1", "dx += (sigx) * dsigx"),  # the sigmoid's local gradient (1 - s) * s
    ("dnum = ", "dnum = num"),  # the mul gate switches its operands: swapped
    ("dinvden = ", "dinvden = invden"),
    ("dy += ", "dy += ((1 - sigy) * sigy) * dsigx"),  # the wrong upstream gradient
    ("dx = ", "dx = (1) * dxpysqr"),  # x is not an input of xpysqr
    ("dy = ", "dy += (1) * dxpy"),  # += before anything was assigned
    ("dsigy = ", "dsigy = (1) * dnum + 0 * dsigy"),  # reads a gradient not yet computed
])
def test_one_line_mutations_are_caught_at_the_line(old, new):
    number = _number(old)
    report = symbp.check(_with(number, new), at=AT)
    assert not report.ok and report.first_wrong_line == number
    line = next(line for line in report.lines if line.number == number)
    assert line.text == new and line.local and line.message
    assert str(report).startswith(f"line {number}: {new}")


@pytest.mark.parametrize("prefix", ["dx += ((1", "dx += (1)", "dy += "])
def test_equals_instead_of_plus_equals_at_a_fork(prefix):
    number = _number(prefix)
    new = LINES[number - FIRST].replace("+=", "=", 1)
    report = symbp.check(_with(number, new), at=AT)
    assert report.first_wrong_line == number
    assert "a fork" in report.lines[number - FIRST].message
    assert "write +=" in str(report)


@pytest.mark.parametrize("prefix", ["dx += ((1", "dx += (1)", "dy += "])
def test_a_dropped_plus_equals_is_named_as_a_missing_fork(prefix):
    number = _number(prefix)
    report = symbp.check(_with(number, None), at=AT)
    assert not report.ok and report.first_wrong_line is None
    (missing,) = report.missing
    assert missing.fork and missing.variable == prefix.split()[0]
    assert missing.suggestion.startswith(f"{missing.variable} += ")
    upstream = LINES[number - FIRST].split("*")[-1].split("#")[0].strip()  # dsigx, dnum, dsigy
    assert missing.text.startswith(upstream[1:] + " = ")  # the forward line it comes from
    assert "missing += at a fork" in str(report)


@pytest.mark.parametrize("prefix", ["dsigy = ", "dxpysqr = ", "dnum = "])
def test_a_missing_line_is_caught_where_its_gradient_is_read(prefix):
    number = _number(prefix)
    variable = prefix.split()[0]
    report = symbp.check(_with(number, None), at=AT)
    reader = next(line for line in report.lines if variable in line.text)
    assert report.first_wrong_line == reader.number
    assert f"reads {variable}, which no earlier line computes" in reader.message
    assert any(m.variable == variable and not m.fork for m in report.missing)
    assert "never computed" in str(report)


def test_a_gradient_never_computed_for_an_input():
    source = _with(_number("dy += "), None).replace("dy = (1) * dxpy", "")
    report = symbp.check(source, at=AT)
    assert report.first_wrong_line is None
    assert [m.suggestion for m in report.missing] == ["dy = dxpy",
                                                       "dy += (sigy*(1 - sigy)) * dsigy"]


def test_a_contribution_counted_twice():
    number = _number("dx += (1)")
    source = _with(number, LINES[number - FIRST] + "\n" + LINES[number - FIRST])
    report = symbp.check(source, at=AT)
    assert report.first_wrong_line == number + 1
    assert "already added" in report.lines[number + 1 - FIRST].message


def test_a_shortcut_through_two_forward_lines_is_named():
    number = _number("dxpy = ")  # (5) and (6) in one step: right in value, not line by line
    report = symbp.check(_with(number, "dxpy = (2 * xpy) * dden"), at=AT)
    assert report.first_wrong_line == number
    line = report.lines[number - FIRST]
    assert "xpy is not an input of line 6" in line.message
    assert "dxpy = 1.58318689455 is xpy's whole gradient, which is right" in line.message
    sigx, sigy = 1 / (1 + math.exp(-3.0)), 1 / (1 + math.exp(4.0))
    numeric = numeric_gradient(lambda xpy: (3.0 + sigy) / (sigx + xpy ** 2), [-1.0])
    assert line.found == pytest.approx(numeric[0], rel=1e-8)
    assert all(later.status == "ok" for later in report.lines[number + 1 - FIRST:])
    assert [m.line for m in report.missing] == [5]  # xpysqr's contribution to dxpy
    assert not report.missing[0].fork and report.missing[0].written  # xpy is used once
    assert "dxpy: missing: no line adds the gradient from line 5" in str(report)
    text = str(report).splitlines()
    assert text[1].strip().startswith("xpy is not an input") and "whole gradient" in text[2]
    ok = symbp.check(_with(number, "dxpy = (1.5 * xpy) * dden"), at=AT)  # wrong, no shortcut
    assert "whole gradient" not in ok.lines[number - FIRST].message


def test_other_inputs_and_the_output_gradient():
    source = "q = x + y\nf = q * z\ndf = 1.0\ndq = z * df\ndz = q * df\ndx = dq\ndy = dq\n"
    assert symbp.check(source, at={"x": -2, "y": 5, "z": -4}).ok
    report = symbp.check(source.replace("df = 1.0", "df = 2.0"), at={"x": -2, "y": 5, "z": -4})
    assert report.first_wrong_line == 3


@pytest.mark.parametrize("backward, message", [
    ("dx = zz * dxpy", "unknown name 'zz'"),
    ("dx = x.__class__", "attribute access"),
    ("dx = __import__(x)", "__"),
    ("dx = 2**2**2**2**2**2", "no finite real value"),
    ("dx -= dxpy", "+="),
    ("for i in x: pass", "'dname = expression'"),
    ("q = 1", "gradient d<name> of a forward value"),
    ("dx = [dxpy]", "lists not allowed"),
    ("dx = dxpy if x else 0", "conditional"),
])
def test_hostile_backward_lines_are_refused_with_a_caret(backward, message):
    source = FORWARD + "dxpy = 1.0\n" + backward + "\n"
    with pytest.raises(ParseError, match=None) as info:
        symbp.check(source, at=AT)
    assert message in str(info.value)


def test_huge_values_are_refused():
    with pytest.raises(SymbpError, match="no finite value"):
        symbp.check(FORWARD + "dnum = x**1e300 * invden\n", at=AT)
    # SymPy evaluates exp(exp(50)) while the point is substituted (an OverflowError once)
    with pytest.raises(SymbpError, match="line 1 has no finite value"):
        symbp.check("f = exp(exp(exp(exp(x))))\ndx = 1\n", at={"x": 50})


def test_numpy_scalars_are_numbers():
    report = symbp.check(SOURCE, at={"x": np.float32(3.0), "y": np.int64(-4)})
    assert report.ok  # they were refused as "not a finite real number"
    assert [line.found for line in report.lines] == \
        [line.found for line in symbp.check(SOURCE, at=AT).lines]


@pytest.mark.parametrize("source, at, message", [
    (SOURCE, {"x": 3.0}, "missing y"),
    (SOURCE, {"x": 3.0, "y": -4.0, "w": 1.0}, "unknown w"),
    (SOURCE, {"x": math.nan, "y": -4.0}, "finite real number"),
    (SOURCE, {"x": "3", "y": -4.0}, "finite real number"),
    (SOURCE, {"x": 10**400, "y": -4.0}, "finite real number"),  # an OverflowError once
    (SOURCE, {"x": np.bool_(True), "y": -4.0}, "finite real number"),
    (SOURCE, {"x": 3.0, "y": -4.0, 1: 2.0}, "unknown 1"),  # a TypeError once
    (SOURCE, [3.0, -4.0], "dict"),
    (FORWARD, AT, "no backward pass"),
    (FORWARD + "dsgx = (1) * dden\n", AT,  # a typo in the first backward line
     r"line 9, dsgx = \.\.\., is a backward line: no forward value is named sgx"),
    ("dx += 1\n", AT, "needs a forward pass"),
    (b"f = x\ndx = 1", AT, "must be a string"),
])
def test_bad_input_is_a_clear_error(source, at, message):
    with pytest.raises(SymbpError, match=message):
        symbp.check(source, at=at)


# --- vectorized code: worked example 5, f = ||W x||^2 with x a column ---------------------------

VECTOR = "q = W @ x\nf = sum(q**2)\ndq = 2 * q\ndW = dq @ x.T\ndx = W.T @ dq\n"
VECTOR_AT = {"W": np.array([[0.1, 0.5], [-0.3, 0.8]]), "x": np.array([[0.2], [0.4]])}
VECTOR_SHAPES = {"W": (2, 2), "x": (2, 1)}


def _vector_numeric(name: str) -> np.ndarray:
    """Central differences of sum((W @ x)**2) with respect to W or x, float64."""
    point = {k: v.copy() for k, v in VECTOR_AT.items()}
    grad = np.empty_like(point[name])
    for k in np.ndindex(grad.shape):
        up = {n: v.copy() for n, v in point.items()}
        down = {n: v.copy() for n, v in point.items()}
        up[name][k] += 1e-6
        down[name][k] -= 1e-6
        grad[k] = (np.sum((up["W"] @ up["x"]) ** 2) - np.sum((down["W"] @ down["x"]) ** 2)) / 2e-6
    return grad


def test_vectorized_dW_is_2_q_x_transposed():
    report = symbp.check(VECTOR, at=VECTOR_AT, shapes=VECTOR_SHAPES)
    assert report.ok, str(report)
    final = {line.variable: line.found for line in report.lines}
    np.testing.assert_allclose(final["dW"], _vector_numeric("W"), rtol=1e-8)
    np.testing.assert_allclose(final["dx"], _vector_numeric("x"), rtol=1e-8)
    np.testing.assert_allclose(final["dW"], [[0.088, 0.176], [0.104, 0.208]], rtol=1e-12)
    assert "matmul" in report.lines[1].local


@pytest.mark.parametrize("old, new, number", [
    ("dW = dq @ x.T", "dW = x @ dq.T", 4),  # swapped operands: the transpose of the truth
    ("dq = 2 * q", "dq = q", 3),  # wrong local derivative
    ("dx = W.T @ dq", "dx = W @ dq", 5),
])
def test_vectorized_mutations_are_caught_at_the_line(old, new, number):
    report = symbp.check(VECTOR.replace(old, new), at=VECTOR_AT, shapes=VECTOR_SHAPES)
    assert report.first_wrong_line == number
    assert all(line.status == "follows" and line.cause == number
               for line in report.lines if line.number > number and line.status != "ok")
    assert str(report).startswith(f"line {number}: {new}")


def test_vectorized_missing_line_and_fork():
    report = symbp.check(VECTOR.replace("dx = W.T @ dq\n", ""), at=VECTOR_AT,
                         shapes=VECTOR_SHAPES)
    assert [(m.variable, m.line, m.fork) for m in report.missing] == [("dx", 1, False)]
    fork = ("s = sigmoid(q)\nf = sum(q * s)\nds = q\ndq = s\ndq += s * (1 - s) * ds\n")
    at = {"q": np.array([0.3, -1.2, 2.0])}
    assert symbp.check(fork, at=at, shapes={"q": (3,)}).ok
    report = symbp.check(fork.replace("dq +=", "dq ="), at=at, shapes={"q": (3,)})
    assert report.first_wrong_line == 5 and "a fork" in report.lines[-1].message


@pytest.mark.parametrize("at, shapes, message", [
    ({"W": np.zeros((2, 3)), "x": np.zeros((2, 1))}, VECTOR_SHAPES, "shape"),
    ({"W": np.zeros((2, 2)), "x": np.zeros((2, 1))}, {"W": ("B", 2), "x": (2, 1)},
     "concrete shapes"),
    ({"W": [["a", 1], [2, 3]], "x": np.zeros((2, 1))}, VECTOR_SHAPES, "array of numbers"),
    ({"W": np.full((2, 2), np.inf), "x": np.zeros((2, 1))}, VECTOR_SHAPES, "finite"),
])
def test_vectorized_bad_input(at, shapes, message):
    with pytest.raises(SymbpError, match=message):
        symbp.check(VECTOR, at=at, shapes=shapes)


def test_vectorized_hostile_lines_and_shape_errors():
    with pytest.raises(ParseError, match="unknown name 'zz'"):
        symbp.check(VECTOR.replace("dx = W.T @ dq", "dx = zz @ dq"), at=VECTOR_AT,
                    shapes=VECTOR_SHAPES)
    with pytest.raises(ParseError, match="attribute access"):
        symbp.check(VECTOR.replace("dx = W.T @ dq", "dx = W.__class__"), at=VECTOR_AT,
                    shapes=VECTOR_SHAPES)
    with pytest.raises(ParseError, match="matmul"):  # (2, 1) @ (2, 1)
        symbp.check(VECTOR.replace("dW = dq @ x.T", "dW = dq @ x"), at=VECTOR_AT,
                    shapes=VECTOR_SHAPES)


def test_cli_exit_codes(tmp_path, capsys):
    right, wrong = tmp_path / "right.py", tmp_path / "wrong.py"
    right.write_text(SOURCE)
    number = _number("dx += (1)")
    wrong.write_text(_with(number, "dx = (1) * dnum"))
    assert main(["check", str(right), "--at", "x=3", "y=-4"]) == 0
    assert "right" in capsys.readouterr().out
    assert main(["check", str(wrong), "--at", "x=3", "y=-4"]) == 1
    assert f"line {number}: dx = (1) * dnum" in capsys.readouterr().out
    assert main(["check", str(right), "--at", "x=3"]) == 2
    assert "missing y" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "none.py"), "--at", "x=3", "y=-4"]) == 2
    assert main(["check", str(right), "--at", "x=3,4", "y=-4"]) == 2
    assert "declare its shape with --shape x=" in capsys.readouterr().err


def test_cli_vectorized(tmp_path, capsys):
    path = tmp_path / "vector.py"
    path.write_text(VECTOR.replace("dW = dq @ x.T", "dW = x @ dq.T"))
    at = ["--at", "W=0.1,0.5,-0.3,0.8", "x=0.2,0.4", "--shape", "W=2,2", "x=2,1"]
    assert main(["check", str(path), *at]) == 1
    assert "line 4: dW = x @ dq.T" in capsys.readouterr().out
    path.write_text(VECTOR)
    assert main(["check", str(path), *at]) == 0
    assert main(["check", str(path), "--at", "W=0.1,0.5", "x=0.2,0.4", "--shape", "W=2,2",
                 "x=2,1"]) == 2
    assert "do not fill shape" in capsys.readouterr().err
    assert main(["check", str(path), "--at", "W=0.1,0.5,-0.3,0.8", "x=0.2,0.4", "--shape",
                 "W=B,2", "x=2,1"]) == 2


# --- Function.check: the generated backward lines -----------------------------------------------

def test_function_check_agrees_on_the_cs231n_expression():
    f = compiled("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)", jit=False)
    report = f.check(3.0, -4.0)
    backward = [line.split("#")[0].strip() for line in f.source.split("# backward pass")[1]
                .split("return")[0].splitlines() if line.strip()]
    assert sorted(x.line.split("  #")[0] for x in report.lines) == sorted(backward)
    assert all(x.error < 1e-12 for x in report.lines)
    errors = [x.error for x in report.lines]
    assert errors == sorted(errors, reverse=True)


def test_function_check_shows_precision_loss_and_kinks_worst_first():
    # a formula line: its derivative is rewritten as s*(1 - s) (the sigmoid gate's is exact)
    f = compiled("s = 1/(1 + exp(-x))\nf = s * relu(y)", jit=False)
    report = f.check(x=40.0, y=0.0)
    worst = report.lines[:2]
    assert {x.line.split(" = ")[0] for x in worst} == {"dx", "dy"}
    sig = next(x for x in worst if x.line.startswith("dx"))
    assert sig.value == 0.0  # s*(1 - s) rounds to 0 at 40 in float64
    assert sig.numeric == pytest.approx(math.exp(-40) / (1 + math.exp(-40)) ** 2, rel=1e-12)
    relu = next(x for x in worst if x.line.startswith("dy"))
    assert relu.numeric == pytest.approx(0.5)  # the kink: relu'(0) is 0 by convention
    assert all(x.error == 0 for x in report.lines[2:])
    assert "worst first" in str(report) and "s*(1 - s) = 0" in str(report)


def test_function_check_next_to_a_much_larger_input():
    report = symbp.compile("x * 1e100 + y", jit=False).check(x=1.0, y=2.0)
    assert all(x.error == 0 for x in report.lines)  # dy's step of 1e-20 next to 1e100


def test_function_check_takes_arrays_too():  # more in tests/test_check_arrays.py
    f = symbp.compile("sum(x**2)", shapes={"x": (2,)}, jit=False)
    report = f.check(x=[1.0, 2.0])
    assert report.ok and len(report.lines) == 2
    local = next(x for x in report.lines if x.what == "local")
    assert local.line.startswith("dx[i] = (2*x[i]) * dxsqr[i]") and local.index in {(0,), (1,)}


# -- the point from the notes' own first lines (x = 3  # example values) ----------------------

NOTES_FILE = "x = 3 # example values\ny = -4\n\n# forward pass\n" + SOURCE


def test_the_notes_example_values_are_the_point_without_at(tmp_path, capsys):
    """The notes' code as written, `x = 3` and `y = -4` first, checks without `at`; line numbers
    stay the file's; a value `at` gives wins over its line; other value lines stay constants."""
    report = symbp.check(NOTES_FILE)
    assert report.ok and report.lines[0].number == FIRST + 4
    final = {line.variable: line.found for line in report.lines}
    assert final["dx"] == pytest.approx(2.05956979557, rel=1e-9)
    assert final["dy"] == pytest.approx(1.59223275148, rel=1e-9)
    wrong = NOTES_FILE.replace("dx += (1) * dnum", "dx = (1) * dnum")
    report = symbp.check(wrong)
    assert report.first_wrong_line == 4 + _number("dx += (1) * dnum")
    moved = symbp.check(NOTES_FILE, at={"x": 1.0, "y": 2.0})  # at wins over x = 3, y = -4
    final = {line.variable: line.found for line in moved.lines}
    numeric = numeric_gradient(_forward, [1.0, 2.0])
    assert final["dx"] == pytest.approx(numeric[0], rel=1e-8)
    assert final["dy"] == pytest.approx(numeric[1], rel=1e-8)
    scaled = "a = 2\n" + SOURCE.replace("num = x + sigy", "num = a * x + sigy")
    with pytest.raises(SymbpError, match="no point to check at"):
        symbp.check(SOURCE)
    with pytest.raises(SymbpError, match="only the inputs' values"):
        symbp.check("x = 3\ny = -4\n")
    assert not symbp.check(scaled, at=AT).ok  # a = 2 is a constant: the notes' dx is off
    path = tmp_path / "notes.py"
    path.write_text(wrong)
    assert main(["check", str(path)]) == 1
    assert f"line {4 + _number('dx += (1) * dnum')}:" in capsys.readouterr().out
    path.write_text(NOTES_FILE)
    assert main(["check", str(path)]) == 0
