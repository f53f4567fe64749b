"""symbp on Dask (issue 14): a Function pickles as its request and is compiled again on workers
that have never seen it; a scalar function runs blockwise over Dask arrays; symbp.nn fits under
joblib's dask backend, dask-ml's Incremental and ParallelPostFit.

One real LocalCluster (2 worker processes, 1 thread each, each worker with its own empty
SYMBP_CACHE_DIR) serves the module; the network is test_partial_fit.py's xor structure, so the
only compilations are the workers' own. Without Dask installed the module skips.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import check_gradient, numeric_gradient

import symbp

pytest.importorskip("dask.array", reason="Dask is not installed (pip install 'symbp[dask]')")
pytest.importorskip("distributed", reason="dask.distributed is not installed "
                    "(pip install 'symbp[dask]')")

import dask  # noqa: E402
import dask.array as da  # noqa: E402

EXPR = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"
XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 6)
XOR_Y = np.array([0, 1, 1, 0] * 6)
XOR = dict(hidden_layer_sizes=(4,), activation="logistic", learning_rate_init=0.5,
           batch_size=2, shuffle=False, random_state=0, dtype="float32")


@pytest.fixture(scope="module")
def f():
    return symbp.compile(EXPR)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Two worker processes, each with its own empty symbp cache folder."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    template = cluster.new_spec
    folders = []
    try:
        for n in range(2):
            folder = tmp_path_factory.mktemp(f"worker{n}-cache")
            folder.chmod(0o700)
            folders.append(str(folder))
            options = dict(template["options"])
            options["env"] = {**options.get("env", {}), "SYMBP_CACHE_DIR": str(folder)}
            cluster.new_spec = {**template, "options": options}
            cluster.scale(n + 1)
        client = Client(cluster)
        client.wait_for_workers(2, timeout=120)
        client.folders = folders
        yield client
        client.close()
    finally:
        cluster.close()


def _worker_view(f, x, y):
    """Runs on a worker (f was unpickled, so compiled, there): its cache folder, whether f's
    generated module is in it, and f's results there."""
    from symbp import jit

    value, grads = f.value_and_grad(x=x, y=y)
    module = jit.module_path(f.source)
    return os.environ["SYMBP_CACHE_DIR"], module, module.is_file(), value, grads


def test_a_function_pickles_its_request_not_code(f):
    blob = pickle.dumps(f)
    assert len(blob) < 1000  # the request: no dispatcher, no module, no path
    assert b"numba" not in blob and b"Dispatcher" not in blob and f.path.encode() not in blob
    again = pickle.loads(blob)
    assert again is pickle.loads(blob)  # compiled once per process
    assert again.source == f.source and again.inputs == f.inputs and again.wrt == f.wrt
    assert again(0.5, -1.5) == f(0.5, -1.5)
    check_gradient(again, [0.5, -1.5])


def test_what_cannot_travel_is_refused_when_pickling():
    import sympy

    from symbp.gates import GATES

    symbp.gate("by_code", lambda a: a * sympy.exp(a))
    try:
        with pytest.raises(symbp.SymbpError, match=r"custom gate 'by_code'.*Python callable"):
            pickle.dumps(symbp.compile("by_code(x) + y", jit=False))
    finally:
        GATES.pop("by_code", None)  # the table-driven tests of other modules test every gate
    x, y = sympy.symbols("x y", real=True)
    with pytest.raises(symbp.SymbpError, match="SymPy expression whose text"):
        pickle.dumps(symbp.compile(sympy.sqrt(y) / 3 + x, jit=False))
    simple = symbp.compile(x * y + sympy.exp(x), jit=False)  # its text gives the same code
    assert pickle.loads(pickle.dumps(simple)).source == simple.source


def test_a_damaged_or_foreign_payload_is_refused(f):
    from symbp.function import _rebuild

    with pytest.raises(symbp.SymbpError, match=r"not a pickled symbp\.Function"):
        _rebuild({"format": "something else"})
    data = f.__reduce__()[1][0]
    with pytest.raises(symbp.SymbpError, match="generates different code"):
        _rebuild({**data, "source": "0" * 32})
    with pytest.raises(symbp.ParseError):  # the expression goes through the safe parser
        _rebuild({**data, "expr": "__import__('os').system('true')", "source": "0" * 32})


def test_workers_with_empty_caches_compile_the_function(client, f):
    x = np.linspace(-2.0, 2.0, 11)
    y = np.linspace(1.0, -1.0, 11)
    want_value, want_grads = f.value_and_grad(x=x, y=y)
    seen = set()
    for address in client.scheduler_info()["workers"]:
        folder, module, written, value, grads = client.submit(
            _worker_view, f, x, y, workers=[address], pure=False).result()
        assert written and Path(folder) in module.parents  # compiled into its own cache
        assert Path(f.path) != module
        seen.add(folder)
        np.testing.assert_array_equal(value, want_value)
        for name in f.wrt:
            np.testing.assert_array_equal(grads[name], want_grads[name])
    assert seen == set(client.folders)


