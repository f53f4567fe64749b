"""symbp.nn: MLPs built as symbp expressions and trained by the compiled loop.

The suite compiles a handful of networks (shared through module fixtures); every activation and
loss line is checked against central differences through the pure-Python path instead.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
from conftest import vjp_check

import symbp
from symbp import datasets
from symbp.nn import ACTIVATIONS, LOSSES, MLPClassifier, MLPRegressor, checks, loop, network_lines
from symbp.nn.split import train_test_split

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])
XOR = dict(hidden_layer_sizes=(4,), activation="logistic", solver="sgd", learning_rate_init=0.5,
           momentum=0.9, batch_size=4, max_iter=3000, tol=1e-6, dtype="float32")


def quiet_fit(model, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", symbp.nn.ConvergenceWarning)
        return model.fit(X, y, **fit_params)


@pytest.fixture(scope="module")
def xor_model():
    return quiet_fit(MLPClassifier(**XOR, random_state=0), XOR_X, XOR_Y)


@pytest.fixture(scope="module")
def moons_split():
    data = datasets.moons(n_samples=1000, noise=0.2, seed=0)
    return train_test_split(data.X, data.y, test_size=0.2, rng=np.random.RandomState(0),
                            stratify=data.y)


MOONS = dict(hidden_layer_sizes=(16, 16), activation="tanh", solver="adam",
             learning_rate_init=0.01, batch_size=32, max_iter=60, dtype="float32")


@pytest.fixture(scope="module")
def moons_model(moons_split):
    X_train, _, y_train, _ = moons_split
    return quiet_fit(MLPClassifier(**MOONS, random_state=0), X_train, y_train)


# -- results to reach ---------------------------------------------------------------------


def test_xor_2_4_1(xor_model):
    assert xor_model.predict(XOR_X).tolist() == XOR_Y.tolist()
    assert xor_model.loss_curve_[-1] < 0.05
    p = xor_model.predict_proba(XOR_X)
    assert p.shape == (4, 2) and np.allclose(p.sum(axis=1), 1)
    assert np.all(p[np.arange(4), XOR_Y] > 0.8)


def test_xor_2_2_1():
    """The 1986 paper's smallest net: two hidden sigmoids (seed 1; some seeds stall)."""
    model = quiet_fit(MLPClassifier(**dict(XOR, hidden_layer_sizes=(2,)), random_state=1),
                      XOR_X, XOR_Y)
    assert model.predict(XOR_X).tolist() == XOR_Y.tolist()


def test_moons(moons_model, moons_split):
    _, X_test, _, y_test = moons_split
    assert moons_model.score(X_test, y_test) >= 0.95


def test_digits():
    pytest.importorskip("sklearn")
    data = datasets.digits()
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=0.2, rng=np.random.RandomState(0), stratify=data.y)
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(64,), batch_size=32,
                                    learning_rate_init=0.002, max_iter=30, random_state=0,
                                    dtype="float32"), X_train, y_train)
    assert model.score(X_test, y_test) >= 0.97
    assert model.n_iter_ == 30 and len(model.train_accuracy_curve_) == 30
    assert "softmax_cross_entropy_backward" in model.source  # the generated backward pass


def test_worked_example_6_one_weight_update():
    """One sigmoid output neuron, E = 1/2 (t - sigmoid(o . w))**2, one SGD step of rate 0.1
    through the training loop's own optimizer step."""
    f = symbp.compile("E = sum((t - sigmoid(o @ w))**2) / 2",
                      shapes={"o": (1, 2), "w": (2, 1), "t": (1, 1)}, wrt=["w"])
    s = 0.942675824101
    w = np.array([[2.0], [4.0]])
    value, grads = f.value_and_grad(o=np.array([[0.4, 0.5]]), w=w, t=np.array([[1.5 + s]]))
    assert value == pytest.approx(0.5 * 1.5**2, rel=1e-9)
    assert grads["w"][0, 0] == pytest.approx(-0.0324228688538, rel=1e-9)
    velocity = np.zeros_like(w)
    assert loop.optimizer_step(w, grads["w"], velocity, velocity, w, loop.SGD, 0.1, 0.0, False,
                               0.9, 0.999, 1e-8, 1.8e308)  # in place (out=w); True: finite
    assert w[0, 0] == pytest.approx(2.00324228689, rel=1e-9)


def test_regressor():
    X = np.linspace(-1, 1, 200).reshape(-1, 1)
    y = np.sin(3 * X[:, 0])
    model = quiet_fit(MLPRegressor(hidden_layer_sizes=(16,), activation="tanh",
                                   learning_rate_init=0.01, batch_size=20, max_iter=300,
                                   random_state=0, dtype="float32"), X, y)
    assert model.score(X, y) > 0.95
    assert model.predict(X).shape == (200,)


# -- the gradients the loop trains on --------------------------------------------------------


def test_training_loop_gradient_is_the_compiled_and_numerical_gradient():
    """One full-batch SGD step of the compiled loop (no shuffle, no momentum, float64) moves
    every parameter by -rate * gradient, where the gradient is symbp.compile's and agrees with
    central differences (L2 penalty included)."""
    rng = np.random.RandomState(1)
    X, y = rng.normal(size=(12, 2)), rng.randint(0, 2, 12)
    y[:2] = [0, 1]
    rate, alpha = 0.1, 0.05
    model = MLPClassifier(**dict(XOR, batch_size=12, max_iter=1, momentum=0.0,
                                 learning_rate_init=rate, alpha=alpha, shuffle=False,
                                 dtype="float64"), random_state=3)
    model._initialize(2, (4,), 1, np.float64, np.random.RandomState(3))
    before = [a.copy() for pair in zip(model.coefs_, model.intercepts_) for a in pair]
    model.set_params(warm_start=True)
    quiet_fit(model, X, y)
    after = [a for pair in zip(model.coefs_, model.intercepts_) for a in pair]

    lines, shapes, params = network_lines(1, "logistic", "sigmoid_cross_entropy", True)
    f = symbp.compile(lines, shapes=shapes, wrt=params,
                      inputs=["X", *params, "t", "w", "l2"])
    args = dict(zip(params, before), X=X, t=y.reshape(-1, 1).astype(float),
                w=np.full(len(X), 1.0 / len(X)), l2=0.5 * alpha / len(X))
    _, grads = f.value_and_grad(**args)
    for name, old, new in zip(params, before, after):
        np.testing.assert_allclose((old - new) / rate, grads[name], rtol=1e-9, atol=1e-12)
    vjp_check(f, args)


