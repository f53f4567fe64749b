"""Multi-layer perceptrons whose backward pass symbp generates, trained by a compiled loop.

``MLPClassifier`` and ``MLPRegressor`` take scikit-learn's parameter names and meanings. The
network is written as staged symbp lines (``network_lines``) and compiled by
:func:`symbp.compile` like any expression: no backward pass is written by hand. A whole epoch
(shuffle, gather mini-batches, forward, backward, optimizer step) runs inside one Numba function
emitted into the same cached module as the network, over buffers allocated once per fit.

The flow of ``fit``: check parameters and data (before any compiling) -> encode targets ->
initialize weights -> compile the network (cached per structure: depth, activation, loss,
penalty and dtype; the sizes are bound at run time) -> one compiled call per epoch, Python
only keeping score between epochs.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import numbers
import os
import re
import stat
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _npz
from . import jit as _jit
from . import loop as _loop
from . import threads as _threads
from .errors import SymbpError
from .function import compile as _compile
from .network import ACTIVATIONS, LOSSES, dim_names, network_lines
from .split import train_test_split

try:  # with scikit-learn installed the estimators are real scikit-learn estimators
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
except ImportError:  # pragma: no cover - exercised in environments without scikit-learn
    from ._estimator import BaseEstimator, ClassifierMixin, ConvergenceWarning, RegressorMixin

__all__ = ["ACTIVATIONS", "LOSSES", "ConvergenceWarning", "MLPClassifier", "MLPRegressor",
           "network_lines"]

_HE = {"relu", "leaky_relu", "elu", "maxout"}  # He initialization; Glorot for the others

PREDICT_CHUNK = 2048
"""Rows per compiled forward call in predict."""


_LOOP_HASH = hashlib.sha256(Path(_loop.__file__).read_bytes()).hexdigest()[:12]


def _views_source(params: list[str], shapes: dict, dims: list[str]) -> str:
    """``parameters(flat, dims)``: the parameters as views of one flat vector, in order."""
    body = [f"    {', '.join(dims)} = {', '.join(f'dims[{k}]' for k in range(len(dims)))}",
            "    o = 0"]
    for p in params:
        size = " * ".join(shapes[p])
        view = f"flat[o:o + {size}]"
        if len(shapes[p]) > 1:
            view += f".reshape(({', '.join(shapes[p])}))"
        body += [f"    {p} = {view}", f"    o += {size}"]
    shown = ", ".join(f"{p} ({', '.join(shapes[p])})" for p in params)
    doc = (f'    """Views of the flat vector ``flat``: {shown}; ``dims`` holds the sizes '
           f'{", ".join(dims)}."""')
    return "\n".join(["@register_jitable", "def parameters(flat, dims):", doc, *body,
                      f"    return {', '.join(params)},"])


_RUN = '''

# ---- the training loop (symbp.nn, loop helpers {hash}) ----
from symbp.loop import ADAM, adam_rate, all_finite, copy_into, copy_rows, {count}
from symbp.loop import {imports}
from symbp.loop import optimizer_step, shuffle_order


{views}


def run(X, T, theta, theta_next, first, second, grad, dims, order, result, predict, batch,
        seed, shuffle, solver, rate, momentum, nesterov, beta_1, beta_2, epsilon, alpha, step,
        limit):
    """One epoch of mini-batch training (``predict`` False), or the network's output rows for
    every row of ``X`` written into ``result`` (``predict`` True; ``T`` holds dummy targets).
    Returns (sum of batch loss times batch size, correct predictions, batches done, status,
    optimizer step); status 1: the loss of the next batch is not finite, 2: its gradient is
    not, 3: its update would make a weight NaN or beyond ``limit`` (the dtype's largest
    value). ``theta`` holds the weights from before that batch (all finite) on return."""
    n = X.shape[0]
    if shuffle and not predict:
        shuffle_order(order, seed)
    total = 0.0
    correct = 0
    done = 0
    status = 0
    swapped = False
    rows = -1
    l2 = 0.0
    {names} = parameters(theta, dims)
    for start in range(0, n, batch):
        m = min(batch, n - start)
        if m != rows:  # buffers for this many rows: the first batch and a shorter last one
            xb = np.empty((m, X.shape[1]), X.dtype)
            tb = np.empty({rows}, T.dtype)
            {buffers} = value_and_grad_buffers({call})
            {grads} = parameters(grad, dims)
            rows = m
            l2 = 0.5 * alpha / m
        gather_rows(X, order, start, xb)
        {gather}(T, order, start, tb)
        if predict:
            value_and_grad_into({call}, {buffers}, False)  # the forward pass alone
            copy_rows(out, result, start)
            done += 1
            continue
        loss, = value_and_grad_into({call}, {buffers}, True)
        if not math.isfinite(loss):
            status = 1
            break
        now = adam_rate(rate, beta_1, beta_2, step + 1) if solver == ADAM else rate
        if not optimizer_step(theta, grad, first, second, theta_next, solver, now, momentum,
                              nesterov, beta_1, beta_2, epsilon, limit):
            status = 3 if all_finite(grad) else 2  # the weights before this step are intact
            break
        total += loss * m
        correct += {count}(out, tb)
        step += 1
        theta, theta_next = theta_next, theta
        {names} = parameters(theta, dims)
        swapped = not swapped
        done += 1
    if swapped:  # the newest weights are in the vector passed as theta_next: copy them home
        copy_into(theta, theta_next)
    return total, correct, done, status, step
'''


