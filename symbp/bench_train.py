"""Benchmark: MLP training throughput of ``symbp.nn.MLPClassifier`` against peers.

Run as ``python -m symbp.bench_train`` (``--quick`` for a short run; ``--sizes``, ``--rounds``
and ``--peers`` choose). Everything runs in one process and prints markdown: a header with the
machine, library versions and thread pools, then one table per size.

What is measured
----------------
Samples per second of training, ``epochs * n_train / seconds``. ``seconds`` is the
``time.perf_counter`` wall time of one complete training run of a fixed number of epochs, from
the float32 training arrays already in memory to trained parameters. It includes what a user's
``fit`` pays once per run: parameter initialisation, buffer allocation, input validation
(scikit-learn, symbp), conversion to the peer's array type (a zero-copy ``torch.from_numpy``,
a ``jnp.asarray``) and, for JAX, ``block_until_ready``. It excludes the test-set evaluation and
all compilation: every peer first trains once for one epoch (the warm-up, timed separately and
listed under each table), so JIT compilation (Numba, JAX, symbp) and first-call costs are paid
before any timed run.

One measurement repeats the whole training run (same seed, so the same result) until at least
0.5 s (0.1 s with ``--quick``) of timed training has accumulated, and is total samples / total
timed seconds. Measurements are taken in ``--rounds`` interleaved rounds (every peer once per
round, the order reversed every other round) because the machine is shared and noisy; the
tables give the best and the median over rounds, and the ratio of each peer's best to symbp's
best (to the hand-written Numba peer's when symbp is not available). The header also says how
busy other processes kept the CPUs during the run (from ``/proc/stat``).

Every peer trains the same network the same way:

- float32 parameters and arithmetic, plain mini-batch SGD (no momentum, no L2 penalty), the
  same constant learning rate per size;
- the same initial parameters: Glorot uniform, ``U(-r, r)`` with ``r = sqrt(6 / (fan_in +
  fan_out))`` for weights *and* biases, drawn layer by layer (weights, then biases) from
  ``np.random.RandomState(seed)``. That is scikit-learn's own scheme for tanh and relu, so the
  scikit-learn peer starts from bit-identical parameters without being handed them. For the
  two estimators (scikit-learn, symbp) the benchmark checks this, outside the timed region, by
  fitting one epoch at a learning rate of 1e-30 and comparing ``coefs_``/``intercepts_``; an
  estimator that starts elsewhere is flagged in its note (its speed is unaffected);
- the training set is reshuffled every epoch and cut into batches of ``batch_size``, the last
  one smaller when the batch size does not divide the set (JAX included: every peer trains on
  every sample every epoch);
- the loss of a batch is the mean over the batch: binary cross-entropy on one sigmoid output
  for two classes, softmax cross-entropy otherwise. Every peer computes the loss value at each
  step (scikit-learn always does) and reports the last epoch's mean training loss.

Sizes (see ``SPECS`` for learning rates, epochs and accuracy floors):

- tiny: 2-16-16-1, tanh, batch 32, ``make_moons(n_samples=2000, noise=0.2, random_state=0)``,
  stratified 80/20 split;
- small: 64-64-10, relu, batch 64, ``load_digits()`` with ``X / 16``, stratified 80/20 split;
- medium: 784-256-128-10, relu, batch 128, 10,240 synthetic MNIST-shaped samples: 88% uniform
  noise plus 12% of one of ten fixed random "prototype" images, minus 0.5; the label is the
  prototype. The first 8,192 samples train, the other 2,048 test.

Test accuracy is measured after every timed run. The run fails (exit status 1) when a peer
errors, or its test accuracy is under the size's floor or more than 0.05 (0.1 with
``--quick``) under the best peer's: a peer far off would make the comparison dishonest.

Peers, each a function ``(data, spec, epochs, seed) -> dict``:

- ``numpy``: forward and backward written by hand with NumPy, one batch at a time (every
  operation allocates its result);
- ``numba``: the same written by hand as loops and ``np.dot(a, b, out)`` in
  ``@numba.njit(cache=True)`` functions, one compiled call per epoch (shuffle included), every
  buffer allocated once per run: the "hand Numba" bar;
- ``sklearn``: ``sklearn.neural_network.MLPClassifier(solver="sgd", momentum=0, alpha=0,
  ...)``, checked to have run every epoch (``n_iter_``) in float32 (``coefs_`` dtype);
- ``torch``: eager PyTorch with its default thread count, ``nn.Linear`` layers,
  ``torch.optim.SGD``, a Python loop of steps; ``torch1``: the same with one thread
  (``torch.set_num_threads(1)`` for the run), because PyTorch's OpenMP threads cost more than
  they give on small layers on a 2-CPU machine;
- ``jax``: one ``jax.jit`` function per epoch, ``jax.lax.scan`` over the full batches and one
  extra step, its own static shape, for the remainder batch;
- ``symbp``: ``symbp.nn.MLPClassifier(solver="sgd", momentum=0.0, alpha=0.0, tol=0.0,
  dtype="float32", ...)``.

scikit-learn, PyTorch and JAX are optional and imported only inside their peers; a missing one
is listed as "not installed" (symbp's trainer, when ``symbp.nn`` does not import, as "not
available"). scikit-learn also provides the tiny and small data sets, so without it only the
medium size runs. Thread pools are left at their defaults and listed in the header (the BLAS
and OpenMP pools through threadpoolctl when it is installed).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

PEER_ORDER = ("numpy", "numba", "sklearn", "torch", "torch1", "jax", "symbp")
REFERENCE = "symbp"
WARMUP_EPOCHS = 1


class PeerUnavailable(Exception):
    """A peer that cannot run here (library not installed); the message goes in the table."""


@dataclass(frozen=True)
class Spec:
    """One benchmark size: the network, its training settings and its sanity floors."""

    name: str
    layers: tuple[int, ...]  # units per layer, input first
    activation: str  # hidden activation: "tanh" or "relu"
    batch_size: int
    lr: float
    epochs: int  # per timed run
    quick_epochs: int
    min_accuracy: float  # every peer must reach this after `epochs` ...
    quick_min_accuracy: float  # ... or this after `quick_epochs`
    data: str  # description for the report

    @property
    def hidden(self) -> tuple[int, ...]:
        return self.layers[1:-1]

    @property
    def binary(self) -> bool:
        """One sigmoid output with binary cross-entropy (else softmax cross-entropy)."""
        return self.layers[-1] == 1


SPECS = {
    "tiny": Spec("tiny", (2, 16, 16, 1), "tanh", 32, 0.3, 30, 10, 0.95, 0.93,
                 "make_moons(n_samples=2000, noise=0.2, random_state=0), stratified 80/20"),
    "small": Spec("small", (64, 64, 10), "relu", 64, 0.2, 40, 15, 0.95, 0.92,
                  "load_digits(), X / 16, stratified 80/20"),
    "medium": Spec("medium", (784, 256, 128, 10), "relu", 128, 0.1, 5, 2, 0.85, 0.5,
                   "10,240 synthetic MNIST-shaped samples (88% uniform noise + 12% of one of "
                   "10 fixed random prototype images, minus 0.5; label = prototype), "
                   "first 8,192 train"),
}
MEDIUM_SIGNAL = 0.12  # the prototype's share of each medium sample
# Every peer's test accuracy must be within this of the best peer's (after few epochs, in
# --quick, accuracy is still climbing steeply and differs more between shuffles).
SPREAD, QUICK_SPREAD = 0.05, 0.1


@dataclass(frozen=True)
class Data:
    """A train/test split: float32 C-contiguous features, int64 labels 0..k-1."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