# formulas and gate names the estimators accept beyond the built-in names (docs/mlp.md)
CUSTOM_ACTIVATIONS = ("x * sigmoid(1.702 * x)", "x / (1 + abs(x))", "softplus",
                      "np.tanh(u) + 0.1 * u")
CUSTOM_LOSSES = ("mean(abs(out - t))",
                 "sum(w * sum(0.5 * min(abs(out - t), 1)**2 + abs(out - t) - min(abs(out - t), 1),"
                 " axis=1))",
                 "sum(w * hinge(out, y)**2)", "sum(w * sum((out - t)**4, axis=1))")


@pytest.mark.parametrize(("activation", "loss"), [
    *((a, "softmax_cross_entropy") for a in (*ACTIVATIONS, *CUSTOM_ACTIVATIONS)),
    *(("tanh", loss) for loss in (*LOSSES, *CUSTOM_LOSSES))])
def test_network_lines_gradients(activation, loss):
    """Every activation and every loss line: compiled gradients (pure Python, no Numba) equal
    central differences on a 3-4-3 network with the L2 penalty and unequal sample weights."""
    lines, shapes, params = network_lines(1, activation, loss, True)
    target = "y" if "y" in shapes else "t"
    f = symbp.compile(lines, shapes=shapes, wrt=params, jit=False,
                      inputs=["X", *params, target, "w", "l2"])
    rng = np.random.RandomState(0)
    size = {"F": 3, "H1": 4, "C": 3}  # every size is a dimension name, bound at the call
    args = {p: rng.normal(size=[size[d] for d in shapes[p]]) for p in params}
    args["X"] = rng.normal(size=(5, 3))
    args[target] = rng.randint(0, 3, 5) if target == "y" else rng.uniform(size=(5, 3))
    weights = np.array([0.5, 2.0, 0.0, 1.0, 3.0])
    args["w"] = weights / weights.sum()
    args["l2"] = 0.01
    vjp_check(f, args)


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_lines_are_scikit_learns_weighted_average(loss):
    """Each loss line with normalized weights is the weighted average (``np.average``) of the
    per-sample losses, and ones give the plain mean (pure Python path)."""
    lines, shapes, params = network_lines(0, "identity", loss, False)
    target = "y" if "y" in shapes else "t"
    f = symbp.compile(lines, shapes=shapes, wrt=params, jit=False,
                      inputs=["X", *params, target, "w"])
    rng = np.random.RandomState(2)
    X, W, b = rng.normal(size=(6, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    y = rng.randint(0, 3, 6)
    out = X @ W + b
    if loss == "softmax_cross_entropy":
        shifted = out - out.max(axis=1, keepdims=True)
        each = -(shifted[np.arange(6), y] - np.log(np.exp(shifted).sum(axis=1)))
    elif loss == "hinge":
        each = None  # its exact form is the gate's; the weighting is what is checked here
    elif loss == "sigmoid_cross_entropy":
        t = np.eye(3)[y]
        each = (np.logaddexp(0.0, out) - t * out).sum(axis=1)
    elif loss == "poisson":  # scikit-learn's half deviance, with out the log of the mean
        t = rng.poisson(2.0, size=(6, 3)).astype(float)
        t[0, 0] = 0.0  # xlogy(0, 0) = 0
        mean = np.exp(out)
        each = (np.where(t > 0, t * np.log(np.where(t > 0, t, 1) / mean), 0) - t
                + mean).sum(axis=1)
    else:
        t = rng.normal(size=(6, 3))
        each = ((out - t) ** 2).mean(axis=1) / 2
    target_value = y if target == "y" else t
    weights = np.array([1.0, 0.0, 2.0, 0.5, 3.0, 1.0])
    weighted = f(X=X, W1=W, b1=b, **{target: target_value}, w=weights / weights.sum())
    ones = f(X=X, W1=W, b1=b, **{target: target_value}, w=np.full(6, 1 / 6))
    single = [f(X=X[i:i + 1], W1=W, b1=b, **{target: target_value[i:i + 1]}, w=np.ones(1))
              for i in range(6)]
    assert weighted == pytest.approx(np.average(single, weights=weights), rel=1e-12)
    assert ones == pytest.approx(np.mean(single), rel=1e-12)
    if each is not None:
        np.testing.assert_allclose(single, each, rtol=1e-12)


def test_integer_sample_weights_are_repeated_samples():
    """Full batches, no shuffle: weight k on a sample trains exactly as k copies of it (the
    weighted loss, its gradient and the L2 term's division by the sum of weights), and
    ``score`` weights the same way."""
    rng = np.random.RandomState(4)
    X, y = rng.normal(size=(6, 2)), np.array([0, 1, 0, 1, 1, 0])
    weights = np.array([1, 2, 1, 1, 3, 0])
    params = dict(XOR, batch_size=100, max_iter=15, shuffle=False, alpha=0.01,
                  dtype="float64", random_state=0)
    weighted = quiet_fit(MLPClassifier(**params), X, y, sample_weight=weights)
    repeated = quiet_fit(MLPClassifier(**params), np.repeat(X, weights, axis=0),
                         np.repeat(y, weights))
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert weighted.score(X, y, sample_weight=weights) == pytest.approx(
        repeated.score(np.repeat(X, weights, axis=0), np.repeat(y, weights)))


@pytest.mark.parametrize(("weights", "message"), [
    (np.ones(3), r"sample_weight.shape == \(3,\), expected \(4,\)"),
    (np.ones((4, 1)), "Sample weights must be 1D array or scalar, got 2D array"),
    (np.array([1.0, -1.0, 1.0, 1.0]), "Negative values in data passed to sample_weight"),
    (np.array([1.0, np.nan, 1.0, 1.0]), "sample_weight holds 1 NaN"),
    (["a", "b", "c", "d"], "sample_weight must hold numbers"),
])
def test_bad_sample_weights_are_refused(weights, message):
    with pytest.raises(symbp.SymbpError, match=message):
        MLPClassifier(**XOR).fit(XOR_X, XOR_Y, sample_weight=weights)


# -- reproducibility, persistence -------------------------------------------------------------


def test_seeded_fits_are_bit_identical(moons_model, moons_split):
    X_train, _, y_train, _ = moons_split
    again = quiet_fit(MLPClassifier(**MOONS, random_state=0), X_train, y_train)
    for a, b in zip(moons_model.coefs_ + moons_model.intercepts_,
                    again.coefs_ + again.intercepts_):
        assert a.dtype == np.float32 and np.array_equal(a, b)
    assert moons_model.loss_curve_ == again.loss_curve_
    other = quiet_fit(MLPClassifier(**dict(MOONS, max_iter=2), random_state=1), X_train,
                      y_train)
    assert not np.array_equal(other.coefs_[0], moons_model.coefs_[0])


def test_save_load_round_trip(xor_model, tmp_path):
    path = tmp_path / "xor.npz"
    xor_model.save(path)
    loaded = MLPClassifier.load(path)
    assert loaded.get_params() == xor_model.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(XOR_X), xor_model.predict_proba(XOR_X))
    assert loaded.loss_curve_ == xor_model.loss_curve_ and loaded.n_iter_ == xor_model.n_iter_
    assert [p.name for p in tmp_path.iterdir()] == ["xor.npz"]  # no temporary left behind


def test_string_classes_survive_save(tmp_path):
    labels = np.array(["even", "odd", "odd", "even"])
    model = quiet_fit(MLPClassifier(**XOR, random_state=0), XOR_X, labels)
    assert model.predict(XOR_X).tolist() == labels.tolist()
    model.save(tmp_path / "m.npz")
    assert MLPClassifier.load(tmp_path / "m.npz").predict(XOR_X).tolist() == labels.tolist()


def test_load_refuses_bad_files(xor_model, tmp_path):
    good = tmp_path / "good.npz"
    xor_model.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    wrong = tmp_path / "wrong.npz"
    with zipfile.ZipFile(wrong, "w") as z:
        for name, data in members.items():
            z.writestr(name, data if name != "coef_0.npy" else members["coef_1.npy"])
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "symbp.nn/1"}], dtype=object))
    for path, message in [(truncated, "cannot read"), (other, "not a symbp model"),
                          (garbage, "cannot read"), (wrong, "shape"),
                          (pickled, "cannot read"), (tmp_path / "missing.npz", "no such file")]:
        with pytest.raises(symbp.SymbpError, match=message):
            MLPClassifier.load(path)
    with pytest.raises(symbp.SymbpError, match="holds a MLPClassifier, not"):
        MLPRegressor.load(good)


