"""Before/after: MLP training throughput of two symbp source trees, side by side in one run.

Usage: ``python tools/epoch_ab.py BEFORE AFTER [--rounds 2] [--repeat 7] [--epochs 40]
[--activations logistic,tanh] [--dtypes float32,float64]``, BEFORE and AFTER folders holding a
``symbp`` package (a checkout, ``git archive`` of a commit, a worktree).

What is measured: digits (scikit-learn's ``load_digits``, ``X / 16``, the stratified 80/20 split
of ``symbp.bench_train``), ``MLPClassifier(hidden_layer_sizes=(64,), solver="sgd",
batch_size=64, learning_rate_init=0.2, momentum=0, alpha=0, tol=0)``: the "small" 64-64-10 size
of ``symbp bench --train``, with the activation and dtype chosen. One measurement is a fresh
process for one tree and one (activation, dtype): a one-epoch fit (compilation, excluded), then
``--repeat`` fits of ``--epochs`` epochs, the best kept, as samples/s of training (``epochs *
n_train / seconds`` of ``fit``). Each (activation, dtype) is measured ``--rounds`` times per
tree, the trees alternating (before first in odd rounds, after first in even ones). Each tree
gets its own Numba cache folder (a temporary one, removed at the end).

``--same-process`` (AFTER only; for the row split of gates exact in their tails): one process
compiles two networks per (activation, dtype) from AFTER's code: its own, and the same with
every split loop printed unsplit in the fast form (``(1 - h1[i, j]**2) * dh1[i, j]``: the code
BEFORE generated, which is checked, comments and imports aside, against BEFORE's own network
source), then
alternates fits of the two ``--repeat`` times, best of each: on a shared, noisy machine the two
then see the same load, which separate processes do not. With ``--kernel`` it times, the same
way, the networks' ``value_and_grad_into`` on one batch of 64 digits-sized rows (forward and
backward, no optimizer), ``--repeat`` alternating blocks of 200 calls, best of each.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

FIT = r"""
def make(n):
    return MLPClassifier(hidden_layer_sizes=(64,), activation=activation, solver="sgd",
                         batch_size=64, learning_rate_init=0.2, momentum=0.0,
                         nesterovs_momentum=False, alpha=0.0, max_iter=n, shuffle=True,
                         random_state=0, tol=0.0, n_iter_no_change=10**9, dtype=dtype)

