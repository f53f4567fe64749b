"""Edge cases a demanding scikit-learn user tries: sample weights, partial_fit, sparse data,
multilabel targets, warm starts from edited weights, lbfgs on tiny budgets, scikit-learn's
model-selection tools, save/load of multilabel models and column names.

Every fit uses one of three compiled structures (one hidden relu layer with the L2 penalty):
the regressor in float64 and float32 and the sigmoid classifier (binary and multilabel) in
float64, so the file adds three Numba compilations."""

from __future__ import annotations

import copy
import json
import pickle
import warnings

import numpy as np
import pytest

import symbp
from symbp.errors import DataError, DataTypeError, SymbpError
from symbp.nn import MLPClassifier, MLPRegressor, checks

sklearn = pytest.importorskip("sklearn")
import scipy.sparse as sp  # noqa: E402  (scikit-learn needs SciPy)
from sklearn import neural_network as sk  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

NET = dict(hidden_layer_sizes=(6,), activation="relu", max_iter=4, random_state=0)
RNG = np.random.RandomState(0)
X = RNG.normal(size=(40, 3))
Y_REG = X[:, 0] - 0.5 * X[:, 1]
Y_BIN = (X[:, 0] + X[:, 2] > 0).astype(int)
Y_MULTI = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0], axis=1).astype(int)


def fit(model, X_, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X_, y, **kw)


def same_weights(a, b, rtol=0.0):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=0.0)


@pytest.fixture(scope="module")
def regressor():
    return fit(MLPRegressor(**NET), X, Y_REG)


@pytest.fixture(scope="module")
def multilabel():
    return fit(MLPClassifier(**NET), X, Y_MULTI.astype(np.uint8))


# -- sample weights -------------------------------------------------------------------------

@pytest.mark.parametrize("weights", [[2] * 40, np.full(40, 2, np.int64), 2.0, np.int32(2)])
def test_lists_integers_and_scalars_are_the_float_weights(regressor, weights):
    reference = fit(MLPRegressor(**NET), X, Y_REG, sample_weight=np.full(40, 2.0))
    same_weights(fit(MLPRegressor(**NET), X, Y_REG, sample_weight=weights), reference)


