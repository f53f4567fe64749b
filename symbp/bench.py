"""Benchmark: the compiled CS231n gradient against the same staged code written by hand.

Run as ``python -m symbp.bench`` or ``symbp bench`` (``--quick`` for a short run). In one
process it times, per call of ``(x, y) = (3.0, -4.0)`` returning ``(value, dx, dy)``:

(a) ``f.kernel`` of ``symbp.compile("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)")``;
(b) ``f.kernel`` of the notes' 8 staged lines compiled by symbp;
(c) the notes' staged forward and backward pass written by hand under ``numba.njit``;
(d) the same hand-written code as pure Python.

Repeats are interleaved (each round times every variant, alternating the order between rounds)
and min and median ns per call are reported, with ratios to (c). Every variant's numbers are
checked against the worked example. Cold and warm compile times of ``symbp.compile`` are taken
from two fresh subprocesses sharing one new, empty ``SYMBP_CACHE_DIR``. The output is markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable, Sequence

import numpy as np

from .bench_startup import child_environment, run_child  # noqa: F401 (shared)

EXPR = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"
STAGED = """\
sigy = 1.0 / (1 + math.exp(-y))
num = x + sigy
sigx = 1.0 / (1 + math.exp(-x))
xpy = x + y
xpysqr = xpy**2
den = sigx + xpysqr
invden = 1.0 / den
f = num * invden
"""
POINT = (3.0, -4.0)
# Worked example 3: f, df/dx, df/dy at (x, y) = (3, -4), given to 12 significant digits.
EXPECTED = (1.54564488411, 2.05956979557, 1.59223275148)
EXPECTED_RTOL = 1e-10
AGREE_RTOL = 1e-12  # between variants: the same float64 operations up to libm differences


def cs231n_by_hand(x: float, y: float) -> tuple[float, float, float]:
    """The notes' staged forward and backward pass, returning ``(f, dx, dy)``."""
    # forward pass
    sigy = 1.0 / (1 + math.exp(-y))  # (1)
    num = x + sigy  # (2)
    sigx = 1.0 / (1 + math.exp(-x))  # (3)
    xpy = x + y  # (4)
    xpysqr = xpy**2  # (5)
    den = sigx + xpysqr  # (6)
    invden = 1.0 / den  # (7)
    f = num * invden  # (8)
    # backward pass
    dnum = invden  # (8)
    dinvden = num  # (8)
    dden = (-1.0 / (den**2)) * dinvden  # (7)
    dsigx = (1) * dden  # (6)
    dxpysqr = (1) * dden  # (6)
    dxpy = (2 * xpy) * dxpysqr  # (5)
    dx = (1) * dxpy  # (4)
    dy = (1) * dxpy  # (4)
    dx += ((1 - sigx) * sigx) * dsigx  # (3)
    dx += (1) * dnum  # (2)
    dsigy = (1) * dnum  # (2)
    dy += ((1 - sigy) * sigy) * dsigy  # (1)
    return f, dx, dy


_COMPILE_SCRIPT = """\
import json, sys, time
t0 = time.perf_counter()
import symbp
t1 = time.perf_counter()
f = symbp.compile(sys.argv[1], inputs=("x", "y"))
t2 = time.perf_counter()
out = f.kernel(3.0, -4.0)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "compile": t2 - t1, "first_call": t3 - t2,
                  "compile_time": f.compile_time, "out": list(out)}))
"""


def _variants() -> list[tuple[str, Callable[..., tuple]]]:
    """Build the four timed callables, in table order; the hand Numba one is third."""
    import numba

    import symbp

    single = symbp.compile(EXPR, inputs=("x", "y"), wrt=("x", "y"))
    staged = symbp.compile(STAGED, inputs=("x", "y"), wrt=("x", "y"))
    hand_nb = numba.njit(cs231n_by_hand)
    return [
        ("(a) symbp `f.kernel`, single expression", single.kernel),
        ("(b) symbp `f.kernel`, 8 staged lines", staged.kernel),
        ("(c) hand-written, `@numba.njit`", hand_nb),
        ("(d) hand-written, pure Python", cs231n_by_hand),
    ]


