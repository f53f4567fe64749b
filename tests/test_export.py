"""``Function.export``: the written module runs in a process that cannot import symbp, and
gives the values and gradients of ``Function.value_and_grad``."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import symbp
from symbp.cli import main
from symbp.errors import ExportError

# Run in a fresh interpreter, isolated (-I: no PYTHONPATH, no user site, no script folder), with
# a meta-path finder that refuses symbp: the exported module must need NumPy and Numba only.
BLOCKER = textwrap.dedent("""\
    import importlib.abc, importlib.util, json, sys
    class NoSymbp(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "symbp" or name.startswith("symbp."):
                raise ImportError("symbp is blocked in this process")
    sys.meta_path.insert(0, NoSymbp())
    def load(path, name):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # the importlib recipe: Numba's cache finds it there
        spec.loader.exec_module(module)
        return module
    """)


def run_isolated(code: str, cwd) -> dict:
    """Run ``code`` (after BLOCKER) in an isolated interpreter; the JSON it prints last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SYMBP"))}
    env["NUMBA_CACHE_DIR"] = str(cwd / "numba-cache")
    done = subprocess.run([sys.executable, "-I", "-c", BLOCKER + textwrap.dedent(code)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


SCALAR = "q = x * y + sigmoid(x)\nf = log(1 + q**2) * tanh(y) + relu(x - y)"
CLI = "x * sigmoid(y) - exp(-x**2)"
NET = "mean(softmax_cross_entropy(tanh(X @ W + b) @ V, y)) + 0.1 * sum(W**2)"
NET_SHAPES = {"X": ("B", 3), "W": (3, 9), "b": (9,), "V": (9, 4), "y": symbp.ints(("B",))}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Both functions exported and run at several points in one isolated process."""
    folder = tmp_path_factory.mktemp("export")
    scalar = symbp.compile(SCALAR)
    net = symbp.compile(NET, shapes=NET_SHAPES)
    scalar.export(folder / "scalar_f.py")
    net.export(folder / "net_f.py")
    assert main(["grad", CLI, "--no-jit", "--export", str(folder / "cli_f.py")]) == 0
    rng = np.random.default_rng(0)
    points = [(float(a), float(b)) for a, b in rng.normal(0, 2, (6, 2))]
    nets = []
    for B in (1, 5, 40):  # 40 x 9 x 4 and more: the BLAS path where SciPy is installed
        nets.append({"X": rng.normal(size=(B, 3)).tolist(), "W": rng.normal(size=(3, 9)).tolist(),
                     "b": rng.normal(size=9).tolist(), "V": rng.normal(size=(9, 4)).tolist(),
                     "y": rng.integers(0, 4, B).tolist()})
    (folder / "points.json").write_text(json.dumps({"scalar": points, "net": nets}))
    code = """
        import numpy as np
        given = json.load(open("points.json"))
        s = load("scalar_f.py", "scalar_f")
        n = load("net_f.py", "net_f")
        out = {"scalar": [list(s.value_and_grad(*p)) for p in given["scalar"]], "net": []}
        xs, ys = np.array(given["scalar"]).T.copy()
        buffers = [np.empty(len(xs)) for _ in range(3)]
        s.value_and_grad_points(xs, ys, *buffers)
        out["points"] = [b.tolist() for b in buffers]
        for p in given["net"]:
            args = [np.array(p[k], np.int64 if k == "y" else np.float64) for k in n.INPUTS]
            v, *grads = n.value_and_grad(*args)
            out["net"].append([float(v), [g.tolist() for g in grads]])
            args32 = [a.astype(np.float32) if a.dtype == np.float64 else a for a in args]
            out.setdefault("net32", []).append(float(n.value_and_grad(*args32)[0]))
        c = load("cli_f.py", "cli_f")
        out["cli"] = [list(c.value_and_grad(*p)) for p in given["scalar"]]
        out["symbp_loaded"] = any(m.split(".")[0] == "symbp" for m in sys.modules)
        out["doc"] = [s.__doc__, n.__doc__]
        out["cache"] = [[sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]
                        for k in (s.value_and_grad, n.value_and_grad)]  # loaded, compiled
        print(json.dumps(out))
        """
    result = run_isolated(code, folder)
    again = run_isolated(code, folder)  # Numba's cache=True: loaded, not compiled
    return scalar, net, points, nets, result, folder, again


def test_isolated_process_never_loads_symbp(exported):
    *_, result, _, _ = exported
    assert result["symbp_loaded"] is False


def test_a_second_process_loads_numbas_cache(exported):
    *_, result, folder, again = exported
    assert list(folder.rglob("net_f.*.nbi"))  # cache=True wrote an index
    assert result.pop("cache") == [[0, 1], [0, 2]]  # float64 and float32 for the network
    assert again.pop("cache") == [[1, 0], [2, 0]]  # every one loaded, none compiled
    assert again == result


def test_scalar_values_and_gradients_match(exported):
    scalar, _, points, _, result, _, _ = exported
    for (x, y), (value, dx, dy) in zip(points, result["scalar"]):
        want, grads = scalar.value_and_grad(x, y)
        assert value == pytest.approx(want, rel=1e-13, abs=1e-15)
        assert [dx, dy] == pytest.approx([grads["x"], grads["y"]], rel=1e-12, abs=1e-14)
        # and against central differences of symbp's value, in float64
        h = 1e-6
        num = [(scalar(x + h, y) - scalar(x - h, y)) / (2 * h),
               (scalar(x, y + h) - scalar(x, y - h)) / (2 * h)]
        if abs(x - y) > 1e-3:  # away from relu's kink
            assert [dx, dy] == pytest.approx(num, rel=1e-6, abs=1e-8)
    values, dxs, dys = result["points"]
    assert values == pytest.approx([v for v, _, _ in result["scalar"]], rel=1e-13, abs=1e-15)
    assert dxs == pytest.approx([d for _, d, _ in result["scalar"]], rel=1e-13, abs=1e-15)
    assert dys == pytest.approx([d for _, _, d in result["scalar"]], rel=1e-13, abs=1e-15)


def test_array_values_and_gradients_match(exported):
    _, net, _, nets, result, _, _ = exported
    for given, (value, grads), value32 in zip(nets, result["net"], result["net32"]):
        args = {k: np.array(v, np.int64 if k == "y" else np.float64) for k, v in given.items()}
        want, want_grads = net.value_and_grad(**args)
        assert value == pytest.approx(want, rel=1e-12)
        for name, got in zip(net.wrt, grads):
            np.testing.assert_allclose(got, want_grads[name], rtol=1e-11, atol=1e-13)
        assert value32 == pytest.approx(want, rel=1e-5)
        # one gradient entry against a central difference
        W = args["W"].copy()
        h = 1e-6
        W[1, 2] += h
        up = net(**{**args, "W": W})
        W[1, 2] -= 2 * h
        down = net(**{**args, "W": W})
        assert grads[1][1][2] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9)


def test_cli_export(exported, tmp_path, capsys):
    _, _, points, _, result, _, _ = exported
    f = symbp.compile(CLI)
    for (x, y), got in zip(points, result["cli"]):
        want, grads = f.value_and_grad(x, y)
        assert got == pytest.approx([want, grads["x"], grads["y"]], rel=1e-13, abs=1e-15)
    capsys.readouterr()
    assert main(["grad", "x*y", "--no-jit", "--export", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["grad", "x*y", "--no-jit", "--export", str(tmp_path / "f.py")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("def value_and_grad(x, y):")  # the usual output
    assert f"wrote {tmp_path / 'f.py'}" in captured.err


def test_docstring_says_what_it_computes(exported):
    *_, result, _, _ = exported
    scalar_doc, net_doc = result["doc"]
    assert "q = x * y + sigmoid(x)" in scalar_doc and f"symbp {symbp.__version__}" in scalar_doc
    assert "value_and_grad(x, y) -> (value, dx, dy)" in scalar_doc
    assert "X: a float array (float32 or float64), shape (B, 3)" in net_doc
    assert "y: int64 labels, shape (B,)" in net_doc
    assert "Gradients with respect to: X, W, b, V." in net_doc


def test_only_the_helpers_used_are_copied(exported):
    *_, folder, _ = exported
    scalar = (folder / "scalar_f.py").read_text()
    net = (folder / "net_f.py").read_text()
    assert "def sigmoid(" in scalar and "def relu(" in scalar and "def tanh(" in scalar
    assert "def softmax_cross_entropy(" not in scalar and "def matmul(" not in scalar
    assert "def matmul(" in net and "def _matmul_loops(" in net and "def _check_label(" in net
    assert "def hinge(" not in net and "def sigmoid(" not in net
    assert "@numba.njit(nogil=True, cache=True)" in net  # the runtime's compiled matmul
    for text in (scalar, net):
        imported = [a.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Import)
                    for a in n.names]
        imported += [n.module for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom)]
        assert {m.split(".")[0] for m in imported} <= {"math", "numba", "numpy", "llvmlite",
                                                        "importlib"}


def test_hostile_expression_text_stays_in_the_docstring(tmp_path):
    f = symbp.compile('x * 2  # """; import os; os.system("echo pwned") \\ \n')
    text = (f.export(tmp_path / "h.py")).read_text()
    tree = ast.parse(text)
    doc = ast.get_docstring(tree, clean=False)
    assert 'os.system("echo pwned")' in doc  # in the docstring, as text
    assert not any(isinstance(n, ast.Import) and n.names[0].name == "os" for n in tree.body)


def test_custom_gates_are_defined_in_the_docstring(tmp_path):
    from symbp.gates import GATES

    symbp.gate("expt_scaled", "k * tanh(a)", params={"k": 2.0})
    symbp.gate("expt_unused", "a * 2")
    try:
        f = symbp.compile("q = swish(x)\nf = q * expt_scaled(y, k=3.0)", jit=False)
        doc = ast.get_docstring(ast.parse(f.export(tmp_path / "g.py").read_text()))
    finally:  # the table-driven tests cover the suite's own custom gate only
        GATES.pop("expt_scaled", None)
        GATES.pop("expt_unused", None)
    assert "    expt_scaled (k=2.0): k*tanh(a)\n    swish: a*sigmoid(a)\n" in doc
    assert "expt_unused" not in doc


def test_bad_paths(tmp_path):
    f = symbp.compile("x * y")
    with pytest.raises(ExportError, match="is a folder"):
        f.export(tmp_path)
    (tmp_path / "d.py").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        f.export(tmp_path / "d.py")
    with pytest.raises(ExportError, match=r"does not end in \.py"):
        f.export(tmp_path / "f.txt")
    with pytest.raises(ExportError, match="does not exist"):
        f.export(tmp_path / "missing" / "f.py")
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="not a folder"):
        f.export(tmp_path / "file" / "f.py")
    with pytest.raises(ExportError, match="string or a path-like"):
        f.export(3)
    with pytest.raises(ExportError, match="empty"):
        f.export("")


def test_replaces_atomically_and_keeps_the_mode(tmp_path):
    f = symbp.compile("x * y")
    target = tmp_path / "f.py"
    target.write_text("old")
    os.chmod(target, 0o600)
    assert f.export(target) == target
    assert "def value_and_grad(x, y)" in target.read_text()
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.py"]  # no temporary left


def test_a_symlink_is_followed(tmp_path):
    """Exporting to a link writes the file it points to (the link once became a regular
    file, the file it pointed to left stale); a dangling link into a missing folder is refused
    for that folder."""
    f = symbp.compile("x * y")
    (tmp_path / "real").mkdir()
    real, link = tmp_path / "real" / "v3.py", tmp_path / "model.py"
    real.write_text("old")
    link.symlink_to(real)
    assert f.export(link) == real
    assert link.is_symlink() and "def value_and_grad(x, y)" in real.read_text()
    dangling = tmp_path / "dangling.py"
    dangling.symlink_to(tmp_path / "gone" / "f.py")
    with pytest.raises(ExportError, match="gone does not exist"):
        f.export(dangling)
    assert dangling.is_symlink()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the umask from /proc")
def test_a_new_file_follows_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        symbp.compile("x * y").export(tmp_path / "private.py")
    finally:
        os.umask(old)
    assert oct((tmp_path / "private.py").stat().st_mode & 0o777) == oct(0o600)  # was 0o644


def test_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    """ENOSPC while writing (as on a full tmpfs, tried by hand): an ExportError naming the
    path, the old file intact and no temporary left."""
    import errno

    target = tmp_path / "f.py"
    target.write_text("old")

    class Full:
        def __init__(self, fd, *args, **kwargs):
            os.close(fd)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fdopen", Full)
    with pytest.raises(ExportError, match=r"cannot write .*f\.py \(No space left on device\)"):
        symbp.compile("x * y").export(target)
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.py"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes read-only folders")
def test_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        with pytest.raises(ExportError, match="cannot write"):
            symbp.compile("x * y").export(folder / "f.py")
    finally:
        os.chmod(folder, 0o700)


# -- a fitted estimator's forward pass ---------------------------------------------------------


@pytest.fixture(scope="module")
def estimators(tmp_path_factory):
    """Three fitted models exported and run in one isolated process: a 3-class classifier
    (string labels, standardized), a two-class float32 maxout one, a standardized regressor
    with a formula activation."""
    from symbp.nn import MLPClassifier, MLPRegressor

    folder = tmp_path_factory.mktemp("export_nn")
    rng = np.random.default_rng(1)
    X = rng.normal(2.0, 3.0, (80, 4))
    labels = np.array(["ant", "bee", "cat"])[(X[:, 0] > 2).astype(int) + (X[:, 1] > 2)]
    models = {
        "three": MLPClassifier((7,), activation="tanh", standardize=True, max_iter=60,
                               random_state=0).fit(X, labels),
        "two": MLPClassifier((6,), activation="maxout", dtype="float32", max_iter=60,
                             random_state=0).fit(X, (X[:, 2] > 2).astype(int) * 5),
        "reg": MLPRegressor(hidden_layer_sizes=(5, 4), activation="x * sigmoid(1.702 * x)",
                            standardize=True, max_iter=60, random_state=0
                            ).fit(X, 10 * X[:, 0] - X[:, 3] + 7),
    }
    for name, model in models.items():
        model.export(folder / f"{name}_m.py")
    Xt = rng.normal(2.0, 3.0, (33, 4))
    np.save(folder / "X.npy", Xt)
    result = run_isolated("""
        import numpy as np
        X = np.load("X.npy")
        out = {}
        for name in ("three", "two", "reg"):
            m = load(f"{name}_m.py", name)
            out[name] = {"predict": m.predict(X).tolist()}
            if hasattr(m, "predict_proba"):
                out[name]["proba"] = m.predict_proba(X).tolist()
        try:
            m.predict(X[:, :3])
        except ValueError as exc:
            out["error"] = str(exc)
        out["symbp_loaded"] = any(k.split(".")[0] == "symbp" for k in sys.modules)
        print(json.dumps(out))
        """, folder)
    return models, Xt, result, folder


@pytest.mark.filterwarnings("ignore::UserWarning")  # ConvergenceWarning of the short fits
def test_estimator_export_predicts_as_the_estimator(estimators):
    models, X, result, _ = estimators
    assert result["symbp_loaded"] is False
    for name in ("three", "two"):
        assert result[name]["predict"] == models[name].predict(X).tolist()
        # float32: the same operations, summed in another order (a few float32 ulps)
        rtol = 1e-12 if models[name].coefs_[0].dtype == np.float64 else 1e-5
        np.testing.assert_allclose(result[name]["proba"], models[name].predict_proba(X),
                                   rtol=rtol, atol=1e-15)
    np.testing.assert_allclose(result["reg"]["predict"], models["reg"].predict(X),
                               rtol=1e-12, atol=1e-12)
    assert np.asarray(result["reg"]["predict"]).ndim == 1  # a vector, as fitted
    assert "4 features per row, got shape (33, 3)" in result["error"]


def test_estimator_export_module(estimators):
    *_, folder = estimators
    text = (folder / "reg_m.py").read_text()
    tree = ast.parse(text)
    doc = ast.get_docstring(tree)
    assert doc.startswith("The forward pass of a fitted symbp.nn.MLPRegressor")
    assert "activation 'x * sigmoid(1.702 * x)'" in doc and "out = h2 @ W3 + b3" in doc
    assert "def predict_proba" not in text and "TARGET_MEAN = np.frombuffer" in text
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    assert "symbp" not in imported and "sklearn" not in imported


def test_estimator_export_errors(tmp_path):
    from symbp.nn import MLPRegressor

    model = MLPRegressor(hidden_layer_sizes=(3,))
    with pytest.raises(symbp.SymbpError, match="not fitted"):
        model.export(tmp_path / "m.py")


def test_export_removes_what_a_killed_export_left(tmp_path):
    """An export killed mid-write leaves ``.f.py.XXXXXXXX.tmp``: the next export of ``f.py``
    removes it once it is stale (old, unlocked) and keeps a live writer's (locked)."""
    import fcntl

    old = os.path.getmtime(tmp_path) - 3600
    stale, live = tmp_path / ".f.py.abcd1234.tmp", tmp_path / ".f.py.live0000.tmp"
    for path in (stale, live):
        path.write_text("partial")
        os.utime(path, (old, old))
    f = symbp.compile("x * y", jit=False)
    with open(live, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        f.export(tmp_path / "f.py")
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".f.py.live0000.tmp", "f.py"]