def test_pickle_recompiles_from_cache(xor_model):
    clone = pickle.loads(pickle.dumps(xor_model))
    np.testing.assert_array_equal(clone.predict_proba(XOR_X), xor_model.predict_proba(XOR_X))
    code = ("import pickle, sys; m = pickle.loads(sys.stdin.buffer.read()); "
            "print(m.predict([[0, 1], [1, 1]]).tolist())")
    result = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(xor_model),
                            capture_output=True, timeout=120, check=True)
    assert result.stdout.decode().strip() == "[1, 0]"


# -- scikit-learn compatibility ---------------------------------------------------------------


def test_params_follow_scikit_learn(xor_model):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone, is_classifier, is_regressor
    from sklearn.neural_network import MLPClassifier as Reference

    ours = set(MLPClassifier().get_params())
    theirs = set(Reference().get_params())
    assert theirs <= ours
    for name in theirs - {"loss"}:  # scikit-learn's classifier has no loss parameter
        assert MLPClassifier().get_params()[name] == Reference().get_params()[name], name
    assert is_classifier(MLPClassifier()) and is_regressor(MLPRegressor())
    copy = clone(xor_model)
    assert not hasattr(copy, "coefs_") and copy.get_params() == xor_model.get_params()
    assert sklearn.__version__


def test_grid_search_with_two_jobs(moons_split):
    pytest.importorskip("sklearn")
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test = moons_split
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**dict(MOONS, max_iter=20),
                                                         random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(pipe, {"mlpclassifier__learning_rate_init": [0.003, 0.01]},
                              cv=2, n_jobs=2).fit(X_train, y_train)
        scores = cross_val_score(MLPClassifier(**dict(MOONS, max_iter=20), random_state=0),
                                 X_train, y_train, cv=2, n_jobs=2)
    assert search.score(X_test, y_test) > 0.9
    assert len(scores) == 2 and all(s > 0.9 for s in scores)


def test_works_without_scikit_learn(tmp_path):
    """With scikit-learn hidden, the estimators fall back to symbp's own base classes."""
    code = """
import sys
sys.modules["sklearn"] = None
import numpy as np
from symbp.nn import MLPClassifier
m = MLPClassifier(hidden_layer_sizes=(4,), activation="logistic", solver="sgd",
                  learning_rate_init=0.5, momentum=0.9, batch_size=4, max_iter=3000, tol=1e-6,
                  random_state=0, dtype="float32")
assert type(m).__mro__[-2].__module__ == "symbp.nn._estimator"
m.set_params(max_iter=3000)
X = np.array([[0., 0], [0, 1], [1, 0], [1, 1]])
print(m.fit(X, [0, 1, 1, 0]).score(X, [0, 1, 1, 0]), sorted(m.get_params())[:2])
"""
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                            timeout=300, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "1.0"


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("X", "y", "message"), [
    ([[0.0, np.nan], [1, 1]], [0, 1], "NaN or infinite value.*row 0, column 1"),
    ([[0.0, 1], [1, 1]], [0, 1, 1], "X has 2 samples but y has 3"),
    ([[0.0, 1], [1, 1]], [1, 1], "one class only"),
    ([["a", "b"], ["c", "d"]], [0, 1], "must hold numbers"),
    (np.zeros((0, 2)), [], "empty"),
    ([0.0, 1.0], [0, 1], "2-D array"),
    ([[0.0], [1.0]], [0.5, 1.5], "continuous"),
])
def test_bad_fit_input(X, y, message):
    with pytest.raises(symbp.errors.DataError, match=message) as info:
        MLPClassifier().fit(X, y)
    assert isinstance(info.value, ValueError)  # scikit-learn's type for bad data


