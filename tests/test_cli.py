"""The command line: exit status 0 on success, 2 on bad input with a message, no traceback."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import shutil
import sys

import numpy as np
import pytest

from symbp import SymbpError, datasets
from symbp.cli import main


def test_grad_prints_source_value_and_gradients(capsys):
    assert main(["grad", "(x + y) * z", "--at", "x=-2", "y=5", "z=-4", "--no-jit"]) == 0
    out = capsys.readouterr().out
    assert "def value_and_grad(x, y, z):" in out and "# backward pass" in out
    assert "value = -12.0" in out and "dx    = -4.0" in out and "dz    = 3.0" in out


def test_grad_reads_staged_lines_from_a_file(tmp_path, capsys):
    path = tmp_path / "model.sbp"
    path.write_text("q = x + y\nf = q * z\n")
    assert main(["grad", "-f", str(path), "--at", "x=-2", "y=5", "z=-4", "--no-jit"]) == 0
    assert "dq = z" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["grad", "x + sigmod(y)", "--at", "x=1", "y=2"], "unknown function 'sigmod'"),
    (["grad", "x * y", "--at", "x=1"], "missing value"),
    (["grad", "x * y", "--at", "x=one", "y=2"], "not a number"),
    (["grad", "x * y", "--at", "x=1", "y=2", "w=3"], "unknown input"),
    (["grad", "-f", "/nonexistent/model.sbp"], "cannot read"),
    (["grad", "x * y", "--at", "x=1,2", "y=2"], "x is a scalar but got 2 values"),
    (["grad", "sum(x)", "--shape", "x=3", "--at", "x=1,2"], "do not fill shape (3,)"),
    (["grad", "sum(x)", "--shape", "x=3,0"], "'0' is not a positive integer"),
    (["grad", "sum(x)", "--shape", "x=3", "z=2"], "--shape/--labels name unknown input(s) z"),
    (["grad", "x * y", "--at", "x=1", "x=2", "y=0"], "gives 'x' twice"),
    (["grad", "x * y", "--at", "x"], "expects NAME=VALUE"),
    (["grad"], "no expression"),
    (["draw", "x * y", "--at", "x=1", "y=2", "-o", "circuit.jpg"], "the suffix picks the format"),
    (["draw", "x * y", "--at", "x=1"], "missing value"),
    (["draw", "x +* y"], "invalid syntax"),
    (["draw", "x", "--digits", "0"], "--digits must be from 1 to 17"),
    (["grad", "sum(X)", "--shape", "X=B,B", "--at", "X=1,2,3,4"], "binds one named dimension"),
    (["grad", "mean(hinge(S, y))", "--shape", "S=2,2", "--labels", "y=2", "--at", "S=1,2,3,4",
      "y=0.5,1"], "labels must be whole numbers"),
    (["grad", "sum(y)", "--shape", "y=2", "--labels", "y=2"], "either --shape or --labels"),
    (["train", "--dataset", "xor", "--test-size", "0"], "between 0 and 1"),
    (["train", "--dataset", "xor", "--test-size", "nan"], "between 0 and 1"),
])
def test_bad_input_exits_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbp: error:") and message in err and "Traceback" not in err


def test_parse_error_keeps_its_caret_block(capsys):
    assert main(["grad", "x + sigmod(y)"]) == 2
    assert "^^^^^^" in capsys.readouterr().err


def test_bare_symbp_says_what_it_can_do(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("grad", "draw", "train", "bench"):
        assert re.search(rf"^    {command} ", out, re.M), f"{command} not listed"
        assert f"  symbp {command} " in out, f"no example of {command}"


@pytest.mark.parametrize("command", ["grad", "draw", "train", "bench"])
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert f"usage: symbp {command}" in capsys.readouterr().out


def test_bench_bad_option_exits_2(capsys):
    assert main(["bench", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_model_file_with_comments_and_blank_lines(tmp_path, capsys):
    path = tmp_path / "model.sbp"
    path.write_text("# the smallest circuit\n\nq = x + y   # an add gate\n\nf = q * z\n")
    assert main(["grad", "-f", str(path), "--at", "x=-2", "y=5", "z=-4", "--no-jit"]) == 0
    out = capsys.readouterr().out
    assert "value = -12.0" in out and "dz    = 3.0" in out


def test_grad_of_arrays_from_shape_and_at(capsys):
    argv = ["grad", "sum((W @ x)**2)", "--shape", "W=2,2", "x=2",
            "--at", "W=0.1,0.5,-0.3,0.8", "x=0.2,0.4", "--no-jit"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "# at W=[0.1, 0.5, -0.3, 0.8], x=[0.2, 0.4]" in out

    def numbers(label: str) -> np.ndarray:  # the numbers printed after "label =", up to the next
        block = out.split(f"\n{label}")[1].split("\nd")[0]
        return np.array([float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", block)])

    np.testing.assert_allclose(numbers("dW"), [0.088, 0.176, 0.104, 0.208], rtol=1e-12)
    np.testing.assert_allclose(numbers("dx"), [-0.112, 0.636], rtol=1e-12)


def test_named_dimension_is_bound_by_the_values(capsys):
    argv = ["grad", "sum(X @ w)", "--shape", "X=B,2", "w=2", "--at", "X=1,2,3,4,5,6",
            "w=1,-1", "--wrt", "w", "--no-jit"]
    assert main(argv) == 0
    assert re.search(r"dw\s+= \[ ?9\., +12\.\]", capsys.readouterr().out)  # column sums


def test_expression_may_start_with_a_minus(capsys):
    assert main(["grad", "-x*y", "--at", "x=1", "y=2", "--no-jit"]) == 0
    out = capsys.readouterr().out
    assert "negx = -x" in out and "dx    = -2.0" in out


def test_grad_prints_the_function_or_the_module(capsys):
    assert main(["grad", "x*y", "--no-jit"]) == 0
    assert capsys.readouterr().out.startswith("def value_and_grad(x, y):")
    assert main(["grad", "x*y", "--no-jit", "--module"]) == 0
    assert capsys.readouterr().out.startswith("# Generated by symbp")


def test_parse_error_in_a_model_file_names_the_file(tmp_path, capsys):
    path = tmp_path / "bad.sbp"
    path.write_text("q = x +\n")
    assert main(["grad", "-f", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: syntax error" in err and "^" in err


def test_labels_for_a_classification_loss(capsys):
    argv = ["grad", "mean(softmax_cross_entropy(S, t))", "--shape", "S=2,3", "--labels", "t=2",
            "--at", "S=1,2,3,4,5,6", "t=0,2", "--wrt", "S", "--no-jit"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "t=[0, 2]" in out
    probs = np.exp([[1, 2, 3], [4, 5, 6]]) / np.exp([[1, 2, 3], [4, 5, 6]]).sum(1, keepdims=True)
    expected = (probs - np.eye(3)[[0, 2]]) / 2  # (softmax - onehot) / batch
    numbers = [float(v) for v in re.findall(r"-?\d+\.\d+", out.split("\ndS")[1])]
    np.testing.assert_allclose(numbers, expected.reshape(-1), rtol=1e-10)


def test_inputs_named_like_draw_options(capsys):
    argv = ["draw", "f * values", "--at", "f=2", "values=3", "--no-jit"]
    assert main(argv) == 0
    assert "f -> " in capsys.readouterr().out


def test_draw_prints_dot_text(capsys):
    assert main(["draw", "(x + y) * z", "--at", "x=-2", "y=5", "z=-4", "--no-jit"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("// symbp circuit of f(x, y, z)")
    assert 'xpy -> f [label=<<font color="#1a7f37">3</font><br/><font color="#cf222e">-4' in out


def test_draw_writes_dot_without_the_program(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "")
    path = tmp_path / "circuit.dot"
    argv = ["draw", "(x + y) * z", "--at", "x=-2", "y=5", "z=-4", "--no-jit"]
    assert main([*argv, "-o", str(path)]) == 0
    assert "digraph circuit" in path.read_text()
    assert main([*argv, "-o", str(tmp_path / "circuit.svg")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err and "-o circuit.dot" in err
    assert "Traceback" not in err


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="the Graphviz program `dot` is not installed (apt-get install graphviz)")
def test_draw_renders_svg(tmp_path, capsys):
    path = tmp_path / "circuit.svg"
    argv = ["draw", "(x + y) * z", "--at", "x=-2", "y=5", "z=-4", "-o", str(path), "--no-jit"]
    assert main(argv) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    svg = path.read_text()
    assert "</svg>" in svg and ">&#45;12<" in svg  # Graphviz escapes the minus sign


XOR_ARGS = ["--hidden", "4", "--activation", "logistic", "--solver", "sgd", "--lr", "0.5",
            "--batch-size", "4", "--epochs", "1500", "--quiet"]


def test_train_xor_saves_and_plots(tmp_path, capsys):
    model_path, plot_path = tmp_path / "xor.npz", tmp_path / "curves.png"
    argv = ["train", "--dataset", "xor", *XOR_ARGS, "--save", str(model_path)]
    if importlib.util.find_spec("matplotlib"):
        argv += ["--plot", str(plot_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "test accuracy: 1.0000" in out and "network 2-4-1 logistic" in out
    from symbp.nn import MLPClassifier

    assert MLPClassifier.load(model_path).predict([[0, 1], [1, 1]]).tolist() == [1, 0]
    if "--plot" in argv:
        assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_on_a_csv_file_with_text_labels(tmp_path, capsys):
    rows = ["a,b,kind"] + [f"{x},{y},{'same' if x == y else 'differ'}"
                           for _ in range(10) for x in (0, 1) for y in (0, 1)]
    path = tmp_path / "xor.csv"
    path.write_text("\n".join(rows) + "\n")
    argv = ["train", "--csv", str(path), "--target", "kind", *XOR_ARGS, "--epochs", "300"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "32 training / 8 test samples, 2 features, 2 classes" in out
    assert "test accuracy: 1.0000" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["train"], "give either --dataset NAME or --csv PATH"),
    (["train", "--csv", "data.csv"], "--csv needs --target"),
    (["train", "--csv", "/nonexistent.csv", "--target", "y"], "cannot read"),
    (["train", "--dataset", "xor", "--lr", "-1"], "learning_rate_init must be in"),
])
def test_train_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_csv_errors_point_at_the_cell(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n1,2,0\n3,oops,1\n4,5,0\n")
    with pytest.raises(SymbpError, match=r"line 3, column 'b': 'oops' is not a number"):
        datasets.from_csv(path, "y")
    with pytest.raises(SymbpError, match="no column 'z'; columns: a, b, y"):
        datasets.from_csv(path, "z")


@pytest.mark.parametrize(("cell", "shown"), [("nan", "'nan'"), (" inf", "'inf'"),
                                             ("-Infinity", "'-Infinity'"), ("NaN", "'NaN'")])
def test_csv_refuses_non_finite_cells_at_their_line(tmp_path, cell, shown):
    """A literal nan/inf is reported at its CSV line and column before training (it used to
    surface later at a row of the test split)."""
    path = tmp_path / "bad.csv"
    path.write_text(f"a,b,y\n1,2,0\n\n3,4,1\n5,{cell},0\n6,7,1\n")  # line 5: a blank line counts
    with pytest.raises(SymbpError, match=rf"line 5, column 'b': {re.escape(shown)} is not a "
                                         "finite number"):
        datasets.from_csv(path, "y")
    path.write_text(f"a,b,y\n1,2,0.5\n3,4,1.5\n5,6,{cell}\n")
    with pytest.raises(SymbpError, match=rf"line 4, column 'y': {re.escape(shown.strip())} is "
                                         "not a finite number"):
        datasets.from_csv(path, "y")


def test_digits_are_exactly_scikit_learns_load_digits():
    """Read from scikit-learn's data file without sklearn.datasets: the same arrays."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    data = datasets.digits()
    assert data.X.shape == (1797, 64) and data.X.dtype == (X / 16.0).dtype
    assert np.array_equal(data.X, X / 16.0) and data.X.max() == 1.0
    assert data.y.dtype == y.dtype and np.array_equal(data.y, y)
    assert data.classification and data.split


