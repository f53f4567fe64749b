"""What MLPClassifier and MLPRegressor share: parameters, the flow of ``fit``, prediction.

The flow of ``fit``: check parameters and data (before any compiling, and before the model
changes: a refused fit leaves a fitted model as it was) -> encode targets -> initialize
weights -> compile the network (cached per structure: depth, activation, loss, penalty and
dtype; the sizes are bound at run time) -> the solver (:mod:`symbp.nn.solvers`).
"""

from __future__ import annotations

import functools
import itertools
import math
import types
import warnings

import numpy as np

from .. import jit as _jit
from ..errors import DataError, ParameterError, SymbpError
from . import checks, persist, solvers
from . import threads as _threads
from .compiled import Network, flat, network
from .network import gates_used, loss_weights_samples
from .split import train_test_split

try:  # with scikit-learn installed the estimators are real scikit-learn estimators
    from sklearn.base import BaseEstimator
except ImportError:  # pragma: no cover - exercised in environments without scikit-learn
    from ._estimator import BaseEstimator

_HE = {"relu", "leaky_relu", "elu", "maxout"}  # He initialization; Glorot for the others

PREDICT_CHUNK = 256
"""Rows per forward pass in predict. Every pass gets exactly this many (the last padded
with copies of row 0), so a row's prediction does not depend on the other rows of the call:
the products take one path (loops or BLAS, one blocking) whatever the number of rows."""


class stochastic_only:
    """A method that exists for the stochastic solvers only (``partial_fit``): with
    ``solver="lbfgs"`` reading it raises AttributeError, so ``hasattr`` is False, as
    scikit-learn's ``available_if(_check_solver)`` does."""

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.method
        if obj.solver not in ("sgd", "adam"):
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{obj.solver} is not stochastic.")
        return types.MethodType(self.method, obj)


class MLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, checks, the training loop."""

    _losses: tuple[str, ...] = ()
    _is_classifier = False

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 loss="auto", dtype=None, standardize=False):
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
        self.max_fun = max_fun
        self.loss = loss
        self.dtype = dtype
        self.standardize = standardize

    # -- fit ------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Train the network on ``X`` (samples x features) and targets ``y``; returns self.

        ``sample_weight`` (one non-negative finite weight per sample, a scalar for all, or
        None for ones) weights the loss as scikit-learn does: each batch's loss is the weighted
        average of its samples' losses and the L2 penalty is divided by the batch's sum of
        weights instead of its size.

        Raises
        ------
        ParameterError, DataError
            For bad parameters or data (before anything is compiled, and leaving a fitted
            model as it was): SymbpErrors that are ValueErrors too, as scikit-learn raises.
        TrainingError
            A SymbpError and ValueError, when the loss or a gradient becomes NaN or infinite: the
            error names the epoch and batch, and the model keeps the last finite weights
            (from before that batch).
        """
        return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight=None, incremental: bool = False, classes=None):
        """The flow of :meth:`fit` and, with ``incremental``, of ``partial_fit``: one epoch
        that continues from the fitted weights and optimizer state (scikit-learn's
        ``_fit(..., incremental=True)``); ``classes``: the classifier's known classes."""
        checked = checks.params(self)
        dtype, hidden = checked["dtype"], checked["hidden"]
        if incremental and self.early_stopping:
            raise ParameterError("partial_fit does not support early_stopping=True; set "
                                 "early_stopping=False or use fit")
        warm = (bool(self.warm_start) or incremental) and hasattr(self, "coefs_")
        who = "partial_fit" if incremental else "warm_start"
        if warm:
            self._check_given_weights(who)
        names = checks.feature_names(X)
        if warm:  # scikit-learn's reset=False: a continued fit checks the names
            checks.check_feature_names(self, names)
        X = checks.features(X, getattr(self, "n_features_in_", None) if warm else None,
                            type(self).__name__)  # weights given by hand: _check_warm_start
        dtype = checks.fit_dtype(dtype, X, self.coefs_[0] if warm else None)
        if warm:
            scaling = self._scaling("feature")
        else:
            scaling = checks.moments(X) if self.standardize else None
        X = checks.prepared(X, dtype, scaling)
        targets, n_outputs, loss, fitted = self._encoded(y, X.shape[0], dtype, warm,
                                                         incremental, classes)
        weights = checks.sample_weights(sample_weight, X.shape[0], dtype)
        if sample_weight is not None and not loss_weights_samples(loss):
            raise ParameterError(f"loss {loss!r} does not read the sample weights w, so "
                                 "sample_weight cannot weight it: write the loss as a weighted "
                                 "sum over samples, e.g. 'sum(w * mean(abs(out - t), axis=1))'")
        rng = self.random_state if isinstance(self.random_state, np.random.RandomState) \
            else np.random.RandomState(self.random_state)
        if warm:
            self._check_warm_start(X.shape[1], hidden, n_outputs, who)
        # drawn before the early-stopping split, in scikit-learn's order: the same seed gives
        # the same initial weights, validation split and batches as its fit
        initial = None if warm else self._initial_weights(X.shape[1], hidden, n_outputs,
                                                          dtype, rng)
        validation = None
        if self.early_stopping and self.solver != "lbfgs":  # as scikit-learn: stochastic only
            binary = self._is_classifier and not fitted.get("_multilabel", False) and \
                len(fitted["classes_"]) == 2
            (X, targets, weights), validation = self._split(X, targets, weights, rng, binary)
        # every check passed: from here on the model changes
        if not warm:
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        self.feature_mean_, self.feature_scale_ = scaling or (None, None)
        for name, value in fitted.items():
            setattr(self, name, value)
        if not warm:
            self.coefs_, self.intercepts_ = initial
            self._start_training_state()
        else:  # lists (given weights may be tuples), updated in place by the solvers
            self.coefs_, self.intercepts_ = list(self.coefs_), list(self.intercepts_)
            if not hasattr(self, "loss_curve_"):  # weights given to an unfitted model
                self._start_training_state()
        self.n_features_in_ = X.shape[1]
        self._fitted_loss = loss
        self._net_key = (X.shape[1], hidden, n_outputs, self.activation, loss, self.alpha > 0)
        self._fitted_gates = gates_used(self.activation, loss)
        if self.solver != "lbfgs" and self.batch_size != "auto" and \
                self.batch_size > X.shape[0]:  # scikit-learn's warning, word for word
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped", UserWarning, stacklevel=3)
        batch = X.shape[0] if self.solver == "lbfgs" else solvers.batch_size(self, X.shape[0])
        with _threads.limited(batch, (X.shape[1], *hidden, n_outputs)):
            if self.solver == "lbfgs":
                solvers.lbfgs(self, self._network(), X, targets, weights, dtype)
            else:
                solvers.stochastic(self, self._network(), X, targets, weights, rng, dtype,
                                   validation, incremental)
        return self

    def _split(self, X, targets, weights, rng, binary: bool = False):
        """``((X, targets, weights), (X_val, targets_val, weights_val))``: the validation part
        of early stopping, split as scikit-learn splits it (its ``train_test_split`` with the
        fit's RandomState when scikit-learn is installed, so the same seed gives the same
        parts; :func:`symbp.nn.split.train_test_split` otherwise), stratified for ``binary``
        targets only, as scikit-learn's MLPs (not for more classes or multilabel targets). A
        split that leaves the training part empty, fewer than 2 samples to validate on
        (scikit-learn's minimum) or either part without weight is refused."""
        n = X.shape[0]
        refused = DataError(
            f"early_stopping: validation_fraction={self.validation_fraction} of {n} sample(s) "
            "leaves no sample to " + ("validate on for some class" if self._is_classifier
                                      else "train or validate on") +
            "; give more samples, a larger validation_fraction or early_stopping=False")
        if n < 2:
            raise refused
        labels = None
        if binary:  # the class of each sample, from a (n,), (n, 1) or one-hot (n, 2) target
            labels = targets if targets.ndim == 1 else \
                targets[:, 0] if targets.shape[1] == 1 else targets.argmax(axis=1)
        try:
            try:
                from sklearn.model_selection import train_test_split as sklearn_split
            except ImportError:  # without scikit-learn: the same rules, symbp.nn.split
                train, test, _, _ = train_test_split(
                    np.arange(n), np.arange(n), test_size=self.validation_fraction, rng=rng,
                    stratify=labels)
            else:
                train, test = sklearn_split(np.arange(n), test_size=self.validation_fraction,
                                            random_state=rng, stratify=labels)
        except ValueError:
            raise refused from None
        targets, t_val = targets[train], targets[test]
        if train.shape[0] == 0 or test.shape[0] == 0:
            raise refused
        if test.shape[0] < 2:
            raise DataError(
                f"early_stopping: validation_fraction={self.validation_fraction} of {n} "
                f"samples leaves {test.shape[0]} to validate on: The validation set is too "
                "small. Increase 'validation_fraction' or the size of your dataset.")
        for part, rows in (("training", train), ("validation", test)):
            if not weights[rows].any():  # nothing to learn from, or to score on
                raise DataError(
                    f"early_stopping: every sample weight of the {part} part ({rows.shape[0]} "
                    f"of {n} samples) is 0; give those samples weight, or set "
                    "early_stopping=False")
        return (X[train], targets, weights[train]), (X[test], t_val, weights[test])

    def _check_given_weights(self, who: str) -> None:
        """Refuse ``coefs_``/``intercepts_`` (fitted, edited since, or set by hand on an
        unfitted model) that a continued fit (``who``: warm_start or partial_fit) cannot start
        from: not a list of arrays, or arrays that are not real finite numbers."""
        fix = _fresh_fit(who)
        for name in ("coefs_", "intercepts_"):
            value = getattr(self, name, None)
            if not isinstance(value, (list, tuple)) or not value:
                raise DataError(f"{who}: {name} must be a non-empty list of arrays, one per "
                                f"layer, got {type(value).__name__}; {fix}")
            for k, array in enumerate(value):
                try:
                    array = checks.numeric(f"{name}[{k}]", array)
                except DataError as exc:
                    raise type(exc)(f"{who}: {exc}; {fix}") from None
                if not np.isfinite(array).all():
                    raise DataError(f"{who}: {name}[{k}] holds NaN or infinite values, so "
                                    f"training cannot start from it; {fix}")

    def _check_warm_start(self, n_features, hidden, n_outputs, who: str = "warm_start"):
        """Refuse a warm start (or partial_fit: ``who``) whose data or parameters ask for other
        layers than the fitted ``coefs_``/``intercepts_`` have (which may have been edited
        since)."""
        shapes = self._layer_shapes(n_features, hidden, n_outputs)
        coefs = [np.shape(W) for W in self.coefs_]
        intercepts = [np.shape(b) for b in self.intercepts_]
        fix = _fresh_fit(who)
        if coefs[0][:1] != (n_features,) or coefs[-1][1:] != (shapes[-1][1],):
            raise DataError(f"{who}: X has {n_features} features and y needs "
                            f"{n_outputs} outputs, but the fitted layers are {coefs}; {fix}")
        if coefs != shapes or intercepts != [(s[1],) for s in shapes]:
            raise DataError(
                f"{who}: the fitted layers (coefs_ {coefs}, intercepts_ {intercepts}) do "
                f"not match hidden_layer_sizes={hidden} and activation={self.activation!r} "
                f"(coefs_ {shapes}); {fix}")

    def _scaling(self, what: str):
        """The fitted ``(mean, scale)`` of the features or targets, or None."""
        mean = getattr(self, f"{what}_mean_", None)
        return None if mean is None else (mean, getattr(self, f"{what}_scale_"))

    def _network(self) -> Network:
        """The compiled structure of the fitted network (its depth, activation, loss and
        penalty: every width shares it)."""
        self._check_gates()
        _, hidden, _, activation, loss, l2 = self._net_key
        return network(len(hidden), activation, loss, l2, self._is_classifier)

    def _check_gates(self) -> None:
        """SymbpError if a custom gate the fitted network calls is defined otherwise now (or
        not at all) than when the model was fitted: the weights were trained for that one."""
        activation, loss = self._net_key[3:5]
        fitted = getattr(self, "_fitted_gates", None)  # None: pickled before it was recorded
        if fitted is not None and gates_used(activation, loss) != fitted:
            now = dict(gates_used(activation, loss))
            name, text = next((n, t) for n, t in fitted if now.get(n) != t)
            raise SymbpError(
                f"the model was fitted with the gate {name!r} defined as {text!r}, which is " +
                (f"now {now[name]!r}" if name in now else "not defined in this process") +
                f": define it as it was (symbp.gate({name!r}, {text!r})) before using the "
                "model, or fit it again")

    def _dims(self) -> np.ndarray:
        """The sizes of the network's dimensions: features, hidden widths, outputs."""
        n_features, hidden, n_outputs = self._net_key[:3]
        return np.array([n_features, *hidden, n_outputs], np.int64)

    def _layer_shapes(self, n_features, hidden, n_outputs,
                      activation=None) -> list[tuple[int, int]]:
        """The shape of each ``coefs_`` entry (a maxout layer holds two pieces side by side)
        for ``activation`` (default: the parameter's)."""
        maxout = (self.activation if activation is None else activation) == "maxout"
        sizes = (n_features, *hidden, n_outputs)
        return [(fan_in, (2 if k < len(hidden) and maxout else 1) * fan_out)
                for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes))]

    def _initialize(self, n_features, hidden, n_outputs, dtype, rng) -> None:
        """Set new initial weights (:meth:`_initial_weights`) and a new training state."""
        self.coefs_, self.intercepts_ = self._initial_weights(n_features, hidden, n_outputs,
                                                              dtype, rng)
        self._start_training_state()

    def _initial_weights(self, n_features, hidden, n_outputs, dtype, rng) -> tuple:
        """``(coefs, intercepts)`` drawn from ``rng``: Glorot-uniform weights (scikit-learn's
        scheme and order of draws) or He-uniform for the relu family."""
        coefs, intercepts = [], []
        sizes = (n_features, *hidden, n_outputs)
        for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            hidden_layer = k < len(hidden)
            pieces = 2 if hidden_layer and self.activation == "maxout" else 1
            if hidden_layer and self.activation in _HE:
                bound, bias = math.sqrt(6.0 / fan_in), 0.0
            else:
                factor = 2.0 if self.activation == "logistic" else 6.0
                bound = bias = math.sqrt(factor / (fan_in + fan_out))
            coefs.append(rng.uniform(-bound, bound, (fan_in, pieces * fan_out)).astype(dtype))
            intercepts.append(rng.uniform(-bias, bias, pieces * fan_out).astype(dtype)
                              if bias else np.zeros(pieces * fan_out, dtype))
        return coefs, intercepts

    def _start_training_state(self) -> None:
        """The bookkeeping of a new training run (epochs, curves, best scores), also for
        weights set on an unfitted model before a ``warm_start`` fit."""
        self.n_iter_, self.t_ = 0, 0
        self._no_improvement_count = 0
        self.loss_curve_ = []
        self.best_loss_ = None if self.early_stopping else np.inf  # scikit-learn's
        self.validation_scores_ = [] if self.early_stopping else None
        self.validation_loss_curve_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        if self._is_classifier:
            self.train_accuracy_curve_ = []

    def _param_arrays(self, dtype, store: bool = True) -> list[np.ndarray]:
        """The network's parameters in its input order, as contiguous arrays of ``dtype``: the
        very arrays of ``coefs_``/``intercepts_``, which become those arrays when ``store``
        (training; prediction leaves the model as it is); maxout layers are split into two
        pieces."""
        out = []
        if store:
            self.coefs_, self.intercepts_ = list(self.coefs_), list(self.intercepts_)
        for k, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            W, b = np.ascontiguousarray(W, dtype), np.ascontiguousarray(b, dtype)
            if store:
                self.coefs_[k], self.intercepts_[k] = W, b
            if self._net_key[3] == "maxout" and k < len(self.coefs_) - 1:
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
            if self._net_key[3] == "maxout" and layer < len(self.coefs_) - 1:
                W, b, V, c = arrays[k:k + 4]
                self.coefs_[layer] = np.hstack([W, V])
                self.intercepts_[layer] = np.concatenate([b, c])
                k += 4
            else:
                self.coefs_[layer], self.intercepts_[layer] = arrays[k], arrays[k + 1]
                k += 2

    def _compiled(self, net: Network, X, T, dims):
        """The network's compiled entry point for these arrays' types, compiled (or loaded from
        Numba's cache) here, before any clock starts, and the seconds spent compiling (0.0
        when it was cached); with ``verbose``, a compile that takes longer than a moment is
        announced and timed."""
        run = net.run()
        theta = np.empty(0, X.dtype)
        args = (X[:0], T[:0], X[:0, 0], theta, theta, theta, theta, theta, dims,
                np.empty(0, np.int64), np.empty((0, int(dims[-1])), X.dtype), False, 1, 0, 0.0,
                0.0, False, 0.0, 0.0, 0.0, 0.0, 0, 0.0)
        structure = (f"{len(dims) - 2} hidden layer{'s' * (len(dims) != 3)}, "
                     f"{self._net_key[3]}, {self._net_key[4]}, {X.dtype}")
        seconds = _jit.compile_call(run, args, f"the network: {structure}",
                                    print if self.verbose else None)
        return run, seconds

    # -- prediction -----------------------------------------------------------------------

    def _outputs(self, X) -> np.ndarray:
        """The network's output rows (before the output function) for checked input ``X``:
        float32 when the model and ``X`` are both float32, float64 otherwise, as
        scikit-learn's (a float32 model computes in float32 and returns float64 for float64
        ``X``)."""
        self._check_fitted()
        net = self._network()
        dtype = np.asarray(self.coefs_[0]).dtype
        if dtype not in (np.float32, np.float64):
            raise DataError(f"coefs_ hold {dtype}; they must be float32 or float64 arrays")
        checks.check_feature_names(self, checks.feature_names(X))
        X = checks.features(X, self.n_features_in_, type(self).__name__)
        given = X.dtype
        X = checks.prepared(X, dtype, self._scaling("feature"))
        out = self._forward(net, X, dtype)
        if given != np.float32:
            out = out.astype(np.float64, copy=False)
        bad = ~np.isfinite(out)
        if bad.any():  # finite weights can still overflow on some inputs: never a NaN answer
            row = int(np.argwhere(bad)[0][0])
            raise DataError(f"the network's output is NaN or infinite for {bad.any(axis=1).sum()}"
                            f" row(s) of X, the first at row {row}: its weights or these inputs "
                            f"are too large for {np.dtype(dtype).name} (a fit that diverged?)")
        return out

    def _forward(self, net: Network, X, dtype, targets=None, weights=None):
        """The output rows of checked ``X`` (``dtype``) through the compiled entry point, in
        passes of :data:`PREDICT_CHUNK` rows; given encoded ``targets`` and sample
        ``weights``, one pass over all rows that also returns the data loss (the loss as
        training defines it, without the penalty): ``(outputs, loss)``."""
        dims = self._dims()
        shapes = self._layer_shapes(int(dims[0]), tuple(map(int, dims[1:-1])), int(dims[-1]),
                                    self._net_key[3])  # the fitted activation, not a new one
        coefs = [np.shape(W) for W in self.coefs_]
        intercepts = [np.shape(b) for b in self.intercepts_]
        if coefs != shapes or intercepts != [(s[1],) for s in shapes]:
            raise DataError(f"coefs_/intercepts_ do not have the fitted network's shapes "
                            f"(coefs_ {coefs}, intercepts_ {intercepts}; expected coefs_ "
                            f"{shapes}, intercepts_ {[(s[1],) for s in shapes]})")
        theta = flat(self._param_arrays(dtype, store=False))
        run, _ = self._compiled(net, X, np.zeros(0, np.int64) if net.labels
                                else np.zeros((0, int(dims[-1])), dtype), dims)
        rows = X.shape[0]
        evaluate = targets is not None
        pad = 0 if evaluate else -rows % PREDICT_CHUNK  # to whole passes; the padding's
        if pad:                                          # outputs are dropped
            X = np.concatenate([X, np.repeat(X[:1], pad, 0)])
        n = X.shape[0]
        if not evaluate:
            targets = np.zeros(n, np.int64) if net.labels else np.zeros((n, int(dims[-1])), dtype)
            weights = np.ones(n, dtype)
        result = np.empty((n, int(dims[-1])), dtype)
        unused, grad = np.empty(0, dtype), np.empty_like(theta)  # grad: views are taken
        total = run(X, targets, weights, theta, unused, unused, unused, grad, dims,
                    np.arange(n, dtype=np.int64), result, True,
                    max(n, 1) if evaluate else PREDICT_CHUNK, 0, 0.0, 0.0, False, 0.0, 0.0,
                    0.0, 0.0, 0, 0.0)[0]
        if not evaluate:
            return result[:rows]
        weight = float(np.sum(weights, dtype=np.float64))
        return result, (total / weight if weight > 0 else math.nan)

    @property
    def n_layers_(self) -> int:
        """The number of layers, input and output layers included (scikit-learn's)."""
        return len(self._net_key[1]) + 2

    @property
    def n_outputs_(self) -> int:
        """The number of outputs: one for a two-class cross-entropy classifier, else one per
        class, label or target (scikit-learn's)."""
        return self._net_key[2]

    @property
    def out_activation_(self) -> str:
        """The output function turning the network's output into predictions, in
        scikit-learn's names: ``'softmax'``, ``'logistic'`` (two classes, multilabel),
        ``'exp'`` (Poisson) or ``'identity'`` (squared error, hinge, loss formulas)."""
        return {"softmax_cross_entropy": "softmax", "sigmoid_cross_entropy": "logistic",
                "poisson": "exp"}.get(self._net_key[4], "identity")

    def _check_fitted(self) -> None:
        if not hasattr(self, "coefs_"):
            raise checks.not_fitted(type(self).__name__)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # converted to dense, up to checks.SPARSE_DENSE_LIMIT
        return tags

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
        persist.save(self, path)

    def export(self, path):
        """Write the fitted forward pass as one Python module that needs NumPy and Numba only
        (no symbp, no scikit-learn): ``predict(X)`` as this model's, ``predict_proba(X)``
        for a cross-entropy classifier, ``outputs(X)`` the network's output rows; the
        features (and a regressor's targets) scaled as ``standardize=True`` fitted them. The
        weights are written exactly (base64 of their bytes), the network's layers as the
        generated code of :meth:`symbp.Function.export`. Written atomically; returns the
        absolute path.

        Raises
        ------
        ExportError
            For a path that is a folder, does not end in ``.py`` or lies in a missing folder,
            or class labels that are not numbers or strings.
        """
        from .export import export

        return export(self, path)

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
        return persist.load(cls, path)


def _fresh_fit(who: str) -> str:
    """How to train a new network instead of continuing (``who``: warm_start or
    partial_fit)."""
    return "set warm_start=False to train a new network" if who == "warm_start" else \
        "call fit to train a new network"