# ---------------------------------------------------------------------------------------------
# data and shared helpers


def stratified_split(X: np.ndarray, y: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0) -> Data:
    """Split ``(X, y)`` into train and test sets, ``test_fraction`` of each class held out."""
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        test.append(idx[:round(len(idx) * test_fraction)])
    is_test = np.zeros(len(y), bool)
    is_test[np.concatenate(test)] = True
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    return Data(X[~is_test], y[~is_test], X[is_test], y[is_test])


def make_data(spec: Spec) -> Data:
    """The data set of a size (scikit-learn provides tiny's and small's)."""
    if spec.name == "medium":
        # A random linear teacher, argmax(X @ M), was tried first: with 8,192 samples the
        # network overfits it (test accuracy 0.3-0.65 after 10-20 epochs, varying with lr), so
        # accuracy said little. Class prototypes give MNIST-like clusters every peer learns.
        rng = np.random.default_rng(0)
        n, a = 10_240, np.float32(MEDIUM_SIGNAL)
        prototypes = rng.random((10, 784), dtype=np.float32)
        y = rng.integers(0, 10, n)
        X = (1 - a) * rng.random((n, 784), dtype=np.float32) + a * prototypes[y] \
            - np.float32(0.5)
        return Data(X[:8192], y[:8192], X[8192:], y[8192:])  # i.i.d.: no need to stratify
    try:
        from sklearn.datasets import load_digits, make_moons
    except ImportError:
        raise PeerUnavailable("scikit-learn is not installed (it provides this data set)") \
            from None
    if spec.name == "tiny":
        X, y = make_moons(n_samples=2000, noise=0.2, random_state=0)
        return stratified_split(X, y)
    digits = load_digits()
    return stratified_split(digits.data / 16.0, digits.target)