@pytest.mark.parametrize(("params", "message"), [
    ({"activation": "rellu"}, "unknown activation 'rellu'"),
    ({"activation": "x * y"}, "an activation formula has one variable"),
    ({"loss": "mean(abs(out - q))"}, "names 'q'"),
    ({"solver": "newton"}, "solver must be one of"),
    ({"hidden_layer_sizes": (4, 0)}, "positive integers"),
    ({"max_fun": 0}, "max_fun must be a positive integer"),
    ({"learning_rate_init": 0.0}, r"learning_rate_init must be in \(0.0"),
    ({"dtype": "float16"}, "dtype must be"),
    ({"batch_size": 0}, "batch_size"),
    ({"loss": "hinge"}, "loss must be one of"),
    *(({name: bad}, f"{name} must be a finite number")
      for name in ("learning_rate_init", "alpha", "momentum", "beta_1", "beta_2", "epsilon",
                   "tol", "power_t", "validation_fraction")
      for bad in (np.inf, -np.inf, np.nan)),
    ({"alpha": 10**400}, "alpha must be a finite number"),
    ({"shuffle": "yes"}, "shuffle must be True or False"),
    ({"standardize": 2}, "standardize must be True or False"),
])
def test_bad_parameters_fail_before_compiling(params, message):
    model = (MLPRegressor if params.get("loss") == "hinge" else MLPClassifier)(**params)
    with pytest.raises(symbp.errors.ParameterError, match=message) as info:
        model.fit(XOR_X, XOR_Y)
    assert isinstance(info.value, ValueError)  # as scikit-learn's InvalidParameterError


def test_divergence_stops_with_the_last_finite_weights():
    X = np.linspace(-1, 1, 40).reshape(-1, 1) * 1e3
    model = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", solver="sgd",
                         learning_rate_init=1e6, momentum=0.0, batch_size=10, max_iter=50,
                         random_state=0, dtype="float32")
    with pytest.raises(symbp.SymbpError, match=r"epoch \d+, batch \d+ of 4.*last finite"):
        model.fit(X, X[:, 0] ** 2)
    assert all(np.isfinite(a).all() for a in model.coefs_ + model.intercepts_)


# The regressor of test_regressor / test_divergence: one architecture, compiled once.
REG = dict(hidden_layer_sizes=(16,), activation="tanh", batch_size=10, random_state=0,
           dtype="float32")
