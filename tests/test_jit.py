"""The Numba path: cache folder, corrupt files, the kernel inside user code."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from conftest import compiled

import symbp
from symbp import jit as jit_module

CS231N = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder and empty in-memory caches."""
    monkeypatch.setenv("SYMBP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(jit_module, "_loaded", {})
    monkeypatch.setattr(jit_module, "_compiled", {})
    return tmp_path / "cache"


def test_kernel_is_callable_from_user_njit_code():
    kernel = compiled(CS231N).kernel

    @numba.njit
    def descend(x, y, steps, rate):
        for _ in range(steps):
            _, dx, dy = kernel(x, y)
            x -= rate * dx
            y -= rate * dy
        return x, y

    x, y = descend(3.0, -4.0, 3, 0.01)
    px, py = 3.0, -4.0
    for _ in range(3):
        _, dx, dy = kernel.py_func(px, py)
        px, py = px - 0.01 * dx, py - 0.01 * dy
    assert (x, y) == pytest.approx((px, py), rel=1e-14)


def test_kernel_returns_a_flat_tuple():
    result = compiled(CS231N).kernel(3.0, -4.0)
    assert isinstance(result, tuple) and len(result) == 3
    assert all(isinstance(v, float) for v in result)


def test_module_is_a_real_file_in_a_private_folder(fresh_cache):
    f = symbp.compile("x * y + 1", jit=False)
    path = Path(f.path)
    assert path.parent == fresh_cache and path.read_text() == f.source
    assert stat.S_IMODE(os.stat(fresh_cache).st_mode) == 0o700
    import inspect

    assert inspect.getsource(f.kernel) in f.source


def test_traceback_shows_the_generated_line(fresh_cache):
    f = symbp.compile("log(x) * y", jit=False)
    with pytest.raises(ValueError) as info:  # math.log(-1) raises in Python (NaN under Numba)
        f(-1.0, 2.0)
    assert any(Path(entry.path) == Path(f.path) for entry in info.traceback)


def test_corrupt_module_is_rewritten_not_imported(fresh_cache):
    f = symbp.compile("x * y + 2", jit=False)
    Path(f.path).write_text("raise SystemExit('tampered module was imported')\n")
    jit_module._loaded.clear()
    g = symbp.compile("x * y + 2", jit=False)
    assert g(2.0, 3.0) == 8.0 and Path(g.path).read_text() == g.source


@pytest.mark.parametrize("numba_cache_dir", [False, True], ids=["default", "NUMBA_CACHE_DIR"])
def test_corrupt_numba_cache_recompiles(fresh_cache, numba_cache_dir, tmp_path, monkeypatch):
    """Numba's cache of symbp's functions is in symbp's folder, also with NUMBA_CACHE_DIR set
    (the README's test command runs with or without it)."""
    if numba_cache_dir:
        monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "numba"))
    f = symbp.compile("x * y + 3")
    files = list(jit_module.numba_cache_dir().glob(f"{Path(f.path).stem}.*.nb*"))
    assert files and jit_module.numba_cache_dir().parent == fresh_cache
    for file in files:
        file.write_bytes(b"\x00garbage" * 10)
    jit_module._loaded.clear()
    jit_module._compiled.clear()
    g = symbp.compile("x * y + 3")
    assert g(2.0, 3.0) == 9.0 == f(2.0, 3.0)
    assert not (tmp_path / "numba").exists()


def test_second_process_loads_from_cache(tmp_path):
    """Cold compile writes Numba's cache; a second process hits it."""
    env = dict(os.environ, SYMBP_CACHE_DIR=str(tmp_path / "cache"))
    script = ("import symbp; f = symbp.compile('x * sigmoid(y) + 4'); "
              "print(sum(f.kernel.stats.cache_hits.values()), f(1.0, 0.0))")
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(2)]
    assert runs[0] == ["0", "4.5"] and runs[1] == ["1", "4.5"]


def test_compile_time_is_reported(fresh_cache):
    f = symbp.compile("x * y - 5", jit=False)
    assert f.compile_time > 0 and set(f.timings) >= {"parse", "derive", "emit"}
    assert f.compile_time == pytest.approx(sum(f.timings.values()))
    again = symbp.compile("x * y - 5", jit=False)  # the source cache skips parsing and SymPy
    assert set(again.timings) == {"cached source", "load"} and again.source == f.source


def test_python_and_numba_differ_only_where_documented():
    """exp overflow raises in Python and gives inf under Numba; 1/0 gives inf under Numba."""
    fast, slow = compiled("exp(x) + 1 / y"), compiled("exp(x) + 1 / y", False)
    assert fast(1000.0, 1.0) == float("inf")
    with pytest.raises(OverflowError):
        slow(1000.0, 1.0)
    assert fast(0.0, 0.0) == float("inf")
    with pytest.raises(ZeroDivisionError):
        slow(0.0, 0.0)


@pytest.mark.parametrize(("expr", "shapes", "name"), [
    (CS231N, None, "value_and_grad"),
    ("sum((W @ x)**2)", {"W": (2, 2), "x": (2,)}, "value_and_grad_into"),
])
def test_kernel_source_is_the_kernel_alone(expr, shapes, name):
    f = symbp.compile(expr, shapes=shapes, jit=False)
    text = f.kernel_source
    assert text in f.source and text.startswith(f"def {name}(")
    module = ast.parse(text)
    assert [type(n).__name__ for n in module.body] == ["FunctionDef"]
    assert "# forward pass" in text and "# backward pass" in text


def test_matmul_without_blas_runs_the_loops(tmp_path):
    """Without SciPy (no BLAS for Numba) kernels multiply with compiled loops, and their
    modules say so (a cache made with BLAS is not reused)."""
    script = """
import importlib.util
find_spec = importlib.util.find_spec  # symbp looks for SciPy this way: hide it
importlib.util.find_spec = lambda name, *rest: None if name == "scipy" else find_spec(name, *rest)
import numpy as np
import symbp
from symbp.emit import RUNTIME_HASH
assert RUNTIME_HASH.endswith("no BLAS"), RUNTIME_HASH
f = symbp.compile("sum((A @ B) * C)", shapes={"A": (40, 30), "B": (30, 20), "C": (40, 20)})
rng = np.random.default_rng(0)
A, B, C = rng.normal(size=(40, 30)), rng.normal(size=(30, 20)), rng.normal(size=(40, 20))
value, grads = f.value_and_grad(A=A, B=B, C=C)
assert np.isclose(value, np.sum((A @ B) * C))
assert np.allclose(grads["A"], C @ B.T) and np.allclose(grads["B"], A.T @ C)
print("ok")
"""
    env = {**os.environ, "SYMBP_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_environment_key_fingerprints_the_runtime_as_the_modules_do():
    """jit.py hashes the runtime file itself (importing emit would load SymPy on the cached
    path): the same fingerprint every generated module's header carries."""
    from symbp import emit, runtime

    environment = jit_module._environment()
    assert environment[1] == emit.RUNTIME_HASH.split(",")[0]
    assert environment[8] is runtime.BLAS and emit.RUNTIME_HASH.endswith(
        "" if runtime.BLAS else ", no BLAS")
    assert f"(runtime {emit.RUNTIME_HASH})" in compiled("x * y + 2").source