def glorot_init(layers: Sequence[int], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Initial ``(W, b)`` per layer, float32, exactly as scikit-learn draws them for tanh/relu.

    ``W`` has shape ``(fan_in, fan_out)``; ``W`` and ``b`` are both uniform on
    ``(-r, r)``, ``r = sqrt(6 / (fan_in + fan_out))``, from ``np.random.RandomState(seed)``.
    """
    rng = np.random.RandomState(seed)
    params = []
    for fan_in, fan_out in itertools.pairwise(layers):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        params.append((W, b))
    return params


def predict_numpy(params: Sequence[tuple[np.ndarray, np.ndarray]], X: np.ndarray,
                  spec: Spec) -> np.ndarray:
    """Class predictions of trained float32 ``(W, b)`` layers (NumPy forward pass)."""
    h = X
    for W, b in params[:-1]:
        h = h @ W + b
        h = np.tanh(h) if spec.activation == "tanh" else np.maximum(h, 0)
    W, b = params[-1]
    z = h @ W + b
    return (z[:, 0] > 0).astype(np.int64) if spec.binary else np.argmax(z, axis=1)


def _accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == y))


def same_initial_parameters(make_estimator: Callable[[float], object], data: Data,
                            spec: Spec, seed: int) -> bool:
    """Whether an estimator starts from :func:`glorot_init`'s parameters.

    Fits it for one epoch at a learning rate so small that no update changes a float32 weight,
    then compares ``coefs_``/``intercepts_`` with ours; outside any timed region.
    """
    clf = make_estimator(1e-30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(data.X_train, data.y_train)
    ours = glorot_init(spec.layers, seed)
    theirs = list(zip(getattr(clf, "coefs_", []), getattr(clf, "intercepts_", [])))
    return len(ours) == len(theirs) and all(
        np.array_equal(W, np.asarray(V)) and np.array_equal(b, np.asarray(c))
        for (W, b), (V, c) in zip(ours, theirs))


def _init_note(same: bool) -> str:
    return "; same initial parameters as the peers" if same else \
        "; **its own initialisation, not the peers' Glorot uniform** (accuracy and loss " \
        "not like for like; speed unaffected)"


_SAME_INIT: dict[tuple, bool] = {}


def _result(seconds: float, epochs: int, data: Data, accuracy: float, loss: float,
            note: str) -> dict:
    return {"samples_per_s": epochs * len(data.y_train) / seconds, "seconds": seconds,
            "test_accuracy": accuracy, "loss": float(loss), "note": note}


# ---------------------------------------------------------------------------------------------
# peer 1: NumPy


def train_numpy(data: Data, spec: Spec, epochs: int, seed: int) -> dict:
    """Hand-written forward/backward in NumPy; every operation allocates its result."""
    X, y = data.X_train, data.y_train
    n, B = len(y), spec.batch_size
    lr = np.float32(spec.lr)
    tanh = spec.activation == "tanh"
    start = time.perf_counter()
    params = glorot_init(spec.layers, seed)
    rng = np.random.default_rng(seed)
    loss = math.nan
    for _ in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for lo in range(0, n, B):
            idx = order[lo:lo + B]
            m = len(idx)
            hs = [X[idx]]  # fancy indexing copies the batch
            for W, b in params[:-1]:
                z = hs[-1] @ W + b
                hs.append(np.tanh(z) if tanh else np.maximum(z, 0))
            W, b = params[-1]
            z = hs[-1] @ W + b
            yb = y[idx]
            if spec.binary:
                z = z[:, 0]
                t = yb.astype(np.float32)
                total += float(np.sum(np.logaddexp(0, z) - t * z))
                dz = ((np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z))) - t) / m)[:, None]
            else:
                z = z - z.max(axis=1, keepdims=True)
                e = np.exp(z)
                s = e.sum(axis=1, keepdims=True)
                rows = np.arange(m)
                total += float(np.sum(np.log(s[:, 0]) - z[rows, yb]))
                dz = e / s
                dz[rows, yb] -= 1
                dz /= m
            for layer in range(len(params) - 1, -1, -1):
                W, b = params[layer]
                gW = hs[layer].T @ dz
                gb = dz.sum(axis=0)
                if layer > 0:
                    h = hs[layer]
                    dz = (dz @ W.T) * ((1 - h * h) if tanh else (h > 0))
                W -= lr * gW
                b -= lr * gb
        loss = total / n
    seconds = time.perf_counter() - start
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b in params)
    accuracy = _accuracy(predict_numpy(params, data.X_test, spec), data.y_test)
    return _result(seconds, epochs, data, accuracy, loss,
                   "allocates: a new array for every operation and a fancy-indexed copy of "
                   "each batch; updates in place")


# ---------------------------------------------------------------------------------------------
# peer 2: hand-written Numba


@numba.njit(cache=True)
def _nb_seed(seed):
    np.random.seed(seed)


@numba.njit(cache=True)
def _nb_step(X, y, order, lo, Ws, bs, acts, deltas, gWs, gbs, lr, relu, binary):
    """One SGD step on ``order[lo:lo + m]``, ``m = acts[0].shape[0]``; returns the summed loss.

    ``acts[l]`` holds layer l's output (``acts[0]`` the batch), ``deltas[l]`` the gradient of
    the loss with respect to layer l's pre-activation, all of batch size ``m``.
    """
    L = len(Ws)
    xb = acts[0]
    m = xb.shape[0]
    for i in range(m):
        r = order[lo + i]
        for j in range(X.shape[1]):
            xb[i, j] = X[r, j]
    # forward
    for layer in range(L):
        z = acts[layer + 1]
        np.dot(acts[layer], Ws[layer], z)
        b = bs[layer]
        hidden = layer < L - 1
        for i in range(m):
            for j in range(z.shape[1]):
                v = z[i, j] + b[j]
                if hidden:
                    v = (v if v > 0 else np.float32(0)) if relu else np.tanh(v)
                z[i, j] = v
    # loss and its gradient at the output
    z = acts[L]
    d = deltas[L - 1]
    inv_m = np.float32(1.0 / m)
    loss = 0.0
    for i in range(m):
        t = y[order[lo + i]]
        if binary:
            v = z[i, 0]
            e = np.exp(-abs(v))
            loss += max(v, 0) + np.log1p(e) - t * v
            p = np.float32(1) / (1 + e) if v >= 0 else e / (1 + e)
            d[i, 0] = (p - np.float32(t)) * inv_m
        else:
            top = z[i, 0]
            for k in range(1, z.shape[1]):
                top = max(top, z[i, k])
            s = np.float32(0)
            for k in range(z.shape[1]):
                e = np.exp(z[i, k] - top)
                d[i, k] = e
                s += e
            loss += np.log(s) + top - z[i, t]
            for k in range(z.shape[1]):
                d[i, k] = d[i, k] / s * inv_m
            d[i, t] -= inv_m
    # backward and update
    for layer in range(L - 1, -1, -1):
        W, b, gW, gb, d = Ws[layer], bs[layer], gWs[layer], gbs[layer], deltas[layer]
        np.dot(acts[layer].T, d, gW)
        for j in range(d.shape[1]):
            gb[j] = 0
        for i in range(m):
            for j in range(d.shape[1]):
                gb[j] += d[i, j]
        if layer > 0:
            prev = deltas[layer - 1]
            np.dot(d, W.T, prev)  # before W is updated
            h = acts[layer]
            for i in range(m):
                for j in range(prev.shape[1]):
                    if relu:
                        if h[i, j] <= 0:
                            prev[i, j] = 0
                    else:
                        prev[i, j] *= 1 - h[i, j] * h[i, j]
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                W[i, j] -= lr * gW[i, j]
        for j in range(b.shape[0]):
            b[j] -= lr * gb[j]
    return loss


@numba.njit(cache=True)
def _nb_epoch(X, y, order, Ws, bs, acts, deltas, rest_acts, rest_deltas, gWs, gbs, lr, relu,
              binary):
    """One epoch: shuffle ``order`` in place, then every batch (the last one may be smaller)."""
    n = X.shape[0]
    B = acts[0].shape[0]
    np.random.shuffle(order)
    total = 0.0
    for lo in range(0, n, B):
        if n - lo >= B:
            total += _nb_step(X, y, order, lo, Ws, bs, acts, deltas, gWs, gbs, lr, relu, binary)
        else:
            total += _nb_step(X, y, order, lo, Ws, bs, rest_acts, rest_deltas, gWs, gbs, lr,
                              relu, binary)
    return total / n


def train_numba(data: Data, spec: Spec, epochs: int, seed: int) -> dict:
    """Hand-written Numba: one compiled call per epoch, every buffer allocated once per run."""
    X, y = data.X_train, data.y_train
    n, B = len(y), min(spec.batch_size, len(y))
    start = time.perf_counter()
    params = glorot_init(spec.layers, seed)
    Ws = tuple(W for W, _ in params)
    bs = tuple(b for _, b in params)
    rest = n % B or 1  # the remainder batch gets its own buffers (unused when B divides n)
    acts = tuple(np.empty((B, k), np.float32) for k in spec.layers)
    rest_acts = tuple(np.empty((rest, k), np.float32) for k in spec.layers)
    deltas = tuple(np.empty((B, k), np.float32) for k in spec.layers[1:])
    rest_deltas = tuple(np.empty((rest, k), np.float32) for k in spec.layers[1:])
    gWs = tuple(np.empty_like(W) for W in Ws)
    gbs = tuple(np.empty_like(b) for b in bs)
    order = np.arange(n)
    _nb_seed(seed)
    lr = np.float32(spec.lr)
    relu = spec.activation == "relu"
    loss = math.nan
    for _ in range(epochs):
        loss = _nb_epoch(X, y, order, Ws, bs, acts, deltas, rest_acts, rest_deltas, gWs, gbs,
                         lr, relu, spec.binary)
    seconds = time.perf_counter() - start
    accuracy = _accuracy(predict_numpy(params, data.X_test, spec), data.y_test)
    return _result(seconds, epochs, data, accuracy, loss,
                   "preallocated: activations, deltas and gradients allocated once per run, "
                   "batch gathered into a buffer, np.dot(..., out) into buffers, in-place "
                   "updates; one compiled call per epoch; single-threaded loops (no prange), "
                   "np.dot runs on SciPy's BLAS and its threads")


# ---------------------------------------------------------------------------------------------
# peer 3: scikit-learn


def train_sklearn(data: Data, spec: Spec, epochs: int, seed: int) -> dict:
    """``sklearn.neural_network.MLPClassifier`` with plain SGD for exactly ``epochs`` epochs."""
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise PeerUnavailable("not installed") from None

    def make(lr: float, epochs: int = 1) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=spec.hidden, activation=spec.activation, solver="sgd",
            learning_rate="constant", learning_rate_init=lr, momentum=0.0,
            nesterovs_momentum=False, alpha=0.0, batch_size=spec.batch_size, max_iter=epochs,
            shuffle=True, random_state=seed, tol=0.0, n_iter_no_change=epochs + 1,
            early_stopping=False)

    key = ("sklearn", spec, len(data.y_train), seed)
    if key not in _SAME_INIT:
        _SAME_INIT[key] = same_initial_parameters(make, data, spec, seed)
    clf = make(spec.lr, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached, as intended
        start = time.perf_counter()
        clf.fit(data.X_train, data.y_train)
        seconds = time.perf_counter() - start
    if clf.n_iter_ != epochs:
        raise RuntimeError(f"scikit-learn ran {clf.n_iter_} epochs, not {epochs}")
    dtypes = {a.dtype for a in clf.coefs_ + clf.intercepts_}
    if dtypes != {np.dtype(np.float32)}:
        raise RuntimeError(f"scikit-learn trained in {dtypes}, not float32")
    accuracy = float(clf.score(data.X_test, data.y_test))
    return _result(seconds, epochs, data, accuracy, clf.loss_,
                   "allocates: a new array per matrix product and activation, a fancy-indexed "
                   "copy of each batch; gradient buffers reused; float32 kept"
                   + _init_note(_SAME_INIT[key]))


# ---------------------------------------------------------------------------------------------
# peer 4: PyTorch eager


def train_torch(data: Data, spec: Spec, epochs: int, seed: int, threads: int = 0) -> dict:
    """Eager PyTorch: ``nn.Linear`` layers, ``torch.optim.SGD``, a Python loop of steps.

    ``threads`` > 0 sets ``torch.set_num_threads`` for the run (restored after it); 0 keeps
    PyTorch's default.
    """
    try:
        import torch
    except ImportError:
        raise PeerUnavailable("not installed") from None
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train_torch(torch, data, spec, epochs, seed)
    finally:
        torch.set_num_threads(previous)


def _train_torch(torch, data: Data, spec: Spec, epochs: int, seed: int) -> dict:
    from torch import nn

    n, B = len(data.y_train), spec.batch_size
    start = time.perf_counter()
    modules: list[nn.Module] = []
    for W, b in glorot_init(spec.layers, seed):
        linear = nn.Linear(*W.shape)  # its own init is overwritten below
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T))
            linear.bias.copy_(torch.from_numpy(b))
        modules += [linear, nn.Tanh() if spec.activation == "tanh" else nn.ReLU()]
    model = nn.Sequential(*modules[:-1])
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr)  # momentum 0, no decay
    X = torch.from_numpy(data.X_train)
    if spec.binary:
        y = torch.from_numpy(data.y_train.astype(np.float32))
        loss_fn = nn.BCEWithLogitsLoss()
    else:
        y = torch.from_numpy(data.y_train)
        loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    loss = math.nan
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for lo in range(0, n, B):
            idx = order[lo:lo + B]
            out = model(X[idx])
            batch_loss = loss_fn(out[:, 0] if spec.binary else out, y[idx])
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.item() * len(idx)
        loss = total / n
    seconds = time.perf_counter() - start
    with torch.inference_mode():
        z = model(torch.from_numpy(data.X_test))
        pred = (z[:, 0] > 0).long() if spec.binary else z.argmax(dim=1)
    accuracy = _accuracy(pred.numpy(), data.y_test)
    return _result(seconds, epochs, data, accuracy, loss,
                   "allocates: a new tensor per op and per gradient (CPU allocator), an "
                   "indexed copy of each batch; SGD updates in place; "
                   f"intra-op threads: {torch.get_num_threads()}")


# ---------------------------------------------------------------------------------------------
# peer 5: JAX

_JAX_EPOCHS: dict[tuple, Callable] = {}


def _jax_epoch(spec: Spec, n: int) -> Callable:
    """The jitted ``epoch(params, X, y, key) -> (params, mean loss)``, made once per shape."""
    cache_key = (spec, n)
    if cache_key in _JAX_EPOCHS:
        return _JAX_EPOCHS[cache_key]
    import jax
    import jax.numpy as jnp

    B = min(spec.batch_size, n)
    full, rest = divmod(n, B)
    act = jnp.tanh if spec.activation == "tanh" else jax.nn.relu
    lr = jnp.float32(spec.lr)

    def batch_loss(params, xb, yb):
        h = xb
        for W, b in params[:-1]:
            h = act(h @ W + b)
        W, b = params[-1]
        z = h @ W + b
        if spec.binary:
            z = z[:, 0]
            return jnp.mean(jax.nn.softplus(z) - yb.astype(z.dtype) * z)
        picked = jnp.take_along_axis(z, yb[:, None], axis=1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - picked)

    value_and_grad = jax.value_and_grad(batch_loss)

    def step(params, xb, yb):
        loss, grads = value_and_grad(params, xb, yb)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss

    def epoch(params, X, y, key):
        order = jax.random.permutation(key, n)

        def body(p, idx):
            return step(p, X[idx], y[idx])

        params, losses = jax.lax.scan(body, params, order[:full * B].reshape(full, B))
        total = jnp.sum(losses) * B
        if rest:  # the remainder batch: one more step, its own static shape
            idx = order[full * B:]
            params, loss = step(params, X[idx], y[idx])
            total = total + loss * rest
        return params, total / n

    _JAX_EPOCHS[cache_key] = jax.jit(epoch)
    return _JAX_EPOCHS[cache_key]


def train_jax(data: Data, spec: Spec, epochs: int, seed: int) -> dict:
    """JAX: one ``jax.jit`` call per epoch, ``lax.scan`` over batches inside it."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise PeerUnavailable("not installed") from None
    n = len(data.y_train)
    epoch = _jax_epoch(spec, n)
    start = time.perf_counter()
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in glorot_init(spec.layers, seed)]
    X, y = jnp.asarray(data.X_train), jnp.asarray(data.y_train.astype(np.int32))
    key = jax.random.key(seed)
    loss = None
    for e in range(epochs):
        params, loss = epoch(params, X, y, jax.random.fold_in(key, e))
    jax.block_until_ready((params, loss))
    seconds = time.perf_counter() - start
    trained = [(np.asarray(W), np.asarray(b)) for W, b in params]
    assert all(W.dtype == np.float32 for W, _ in trained)
    accuracy = _accuracy(predict_numpy(trained, data.X_test, spec), data.y_test)
    rest = n % min(spec.batch_size, n)
    return _result(seconds, epochs, data, accuracy, float(loss),
                   "XLA: one compiled call per epoch, buffers planned by XLA inside it; new "
                   "parameter arrays returned per epoch (no donation); remainder batch "
                   + (f"of {rest} handled by one extra step" if rest else "none (B divides n)"))


