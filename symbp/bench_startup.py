"""Start-up benchmark: time to first result against scikit-learn, in fresh processes (issue 11).

``symbp bench --startup`` times whole commands, each in a new Python process (wall time of the
process, interpreter start included), in one run:

- scikit-learn end to end: import, load digits, ``MLPClassifier`` fit, score, with the settings
  of ``symbp train --dataset digits --epochs 30`` (64 relu units, adam, batch 32, learning rate
  0.002, L2 1e-4, 30 epochs, stratified 80/20 split), run at the start, middle and end: the
  median is the reference of every ratio;
- ``symbp train --dataset digits --epochs 30`` with a new, empty ``SYMBP_CACHE_DIR`` (cold),
  again (warm), with ``--hidden 48`` (a new width), ``--hidden 64 64`` (a new depth) and
  ``--activation tanh`` (a new activation), all in that one cache; each run counts its Numba
  compilations (a ``numba:compile`` listener wraps the console script's ``main``);
- JAX's compile time of the same network's epoch under ``jit`` + ``lax.scan`` (first call minus
  the second), when JAX is installed;
- the Numba compilations of one cold ``MLPClassifier(...).fit``: how many, and their time;
- ``import symbp``, ``symbp --help``, and a cached scalar ``symbp.compile`` in a new process
  (best of ``--repeat`` runs), with the heavy libraries each one loaded.

``--write`` puts the table into docs/benchmarks.md (between this benchmark's markers).

``symbp bench --blas-threads`` times ``cross_val_score(MLPClassifier(...), digits, cv=5)`` of
symbp's and scikit-learn's estimator with joblib's loky and threading backends and in one
process, with BLAS threads as the machine sets them, with ``OPENBLAS_NUM_THREADS=1``, and (for
symbp) without symbp's own limit (``SYMBP_BLAS_THREADS=keep``; see :mod:`symbp.nn.threads`).

The child processes' environment and working folder come from :func:`child_environment` and
:func:`run_child`, which ``symbp bench`` shares.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MARK = "SYMBP-BENCH "
"""A child prints its figures as one JSON line after this mark (the last such line counts)."""

TRAIN = ["train", "--dataset", "digits", "--epochs", "30"]
"""The README's main job: ``symbp train --dataset digits --epochs 30``."""

BEGIN = "<!-- symbp bench --startup: begin (written by --write) -->"
END = "<!-- symbp bench --startup: end -->"
SECTION = "## Start-up and compile time (issue 11)"

# Settings of `symbp train --dataset digits --epochs 30` (symbp/cli.py's defaults), for the
# scikit-learn peer; symbp trains float32, scikit-learn float64.
SKLEARN_SCRIPT = f"""\
import json, time, warnings
t0 = time.perf_counter()
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
X, y = load_digits(return_X_y=True)
X = X / 16.0
X, X_test, y, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
t1 = time.perf_counter()
model = MLPClassifier(hidden_layer_sizes=(64,), activation="relu", solver="adam", alpha=1e-4,
                      batch_size=32, learning_rate_init=0.002, max_iter=30, tol=0.0,
                      n_iter_no_change=30, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model.fit(X, y)
t2 = time.perf_counter()
accuracy = model.score(X_test, y_test)
print({MARK!r} + json.dumps({{"import_data": t1 - t0, "fit": t2 - t1, "accuracy": accuracy}}))
"""

# Counts Numba compilations: every "numba:compile" event, and the time of the outermost ones
# (a compilation that types a callee compiles it inside its own event).
_LISTENER = """\
import json, sys, time
from numba.core import event

class Compiles(event.Listener):
    def __init__(self):
        self.open, self.count, self.seconds, self.names = [], 0, 0.0, {}

    def on_start(self, ev):
        self.open.append(time.perf_counter())

    def on_end(self, ev):
        took = time.perf_counter() - self.open.pop()
        self.count += 1
        if not self.open:
            self.seconds += took
        fn = getattr(ev.data.get("dispatcher"), "py_func", None)
        name = getattr(fn, "__qualname__", "?")
        self.names[name] = self.names.get(name, 0) + 1

    def figures(self):
        return {"compiles": self.count, "compile_seconds": self.seconds,
                "compiled": self.names}

compiles = Compiles()
"""

