"""Circuit diagrams: the numbers on the edges against value_and_grad, the structure, rendering.

The DOT text is always checked; rendering to SVG/PNG/PDF runs where the Graphviz program is
installed (``.ci/run`` installs Debian's graphviz) and is skipped, saying why, elsewhere.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import compiled
from test_arrays import call_expression, concrete, sample
from test_gates import ROWS, expression, points

import symbp
from symbp.gates import GATES
from symbp.shapes import show

graphviz = pytest.importorskip("graphviz", reason="the draw extra (graphviz package) is needed")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="the Graphviz program `dot` is not installed "
                                      "(apt-get install graphviz); DOT text is still checked")

EDGE = re.compile(r'^\s*("[^"]+"|\w+) -> ("[^"]+"|\w+)(?: \[(.*)\])?$')
FONT = re.compile(r'<font color="(#[0-9a-f]{6})">(.*?)</font>')
GREEN, RED = "#1a7f37", "#cf222e"


def edges(dot: str) -> list[tuple[str, str, str | None, str | None]]:
    """(tail, head, value text, gradient text) of every edge in the DOT source."""
    out = []
    for line in dot.splitlines():
        m = EDGE.match(line)
        if m and "style=invis" not in line:  # not the edges that order the inputs
            rows = dict(FONT.findall(m.group(3) or ""))
            out.append((m.group(1).strip('"'), m.group(2).strip('"'),
                        rows.get(GREEN), rows.get(RED)))
    return out


def wire(dot: str, name: str) -> tuple[str | None, str | None]:
    """The value and gradient written on the wire leaving ``name`` (before any fork)."""
    labelled = [(v, g) for tail, _, v, g in edges(dot) if tail == name]
    assert labelled, f"no edge leaves {name}:\n{dot}"
    assert len(set(labelled)) == 1, f"{name}'s edges disagree: {labelled}"
    return labelled[0]


def check_against_value_and_grad(f, point: dict, digits: int = 12) -> str:
    """Every input's wire shows its value and its gradient from value_and_grad; the output
    wire shows f and 1. Returns the DOT text."""
    dot = f.draw(digits=digits, **point).source
    value, grads = f.value_and_grad(**point)
    tolerance = 10.0 ** (1 - digits)
    for name in f.inputs:
        shown_value, shown_grad = wire(dot, name)
        assert float(shown_value) == pytest.approx(point[name], rel=tolerance, abs=tolerance)
        if name in f.wrt:
            assert float(shown_grad) == pytest.approx(grads[name], rel=tolerance, abs=tolerance)
        else:
            assert shown_grad is None, f"{name} is not differentiated, yet shows {shown_grad}"
    out = [(v, g) for _, head, v, g in edges(dot) if head == "output value"]
    assert len(out) == 1
    assert float(out[0][0]) == pytest.approx(value, rel=tolerance, abs=tolerance)
    assert out[0][1] == "1"
    return dot


def gate_labels(dot: str) -> list[str]:
    """The gate symbols, in node order (each label is the symbol, then the value's name)."""
    return [html.unescape(label) for label in re.findall(
        r'^\s*\w+ \[label=<(.*?)<br/><font point-size="9"', dot, re.M)]


def gate_names(dot: str) -> list[str]:
    return re.findall(r'<font point-size="9" color="#[0-9a-f]{6}">(\w+)</font>>', dot)


# --- the worked examples --------------------------------------------------------------------

def test_example_1_smallest_circuit():
    f = compiled("(x + y) * z")
    dot = check_against_value_and_grad(f, {"x": -2.0, "y": 5.0, "z": -4.0})
    assert wire(dot, "xpy") == ("3", "-4")  # q = 3, df/dq = z = -4
    assert gate_labels(dot) == ["+", "*"]


def test_example_2_fused_and_split_show_the_same_numbers():
    point = {"w0": 2.0, "w1": -3.0, "w2": -3.0, "x0": -1.0, "x1": -2.0}
    split = compiled("1/(1 + exp(-(w0*x0 + w1*x1 + w2)))")
    fused = compiled("sigmoid(w0*x0 + w1*x1 + w2)")
    dots = [check_against_value_and_grad(f, point) for f in (split, fused)]
    # the primitive gates of the notes, each a node; the fused gate one node
    assert gate_labels(dots[0]) == ["*", "*", "+", "+", "*-1", "exp", "+1", "1/x"]
    assert gate_labels(dots[1]) == ["*", "*", "+", "+", "sigmoid"]
    for dot in dots:
        for name in point:
            assert wire(dot, name) == wire(dots[0], name)
    assert float(wire(dots[0], "sum2")[0]) == 1.0  # the dot product
    assert float(wire(dots[0], "sum2")[1]) == pytest.approx(0.196611933241, rel=1e-11)
    assert float(wire(dots[0], "f")[0]) == pytest.approx(0.731058578630, rel=1e-11)


def test_example_3_fork_carries_the_summed_gradient():
    f = compiled("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)")
    dot = check_against_value_and_grad(f, {"x": 3.0, "y": -4.0})
    assert float(wire(dot, "x")[1]) == pytest.approx(2.05956979557, rel=1e-11)
    assert float(wire(dot, "y")[1]) == pytest.approx(1.59223275148, rel=1e-11)
    # x feeds three gates through one fork; y two
    assert [h for t, h, _, _ in edges(dot) if t == "x"] == ["x fork"]
    assert sorted(h for t, h, _, _ in edges(dot) if t == "x fork") == ["num", "sigx", "xpy"]
    assert sorted(h for t, h, _, _ in edges(dot) if t == "y fork") == ["sigy", "xpy"]


@pytest.mark.parametrize(("expr", "point"), [
    ("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)", {"x": 3.0, "y": -4.0}),
    ("x * x", {"x": 3.0}),
    ("u = x * y\nf = u * x + exp(u)", {"x": 0.5, "y": -1.5}),
])
def test_fork_branches_show_shares_that_add_up(expr, point):
    f = compiled(expr)
    dot = f.draw(digits=15, **point).source
    grads = f.grad(**point)
    forked = [name for name in point if f'"{name} fork"' in dot]
    assert forked
    for name in forked:
        shares = [float(g) for tail, _, _, g in edges(dot) if tail == f"{name} fork"]
        assert len(shares) > 1
        assert sum(shares) == pytest.approx(grads[name], rel=1e-12)
        assert float(wire(dot, name)[1]) == pytest.approx(grads[name], rel=1e-14)


def test_staged_lines_are_one_node_each():
    f = compiled("sigy = 1.0 / (1 + exp(-y))\nnum = x + sigy\nsigx = 1.0 / (1 + exp(-x))\n"
                 "xpy = x + y\nxpysqr = xpy**2\nden = sigx + xpysqr\ninvden = 1.0 / den\n"
                 "f = num * invden")
    dot = check_against_value_and_grad(f, {"x": 3.0, "y": -4.0})
    assert len(gate_labels(dot)) == 8
    assert wire(dot, "invden")[1] == wire(dot, "num")[0]  # dinvden = num, as the notes say


def test_example_4_apples():
    f = compiled("(apple * count_a + mandarin * count_m) * tax")
    point = {"apple": 100.0, "count_a": 2.0, "mandarin": 150.0, "count_m": 3.0, "tax": 1.1}
    dot = check_against_value_and_grad(f, point)
    assert float(wire(dot, "tax")[1]) == pytest.approx(650.0)


def test_only_wrt_inputs_show_gradients():
    f = compiled("(x + y) * z", wrt=("x",))
    dot = check_against_value_and_grad(f, {"x": -2.0, "y": 5.0, "z": -4.0})
    assert wire(dot, "z")[1] is None


def test_gates_show_the_names_of_the_generated_code():
    f = compiled("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)")
    names = gate_names(f.draw().source)
    assert names == ["sigy", "num", "sigx", "xpy", "xpysqr", "den", "f"]
    for name in names:
        assert f"    {name} = " in f.kernel_source


def test_constants_are_written_into_the_gate():
    f = compiled("max(x, 0) + x**2.5 + 0.5**x + x*0.1 + (x - 3) + 1/x")
    assert set(gate_labels(f.draw().source)) >= {
        "max(·, 0)", "**2.5", "0.5**x", "*0.1", "-3", "1/x"}


def test_inputs_are_drawn_in_call_order():
    dot = compiled("(x + y) * z").draw().source
    assert "x -> y [style=invis]" in dot and "y -> z [style=invis]" in dot


def test_inputs_named_like_options():
    f = compiled("values * digits + f")
    point = {"values": 2.0, "digits": 3.0, "f": 1.0}
    with pytest.raises(symbp.CallError, match="pass the point as a dict"):
        f.draw(values=2.0, digits=3.0, f=1.0)
    dot = f.draw(point, digits=12).source
    assert wire(dot, "values") == ("2", "3") and wire(dot, "f") == ("1", "1")
    with pytest.raises(symbp.CallError, match="given twice"):
        f.draw(point, f=2.0)


def test_structure_without_a_point():
    dot = compiled("(x + y) * z").draw().source
    assert all(v is None and g is None for _, _, v, g in edges(dot))
    assert gate_labels(dot) == ["+", "*"]


# --- every gate of the table ----------------------------------------------------------------

@pytest.mark.parametrize("name", ROWS)
def test_every_scalar_gate(name):
    gate = GATES[name]
    f = compiled(expression(gate), False)
    for point in points(gate, 2, seed=3):
        check_against_value_and_grad(f, dict(zip(f.inputs, map(float, point))))


ARRAY = sorted(n for n in GATES if GATES[n].array is not None)


@pytest.mark.parametrize("name", ARRAY)
def test_every_array_gate_shows_shapes_and_small_values(name):
    gate = GATES[name]
    rng = np.random.default_rng(5)
    shapes, params = gate.array.examples[0]
    names = ["X", "Y"][:gate.arity]
    declared, values = {}, {}
    for position, (n, shape) in enumerate(zip(names, shapes)):
        if position in gate.array.labels:
            declared[n] = symbp.ints(shape)
            values[n] = rng.integers(0, 2, size=concrete(shape, 2))
        else:
            declared[n] = shape
            values[n] = sample(rng, shape, batch=2)
    core = call_expression(gate, names, params)
    expr = f"sum({core})" if gate.array.shape(list(shapes), params) else core
    f = symbp.compile(expr, shapes=declared, jit=False)
    value, grads = f.value_and_grad(**values)
    shown = f.draw(**values).source  # shapes, the scalar output as a number
    for n in f.wrt:
        assert wire(shown, n) == (show(values[n].shape),) * 2
    full = f.draw(values=True, digits=12, **values).source
    for n in f.wrt:
        text_value, text_grad = wire(full, n)
        np.testing.assert_allclose(_parse_array(text_value), values[n], rtol=1e-11)
        np.testing.assert_allclose(_parse_array(text_grad), grads[n], rtol=1e-11, atol=1e-12)
    out = [v for _, head, v, _ in edges(full) if head == "output value"]
    assert float(out[0]) == pytest.approx(value, rel=1e-11)


def _parse_array(text: str) -> np.ndarray:
    return np.array(eval(text.replace("<br/>", ""), {"__builtins__": {}}))  # our own numbers


def test_example_5_values_on_request():
    f = symbp.compile("sum((W @ x)**2)", shapes={"W": (2, 2), "x": (2,)})
    point = {"W": np.array([[0.1, 0.5], [-0.3, 0.8]]), "x": np.array([0.2, 0.4])}
    shapes_only = f.draw(**point).source
    assert wire(shapes_only, "W") == ("(2, 2)", "(2, 2)")
    assert wire(shapes_only, "Wx") == ("(2,)", "(2,)")
    dot = f.draw(values=True, **point).source
    assert wire(dot, "Wx") == ("[0.22, 0.26]", "[0.44, 0.52]")  # q and df/dq = 2q
    assert wire(dot, "W")[1] == "[[0.088, 0.176],<br/> [0.104, 0.208]]"
    assert wire(dot, "x")[1] == "[-0.112, 0.636]"
    big = symbp.compile("sum(A * A)", shapes={"A": (5, 5)})
    assert wire(big.draw(values=True, A=np.ones((5, 5))).source, "A") == ("(5, 5)", "(5, 5)")


def test_batch_dimension_named_until_given():
    f = symbp.compile("mean(relu(X @ W))", shapes={"X": ("B", 3), "W": (3, 2)})
    assert wire(f.draw().source, "X")[0] == "(B, 3)"
    dot = f.draw(X=np.ones((4, 3)), W=np.ones((3, 2))).source
    assert wire(dot, "X")[0] == "(4, 3)"


# --- errors ---------------------------------------------------------------------------------

def test_bad_calls_are_refused():
    f = compiled("(x + y) * z")
    with pytest.raises(symbp.CallError, match="missing input"):
        f.draw(x=1.0, y=2.0)
    with pytest.raises(symbp.CallError, match="unknown input 'w'"):
        f.draw(x=1.0, y=2.0, z=3.0, w=4.0)
    with pytest.raises(symbp.CallError, match="one point"):
        f.draw(x=[1.0, 2.0], y=2.0, z=3.0)
    with pytest.raises(symbp.SymbpError, match="digits"):
        f.draw(digits=0, x=1.0, y=2.0, z=3.0)
    with pytest.raises(symbp.CallError, match="the compiled kernel may return inf or nan"):
        compiled("exp(x)").draw(x=1000.0)


def test_without_the_graphviz_program(monkeypatch, tmp_path):
    diagram = compiled("(x + y) * z").draw(x=-2, y=5, z=-4)
    monkeypatch.setenv("PATH", "")
    assert "digraph circuit" in diagram.source  # the DOT text needs no program
    for attempt in (lambda: diagram.pipe(format="svg"),
                    lambda: diagram.render(tmp_path / "circuit", format="png")):
        with pytest.raises(symbp.SymbpError, match="apt-get install graphviz"):
            attempt()
    shown = diagram._repr_mimebundle_()  # Jupyter: the hint and the DOT text, no traceback
    assert "apt-get install graphviz" in shown["text/plain"]
    assert "digraph circuit" in shown["text/plain"]


def test_without_the_graphviz_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(symbp.SymbpError, match=r'pip install "symbp\[draw\]"'):
        compiled("(x + y) * z").draw()


# --- rendering for real ---------------------------------------------------------------------

@needs_dot
def test_renders_svg_png_pdf(tmp_path):
    diagram = compiled("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)").draw(x=3, y=-4)
    svg = diagram.pipe(format="svg", encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    for text in ("2.06", "1.592", "1.546", "sigmoid"):  # the numbers made it into the picture
        assert f">{text}<" in svg
    assert diagram._repr_svg_() == svg
    assert "image/svg+xml" in diagram._repr_mimebundle_()
    png = diagram.render(tmp_path / "circuit", format="png")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = diagram.render(tmp_path / "circuit", format="pdf")
    assert Path(pdf).read_bytes()[:5] == b"%PDF-"


def test_a_redefined_custom_gate_is_refused_not_drawn_wrong():
    symbp.gate("draw_test_gate", "a * 2")
    f = symbp.compile("draw_test_gate(x) * y", jit=False)
    assert wire(f.draw(x=1.0, y=1.0).source, "x")[1] == "2"
    symbp.gate("draw_test_gate", "a * 3")
    with pytest.raises(symbp.SymbpError, match="compile it again"):
        f.draw(x=1.0, y=1.0)


def test_a_redefined_gate_is_refused_only_when_called():
    """Drawing parses the expression again with today's gate table: a custom gate the function
    calls that was redefined since is refused; one it does not call does not matter."""
    before = dict(symbp.gates.GATES)
    try:
        symbp.gate("bump_draw", "a * a + 1")
        symbp.gate("other_draw", "a - 1")
        f = symbp.compile("bump_draw(x) * y", jit=False)
        symbp.gate("other_draw", "a - 2")  # not called by f
        assert "bump_draw" in f.draw(x=1.0, y=2.0).source
        symbp.gate("bump_draw", "a * a + 2")
        with pytest.raises(symbp.SymbpError, match="calls was defined again"):
            f.draw(x=1.0, y=2.0)
    finally:
        symbp.gates.GATES.clear()
        symbp.gates.GATES.update(before)