def _loop_source(inputs: list[str], params: list[str], shapes: dict, dims: list[str],
                 buffers: list[str], labels: bool, l2: bool) -> str:
    """The training loop and batched prediction, appended to the network's module (so one
    cached module holds both: a cached Numba function given another dispatcher as an argument
    recompiles per process).

    ``run`` is the module's one compiled entry point: an epoch (``predict`` False) or the
    forward pass over ``X`` into ``result`` (``predict`` True), so a first fit and its first
    prediction share one compilation. Parameters, their gradient, the optimizer's state and
    the next weights are each one flat vector (``parameters`` gives the per-layer views): one
    optimizer step updates them all, and the argument list is the same for every network. A
    step writes the updated weights into ``theta_next`` and checks them in the same loop, and
    only a step whose every weight is finite swaps the two, so a step that overflows leaves
    the last finite weights in place at no extra pass. Buffers are allocated per call, for
    the first batch and a shorter last one (a few microseconds)."""
    return _RUN.format(
        hash=_LOOP_HASH, views=_views_source(params, shapes, dims), names=", ".join(params),
        grads=", ".join(f"d{p}" for p in params), buffers=", ".join(buffers),
        call=", ".join(["xb", *params, "tb", *(["l2"] if l2 else [])]),
        gather="gather" if labels else "gather_rows",
        imports="gather, gather_rows" if labels else "gather_rows",
        count="count_correct_labels" if labels else "count_correct_targets",
        rows="(m,)" if labels else "(m, T.shape[1])")


@dataclass
class _Network:
    """A compiled network structure: its lines, module source, parameter names and shapes (in
    dimension names) and dimension names; ``run()`` is its compiled entry point."""

    lines: str
    source: str
    params: list[str]
    shapes: dict
    dims: list[str]
    labels: bool

    def run(self):
        return _jit.njit(self.source, None, "run")

    def sizes(self, dims) -> list[tuple[int, ...]]:
        """The shape of each parameter for these dimension sizes."""
        value = dict(zip(self.dims, map(int, dims)))
        return [tuple(value[d] for d in self.shapes[p]) for p in self.params]


_NETWORKS: dict[tuple, _Network] = {}


def _network(depth: int, activation: str, loss: str, l2: bool) -> _Network:
    """The network of this structure: one module for every width, feature and output count."""
    key = (depth, activation, loss, l2)
    if key not in _NETWORKS:
        lines, shapes, params = network_lines(*key)
        target = "y" if loss in ("softmax_cross_entropy", "hinge") else "t"
        inputs = ["X", *params, target, *(["l2"] if l2 else [])]
        f = _compile(lines, inputs=inputs, shapes=shapes, wrt=params)
        module = _jit.load(f.source)
        names = list(inspect.signature(module.value_and_grad_into).parameters)
        buffers = [n for n in names[len(inputs):] if n != "backward"]  # the flag
        assert buffers[:len(params)] == [f"d{p}" for p in params] and "out" in buffers
        dims = dim_names(depth)
        source = f.source + _loop_source(inputs, params, shapes, dims, buffers, target == "y",
                                         l2)
        _NETWORKS[key] = _Network(lines, source, params, shapes, dims, target == "y")
    return _NETWORKS[key]


# -- the estimators -------------------------------------------------------------------------