# ---------------------------------------------------------------------------------------------
# peer 6: symbp


def train_symbp(data: Data, spec: Spec, epochs: int, seed: int) -> dict:
    """``symbp.nn.MLPClassifier`` with the same settings as the scikit-learn peer."""
    try:
        from symbp.nn import MLPClassifier
    except ImportError:
        raise PeerUnavailable("not available (symbp.nn does not import)") from None

    def make(lr: float, epochs: int = 1) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=spec.hidden, activation=spec.activation, solver="sgd",
            learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
            batch_size=spec.batch_size, max_iter=epochs, shuffle=True, random_state=seed,
            tol=0.0, n_iter_no_change=10**9, dtype="float32")

    key = ("symbp", spec, len(data.y_train), seed)
    if key not in _SAME_INIT:
        _SAME_INIT[key] = same_initial_parameters(make, data, spec, seed)
    clf = make(spec.lr, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a convergence warning at max_iter, if it has one
        start = time.perf_counter()
        clf.fit(data.X_train, data.y_train)
        seconds = time.perf_counter() - start
    n_iter = getattr(clf, "n_iter_", epochs)
    if n_iter != epochs:
        raise RuntimeError(f"symbp ran {n_iter} epochs, not {epochs}")
    accuracy = float(clf.score(data.X_test, data.y_test))
    loss = getattr(clf, "loss_", None)
    if loss is None:
        loss = (getattr(clf, "loss_curve_", None) or [math.nan])[-1]
    return _result(seconds, epochs, data, accuracy, loss,
                   "whole epoch compiled by symbp into Numba code"
                   + _init_note(_SAME_INIT[key]))


PEERS: dict[str, Callable[[Data, Spec, int, int], dict]] = {
    "numpy": train_numpy, "numba": train_numba, "sklearn": train_sklearn,
    "torch": train_torch, "torch1": functools.partial(train_torch, threads=1),
    "jax": train_jax, "symbp": train_symbp,
}
PEER_LABELS = {
    "numpy": "NumPy, hand-written", "numba": "Numba, hand-written `@njit` epoch",
    "sklearn": "scikit-learn `MLPClassifier`", "torch": "PyTorch eager (default threads)",
    "torch1": "PyTorch eager, 1 thread",
    "jax": "JAX `jit` + `lax.scan` epoch", "symbp": "symbp `MLPClassifier`",
}


# ---------------------------------------------------------------------------------------------
# harness


@dataclass
class Outcome:
    """What one peer did at one size."""

    status: str = ""  # empty when it ran; else "not installed", "failed: ..."
    warmup_s: float = math.nan
    rates: list[float] = field(default_factory=list)  # one per round
    runs: list[int] = field(default_factory=list)  # training runs in each measurement
    accuracies: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    note: str = ""


def run_size(spec: Spec, data: Data, peers: Sequence[str], epochs: int, rounds: int,
             seed: int = 0, min_time: float = 0.25,
             log: Callable[[str], None] = lambda s: None) -> dict[str, Outcome]:
    """Warm every peer up, then measure each ``rounds`` times, interleaved.

    One measurement repeats complete training runs of ``epochs`` epochs (each from the same
    initial parameters, so each reaches the same accuracy) until at least ``min_time`` seconds
    of timed training have accumulated, and gives total samples / total timed seconds: a fast
    peer's 20 ms run is then not one scheduler hiccup away from a different number.
    """
    outcomes = {name: Outcome() for name in peers}
    live = []
    for name in peers:
        start = time.perf_counter()
        try:
            PEERS[name](data, spec, WARMUP_EPOCHS, seed)
        except PeerUnavailable as exc:
            outcomes[name].status = str(exc)
            continue
        except Exception as exc:  # report, never abort the other peers
            outcomes[name].status = f"failed: {type(exc).__name__}: {exc}"
            continue
        outcomes[name].warmup_s = time.perf_counter() - start
        live.append(name)
        log(f"  {spec.name}: {name} warmed up in {outcomes[name].warmup_s:.2f} s")
    for r in range(rounds):
        for name in live if r % 2 == 0 else reversed(live):
            outcome = outcomes[name]
            if outcome.status:
                continue
            seconds, runs = 0.0, 0
            try:
                while runs == 0 or seconds < min_time:
                    result = PEERS[name](data, spec, epochs, seed)
                    seconds += result["seconds"]
                    runs += 1
            except Exception as exc:
                outcome.status = f"failed: {type(exc).__name__}: {exc}"
                continue
            rate = runs * epochs * len(data.y_train) / seconds
            outcome.rates.append(rate)
            outcome.runs.append(runs)
            outcome.accuracies.append(result["test_accuracy"])
            outcome.losses.append(result["loss"])
            outcome.note = result["note"]
            log(f"  {spec.name} round {r + 1}: {name} {rate:,.0f} samples/s ({runs} runs), "
                f"accuracy {result['test_accuracy']:.4f}")
    return outcomes


def _fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:.1f} k"


