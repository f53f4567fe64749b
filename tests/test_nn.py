"""symbp.nn: MLPs built as symbp expressions and trained by the compiled loop.

The suite compiles a handful of networks (shared through module fixtures); every activation and
loss line is checked against central differences through the pure-Python path instead.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
from conftest import vjp_check

import symbp
from symbp import datasets, loop
from symbp.nn import ACTIVATIONS, LOSSES, MLPClassifier, MLPRegressor, network_lines
from symbp.split import train_test_split

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])
XOR = dict(hidden_layer_sizes=(4,), activation="logistic", solver="sgd", learning_rate_init=0.5,
           momentum=0.9, batch_size=4, max_iter=3000, tol=1e-6)


def quiet_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", symbp.nn.ConvergenceWarning)
        return model.fit(X, y)


@pytest.fixture(scope="module")
def xor_model():
    return quiet_fit(MLPClassifier(**XOR, random_state=0), XOR_X, XOR_Y)


@pytest.fixture(scope="module")
def moons_split():
    data = datasets.moons(n_samples=1000, noise=0.2, seed=0)
    return train_test_split(data.X, data.y, test_size=0.2, rng=np.random.RandomState(0),
                            stratify=data.y)


MOONS = dict(hidden_layer_sizes=(16, 16), activation="tanh", solver="adam",
             learning_rate_init=0.01, batch_size=32, max_iter=60)


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
                                    learning_rate_init=0.002, max_iter=30, random_state=0),
                      X_train, y_train)
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
                               0.9, 0.999, 1e-8)  # in place (out=w); True: all finite
    assert w[0, 0] == pytest.approx(2.00324228689, rel=1e-9)


def test_regressor():
    X = np.linspace(-1, 1, 200).reshape(-1, 1)
    y = np.sin(3 * X[:, 0])
    model = quiet_fit(MLPRegressor(hidden_layer_sizes=(16,), activation="tanh",
                                   learning_rate_init=0.01, batch_size=20, max_iter=300,
                                   random_state=0), X, y)
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
                                 learning_rate_init=rate, alpha=alpha, shuffle=False),
                          dtype="float64", random_state=3)
    model._initialize(2, (4,), 1, np.float64, np.random.RandomState(3))
    before = [a.copy() for pair in zip(model.coefs_, model.intercepts_) for a in pair]
    model.set_params(warm_start=True)
    quiet_fit(model, X, y)
    after = [a for pair in zip(model.coefs_, model.intercepts_) for a in pair]

    lines, shapes, params = network_lines(2, (4,), 1, "logistic", "sigmoid_cross_entropy", True)
    f = symbp.compile(lines, shapes=shapes, wrt=params,
                      inputs=["X", *params, "t", "l2"])
    args = dict(zip(params, before), X=X, t=y.reshape(-1, 1).astype(float),
                l2=0.5 * alpha / len(X))
    _, grads = f.value_and_grad(**args)
    for name, old, new in zip(params, before, after):
        np.testing.assert_allclose((old - new) / rate, grads[name], rtol=1e-9, atol=1e-12)
    vjp_check(f, args)


@pytest.mark.parametrize(("activation", "loss"), [
    *((a, "softmax_cross_entropy") for a in ACTIVATIONS),
    *(("tanh", loss) for loss in LOSSES)])
def test_network_lines_gradients(activation, loss):
    """Every activation and every loss line: compiled gradients (pure Python, no Numba) equal
    central differences on a 3-4-3 network with the L2 penalty."""
    lines, shapes, params = network_lines(3, (4,), 3, activation, loss, True)
    target = "y" if "y" in shapes else "t"
    f = symbp.compile(lines, shapes=shapes, wrt=params, jit=False,
                      inputs=["X", *params, target, "l2"])
    rng = np.random.RandomState(0)
    args = {p: rng.normal(size=shapes[p]) for p in params}
    args["X"] = rng.normal(size=(5, 3))
    args[target] = rng.randint(0, 3, 5) if target == "y" else rng.uniform(size=(5, 3))
    args["l2"] = 0.01
    vjp_check(f, args)


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
    assert theirs - {"max_fun"} <= ours  # max_fun belongs to lbfgs, which we do not offer
    for name in theirs & ours - {"loss"}:
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
                  random_state=0)
assert type(m).__mro__[-2].__module__ == "symbp._estimator"
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
    ([[0.0, 1], [1, 1]], [1, 1], "single class"),
    ([["a", "b"], ["c", "d"]], [0, 1], "must hold numbers"),
    (np.zeros((0, 2)), [], "empty"),
    ([0.0, 1.0], [0, 1], "2-D array"),
    ([[0.0], [1.0]], [0.5, 1.5], "continuous"),
])
def test_bad_fit_input(X, y, message):
    with pytest.raises(symbp.SymbpError, match=message):
        MLPClassifier().fit(X, y)


@pytest.mark.parametrize(("params", "message"), [
    ({"activation": "swish"}, "activation must be one of"),
    ({"solver": "lbfgs"}, "solver must be one of"),
    ({"hidden_layer_sizes": (4, 0)}, "positive integers"),
    ({"learning_rate_init": 0.0}, r"learning_rate_init must be in \(0.0"),
    ({"dtype": "float16"}, "dtype must be"),
    ({"batch_size": 0}, "batch_size"),
    ({"loss": "hinge"}, "loss must be one of"),
])
def test_bad_parameters_fail_before_compiling(params, message):
    model = (MLPRegressor if params.get("loss") == "hinge" else MLPClassifier)(**params)
    with pytest.raises(symbp.SymbpError, match=message):
        model.fit(XOR_X, XOR_Y)


def test_divergence_stops_with_the_last_finite_weights():
    X = np.linspace(-1, 1, 40).reshape(-1, 1) * 1e3
    model = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", solver="sgd",
                         learning_rate_init=1e6, momentum=0.0, batch_size=10, max_iter=50,
                         random_state=0)
    with pytest.raises(symbp.SymbpError, match=r"epoch \d+, batch \d+ of 4.*last finite"):
        model.fit(X, X[:, 0] ** 2)
    assert all(np.isfinite(a).all() for a in model.coefs_ + model.intercepts_)


def test_predict_checks(xor_model):
    with pytest.raises(symbp.SymbpError, match="not fitted"):
        MLPClassifier().predict(XOR_X)
    with pytest.raises(symbp.SymbpError, match="3 features.*fitted with 2"):
        xor_model.predict(np.ones((2, 3)))


def test_predict_proba_only_for_probabilities(moons_split):
    X_train, _, y_train, _ = moons_split
    model = quiet_fit(MLPClassifier(**dict(MOONS, max_iter=2), loss="hinge", random_state=0),
                      X_train, y_train)
    assert not hasattr(model, "predict_proba")
    assert model.predict(X_train[:3]).shape == (3,)


def test_prediction_in_chunks(moons_model, moons_split, monkeypatch):
    X_train = moons_split[0]
    whole = moons_model.predict_proba(X_train)
    monkeypatch.setattr(symbp.nn, "PREDICT_CHUNK", 7)  # 800 rows: 114 chunks and a short one
    # float32 products of other sizes may take BLAS or loops: equal to rounding, not bits
    np.testing.assert_allclose(moons_model.predict_proba(X_train), whole, rtol=1e-5, atol=1e-6)


def test_early_stopping_keeps_the_best_validation_weights(moons_split):
    X_train, _, y_train, _ = moons_split
    model = quiet_fit(MLPClassifier(**dict(MOONS, max_iter=200), early_stopping=True,
                                    n_iter_no_change=3, random_state=0), X_train, y_train)
    assert model.n_iter_ < 200  # stopped by the rule
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_) > 0.9


def test_warm_start_continues(moons_split):
    X_train, _, y_train, _ = moons_split
    model = quiet_fit(MLPClassifier(**dict(MOONS, max_iter=2), warm_start=True,
                                    random_state=0), X_train, y_train)
    first = model.coefs_[0].copy()
    quiet_fit(model, X_train, y_train)
    assert model.n_iter_ == 4 and len(model.loss_curve_) == 4
    assert not np.array_equal(first, model.coefs_[0])


def test_verbose_without_tqdm_prints_lines(moons_split, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X_train, _, y_train, _ = moons_split
    quiet_fit(MLPClassifier(**dict(MOONS, max_iter=2), verbose=True, random_state=0),
              X_train, y_train)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("Iteration 1, loss = ") and "accuracy = " in lines[-1]