class _MLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, checks, the training loop."""

    _losses: tuple[str, ...] = ()

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, loss="auto",
                 dtype="float32", standardize=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.loss = loss
        self.dtype = dtype
        self.standardize = standardize

    # -- checks, all before any compiling --------------------------------------------------

    def _checked_params(self) -> dict:
        """The parameters validated, with ``hidden`` as a tuple and ``dtype`` a NumPy dtype."""
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(hidden)
        if not all(isinstance(h, numbers.Integral) and h > 0 for h in hidden):
            raise SymbpError(f"hidden_layer_sizes must be positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("solver", self.solver, ("sgd", "adam"))
        _choice("learning_rate", self.learning_rate, ("constant", "invscaling", "adaptive"))
        _choice("loss", self.loss, ("auto", *self._losses))
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise SymbpError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        _number("alpha", self.alpha, low=0.0)
        _number("learning_rate_init", self.learning_rate_init, low=0.0, open_low=True)
        _number("power_t", self.power_t, low=0.0)
        _number("momentum", self.momentum, low=0.0, high=1.0)
        _number("beta_1", self.beta_1, low=0.0, high=1.0, open_high=True)
        _number("beta_2", self.beta_2, low=0.0, high=1.0, open_high=True)
        _number("epsilon", self.epsilon, low=0.0, open_low=True)
        _number("tol", self.tol, low=0.0)
        _number("validation_fraction", self.validation_fraction, low=0.0, high=1.0,
                open_low=True, open_high=True)
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise SymbpError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_size != "auto" and (not isinstance(self.batch_size, numbers.Integral)
                                          or isinstance(self.batch_size, bool)
                                          or self.batch_size < 1):
            raise SymbpError(f"batch_size must be 'auto' or a positive integer, got "
                             f"{self.batch_size!r}")
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping",
                     "standardize", "verbose"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_, numbers.Integral)) or \
                    (name != "verbose" and value not in (0, 1)) or value < 0:
                raise SymbpError(f"{name} must be True or False, got {value!r}")
        return {"hidden": tuple(int(h) for h in hidden), "dtype": dtype}

    def _checked_X(self, X, dtype, *, fitting: bool) -> np.ndarray:
        X = _numeric("X", X)
        if X.ndim != 2:
            raise SymbpError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise SymbpError(f"X is empty (shape {X.shape})")
        if not fitting and X.shape[1] != self.n_features_in_:
            raise SymbpError(f"X has {X.shape[1]} features, but this model was fitted with "
                             f"{self.n_features_in_}")
        _check_finite("X", X)
        X = self._standardized(X, fitting=fitting)
        return _cast_finite("X", X, dtype, "features")

    def _standardized(self, X, *, fitting: bool) -> np.ndarray:
        """``X`` centered and scaled by ``feature_mean_``/``feature_scale_`` (float64) when the
        model standardizes; ``fit`` computes them from its ``X`` (kept with ``warm_start``, as
        the trained weights expect them). A constant column keeps scale 1 (only centered)."""
        if fitting and not (self.warm_start and hasattr(self, "coefs_")):
            self.feature_mean_ = self.feature_scale_ = None
            if self.standardize:
                self.feature_mean_, self.feature_scale_ = _moments(X)
        mean = getattr(self, "feature_mean_", None)
        if mean is None:
            return X
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: refused after the cast
            return (np.asarray(X, np.float64) - mean) / self.feature_scale_

    # -- training -------------------------------------------------------------------------

    def fit(self, X, y):
        """Train the network on ``X`` (samples x features) and targets ``y``; returns self.

        Raises
        ------
        SymbpError
            For bad parameters or data (before anything is compiled), and when the loss or a
            gradient becomes NaN or infinite: the error names the epoch and batch, and the
            model keeps the last finite weights (from before that batch).
        """
        checked = self._checked_params()
        dtype = checked["dtype"]
        X = self._checked_X(X, dtype, fitting=True)
        targets, n_outputs, loss = self._encoded(y, X.shape[0], dtype)
        rng = np.random.RandomState(self.random_state) \
            if not isinstance(self.random_state, np.random.RandomState) else self.random_state
        if self.early_stopping:
            stratify = targets if self._is_classifier else None
            X, X_val, targets, t_val = train_test_split(
                X, targets, test_size=self.validation_fraction, rng=rng, stratify=stratify)
        if not (self.warm_start and hasattr(self, "coefs_")):
            self._initialize(X.shape[1], checked["hidden"], n_outputs, dtype, rng)
        elif self.coefs_[0].shape[0] != X.shape[1] or self.coefs_[-1].shape[1] != n_outputs:
            raise SymbpError("warm_start: X or y does not match the fitted model's shapes")
        elif [W.shape for W in self.coefs_] != self._layer_shapes(
                X.shape[1], checked["hidden"], n_outputs):
            raise SymbpError(
                f"warm_start: the fitted layers {[W.shape for W in self.coefs_]} do not match "
                f"hidden_layer_sizes={checked['hidden']} and activation={self.activation!r}; "
                "set warm_start=False to train a new network")
        self.n_features_in_ = X.shape[1]
        self._fitted_loss = loss
        self._net_key = (X.shape[1], checked["hidden"], n_outputs, self.activation, loss,
                         self.alpha > 0)
        network = self._network()
        with _threads.limited(min(200 if self.batch_size == "auto" else self.batch_size,
                                  X.shape[0]), (X.shape[1], *checked["hidden"], n_outputs)):
            self._train(network, X, targets, rng, dtype,
                        (X_val, t_val) if self.early_stopping else None)
        return self

    def _network(self) -> _Network:
        """The compiled structure of the fitted network (its depth, activation, loss and
        penalty: every width shares it)."""
        _, hidden, _, activation, loss, l2 = self._net_key
        return _network(len(hidden), activation, loss, l2)

    def _dims(self) -> np.ndarray:
        """The sizes of the network's dimensions: features, hidden widths, outputs."""
        n_features, hidden, n_outputs = self._net_key[:3]
        return np.array([n_features, *hidden, n_outputs], np.int64)

    def _layer_shapes(self, n_features, hidden, n_outputs) -> list[tuple[int, int]]:
        """The shape of each ``coefs_`` entry (a maxout layer holds two pieces side by side)."""
        sizes = (n_features, *hidden, n_outputs)
        return [(fan_in, (2 if k < len(hidden) and self.activation == "maxout" else 1) * fan_out)
                for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes))]

    def _initialize(self, n_features, hidden, n_outputs, dtype, rng) -> None:
        """Glorot-uniform weights (scikit-learn's scheme) or He-uniform for the relu family."""
        self.coefs_, self.intercepts_ = [], []
        sizes = (n_features, *hidden, n_outputs)
        for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            hidden_layer = k < len(hidden)
            pieces = 2 if hidden_layer and self.activation == "maxout" else 1
            if hidden_layer and self.activation in _HE:
                bound, bias = math.sqrt(6.0 / fan_in), 0.0
            else:
                factor = 2.0 if self.activation == "logistic" else 6.0
                bound = bias = math.sqrt(factor / (fan_in + fan_out))
            self.coefs_.append(rng.uniform(-bound, bound, (fan_in, pieces * fan_out))
                               .astype(dtype))
            self.intercepts_.append(rng.uniform(-bias, bias, pieces * fan_out).astype(dtype)
                                    if bias else np.zeros(pieces * fan_out, dtype))
        self.n_iter_, self.t_ = 0, 0
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        if self._is_classifier:
            self.train_accuracy_curve_ = []

    def _param_arrays(self, dtype) -> list[np.ndarray]:
        """The network's parameters in its input order, as contiguous arrays of ``dtype``: the
        very arrays of ``coefs_``/``intercepts_`` (maxout layers are split into two pieces)."""
        out = []
        for k, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            W, b = np.ascontiguousarray(W, dtype), np.ascontiguousarray(b, dtype)
            self.coefs_[k], self.intercepts_[k] = W, b
            if self.activation == "maxout" and k < len(self.coefs_) - 1:
                half = W.shape[1] // 2
                out += [np.ascontiguousarray(W[:, :half]), b[:half].copy(),
                        np.ascontiguousarray(W[:, half:]), b[half:].copy()]
            else:
                out += [W, b]
        return out

    def _store(self, arrays: list[np.ndarray]) -> None:
        """Write trained parameter arrays back into ``coefs_``/``intercepts_``."""
        k = 0
        for layer in range(len(self.coefs_)):
            if self.activation == "maxout" and layer < len(self.coefs_) - 1:
                W, b, V, c = arrays[k:k + 4]
                self.coefs_[layer] = np.hstack([W, V])
                self.intercepts_[layer] = np.concatenate([b, c])
                k += 4
            else:
                self.coefs_[layer], self.intercepts_[layer] = arrays[k], arrays[k + 1]
                k += 2

    def _train(self, network: _Network, X, T, rng, dtype, validation) -> None:
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)
        dims = self._dims()
        theta = _flat(self._param_arrays(dtype))
        params = _views(theta, network.sizes(dims))
        first, second = np.zeros_like(theta), np.zeros_like(theta)  # the optimizer's state
        theta_next, grad = np.empty_like(theta), np.empty_like(theta)
        order = np.arange(n, dtype=np.int64)
        run, self.compile_seconds_ = self._compiled(network, X, T, dims)
        solver = _loop.ADAM if self.solver == "adam" else _loop.SGD
        rate = float(self.learning_rate_init)
        limit = float(np.finfo(dtype).max)  # a step beyond it stops training (loop.optimizer_step)
        no_improvement = 0
        best_params = None
        hyper = (float(self.momentum), bool(self.nesterovs_momentum), float(self.beta_1),
                 float(self.beta_2), float(self.epsilon), float(self.alpha))
        nothing = np.empty((0, dims[-1]), dtype)
        bar = _progress(self.verbose, self.max_iter)
        try:
            for _ in range(self.max_iter):
                started = time.perf_counter()
                total, correct, done, status, self.t_ = run(
                    X, T, theta, theta_next, first, second, grad, dims, order, nothing, False,
                    batch,
                    int(rng.randint(2**31 - 1)), bool(self.shuffle), solver, rate, *hyper,
                    int(self.t_), limit)
                seconds_taken = time.perf_counter() - started
                if status:
                    self._store(params)
                    what = {1: "loss", 2: "gradient", 3: "updated weights"}[status]
                    raise SymbpError(
                        f"training stopped: the {what} became NaN or infinite at epoch "
                        f"{self.n_iter_ + 1}, batch {done + 1} of {-(-n // batch)}; the model "
                        f"keeps the last finite weights (from before that batch). Try a smaller "
                        f"learning_rate_init (now {self.learning_rate_init}) or scaled inputs.")
                self.n_iter_ += 1
                loss = total / n
                self.loss_curve_.append(loss)
                report = {"loss": f"{loss:.4g}"}
                if self._is_classifier:
                    self.train_accuracy_curve_.append(correct / n)
                    report["accuracy"] = f"{correct / n:.4f}"
                if validation is not None:
                    self._store(params)
                    score = self._score_encoded(network, *validation)
                    self.validation_scores_.append(score)
                    report["validation"] = f"{score:.4f}"
                report["samples/s"] = f"{n / seconds_taken:,.0f}"
                _report(bar, self.n_iter_, report)
                # scikit-learn's stopping rule: no improvement by tol for n_iter_no_change epochs
                if validation is not None:
                    improved = score >= self.best_validation_score_ + self.tol
                    if score > self.best_validation_score_:
                        self.best_validation_score_ = score
                        best_params = [p.copy() for p in params]
                else:
                    improved = loss <= self.best_loss_ - self.tol
                self.best_loss_ = min(self.best_loss_, loss)
                no_improvement = 0 if improved else no_improvement + 1
                if self.learning_rate == "invscaling" and self.solver == "sgd":
                    rate = self.learning_rate_init / (self.t_ + 1) ** self.power_t
                if no_improvement > self.n_iter_no_change:
                    if self.learning_rate == "adaptive" and self.solver == "sgd" and rate > 1e-6:
                        rate /= 5.0
                        no_improvement = 0
                    else:
                        break
            else:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning, stacklevel=3)
        finally:
            if bar:
                bar.close()
        self._store(best_params if best_params is not None else params)

    # -- prediction -----------------------------------------------------------------------

    def _outputs(self, X) -> np.ndarray:
        """The network's output rows (before the output function) for checked input ``X``."""
        self._check_fitted()
        network = self._network()
        dtype = self.coefs_[0].dtype
        X = self._checked_X(X, dtype, fitting=False)
        out = self._forward(network, X, dtype)
        bad = ~np.isfinite(out)
        if bad.any():  # finite weights can still overflow on some inputs: never a NaN answer
            row = int(np.argwhere(bad)[0][0])
            raise SymbpError(f"the network's output is NaN or infinite for {bad.any(axis=1).sum()}"
                             f" row(s) of X, the first at row {row}: its weights or these inputs "
                             f"are too large for {np.dtype(dtype).name} (a fit that diverged?)")
        return out

    def _compiled(self, network: _Network, X, T, dims):
        """The network's compiled entry point for these arrays' types, compiled (or loaded from
        Numba's cache) here, before any clock starts, and the seconds spent compiling (0.0
        when it was cached); with ``verbose``, a compile that takes longer than a moment is
        announced and timed."""
        run = network.run()
        theta = np.empty(0, X.dtype)
        args = (X[:0], T[:0], theta, theta, theta, theta, theta, dims, np.empty(0, np.int64),
                np.empty((0, int(dims[-1])), X.dtype), False, 1, 0, False, 0, 0.0, 0.0, False,
                0.0, 0.0, 0.0, 0.0, 0, 0.0)
        structure = (f"{len(dims) - 2} hidden layer{'s' * (len(dims) != 3)}, "
                     f"{self._net_key[3]}, {self._net_key[4]}, {X.dtype}")
        seconds = _jit.compile_call(run, args, f"the network: {structure}",
                                    print if self.verbose else None)
        return run, seconds

    def _forward(self, network: _Network, X, dtype) -> np.ndarray:
        """The output rows of checked ``X`` (``dtype``) through the compiled entry point."""
        dims = self._dims()
        shapes = self._layer_shapes(int(dims[0]), tuple(map(int, dims[1:-1])), int(dims[-1]))
        if [np.shape(W) for W in self.coefs_] != shapes or \
                [np.shape(b) for b in self.intercepts_] != [(s[1],) for s in shapes]:
            raise SymbpError(f"coefs_/intercepts_ do not have the fitted network's shapes "
                             f"(coefs_ {[np.shape(W) for W in self.coefs_]}, expected {shapes})")
        theta = _flat(self._param_arrays(dtype))
        run, _ = self._compiled(network, X, np.zeros(0, np.int64) if network.labels
                             else np.zeros((0, int(dims[-1])), dtype), dims)
        n = X.shape[0]
        T = np.zeros(n, np.int64) if network.labels else np.zeros((n, int(dims[-1])), dtype)
        result = np.empty((n, int(dims[-1])), dtype)
        unused, grad = np.empty(0, dtype), np.empty_like(theta)  # grad: views are taken
        run(X, T, theta, unused, unused, unused, grad, dims, np.arange(n, dtype=np.int64),
            result, True, PREDICT_CHUNK, 0, False, 0, 0.0, 0.0, False, 0.0, 0.0, 0.0, 0.0, 0,
            0.0)
        return result

    def _check_fitted(self) -> None:
        if not hasattr(self, "coefs_"):
            raise SymbpError(f"this {type(self).__name__} is not fitted yet: call fit first")

    @property
    def source(self) -> str:
        """The generated module: the network's forward and backward pass, then the compiled
        training loop."""
        self._check_fitted()
        return self._network().source

    @property
    def expression(self) -> str:
        """The network as the staged symbp lines that were compiled."""
        self._check_fitted()
        return self._network().lines

    # -- persistence ----------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the fitted model to an ``.npz`` file atomically (a temporary file in the same
        folder, then ``os.replace``): an interrupted save never leaves a half-written file."""
        self._check_fitted()
        path = Path(path)
        params = {k: v for k, v in self.get_params().items()
                  if k != "random_state" or v is None or isinstance(v, numbers.Integral)}
        params["hidden_layer_sizes"] = list(np.atleast_1d(self.hidden_layer_sizes).tolist())
        params["dtype"] = np.dtype(self.dtype).name
        meta = {"format": _FORMAT, "estimator": type(self).__name__, "params": params,
                "n_features_in": self.n_features_in_, "n_iter": self.n_iter_, "t": self.t_,
                "loss": self._fitted_loss, "net": list(self._net_key[:1]) + [
                    list(self._net_key[1]), *self._net_key[2:]],
                "loss_curve": list(map(float, self.loss_curve_)),
                "best_loss": float(self.best_loss_)}
        arrays = {"meta": np.array(json.dumps(meta))}
        for k, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            arrays[f"coef_{k}"], arrays[f"intercept_{k}"] = W, b
        if self._is_classifier:
            classes = np.asarray(self.classes_)
            if classes.dtype == object:
                if not all(isinstance(c, str) for c in classes):
                    raise SymbpError("save keeps class labels that are numbers or strings; "
                                     f"these are {classes.dtype}")
                classes = classes.astype(str)
            arrays["classes"] = classes
        if getattr(self, "feature_mean_", None) is not None:
            arrays["feature_mean"] = np.asarray(self.feature_mean_, np.float64)
            arrays["feature_scale"] = np.asarray(self.feature_scale_, np.float64)
        if getattr(self, "target_mean_", None) is not None:
            arrays["target_mean"] = np.asarray(self.target_mean_, np.float64)
            arrays["target_scale"] = np.asarray(self.target_scale_, np.float64)
        _remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            _lock(fd)  # held until closed: tells a later save this file's writer is alive
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
                os.replace(tmp, path)  # before the close: the lock is held to the end
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`.

        Nothing is unpickled, and nothing is read before it is checked: the zip directory
        (member names and sizes, compression ratio), then the metadata (every field's type and
        value), then each array's ``.npy`` header (dtype: real floats for weights; shape: the
        one the metadata's layer sizes give; a bound on the total size), and only then the
        array data, exactly the bytes announced.

        Raises
        ------
        SymbpError
            For a missing, truncated or damaged file, another program's ``.npz``, a model of
            the other kind, or any field or array that is not what :meth:`save` writes; the
            message names the file.
        """
        path = Path(path)
        with _npz.open_archive(path) as archive:
            entries = _npz.members(archive, path)
            if "meta" not in entries:
                raise SymbpError(f"{path} is not a symbp model file (no 'meta' entry; it "
                                 f"holds {', '.join(entries) or 'nothing'})")
            meta = _read_meta(archive, entries, path)
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise SymbpError(f"{path} is not a symbp model file (format "
                                 f"{meta.get('format') if isinstance(meta, dict) else meta!r})")
            kind = meta.get("estimator")
            if kind != cls.__name__:
                kind = kind if isinstance(kind, str) and kind.isidentifier() else repr(kind)
                raise SymbpError(f"{path} holds a {kind}, not a {cls.__name__}")
            model, layout = cls._from_meta(meta, path)
            unexpected = sorted(set(entries) - set(layout) - {"meta"})
            if unexpected:
                raise SymbpError(f"{path}: entries the model does not have: "
                                 f"{', '.join(unexpected)}")
            total = 0
            for name, (shape, kind) in layout.items():
                if name not in entries:
                    raise SymbpError(f"{path}: damaged symbp model file (no {name!r} entry)")
                got, _, dtype, _ = _npz.header(archive, entries[name], path)
                if dtype.kind not in kind or dtype.fields is not None:
                    want = "real floats" if kind == "f" else "numbers or text"
                    raise SymbpError(f"{path}: {name} holds {dtype}; it must hold {want}")
                if got != shape:
                    raise SymbpError(f"{path}: {name} has shape {got}; the model needs {shape}")
                total += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if total > MAX_LOAD_BYTES:
                    raise SymbpError(f"{path}: the arrays would take more than "
                                     f"{MAX_LOAD_BYTES:,} bytes; refused")
            arrays = {name: _npz.read(archive, entries[name], path) for name in layout}
        model._set_arrays(arrays, path)
        return model

    @classmethod
    def _from_meta(cls, meta: dict, path: Path) -> tuple:
        """The unfitted model the metadata describes, with its fitted scalars set, and the
        arrays it needs: ``{name: (shape, allowed dtype kinds)}``. Every field is checked."""
        def field(name, check, what):
            if name not in meta or not check(meta[name]):
                raise SymbpError(f"{path}: damaged symbp model file ({name!r} must be {what}, "
                                 f"got {meta.get(name, 'nothing')!r})")
            return meta[name]

        params = field("params", lambda v: isinstance(v, dict), "an object")
        valid = set(cls().get_params(deep=False))
        unknown = sorted(str(k) for k in params if k not in valid)
        if unknown:
            raise SymbpError(f"{path}: damaged symbp model file (unknown parameter(s) "
                             f"{', '.join(unknown)})")
        params = dict(params)
        if not isinstance(params.get("hidden_layer_sizes"), list):
            raise SymbpError(f"{path}: damaged symbp model file (hidden_layer_sizes must be a "
                             f"list, got {params.get('hidden_layer_sizes')!r})")
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        state = params.get("random_state")
        if state is not None and (not isinstance(state, int) or isinstance(state, bool)):
            raise SymbpError(f"{path}: damaged symbp model file (random_state {state!r})")
        model = cls(**params)
        try:
            checked = model._checked_params()
        except SymbpError as exc:
            raise SymbpError(f"{path}: damaged symbp model file ({exc})") from None
        hidden = checked["hidden"]
        n_features = field("n_features_in", _positive_int, "a positive integer")
        n_iter = field("n_iter", _count, "a whole number >= 0")
        t = field("t", _count, "a whole number >= 0")
        loss = field("loss", lambda v: isinstance(v, str) and v in cls._losses,
                     f"one of {', '.join(cls._losses)}")
        net = field("net", lambda v: isinstance(v, list) and len(v) == 6, "a list of 6")
        n_outputs = net[2]
        if not _positive_int(n_outputs) or net != [n_features, list(hidden), n_outputs,
                                                   model.activation, loss, model.alpha > 0]:
            raise SymbpError(f"{path}: damaged symbp model file (net {net!r} does not match "
                             "the parameters)")
        curve = field("loss_curve", lambda v: isinstance(v, list) and all(map(_finite, v)),
                      "a list of finite numbers")
        best = field("best_loss", lambda v: _finite(v) or v == math.inf,
                     "a finite number or Infinity")
        sizes = (n_features, *hidden, n_outputs)
        if sum(a * b for a, b in itertools.pairwise(sizes)) > MAX_LOAD_BYTES:
            raise SymbpError(f"{path}: layers {sizes} are too large to load")
        layout = {}
        for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            pieces = 2 if model.activation == "maxout" and k < len(hidden) else 1
            layout[f"coef_{k}"] = ((fan_in, pieces * fan_out), "f")
            layout[f"intercept_{k}"] = ((pieces * fan_out,), "f")
        if model._is_classifier:
            if n_outputs == 1 and loss != "sigmoid_cross_entropy":
                raise SymbpError(f"{path}: damaged symbp model file (one output with loss "
                                 f"{loss})")
            layout["classes"] = ((2 if n_outputs == 1 else n_outputs,), "iufbU")
        if model.standardize:  # files written before standardize existed have no such entries
            layout["feature_mean"] = layout["feature_scale"] = ((n_features,), "f")
            if not model._is_classifier:
                layout["target_mean"] = layout["target_scale"] = ((n_outputs,), "f")
        model.n_features_in_ = n_features
        model.n_iter_, model.t_ = n_iter, t
        model.loss_curve_ = [float(v) for v in curve]
        model.best_loss_ = float(best)
        model._fitted_loss = loss
        model._net_key = (n_features, hidden, n_outputs, model.activation, loss,
                          model.alpha > 0)
        model._checked = checked
        return model, layout

    def _set_arrays(self, arrays: dict, path: Path) -> None:
        """The checked arrays of a model file as the model's fitted attributes."""
        dtype = self._checked["dtype"]
        del self._checked
        self.coefs_, self.intercepts_ = [], []
        for k in range(len(self._net_key[1]) + 1):
            W, b = arrays[f"coef_{k}"], arrays[f"intercept_{k}"]
            if not (np.isfinite(W).all() and np.isfinite(b).all()):
                raise SymbpError(f"{path}: layer {k} holds NaN or infinite weights")
            with np.errstate(over="ignore"):
                W, b = np.ascontiguousarray(W, dtype), np.ascontiguousarray(b, dtype)
            if not (np.isfinite(W).all() and np.isfinite(b).all()):
                raise SymbpError(f"{path}: layer {k} holds weights beyond {dtype.name}'s range")
            self.coefs_.append(W)
            self.intercepts_.append(b)
        for what in ("feature", "target"):
            if f"{what}_mean" in arrays:
                mean, scale = (np.array(arrays[f"{what}_{k}"], np.float64)
                               for k in ("mean", "scale"))
                if not (np.isfinite(mean).all() and np.isfinite(scale).all()
                        and (scale > 0).all()):
                    raise SymbpError(f"{path}: {what}_mean must be finite and {what}_scale "
                                     "finite and positive")
            elif what == "target" and self._is_classifier:
                continue
            else:
                mean = scale = None
            setattr(self, f"{what}_mean_", mean)
            setattr(self, f"{what}_scale_", scale)
        if self._is_classifier:
            classes = np.array(arrays["classes"])
            if classes.dtype.kind == "f" and not np.isfinite(classes).all():
                raise SymbpError(f"{path}: classes holds NaN or infinite labels")
            if not np.array_equal(np.unique(classes), classes):
                raise SymbpError(f"{path}: classes must be distinct and sorted, got {classes!r}")
            self.classes_ = classes
            self._check_outputs(len(classes), self._net_key[2], path)


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    """One contiguous vector holding ``arrays`` one after the other."""
    return np.concatenate([a.reshape(-1) for a in arrays])