def _check(results: dict[str, tuple]) -> list[str]:
    """Return a list of problems: outputs off the worked example or disagreeing."""
    problems = []
    reference = None
    for name, out in results.items():
        out = tuple(float(v) for v in out)
        if len(out) != 3:
            problems.append(f"{name}: returned {len(out)} values, expected 3")
            continue
        for label, got, want in zip(("f", "dx", "dy"), out, EXPECTED, strict=True):
            if not math.isclose(got, want, rel_tol=EXPECTED_RTOL):
                problems.append(f"{name}: {label} = {got!r}, expected {want!r}")
        if reference is None:
            reference = out
        elif not all(math.isclose(a, b, rel_tol=AGREE_RTOL)
                     for a, b in zip(out, reference, strict=True)):
            problems.append(f"{name}: {out!r} disagrees with {reference!r}")
    return problems


def time_calls(variants: Sequence[tuple[str, Callable[..., tuple]]], rounds: int,
               calls: int) -> dict[str, list[float]]:
    """Time ``fn(3.0, -4.0)`` for each variant, interleaved over rounds.

    Parameters
    ----------
    variants : sequence of (str, callable)
        Names and callables taking ``(x, y)``.
    rounds : int
        Number of rounds; each times every variant once, the order alternating between rounds.
    calls : int
        Calls per variant per round.

    Returns
    -------
    dict of str to list of float
        ns per call of each round, by variant name.
    """
    timers = {name: timeit.Timer("fn(x, y)", setup=f"fn = _fn; x, y = {POINT!r}",
                                 globals={"_fn": fn}) for name, fn in variants}
    for timer in timers.values():  # warm up: JIT, caches, branch predictors
        timer.timeit(number=max(1, calls // 10))
    samples: dict[str, list[float]] = {name: [] for name, _ in variants}
    order = [name for name, _ in variants]
    for r in range(rounds):
        for name in order if r % 2 == 0 else reversed(order):
            samples[name].append(timers[name].timeit(number=calls) / calls * 1e9)
    return samples


def _inner_loop(kernel) -> Callable[[int], float]:
    """An njit loop calling ``kernel`` n times at moving points: its compute cost, no boxing."""
    import numba

    @numba.njit
    def loop(n):
        total = 0.0
        for i in range(n):
            value, dx, dy = kernel(3.0 + i * 1e-9, -4.0 - i * 1e-9)
            total += value + dx + dy
        return total

    return loop


def time_inside_njit(variants: Sequence[tuple[str, Callable[..., tuple]]], rounds: int,
                     calls: int) -> dict[str, list[float]]:
    """ns per call when each Numba kernel is called from a compiled loop (interleaved rounds)."""
    loops = {name: _inner_loop(fn) for name, fn in variants}
    for loop in loops.values():
        loop(10)  # compile
    samples: dict[str, list[float]] = {name: [] for name in loops}
    order = list(loops)
    for r in range(rounds):
        for name in order if r % 2 == 0 else reversed(order):
            start = timeit.default_timer()
            loops[name](calls)
            samples[name].append((timeit.default_timer() - start) / calls * 1e9)
    return samples


def compile_times(expr: str) -> tuple[dict, dict]:
    """Cold and warm ``symbp.compile`` of ``expr``, each in a fresh subprocess.

    Both subprocesses share one new, empty ``SYMBP_CACHE_DIR``, so the first compiles
    everything and the second finds the first's cache.

    Returns
    -------
    (dict, dict)
        For the cold and the warm run: seconds for ``import``, ``compile`` (wall),
        ``first_call`` and ``compile_time`` (as reported by the Function), and ``out``.
    """
    runs = []
    with tempfile.TemporaryDirectory(prefix="symbp-bench-") as cache:
        for _ in range(2):
            proc = run_child(_COMPILE_SCRIPT, [expr], cache)
            if proc.returncode != 0:
                raise RuntimeError(f"compile subprocess failed:\n{proc.stderr}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return runs[0], runs[1]


def numpy_staged(x, y):
    """The notes' staged code on whole arrays with NumPy (the vectorized peer)."""
    sigy = 1.0 / (1 + np.exp(-y))
    num = x + sigy
    sigx = 1.0 / (1 + np.exp(-x))
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden
    dnum = invden
    dinvden = num
    dden = (-1.0 / (den**2)) * dinvden
    dxpy = (2 * xpy) * dden
    dx = dxpy + ((1 - sigx) * sigx) * dden + dnum
    dy = dxpy + ((1 - sigy) * sigy) * dnum
    return f, dx, dy


def points_benchmark(n: int, rounds: int) -> list[list[str]]:
    """Value and gradient at n points: symbp's points loops against hand-written loops."""
    import numba

    import symbp

    hand = numba.njit(cs231n_by_hand)

    @numba.njit(parallel=True)
    def hand_parallel(x, y, f, dx, dy):
        for i in numba.prange(x.shape[0]):
            f[i], dx[i], dy[i] = hand(x[i], y[i])

    @numba.njit
    def hand_serial(x, y, f, dx, dy):
        for i in range(x.shape[0]):
            f[i], dx[i], dy[i] = hand(x[i], y[i])

    f = symbp.compile(EXPR, inputs=("x", "y"))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=n), rng.normal(size=n)
    out = [np.empty(n) for _ in range(3)]
    variants = {
        "symbp `f.value_and_grad(x=, y=, out=)` (parallel above 20k points)":
            lambda: f.value_and_grad(x=x, y=y, out=(out[0], {"x": out[1], "y": out[2]})),
        "symbp points kernel, serial": lambda: f._points_kernel(False)(x, y, *out),
        "symbp points kernel, `prange`": lambda: f._points_kernel(True)(x, y, *out),
        "hand-written `@njit` loop, serial": lambda: hand_serial(x, y, *out),
        "hand-written `@njit(parallel=True)` `prange` loop": lambda: hand_parallel(x, y, *out),
        "NumPy, vectorized staged code (allocates)": lambda: numpy_staged(x, y),
    }
    for run in variants.values():
        run()  # compile and warm
    times = {name: [] for name in variants}
    for r in range(rounds):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            start = timeit.default_timer()
            variants[name]()
            times[name].append(timeit.default_timer() - start)
    ref = min(times["hand-written `@njit(parallel=True)` `prange` loop"])
    return [[name, f"{n / min(t) / 1e6:.1f}", f"{n / statistics.median(t) / 1e6:.1f}",
             f"{ref / min(t):.2f}x"] for name, t in times.items()]


MLP_LOSS = "mean(softmax_cross_entropy(relu(relu(X @ W1 + b1) @ W2 + b2) @ W3 + b3, y))"


def mlp_numpy(X, y, W1, b1, W2, b2, W3, b3):
    """The same forward and backward pass written by hand with NumPy (allocating)."""
    z1 = X @ W1 + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W2 + b2
    h2 = np.maximum(z2, 0)
    z3 = h2 @ W3 + b3
    top = z3.max(axis=1, keepdims=True)
    e = np.exp(z3 - top)
    total = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = np.mean(np.log(total[:, 0]) + top[:, 0] - z3[rows, y])
    dz3 = e / total
    dz3[rows, y] -= 1
    dz3 /= len(y)
    dW3, db3 = h2.T @ dz3, dz3.sum(axis=0)
    dz2 = (dz3 @ W3.T) * (z2 > 0)
    dW2, db2 = h1.T @ dz2, dz2.sum(axis=0)
    dz1 = (dz2 @ W2.T) * (z1 > 0)
    dW1, db1 = X.T @ dz1, dz1.sum(axis=0)
    return loss, dW1, db1, dW2, db2, dW3, db3


def mlp_benchmark(batch: int, rounds: int, calls: int) -> tuple[list[list[str]], str]:
    """One forward+backward of the 784-256-128-10 loss, float32: symbp against NumPy."""
    import symbp

    sizes = (784, 256, 128, 10)
    shapes = {"X": ("B", 784), "y": symbp.ints(("B",))}
    for k in range(3):
        shapes[f"W{k + 1}"] = (sizes[k], sizes[k + 1])
        shapes[f"b{k + 1}"] = (sizes[k + 1],)
    f = symbp.compile(MLP_LOSS, shapes=shapes,
                      wrt=["W1", "b1", "W2", "b2", "W3", "b3"],
                      inputs=["X", "y", "W1", "b1", "W2", "b2", "W3", "b3"])
    rng = np.random.default_rng(0)
    values = {"X": rng.random((batch, 784), dtype=np.float32),
              "y": rng.integers(0, 10, batch)}
    for k in range(3):
        scale = np.sqrt(2.0 / sizes[k])
        values[f"W{k + 1}"] = (rng.normal(size=(sizes[k], sizes[k + 1])) * scale).astype(
            np.float32)
        values[f"b{k + 1}"] = np.zeros(sizes[k + 1], np.float32)
    args = [values[n] for n in f.inputs]
    # buffers for the no-allocation variant, shaped as the allocating wrapper would
    names = f.source.split("def value_and_grad_into(")[1].split(")")[0].split(", ")
    env = {"B": batch}
    buffers = []
    for name in names[len(args):]:
        line = next(line for line in f.source.splitlines()
                    if line.strip().startswith(f"{name} = np.empty("))
        dims = line.split("np.empty(")[1].split(", dtype")[0].strip("()").split(",")
        buffers.append(np.empty(tuple(env.get(d.strip(), None) or int(d) for d in dims
                                      if d.strip()), np.float32))
    into = f.kernel_into
    expected = mlp_numpy(*args)
    got = f.kernel(*args)
    into(*args, *buffers)
    agree = all(np.allclose(a, b, rtol=2e-3, atol=2e-5) for a, b in zip(got, expected))
    variants = {
        "symbp `f.kernel` (allocates its buffers each call)": lambda: f.kernel(*args),
        "symbp `f.kernel_into` (preallocated buffers)": lambda: into(*args, *buffers),
        "NumPy, hand-written (allocates)": lambda: mlp_numpy(*args),
    }
    times = {name: [] for name in variants}
    for r in range(rounds):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            start = timeit.default_timer()
            for _ in range(calls):
                variants[name]()
            times[name].append((timeit.default_timer() - start) / calls)
    ref = min(times["NumPy, hand-written (allocates)"])
    rows = [[name, f"{min(t) * 1e3:.3f}", f"{statistics.median(t) * 1e3:.3f}",
             f"{batch / min(t) / 1e3:.0f}", f"{ref / min(t):.2f}x"] for name, t in times.items()]
    note = "outputs agree with NumPy (float32, rtol 2e-3)" if agree else \
        "**outputs disagree with NumPy**"
    return rows, note


def matmul_crossover() -> list[list[str]]:
    """symbp's loop matmul against BLAS (np.dot with out=) at the sizes small MLPs use."""
    import numba

    from .runtime import BLAS, _matmul_loops

    if not BLAS:
        return [["(SciPy is not installed: every product runs as loops)", "", "", "", ""]]
    loops = numba.njit(lambda a, b, o: _matmul_loops(a, b, o, False, False, False))
    blas = numba.njit(lambda a, b, o: np.dot(a, b, o))
    rows = []
    for m, k, n in [(32, 2, 16), (32, 16, 16), (32, 16, 1), (64, 64, 10), (64, 64, 64),
                    (128, 128, 10), (128, 256, 128)]:
        rng = np.random.default_rng(0)
        a, b = rng.random((m, k), np.float32), rng.random((k, n), np.float32)
        out = np.empty((m, n), np.float32)
        best = {}
        for name, fn in (("loops", loops), ("blas", blas)):
            fn(a, b, out)
            reps = max(10, int(2e6 / (m * k * n)))
            timer = timeit.Timer(lambda fn=fn, a=a, b=b, out=out: fn(a, b, out))
            best[name] = min(timer.repeat(number=reps, repeat=5)) / reps
        rows.append([f"{m}x{k} @ {k}x{n}", str(m * k * n), f"{best['loops'] * 1e6:.2f}",
                     f"{best['blas'] * 1e6:.2f}",
                     "loops" if best["loops"] < best["blas"] else "BLAS"])
    return rows


def chain_source(n: int) -> str:
    """``n`` staged lines, each one gate: ``h_i = tanh(h_{i-1} * y + sigmoid(x - c))``."""
    lines = ["h0 = x"] + [f"h{i} = tanh(h{i - 1} * y + sigmoid(x - {i % 7 + 1}))"
                          for i in range(1, n + 1)]
    return "\n".join(lines)


def compile_scaling(lengths: Sequence[int]) -> list[list[str]]:
    """Cold compile time against source length (numba issues 318, 6504: superlinear growth)."""
    import symbp

    rows = []
    with tempfile.TemporaryDirectory(prefix="symbp-bench-") as cache:
        previous = os.environ.get("SYMBP_CACHE_DIR")
        os.environ["SYMBP_CACHE_DIR"] = cache
        try:
            symbp.compile("x * y + 1")  # Numba's own start-up, not counted below
            for n in lengths:
                f = symbp.compile(chain_source(n))
                t = f.timings
                rows.append([str(n), str(f.source.count("\n")),
                             f"{t['parse'] + t['derive'] + t['emit']:.2f}", f"{t['jit']:.2f}"])
        finally:
            if previous is None:
                del os.environ["SYMBP_CACHE_DIR"]
            else:
                os.environ["SYMBP_CACHE_DIR"] = previous
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Format a markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def lbfgs_benchmark(rounds: int = 3) -> list[list[str]]:
    """``solver="lbfgs"`` fits on scikit-learn's digits (pixels / 16, all 1797 samples, 64
    hidden relu units, ``max_iter=200``, seed 0): symbp in float64 and float32 and
    scikit-learn (float64), interleaved in ``rounds`` rounds, each fit timed whole (symbp's
    compile is done before the clock: a warm-up fit). Evaluations are counted by wrapping
    the function SciPy calls."""
    import time
    import warnings

    import scipy.optimize
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    from .nn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    common = dict(hidden_layer_sizes=(64,), solver="lbfgs", max_iter=200, random_state=0)
    makers = {"symbp float64": lambda: MLPClassifier(**common, dtype="float64"),
              "symbp float32": lambda: MLPClassifier(**common, dtype="float32"),
              "scikit-learn (float64)": lambda: SkMLP(**common)}
    minimize, counted = scipy.optimize.minimize, {}

    def counting(fun, *args, **kwargs):
        def wrapped(x, *a):
            counted["n"] += 1
            return fun(x, *a)
        return minimize(wrapped, *args, **kwargs)

    times = {name: [] for name in makers}
    facts = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for make in makers.values():  # warm-up: compiles (or loads) symbp's network
            make().set_params(max_iter=2).fit(X, y)
        scipy.optimize.minimize = counting
        try:
            for _ in range(rounds):
                for name, make in makers.items():
                    model, counted["n"] = make(), 0
                    started = time.perf_counter()
                    model.fit(X, y)
                    times[name].append(time.perf_counter() - started)
                    facts[name] = (model.n_iter_, counted["n"], model.loss_)
        finally:
            scipy.optimize.minimize = minimize
    rows = []
    for name, seconds in times.items():
        n_iter, evaluations, loss = facts[name]
        rows.append([name, f"{min(seconds):.3f}", f"{statistics.median(seconds):.3f}",
                     str(n_iter), str(evaluations),
                     f"{1000 * min(seconds) / evaluations:.2f}", f"{loss:.3g}"])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print markdown tables.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (``--rounds``, ``--calls``, ``--quick``); ``sys.argv[1:]``
        by default.

    Returns
    -------
    int
        0 if every variant gave the worked example's numbers, 1 otherwise.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--train" in argv:  # MLP training throughput against peers: its own options
        from . import bench_train

        return bench_train.main([a for a in argv if a != "--train"])
    if "--startup" in argv:  # time to first result against scikit-learn: its own options
        from . import bench_startup

        return bench_startup.main([a for a in argv if a != "--startup"])
    if "--lbfgs" in argv:  # the lbfgs solver against scikit-learn's
        rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
        print(_table(["fit (digits 64-64-10 relu, lbfgs, max_iter=200)", "best s",
                      "median s", "iterations", "evaluations", "ms per evaluation",
                      "final loss"], lbfgs_benchmark(rounds)))
        return 0
    if "--dask" in argv:  # docs/scaling.md: a grid search and 10^7 points on Dask
        from . import bench_dask

        return bench_dask.main([a for a in argv if a != "--dask"])
    if "--blas-threads" in argv:
        from . import bench_startup

        return bench_startup.threads_main([a for a in argv if a != "--blas-threads"])
    parser = argparse.ArgumentParser(
        prog="symbp bench",
        description="Time the symbp-compiled CS231n gradient against the same staged code "
        "written by hand (Numba and pure Python), and symbp's cold and warm compile times.")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--calls", type=int, default=200_000,
                        help="calls per variant per round (default 200000)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 3 rounds of 20000 calls")
    parser.add_argument("--scaling", action="store_true",
                        help="only measure cold compile time against staged source length")
    parser.add_argument("--arrays", action="store_true",
                        help="only the array benchmarks: 1M points, and the MLP loss")
    parser.add_argument("--train", action="store_true",
                        help="MLP training samples/s against NumPy, Numba, scikit-learn, "
                        "PyTorch and JAX (symbp bench --train --help for its options)")
    parser.add_argument("--startup", action="store_true",
                        help="start-up and compile time against scikit-learn, fresh processes "
                        "(symbp bench --startup --help for its options)")
    parser.add_argument("--lbfgs", action="store_true",
                        help="solver='lbfgs' fit time on digits against scikit-learn's "
                        "(--rounds N, default 3)")
    parser.add_argument("--dask", action="store_true",
                        help="a grid search on 2 Dask workers and 10^7 points over Dask arrays "
                        "(symbp bench --dask --help; needs symbp[dask])")
    parser.add_argument("--blas-threads", action="store_true",
                        help="cross_val_score with and without BLAS threads limited "
                        "(symbp bench --blas-threads --help)")
    args = parser.parse_args(argv)
    if args.arrays:
        rounds = 3 if args.quick else args.rounds
        print("## Value and gradient at 1,000,000 points (float64, outputs preallocated)\n")
        print(_table(["variant", "best M points/s", "median M points/s", "vs hand prange"],
                     points_benchmark(1_000_000, rounds)))
        print("\n## MLP loss 784-256-128-10, batch 128, float32: one forward+backward\n")
        rows, note = mlp_benchmark(128, rounds, 10 if args.quick else 50)
        print(_table(["variant", "best ms", "median ms", "k samples/s", "vs NumPy"], rows))
        print(f"\n{note}; {os.cpu_count()} CPUs, NumPy/BLAS threads as configured.")
        print("\n## Matrix products: loops or BLAS (float32, from Python, best of 5, µs)\n")
        print(_table(["product", "m*k*n", "loops (µs)", "BLAS (µs)", "faster"],
                     matmul_crossover()))
        return 0
    if args.scaling:
        print("## Cold compile time against length (`symbp bench --scaling`)\n")
        print(_table(["staged lines", "source lines", "parse+derive+emit (s)", "Numba (s)"],
                     compile_scaling((25, 100, 400))))
        return 0
    rounds, calls = (3, 20_000) if args.quick else (args.rounds, args.calls)
    if rounds < 1 or calls < 1:
        parser.error("--rounds and --calls must be at least 1")

    import numba

    print(f"# symbp bench: `{EXPR}` at (x, y) = {POINT}\n")
    print(f"Python {platform.python_version()}, Numba {numba.__version__}, "
          f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs; "
          f"{rounds} interleaved rounds x {calls} calls; `fn(x, y)` in a timeit loop.\n")

    variants = _variants()
    problems = _check({name: fn(*POINT) for name, fn in variants})
    samples = time_calls(variants, rounds, calls)

    ref_name = variants[2][0]
    ref_min, ref_med = min(samples[ref_name]), statistics.median(samples[ref_name])
    rows = []
    for name, _ in variants:
        lo, med = min(samples[name]), statistics.median(samples[name])
        rows.append([name, f"{lo:.0f}", f"{med:.0f}", f"{lo / ref_min:.2f}x",
                     f"{med / ref_med:.2f}x"])
    print(_table(["variant", "min ns/call", "median ns/call", "min / (c)", "median / (c)"],
                 rows))

    print("\n## Called from a compiled loop (no Python call overhead)\n")
    print(f"Each kernel called {calls * 10} times per round from an `@numba.njit` loop at "
          "moving points, summing the outputs; ns per call.\n")
    inside = time_inside_njit(variants[:3], rounds, calls * 10)
    ref_min = min(inside[ref_name])
    print(_table(["variant", "min ns/call", "median ns/call", "min / (c)"],
                 [[name, f"{min(v):.2f}", f"{statistics.median(v):.2f}",
                   f"{min(v) / ref_min:.2f}x"] for name, v in inside.items()]))

    print("\n## Compile time of `symbp.compile` (fresh processes, shared new cache dir)\n")
    rows = []
    for label, expr in (("single expression", EXPR), ("8 staged lines", STAGED)):
        cold, warm = compile_times(expr)
        problems += _check({f"{label}, cold subprocess": cold["out"],
                            f"{label}, warm subprocess": warm["out"]})
        for kind, run in (("cold", cold), ("warm", warm)):
            rows.append([label, kind, f"{run['compile_time']:.3f}", f"{run['compile']:.3f}",
                         f"{run['first_call'] * 1e3:.2f}", f"{run['import']:.3f}"])
    print(_table(["input", "cache", "f.compile_time (s)", "compile() wall (s)",
                  "first call (ms)", "import symbp (s)"], rows))

    print()
    if problems:
        print("**Check failed:**\n")
        print("\n".join(f"- {p}" for p in problems))
        return 1
    print(f"Check: every variant gives f = {EXPECTED[0]}, dx = {EXPECTED[1]}, "
          f"dy = {EXPECTED[2]} (rtol {EXPECTED_RTOL:g}; variants agree to {AGREE_RTOL:g}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
