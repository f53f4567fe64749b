"""solver="lbfgs": SciPy's L-BFGS-B over the compiled full-batch value and gradient (the
network's ``run`` with the solver code NONE: no extra compiled entry point). One structure,
float64 (for the central differences): one tanh layer, binary, with a penalty. The comparison
with scikit-learn's lbfgs is in test_sklearn_numbers.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from symbp.errors import SymbpError
from symbp.nn import ConvergenceWarning, MLPClassifier
from symbp.nn.solvers import FullBatch

RNG = np.random.RandomState(0)
X = RNG.normal(size=(60, 2))
Y = (X[:, 0] * X[:, 1] + 0.3 * RNG.normal(size=60) > 0).astype(int)
NET = dict(hidden_layer_sizes=(3,), activation="tanh", solver="lbfgs", alpha=0.1,
           dtype="float64", random_state=0)


def fitted(**params) -> MLPClassifier:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(**{**NET, **params}).fit(X, Y)


@pytest.fixture(scope="module")
def model():
    return fitted(max_iter=5)


def test_full_batch_gradient_is_central_differences(model):
    T = model._encoded(Y, len(Y), np.float64, True)[0]
    f = FullBatch(model, model._network(), X, T, np.ones(len(Y)), np.float64)
    point = f.theta.copy() + 0.1 * RNG.normal(size=f.theta.shape)
    loss, grad = f(point)
    numeric = np.empty_like(point)
    for k in range(point.size):
        up, down = point.copy(), point.copy()
        up[k] += 1e-6
        down[k] -= 1e-6
        numeric[k] = (f(up)[0] - f(down)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    # the loss is scikit-learn's: mean log-loss plus alpha/2 * sum of squared weights / n
    f(point)
    W1, b1, W2, b2 = (p.copy() for p in f.params)
    p = 1 / (1 + np.exp(-(np.tanh(X @ W1 + b1) @ W2 + b2)[:, 0]))
    expected = -np.mean(Y * np.log(p) + (1 - Y) * np.log(1 - p)) + \
        0.05 * ((W1**2).sum() + (W2**2).sum()) / len(Y)
    assert loss == pytest.approx(expected, rel=1e-12)


def test_sample_weights_are_repeated_samples(model):
    """Integer weights give the loss and gradient of the data with rows repeated (the loss is
    the weighted mean, the penalty divided by the sum of weights)."""
    T = model._encoded(Y, len(Y), np.float64, True)[0]
    weights = RNG.randint(0, 3, len(Y)).astype(np.float64)
    rows = np.repeat(np.arange(len(Y)), weights.astype(int))
    weighted = FullBatch(model, model._network(), X, T, weights, np.float64)
    repeated = FullBatch(model, model._network(), X[rows], T[rows], np.ones(len(rows)),
                         np.float64)
    point = weighted.theta.copy()
    (a, da), (b, db) = weighted(point), repeated(point)
    assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(da, db, rtol=1e-10, atol=1e-14)
    with pytest.raises(SymbpError, match="at least one non-zero"):
        MLPClassifier(**NET).fit(X, Y, sample_weight=np.zeros(len(Y)))


def test_attributes_and_convergence_warning(model):
    with pytest.warns(ConvergenceWarning, match=r"lbfgs failed to converge after 2 iteration"):
        short = MLPClassifier(**NET, max_iter=2).fit(X, Y)
    assert short.n_iter_ == 2 and len(short.loss_curve_) == 2
    assert short.loss_ == short.loss_curve_[-1] == short.best_loss_
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        done = MLPClassifier(**NET, max_iter=500, tol=1e-3).fit(X, Y)
    assert done.n_iter_ < 500 and done.loss_ < short.loss_
    assert done.score(X, Y) > 0.8
    with pytest.warns(ConvergenceWarning, match="status=1"):  # max_fun: the evaluations
        MLPClassifier(**NET, max_fun=3).fit(X, Y)


def test_a_nan_loss_stops_with_the_last_finite_weights(model):
    bad = MLPClassifier(**NET, warm_start=True)
    bad.coefs_ = [c.copy() for c in model.coefs_]
    bad.intercepts_ = [np.full(3, 10.0), model.intercepts_[1].copy()]
    bad.coefs_[1][:] = 1e308  # every hidden unit near 1: the output overflows to inf
    start = [c.copy() for c in bad.coefs_]
    with pytest.raises(SymbpError, match="the loss became NaN or infinite at lbfgs evaluation 1"):
        bad.fit(X, Y)
    for a, b in zip(start, bad.coefs_):
        np.testing.assert_array_equal(a, b)