def _views(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Views of ``flat`` with these shapes, in order (the inverse of :func:`_flat`)."""
    views, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        views.append(flat[offset:offset + size].reshape(shape))
        offset += size
    return views


_FORMAT = "symbp.nn/1"

MAX_LOAD_BYTES = 1 << 32
"""Largest total size of the arrays :meth:`load` reads (4 GiB: a billion float32 weights)."""

STALE_SECONDS = 60.0
"""A save's temporary file older than this whose writer holds no lock on it is stale."""


class MLPClassifier(ClassifierMixin, _MLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` parameters, a
    backward pass generated by symbp and a training loop compiled by Numba.

    Parameters are scikit-learn's (same names, defaults and meanings), plus:

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', 'abs', 'maxout'}
        ``maxout`` takes the elementwise max of two affine pieces per hidden layer (its
        ``coefs_`` hold both pieces side by side).
    loss : {'auto', 'softmax_cross_entropy', 'sigmoid_cross_entropy', 'hinge', 'squared_error'}
        ``auto``: one sigmoid output with sigmoid cross-entropy for two classes, softmax
        cross-entropy for more. ``predict_proba`` exists for the cross-entropies only.
    dtype : {'float32', 'float64'}, default 'float32'
        Precision of weights and arithmetic.

    Fitted attributes are scikit-learn's: ``coefs_``, ``intercepts_``, ``classes_``,
    ``n_iter_``, ``t_``, ``loss_curve_``, ``best_loss_``, ``n_features_in_``,
    ``validation_scores_``, ``best_validation_score_``; plus ``train_accuracy_curve_`` (the
    accuracy on each epoch's batches as training went), ``compile_seconds_`` (the time the fit
    spent compiling the network: 0.0 when its structure came from the cache; every width of
    a structure shares one compiled module) and ``source`` (the generated code).

    Examples
    --------
    >>> clf = MLPClassifier(hidden_layer_sizes=(4,), activation="logistic", solver="adam",
    ...                     learning_rate_init=0.05, max_iter=2000, random_state=0)
    >>> clf.fit([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 1, 1, 0]).predict([[1, 0]])
    array([1])
    """

    _is_classifier = True
    _losses = ("softmax_cross_entropy", "sigmoid_cross_entropy", "hinge", "squared_error")

    def _encoded(self, y, n: int, dtype):
        """Classes and the targets the network trains on: integer labels, or 0/1 target rows
        (one column for two classes with a sigmoid output, one-hot otherwise)."""
        y = _column("y", y, n)
        if y.ndim != 1:
            raise SymbpError(f"y must be one label per sample, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise SymbpError("y holds NaN or infinite labels")
        if y.dtype.kind == "f" and not np.equal(np.mod(y, 1), 0).all():
            raise SymbpError("y holds continuous values; MLPClassifier needs class labels "
                             "(use MLPRegressor for regression)")
        if y.dtype.kind in "OUS":
            try:
                classes, index = np.unique(y, return_inverse=True)
            except TypeError as exc:
                raise SymbpError(f"y mixes label types that cannot be ordered: {exc}") from None
        else:
            classes, index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise SymbpError(f"y has a single class ({classes[0]!r}); a classifier needs at "
                             "least two")
        if self.warm_start and hasattr(self, "classes_") and not np.array_equal(
                classes, self.classes_):
            raise SymbpError("warm_start: y has other classes than the fitted model")
        self.classes_ = classes
        loss = self.loss
        if loss == "auto":
            loss = "sigmoid_cross_entropy" if len(classes) == 2 else "softmax_cross_entropy"
        index = index.reshape(-1).astype(np.int64)
        if loss in ("softmax_cross_entropy", "hinge"):
            return index, len(classes), loss
        if len(classes) == 2 and loss == "sigmoid_cross_entropy":
            return index.astype(dtype).reshape(-1, 1), 1, loss
        return np.eye(len(classes), dtype=dtype)[index], len(classes), loss

    def _check_outputs(self, n_classes, n_outputs, path) -> None:
        want = 1 if n_classes == 2 and self._fitted_loss == "sigmoid_cross_entropy" \
            else n_classes
        if n_outputs != want:
            raise SymbpError(f"{path}: {n_classes} classes need {want} outputs, the network "
                             f"has {n_outputs}")

    def _scores_to_index(self, scores) -> np.ndarray:
        if scores.shape[1] == 1:
            return (scores[:, 0] > 0).astype(np.int64)
        return scores.argmax(axis=1)

    def _score_encoded(self, network, X, T) -> float:
        predicted = self._scores_to_index(self._forward(network, X, X.dtype))
        truth = T if T.ndim == 1 else self._scores_to_index(T - 0.5)
        return float(np.mean(predicted == truth))

    def predict(self, X) -> np.ndarray:
        """The predicted class of each row of ``X`` (values from ``classes_``)."""
        scores = self._outputs(X)
        return self.classes_[self._scores_to_index(scores)]

    @property
    def predict_proba(self):
        """Class probabilities, one column per class in ``classes_`` order (softmax or sigmoid
        cross-entropy only: a hinge or squared-error network has no probabilities)."""
        self._check_fitted()
        if self._fitted_loss not in ("softmax_cross_entropy", "sigmoid_cross_entropy"):
            raise AttributeError(f"predict_proba is not available for loss "
                                 f"{self._fitted_loss!r}: its outputs are not probabilities")
        return self._predict_proba

    def _predict_proba(self, X) -> np.ndarray:
        scores = self._outputs(X).astype(np.float64)
        if self._fitted_loss == "softmax_cross_entropy":
            scores -= scores.max(axis=1, keepdims=True)
            p = np.exp(scores)
            return p / p.sum(axis=1, keepdims=True)
        p = 0.5 * (1.0 + np.tanh(0.5 * scores))  # the logistic function, overflow-free
        if p.shape[1] == 1:
            return np.hstack([1.0 - p, p])
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class MLPRegressor(RegressorMixin, _MLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` parameters (squared
    error loss, identity output), a backward pass generated by symbp and a training loop
    compiled by Numba. See :class:`MLPClassifier` for the extra parameters and attributes.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", max_iter=500,
    ...                    learning_rate_init=0.01, random_state=0).fit(X, X[:, 0] ** 2)
    >>> bool(reg.score(X, X[:, 0] ** 2) > 0.95)
    True
    """

    _is_classifier = False
    _losses = ("squared_error",)

    def _encoded(self, y, n: int, dtype):
        y = _column("y", y, n)
        if y.dtype.kind not in "fiub" or y.ndim > 2:
            raise SymbpError(f"y must be numbers, one row per sample, got {y.dtype} of shape "
                             f"{y.shape}")
        if not np.isfinite(y).all():
            raise SymbpError("y holds NaN or infinite values")
        self._y_ndim = y.ndim
        T = np.asarray(y.reshape(n, -1), np.float64)
        if not (self.warm_start and hasattr(self, "coefs_")):
            self.target_mean_ = self.target_scale_ = None
            if self.standardize:
                self.target_mean_, self.target_scale_ = _moments(T)
        if getattr(self, "target_mean_", None) is not None:
            if self.target_mean_.shape != (T.shape[1],):
                raise SymbpError("warm_start: y does not match the fitted model's shapes")
            T = (T - self.target_mean_) / self.target_scale_
        T = _cast_finite("y", T, dtype, "targets")
        return T, T.shape[1], "squared_error"

    def _score_encoded(self, network, X, T) -> float:
        predicted = self._forward(network, X, X.dtype)
        residual = ((T - predicted) ** 2).sum()
        spread = ((T - T.mean(axis=0)) ** 2).sum()
        return float(1.0 - residual / spread) if spread > 0 else 0.0

    def predict(self, X) -> np.ndarray:
        """The predicted targets (a vector when fitted on a vector)."""
        out = self._outputs(X)
        if getattr(self, "target_mean_", None) is not None:  # back to the targets' units
            out = (out * self.target_scale_ + self.target_mean_).astype(out.dtype)
        return out[:, 0] if getattr(self, "_y_ndim", 1) == 1 and out.shape[1] == 1 else out


# -- small helpers --------------------------------------------------------------------------


def _choice(name, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise SymbpError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _number(name, value, *, low=None, high=None, open_low=False, open_high=False) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise SymbpError(f"{name} must be a number, got {value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer beyond float64
        finite = False
    if not finite:
        raise SymbpError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value < low or (open_low and value == low)) or \
            high is not None and (value > high or (open_high and value == high)):
        right = ")" if open_high or high is None else "]"
        interval = f"{'(' if open_low else '['}{low}, {'inf' if high is None else high}{right}"
        raise SymbpError(f"{name} must be in {interval}, got {value!r}")


def _moments(X) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation in float64 (1 for a constant column),
    computed on columns divided by their largest magnitude so that 1e300 does not overflow."""
    X = np.asarray(X, np.float64)
    peak = np.abs(X).max(axis=0)
    peak = np.where(peak > 0, peak, 1.0)
    scaled = X / peak
    mean, std = scaled.mean(axis=0) * peak, scaled.std(axis=0) * peak
    return mean, np.where(std > 0, std, 1.0)


def _check_finite(name, array) -> None:
    """Refuse NaN or infinite values, naming the first (row, column)."""
    bad = ~np.isfinite(array)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"row {at[0]}, column {at[1]}" if len(at) == 2 else f"row {at[0]}"
        raise SymbpError(f"{name} holds {bad.sum()} NaN or infinite value(s), the first at "
                         f"{where}")


def _cast_finite(name, array, dtype, what) -> np.ndarray:
    """``array`` (finite) as a contiguous array of ``dtype``, refusing values that overflow
    to infinity on the cast (1e39 in float32), naming the first (row, column)."""
    with np.errstate(over="ignore"):
        cast = np.ascontiguousarray(array, dtype=dtype)
    bad = ~np.isfinite(cast)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"row {at[0]}, column {at[1]}" if len(at) == 2 else f"row {at[0]}"
        limit = np.finfo(dtype).max
        raise SymbpError(
            f"{name} holds {bad.sum()} value(s) beyond the range of {np.dtype(dtype).name} "
            f"(magnitude above {limit:.4g}), the first at {where}: {array[at]!r}; scale "
            f"the {what} or use dtype='float64'")
    return cast


def _numeric(name, values) -> np.ndarray:
    try:
        array = np.asarray(values)
    except ValueError as exc:
        raise SymbpError(f"{name} is not a rectangular array: {exc}") from None
    if array.dtype.kind not in "fiub":
        raise SymbpError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array


def _column(name, values, n: int) -> np.ndarray:
    try:
        array = np.asarray(values)
    except ValueError as exc:
        raise SymbpError(f"{name} is not a rectangular array: {exc}") from None
    if array.ndim == 2 and array.shape[1] == 1 and name == "y":
        array = array[:, 0]
    if array.ndim == 0 or array.shape[0] != n:
        raise SymbpError(f"X has {n} samples but {name} has "
                         f"{array.shape[0] if array.ndim else 'a single value'}")
    return array


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


MAX_META_BYTES = 1 << 26
"""Largest metadata entry :meth:`_MLP.load` reads (64 MiB: a loss curve of a million epochs)."""


def _read_meta(archive, entries, path):
    """The metadata entry: a text scalar at most :data:`MAX_META_BYTES`, parsed as JSON."""
    info = entries["meta"]
    shape, _, dtype, _ = _npz.header(archive, info, path)
    if dtype.kind != "U" or shape != ():
        raise SymbpError(f"{path} is not a symbp model file (meta holds {dtype} of shape "
                         f"{shape}, not text)")
    if info.file_size > MAX_META_BYTES:
        raise SymbpError(f"{path}: the metadata takes {info.file_size:,} bytes; refused "
                         f"(at most {MAX_META_BYTES:,})")
    text = _npz.read(archive, info, path).item()
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SymbpError(f"cannot read {path}: its metadata is not JSON "
                         f"({type(exc).__name__}: {exc})") from None


def _lock(fd: int) -> None:
    """An exclusive advisory lock on ``fd`` (POSIX ``flock``; released when the file is closed
    or its process dies); nothing where the platform or filesystem has none."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass


def _unlocked(fd: int) -> bool:
    """True when nobody holds a lock on ``fd``'s file (the lock is taken, and kept until the
    caller closes ``fd``); False when a writer holds it or locks cannot be told."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        return False
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files that killed saves of ``path`` left behind.

    Only files of the exact name :meth:`_MLP.save` creates (``.NAME.`` + mkstemp's 8
    characters + ``.tmp``) are touched, only regular files (not symlinks) owned by the current
    user, older than :data:`STALE_SECONDS`, and only when no lock is held on them: a live save
    holds an ``flock`` on its temporary file from its creation to its rename, and the kernel
    drops that lock when the writer dies. (The age keeps the moment between ``mkstemp`` and the
    lock safe; the lock keeps a slow writer's file safe however old it is.) Any error leaves
    the file alone: cleaning up never makes a save fail.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")
    uid = getattr(os, "getuid", lambda: None)()
    now = time.time()
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or (uid is not None and info.st_uid != uid) \
                    or now - info.st_mtime < STALE_SECONDS:
                continue
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
            try:
                opened = os.fstat(fd)
                if (opened.st_dev, opened.st_ino) == (info.st_dev, info.st_ino) \
                        and _unlocked(fd):
                    os.unlink(entry.path)
            finally:
                os.close(fd)
        except OSError:
            continue


def _progress(verbose, epochs):
    """A tqdm progress bar when verbose and tqdm is installed (else None: lines printed)."""
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return False
    return tqdm(total=epochs, unit="epoch", leave=True)


def _report(bar, epoch: int, report: dict) -> None:
    if bar is None:
        return
    if bar is False:
        print(f"Iteration {epoch}, " + ", ".join(f"{k} = {v}" for k, v in report.items()))
    else:
        bar.set_postfix(report, refresh=False)
        bar.update(1)
