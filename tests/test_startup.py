"""Start-up (issue 11): what each path imports, checked in fresh processes.

Structural checks, not timings: ``import symbp`` loads none of the heavy packages, a compile
found in the source cache runs without SymPy, and the command line's help and argument errors
run without NumPy, Numba or SymPy. (Timings live in ``symbp bench``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("sympy", "numba", "numpy", "scipy", "sklearn", "matplotlib", "graphviz", "tqdm")

# Appended to every script: which of HEAVY it loaded, as the last line of its output.
REPORT = f"""
import json as _json, sys as _sys
print(_json.dumps([m for m in {HEAVY!r} if m in _sys.modules]))
"""


def _run(code: str, cache=None) -> tuple[list[str], list[str]]:
    """Run ``code`` in a fresh interpreter; (its output lines, the heavy packages it loaded)."""
    env = dict(os.environ)
    if cache is not None:
        env["SYMBP_CACHE_DIR"] = str(cache)
    done = subprocess.run([sys.executable, "-c", code + REPORT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    return lines[:-1], json.loads(lines[-1])


@pytest.fixture
def cache(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    return folder


def test_import_symbp_loads_no_heavy_package():
    out, loaded = _run("import symbp\nprint(sorted(set(symbp.__all__) - set(dir(symbp))))")
    assert loaded == []
    assert out == ["[]"]  # dir() lists every public name before any is loaded


def test_public_names_load_at_first_touch():
    code = """
import sys
import symbp
from symbp import Function, compile
import symbp.function
assert compile is symbp.function.compile and Function is symbp.function.Function
assert symbp.compile is compile
print("sympy" in sys.modules)
assert symbp.gate is symbp.parse.gate and symbp.GATES is symbp.gates.GATES
print("sympy" in sys.modules)
assert all(getattr(symbp, name) is not None for name in symbp.__all__)
try:
    symbp.no_such_name
except AttributeError as exc:
    print(exc)
"""
    out, loaded = _run(code)
    assert out == ["False", "True", "module 'symbp' has no attribute 'no_such_name'"]
    assert "numba" in loaded  # the compiler came with symbp.compile


def test_a_cached_compile_loads_no_sympy(cache):
    code = """
import sys
import symbp
f = symbp.compile("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)")
print(sorted(f.timings), repr(f(3.0, -4.0)), sum(f.kernel.stats.cache_hits.values()))
"""
    first, loaded_first = _run(code, cache)
    second, loaded_second = _run(code, cache)
    assert "sympy" in loaded_first and "parse" in first[0]  # the first process parses
    assert second[0] == f"['cached source', 'jit'] {first[0].split()[-2]} 1"
    assert not {"sympy", "sklearn", "matplotlib", "graphviz", "tqdm"} & set(loaded_second)


def test_a_custom_gate_still_decides_the_cached_key(cache):
    """The cache key includes the custom gates: without the gate table loaded there are none;
    defining one loads it, and the same text is then parsed again, not taken from the cache."""
    _run("import symbp; symbp.compile('x * y + 1', jit=False)", cache)
    out, loaded = _run("import symbp\nsymbp.gate('twice', '2 * a')\n"
                       "print(sorted(symbp.compile('x * y + 1', jit=False).timings))", cache)
    assert "parse" in out[0] and "sympy" in loaded


def test_command_line_help_and_usage_errors_load_no_numeric_stack():
    code = """
import contextlib, io, sys
from symbp.cli import main
heavy = ("numba", "numpy", "sympy", "scipy", "sklearn")
for argv in (["--help"], ["train", "--help"], ["grad", "--help"], ["draw", "--help"],
             ["bogus"], ["train", "--epochs", "x"], ["grad"],
             ["train", "--dataset", "xor", "--test-size", "0"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = main(argv)
    print(" ".join(argv), status, [m for m in heavy if m in sys.modules])
"""
    out, _ = _run(code)
    assert out == ["--help 0 []", "train --help 0 []", "grad --help 0 []", "draw --help 0 []",
                   "bogus 2 []", "train --epochs x 2 []", "grad 2 []",
                   "train --dataset xor --test-size 0 2 []"]


def test_the_command_module_itself_imports_no_numeric_stack():
    """``python -m symbp.cli --help``, as run from a shell: every module Python imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "symbp.cli", "--help"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "usage: symbp" in done.stdout, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "symbp.cli" in imported or "symbp" in imported
    assert not {m.split(".")[0] for m in imported} & {"numba", "numpy", "sympy", "scipy"}


def test_the_digits_load_without_scikit_learn_or_scipy():
    pytest.importorskip("sklearn")
    out, loaded = _run("from symbp import datasets\nd = datasets.digits()\n"
                       "print(d.X.shape, d.y.shape, d.X.dtype, d.y.dtype)")
    assert out == ["(1797, 64) (1797,) float64 int64"]
    assert loaded == ["numpy"]


def test_symbp_train_as_a_program_needs_no_scikit_learn_import():
    """Run as the program (``main()`` reading sys.argv), ``symbp train`` uses symbp's stand-in
    estimator bases (scikit-learn hidden while symbp.nn loads), so scikit-learn's import is not
    paid; called with an explicit argv (from other code) the estimators stay scikit-learn's."""
    pytest.importorskip("sklearn")
    args = ["train", "--dataset", "xor", "--hidden", "4", "--activation", "logistic",
            "--solver", "sgd", "--lr", "0.5", "--batch-size", "4", "--epochs", "1500",
            "--quiet"]  # test_cli's XOR run: its compiled network is in the cache already
    code = f"""
import sys
sys.argv = ["symbp", *{args!r}]
from symbp.cli import main
status = main()
loaded = "sklearn" in sys.modules or "scipy.stats" in sys.modules
import sklearn.base  # scikit-learn itself is importable again afterwards
import symbp.nn
print(status, loaded, issubclass(symbp.nn.MLPClassifier, sklearn.base.BaseEstimator),
      symbp.nn.MLPClassifier.__mro__[-2].__module__)
"""
    out, loaded = _run(code)
    assert "test accuracy: 1.0000" in out and out[-1] == "0 False False symbp.nn._estimator"
    code = f"""
import contextlib, io
from symbp.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    status = main({args!r})
import sklearn.base
import symbp.nn
print(status, issubclass(symbp.nn.MLPClassifier, sklearn.base.BaseEstimator))
"""
    out, loaded = _run(code)
    assert out == ["0 True"] and "sklearn" in loaded