# The console script (`symbp = symbp.cli:main`) under the listener, called as the console
# script calls it: main() reads sys.argv, so it knows the process is this command alone (and
# keeps scikit-learn unloaded, as `symbp train` does).
CLI_COUNTED_SCRIPT = _LISTENER + f"""\
with event.install_listener("numba:compile", compiles):
    from symbp.cli import main
    code = main()
print({MARK!r} + json.dumps(dict(compiles.figures(), code=code)))
sys.exit(code)
"""

# The console script as it is (no listener: `symbp --help` must not import Numba).
CLI_SCRIPT = """\
import sys
from symbp.cli import main
sys.exit(main(sys.argv[1:]))
"""

FIT_SCRIPT = _LISTENER + f"""\
import warnings
from sklearn.datasets import load_digits
from symbp.nn import ConvergenceWarning, MLPClassifier
X, y = load_digits(return_X_y=True)
X = X / 16.0
model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, batch_size=32,
                      learning_rate_init=0.002, tol=0.0, n_iter_no_change=30, random_state=0,
                      dtype="float32")
with warnings.catch_warnings(), event.install_listener("numba:compile", compiles):
    warnings.simplefilter("ignore", ConvergenceWarning)
    t0 = time.perf_counter()
    model.fit(X, y)
    fit = time.perf_counter() - t0
import numba
try:
    layer = numba.threading_layer()
except ValueError:  # never started: no parallel=True code ran
    layer = None
print({MARK!r} + json.dumps(dict(compiles.figures(), fit=fit, threading_layer=layer)))
"""

JAX_SCRIPT = f"""\
import json, time
try:
    import jax
except ImportError:
    print({MARK!r} + json.dumps({{"missing": True}}))
    raise SystemExit(0)
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits
from symbp.bench_train import Spec, _jax_epoch, glorot_init, stratified_split
X, y = load_digits(return_X_y=True)
data = stratified_split(X / 16.0, y)
spec = Spec("digits", (64, 64, 10), "relu", 32, 0.002, 30, 30, 0.0, 0.0, "digits")
n = len(data.y_train)
epoch = _jax_epoch(spec, n)
params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in glorot_init(spec.layers, 0)]
Xj, yj = jnp.asarray(data.X_train), jnp.asarray(data.y_train.astype(np.int32))
key = jax.random.key(0)
times = []
for e in range(3):
    t0 = time.perf_counter()
    params, loss = epoch(params, Xj, yj, jax.random.fold_in(key, e))
    jax.block_until_ready((params, loss))
    times.append(time.perf_counter() - t0)
later = min(times[1:])
print({MARK!r} + json.dumps({{"first": times[0], "later": later, "compile": times[0] - later,
                              "version": jax.__version__}}))
"""

_HEAVY = ("sympy", "numba", "scipy", "sklearn", "tqdm", "matplotlib", "graphviz")
_LOADED = f"{{m: m in sys.modules for m in {_HEAVY!r}}}"

IMPORT_SCRIPT = f"""\
import json, sys, time
t0 = time.perf_counter()
import symbp
took = time.perf_counter() - t0
print({MARK!r} + json.dumps({{"import": took, "loaded": {_LOADED}}}))
"""

COMPILE_SCRIPT = f"""\
import json, sys, time
t0 = time.perf_counter()
import symbp
t1 = time.perf_counter()
f = symbp.compile(sys.argv[1])
out = f.kernel(3.0, -4.0)
t2 = time.perf_counter()
print({MARK!r} + json.dumps({{"import": t1 - t0, "compile": t2 - t1, "out": list(out),
                              "loaded": {_LOADED}}}))
"""
COMPILE_EXPR = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"  # symbp bench's EXPR


# -- child processes ---------------------------------------------------------------------------