def test_huge_weights_scaled_with_alpha_train_the_same_network():
    """Only the weights' ratios and alpha / (sum of weights) matter: 1e300 times the weights
    and alpha train the network of the unit weights (each batch's weights are normalized
    before they multiply anything, so nothing overflows)."""
    weights = np.random.RandomState(1).uniform(0.5, 2.0, 40)
    plain = fit(MLPRegressor(**NET, batch_size=10), X, Y_REG, sample_weight=weights)
    huge = fit(MLPRegressor(**NET, batch_size=10, alpha=1e-4 * 1e300), X, Y_REG,
               sample_weight=weights * 1e300)
    same_weights(huge, plain, rtol=1e-9)
    np.testing.assert_allclose(huge.loss_curve_, plain.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_weights_whose_sum_overflows_are_refused(solver):
    """30 weights of 1e307 sum to infinity: every normalized weight would be 0 and lbfgs would
    stop at once with a loss of 0 (it did, silently)."""
    model = MLPRegressor(**NET, solver=solver)
    with pytest.raises(DataError, match="sample_weight sums to more than float64 can hold"):
        model.fit(X, Y_REG, sample_weight=np.full(40, 1e307))
    assert not hasattr(model, "coefs_")


def test_a_batch_of_zero_weights_is_skipped():
    """scikit-learn stops with ZeroDivisionError; symbp skips the batch: the same weights as
    training on the other rows alone, and its loss counts as 0 in the epoch's average."""
    weights = np.r_[np.zeros(10), np.ones(30)]
    params = dict(NET, solver="sgd", batch_size=10, shuffle=False, max_iter=3)
    with pytest.raises(ZeroDivisionError):
        fit(sk.MLPRegressor(**params), X, Y_REG, sample_weight=weights)
    skipped = fit(MLPRegressor(**params), X, Y_REG, sample_weight=weights)
    rest = fit(MLPRegressor(**params), X[10:], Y_REG[10:])
    same_weights(skipped, rest)
    np.testing.assert_allclose(skipped.loss_curve_, np.multiply(rest.loss_curve_, 30 / 40),
                               rtol=1e-12)


@pytest.mark.parametrize(("weights", "error", "message"), [
    (np.ones((40, 1)), DataError, "Sample weights must be 1D array or scalar, got 2D array"),
    (np.ones(39), DataError, r"sample_weight.shape == \(39,\), expected \(40,\)"),
    (np.r_[np.inf, np.ones(39)], DataError, "sample_weight holds 1 NaN or infinite"),
    (-1.0, DataError, "Negative values in data passed to sample_weight"),
    (0.0, DataError, "Sample weights must contain at least one non-zero number"),
    (np.ones(40, complex), DataError, "Complex data not supported"),
    (np.array([object()] * 40), DataTypeError, "sample_weight must hold numbers")])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_weights_are_value_errors_before_the_model_changes(regressor, weights, error,
                                                                message, method):
    model = copy.deepcopy(regressor).set_params(solver="sgd")
    before = model.predict(X)
    with pytest.raises(error, match=message) as info:
        getattr(model, method)(X, Y_REG, sample_weight=weights)
    assert isinstance(info.value, ValueError)
    np.testing.assert_array_equal(model.predict(X), before)


# -- partial_fit ----------------------------------------------------------------------------

def test_partial_fit_multilabel_as_scikit_learn():
    """scikit-learn's partial_fit takes an indicator matrix with classes=range(n_labels)."""
    model = MLPClassifier(**NET, solver="adam")
    with pytest.raises(DataError, match="classes must be passed on the first call"):
        model.partial_fit(X, Y_MULTI)
    with pytest.raises(DataError, match=r"does not fit a multilabel y of 3 labels"):
        model.partial_fit(X, Y_MULTI, classes=[0, 1])
    model.partial_fit(X, Y_MULTI, classes=[0, 1, 2])
    model.partial_fit(X, Y_MULTI)
    assert model.classes_.tolist() == [0, 1, 2] and model.n_iter_ == 1
    assert len(model.loss_curve_) == 2 and model.predict(X).shape == (40, 3)
    with pytest.raises(DataError, match="partial_fit: the model was fitted on multilabel"):
        model.partial_fit(X, Y_BIN)
    binary = MLPClassifier(**NET, solver="adam").partial_fit(X, Y_BIN, classes=[0, 1])
    with pytest.raises(DataError, match="partial_fit: y is a multilabel indicator matrix"):
        binary.partial_fit(X, Y_MULTI[:, :2], classes=[0, 1])


def test_warm_start_does_not_switch_between_multilabel_and_labels(multilabel):
    model = copy.deepcopy(multilabel).set_params(warm_start=True)
    with pytest.raises(DataError, match="warm_start: the model was fitted on multilabel"):
        model.fit(X, Y_BIN)
    with pytest.raises(DataError, match="warm_start: y has 2 labels, the fitted model 3"):
        model.fit(X, Y_MULTI[:, :2])
    binary = fit(MLPClassifier(**NET, warm_start=True), X, Y_BIN)
    with pytest.raises(DataError, match="warm_start can only be used where `y` has the same "
                                        r"classes as in the previous call to fit"):
        binary.fit(X, Y_BIN + 1)


def test_partial_fit_names_itself_when_the_outputs_change():
    model = MLPRegressor(**NET, solver="sgd").partial_fit(X, np.c_[Y_REG, Y_REG])
    with pytest.raises(DataError, match=r"partial_fit: X has 3 features and y needs 1 outputs"
                                        r".*call fit to train a new network"):
        model.partial_fit(X, Y_REG)


def test_partial_fit_keeps_the_weights_dtype_and_continues_an_lbfgs_fit():
    model = fit(MLPRegressor(**NET, solver="lbfgs"), X, Y_REG)
    assert not hasattr(model, "partial_fit")
    model.set_params(solver="adam").partial_fit(X.astype(np.float32), Y_REG)
    assert model.coefs_[0].dtype == np.float64  # as scikit-learn: the weights' dtype rules
    assert model.n_iter_ == 1 and model._optimizer["step"] == 1


def test_string_labels_in_an_object_array_are_a_string_array_as_scikit_learn():
    """pandas' string columns arrive as object arrays: classes_ and predict were object
    arrays; scikit-learn's are NumPy strings."""
    y = np.array(["no", "yes"], dtype=object)[Y_BIN]
    reference = fit(sk.MLPClassifier(**NET), X, y)
    model = fit(MLPClassifier(**NET), X, y)
    assert model.classes_.dtype == reference.classes_.dtype and model.classes_.dtype.kind == "U"
    assert model.predict(X).dtype == reference.predict(X).dtype
    partial = MLPClassifier(**NET, solver="sgd").partial_fit(
        X, y, classes=np.array(["yes", "no"], dtype=object))
    assert partial.classes_.dtype.kind == "U"
    partial.partial_fit(X, y.astype(str))


@pytest.mark.parametrize("gap", [None, np.nan, "NA"])
def test_missing_labels_are_named(gap):
    """A None, NaN or pandas.NA among string labels was 'y mixes label types that cannot be
    ordered' (scikit-learn: a TypeError from sorting, or 'Input contains NaN')."""
    y = np.array(["a", "b"] * 20, dtype=object)
    if gap == "NA":
        pd = pytest.importorskip("pandas")
        gap = pd.NA
    y[7] = gap
    with pytest.raises(DataError, match=r"y holds 1 missing label\(s\) \(None, NaN or "
                                        r"pandas.NA\), the first at row 7"):
        MLPClassifier(**NET).fit(X, y)


# -- sparse X and y -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
def test_sparse_X_trains_and_predicts_as_dense(regressor, kind):
    X_sparse = kind(np.where(np.abs(X) > 0.5, X, 0.0))
    dense = fit(MLPRegressor(**NET), X_sparse.toarray(), Y_REG)
    model = fit(MLPRegressor(**NET), X_sparse, Y_REG)
    same_weights(model, dense)
    np.testing.assert_array_equal(model.predict(X_sparse), dense.predict(X_sparse.toarray()))


def test_sparse_limit_is_checked_in_fit_and_predict(regressor, monkeypatch):
    monkeypatch.setattr(checks, "SPARSE_DENSE_LIMIT", 40 * 3 * 8)  # X exactly
    fit(MLPRegressor(**NET), sp.csr_matrix(X), Y_REG)
    over = sp.csr_matrix(np.r_[X, X[:1]])
    message = r"sparse X of shape \(41, 3\) would take 984 bytes .* \(limit 960 bytes"
    with pytest.raises(DataError, match=message):
        MLPRegressor(**NET).fit(over, np.r_[Y_REG, 0.0])
    with pytest.raises(DataError, match=message):
        regressor.predict(over)
    monkeypatch.setattr(checks, "SPARSE_DENSE_LIMIT", 40 * 3 * 8 - 1)  # a multilabel y too
    with pytest.raises(DataError, match=r"sparse y of shape \(40, 3\) would take 960 bytes as "
                                        r"the dense array training needs \(limit 959 bytes"):
        MLPClassifier(**NET).fit(X[:, :1], sp.csr_matrix(Y_MULTI))


def test_sparse_X_of_other_features_is_refused_before_it_is_made_dense(regressor):
    """A sparse X of a billion columns was refused for the memory its dense copy would take,
    not for having other features than the model."""
    wide = sp.csr_matrix((2, 10**9))
    with pytest.raises(DataError, match="X has 1000000000 features, but MLPRegressor is "
                                        "expecting 3 features as input"):
        regressor.predict(wide)


def test_sparse_y(multilabel):
    with pytest.raises(DataTypeError, match="Sparse data was passed for y, but dense data is "
                                            "required"):
        MLPRegressor(**NET).fit(X, sp.csr_matrix(Y_REG[:, None]))
    model = fit(MLPClassifier(**NET), X, sp.csr_matrix(Y_MULTI.astype(np.uint8)))
    same_weights(model, multilabel)


# -- multilabel -----------------------------------------------------------------------------

def test_multilabel_early_stopping_is_not_stratified():
    """scikit-learn does not stratify a multilabel split; symbp did, on each row's first
    label (argmax). The split is scikit-learn's own (test_sklearn_numbers compares whole fits
    with early stopping)."""
    from sklearn.model_selection import train_test_split
    model = MLPClassifier(**NET, early_stopping=True)
    T, weights = Y_MULTI.astype(float), np.ones(40)
    (X_train, _, _), (X_val, _, _) = model._split(X, T, weights, np.random.RandomState(3))
    train, test = train_test_split(np.arange(40), test_size=0.1,
                                   random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(X_val, X[test])
    np.testing.assert_array_equal(X_train, X[train])
    fitted = fit(model, X, Y_MULTI)
    assert len(fitted.validation_scores_) == fitted.n_iter_
    assert all(0.0 <= s <= 1.0 for s in fitted.validation_scores_)
    assert fitted.best_loss_ is None


def test_without_scikit_learn_the_split_follows_the_same_rules(monkeypatch):
    """symbp.nn.split stands in for scikit-learn's train_test_split: two classes keep their
    shares in both parts, more classes are not stratified, and the parts cover every row."""
    import sys
    monkeypatch.setitem(sys.modules, "sklearn.model_selection", None)  # its import fails
    model = MLPClassifier(**NET, early_stopping=True, validation_fraction=0.25)
    T = Y_BIN.astype(float)[:, None]
    (X_train, T_train, _), (X_val, T_val, _) = model._split(X, T, np.ones(40),
                                                            np.random.RandomState(0), True)
    assert sorted(np.r_[_rows(X_train), _rows(X_val)]) == list(range(40))
    share = Y_BIN.mean()
    assert abs(T_val.mean() - share) <= 1 / len(T_val) and abs(T_train.mean() - share) < 0.05
    (_, _, _), (X_val, _, _) = model._split(X, T, np.ones(40), np.random.RandomState(0))
    np.testing.assert_array_equal(X_val, X[np.random.RandomState(0).permutation(40)[:10]])


@pytest.mark.parametrize("y", [Y_REG[:10], Y_MULTI[:10]])
def test_a_validation_set_of_one_sample_is_refused_as_scikit_learn(y):
    model = (MLPRegressor if y.ndim == 1 else MLPClassifier)(**NET, early_stopping=True)
    reference = (sk.MLPRegressor if y.ndim == 1 else sk.MLPClassifier)(**NET,
                                                                       early_stopping=True)
    message = "The validation set is too small. Increase 'validation_fraction'"
    with pytest.raises(ValueError, match=message):
        reference.fit(X[:10], y)
    with pytest.raises(DataError, match="leaves 1 to validate on: " + message):
        model.fit(X[:10], y)


def test_multilabel_scores_and_probabilities(multilabel):
    p = multilabel.predict_proba(X)
    np.testing.assert_allclose(np.exp(multilabel.predict_log_proba(X)), p, rtol=1e-12)
    predicted = multilabel.predict(X)
    assert predicted.dtype == np.uint8 and ((p > 0.5) == (predicted == 1)).all()
    weights = np.arange(40.0)
    subset = (predicted == Y_MULTI).all(axis=1)
    assert multilabel.score(X, Y_MULTI, sample_weight=weights) == pytest.approx(
        np.average(subset, weights=weights))


def test_the_stand_in_scores_as_scikit_learn(multilabel, regressor):
    """Without scikit-learn, ``score`` is symbp's stand-in: it gave a multilabel model the
    share of right labels (not of right rows) and failed on sample weights, and a constant y
    predicted exactly an R² of 0 (scikit-learn: 1)."""
    from symbp.nn import _estimator
    weights = np.arange(40.0)
    for args in [(X, Y_MULTI), (X, Y_MULTI, weights)]:
        assert _estimator.ClassifierMixin.score(multilabel, *args) == pytest.approx(
            multilabel.score(*args), rel=1e-12)
    for args in [(X, Y_REG), (X, Y_REG, weights)]:
        assert _estimator.RegressorMixin.score(regressor, *args) == pytest.approx(
            regressor.score(*args), rel=1e-12)

    def stand_in(base):
        class Model(base):
            def __init__(self, alpha=1.0, beta=2):
                self.alpha, self.beta = alpha, beta
        return Model(alpha=0.5)
    for base in (_estimator.BaseEstimator, sklearn.base.BaseEstimator):
        with pytest.raises(ValueError, match=r"Invalid parameter 'foo' for estimator "
                                             r"Model\(alpha=0.5\)\. Valid parameters are: "
                                             r"\['alpha', 'beta'\]"):
            stand_in(base).set_params(foo=1)

    class Constant:
        def predict(self, X_):
            return np.full(len(X_), 2.0)
    for y in (np.full(40, 2.0), np.full(40, 3.0)):
        assert _estimator.RegressorMixin.score(Constant(), X, y) == \
            sklearn.base.RegressorMixin.score(Constant(), X, y)


# -- warm start from edited weights ---------------------------------------------------------

@pytest.mark.parametrize(("edit", "error", "message"), [
    (lambda m: m.coefs_.__setitem__(0, np.full((3, 6), np.nan)), DataError,
     r"warm_start: coefs_\[0\] holds NaN or infinite values"),
    (lambda m: m.intercepts_.__setitem__(1, np.full(1, np.inf)), DataError,
     r"warm_start: intercepts_\[1\] holds NaN or infinite values"),
    (lambda m: m.coefs_.__setitem__(0, np.ones((3, 6), complex)), DataError,
     r"warm_start: coefs_\[0\] holds complex numbers"),
    (lambda m: m.coefs_.__setitem__(0, np.full((3, 6), "a")), DataError,
     r"warm_start: coefs_\[0\] must hold numbers"),
    (lambda m: setattr(m, "coefs_", None), DataError,
     "warm_start: coefs_ must be a non-empty list of arrays, one per layer, got NoneType"),
    (lambda m: m.coefs_.__setitem__(0, np.zeros((6, 3))), DataError,
     r"warm_start: X has 3 features and y needs 1 outputs, but the fitted layers are "
     r"\[\(6, 3\), \(6, 1\)\]")])
def test_warm_start_refuses_weights_it_cannot_start_from(regressor, edit, error, message):
    """Before: NaN weights failed as 'the loss became NaN ... keeps the last finite weights',
    complex weights lost their imaginary part silently, strings and None raised NumPy's and
    Python's own errors."""
    model = copy.deepcopy(regressor).set_params(warm_start=True)
    edit(model)
    n_iter = model.n_iter_
    with pytest.raises(error, match=message):
        model.fit(X, Y_REG)
    assert model.n_iter_ == n_iter


def test_warm_start_on_other_features_says_so_as_scikit_learn(regressor):
    model = copy.deepcopy(regressor).set_params(warm_start=True)
    with pytest.raises(DataError, match="X has 6 features, but MLPRegressor is expecting 3 "
                                        "features as input"):
        model.fit(np.c_[X, X], Y_REG)


def test_predict_leaves_edited_weights_as_they_are(regressor):
    """predict cast every layer to coefs_[0]'s dtype and wrote the casts back: one float32
    layer set by hand made the whole model float32 (and a tuple of coefs_ a list)."""
    model = copy.deepcopy(regressor)
    model.coefs_ = (model.coefs_[0].astype(np.float32), model.coefs_[1])
    model.predict(X)
    assert isinstance(model.coefs_, tuple)
    assert [W.dtype for W in model.coefs_] == [np.float32, np.float64]
    assert model.intercepts_[0].dtype == np.float64


def test_warm_start_takes_weights_as_tuples_and_integers(regressor):
    model = copy.deepcopy(regressor).set_params(warm_start=True)
    model.coefs_ = tuple(np.round(W * 10).astype(np.int64) for W in model.coefs_)
    fit(model, X, Y_REG)
    assert isinstance(model.coefs_, list) and model.coefs_[0].dtype == np.float64


# -- lbfgs on tiny budgets and tiny data ----------------------------------------------------

def _sklearn_lbfgs_from(coefs, intercepts, **params):
    """scikit-learn's lbfgs fit from the given weights (its state made by a first fit)."""
    reference = sk.MLPRegressor(**dict(NET, solver="lbfgs", max_iter=1))
    fit(reference, X, Y_REG)
    reference.coefs_ = [c.copy() for c in coefs]
    reference.intercepts_ = [b.copy() for b in intercepts]
    reference.set_params(**{"warm_start": True, "max_iter": NET["max_iter"], **params})
    return fit(reference, X, Y_REG)


@pytest.mark.parametrize("budget", [dict(max_fun=1), dict(max_fun=3), dict(max_iter=1)])
def test_lbfgs_budgets_as_scikit_learn(regressor, budget):
    """From the same weights, max_fun=1, 3 and max_iter=1 stop where scikit-learn's do, with
    the same loss_ and n_iter_ and a ConvergenceWarning."""
    coefs, intercepts = regressor.coefs_, regressor.intercepts_
    reference = _sklearn_lbfgs_from(coefs, intercepts, **budget)
    model = MLPRegressor(**dict(NET, solver="lbfgs", warm_start=True, **budget))
    model.coefs_ = [c.copy() for c in coefs]
    model.intercepts_ = [b.copy() for b in intercepts]
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        model.fit(X, Y_REG)
    assert model.n_iter_ == reference.n_iter_
    assert model.loss_ == pytest.approx(reference.loss_, rel=1e-9)
    same_weights(model, reference, rtol=1e-7)


def test_lbfgs_on_one_sample():
    model = fit(MLPRegressor(**dict(NET, solver="lbfgs", max_iter=200)), X[:1], Y_REG[:1])
    assert model.predict(X[:1])[0] == pytest.approx(Y_REG[0], abs=1e-3)
    with pytest.raises(DataError, match="y has one class only"):
        MLPClassifier(**dict(NET, solver="lbfgs")).fit(X[:1], Y_BIN[:1])


@pytest.mark.parametrize("early_stopping", [False, True])
def test_n_iter_no_change_inf_never_stops(early_stopping):
    """tol=10 would stop after 2 epochs; np.inf runs every epoch, as scikit-learn's."""
    params = dict(NET, max_iter=6, tol=10.0, n_iter_no_change=np.inf,
                  early_stopping=early_stopping)
    model = fit(MLPRegressor(**params), X, Y_REG)
    assert model.n_iter_ == fit(sk.MLPRegressor(**params), X, Y_REG).n_iter_ == 6
    stops = fit(MLPRegressor(**dict(params, n_iter_no_change=1)), X, Y_REG)
    assert stops.n_iter_ < 6


@pytest.mark.parametrize("state", [-1, 2**32, "a", 1.5, np.random.default_rng(0)])
def test_random_state_as_scikit_learn_constrains_it(state):
    """NumPy's own TypeError/ValueError before; scikit-learn's wording now."""
    with pytest.raises(ValueError, match="must be an int in the range"):
        sk.MLPRegressor(random_state=state).fit(X, Y_REG)
    with pytest.raises(symbp.errors.ParameterError, match=r"random_state must be an int in the "
                                                          r"range \[0, 4294967295\], an instance"):
        MLPRegressor(random_state=state).fit(X, Y_REG)


def test_validation_fraction_zero_only_matters_to_early_stopping():
    fit(MLPRegressor(**NET, validation_fraction=0.0), X, Y_REG)  # as scikit-learn: unused
    with pytest.raises(symbp.errors.ParameterError, match=r"validation_fraction must be in "
                                                          r"\(0.0, 1.0\) with early_stopping"):
        MLPRegressor(**NET, validation_fraction=0.0, early_stopping=True).fit(X, Y_REG)


@pytest.mark.parametrize(("classes", "message"), [
    ([0, 1, np.nan], "classes holds NaN or infinite labels"),
    ([0, "a"], r"Mix of label input types \(string and number\) in classes")])
def test_partial_fit_refuses_classes_scikit_learn_refuses(classes, message):
    """NaN was taken as a class and [0, 'a'] silently became the strings ['0', 'a']."""
    model = MLPClassifier(**NET, solver="sgd")
    with pytest.raises(DataError, match=message):
        model.partial_fit(X, Y_BIN, classes=classes)
    assert not hasattr(model, "classes_")


def _rows(X_part):
    """The rows of X that a split part holds."""
    return np.flatnonzero((X[:, None, :] == X_part[None]).all(axis=2).any(axis=1))


@pytest.mark.parametrize("part", ["training", "validation"])
def test_early_stopping_refuses_a_part_without_weight(part):
    """A validation part of zero weights raised NumPy's ZeroDivisionError (not a
    ValueError) after the first epoch; a training part of zero weights skipped every batch."""
    model = MLPRegressor(**NET, early_stopping=True, validation_fraction=0.5)
    T = Y_REG[:, None]
    (X_train, _, _), (X_val, _, _) = model._split(X, T, np.ones(40), np.random.RandomState(0))
    weights = np.ones(40)
    weights[_rows(X_train if part == "training" else X_val)] = 0.0
    with pytest.raises(DataError, match=f"every sample weight of the {part} part"):
        model._split(X, T, weights, np.random.RandomState(0))
    with pytest.raises(DataError, match=r"every sample weight of the (training|validation) "
                                        r"part"):  # one weighted row: one part has none
        model.fit(X, Y_REG, sample_weight=np.r_[1.0, np.zeros(39)])
    assert not hasattr(model, "coefs_")


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_batch_larger_than_the_data_warns_as_scikit_learn(method):
    message = "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped"
    for model in (sk.MLPRegressor(**NET, batch_size=41), MLPRegressor(**NET, batch_size=41)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with pytest.warns(UserWarning, match=message) as caught:
                getattr(model, method)(X, Y_REG)
        if isinstance(model, MLPRegressor):  # symbp's warning points at the caller
            assert [w.filename for w in caught if "batch_size" in str(w.message)] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MLPRegressor(**NET, batch_size=40).partial_fit(X, Y_REG)  # the whole data: no warning


# -- scikit-learn's tools -------------------------------------------------------------------

def test_clone_pickle_and_params(regressor):
    from sklearn.base import clone
    copied = clone(regressor)
    assert copied.get_params() == regressor.get_params() and not hasattr(copied, "coefs_")
    restored = pickle.loads(pickle.dumps(regressor))
    np.testing.assert_array_equal(restored.predict(X), regressor.predict(X))
    with pytest.raises(ValueError, match="Invalid parameter 'foo' for estimator"):
        MLPRegressor().set_params(foo=1)
    assert MLPRegressor().set_params(alpha=0.5).alpha == 0.5


def test_model_selection_and_pipeline():
    """GridSearchCV, cross_val_score and a Pipeline with StandardScaler and sample weights
    routed to the network give what the same steps done by hand give."""
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    folds = KFold(3)
    by_hand = {alpha: [fit(MLPRegressor(**NET, alpha=alpha), X[train], Y_REG[train])
                       .score(X[test], Y_REG[test]) for train, test in folds.split(X)]
               for alpha in (1e-4, 1e-1)}
    search = GridSearchCV(MLPRegressor(**NET), {"alpha": [1e-4, 1e-1]}, cv=folds)
    with warnings.catch_warnings():  # raised inside scikit-learn's loop over the folds
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(MLPRegressor(**NET), X, Y_REG, cv=folds)
        search.fit(X, Y_REG)
    np.testing.assert_allclose(scores, by_hand[1e-4], rtol=1e-12)  # alpha's default
    means = {alpha: np.mean(values) for alpha, values in by_hand.items()}
    assert search.best_params_["alpha"] == max(means, key=means.get)
    assert search.best_score_ == pytest.approx(max(means.values()), rel=1e-12)
    weights = np.random.RandomState(2).uniform(0.5, 2.0, 40)
    pipe = fit(make_pipeline(StandardScaler(), MLPClassifier(**NET)), X, Y_BIN,
               mlpclassifier__sample_weight=weights)
    scaled = StandardScaler().fit_transform(X)
    alone = fit(MLPClassifier(**NET), scaled, Y_BIN, sample_weight=weights)
    np.testing.assert_array_equal(pipe.predict_proba(X), alone.predict_proba(scaled))


# -- save and load --------------------------------------------------------------------------

def test_predict_uses_the_fitted_activation(regressor):
    """set_params(activation='maxout') after fit made predict fail on its own weights
    ('coefs_/intercepts_ do not have the fitted network's shapes'): the fitted network predicts
    until the next fit, as its source and expression show."""
    model = copy.deepcopy(regressor).set_params(activation="maxout")
    np.testing.assert_array_equal(model.predict(X), regressor.predict(X))


def test_save_and_load_a_multilabel_model(multilabel, tmp_path):
    path = tmp_path / "multilabel.npz"
    multilabel.save(path)
    loaded = MLPClassifier.load(path)
    assert loaded._multilabel and loaded.classes_.tolist() == [0, 1, 2]
    predicted = loaded.predict(X)
    assert predicted.dtype == np.uint8
    np.testing.assert_array_equal(predicted, multilabel.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), multilabel.predict_proba(X))


@pytest.mark.parametrize("change", [dict(hidden_layer_sizes=(9, 9)), dict(activation="tanh"),
                                    dict(alpha=0.0), dict(standardize=True)])
def test_a_model_saved_after_set_params_loads(regressor, tmp_path, change):
    """save after set_params of the structure wrote a file that load called damaged ('net
    ... does not match the parameters'); the file's network is the fitted one, the
    parameters are the new ones (for the next fit), as on the model that was saved."""
    model = copy.deepcopy(regressor).set_params(**change)
    model.save(tmp_path / "changed.npz")
    loaded = MLPRegressor.load(tmp_path / "changed.npz")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), regressor.predict(X))
    assert loaded.n_layers_ == 3 and loaded._net_key == regressor._net_key


