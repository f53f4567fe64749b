"""Formula activations and losses, gate-name activations, ``loss="poisson"`` and
``validation_loss_curve_`` (docs/mlp.md, "Any formula is an activation or a loss").

Their lines' gradients are checked against central differences with the built-in ones in
test_nn.py (``test_network_lines_gradients``); here the estimators use them. The structures are
the docs page's (one hidden layer, float64), so the suite compiles them once.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import symbp
from symbp.errors import DataError, ParameterError
from symbp.nn import MLPClassifier, MLPRegressor
from symbp.nn.compiled import network

rng = np.random.RandomState(0)
X = rng.normal(size=(400, 4))
Y = (X[:, 0] * X[:, 1] > 0).astype(int)
TARGET = X[:, 0] + 0.5 * X[:, 1]
GELU = "x * sigmoid(1.702 * x)"
MAE = "mean(abs(out - t))"


def quiet(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", symbp.nn.ConvergenceWarning)
        return model.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def gelu_model():
    return quiet(MLPClassifier(hidden_layer_sizes=(16,), activation=GELU,
                               learning_rate_init=0.01, max_iter=200, random_state=0), X, Y)


@pytest.fixture(scope="module")
def mae_model():
    return quiet(MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", loss=MAE,
                              learning_rate_init=0.01, max_iter=100, random_state=0,
                              early_stopping=True), X, TARGET)


@pytest.fixture
def restore_gates():
    before = dict(symbp.gates.GATES)
    yield
    symbp.gates.GATES.clear()
    symbp.gates.GATES.update(before)


def test_formula_activation_trains_and_is_the_source(gelu_model, tmp_path):
    assert gelu_model.score(X, Y) > 0.95
    assert "h1 = z1 * sigmoid(1.702 * z1)" in gelu_model.expression.splitlines()
    assert "h1[i, j] = z1[i, j]*sigmoid(1.702*z1[i, j])" in gelu_model.source
    gelu_model.save(tmp_path / "gelu.npz")
    loaded = MLPClassifier.load(tmp_path / "gelu.npz")
    assert loaded.activation == GELU
    np.testing.assert_array_equal(loaded.predict_proba(X), gelu_model.predict_proba(X))
    assert loaded.loss_ == gelu_model.loss_ == gelu_model.loss_curve_[-1]
    assert (loaded.n_layers_, loaded.n_outputs_, loaded.out_activation_) == (3, 1, "logistic")


def test_gate_name_activation_is_its_formula(restore_gates):
    """A registered gate as the activation trains exactly as the same formula written out;
    redefining the gate gives another network."""
    symbp.gate("softsign_test", "a / (1 + abs(a))")
    params = dict(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=20,
                  random_state=1, batch_size=50)
    by_gate = quiet(MLPRegressor(activation="softsign_test", **params), X, TARGET)
    by_formula = quiet(MLPRegressor(activation="v / (1 + abs(v))", **params), X, TARGET)
    assert "h1 = softsign_test(z1)" in by_gate.expression
    np.testing.assert_allclose(by_gate.loss_curve_, by_formula.loss_curve_, rtol=1e-12)
    before = network(1, "softsign_test", "squared_error", True).source
    symbp.gate("softsign_test", "a / (1 + a**2)")
    assert network(1, "softsign_test", "squared_error", True).source != before


def test_a_gate_redefined_or_missing_after_fit_is_named(restore_gates, tmp_path):
    """The weights were trained for the gate as it was: predicting after symbp.gate redefined
    it (which once silently gave other predictions), loading the saved model or unpickling it
    in a process without the gate each name the gate and its fitted definition."""
    import pickle

    symbp.gate("softsign_test", "a / (1 + abs(a))")  # the structure of the test above
    model = quiet(MLPRegressor(hidden_layer_sizes=(8,), activation="softsign_test",
                               max_iter=2, random_state=1, batch_size=50), X, TARGET)
    expected = model.predict(X[:5])
    model.save(tmp_path / "gate.npz")
    pickled = pickle.dumps(model)
    symbp.gate("softsign_test", "a / (1 + a**2)")
    fitted = r"fitted with the gate 'softsign_test' defined as 'a / \(1 \+ abs\(a\)\)'"
    with pytest.raises(symbp.SymbpError, match=fitted + r", which is now 'a / \(1 \+ a\*\*2\)"):
        model.predict(X[:5])
    with pytest.raises(symbp.SymbpError, match=fitted):  # nor exported with the new one
        model.export(tmp_path / "gate.py")
    assert not (tmp_path / "gate.py").exists()
    with pytest.raises(symbp.SymbpError, match=fitted + ".*before loading"):
        MLPRegressor.load(tmp_path / "gate.npz")
    del symbp.gates.GATES["softsign_test"]
    with pytest.raises(symbp.SymbpError, match=fitted + ", which is not defined in this "):
        MLPRegressor.load(tmp_path / "gate.npz")
    with pytest.raises(symbp.SymbpError, match=fitted + ", which is not defined in this "):
        pickle.loads(pickled).predict(X[:5])
    symbp.gate("softsign_test", "a / (1 + abs(a))")
    np.testing.assert_array_equal(model.predict(X[:5]), expected)
    np.testing.assert_array_equal(MLPRegressor.load(tmp_path / "gate.npz").predict(X[:5]),
                                  expected)
    np.testing.assert_array_equal(pickle.loads(pickled).predict(X[:5]), expected)


def test_loss_formula_trains_and_validation_losses(mae_model):
    assert mae_model.score(X, TARGET) > 0.95
    assert mae_model.expression.splitlines()[-1] == f"loss = {MAE} + l2 * penalty"
    assert len(mae_model.validation_loss_curve_) == len(mae_model.validation_scores_) \
        == mae_model.n_iter_
    assert np.all(np.isfinite(mae_model.validation_loss_curve_))
    # the validation pass's loss is the formula's value on those rows, without the penalty
    net, part = mae_model._network(), slice(0, 37)
    T = TARGET[part].reshape(-1, 1)
    out, loss = mae_model._forward(net, X[part], np.float64, T, np.ones(37))
    np.testing.assert_allclose(out[:, 0], mae_model.predict(X[part]), rtol=1e-12)
    assert loss == pytest.approx(np.mean(np.abs(out - T)), rel=1e-12)


def test_validation_loss_curve_is_none_without_early_stopping(gelu_model):
    assert gelu_model.validation_loss_curve_ is None
    assert gelu_model.validation_scores_ is None


def test_weighted_validation_loss_is_the_weighted_average(gelu_model):
    """Built-in loss, sample weights: the evaluation pass gives ``np.average`` of the
    per-sample sigmoid cross-entropy (the value early stopping's curve records)."""
    net = gelu_model._network()
    weights = np.random.RandomState(3).uniform(0, 2, 50)
    T = Y[:50].reshape(-1, 1).astype(float)
    out, loss = gelu_model._forward(net, X[:50], np.float64, T, weights)
    each = np.logaddexp(0.0, out[:, 0]) - T[:, 0] * out[:, 0]
    assert loss == pytest.approx(np.average(each, weights=weights), rel=1e-12)


def test_loss_formula_without_w_refuses_sample_weight(mae_model):
    model = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", loss=MAE)
    with pytest.raises(ParameterError, match="does not read the sample weights w"):
        model.fit(X, TARGET, sample_weight=np.ones(len(X)))
    assert not hasattr(model, "coefs_")


def test_classifier_loss_formula_over_labels():
    """A squared hinge over integer labels: one output per class, predictions from the
    largest output, no probabilities."""
    y3 = np.digitize(X[:, 0], [-0.5, 0.5])
    clf = quiet(MLPClassifier(hidden_layer_sizes=(8,), loss="sum(w * hinge(out, y)**2)",
                              learning_rate_init=0.01, max_iter=50, random_state=0), X, y3)
    assert clf.coefs_[-1].shape == (8, 3)
    assert clf.score(X, y3) > 0.8
    assert set(clf.predict(X)) <= {0, 1, 2}
    assert not hasattr(clf, "predict_proba")


@pytest.mark.parametrize(("params", "message"), [
    (dict(activation="__import__('os').system('true')"), "not a formula symbp can read"),
    (dict(activation="x.__class__"), "not a formula symbp can read"),
    (dict(activation="sum(x)"), "not a formula symbp can read"),
    (dict(activation="x * \u0455igmoid(x)"), "not a formula symbp can read"),  # Cyrillic dze
    (dict(activation="x" * 100_000), "longer than"),
    (dict(activation="hinge"), "2 input"),
    (dict(activation=None), "activation must be a string"),
    (dict(loss="out"), "scalar output"),
    (dict(loss="mean(out - t) + y"), "labels"),
    (dict(loss="mean(out); import os"), "not a formula symbp can read"),
])
def test_bad_formulas_are_refused_before_compiling(params, message):
    model = MLPRegressor(**params)
    with pytest.raises(ParameterError, match=message) as info:
        model.fit(X[:10], TARGET[:10])
    assert isinstance(info.value, ValueError)
    assert not hasattr(model, "coefs_")


def test_poisson_checks_its_targets():
    with pytest.raises(DataError, match="negative which is not allowed for Poisson"):
        MLPRegressor(loss="poisson").fit(X[:10], TARGET[:10])
    with pytest.raises(ParameterError, match="standardize=False"):
        MLPRegressor(loss="poisson", standardize=True).fit(X[:10], np.abs(TARGET[:10]))


@pytest.mark.parametrize("written", [f"{MAE}  # the mean absolute error", f"{MAE}\n",
                                     "(mean(abs(out\n - t)))"])
def test_loss_formula_is_one_line_before_the_penalty(written):
    """A comment, a line break or a trailing newline in a loss formula neither swallows nor
    detaches the L2 penalty that follows it in the loss line (the comment once did, silently
    training without the penalty)."""
    lines = symbp.nn.network_lines(1, "tanh", written, True, classifier=False)[0]
    assert lines.splitlines()[-1] == f"loss = {MAE} + l2 * penalty"


@pytest.mark.parametrize(("loss", "message"), [
    ("sum(\u043eut)", "names '\u043eut'"),  # Cyrillic o: named as unknown, not read as a number
    ("sum(out) + sum(B)", "names 'B'"),
    ("mean(out); x = 1", "one expression"),
    ("mean(out)\nloss = 1", "one expression"),
    ("sum(" + "exp(" * 1000 + "out" + ")" * 1001, "nested"),
])
def test_loss_formula_mistakes_are_named(loss, message):
    with pytest.raises(ParameterError, match=message):
        symbp.nn.network_lines(1, "tanh", loss, True, classifier=False)


def test_very_deep_formula_is_a_parameter_error():
    """Deeper than Python's own parser goes: a ParameterError, not a RecursionError (also
    when a model file holds it: load validates the strings with the same functions)."""
    with pytest.raises(ParameterError, match=r"'x\+x\+.*\(10001 characters\).*nested"):
        symbp.nn.network_lines(1, "x+" * 5000 + "x", "squared_error", True)
    with pytest.raises(ParameterError):
        symbp.nn.network_lines(1, "tanh", "sum(" + "out+" * 5000 + "out)", True)


def test_a_loss_not_finite_from_the_start_blames_no_learning_rate():
    """NaN at the first batch, before any step (here inputs near float64's limit overflow the
    first layer; 'log(x)' as the activation does it too): the message points at the formula
    or the inputs, not at learning_rate_init."""
    model = MLPClassifier(hidden_layer_sizes=(16,), activation=GELU, learning_rate_init=0.01,
                          max_iter=2, random_state=0)  # the gelu_model structure
    with pytest.raises(symbp.errors.TrainingError, match="starting weights already give it"
                       ) as info:
        model.fit(np.clip(X, -1.7, 1.7) * 1e308, Y)
    assert "learning_rate_init" not in str(info.value)


def test_save_follows_a_symlink_and_keeps_or_gets_the_permissions(gelu_model, tmp_path):
    """save replaced a link by a regular file (the file it pointed to left stale) and wrote
    every file 0o600 (mkstemp's), whatever the umask or the replaced file's mode."""
    (tmp_path / "v1").mkdir()
    real, link = tmp_path / "v1" / "m.npz", tmp_path / "m.npz"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link.symlink_to(real)
    gelu_model.save(link)
    assert link.is_symlink() and oct(real.stat().st_mode & 0o777) == oct(0o640)
    np.testing.assert_array_equal(MLPClassifier.load(link).predict(X[:5]),
                                  gelu_model.predict(X[:5]))
    old = os.umask(0o022)
    try:
        gelu_model.save(tmp_path / "new.npz")
    finally:
        os.umask(old)
    if os.path.exists("/proc/self/status"):  # the umask is read from there
        assert oct((tmp_path / "new.npz").stat().st_mode & 0o777) == oct(0o644)