def _fmt_range(values: Sequence[float], digits: int) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}" if round(lo, digits) == round(hi, digits) else \
        f"{lo:.{digits}f} to {hi:.{digits}f}"


def check(spec: Spec, outcomes: dict[str, Outcome], quick: bool) -> list[str]:
    """Problems: a peer that failed, or whose test accuracy is under the floor or far behind."""
    floor = spec.quick_min_accuracy if quick else spec.min_accuracy
    spread = QUICK_SPREAD if quick else SPREAD
    ran = {name: o for name, o in outcomes.items() if o.accuracies}
    problems = [f"{spec.name}: {name} {o.status}" for name, o in outcomes.items()
                if o.status.startswith("failed")]
    if not ran:
        return problems
    best = max(max(o.accuracies) for o in ran.values())
    for name, o in ran.items():
        worst = min(o.accuracies)
        if worst < floor:
            problems.append(f"{spec.name}: {name} test accuracy {worst:.4f} < floor {floor}")
        elif worst < best - spread:
            problems.append(f"{spec.name}: {name} test accuracy {worst:.4f} is far below the "
                            f"best peer's {best:.4f}")
    return problems


def table(spec: Spec, outcomes: dict[str, Outcome]) -> str:
    """The markdown table of one size."""
    ref = outcomes.get(REFERENCE)
    ref_name = REFERENCE if ref and ref.rates else "numba"
    ref_rate = max(outcomes[ref_name].rates) if outcomes.get(ref_name) and \
        outcomes[ref_name].rates else None
    ratio_head = "ratio to symbp" if ref_name == REFERENCE else \
        "ratio to hand Numba (symbp not available)"
    header = ["peer", "samples/s (best)", "median", ratio_head, "test accuracy",
              "last-epoch train loss", "memory handling"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for name, o in outcomes.items():
        if not o.rates:
            row = [PEER_LABELS[name], "—", "—", "—", "—", "—", o.status or "no timed run"]
        else:
            best = max(o.rates)
            ratio = f"{best / ref_rate:.2f}x" if ref_rate else "—"
            row = [PEER_LABELS[name], _fmt_rate(best), _fmt_rate(statistics.median(o.rates)),
                   ratio, _fmt_range(o.accuracies, 4), _fmt_range(o.losses, 4),
                   o.status or o.note]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def machine_info() -> list[str]:
    """Lines describing the machine, library versions and thread pools (call after the runs,
    so the pools of every library that ran are loaded)."""
    from importlib import metadata

    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    lines = [f"- {platform.platform()}, Python {platform.python_version()}, {cpus} CPUs "
             f"({usable} usable)"]
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), None)
        if model:
            lines.append(f"- CPU: {model}")
    except OSError:
        pass
    lines.append(f"- NumPy {np.__version__}; Numba {numba.__version__} "
                 f"(NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}; its `np.dot` calls "
                 "SciPy's BLAS)")
    for module, dist in (("scipy", "scipy"), ("sklearn", "scikit-learn"), ("torch", "torch"),
                         ("jax", "jax"), ("jaxlib", "jaxlib")):
        try:
            text = f"- {dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            lines.append(f"- {dist}: not installed")
            continue
        mod = sys.modules.get(module)
        if mod is None:
            text += " (not loaded in this run)"
        elif module == "torch":
            text += (f": {mod.get_num_threads()} intra-op threads, "
                     f"{mod.get_num_interop_threads()} inter-op threads")
        elif module == "jax":
            text += (f": devices {mod.devices()}, "
                     f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r} (XLA's CPU thread pool is not "
                     "queryable; it defaults to one thread per CPU)")
        lines.append(text)
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        lines.append("- thread pools: threadpoolctl not installed")
    else:
        for pool in threadpool_info():
            path = pool["filepath"]
            where = f"{os.path.basename(os.path.dirname(path))}/{os.path.basename(path)}"
            lines.append(f"- thread pool: {pool.get('internal_api')} "
                         f"{pool.get('version') or ''} ({where}): {pool['num_threads']} threads")
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "XLA_FLAGS")
           if k in os.environ}
    lines.append(f"- thread environment variables: {env or 'none set'}")
    return lines


