"""The same numbers as scikit-learn: from the same weights, with the same seed (so the same
batch order) and float64, a symbp fit and a scikit-learn fit report the same ``loss_curve_``.

scikit-learn's fit is started from given weights the only way it allows: a one-epoch fit
creates its state, then its weights and curves are replaced and ``warm_start=True`` goes on.
symbp's is started the supported way: ``coefs_``/``intercepts_`` set on an unfitted model
with ``warm_start=True`` (docs/mlp.md, "Starting from given weights").
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from symbp.nn import MLPClassifier, MLPRegressor

sklearn_nn = pytest.importorskip("sklearn.neural_network")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

N, F, H = 100, 5, 8
EPOCHS = 10
SOLVERS = {
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.1, momentum=0.9,
                         nesterovs_momentum=True),
    "sgd-momentum": dict(solver="sgd", learning_rate_init=0.1, momentum=0.9,
                         nesterovs_momentum=False),
    "adam": dict(solver="adam", learning_rate_init=0.01),
}
# one hidden logistic layer with the L2 penalty: the binary case shares test_nn's float64 XOR
# network; softmax and the regressor add one compiled structure each
COMMON = dict(hidden_layer_sizes=(H,), activation="logistic", alpha=1e-3, batch_size=32,
              max_iter=EPOCHS, tol=0.0, n_iter_no_change=EPOCHS + 1, shuffle=True,
              random_state=7)


def _data(kind: str):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(N, F))
    if kind == "regressor":
        y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=N)
        return X, y, 1
    if kind == "poisson":  # counts with a log-linear mean
        return X, rng.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1])).astype(float), 1
    classes = 2 if kind == "binary" else 3
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) if classes == 2 else \
        np.digitize(X[:, 0] + 0.3 * X[:, 2], [-0.5, 0.5])
    return X, y, 1 if classes == 2 else classes


def _weights(n_outputs: int):
    rng = np.random.RandomState(1)
    coefs, intercepts = [], []
    for fan_in, fan_out in ((F, H), (H, n_outputs)):
        bound = np.sqrt(2.0 / (fan_in + fan_out))  # scikit-learn's Glorot bound for logistic
        coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(rng.uniform(-bound, bound, fan_out))
    return coefs, intercepts


def _loss(kind: str) -> dict:
    """The loss parameter of a kind: scikit-learn's MLPRegressor(loss="poisson") (1.7+)."""
    return {"loss": "poisson"} if kind == "poisson" else {}