@pytest.mark.parametrize("params", [
    dict(alpha=np.float64(0.1)), dict(learning_rate_init=np.float32(0.01)),
    dict(batch_size=np.int64(10), max_iter=np.int32(3)), dict(random_state=np.int64(3)),
    dict(shuffle=np.bool_(False)), dict(hidden_layer_sizes=np.array([6])),
    dict(n_iter_no_change=np.inf)])
def test_save_takes_numpy_scalar_parameters(tmp_path, params):
    """A grid of np.logspace alphas (GridSearchCV's best_estimator_) gave an np.float64
    alpha, and save failed with json's 'Object of type bool is not JSON serializable' (alpha >
    0 an np.bool_); any NumPy scalar parameter failed so."""
    model = fit(MLPRegressor(**{**NET, **params}), X, Y_REG)
    model.save(tmp_path / "numpy.npz")
    loaded = MLPRegressor.load(tmp_path / "numpy.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for name, value in params.items():  # the same values, as Python numbers
        np.testing.assert_array_equal(np.asarray(loaded.get_params()[name], float),
                                      np.asarray(value, float))


def _rewritten(path, tmp_path, **fields):
    """A copy of the model file at ``path`` with metadata fields replaced."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays["meta"].item())
    meta.update(fields)
    arrays["meta"] = np.array(json.dumps(meta))
    out = tmp_path / "edited.npz"
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize(("fields", "message"), [
    (dict(label_dtype="object"), "'label_dtype' must be one of bool, int8"),
    (dict(label_dtype=None), "'label_dtype' must be one of"),
    (dict(multilabel="yes"), "'multilabel' 'yes'"),
    (dict(feature_names=["a", "b"]), "'feature_names' must be a list of 3 strings"),
    (dict(feature_names=[1, 2, 3]), "'feature_names' must be a list of 3 strings")])
def test_load_checks_the_multilabel_fields(multilabel, tmp_path, fields, message):
    path = tmp_path / "multilabel.npz"
    multilabel.save(path)
    with pytest.raises(SymbpError, match=message):
        MLPClassifier.load(_rewritten(path, tmp_path, **fields))


def test_load_refuses_multilabel_on_a_regressor_or_single_label_file(regressor, tmp_path):
    path = tmp_path / "regressor.npz"
    regressor.save(path)
    with pytest.raises(SymbpError, match="'multilabel' True"):
        MLPRegressor.load(_rewritten(path, tmp_path, multilabel=True,
                                     label_dtype="int64"))
    binary = fit(MLPClassifier(**NET), X, Y_BIN + 5)
    binary.save(path)
    assert not MLPClassifier.load(path)._multilabel
    with pytest.raises(SymbpError, match="'multilabel' True with loss sigmoid_cross_entropy "
                                         r"and 1 output\(s\)"):
        MLPClassifier.load(_rewritten(path, tmp_path, multilabel=True, label_dtype="int64"))


# -- column names ---------------------------------------------------------------------------

def test_feature_names_in_as_scikit_learn(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = fit(MLPRegressor(**NET), frame, Y_REG)
    reference = fit(sk.MLPRegressor(**NET), frame, Y_REG)
    assert model.feature_names_in_.tolist() == ["a", "b", "c"]
    assert model.feature_names_in_.dtype == reference.feature_names_in_.dtype == object
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fitted names: no warning
        named = model.predict(frame)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but "
                                         "MLPRegressor was fitted with feature names"):
        np.testing.assert_array_equal(model.predict(X), named)
    for other, message in [
            (["a", "c", "b"], "Feature names must be in the same order as they were in fit"),
            (["a", "b", "d"], "Feature names unseen at fit time:\n- d\nFeature names seen at "
                              "fit time, yet now missing:\n- c\n")]:
        with pytest.raises(ValueError) as theirs:
            reference.predict(pd.DataFrame(X, columns=other))
        with pytest.raises(DataError, match=message) as ours:
            model.predict(pd.DataFrame(X, columns=other))
        assert str(ours.value) == str(theirs.value)
    path = tmp_path / "named.npz"
    model.save(path)
    assert MLPRegressor.load(path).feature_names_in_.tolist() == ["a", "b", "c"]
    warm = copy.deepcopy(model).set_params(warm_start=True)
    with pytest.raises(DataError, match="Feature names unseen at fit time"):
        warm.fit(pd.DataFrame(X, columns=["x", "y", "z"]), Y_REG)
    refit = fit(copy.deepcopy(model), X, Y_REG)  # a new fit on an array forgets the names
    assert not hasattr(refit, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but MLPRegressor was fitted "
                                         "without feature names"):
        refit.predict(frame)
    assert not hasattr(fit(MLPRegressor(**NET), pd.DataFrame(X), Y_REG), "feature_names_in_")
    with pytest.raises(TypeError, match=r"Feature names are only supported if all input "
                                        r"features have string names, but your input has "
                                        r"\['int', 'str'\]"):
        MLPRegressor(**NET).fit(pd.DataFrame(X, columns=["a", 1, "c"]), Y_REG)


def test_missing_values_of_nullable_columns_are_named_as_nan():
    """pandas' nullable Float64 columns hold pandas.NA: NumPy's 'float() argument must be a
    string or a real number, not NAType' before; the NaN check's row and column now."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).astype("Float64")
    frame.iloc[5, 2] = pd.NA
    with pytest.raises(DataError, match=r"X holds 1 NaN or infinite value.*row 5, column 2"):
        MLPRegressor(**NET).fit(frame, Y_REG)
    filled = frame.fillna(0.0)  # nullable, no NA: taken as the float64 array
    model = fit(MLPRegressor(**NET), filled, Y_REG)
    same_weights(model, fit(MLPRegressor(**NET), filled.to_numpy(float), Y_REG))


def test_float32_regressor_keeps_float32_from_sparse_and_frames():
    X32 = X.astype(np.float32)
    model = fit(MLPRegressor(**NET), sp.csr_matrix(X32), Y_REG)
    assert model.coefs_[0].dtype == np.float32
    assert model.predict(sp.csc_matrix(X32)).dtype == np.float32
    with pytest.raises(symbp.errors.DataError, match="sample_weight holds 1 value"):
        model.fit(X32, Y_REG, sample_weight=np.r_[1e39, np.ones(39)])


def test_float32_model_returns_float64_for_float64_input_as_scikit_learn():
    """A float32 model (``dtype='float32'`` or fitted on float32 X) computes in float32 and
    returns float64 for float64 (or integer) X, float32 for float32 X: scikit-learn's dtypes."""
    model = fit(MLPRegressor(**NET, dtype="float32"), X, Y_REG)
    assert model.coefs_[0].dtype == np.float32
    p64, p32 = model.predict(X), model.predict(X.astype(np.float32))
    assert (p64.dtype, p32.dtype) == (np.float64, np.float32)
    np.testing.assert_array_equal(p64, p32.astype(np.float64))  # the same float32 arithmetic
    assert model.predict(np.rint(X).astype(int)).dtype == np.float64
    ours = model.predict(X.tolist())
    assert ours.dtype == np.float64