REG_X = np.linspace(-1, 1, 40).reshape(-1, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_step_that_overflows_keeps_the_last_finite_weights(seed, tmp_path):
    """At learning_rate_init=1e45 the gradient is finite but the step overflows float32: the
    weights stay those from before that step, predict gives no NaN, and save writes a file
    load accepts."""
    model = MLPRegressor(**dict(REG, random_state=seed), solver="sgd", learning_rate_init=1e45,
                         max_iter=5)
    with pytest.raises(symbp.SymbpError, match=r"updated weights became NaN or infinite at "
                                                r"epoch 1, batch 1 of 4.*last finite"):
        model.fit(REG_X, REG_X[:, 0] ** 2)
    assert all(np.isfinite(a).all() for a in model.coefs_ + model.intercepts_)
    assert np.isfinite(model.predict(REG_X)).all()
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(MLPRegressor.load(tmp_path / "m.npz").predict(REG_X),
                                  model.predict(REG_X))


def test_a_diverged_classifier_keeps_finite_weights(tmp_path):
    model = MLPClassifier(**dict(XOR, learning_rate_init=1e39, max_iter=5), random_state=0)
    with pytest.raises(symbp.SymbpError, match="last finite"):
        model.fit(XOR_X, XOR_Y)
    assert all(np.isfinite(a).all() for a in model.coefs_ + model.intercepts_)
    assert np.isfinite(model.predict_proba(XOR_X)).all()
    model.save(tmp_path / "m.npz")
    assert MLPClassifier.load(tmp_path / "m.npz").predict(XOR_X).tolist() == \
        model.predict(XOR_X).tolist()


def test_predict_never_answers_from_nan_outputs(xor_model):
    """Finite weights can still overflow on an input: predict raises instead of returning NaN
    (or class 0 read from a NaN score)."""
    huge = copy.deepcopy(xor_model)
    huge.coefs_[1] = np.full_like(huge.coefs_[1], 3e38)
    huge.coefs_[1][0] = -3e38
    for method in (huge.predict, huge.predict_proba):
        with pytest.raises(symbp.SymbpError,
                           match=r"output is NaN or infinite for \d row\(s\) of X, the first"):
            method(XOR_X)


@pytest.mark.parametrize("big", [1e39, 1e300])
def test_values_beyond_float32_are_refused_after_the_cast(xor_model, big):
    X = XOR_X.copy()
    X[2, 1] = -big
    message = r"beyond the range of float32.*row 2, column 1"
    with pytest.raises(symbp.SymbpError, match=message):
        MLPClassifier(**XOR).fit(X, XOR_Y)
    for method in (xor_model.predict, xor_model.predict_proba):
        with pytest.raises(symbp.SymbpError, match=message):
            method(X)
    with pytest.raises(symbp.SymbpError, match=message):
        xor_model.score(X, XOR_Y)
    with pytest.raises(symbp.SymbpError, match=r"y holds 1 value\(s\) beyond .*row 3"):
        MLPRegressor(**REG).fit(REG_X[:4], [0.0, 1.0, 2.0, big])


def test_predict_checks(xor_model):
    from sklearn.exceptions import NotFittedError
    with pytest.raises(symbp.errors.NotFittedError, match="not fitted") as info:
        MLPClassifier().predict(XOR_X)
    assert isinstance(info.value, NotFittedError)  # scikit-learn's own class too
    with pytest.raises(ValueError, match="3 features, but MLPClassifier is expecting 2"):
        xor_model.predict(np.ones((2, 3)))


def test_multilabel_targets():
    """A 0/1 indicator matrix: one sigmoid output per label, predict the matrix (y's dtype),
    predict_proba each label's own probability, classes_ the label indices."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, (X[:, 0] + X[:, 2]) > 0], axis=1).astype(np.int32)
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.05,
                                    max_iter=100, random_state=0), X, Y)
    assert model.classes_.tolist() == [0, 1, 2]
    predicted = model.predict(X)
    assert predicted.dtype == np.int32 and predicted.shape == Y.shape
    assert (predicted == Y).mean() > 0.9
    p = model.predict_proba(X)
    assert p.shape == Y.shape and ((p > 0.5) == (predicted == 1)).all()
    with pytest.raises(symbp.errors.DataError, match="indicator matrix"):
        MLPClassifier().fit(X[:4], [[0, 2], [1, 0], [0, 1], [1, 1]])


def test_predict_proba_only_for_probabilities(moons_split):
    X_train, _, y_train, _ = moons_split
    model = quiet_fit(MLPClassifier(**dict(MOONS, max_iter=2), loss="hinge", random_state=0),
                      X_train, y_train)
    assert not hasattr(model, "predict_proba")
    assert model.predict(X_train[:3]).shape == (3,)


def test_prediction_in_chunks(moons_model, moons_split, monkeypatch):
    X_train = moons_split[0]
    whole = moons_model.predict_proba(X_train)
    monkeypatch.setattr(symbp.nn.base, "PREDICT_CHUNK", 7)  # 800 rows: 114 chunks and a short one
    # float32 products of other sizes may take BLAS or loops: equal to rounding, not bits
    np.testing.assert_allclose(moons_model.predict_proba(X_train), whole, rtol=1e-5, atol=1e-6)


def test_early_stopping_keeps_the_best_validation_weights(moons_split, tmp_path):
    X_train, _, y_train, _ = moons_split
    model = quiet_fit(MLPClassifier(**dict(MOONS, max_iter=200), early_stopping=True,
                                    n_iter_no_change=3, random_state=0), X_train, y_train)
    assert model.n_iter_ < 200  # stopped by the rule
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_) > 0.85
    assert model.best_loss_ is None  # scikit-learn's: no best training loss then
    model.save(tmp_path / "m.npz")
    loaded = MLPClassifier.load(tmp_path / "m.npz")
    assert loaded.best_loss_ is None and loaded.validation_scores_ == model.validation_scores_


def _diverging_at_epoch(model, epoch):
    """Make the model's compiled epoch see NaN features from training epoch ``epoch`` on."""
    compiled = model._compiled

    def wrapped_compiled(net, X, T, dims):
        run, seconds = compiled(net, X, T, dims)
        epochs = []

        def wrapped(X, *args):
            if not args[10]:  # a training epoch, not predict
                epochs.append(1)
                if len(epochs) >= epoch:
                    X = np.full_like(X, np.nan)
            return run(X, *args)
        return wrapped, seconds
    model._compiled = wrapped_compiled
    return model


def test_divergence_under_early_stopping_ends_like_no_improvement(moons_split):
    """scikit-learn's issue 29504: a NaN under early stopping ends training with the best
    validation weights and a warning naming the epoch, not an error; with no validated
    epoch yet it raises as without early stopping."""
    X_train, _, y_train, _ = moons_split
    params = dict(MOONS, max_iter=10, early_stopping=True, n_iter_no_change=100,
                  random_state=0)
    model = _diverging_at_epoch(MLPClassifier(**params), 4)
    with pytest.warns(symbp.nn.ConvergenceWarning, match=r"NaN or infinite at epoch 4, batch 1 "
                                                         r"of \d+; early stopping restored"):
        model.fit(X_train, y_train)
    assert model.n_iter_ == 3 and len(model.validation_scores_) == 3
    best = int(np.argmax(model.validation_scores_))
    reference = quiet_fit(MLPClassifier(**dict(params, max_iter=best + 1)), X_train, y_train)
    for a, b in zip(model.coefs_, reference.coefs_):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(symbp.SymbpError, match="at epoch 1, batch 1"):
        _diverging_at_epoch(MLPClassifier(**params), 1).fit(X_train, y_train)


def test_n_iter_counts_this_fit_and_n_iter_no_change_may_be_inf(xor_model):
    """scikit-learn 1.9: n_iter_ counts the epochs of this fit, warm start too; t_ counts
    every sample seen; n_iter_no_change=np.inf never stops for lack of improvement."""
    model = quiet_fit(MLPClassifier(**dict(XOR, max_iter=5, tol=10.0, n_iter_no_change=np.inf),
                                    random_state=0), XOR_X, XOR_Y)
    assert model.n_iter_ == 5 and model.t_ == 20  # tol=10: no epoch improves, none stops
    model.set_params(warm_start=True, max_iter=3)
    quiet_fit(model, XOR_X, XOR_Y)
    assert model.n_iter_ == 3 and model.t_ == 32 and len(model.loss_curve_) == 8
    assert model.best_loss_ == min(model.loss_curve_)


def test_warm_start_continues(moons_split):
    X_train, _, y_train, _ = moons_split
    model = quiet_fit(MLPClassifier(**dict(MOONS, max_iter=2), warm_start=True,
                                    random_state=0), X_train, y_train)
    first = model.coefs_[0].copy()
    quiet_fit(model, X_train, y_train)
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 4  # n_iter_: this fit's epochs
    assert not np.array_equal(first, model.coefs_[0])


def test_verbose_without_tqdm_prints_lines(moons_split, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X_train, _, y_train, _ = moons_split
    quiet_fit(MLPClassifier(**dict(MOONS, max_iter=2), verbose=True, random_state=0),
              X_train, y_train)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("Iteration 1, loss = ") and "accuracy = " in lines[-1]


@pytest.mark.parametrize("change", [dict(hidden_layer_sizes=(5,)),
                                    dict(hidden_layer_sizes=(4, 4)), dict(activation="maxout")])
def test_warm_start_with_other_layers_is_refused(xor_model, change):
    """The sizes are bound at run time, so a warm start whose parameters ask for other layers
    than the fitted weights must be refused before anything runs, naming both."""
    model = copy.deepcopy(xor_model).set_params(warm_start=True, **change)
    before = [W.copy() for W in model.coefs_]
    with pytest.raises(symbp.SymbpError,
                       match=r"warm_start: the fitted layers \(coefs_ \[\(2, 4\)"):
        model.fit(XOR_X, XOR_Y)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.coefs_))