def _sklearn_from(reference, X, y, coefs, intercepts, sample_weight=None):
    """scikit-learn's fit of EPOCHS epochs from these weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.set_params(max_iter=1).fit(X, y)  # creates its state
    reference.coefs_ = [c.copy() for c in coefs]
    reference.intercepts_ = [b.copy() for b in intercepts]
    reference.loss_curve_, reference.best_loss_, reference.t_ = [], np.inf, 0
    reference._no_improvement_count = 0
    reference.set_params(max_iter=EPOCHS, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return reference.fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize(("solver", "weighted"),
                         [*((s, False) for s in SOLVERS), ("sgd-nesterov", True)])
@pytest.mark.parametrize("kind", ["binary", "softmax", "regressor", "poisson"])
def test_loss_curve_is_scikit_learns(kind, solver, weighted):
    X, y, n_outputs = _data(kind)
    sample_weight = np.random.RandomState(2).uniform(0.0, 2.0, N) if weighted else None
    coefs, intercepts = _weights(n_outputs)
    params = dict(COMMON, **SOLVERS[solver], **_loss(kind))
    if kind in ("regressor", "poisson"):
        ours, theirs = MLPRegressor, sklearn_nn.MLPRegressor
    else:
        ours, theirs = MLPClassifier, sklearn_nn.MLPClassifier
    reference = _sklearn_from(theirs(**params), X, y, coefs, intercepts, sample_weight)

    model = ours(**params, warm_start=True, dtype="float64")
    model.coefs_ = [c.copy() for c in coefs]  # the supported way to start from given weights
    model.intercepts_ = [b.copy() for b in intercepts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, sample_weight=sample_weight)

    assert model.n_iter_ == reference.n_iter_ == EPOCHS and model.t_ == reference.t_
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-6)
    for a, b in zip(model.coefs_ + model.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert model.best_loss_ == pytest.approx(reference.best_loss_, rel=1e-6)
    if kind in ("regressor", "poisson"):
        np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-6, atol=1e-9)
    else:
        np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    assert model.score(X, y, sample_weight=sample_weight) == pytest.approx(
        reference.score(X, y, sample_weight=sample_weight), rel=1e-9)


def test_another_seed_gives_other_numbers():
    """The comparison above is not vacuous: another seed (another batch order) moves the
    curve by far more than its tolerance."""
    X, y, n_outputs = _data("binary")
    coefs, intercepts = _weights(n_outputs)
    params = dict(COMMON, **SOLVERS["adam"])
    reference = _sklearn_from(sklearn_nn.MLPClassifier(**params), X, y, coefs, intercepts)
    model = MLPClassifier(**dict(params, random_state=8), warm_start=True, dtype="float64")
    model.coefs_, model.intercepts_ = [c.copy() for c in coefs], [b.copy() for b in intercepts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.loss_curve_[0] != pytest.approx(reference.loss_curve_[0], rel=1e-4)


@pytest.mark.parametrize("kind", ["binary", "softmax", "regressor", "poisson"])
def test_lbfgs_is_scikit_learns(kind):
    """lbfgs from the same weights: ``loss_`` and the weights after 10 iterations agree
    (scikit-learn keeps no loss_curve_ for lbfgs; the structures are the ones above)."""
    X, y, n_outputs = _data(kind)
    coefs, intercepts = _weights(n_outputs)
    params = dict(hidden_layer_sizes=(H,), activation="logistic", alpha=1e-3, solver="lbfgs",
                  max_iter=1, random_state=7, **_loss(kind))
    regression = kind in ("regressor", "poisson")
    ours, theirs = (MLPRegressor, sklearn_nn.MLPRegressor) if regression else \
        (MLPClassifier, sklearn_nn.MLPClassifier)
    reference = theirs(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(X, y)  # creates its state
        reference.coefs_ = [c.copy() for c in coefs]
        reference.intercepts_ = [b.copy() for b in intercepts]
        reference.set_params(max_iter=EPOCHS, warm_start=True).fit(X, y)
        model = ours(**dict(params, max_iter=EPOCHS), warm_start=True, dtype="float64")
        model.coefs_ = [c.copy() for c in coefs]
        model.intercepts_ = [b.copy() for b in intercepts]
        model.fit(X, y)
    assert model.n_iter_ == reference.n_iter_ == EPOCHS
    assert model.loss_ == pytest.approx(reference.loss_, rel=1e-6)
    assert not np.allclose(model.coefs_[0], coefs[0])  # the weights did move
    for a, b in zip(model.coefs_ + model.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ["binary", "softmax", "regressor", "poisson"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fitted_attributes_are_scikit_learns(kind, solver):
    """``loss_``, ``n_layers_``, ``n_outputs_`` and ``out_activation_`` as scikit-learn sets
    them, from the same weights (the structures above)."""
    X, y, n_outputs = _data(kind)
    coefs, intercepts = _weights(n_outputs)
    params = dict(COMMON, **SOLVERS["adam"], **_loss(kind)) if solver == "adam" else \
        dict(hidden_layer_sizes=(H,), activation="logistic", alpha=1e-3, solver="lbfgs",
             max_iter=EPOCHS, random_state=7, **_loss(kind))
    regression = kind in ("regressor", "poisson")
    ours, theirs = (MLPRegressor, sklearn_nn.MLPRegressor) if regression else \
        (MLPClassifier, sklearn_nn.MLPClassifier)
    reference = _sklearn_from(theirs(**params), X, y, coefs, intercepts)
    model = ours(**params, warm_start=True, dtype="float64")
    model.coefs_, model.intercepts_ = [c.copy() for c in coefs], [b.copy() for b in intercepts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert (model.n_layers_, model.n_outputs_, model.out_activation_) == \
        (reference.n_layers_, reference.n_outputs_, reference.out_activation_)
    assert model.loss_ == pytest.approx(reference.loss_, rel=1e-6)
    assert not hasattr(ours(), "n_layers_") and not hasattr(ours(), "out_activation_")


@pytest.mark.parametrize("kind", ["binary", "softmax", "regressor"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_fit_from_the_same_seed_is_scikit_learns(kind, weighted):
    """No weights given: the same random_state draws the same initial weights (logistic:
    Glorot, scikit-learn's order of draws), the same early-stopping split (scikit-learn's
    train_test_split on the fit's RandomState after the weights, stratified for two classes
    only) and the same batches, so the validation scores, loss curve and weights agree (the
    structures above)."""
    X, y, _ = _data(kind)
    sample_weight = np.random.RandomState(2).uniform(0.0, 2.0, N) if weighted else None
    params = dict(COMMON, **SOLVERS["adam"], early_stopping=True, validation_fraction=0.2)
    ours, theirs = (MLPRegressor, sklearn_nn.MLPRegressor) if kind == "regressor" else \
        (MLPClassifier, sklearn_nn.MLPClassifier)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = theirs(**params).fit(X, y, sample_weight=sample_weight)
        model = ours(**params, dtype="float64").fit(X, y, sample_weight=sample_weight)
    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(model.validation_scores_, reference.validation_scores_,
                               rtol=1e-6)
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-6)
    for a, b in zip(model.coefs_ + model.intercepts_, reference.coefs_ + reference.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