def test_value_and_grad_over_dask_arrays(client, f):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = rng.normal(size=(600, 3))
    dx = da.from_array(x, chunks=(250, 3))
    dy = da.from_array(y, chunks=(200, 3))  # other blocks: aligned by Dask
    value, grads = f.value_and_grad(x=dx, y=dy)
    assert isinstance(value, da.Array) and set(grads) == {"x", "y"}
    value, grads = dask.compute(value, grads)  # on the cluster
    want_value, want_grads = f.value_and_grad(x=x, y=y)
    np.testing.assert_array_equal(value, want_value)
    for name in f.wrt:
        np.testing.assert_array_equal(grads[name], want_grads[name])
    for k in (0, 777, 1799):  # against float64 central differences
        point = [x.flat[k], y.flat[k]]
        numeric = numeric_gradient(f, point)
        np.testing.assert_allclose([grads["x"].flat[k], grads["y"].flat[k]], numeric,
                                   rtol=1e-5, atol=1e-7)
    assert np.allclose(f(dx, 0.5).compute(), f(x, 0.5))  # a number broadcasts
    single = f.grad(x=dx.astype(np.float32), y=dy.astype(np.float32))
    assert single["x"].dtype == np.float32 == single["x"].compute().dtype


def test_dask_arguments_are_checked(f):
    with pytest.raises(symbp.CallError, match="out= takes NumPy arrays"):
        f.value_and_grad(x=da.ones(3), y=da.ones(3), out=(np.empty(3), {}))
    with pytest.raises(symbp.CallError, match="real numbers"):
        f.value_and_grad(x=da.from_array(np.array(["a", "b"])), y=1.0)
    with pytest.raises(symbp.CallError, match="do not share one shape"):
        f.value_and_grad(x=da.ones(3), y=da.ones(4))
    g = symbp.compile("sum(w * w)", shapes={"w": ("N",)}, jit=False)
    with pytest.raises(symbp.CallError, match="function of scalars"):
        g.value_and_grad(w=da.ones(3))


def test_grid_search_under_joblib_dask(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    from symbp.nn import MLPClassifier

    grid = {"alpha": [1e-4, 1e-2], "learning_rate_init": [0.1, 0.3, 0.5]}  # 3x2
    here = GridSearchCV(MLPClassifier(**XOR, max_iter=5), grid, cv=2)
    there = GridSearchCV(MLPClassifier(**XOR, max_iter=5), grid, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the 5-epoch fits
        here.fit(XOR_X, XOR_Y)
        with joblib.parallel_backend("dask"):
            there.fit(XOR_X, XOR_Y)
    np.testing.assert_array_equal(there.cv_results_["mean_test_score"],
                                  here.cv_results_["mean_test_score"])
    assert there.best_params_ == here.best_params_
    for a, b in zip(there.best_estimator_.coefs_, here.best_estimator_.coefs_):
        np.testing.assert_array_equal(a, b)


def test_incremental_and_parallel_post_fit(client):
    dask_ml = pytest.importorskip("dask_ml.wrappers", reason="dask-ml is not installed")
    from symbp.nn import MLPClassifier

    dX = da.from_array(XOR_X, chunks=(8, 2))
    dy = da.from_array(XOR_Y, chunks=8)
    incremental = dask_ml.Incremental(MLPClassifier(**XOR), shuffle_blocks=False)
    incremental.fit(dX, dy, classes=[0, 1])
    local = MLPClassifier(**XOR)
    for start in range(0, len(XOR_X), 8):  # the same blocks, in order
        local.partial_fit(XOR_X[start:start + 8], XOR_Y[start:start + 8], classes=[0, 1])
    for a, b in zip(incremental.estimator_.coefs_, local.coefs_):
        np.testing.assert_array_equal(a, b)
    blob = pickle.dumps(local)  # parameters and weights; the kernels compile on the worker
    assert len(blob) < 20_000 and b"Dispatcher" not in blob and b"numba" not in blob
    post = dask_ml.ParallelPostFit(local)
    predicted = post.predict(dX)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), local.predict(XOR_X))
    np.testing.assert_allclose(post.predict_proba(dX).compute(), local.predict_proba(XOR_X))


def _threads_on_worker():
    from symbp.blocks import in_dask_worker
    from symbp.nn import threads

    return (threads.in_parallel_worker(), threads.should_limit(4096, (512, 512, 10)),
            in_dask_worker())


def test_a_worker_limits_blas_and_numba_threads(client):
    from symbp.blocks import in_dask_worker

    assert not in_dask_worker()  # here: NumPy points may run the parallel loop
    for address in client.scheduler_info()["workers"]:
        inside, reason, worker = client.submit(_threads_on_worker, workers=[address],
                                               pure=False).result()
        assert inside and reason == "parallel worker" and worker