def test_a_refused_fit_leaves_the_fitted_model_as_it_was(xor_model):
    """Every check runs before the model changes: a fit refused late (its early-stopping split
    of 3 samples of 3 classes leaves no class a validation sample) keeps classes_, the
    scaling and the weights of the fitted model."""
    model = copy.deepcopy(xor_model).set_params(standardize=True, early_stopping=True)
    before = model.predict_proba(XOR_X)
    with pytest.raises(symbp.SymbpError, match=r"early_stopping: validation_fraction=0\.1 of 3"):
        model.fit(XOR_X[:3] * 100.0, [0, 1, 2])
    assert model.classes_.tolist() == [0, 1] and model.feature_mean_ is None
    np.testing.assert_array_equal(model.predict_proba(XOR_X), before)


@pytest.mark.parametrize(("model", "X", "y"), [
    (MLPRegressor(early_stopping=True), [[1.0]], [1.0]),
    (MLPClassifier(early_stopping=True), [[0.0], [1.0]], [0, 1])])  # one sample per class
def test_early_stopping_on_too_few_samples_is_refused(model, X, y):
    with pytest.raises(symbp.SymbpError, match="leaves no sample to"):
        model.fit(X, y)
    assert not hasattr(model, "coefs_")


def test_warm_start_with_edited_intercepts_is_refused(xor_model):
    model = copy.deepcopy(xor_model).set_params(warm_start=True)
    model.intercepts_[0] = model.intercepts_[0][:3]
    with pytest.raises(symbp.SymbpError, match=r"intercepts_ \[\(3,\), \(1,\)\]"):
        model.fit(XOR_X, XOR_Y)
    with pytest.raises(symbp.SymbpError, match=r"intercepts_ \[\(3,\), \(1,\)\]; expected"):
        model.predict(XOR_X)


def test_weights_given_as_lists_predict_the_same(xor_model):
    model = copy.deepcopy(xor_model)
    model.coefs_ = [W.tolist() for W in model.coefs_]
    model.intercepts_ = [b.tolist() for b in model.intercepts_]
    np.testing.assert_array_equal(model.predict(XOR_X), xor_model.predict(XOR_X))


def test_a_loaded_model_trains_on_with_warm_start(xor_model, tmp_path):
    xor_model.save(tmp_path / "xor.npz")
    loaded = MLPClassifier.load(tmp_path / "xor.npz").set_params(warm_start=True, max_iter=2)
    assert loaded.train_accuracy_curve_ == xor_model.train_accuracy_curve_
    assert loaded.validation_scores_ is None
    quiet_fit(loaded, XOR_X, XOR_Y)
    assert loaded.n_iter_ == 2 and loaded.t_ == xor_model.t_ + 8
    assert len(loaded.train_accuracy_curve_) == len(loaded.loss_curve_) == \
        len(xor_model.loss_curve_) + 2


def test_a_regression_target_of_no_columns_is_refused():
    with pytest.raises(symbp.SymbpError, match="at least one target per sample"):
        MLPRegressor().fit(XOR_X, np.zeros((4, 0)))


def test_dtype_follows_X_unless_forced(xor_model):
    """dtype=None (the default) trains float32 X in float32 and anything else in float64, as
    scikit-learn does; a forced dtype wins, and a warm start keeps its weights' dtype."""
    assert MLPClassifier().dtype is None
    assert xor_model.coefs_[0].dtype == np.float32  # forced, from float64 X
    model = quiet_fit(MLPClassifier(**dict(XOR, dtype=None, max_iter=2), random_state=0),
                      XOR_X.astype(np.float32), XOR_Y)
    assert all(a.dtype == np.float32 for a in model.coefs_ + model.intercepts_)
    assert model.predict_proba(XOR_X).dtype == np.float64
    model.set_params(warm_start=True)
    quiet_fit(model, XOR_X, XOR_Y)  # float64 X continues the float32 weights
    assert model.coefs_[0].dtype == np.float32
    assert checks.fit_dtype(None, XOR_X) == np.float64
    assert checks.fit_dtype(None, XOR_X.astype(np.int64)) == np.float64
    assert checks.fit_dtype(None, XOR_X.astype(np.float32)) == np.float32
    assert checks.fit_dtype(np.dtype(np.float32), XOR_X) == np.float32


def test_predict_with_weights_of_other_shapes_is_refused(xor_model):
    model = copy.deepcopy(xor_model)
    model.coefs_[0] = model.coefs_[0][:, :3]
    with pytest.raises(symbp.SymbpError, match="expected"):
        model.predict(XOR_X)