def test_digits_without_scikit_learn_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if not installed
    with pytest.raises(SymbpError, match=r"ships with scikit-learn: pip install 'symbp\[train\]'"):
        datasets.load("digits")
    monkeypatch.delitem(sys.modules, "sklearn")
    if importlib.util.find_spec("sklearn") is None:
        return
    monkeypatch.setattr(datasets, "DIGITS_FILE", ("datasets", "data", "no-such-file.csv.gz"))
    with pytest.raises(SymbpError, match=r"no datasets/data/no-such-file.csv.gz in .*sklearn"):
        datasets.digits()


def test_a_damaged_digits_file_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "datasets" / "data").mkdir(parents=True)
    (tmp_path / "datasets" / "data" / "digits.csv.gz").write_bytes(b"not gzip")
    spec = importlib.machinery.ModuleSpec("sklearn", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: spec if name == "sklearn" else real(name, *rest))
    with pytest.raises(SymbpError, match="cannot read the digits from"):
        datasets.digits()

def test_train_names_the_csv_cell_beyond_float32(tmp_path, capsys):
    path = tmp_path / "big.csv"
    path.write_text("a,b,y\n" + "".join(f"{k},{1e39 if k == 7 else k},{k % 2}\n"
                                        for k in range(20)))
    assert main(["train", "--csv", str(path), "--target", "y", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "line 9, column 'b': 1e+39 is beyond the range of float32" in err
    assert "use --scale or --dtype float64" in err


def test_train_help_says_features_are_not_scaled(capsys):
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "not scaled" in out and "--scale" in out


def test_train_scale_keeps_the_training_statistics_in_the_model(tmp_path, capsys):
    """--scale standardizes with the training part's statistics (the XOR CSV shifted and
    stretched: 1000 + 50 x), stores them in the model file, and the loaded model's predict
    takes the raw features."""
    rows = ["a,b,kind"] + [f"{1000 + 50 * x},{-7 + 0.001 * y},{'same' if x == y else 'differ'}"
                           for _ in range(10) for x in (0, 1) for y in (0, 1)]
    path, model_path = tmp_path / "xor.csv", tmp_path / "m.npz"
    path.write_text("\n".join(rows) + "\n")
    argv = ["train", "--csv", str(path), "--target", "kind", *XOR_ARGS, "--epochs", "300",
            "--scale", "--save", str(model_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "features standardized" in out and "test accuracy: 1.0000" in out
    from symbp.nn import MLPClassifier
    from symbp.nn.split import train_test_split

    data = datasets.from_csv(path, "kind")
    X_train = train_test_split(data.X, data.y, test_size=0.2, rng=np.random.RandomState(0),
                               stratify=np.unique(data.y, return_inverse=True)[1])[0]
    model = MLPClassifier.load(model_path)
    np.testing.assert_allclose(model.feature_mean_, X_train.mean(axis=0))
    np.testing.assert_allclose(model.feature_scale_, X_train.std(axis=0))
    assert model.predict([[1000, -7], [1050, -7]]).tolist() == ["same", "differ"]