def _cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall, busy CPU seconds of the whole machine, CPU seconds of this process), or None
    where ``/proc/stat`` is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.perf_counter(), (sum(fields[:8]) - idle) / tick, own.user + own.system


def other_load(start: tuple | None, end: tuple | None) -> float | None:
    """Share of all CPUs that other processes kept busy between two :func:`_cpu_snapshot`."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    wall = end[0] - start[0]
    others = (end[1] - start[1]) - (end[2] - start[2])
    return max(0.0, others / (wall * (os.cpu_count() or 1)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the training benchmark and print markdown.

    Parameters
    ----------
    argv : sequence of str, optional
        ``--quick``, ``--sizes``, ``--rounds``, ``--peers``; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 if every peer that ran passed the accuracy checks, 1 otherwise.
    """
    parser = argparse.ArgumentParser(
        prog="symbp bench --train",
        description="Samples per second of MLP training: symbp's MLPClassifier against NumPy, "
        "hand-written Numba, scikit-learn, PyTorch and JAX, in one process.")
    parser.add_argument("--quick", action="store_true",
                        help="fewer epochs and 2 rounds (well under a minute)")
    parser.add_argument("--sizes", default="tiny,small,medium",
                        help="comma-separated: tiny, small, medium (default all)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default 3, or 2 with --quick)")
    parser.add_argument("--peers", default=",".join(PEER_ORDER),
                        help=f"comma-separated subset of {','.join(PEER_ORDER)}")
    parser.add_argument("--seed", type=int, default=0, help="initialisation/shuffle seed")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for s in sizes:
        if s not in SPECS:
            parser.error(f"unknown size {s!r}; choose from {', '.join(SPECS)}")
    for p in peers:
        if p not in PEERS:
            parser.error(f"unknown peer {p!r}; choose from {', '.join(PEER_ORDER)}")
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 3)
    min_time = 0.1 if args.quick else 0.5
    if rounds < 1:
        parser.error("--rounds must be at least 1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sections, problems, ran = [], [], []
    before = _cpu_snapshot()
    for name in sizes:
        spec = SPECS[name]
        epochs = spec.quick_epochs if args.quick else spec.epochs
        try:
            data = make_data(spec)
        except PeerUnavailable as exc:
            sections.append(f"## {name}\n\nskipped: {exc}\n")
            continue
        log(f"{name}: {len(data.y_train)} train / {len(data.y_test)} test, {epochs} epochs")
        outcomes = run_size(spec, data, peers, epochs, rounds, args.seed, min_time, log)
        ran.append(name)
        problems += check(spec, outcomes, args.quick)
        n = len(data.y_train)
        B = spec.batch_size
        out = "1 sigmoid output, binary cross-entropy" if spec.binary else \
            f"softmax over {spec.layers[-1]}, cross-entropy"
        lines = [f"## {name}: {'-'.join(map(str, spec.layers))}, {spec.activation}, {out}\n",
                 f"{spec.data}; {n} train / {len(data.y_test)} test; batch "
                 f"{B} ({math.ceil(n / B)} steps per epoch, last batch "
                 f"{n - (math.ceil(n / B) - 1) * B}); lr {spec.lr}; {epochs} epochs per timed "
                 f"run; {rounds} round(s). Ratio = peer's best samples/s / the reference's best "
                 "(above 1: faster than the reference).\n",
                 table(spec, outcomes), "",
                 "Warm-up (one epoch, includes compilation): " + ", ".join(
                     f"{p} {o.warmup_s:.2f} s" for p, o in outcomes.items()
                     if not math.isnan(o.warmup_s)) + ".\n",
                 f"Training runs per measurement (repeated to >= {min_time} s): " + ", ".join(
                     f"{p} {'/'.join(map(str, o.runs))}" for p, o in outcomes.items()
                     if o.runs) + ".\n"]
        sections.append("\n".join(lines))

    print("# symbp bench_train: MLP training throughput, samples/s\n")
    print("float32, plain SGD, the same learning rate for every peer and the same Glorot-uniform "
          "initial parameters (checked for scikit-learn and symbp, whose notes say so); one "
          "timed run = initialisation + all epochs, compilation excluded by a warm-up run; test "
          "accuracy after each timed run. See the module docstring of `symbp.bench_train` for "
          "exactly what is timed.\n")
    info = machine_info()
    load = other_load(before, _cpu_snapshot())
    if load is not None:
        info.append(f"- other processes kept {load:.0%} of the CPUs busy during the run"
                    + (" — **the machine was shared: expect noisy, pessimistic numbers, "
                       "multi-threaded peers hit hardest**" if load > 0.1 else ""))
    print("\n".join(info) + "\n")
    print("\n".join(sections))
    if problems:
        print("**Check failed:**\n")
        print("\n".join(f"- {p}" for p in problems))
        return 1
    floors = ", ".join(
        f"{n} >= {SPECS[n].quick_min_accuracy if args.quick else SPECS[n].min_accuracy}"
        for n in ran)
    print(f"Check: every peer that ran reached the test-accuracy floor ({floors}) and stayed "
          f"within {QUICK_SPREAD if args.quick else SPREAD} of the best peer.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