def test_another_width_compiles_nothing(xor_model):
    """One compiled module serves every width, feature count and class count of a structure:
    a network of other sizes with the XOR model's structure compiles no Numba function."""
    from numba.core import event

    compiled = []

    class Count(event.Listener):
        def on_start(self, ev):
            pass

        def on_end(self, ev):
            compiled.append(ev.data.get("dispatcher"))

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(30, 5)), rng.randint(0, 2, 30)
    with event.install_listener("numba:compile", Count()):
        model = quiet_fit(MLPClassifier(**dict(XOR, hidden_layer_sizes=(7,), max_iter=3),
                                        random_state=0), X, y)
        model.predict(X)
    assert model.coefs_[0].shape == (5, 7) and xor_model.coefs_[0].shape == (2, 4)
    assert compiled == [] and model.compile_seconds_ == 0.0


class _FakeDispatcher:
    """What jit.compile_call uses of a Numba dispatcher, with a compile of a given length."""

    def __init__(self, seconds, cached):
        import collections
        import types

        self.seconds, self.cached, self.overloads = seconds, cached, {}
        self.stats = types.SimpleNamespace(cache_misses=collections.Counter())
        self._cache = types.SimpleNamespace(state=None)

    def compile(self, signature):
        import time

        self._cache.state = "loading" if self.cached else "missed"
        time.sleep(self.seconds)
        if not self.cached:
            self.stats.cache_misses[signature] += 1
        self._cache.state = "loaded" if self.cached else "missed"
        self.overloads[signature] = True


@pytest.mark.parametrize(("seconds", "cached", "said"), [
    (0.0, True, []), (0.0, False, []),
    (0.8, False, ["compiling the net (once per machine; cached after this)...", "compiled"]),
    (0.8, True, ["loading the net from the cache...", "loaded"])])
def test_a_long_compile_is_announced_and_timed(seconds, cached, said):
    from symbp import jit

    lines = []
    fake = _FakeDispatcher(seconds, cached)
    spent = jit.compile_call(fake, (1.0, np.zeros(2)), "the net", lines.append)
    assert [line.split(" the net")[0] if i else line for i, line in enumerate(lines)] == said
    assert spent == (0.0 if cached else pytest.approx(seconds, abs=0.5))
    assert jit.compile_call(fake, (2.0, np.ones(2)), "the net", lines.append) == 0.0


# -- model files: nothing is read before it is checked ----------------------------------------