def child_environment(cache: str, extra: dict[str, str | None] | None = None) -> dict:
    """The environment of a timing subprocess: a fresh ``SYMBP_CACHE_DIR`` and, first on
    ``PYTHONPATH``, the folder holding the symbp this process runs (not whatever ``symbp/``
    folder sits in the current directory); ``extra`` sets variables (``None`` removes one)."""
    env = dict(os.environ, SYMBP_CACHE_DIR=cache)
    env.pop("NUMBA_CACHE_DIR", None)  # (symbp ignores it) a cold run finds no other Numba cache
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in
                                                  env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_child(script: str, args: Sequence[str], cache: str,
              extra: dict[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """``python -c script args`` in ``cache`` (its cwd: ``python -c`` puts the current folder
    first on sys.path, and a ``symbp/`` folder where the user stands must not be imported),
    with :func:`child_environment`."""
    return subprocess.run([sys.executable, "-c", script, *args],
                          env=child_environment(cache, extra), cwd=cache, capture_output=True,
                          text=True, timeout=900, check=False)


def parse_child(stdout: str) -> dict:
    """The figures a child printed: the JSON after the last line starting with :data:`MARK`.

    Raises
    ------
    ValueError
        When no line carries the mark (the child failed before printing them).
    """
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise ValueError("the child printed no figures")


@dataclass
class Run:
    """One child process: its wall time, exit status, figures and output."""

    seconds: float
    code: int
    figures: dict = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""


def timed(script: str, args: Sequence[str], cache: str,
          extra: dict[str, str | None] | None = None, *, figures: bool = True) -> Run:
    """Run a child and time it, wall clock around the whole process.

    Raises
    ------
    RuntimeError
        When the child exits with an error or prints no figures (``figures=True``).
    """
    start = time.perf_counter()
    proc = run_child(script, args, cache, extra)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args) or script.splitlines()[0]!r} exited "
                           f"{proc.returncode}:\n{proc.stderr[-3000:]}")
    try:
        found = parse_child(proc.stdout) if figures else {}
    except ValueError:
        raise RuntimeError(f"child printed no figures:\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}") from None
    return Run(seconds, proc.returncode, found, proc.stdout, proc.stderr)


def _fresh_cache() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="symbp-startup-")  # mode 0700, as symbp asks


def best_of(repeat: int, run: Callable[[], Run]) -> Run:
    """The fastest of ``repeat`` runs."""
    return min((run() for _ in range(max(1, repeat))), key=lambda r: r.seconds)


# -- the measurements ---------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table; ``ratio`` to scikit-learn's end-to-end time is filled in later."""

    key: str
    label: str
    seconds: float | None
    target: str = ""
    met: bool | None = None
    compiles: str = ""
    note: str = ""


