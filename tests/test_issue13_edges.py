"""Edge cases of issue 13's features found by an adversarial pass: hostile names, wrong
shapes, labels, points of a scalar second-order function, hand-written lines of the wrong
shape. Everything runs with ``jit=False`` (no Numba compile); values are checked against
central differences or exact arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest

import symbp


def test_a_direction_named_pi_is_refused_not_read_as_the_constant():
    # 'pi' as a bare name is the constant 3.14159...: lines 'dot = dx * pi' would compile to
    # 2*x*pi, silently ignoring the direction input given at the call
    for expr, wrt, shapes in (("x**2", "x", None), ("sum(W*W)", "W", {"W": (2,)})):
        with pytest.raises(symbp.SymbpError, match=r"direction 'pi'.*constant"):
            symbp.derivative(expr, wrt, shapes=shapes, direction="pi")
    # an ordinary name that is also a gate's or module's stays usable, and means the input
    lines = symbp.derivative("sum(W*W)", "W", shapes={"W": (2,)}, direction="exp")
    f = symbp.compile(lines, shapes={"W": (2,), "exp": (2,)}, jit=False)
    assert f(W=np.array([1.0, 2.0]), exp=np.array([3.0, 4.0])) == 2 * (1 * 3 + 2 * 4)


@pytest.fixture(scope="module")
def scalar2():
    """A second-order scalar function (plain Python) and its exact Hessian."""
    f = symbp.compile("x**3 * y + exp(x*y)", order=2, jit=False)

    def exact(x, y):
        e = np.exp(x * y)
        return np.array([[6 * x * y + y * y * e, 3 * x * x + e + x * y * e],
                         [3 * x * x + e + x * y * e, x * x * e]])
    return f, exact


def test_hessian_at_arrays_of_points(scalar2):
    # hvp evaluates at every point of arrays, as calls do; hessian raised a raw ValueError
    f, exact = scalar2
    xs, ys = np.array([0.3, -1.2, 2.0]), np.array([0.5, 1.0, -0.7])
    h = f.hessian(x=xs, y=ys)
    assert h.shape == (3, 2, 2)
    for k in range(3):
        np.testing.assert_allclose(h[k], exact(xs[k], ys[k]), rtol=1e-13)
        np.testing.assert_array_equal(h[k], f.hessian(xs[k], ys[k]))
    grid = f.hessian(xs.reshape(3, 1), ys.reshape(1, 3))  # broadcast: a 3x3 grid of points
    assert grid.shape == (3, 3, 2, 2)
    np.testing.assert_allclose(grid[0, 2], exact(xs[0], ys[2]), rtol=1e-13)


def test_hvp_names_the_entry_of_v_that_is_wrong(scalar2):
    # the messages named the direction input the HVP is compiled with ('v_x'), never seen
    f, _ = scalar2
    with pytest.raises(symbp.CallError, match=r"v\['x'\] must be a real number, got str"):
        f.hvp({"x": "1", "y": 0.0}, 0.3, 0.5)
    g = symbp.compile("sum(W * W * b)", shapes={"W": (2, 3), "b": (3,)}, order=2, jit=False)
    point = {"W": np.ones((2, 3)), "b": np.ones(3)}
    with pytest.raises(symbp.CallError, match=r"v\['W'\] must have shape \(2, 3\), got \(3, 2\)"):
        g.hvp({"W": np.ones((3, 2)), "b": np.ones(3)}, **point)
    with pytest.raises(symbp.CallError, match=r"v\['b'\] must be a float array, got bool"):
        g.hvp({"W": np.ones((2, 3)), "b": np.ones(3, bool)}, **point)
    with pytest.raises(symbp.CallError, match="v_W"):
        g.hvp({"W": np.ones((2, 3)), "b": np.ones(3)}, v_W=np.ones((2, 3)), **point)
    with pytest.raises(symbp.CallError, match=r"input 'W' must have shape \(2, 3\), got \(3, 2\)"):
        g.hvp({"W": np.ones((2, 3)), "b": np.ones(3)}, W=np.ones((3, 2)), b=np.ones(3))


def test_a_number_given_for_an_array_input_is_reported_with_its_own_shape():
    # np.ascontiguousarray made a 0-d array 1-d: 'got (1,)' for a number
    f = symbp.compile("sum(W * W)", shapes={"W": (2, 3)}, jit=False)
    for value in (1.0, np.array(1.0)):
        with pytest.raises(symbp.CallError, match=r"shape \(2, 3\), got \(\)"):
            f(W=value)
    g = symbp.compile("mean(softmax_cross_entropy(Z, y))",
                      shapes={"Z": (2, 3), "y": symbp.ints((2,))}, jit=False)
    with pytest.raises(symbp.CallError, match=r"'y' must have shape \(2,\), got \(\)"):
        g(Z=np.ones((2, 3)), y=np.array(1))


_COLUMN = {"W": np.array([[0.1, 0.5], [-0.3, 0.8]]), "x": np.array([[0.2], [0.4]])}
_COLUMN_SHAPES = {"W": (2, 2), "x": (2, 1)}


def test_a_hand_written_gradient_of_the_wrong_shape_is_a_wrong_line():
    # each line was compiled as sum((rhs) * seed), the seed of the gradient's shape, so a
    # right side that broadcasts (dq = 1 for a (2, 1) q, dW = dq * x.T of shape (1, 2))
    # passed as right, though W.T @ dq fails in NumPy for that dq
    forward = "q = W @ x\nf = sum(q)\n"
    report = symbp.check(forward + "dq = 1\ndW = dq @ x.T\ndx = W.T @ dq\n", at=_COLUMN,
                         shapes=_COLUMN_SHAPES)
    assert not report.ok and report.first_wrong_line == 3
    assert "dq = 1 has shape (), q has shape (2, 1)" in report.lines[0].message
    report = symbp.check(forward + "dq = 0*q + 1\ndW = x.T\ndx = W.T @ dq\n", at=_COLUMN,
                         shapes=_COLUMN_SHAPES)
    assert [x.status for x in report.lines] == ["ok", "wrong", "ok"]
    assert "has shape (1, 2), W has shape (2, 2)" in report.lines[1].message
    assert "has shape (1, 2)" in str(report)
    right = symbp.check(forward + "dq = 0*q + 1\ndW = dq @ x.T\ndx = W.T @ dq\n", at=_COLUMN,
                        shapes=_COLUMN_SHAPES)
    assert right.ok
    np.testing.assert_allclose(right.lines[1].found, np.ones((2, 1)) @ _COLUMN["x"].T)


_SOFTMAX = "s = X @ W\nL = softmax_cross_entropy(s, y)\nf = mean(L)\n"


def _softmax_case():
    rng = np.random.default_rng(3)
    at = {"X": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 5)), "y": np.array([0, 4, 2, 4])}
    shapes = {"X": (4, 3), "W": (3, 5), "y": symbp.ints((4,))}
    return at, shapes


def test_check_reads_integer_labels_declared_with_ints():
    # shapes={'y': symbp.ints(...)} was refused by a message asking for symbp.ints
    at, shapes = _softmax_case()
    backward = ("dL = 0*L + 0.25\n"
                "ds = (softmax(s) - onehot(y, s)) * expand(dL, s, axis=1)\n"
                "dW = X.T @ ds\n"
                "dX = ds @ W.T\n")
    report = symbp.check(_SOFTMAX + backward, at=at, shapes=shapes)
    assert report.ok, str(report)
    # the expected gradient is the loss's: central differences of the forward pass
    z = at["X"] @ at["W"]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(4), at["y"]] -= 1
    np.testing.assert_allclose(report.lines[2].expected, at["X"].T @ p / 4, rtol=1e-12)
    wrong = symbp.check(_SOFTMAX + backward.replace(" - onehot(y, s)", ""), at=at,
                        shapes=shapes)
    assert wrong.first_wrong_line == 5 and wrong.lines[2].status == "follows"


def test_check_refuses_labels_that_are_not_integers_or_out_of_range():
    at, shapes = _softmax_case()
    backward = "dL = 0*L + 0.25\nds = softmax(s) * expand(dL, s, axis=1)\ndW = X.T @ ds\n"
    with pytest.raises(symbp.SymbpError, match=r"at\['y'\] holds labels"):
        symbp.check(_SOFTMAX + backward, at=dict(at, y=at["y"].astype(float)), shapes=shapes)
    with pytest.raises(symbp.SymbpError, match="label is outside"):
        symbp.check(_SOFTMAX + backward, at=dict(at, y=np.array([0, 5, 2, 4])), shapes=shapes)
    with pytest.raises(symbp.ParseError, match="gradient d<name>"):
        symbp.check(_SOFTMAX + backward + "dy = 0*L\n", at=at, shapes=shapes)


@pytest.mark.parametrize("a, b", [("dot", "d_dot"), ("expand", "onehot"), ("sign", "ifpos"),
                                  ("math", "np"), ("value_and_grad", "prange"), ("out", "n")])
def test_second_order_with_inputs_named_like_generated_code(a, b):
    # inputs that generated Python renames (dot -> dot_) kept the new name in the staged
    # lines of derivative(), so compile(order=2) failed on 'unknown name dot_'; an input named
    # out was swallowed by grad's out= inside hvp
    expr = f"sin({a}) * {b}**3 + exp({a}*{b})"
    f = symbp.compile(expr, order=2, jit=False)
    u, w = 0.3, -0.7
    e = np.exp(u * w)
    exact = np.array([[-np.sin(u) * w**3 + w * w * e, 3 * np.cos(u) * w**2 + e + u * w * e],
                      [3 * np.cos(u) * w**2 + e + u * w * e, 6 * np.sin(u) * w + u * u * e]])
    np.testing.assert_allclose(f.hessian(u, w), exact, rtol=1e-13)
    np.testing.assert_allclose(f.hvp({a: 1.0, b: 2.0}, u, w)[b], exact[1] @ [1.0, 2.0],
                               rtol=1e-13)
    lines = symbp.derivative(expr, a)
    d = symbp.compile(lines, jit=False)
    assert set(d.inputs) == {a, b}  # the derivative is a function of the same names
    assert d(*(u, w) if d.inputs == (a, b) else (w, u)) == pytest.approx(
        np.cos(u) * w**3 + w * e, rel=1e-14)


def test_export_paths_the_os_refuses_are_export_errors(tmp_path):
    # a NUL byte raised NumPy-free ValueError from pathlib, a name past NAME_MAX a raw OSError
    f = symbp.compile("x * y", jit=False)
    with pytest.raises(symbp.ExportError, match="NUL"):
        f.export(str(tmp_path / "a\x00.py"))
    with pytest.raises(symbp.ExportError, match="cannot write"):
        f.export(tmp_path / ("a" * 300 + ".py"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stem", ["numpy", "numba", "math"])
def test_export_refuses_a_module_name_that_shadows_its_own_imports(tmp_path, stem):
    # numpy.py next to a program: its own 'import numpy' (and the program's) imports itself
    f = symbp.compile("sum(sin(W) * W) + sin(y)", shapes={"W": (2,)}, jit=False)
    with pytest.raises(symbp.ExportError, match=f"{stem}.py would shadow the module {stem}"):
        f.export(tmp_path / f"{stem}.py")
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_second_order_function_says_what_it_holds(tmp_path):
    f = symbp.compile("x**3 * y", order=2, jit=False)
    text = f.export(tmp_path / "cubic.py").read_text()
    assert "only the value and gradient are here, not hvp or hessian" in text
    assert "v_x" not in text  # the HVP's lines (comments of f.source) are not copied


def test_a_gradient_summing_many_contributions_is_split_into_lines_symbp_reads():
    # x used 40 times: 'dx = 40 * dprod78 + ...' had 80 operations, past the parser's limit
    # for one staged line (64), so compile(order=2) and derivative() twice failed on it
    import sympy as sp

    x, y = sp.symbols("x y", real=True)
    text = " + ".join(f"sin({k}*x)*y" for k in range(1, 41))
    truth = sum(sp.sin(k * x) * y for k in range(1, 41))
    point = {x: 0.3, y: 0.2}
    lines = symbp.derivative(text, "x")
    assert "part of dx" in lines
    d = symbp.compile(lines, jit=False)
    assert d(0.3, 0.2) == pytest.approx(float(sp.diff(truth, x).subs(point)), rel=1e-13)
    f = symbp.compile(text, order=2, jit=False)
    exact = np.array(sp.hessian(truth, (x, y)).subs(point).evalf(30), dtype=float)
    np.testing.assert_allclose(f.hessian(0.3, 0.2), exact, rtol=1e-12)
    w = symbp.compile(" + ".join(f"sum(sin({k}*W)*b)" for k in range(1, 41)),
                      shapes={"W": (3,), "b": (3,)}, order=2, jit=False)
    W, b, V = np.array([0.1, 0.4, -0.3]), np.array([1.0, -2.0, 0.5]), np.array([1.0, 2.0, 3.0])
    k = np.arange(1, 41)[:, None]
    # d/dW of sum_k cos(kW) k b along V: -sum_k k^2 sin(kW) b V
    np.testing.assert_allclose(w.hvp({"W": V, "b": 0 * b}, W, b)["W"],
                               -(k**2 * np.sin(k * W)).sum(0) * b * V, rtol=1e-11)


def test_derivatives_compose_six_times():
    import sympy as sp

    x = sp.Symbol("x", real=True)
    lines = "sin(x)*exp(x)"
    for _ in range(6):
        lines = symbp.derivative(lines, "x")
    f = symbp.compile(lines, jit=False)
    exact = sp.diff(sp.sin(x) * sp.exp(x), x, 6)
    assert f(0.3) == pytest.approx(float(exact.subs(x, 0.3)), rel=1e-12)
    assert f.grad(0.3)["x"] == pytest.approx(float(sp.diff(exact, x).subs(x, 0.3)), rel=1e-12)


def test_order_2_of_an_expression_whose_hvp_lines_pass_the_text_limit():
    # a 1379-character expression: its HVP's staged lines are 23739 characters,
    # past the 20000 an expression text may have, so compile(order=2) refused the text it
    # wrote itself; the limit guards what users give, the gate limit still bounds the rest
    import sympy as sp

    x, y = sp.symbols("x y", real=True)
    ks = range(1, 41)
    text = " + ".join(f"sigmoid(x*{k} - y) * tanh(y + {k})" for k in ks)
    truth = sum(1 / (1 + sp.exp(-(x * k - y))) * sp.tanh(y + k) for k in ks)
    f = symbp.compile(text, order=2, jit=False)
    exact = np.array(sp.hessian(truth, (x, y)).subs({x: 0.1, y: 0.2}).evalf(30), dtype=float)
    np.testing.assert_allclose(f.hessian(0.1, 0.2), exact, rtol=1e-11)
    with pytest.raises(symbp.ParseError, match="expression is too long"):  # still, for users
        symbp.compile(symbp.derivative(text, "x") + "\n" * 20000, jit=False)


def test_cli_check_takes_labels(tmp_path, capsys):
    from symbp.cli import main

    at, _ = _softmax_case()
    source = tmp_path / "softmax.py"
    source.write_text(_SOFTMAX + "dL = 0*L + 0.25\n"
                      "ds = (softmax(s) - onehot(y, s)) * expand(dL, s, axis=1)\n"
                      "dW = X.T @ ds\ndX = ds @ W.T\n")
    point = ["--at", *(f"{n}={','.join(map(repr, at[n].ravel().tolist()))}" for n in at)]
    args = ["check", str(source), *point, "--shape", "X=4,3", "W=3,5", "--labels", "y=4"]
    assert main(args) == 0
    assert "backward pass is right: 4 lines" in capsys.readouterr().out
    bad = [a.replace("y=0,4,2,4", "y=0,4.5,2,4") for a in args]
    assert main(bad) == 2
    assert "labels must be whole numbers" in capsys.readouterr().err
    assert main(args[:-2] + ["--labels", "y=4", "--shape", "y=4"]) == 2
    assert "either --shape or --labels" in capsys.readouterr().err


def test_derivative_names_a_wrt_that_is_not_in_normal_form():
    # the expression's 'ﬁ' is read as 'fi', so wrt='ﬁ' was 'not an input (inputs: fi)'
    with pytest.raises(symbp.IdentifierError, match=r"wrt: name 'ﬁ' \(U\+FB01\).*'fi'"):
        symbp.derivative("ﬁ**2", "ﬁ")


def test_an_input_named_out_given_by_keyword_is_explained():
    f = symbp.compile("x * out", jit=False)
    with pytest.raises(symbp.CallError, match="an input named out is given positionally"):
        f(x=1.0, out=2.0)
    assert f(1.0, 2.0) == 2.0


def test_cli_reads_a_file_that_starts_with_a_byte_order_mark(tmp_path, capsys):
    # Windows editors write one; Python reads such a source file, the parser refused U+FEFF
    from symbp.cli import main

    source = tmp_path / "bom.py"
    source.write_bytes(b"\xef\xbb\xbff = x**2\ndx = 2*x\n")
    assert main(["check", str(source), "--at", "x=3"]) == 0
    assert "backward pass is right" in capsys.readouterr().out
    (tmp_path / "e.py").write_bytes(b"\xef\xbb\xbfx**2\n")
    assert main(["grad", "-f", str(tmp_path / "e.py"), "--at", "x=3", "--no-jit"]) == 0
    assert "dx    = 6.0" in capsys.readouterr().out


def test_check_messages():
    # one line 'agrees'; a line repeating a contribution is not told x is used at a fork; a
    # line the compiler refuses shows its own position once, not the compiled text's too
    assert str(symbp.check("f = x**2\ndx = 2*x\n", at={"x": 3})) == (
        "backward pass is right: 1 line agrees with symbp's")
    report = symbp.check("f = x**2\ndx = 2*x\ndx = 2*x\n", at={"x": 3})
    assert report.first_wrong_line == 3
    assert "already added to dx on line 2" in report.lines[1].message
    assert "fork" not in report.lines[1].message
    at, shapes = _softmax_case()
    with pytest.raises(symbp.ParseError) as info:
        symbp.check(_SOFTMAX + "dL = 0*L + 0.25\nds = onehot(s, y)\n", at=at, shapes=shapes)
    assert str(info.value).count("column") == 1 and "line 5" in str(info.value)


def test_derivative_says_when_its_lines_read_the_inputs_in_another_order():
    # compile() orders inputs as the text first reads them: the derivative of y*tanh(x)... of
    # 'W * tanh(b)' reads b first, so compile(lines)(W, b, V) took W's value for b, silently
    lines = symbp.derivative("sum(W * tanh(b))", "b", shapes={"W": (2,), "b": (2,)},
                             direction="V")
    assert lines.splitlines()[0].endswith("; compile with inputs=['W', 'b', 'V']: the lines "
                                          "read b first")
    shapes = {"W": (2,), "b": (2,), "V": (2,)}
    W, b, V = np.array([1.0, 2.0]), np.array([0.3, -0.4]), np.array([0.5, 1.5])
    f = symbp.compile(lines, shapes=shapes, inputs=["W", "b", "V"], jit=False)
    assert f(W, b, V) == pytest.approx(np.sum(W * (1 - np.tanh(b) ** 2) * V), rel=1e-14)
    plain = symbp.derivative("sum(exp(b) * W)", "W", shapes={"W": (2,), "b": (2,)},
                             direction="V")
    assert "inputs=" not in plain  # the order of first reading is the expression's
    assert "inputs=" not in symbp.derivative("x + y", "x")  # a constant: nothing to order


def test_check_of_array_lines_with_a_value_named_out():
    # each line ran as f.grad(**values): a value named out went to grad's out= instead
    report = symbp.check("out = W @ x\nf = sum(out**2)\ndout = 2*out\ndW = dout @ x.T\n"
                         "dx = W.T @ dout\n", at=_COLUMN, shapes=_COLUMN_SHAPES)
    assert report.ok
    q = _COLUMN["W"] @ _COLUMN["x"]
    np.testing.assert_allclose(report.lines[1].found, 2 * q @ _COLUMN["x"].T, rtol=1e-14)


def test_derivative_of_an_input_named_pi_says_to_declare_it():
    # parse reads a bare pi as the constant unless inputs= lists it: the lines 'dx = 2*x*pi'
    # compiled alone were a function of x times 3.14159..., silently
    lines = symbp.derivative("pi*x**2", "x", inputs=["pi", "x"])
    assert lines.splitlines()[0].endswith(
        "; compile with inputs=['pi', 'x']: pi is the constant without it")
    f = symbp.compile(lines, inputs=["pi", "x"], jit=False)
    assert f(2.0, 3.0) == 12.0
    assert symbp.compile("pi*x**2", inputs=["pi", "x"], order=2, jit=False).hessian(
        2.0, 3.0).tolist() == [[0.0, 6.0], [6.0, 4.0]]


def test_check_takes_a_0_d_array_for_a_number_as_calls_do():
    assert symbp.check("f = x**2\ndx = 2*x\n", at={"x": np.array(3.0)}).ok
    with pytest.raises(symbp.SymbpError, match="must be a finite real number"):
        symbp.check("f = x**2\ndx = 2*x\n", at={"x": np.array(True)})


def test_f_check_near_zero_keeps_the_central_difference_inside_the_domain():
    # the step was 1e-20 * max(1, |x|): at x = 1e-300, x - h < 0, where x**y and log are
    # complex, and check raised a raw TypeError; a tiny x gets a step relative to it
    f = symbp.compile("x**y + log(x) + sqrt(x)", jit=False)
    for x in (1e-300, 1e-30, 0.5):
        report = f.check(x, 0.5)
        assert report.ok, str(report)
    g = symbp.compile("relu(x) * y", jit=False)  # at the kink itself the step stays absolute
    assert "central difference 0.5" in str(g.check(0.0, 2.0))
    assert g.check(1e-30, 2.0).ok  # both sides of a tiny x are on relu's linear piece
    h = symbp.compile("sum(log(W) + sqrt(W) * b)", shapes={"W": (3,)}, jit=False)
    report = h.check(W=np.array([1e-300, 1e-30, 0.5]), b=2.0)
    assert report.ok, str(report)


def test_f_check_at_the_edge_of_a_gates_domain_uses_a_one_sided_difference():
    # x**2.5 at 0: x - h is outside the domain (complex); the check raised a raw TypeError
    # for scalars and reported 'central difference nan' for arrays. The one-sided
    # difference's error, h**1.5 = 1e-30, is not a power of h that extrapolates away (the
    # derivative is 0): reported, as at a kink
    f = symbp.compile("x**2.5 * y", jit=False)
    (line,) = [x for x in f.check(0.0, 2.0).lines if "dpower/dx" in x.line]
    assert line.value == 0 and abs(line.numeric) < 1e-29
    g = symbp.compile("sum(W**2.5)", shapes={"W": (2,)}, jit=False)
    (line,) = [x for x in g.check(W=np.array([0.0, 1.0])).lines if "dpower/dW" in x.line]
    assert line.value == 0 and abs(line.numeric) < 1e-29
    assert symbp.compile("sqrt(1 + x) * x**1.5", jit=False).check(1e-6).ok


def test_hessian_with_respect_to_nothing_is_0_by_0():
    f = symbp.compile("x * y", wrt=[], order=2, jit=False)
    assert f.hessian(1.0, 2.0).shape == (0, 0)
    with pytest.raises(symbp.CallError, match="missing input"):
        f.hessian(1.0)


def test_second_order_of_an_input_named_underscore():
    # '_' is escaped '__' in generated Python, so its cube was the temporary '__cube', a name
    # the parser reserves: compile(order=2) failed reading the derivative's lines
    f = symbp.compile("_**3 * x", order=2, jit=False)
    np.testing.assert_array_equal(f.hessian(2.0, 3.0), [[36.0, 12.0], [12.0, 0.0]])
    lines = symbp.derivative("_**3 * x", "_")
    assert "compile with inputs=['_', 'x']" in lines  # dx... reads x first
    assert symbp.compile(lines, inputs=["_", "x"], jit=False)(2.0, 3.0) == 36.0


def test_second_order_when_a_temporary_is_named_like_a_direction():
    # the direction of input xcube is v_xcube, and so was the cube of an input v_x: the HVP's
    # lines assigned their own input ('v_xcube' is assigned by a staged line)
    f = symbp.compile("sin(v_x)*xcube**3 + exp(v_x*xcube) + v_x**3", order=2, jit=False)
    u, w = 0.3, -0.7
    e = np.exp(u * w)
    exact = [[-np.sin(u) * w**3 + w * w * e + 6 * u, 3 * np.cos(u) * w**2 + e + u * w * e],
             [3 * np.cos(u) * w**2 + e + u * w * e, 6 * np.sin(u) * w + u * u * e]]
    np.testing.assert_allclose(f.hessian(u, w), exact, rtol=1e-13)
    # a direction named like a gradient of the lines is refused, as for arrays (the lines
    # 'dxsqr = y ... dot = dx * dxsqr' multiplied by the gradient, not the direction)
    with pytest.raises(symbp.SymbpError, match="direction 'dxsqr' is a name the derivative"):
        symbp.derivative("x**2 * y", "x", direction="dxsqr")


def test_derivative_and_check_validate_shapes_as_compile_does():
    # both handed shapes to the parser unchecked: a dimension of 0 was taken (check then
    # blamed the output's shape (0,)), a list of pairs read as a dict
    src = "q = x*y\nf = q**2\ndq = 2*q\ndx = y*dq\ndy = x*dq\n"
    for bad, message in (({"x": (0,)}, r"shapes\['x'\]"), ([("x", (2,))], "must be a dict")):
        with pytest.raises(symbp.SymbpError, match=message):
            symbp.check(src, at={"x": 1.0, "y": 2.0}, shapes=bad)
        with pytest.raises(symbp.SymbpError, match=message):
            symbp.derivative("sum(x*x)", "x", shapes=bad, direction="v")
    assert symbp.check(src, at={"x": 1.0, "y": 2.0}, shapes={}).ok


def test_f_check_of_a_zero_derivative_is_not_the_references_own_error():
    # x**3 at 0: the central difference is h**2 = 1e-40 where the derivative is 0, reported
    # as a relative error of 1; differences at h and h/10, extrapolated, cancel it
    f = symbp.compile("x**3 + sin(x) * x**2 + y", jit=False)
    report = f.check(0.0, 1.0)
    assert report.ok, str(report)
    assert all(x.numeric in (0.0, 1.0) for x in report.lines)
    g = symbp.compile("sum(W**3)", shapes={"W": (2,)}, jit=False)  # an elementwise line
    assert g.check(W=np.array([0.0, 1.5])).ok
    mixed = symbp.compile("sum(W) * x**3", shapes={"W": (2,)}, jit=False)  # a scalar line
    assert mixed.check(W=np.array([1.0, 2.0]), x=0.0).ok
    # a kink still shows, and a tiny derivative is not taken for 0
    assert "central difference 0.5" in str(symbp.compile("relu(x) * 2", jit=False).check(0.0))
    tiny = symbp.compile("exp(x) * 1e-45 + x**3", jit=False).check(1e-8)
    assert tiny.ok and min(x.numeric for x in tiny.lines) > 0