def _members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _npy(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _fields(path) -> dict:
    return json.loads(str(np.load(path)["meta"]))


def _rewrite(source, target, *, fields=None, compress=False, **entries):
    """A copy of model file ``source`` with metadata fields changed (``params`` merged into
    the saved ones) and entries replaced (bytes or arrays)."""
    members = _members(source)
    if fields:
        meta = _fields(source)
        for key, value in fields.items():
            meta[key] = {**meta["params"], **value} if key == "params" and value else value
        members["meta.npy"] = _npy(np.array(json.dumps(meta)))
    for name, value in entries.items():
        members[f"{name}.npy"] = value if isinstance(value, bytes) else _npy(value)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(target, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return target


def _header_claiming(shape, dtype="<f4") -> bytes:
    """An .npy file whose header announces ``shape`` but which holds 16 bytes of data."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape})
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + \
        bytes(16)


@pytest.fixture(scope="module")
def good_file(xor_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "good.npz"
    xor_model.save(path)
    return path


def test_load_checks_sizes_before_reading(good_file, tmp_path):
    """A header claiming 2**40 floats, a metadata claiming huge layers, and a 1000:1 zip bomb
    are refused from the directory and headers alone: fast, and with a SymbpError."""
    import time

    cases = [
        (dict(coef_0=_header_claiming((2**40,))), r"coef_0 has shape \(1099511627776,\)"),
        (dict(coef_0=_header_claiming((2, 4), "|O")), "holds Python objects"),
        (dict(fields={"n_features_in": 2**40,
                    "net": [2**40, [4], 1, "logistic", "sigmoid_cross_entropy", True]}),
         "too large to load"),
        (dict(compress=True, classes=np.zeros(2**23)), "would inflate .* zip bomb"),
    ]
    for k, (change, message) in enumerate(cases):
        path = _rewrite(good_file, tmp_path / f"{k}.npz", **change)
        started = time.perf_counter()
        with pytest.raises(symbp.SymbpError, match=message) as error:
            MLPClassifier.load(path)
        assert time.perf_counter() - started < 0.5
        assert str(path) in str(error.value)


@pytest.mark.parametrize(("change", "message"), [
    (dict(fields={"loss": "bogus"}), "'loss' must be one of"),
    (dict(fields={"loss_curve": "0.5"}), "'loss_curve' must be a list of finite numbers"),
    (dict(fields={"loss_curve": [0.5, float("nan")]}), "'loss_curve' must be a list of finite"),
    (dict(fields={"best_loss": float("nan")}), "'best_loss' must be a finite number"),
    (dict(fields={"n_iter": -1}), "'n_iter' must be a whole number"),
    (dict(fields={"n_features_in": True}), "'n_features_in' must be a positive integer"),
    (dict(fields={"net": [3, [4], 1, "logistic", "sigmoid_cross_entropy", True]}),
     r"net \[3, .* is not a fitted network of 2 features"),
    (dict(fields={"net": [2, [4], 1, "rellu", "sigmoid_cross_entropy", True]}),
     "is not a fitted network"),
    (dict(fields={"net": [2, [0], 1, "logistic", "sigmoid_cross_entropy", True]}),
     "is not a fitted network"),
    (dict(fields={"net": [2, [4], 1, "logistic", "hinge", True]}), "is not a fitted network"),
    (dict(fields={"standardized": 1}), "'standardized' must be true or false"),
    (dict(fields={"params": {"bogus": 1}}), "unknown parameter.*bogus"),
    (dict(fields={"params": {"hidden_layer_sizes": "4"}}), "hidden_layer_sizes must be a list"),
    (dict(fields={"params": {"activation": "rellu"}}),
     "unknown activation 'rellu'"),
    (dict(fields={"params": {"activation": "x ** 2 ** 99999"}}), "damaged symbp model file"),
    (dict(fields={"params": {"shuffle": "no"}}),
     "shuffle must be True or False"),
    (dict(fields={"format": "other/1"}), "not a symbp model file"),
    (dict(fields={"estimator": "MLPRegressor"}), "holds a MLPRegressor, not a MLPClassifier"),
    (dict(fields={"params": None}), "'params' must be an object"),
    (dict(meta=np.array("[" * 100_000)), "not JSON"),
    (dict(meta=np.array(5.0)), "not text"),
    (dict(coef_0=np.ones((2, 4), np.complex128)), "coef_0 holds complex128; it must hold real"),
    (dict(coef_0=np.ones((2, 4), np.int64)), "coef_0 holds int64; it must hold real floats"),
    (dict(coef_0=np.full((2, 4), np.inf)), "layer 0 holds NaN or infinite weights"),
    (dict(coef_0=np.full((2, 4), 1e300)), "beyond float32's range"),
    (dict(classes=np.array([0.0, np.nan])), "classes holds NaN or infinite labels"),
    (dict(classes=np.array([1, 0])), "distinct and sorted"),
    (dict(classes=np.array([0, 1, 2])), r"classes has shape \(3,\); the model needs \(2,\)"),
    (dict(extra=np.ones(2)), "entries the model does not have: extra"),
])
def test_load_checks_every_field(good_file, tmp_path, change, message):
    path = _rewrite(good_file, tmp_path / "bad.npz", **change)
    with pytest.raises(symbp.SymbpError, match=message) as error:
        MLPClassifier.load(path)
    assert str(path) in str(error.value)


def test_load_refuses_a_fifo_and_a_folder(tmp_path):
    """A FIFO is refused, not waited on (a writer opens it after 5 s, so that a load that
    blocks fails this test rather than hanging the suite)."""
    import threading

    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    timer = threading.Timer(5.0, lambda: os.close(os.open(fifo, os.O_WRONLY)))
    timer.daemon = True
    timer.start()
    try:
        for path in (fifo, tmp_path):
            with pytest.raises(symbp.SymbpError, match="not a regular file"):
                MLPClassifier.load(path)
    finally:
        timer.cancel()
        if timer.is_alive():  # release a writer that may be waiting for a reader
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))


# -- standardized features ----------------------------------------------------------------


def test_standardize_learns_raw_features_and_survives_save(tmp_path):
    """Features at 1000 + 100 x (and targets at 500 + 300 x**2) train with standardize=True; the
    statistics are the training data's, kept in the model file, and predict takes raw X."""
    X, y = 1000 + 100 * REG_X, 500 + 300 * REG_X[:, 0] ** 2
    model = quiet_fit(MLPRegressor(**REG, learning_rate_init=0.01, max_iter=300,
                                   standardize=True), X, y)
    np.testing.assert_allclose(model.feature_mean_, X.mean(axis=0))
    np.testing.assert_allclose(model.feature_scale_, X.std(axis=0))
    np.testing.assert_allclose(model.target_mean_, [y.mean()])
    assert model.score(X, y) > 0.95
    raw = quiet_fit(MLPRegressor(**REG, learning_rate_init=0.01, max_iter=300), X, y)
    assert raw.feature_mean_ is None and raw.score(X, y) < 0.5  # unscaled: it does not learn
    model.save(tmp_path / "m.npz")
    loaded = MLPRegressor.load(tmp_path / "m.npz")
    assert loaded.standardize and loaded.score(X, y) == model.score(X, y)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_standardize_keeps_constant_columns_and_old_files_load(xor_model, good_file, tmp_path):
    mean, scale = symbp.nn.checks.moments(np.array([[1e300, 3.0], [-1e300, 3.0]]))
    assert mean.tolist() == [0.0, 3.0] and scale.tolist() == [1e300, 1.0]
    meta = _fields(good_file)
    del meta["params"]["standardize"]  # a file written before standardize existed
    old = _rewrite(good_file, tmp_path / "old.npz", meta=np.array(json.dumps(meta)))
    loaded = MLPClassifier.load(old)
    assert not loaded.standardize and loaded.feature_mean_ is None
    assert loaded.predict(XOR_X).tolist() == xor_model.predict(XOR_X).tolist()


# -- interrupted saves --------------------------------------------------------------------


def test_save_removes_stale_temporaries_of_its_target_only(xor_model, tmp_path):
    """Killed saves leave ``.NAME.XXXXXXXX.tmp``: the next save of NAME removes those older than
    STALE_SECONDS that no writer holds locked; it keeps a live writer's (locked or recent),
    other targets', other patterns', symlinks and other users' files."""
    import fcntl

    old = os.path.getmtime(tmp_path) - 3600

    def temporary(name, age=old):
        path = tmp_path / name
        path.write_bytes(b"partial")
        os.utime(path, (age, age))
        return path

    stale = [temporary(".m.npz.abcd_123.tmp"), temporary(".m.npz.zzzzzzzz.tmp")]
    recent = temporary(".m.npz.recent00.tmp", age=os.path.getmtime(tmp_path))
    locked = temporary(".m.npz.locked00.tmp")
    kept = [recent, locked, temporary(".other.npz.abcdefgh.tmp"),
            temporary(".m.npz.abc.tmp"), temporary("m.npz.abcdefgh.tmp"),
            temporary(".m.npzXabcdefgh.tmp"), temporary(".m.npz.abcdefgh.tmp.x")]
    link = tmp_path / ".m.npz.symlink0.tmp"
    link.symlink_to(stale[0])
    kept.append(link)
    if os.getuid() == 0:  # as root: a file of another user is not ours to delete
        foreign = temporary(".m.npz.foreign0.tmp")
        os.chown(foreign, 65534, 65534)
        os.utime(foreign, (old, old))
        kept.append(foreign)
    with open(locked, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        xor_model.save(tmp_path / "m.npz")
    assert not any(p.exists() for p in stale)
    assert all(os.path.lexists(p) for p in kept)
    assert MLPClassifier.load(tmp_path / "m.npz").n_iter_ == xor_model.n_iter_
