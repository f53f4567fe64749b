"""``symbp bench --dask``: the figures of docs/scaling.md (issue 14).

1. A 3x2 grid search (``hidden_layer_sizes`` (16,), (32,), (64,) x ``alpha`` 1e-4, 1e-3, cv=3:
   18 fits of ``MLPClassifier(max_iter=50)`` on digits) with ``n_jobs=1`` here, then under
   ``joblib.parallel_backend("dask")`` on a LocalCluster of 2 worker processes x 1 thread. The
   cluster runs twice: the first includes the workers' imports and loading the compiled
   kernels from the (shared, warm) cache; the second is the steady state.
2. value and gradient of the CS231n example at 10^7 points: NumPy arrays in this process (the
   parallel points loop), a Dask array with the threaded scheduler, and on the 2-worker cluster
   (the arrays persisted on the workers first; results reduced there, so no transfer is timed).
3. The pickled sizes of a Function and of the fitted estimator, and the unpickle + first
   predict time in a fresh process whose cache is warm and which has imported symbp.nn (as a
   worker that ran a task before has; importing NumPy, Numba, scikit-learn and symbp.nn takes
   about 1.5 s more on a cold process).

Needs ``symbp[dask]`` (and scikit-learn for digits).
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence

EXPR = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"
GRID = {"hidden_layer_sizes": [(16,), (32,), (64,)], "alpha": [1e-4, 1e-3]}


def _search():
    from sklearn.model_selection import GridSearchCV

    from .nn import MLPClassifier

    return GridSearchCV(MLPClassifier(max_iter=50, random_state=0), GRID, cv=3)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def grid_rows(client, X, y) -> list[list[str]]:
    import joblib

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of 50-epoch fits
        here = _search()
        rows.append(["n_jobs=1, this process", f"{_timed(lambda: here.fit(X, y)):.2f}"])
        for run in ("first", "second"):
            there = _search()
            with joblib.parallel_backend("dask"):
                seconds = _timed(lambda s=there: s.fit(X, y))
            rows.append([f"dask, 2 workers x 1 thread ({run} run)", f"{seconds:.2f}"])
    same = (there.cv_results_["mean_test_score"] == here.cv_results_["mean_test_score"]).all()
    rows.append(["same cv scores", str(bool(same))])
    return rows


def points_rows(client, n: int, chunk: int) -> list[list[str]]:
    import dask
    import dask.array as da
    import numpy as np

    from . import compile

    f = compile(EXPR)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=n), rng.normal(size=n)
    out = (np.empty(n), {"x": np.empty(n), "y": np.empty(n)})
    f.value_and_grad(x=x, y=y, out=out)  # compiled
    numpy_s = min(_timed(lambda: f.value_and_grad(x=x, y=y, out=out)) for _ in range(3))
    want = out[0].sum()

    def over(dx, dy, **compute):
        v, g = f.value_and_grad(x=dx, y=dy)
        return dask.compute(v.sum(), g["x"].sum(), g["y"].sum(), **compute)

    dx, dy = da.from_array(x, chunks=chunk), da.from_array(y, chunks=chunk)
    over(dx, dy, scheduler="threads")
    threads_s = min(_timed(lambda: over(dx, dy, scheduler="threads")) for _ in range(3))
    with warnings.catch_warnings():  # the arrays travel once, here (not timed)
        warnings.simplefilter("ignore", UserWarning)
        cx, cy = client.persist([dx, dy])
    got = over(cx, cy)[0]
    cluster_s = min(_timed(lambda: over(cx, cy)) for _ in range(3))
    rows = [["NumPy arrays, this process (parallel loop)", f"{numpy_s:.3f}",
             f"{n / numpy_s / 1e6:.0f}"],
            [f"Dask array, threaded scheduler, chunks of {chunk:,}", f"{threads_s:.3f}",
             f"{n / threads_s / 1e6:.0f}"],
            ["Dask array on 2 workers x 1 thread (persisted)", f"{cluster_s:.3f}",
             f"{n / cluster_s / 1e6:.0f}"]]
    rows.append(["same sum of values", str(bool(np.isclose(got, want, rtol=1e-12))), ""])
    return rows


_FRESH = """
import pickle, sys, time
import numpy, sklearn.base, symbp.nn, symbp.function  # what a worker has imported already
start = time.perf_counter()
model = pickle.loads(sys.stdin.buffer.read())
loaded = time.perf_counter()
model.predict({X!r})
print(loaded - start, time.perf_counter() - loaded)
"""


def payload_rows(X, y) -> list[list[str]]:
    from . import compile
    from .nn import MLPClassifier

    f = compile(EXPR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=50, random_state=0).fit(X, y)
    blob = pickle.dumps(clf)
    rows = [["symbp.Function (CS231n example)", f"{len(pickle.dumps(f)):,}", ""],
            ["fitted MLPClassifier 64-64-10", f"{len(blob):,}", ""]]
    code = _FRESH.format(X=X[:5].tolist())
    for run in ("fresh process, imports done, warm cache", "again"):
        done = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                              check=True, env=dict(os.environ))
        load_s, predict_s = map(float, done.stdout.split())
        rows.append([f"unpickle + first predict ({run})", "",
                     f"{load_s:.2f} + {predict_s:.2f} s"])
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``symbp bench --dask``: print the tables of docs/scaling.md (see the module)."""
    parser = argparse.ArgumentParser(prog="symbp bench --dask",
                                     description="symbp on Dask: a grid search on 2 workers "
                                     "against n_jobs=1, 10^7 points over Dask arrays against "
                                     "NumPy, pickled sizes.")
    parser.add_argument("--points", type=int, default=10_000_000,
                        help="points of the gradient benchmark (default 10^7)")
    parser.add_argument("--chunk", type=int, default=1_000_000,
                        help="points per Dask block (default 10^6)")
    args = parser.parse_args(argv)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("symbp bench --dask needs Dask: pip install 'symbp[dask]'", file=sys.stderr)
        return 2
    from .datasets import digits

    data = digits()
    X, y = data.X, data.y
    print(f"{os.cpu_count()} cores\n")
    print("## Pickled sizes and unpickling\n")
    print(_table(["what", "bytes", "time"], payload_rows(X, y)))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        print("\n## 3x2 grid search, cv=3 (18 fits of MLPClassifier(max_iter=50), digits)\n")
        print(_table(["run", "seconds"], grid_rows(client, X, y)))
        print(f"\n## Value and gradient at {args.points:,} points (float64)\n")
        print(_table(["variant", "best s", "M points/s"],
                     points_rows(client, args.points, args.chunk)))
    return 0