def measure(repeat: int, only: set[str] | None = None,
            log: Callable[[str], None] = lambda m: None) -> tuple[list[Row], dict]:
    """Run every measurement (or those in ``only``) and return the rows and the raw figures."""
    raw: dict = {}
    rows: list[Row] = []

    def want(key: str) -> bool:
        return only is None or key in only

    with _fresh_cache() as scratch:
        sklearn_runs = []
        log("scikit-learn end to end ...")
        sklearn_runs.append(timed(SKLEARN_SCRIPT, [], scratch))
        with _fresh_cache() as cache:
            warm = None
            for key, label, args in (
                    ("cold", "first run, empty cache", TRAIN),
                    ("warm", "second run, warm cache", TRAIN),
                    ("width", "another width (`--hidden 48`), warm cache",
                     TRAIN + ["--hidden", "48"]),
                    ("depth", "a new depth (`--hidden 64 64`), warm cache",
                     TRAIN + ["--hidden", "64", "64"]),
                    ("activation", "a new activation (`--activation tanh`), warm cache",
                     TRAIN + ["--activation", "tanh"])):
                if key not in ("cold", "warm") and not want(key):
                    continue
                log(f"symbp train: {label} ...")
                run = timed(CLI_COUNTED_SCRIPT, args, cache)
                raw[key] = dict(run.figures, seconds=run.seconds)
                if key == "warm":
                    warm = run.seconds
                rows.append(_train_row(key, label, run, warm))
        log("scikit-learn end to end, again ...")
        sklearn_runs.append(timed(SKLEARN_SCRIPT, [], scratch))
        if want("jax"):
            log("JAX compile ...")
            try:
                figures = timed(JAX_SCRIPT, [], scratch).figures
            except RuntimeError as exc:  # an optional peer: its failure is a note, not the end
                figures = {"failed": str(exc).splitlines()[-1]}
            raw["jax"] = figures
            rows.append(_jax_row(figures))
        if want("fit"):
            log("Numba compilations of a cold fit ...")
            with _fresh_cache() as cache:
                run = timed(FIT_SCRIPT, [], cache)
            raw["fit"] = dict(run.figures, seconds=run.seconds)
            rows.append(_fit_row(run.figures))
        if want("import"):
            log("import symbp ...")
            run = best_of(repeat, lambda: timed(IMPORT_SCRIPT, [], scratch))
            raw["import"] = dict(run.figures, seconds=run.seconds)
            sympy = run.figures["loaded"]["sympy"]
            rows.append(Row("import", "`import symbp` (new process)", run.seconds,
                            "no SymPy", not sympy, note=_loaded(run.figures["loaded"])))
        if want("help"):
            log("symbp --help ...")
            run = best_of(repeat, lambda: timed(CLI_SCRIPT, ["--help"], scratch,
                                                figures=False))
            raw["help"] = {"seconds": run.seconds}
            rows.append(Row("help", "`symbp --help`", run.seconds, "< 0.5 s",
                            run.seconds < 0.5))
        if want("compile"):
            log("cached symbp.compile ...")
            with _fresh_cache() as cache:
                timed(COMPILE_SCRIPT, [COMPILE_EXPR], cache)  # fills the cache
                run = best_of(repeat, lambda: timed(COMPILE_SCRIPT, [COMPILE_EXPR], cache))
            raw["compile"] = dict(run.figures, seconds=run.seconds)
            rows.append(Row("compile", "cached scalar `symbp.compile` (new process)",
                            run.seconds, "< 0.3 s", run.seconds < 0.3,
                            note=f"import {run.figures['import']:.2f} s + compile and call "
                            f"{run.figures['compile']:.2f} s; "
                            + _loaded(run.figures["loaded"])))
        log("scikit-learn end to end, a third time ...")
        sklearn_runs.append(timed(SKLEARN_SCRIPT, [], scratch))
    # The median of the first, middle and last run: symbp's rows are single runs too, so the
    # fastest of scikit-learn's would flatter it on a busy machine.
    middle = sorted(sklearn_runs, key=lambda r: r.seconds)[len(sklearn_runs) // 2]
    raw["sklearn"] = {"seconds": [r.seconds for r in sklearn_runs], **middle.figures}
    rows.insert(0, Row("sklearn", "scikit-learn `MLPClassifier` end to end (import, data, "
                       "fit, score)", middle.seconds, "reference",
                       note=f"median of {len(sklearn_runs)} runs (start, middle, end of the run: "
                       + ", ".join(f"{r.seconds:.2f}" for r in sklearn_runs)
                       + f" s); its fit {middle.figures['fit']:.2f} s, accuracy "
                       f"{middle.figures['accuracy']:.4f}"))
    return rows, raw


def _count(figures: dict) -> str:
    return f"{figures['compiles']} ({figures['compile_seconds']:.1f} s)"


def _train_row(key: str, label: str, run: Run, warm: float | None) -> Row:
    f = run.figures
    ratio_target = {"cold": "<= 2x", "warm": "<= 1x", "width": "<= 1x, no compiling"}
    row = Row(key, f"`symbp train`: {label}", run.seconds, ratio_target.get(key, ""),
              compiles=_count(f))
    if key in ("depth", "activation") and warm is not None:
        extra = run.seconds - warm
        row.target = "<= 3 s compiling"
        row.met = extra <= 3.0
        row.note = f"{extra:.1f} s over the warm run"
    elif key == "width":
        row.note = "no compilation" if f["compiles"] == 0 else "recompiles"
    return row


def _jax_row(figures: dict) -> Row:
    if figures.get("missing") or figures.get("failed"):
        return Row("jax", "JAX: compile of the same epoch (`jit` + `lax.scan`)", None,
                   note="not installed" if figures.get("missing")
                   else f"failed: {figures['failed']}")
    return Row("jax", "JAX: compile of the same epoch (`jit` + `lax.scan`)",
               figures["compile"], "(peer)",
               note=f"JAX {figures['version']}: first call {figures['first']:.2f} s minus a "
               f"later one {figures['later'] * 1e3:.1f} ms; plain SGD (symbp's runs: adam)")


def _fit_row(figures: dict) -> Row:
    top = sorted(figures["compiled"].items(), key=lambda kv: -kv[1])[:4]
    layer = figures.get("threading_layer")
    return Row("fit", "cold `MLPClassifier(...).fit` (digits, 64 relu, 30 epochs)",
               figures["fit"], "few compilations", compiles=_count(figures),
               note="most compiled: " + ", ".join(f"{n} x{c}" for n, c in top)
               + f"; Numba threading layer: {layer or 'never started'}")


def _loaded(loaded: dict) -> str:
    names = [m for m, yes in loaded.items() if yes]
    return "loads " + (", ".join(names) if names else "none of " + ", ".join(loaded))


def ratios(rows: Sequence[Row]) -> dict[str, float | None]:
    """Each row's seconds over scikit-learn's end-to-end seconds (the ``sklearn`` row)."""
    ref = next((r.seconds for r in rows if r.key == "sklearn"), None)
    return {r.key: (r.seconds / ref if r.seconds is not None and ref else None) for r in rows}


def table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table, with ratios to scikit-learn and targets met or not.

    A ratio target (``<= 2x``) is judged here from the ratio; other rows carry ``met``.
    """
    ratio = ratios(rows)
    lines = ["| measurement | seconds | vs scikit-learn | target | met | Numba compilations "
             "(time) | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        met = r.met
        limit = _ratio_limit(r.target)
        if limit is not None and ratio[r.key] is not None:
            met = ratio[r.key] <= limit
            if "no compiling" in r.target and r.compiles and not r.compiles.startswith("0 "):
                met = False
        seconds = "—" if r.seconds is None else f"{r.seconds:.2f}"
        shown = "—" if ratio[r.key] is None else f"{ratio[r.key]:.2f}x"
        lines.append(f"| {r.label} | {seconds} | {shown} | {r.target or '—'} | "
                     f"{'' if met is None else ('yes' if met else '**no**')} | "
                     f"{r.compiles or '—'} | {r.note} |")
    return "\n".join(lines)


def _ratio_limit(target: str) -> float | None:
    """``"<= 2x"`` (optionally followed by more words) -> 2.0; other targets -> None."""
    if not target.startswith("<= ") or "x" not in target.split(",")[0]:
        return None
    try:
        return float(target[3:].split(",")[0].rstrip("x "))
    except ValueError:
        return None


def _snapshot() -> tuple[float, float, float] | None:
    """(wall, busy CPU seconds of the machine, CPU seconds of this process and its waited
    children), or None where ``/proc/stat`` is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    own = os.times()
    return (time.perf_counter(), (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"),
            own.user + own.system + own.children_user + own.children_system)


def other_load(start, end) -> float | None:
    """Share of all CPUs that other processes kept busy between two :func:`_snapshot`."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    others = (end[1] - start[1]) - (end[2] - start[2])
    return max(0.0, others / ((end[0] - start[0]) * (os.cpu_count() or 1)))


def header(seconds: float, load: float | None) -> str:
    """The line saying when, where and how long."""
    from importlib import metadata

    versions = []
    for dist in ("numpy", "numba", "scipy", "scikit-learn", "jax"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} not installed")
    busy = "" if load is None else f"; other processes kept {load:.0%} of the CPUs busy"
    return (f"Measured {datetime.date.today().isoformat()} by `symbp bench --startup` "
            f"({seconds:.0f} s): Python {platform.python_version()}, " + ", ".join(versions)
            + f"; {os.cpu_count()} CPUs{busy}.")


def write_section(text: str, block: str) -> str:
    """``text`` (a markdown page) with the block between :data:`BEGIN` and :data:`END`
    replaced by ``block``; without the markers, a new section holding them is appended."""
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return f"{head}{BEGIN}\n{block.strip()}\n{END}{tail}"
    return (text.rstrip("\n") + f"\n\n{SECTION}\n\nCommand: `symbp bench --startup` "
            "(`--write` records it here).\n\n" + f"{BEGIN}\n{block.strip()}\n{END}\n")


DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
KEYS = ("width", "depth", "activation", "jax", "fit", "import", "help", "compile")


def main(argv: Sequence[str] | None = None) -> int:
    """``symbp bench --startup``: print the start-up table (``--write``: also record it).

    Returns
    -------
    int
        0 (the targets are reported, not enforced).
    """
    parser = argparse.ArgumentParser(
        prog="symbp bench --startup",
        description="Time to first result against scikit-learn, each command in a fresh "
        "process: symbp train cold and warm, new widths, depths and activations, JAX's "
        "compile, Numba compilations per fit, import, --help, a cached compile.")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each short measurement, the best kept (default 3)")
    parser.add_argument("--only", default=None,
                        help="comma-separated subset of " + ",".join(KEYS)
                        + " (the cold, warm and scikit-learn runs always run)")
    parser.add_argument("--write", action="store_true",
                        help=f"record the table in {DOCS.parent.name}/{DOCS.name}")
    args = parser.parse_args(argv)
    only = None if args.only is None else {k.strip() for k in args.only.split(",") if k}
    if only is not None and not only <= set(KEYS):
        parser.error(f"--only takes {', '.join(KEYS)}; got {', '.join(sorted(only - set(KEYS)))}")
    if args.write and only is not None:
        parser.error("--write records a whole run: drop --only")
    started, snap = time.perf_counter(), _snapshot()
    rows, _ = measure(args.repeat, only, log=lambda m: print(m, file=sys.stderr, flush=True))
    block = header(time.perf_counter() - started, other_load(snap, _snapshot())) + "\n\n" \
        + table(rows)
    print(block)
    if args.write:
        DOCS.write_text(write_section(DOCS.read_text(encoding="utf-8"), block),
                        encoding="utf-8")
        print(f"\nwrote {DOCS}", file=sys.stderr)
    return 0


# -- BLAS threads: symbp bench --blas-threads ---------------------------------------------------

CV_SCRIPT = f"""\
import json, sys, time, warnings
import joblib
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from threadpoolctl import threadpool_info
which, mode = sys.argv[1:3]
if which == "symbp":
    from symbp.nn import MLPClassifier
else:
    from sklearn.neural_network import MLPClassifier
X, y = load_digits(return_X_y=True)
X = X / 16.0
warnings.simplefilter("ignore")  # 30 epochs: ConvergenceWarning
model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, batch_size=32,
                      learning_rate_init=0.002, tol=0.0, n_iter_no_change=30, random_state=0,
                      dtype="float32")
model.fit(X[:64], y[:64])  # compiles (or loads) symbp's network and loads BLAS: not timed
t0 = time.perf_counter()
with joblib.parallel_backend("threading" if mode == "threading" else "loky"):
    scores = cross_val_score(model, X, y, cv=5, n_jobs=1 if mode == "serial" else 2)
took = time.perf_counter() - t0
pools = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
print({MARK!r} + json.dumps({{"seconds": took, "accuracy": float(scores.mean()),
                              "blas_threads": pools}}))
"""

MODES = {"loky": "loky, `n_jobs=2`", "threading": "threading, `n_jobs=2`",
         "serial": "`n_jobs=1`"}
ENVIRONMENTS = {
    "as set": {},
    "OPENBLAS_NUM_THREADS=1": {"OPENBLAS_NUM_THREADS": "1"},
    "SYMBP_BLAS_THREADS=keep": {"SYMBP_BLAS_THREADS": "keep"},  # symbp without its limit
}


def cv_runs(repeat: int, log: Callable[[str], None] = lambda m: None) -> dict:
    """Best seconds of ``cross_val_score`` per (estimator, environment, mode), interleaved:
    each round runs every combination once, in fresh processes sharing one warm cache."""
    combos = [(which, env, mode) for which in ("symbp", "sklearn") for env in ENVIRONMENTS
              for mode in MODES if not (which == "sklearn" and env.startswith("SYMBP"))]
    best: dict[tuple, Run] = {}
    with _fresh_cache() as cache:
        log("compiling symbp's network into a fresh cache ...")
        timed(CV_SCRIPT, ["symbp", "serial"], cache)
        for r in range(max(1, repeat)):
            for which, env, mode in combos if r % 2 == 0 else reversed(combos):
                log(f"round {r + 1}: {which}, {env}, {mode} ...")
                run = timed(CV_SCRIPT, [which, mode], cache, ENVIRONMENTS[env])
                run.seconds = run.figures["seconds"]  # cross_val_score alone
                key = (which, env, mode)
                if key not in best or run.seconds < best[key].seconds:
                    best[key] = run
    return best


def cv_table(best: dict) -> str:
    """Rows estimator x environment, columns the joblib modes: seconds (and the ratio to the
    same estimator and mode with ``OPENBLAS_NUM_THREADS=1``)."""
    lines = ["| estimator | BLAS threads | " + " | ".join(MODES.values()) + " |",
             "|---|---|" + "---|" * len(MODES)]
    for which, name in (("symbp", "symbp `MLPClassifier`"),
                        ("sklearn", "scikit-learn `MLPClassifier`")):
        for env in ENVIRONMENTS:
            if (which, env, "serial") not in best:
                continue
            cells = []
            for mode in MODES:
                run, one = best[(which, env, mode)], best[(which, "OPENBLAS_NUM_THREADS=1", mode)]
                cells.append(f"{run.seconds:.2f} s ({run.seconds / one.seconds:.2f}x)")
            label = {"as set": "as set (symbp limits them in a fit)" if which == "symbp"
                     else "as set", "SYMBP_BLAS_THREADS=keep": "as set, symbp's limit off "
                     "(`SYMBP_BLAS_THREADS=keep`)"}.get(env, f"`{env}`")
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def threads_main(argv: Sequence[str] | None = None) -> int:
    """``symbp bench --blas-threads``: ``cross_val_score`` with BLAS threads as set, limited to
    one by the environment, and (symbp) without symbp's own limit.

    Returns
    -------
    int
        0, or 1 when the runs of one estimator disagree on the mean score.
    """
    parser = argparse.ArgumentParser(
        prog="symbp bench --blas-threads",
        description="cross_val_score(MLPClassifier(64 relu, 30 epochs), digits, cv=5) of "
        "symbp and scikit-learn: loky and threading n_jobs=2 and n_jobs=1, BLAS threads as "
        "set, OPENBLAS_NUM_THREADS=1, and symbp without its limit; fresh processes.")
    parser.add_argument("--repeat", type=int, default=2,
                        help="interleaved rounds, the best kept (default 2)")
    args = parser.parse_args(argv)
    started, snap = time.perf_counter(), _snapshot()
    best = cv_runs(args.repeat, log=lambda m: print(m, file=sys.stderr, flush=True))
    load = other_load(snap, _snapshot())
    busy = "" if load is None else f"; other processes kept {load:.0%} of the CPUs busy"
    print(f"Measured {datetime.date.today().isoformat()} by `symbp bench --blas-threads` "
          f"({time.perf_counter() - started:.0f} s, best of {args.repeat}): "
          f"{os.cpu_count()} CPUs{busy}. Seconds of `cross_val_score` alone (estimators "
          "compiled and BLAS loaded before); in brackets, against `OPENBLAS_NUM_THREADS=1`.\n")
    print(cv_table(best))
    problems = []
    for which in ("symbp", "sklearn"):
        scores = {round(run.figures["accuracy"], 6) for key, run in best.items()
                  if key[0] == which}
        if len(scores) > 1:
            problems.append(f"{which}: the mean scores differ between runs: {sorted(scores)}")
    threads = sorted({tuple(run.figures["blas_threads"]) for run in best.values()})
    print(f"\nBLAS pools after the runs (threads per pool, as threadpoolctl reports in the "
          f"parent): {threads}.")
    for p in problems:
        print(f"**{p}**")
    return 1 if problems else 0
