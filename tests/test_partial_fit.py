"""partial_fit: one epoch per call, continuing the weights and the optimizer's state, as
scikit-learn's ``_fit(..., incremental=True)``. The networks are test_nn.py's structures (xor:
one logistic layer, sigmoid cross-entropy; the regressor: one tanh layer), so nothing new
compiles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from symbp.errors import SymbpError
from symbp.nn import MLPClassifier, MLPRegressor

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])
XOR = dict(hidden_layer_sizes=(4,), activation="logistic", learning_rate_init=0.5,
           batch_size=2, shuffle=False, random_state=0, dtype="float32")


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fits_continue_the_optimizer_as_one_fit(solver):
    """Three partial_fit calls are the three epochs of one fit: the same weights bit for bit,
    which holds only if sgd's velocities / adam's moments and step carry over between calls."""
    fitted = MLPClassifier(**XOR, solver=solver, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted.fit(XOR_X, XOR_Y)
    partial = MLPClassifier(**XOR, solver=solver, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # partial_fit never warns of convergence
        for _ in range(3):
            partial.partial_fit(XOR_X, XOR_Y, classes=[0, 1])
    for a, b in zip(fitted.coefs_ + fitted.intercepts_, partial.coefs_ + partial.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert partial.loss_curve_ == fitted.loss_curve_
    assert partial.n_iter_ == 1 and partial.t_ == 12 == fitted.t_
    assert partial.best_loss_ == min(partial.loss_curve_)


def test_a_fresh_optimizer_differs():
    """The same three epochs with the state dropped between calls give other weights (so the
    test above does test the carried state)."""
    fitted = MLPClassifier(**XOR, solver="sgd", max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted.fit(XOR_X, XOR_Y)
    partial = MLPClassifier(**XOR, solver="sgd")
    for _ in range(3):
        partial.partial_fit(XOR_X, XOR_Y, classes=[0, 1])
        del partial._optimizer
    assert not np.array_equal(fitted.coefs_[0], partial.coefs_[0])


def test_classes_rules():
    model = MLPClassifier(**XOR, solver="sgd")
    with pytest.raises(SymbpError, match="classes must be passed on the first call"):
        model.partial_fit(XOR_X, XOR_Y)
    assert not hasattr(model, "coefs_")
    # y need not hold every class: a batch of one class
    model.partial_fit(XOR_X[:2], np.array(["b", "b"]), classes=["b", "a", "b"])
    assert model.classes_.tolist() == ["a", "b"]
    model.partial_fit(XOR_X, np.array(["a", "b", "b", "a"]))
    with pytest.raises(SymbpError, match="is not the same as on last call to partial_fit"):
        model.partial_fit(XOR_X, np.array(["a", "b", "b", "a"]), classes=["a", "b", "c"])
    with pytest.raises(SymbpError, match=r"`y` has classes not in `self\.classes_`"):
        model.partial_fit(XOR_X, np.array(["a", "c", "b", "d"]))
    with pytest.raises(SymbpError, match="X has 3 features, but MLPClassifier is expecting 2"):
        model.partial_fit(np.ones((4, 3)), np.array(["a", "b", "b", "a"]))
    assert model.predict(XOR_X).shape == (4,)


def test_partial_fit_after_fit_continues_its_optimizer():
    model = MLPClassifier(**XOR, solver="adam", max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(XOR_X, XOR_Y)
    assert model._optimizer["step"] == 4
    model.partial_fit(XOR_X, XOR_Y)
    assert model._optimizer["step"] == 6 and len(model.loss_curve_) == 3


def test_not_with_lbfgs_or_early_stopping():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(), "partial_fit") and hasattr(MLPRegressor(), "partial_fit")
    with pytest.raises(AttributeError, match="only available for stochastic optimizers"):
        MLPClassifier(solver="lbfgs").partial_fit(XOR_X, XOR_Y, classes=[0, 1])
    with pytest.raises(SymbpError, match="partial_fit does not support early_stopping=True"):
        MLPRegressor(early_stopping=True).partial_fit(XOR_X, XOR_Y)


def test_regressor_partial_fit():
    X = np.linspace(-1, 1, 200).reshape(-1, 1)
    y = np.sin(3 * X[:, 0])
    model = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", learning_rate_init=0.01,
                         batch_size=20, random_state=0, dtype="float32")
    for _ in range(300):
        model.partial_fit(X, y)
    assert model.score(X, y) > 0.95
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 300 and model.t_ == 300 * 200