def fit(n):
    clf = make(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        clf.fit(data.X_train, data.y_train)
        seconds = time.perf_counter() - start
    return n * len(data.y_train) / seconds, clf.score(data.X_test, data.y_test)
"""
"""The fit both scripts time: `make(n)` the network of `activation`/`dtype`, `fit(n)` its
samples/s over n epochs and test accuracy (`data`: the digits split)."""

SAME = r"""
import dataclasses, json, sys, time, warnings
from symbp import emit, jit
from symbp.bench_train import SPECS, make_data
from symbp.nn import MLPClassifier, compiled

activation, dtype, epochs, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
kernel = sys.argv[5] == "1"
data = make_data(SPECS["small"])

""" + FIT + r"""
fit(1)
key = next(k for k in compiled._NETWORKS if k[1] == activation)
after = compiled._NETWORKS[key]
split = emit._Arrays.loop

def unsplit(self, s):
    if not any(emit._tail_calls(a.value.xreplace(self.texts(a))) for a in s.body):
        return split(self, s)
    out = [(d, f"for {self.index[d]} in range({self.extent.get(e, e)}):", "")
           for d, e in enumerate(s.shape)]
    return out + [(len(s.shape), *self.body_line(a, fast=True)) for a in s.body]

emit._Arrays.loop = unsplit
recall, remember = jit.recall, jit.remember
jit.recall, jit.remember = (lambda key: None), (lambda *a, **k: None)  # no stored source
compiled._NETWORKS.clear()
fit(1)
before = compiled._NETWORKS[key]
emit._Arrays.loop, jit.recall, jit.remember = split, recall, remember
sources = {"before": before.source, "after": after.source}
best = {"before": 0.0, "after": 0.0}
if kernel:
    import numba
    import numpy as np
    rng = np.random.RandomState(0)
    dt = np.dtype(dtype)
    X = rng.rand(64, 64).astype(dt)
    params = [(rng.randn(64, 64) * 0.2).astype(dt), np.zeros(64, dt),
              (rng.randn(64, 10) * 0.2).astype(dt), np.zeros(10, dt)]
    inputs = (X, *params, rng.randint(0, 10, 64), np.full(64, 1 / 64, dt))
    calls = {}
    for name, src in sources.items():
        mod = jit.load(src)
        into = numba.njit(error_model="numpy")(mod.value_and_grad_into)
        args = inputs + tuple(mod.value_and_grad_buffers(*inputs))
        into(*args)
        calls[name] = (into, args)
    for r in range(repeat):
        for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
            into, args = calls[name]
            start = time.perf_counter()
            for _ in range(200):
                into(*args)
            best[name] = max(best[name], 200 * 64 / (time.perf_counter() - start))
    repeat = 0
for r in range(repeat):
    for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
        compiled._NETWORKS[key] = dataclasses.replace(after, source=sources[name])
        if r == 0:
            fit(1)
        best[name] = max(best[name], fit(epochs)[0])
print(json.dumps({"best": best, "before_source": before.source}))
"""

CHILD = r"""
import json, sys, time, warnings
import numpy as np
from symbp.bench_train import SPECS, make_data
from symbp.nn import MLPClassifier

activation, dtype, epochs, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = make_data(SPECS["small"])

""" + FIT + r"""
fit(1)
rates = [fit(epochs) for _ in range(repeat)]
print(json.dumps({"best": max(r for r, _ in rates), "accuracy": rates[-1][1]}))
"""


def measure(tree: str, cache: str, activation: str, dtype: str, epochs: int,
            repeat: int) -> dict:
    env = dict(os.environ, PYTHONPATH=tree, SYMBP_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", CHILD, activation, dtype, str(epochs),
                          str(repeat)], env=env, capture_output=True, text=True, check=True,
                         cwd=cache)  # not a folder holding a symbp package: -c imports from it
    return json.loads(out.stdout.strip().splitlines()[-1])


def _code(source: str) -> list[str]:
    """A generated module's code lines: comments, the version line and the runtime import
    (AFTER's unsplit variant still imports the helpers it no longer calls) left out."""
    return [line.split("  #")[0].rstrip() for line in source.splitlines()
            if line.strip() and not line.startswith(("#", "from symbp.runtime import"))]


def same_process(args, configs) -> int:
    before_tree, after_tree = os.path.abspath(args.before), os.path.abspath(args.after)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in configs:
            env = dict(os.environ, PYTHONPATH=after_tree, SYMBP_CACHE_DIR=tmp)
            kernel = "1" if args.kernel else "0"
            out = subprocess.run([sys.executable, "-c", SAME, *c, str(args.epochs),
                                  str(args.repeat), kernel], env=env, capture_output=True,
                                 text=True, check=True, cwd=tmp)  # -c imports from its folder
            got = json.loads(out.stdout.strip().splitlines()[-1])
            own = os.path.join(tmp, f"before-{c[0]}-{c[1]}")  # a record of AFTER's source
            os.mkdir(own, 0o700)  # in AFTER's folder would be recalled by BEFORE (same version)
            env = dict(os.environ, PYTHONPATH=before_tree, SYMBP_CACHE_DIR=own)
            act = {"logistic": "logistic", "tanh": "tanh"}[c[0]]
            old = subprocess.run([sys.executable, "-c", "import sys; from symbp.nn.compiled "
                                  f"import network; print(network(1, {act!r}, "
                                  "'softmax_cross_entropy', False).source)"], env=env,
                                 capture_output=True, text=True, check=True, cwd=tmp).stdout
            same = _code(old) == _code(got["before_source"])
            if not same:
                import difflib
                print("\n".join(list(difflib.unified_diff(_code(old), _code(got["before_source"]),
                                                        lineterm=""))[:20]), file=sys.stderr)
            rows.append((c, got["best"], same))
            print(f"{c[0]} {c[1]}: before {got['best']['before'] / 1e6:.3f}, after "
                  f"{got['best']['after'] / 1e6:.3f} M samples/s; before's code is BEFORE's: "
                  f"{same}", file=sys.stderr, flush=True)
    unit = "samples/s through value_and_grad_into" if args.kernel else "samples/s of fit"
    print(f"| activation | dtype | before (M {unit}) | after | after / before | before = "
          "BEFORE's code |")
    print("|---|---|---|---|---|---|")
    for c, best, same in rows:
        print(f"| {c[0]} | {c[1]} | {best['before'] / 1e6:.3f} | {best['after'] / 1e6:.3f} | "
              f"{best['after'] / best['before']:.3f} | {'yes' if same else 'NO'} |")
    return 0 if all(same for _, _, same in rows) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--activations", default="logistic,tanh")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--same-process", action="store_true",
                        help="both networks in one process from AFTER's code, fits alternating")
    parser.add_argument("--kernel", action="store_true",
                        help="with --same-process: time one batch's value_and_grad_into")
    args = parser.parse_args(argv)
    configs = [(a, d) for a in args.activations.split(",") for d in args.dtypes.split(",")]
    if args.same_process:
        return same_process(args, configs)
    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    results = {(c, t): [] for c in configs for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {}
        for t in trees:
            caches[t] = os.path.join(tmp, t)
            os.mkdir(caches[t], 0o700)
        for r in range(args.rounds):
            for c in configs:
                for t in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                    got = measure(trees[t], caches[t], *c, args.epochs, args.repeat)
                    results[c, t].append(got)
                    print(f"round {r + 1} {c[0]} {c[1]} {t}: {got['best'] / 1e6:.3f} M samples/s"
                          f", accuracy {got['accuracy']:.4f}", file=sys.stderr, flush=True)
    print("| activation | dtype | before (M samples/s, each round) | after | after / before "
          "(best) |")
    print("|---|---|---|---|---|")
    for c in configs:
        before = [x["best"] / 1e6 for x in results[c, "before"]]
        after = [x["best"] / 1e6 for x in results[c, "after"]]
        print(f"| {c[0]} | {c[1]} | {' / '.join(f'{v:.3f}' for v in before)} | "
              f"{' / '.join(f'{v:.3f}' for v in after)} | {max(after) / max(before):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
