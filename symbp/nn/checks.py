"""The estimators' checks of parameters and data, all made before anything is compiled."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..errors import DataError, DataTypeError, NotFittedError, ParameterError
from .network import LOSSES, activation_template, loss_target

try:  # with scikit-learn installed its own warning and "not fitted" error classes
    from sklearn.exceptions import DataConversionWarning
    from sklearn.exceptions import NotFittedError as _SklearnNotFitted

    class NotFitted(NotFittedError, _SklearnNotFitted):
        """Not fitted yet: a SymbpError and scikit-learn's ``NotFittedError``."""
except ImportError:  # pragma: no cover - exercised in environments without scikit-learn
    NotFitted = NotFittedError

    class DataConversionWarning(UserWarning):  # type: ignore[no-redef]
        """Data was converted to the shape or type the estimator needs."""


def params(model) -> dict:
    """The parameters validated, with ``hidden`` as a tuple and ``dtype`` a NumPy dtype (None
    when the model's ``dtype`` is None: the fit follows X, :func:`fit_dtype`)."""
    hidden = model.hidden_layer_sizes
    hidden = (hidden,) if isinstance(hidden, numbers.Integral) else tuple(hidden)
    if not all(isinstance(h, numbers.Integral) and h > 0 for h in hidden):
        raise ParameterError(f"hidden_layer_sizes must be positive integers, got "
                             f"{model.hidden_layer_sizes!r}")
    activation_template(model.activation)  # a name, a gate or a formula in one variable
    choice("solver", model.solver, ("lbfgs", "sgd", "adam"))
    choice("learning_rate", model.learning_rate, ("constant", "invscaling", "adaptive"))
    if not model._is_classifier and isinstance(model.loss, (tuple, list, numbers.Integral)):
        raise ParameterError(  # MLPRegressor((64,)): scikit-learn 1.7+ reads it as the loss
            f"loss must be one of 'squared_error', 'poisson' or a formula, got "
            f"{model.loss!r}: MLPRegressor's first positional parameter is loss, as in "
            f"scikit-learn; write hidden_layer_sizes={model.loss!r}")
    if not isinstance(model.loss, str) or model.loss in LOSSES:
        choice("loss", model.loss, ("auto", *model._losses))
    elif model.loss != "auto":
        loss_target(model.loss, model._is_classifier)  # a formula over out, t (or y) and w
    dtype = None  # None: follow X (fit_dtype)
    if model.dtype is not None:
        try:
            dtype = np.dtype(model.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ParameterError(f"dtype must be None, 'float32' or 'float64', got "
                                 f"{model.dtype!r}")
    number("alpha", model.alpha, low=0.0)
    number("learning_rate_init", model.learning_rate_init, low=0.0, open_low=True)
    number("power_t", model.power_t, low=0.0)
    number("momentum", model.momentum, low=0.0, high=1.0)
    number("beta_1", model.beta_1, low=0.0, high=1.0, open_high=True)
    number("beta_2", model.beta_2, low=0.0, high=1.0, open_high=True)
    number("epsilon", model.epsilon, low=0.0, open_low=True)
    number("tol", model.tol, low=0.0)
    number("validation_fraction", model.validation_fraction, low=0.0, high=1.0,
            open_high=True)  # scikit-learn's [0, 1): 0 is refused by early stopping alone
    if model.early_stopping and model.validation_fraction == 0:
        raise ParameterError("validation_fraction must be in (0.0, 1.0) with "
                             "early_stopping=True (0.0 leaves nothing to validate on), got "
                             f"{model.validation_fraction!r}")
    state = model.random_state
    if not (state is None or isinstance(state, np.random.RandomState) or
            isinstance(state, numbers.Integral) and not isinstance(state, bool)
            and 0 <= state < 2**32):
        raise ParameterError(f"random_state must be an int in the range [0, 4294967295], an "
                             f"instance of 'numpy.random.mtrand.RandomState' or None, got "
                             f"{state!r}" + (" (a numpy Generator is not supported, as in "
                                             "scikit-learn)"
                                             if isinstance(state, np.random.Generator) else ""))
    for name in ("max_iter", "n_iter_no_change", "max_fun"):
        value = getattr(model, name)
        if name == "n_iter_no_change" and isinstance(value, numbers.Real) and \
                not isinstance(value, bool) and value == math.inf:
            continue  # scikit-learn's Options(Real, {np.inf}): never stop for no improvement
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name} must be a positive integer"
                                 f"{' or np.inf' if name == 'n_iter_no_change' else ''}, got "
                                 f"{value!r}")
    if model.batch_size != "auto" and (not isinstance(model.batch_size, numbers.Integral)
                                      or isinstance(model.batch_size, bool)
                                      or model.batch_size < 1):
        raise ParameterError(f"batch_size must be 'auto' or a positive integer, got "
                             f"{model.batch_size!r}")
    for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping",
                 "standardize", "verbose"):
        value = getattr(model, name)
        if not isinstance(value, (bool, np.bool_, numbers.Integral)) or \
                (name != "verbose" and value not in (0, 1)) or value < 0:
            raise ParameterError(f"{name} must be True or False, got {value!r}")
    return {"hidden": tuple(int(h) for h in hidden), "dtype": dtype}


SPARSE_DENSE_LIMIT = 2**30
"""Bytes a sparse ``X`` may take once converted to a dense float64 array (1 GiB): the
network's first layer multiplies dense rows, so a larger sparse ``X`` is refused."""


def features(X, n_features=None, who: str = "this model") -> np.ndarray:
    """``X`` as an array, checked: 2-D, not empty, finite numbers, and ``n_features`` columns
    when given (``who`` names the estimator in that message). A sparse matrix (CSR, CSC or any
    SciPy format) is converted to a dense array when that takes at most
    :data:`SPARSE_DENSE_LIMIT` bytes."""
    if X is None:
        raise DataError("X is None; expected an array of samples x features")
    if _is_sparse(X):
        shape = tuple(getattr(X, "shape", ()))
        if n_features is not None and len(shape) == 2 and shape[1] != n_features:
            raise _other_features(shape[1], n_features, who)  # before any dense copy
        X = _densified(X)
    X = numeric("X", X)
    if X.ndim == 1:
        raise DataError(f"Expected a 2-D array X (samples x features), got a 1-D array of "
                        f"shape {X.shape} instead. Reshape your data either using "
                        "array.reshape(-1, 1) if your data has a single feature or "
                        "array.reshape(1, -1) if it contains a single sample.")
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise DataError(f"X is empty: Found array with 0 sample(s) (shape={X.shape}) while a "
                        "minimum of 1 is required.")
    if X.shape[1] == 0:
        raise DataError(f"X is empty: Found array with 0 feature(s) (shape={X.shape}) while a "
                        "minimum of 1 is required.")
    if n_features is not None and X.shape[1] != n_features:
        raise _other_features(X.shape[1], n_features, who)
    check_finite("X", X)
    return X


def _other_features(got: int, n_features: int, who: str) -> DataError:
    """The error for X of ``got`` features given to a model fitted on ``n_features``."""
    return DataError(f"X has {got} features, but {who} is expecting {n_features} features as "
                     "input (the number it was fitted with).")


def _is_sparse(X) -> bool:
    """A SciPy sparse matrix or array, recognised without importing SciPy."""
    module = type(X).__module__ or ""
    return module.startswith("scipy.sparse") and hasattr(X, "toarray")


def _densified(X, name: str = "X") -> np.ndarray:
    """A sparse ``X`` (or multilabel ``y``: ``name``) as a dense array, refused above
    :data:`SPARSE_DENSE_LIMIT` bytes."""
    shape = tuple(getattr(X, "shape", ()))
    if len(shape) != 2:
        raise DataError(f"sparse {name} must be 2-D, got shape {shape}")
    size = shape[0] * shape[1] * 8
    if size > SPARSE_DENSE_LIMIT:
        need = "the network's first layer needs" if name == "X" else "training needs"
        fix = "reduce its features, e.g. with TruncatedSVD, or train on fewer rows" \
            if name == "X" else "train on fewer rows"
        raise DataError(
            f"sparse {name} of shape {shape} would take {_bytes(size)} as the dense array "
            f"{need} (limit {_bytes(SPARSE_DENSE_LIMIT)}, symbp.nn.checks.SPARSE_DENSE_LIMIT); "
            f"{fix}")
    X = X.toarray()
    if X.dtype.kind == "c":
        raise DataError(f"{name} holds complex numbers: Complex data not supported")
    return X


def _bytes(size: int) -> str:
    """A size in bytes, readable: ``'1.5 GiB'``, ``'720 bytes'``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def feature_names(X):
    """The column names of a data frame ``X`` (pandas, polars: anything with ``columns`` and a
    2-D ``shape``) as an object array when they are all strings, as scikit-learn records them;
    None for other containers and for names that are all non-strings (pandas' default integer
    columns); names that mix strings and other types are refused with scikit-learn's
    TypeError."""
    columns = getattr(X, "columns", None)
    if columns is None or _is_sparse(X) or len(getattr(X, "shape", ())) != 2:
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.size == 0:
        return None
    types = sorted({type(v).__qualname__ for v in names})
    if len(types) > 1 and "str" in types:
        raise DataTypeError(
            "Feature names are only supported if all input features have string names, but "
            f"your input has {types} as feature name / column name types. If you want feature "
            "names to be stored and validated, you must convert them all to strings, by using "
            "X.columns = X.columns.astype(str) for example. Otherwise you can remove feature / "
            "column names from your input data, or convert them all to a non-string data type.")
    return names if types == ["str"] else None


def check_feature_names(model, names) -> None:
    """Compare the column names of new data (``names``, from :func:`feature_names`) with the
    fitted ``feature_names_in_`` as scikit-learn does: a warning when only one of them has
    names, a DataError naming the unseen and missing names (or the order) when they
    differ."""
    fitted = getattr(model, "feature_names_in_", None)
    who = type(model).__name__
    if fitted is None and names is None:
        return
    if fitted is None:
        warnings.warn(f"X has feature names, but {who} was fitted without feature names",
                      UserWarning, stacklevel=4)
        return
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {who} was fitted with feature "
                      "names", UserWarning, stacklevel=4)
        return
    if len(fitted) == len(names) and all(a == b for a, b in zip(fitted, names)):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unseen = sorted(set(names) - set(fitted))
    missing = sorted(set(fitted) - set(names))

    def listed(values):
        shown = [f"- {v}\n" for v in values[:5]]
        return "".join(shown) + ("- ...\n" if len(values) > 5 else "")
    if unseen:
        message += "Feature names unseen at fit time:\n" + listed(unseen)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listed(missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise DataError(message)


def prepared(X, dtype, scaling=None) -> np.ndarray:
    """Checked ``X`` centered and scaled by ``scaling`` (``(mean, scale)`` in float64, or
    None) and cast to a contiguous array of ``dtype`` (values beyond its range refused)."""
    if scaling is not None:
        mean, scale = scaling
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: refused after the cast
            X = (np.asarray(X, np.float64) - mean) / scale
    return cast_finite("X", X, dtype, "features")


def fit_dtype(dtype, X: np.ndarray, fitted=None):
    """The dtype a fit trains in: ``dtype`` when the model forces one, else the dtype of the
    weights a warm start continues (``fitted``: ``coefs_[0]``, or None), else scikit-learn's
    rule: float32 ``X`` stays float32, anything else is float64."""
    if dtype is not None:
        return dtype
    if fitted is not None and np.asarray(fitted).dtype in (np.float32, np.float64):
        return np.asarray(fitted).dtype
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def sample_weights(sample_weight, n: int, dtype) -> np.ndarray:
    """The sample weights as a contiguous vector of ``dtype``, checked as scikit-learn's
    ``_check_sample_weight`` does: None gives ones, a scalar that value for every sample, an
    array must be shape ``(n,)``, finite and non-negative."""
    if sample_weight is None:
        return np.ones(n, dtype)
    weights = numeric("sample_weight", sample_weight)
    if weights.ndim == 0:
        weights = np.full(n, weights, np.float64)
    if weights.ndim > 1:
        raise DataError(f"Sample weights must be 1D array or scalar, got {weights.ndim}D array "
                        f"of shape {weights.shape}. Expected either a scalar value or a 1D "
                        f"array of length {n}.")
    if weights.shape != (n,):
        raise DataError(f"sample_weight.shape == {weights.shape}, expected {(n,)}: one "
                        f"weight per sample of X")
    check_finite("sample_weight", weights)
    if (weights < 0).any():
        first = int(np.flatnonzero(weights < 0)[0])
        raise DataError(f"Negative values in data passed to sample_weight (the first at row "
                        f"{first}: {weights[first]!r}); weights must be non-negative")
    if not weights.any():
        raise DataError("Sample weights must contain at least one non-zero number (all "
                        f"{n} are 0)")
    with np.errstate(over="ignore"):
        total = np.sum(weights, dtype=np.float64)
    if not np.isfinite(total):  # a batch's sum would be infinite: every weight would become 0
        raise DataError(f"sample_weight sums to more than float64 can hold (largest weight "
                        f"{weights.max():.4g}); divide the weights by a common factor (only "
                        "their ratios and alpha's strength, alpha / sum of weights, matter)")
    return cast_finite("sample_weight", weights, dtype, "sample weights")


def choice(name, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, allowed))}, "
                             f"got {value!r}")


def number(name, value, *, low=None, high=None, open_low=False, open_high=False) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer beyond float64
        finite = False
    if not finite:
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value < low or (open_low and value == low)) or \
            high is not None and (value > high or (open_high and value == high)):
        right = ")" if open_high or high is None else "]"
        interval = f"{'(' if open_low else '['}{low}, {'inf' if high is None else high}{right}"
        raise ParameterError(f"{name} must be in {interval}, got {value!r}")


def moments(X) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation in float64 (1 for a constant column),
    computed on columns divided by their largest magnitude so that 1e300 does not overflow."""
    X = np.asarray(X, np.float64)
    peak = np.abs(X).max(axis=0)
    peak = np.where(peak > 0, peak, 1.0)
    scaled = X / peak
    mean, std = scaled.mean(axis=0) * peak, scaled.std(axis=0) * peak
    return mean, np.where(std > 0, std, 1.0)


def check_finite(name, array) -> None:
    """Refuse NaN or infinite values, naming the first (row, column)."""
    bad = ~np.isfinite(array)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"row {at[0]}, column {at[1]}" if len(at) == 2 else f"row {at[0]}"
        raise DataError(f"{name} holds {bad.sum()} NaN or infinite value(s), the first at "
                        f"{where}")


def cast_finite(name, array, dtype, what) -> np.ndarray:
    """``array`` (finite) as a contiguous array of ``dtype``, refusing values that overflow
    to infinity on the cast (1e39 in float32), naming the first (row, column)."""
    with np.errstate(over="ignore"):
        cast = np.ascontiguousarray(array, dtype=dtype)
    bad = ~np.isfinite(cast)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"row {at[0]}, column {at[1]}" if len(at) == 2 else f"row {at[0]}"
        limit = np.finfo(dtype).max
        raise DataError(
            f"{name} holds {bad.sum()} value(s) beyond the range of {np.dtype(dtype).name} "
            f"(magnitude above {limit:.4g}), the first at {where}: {array[at]!r}; scale "
            f"the {what} or use dtype='float64'")
    return cast


def numeric(name, values) -> np.ndarray:
    """``values`` as an array of real numbers (an object array of numbers is converted; a
    missing value, ``pandas.NA``, becomes NaN, which the finite checks then name)."""
    try:
        array = np.asarray(values)
    except ValueError as exc:
        raise DataError(f"{name} is not a rectangular array: {exc}") from None
    if array.dtype.kind == "c":
        raise DataError(f"{name} holds complex numbers: Complex data not supported")
    if array.dtype.kind == "O":
        try:
            try:
                array = array.astype(np.float64)
            except TypeError:  # nullable pandas columns (Float64, Int64) hold pandas.NA
                missing = np.frompyfunc(_missing, 1, 1)(array).astype(bool)
                if not missing.any():
                    raise
                array = np.where(missing, np.nan, array).astype(np.float64)
        except TypeError as exc:  # NumPy's message: "argument must be a string or a number"
            raise DataTypeError(f"{name} must hold numbers, got dtype object: {exc}") from None
        except ValueError as exc:
            raise DataError(f"{name} must hold numbers, got dtype object: {exc}") from None
    if array.dtype.kind not in "fiub":
        raise DataError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array


def _missing(value) -> bool:
    """Whether ``value`` is pandas' missing-value marker ``pandas.NA`` (told by its type's
    name, without importing pandas)."""
    return type(value).__name__ == "NAType"


def text_labels(classes: np.ndarray) -> np.ndarray:
    """Sorted labels of an object array that are all strings (pandas' string columns) as a
    NumPy string array, as scikit-learn's ``classes_`` holds them; others unchanged."""
    if classes.dtype == object and all(isinstance(c, str) for c in classes):
        return classes.astype(str)
    return classes


def missing_label(value) -> bool:
    """Whether a label is a missing value: None, a float NaN or ``pandas.NA``."""
    return value is None or _missing(value) or \
        isinstance(value, float | np.floating) and math.isnan(value)


def column(name, values, n: int, who: str = "this model",
           multilabel: bool = False) -> np.ndarray:
    """The targets ``values`` as an array of ``n`` rows; a column vector becomes a vector
    (with scikit-learn's ``DataConversionWarning``, as it warns). A sparse ``values`` is
    refused with scikit-learn's TypeError, except a multilabel indicator matrix (more than one
    column) when ``multilabel`` (a classifier): that is made dense, as :func:`features` does
    with ``X``."""
    if values is None:
        raise DataError(f"{who} requires y to be passed, but the target y is None")
    if _is_sparse(values):
        shape = tuple(getattr(values, "shape", ()))
        if not (multilabel and len(shape) == 2 and shape[1] > 1):
            raise DataTypeError(f"Sparse data was passed for {name}, but dense data is "
                                "required. Use '.toarray()' to convert to a dense numpy array"
                                + (" (a sparse y is accepted as a multilabel indicator "
                                   "matrix of more than one column)" if multilabel else "."))
        values = _densified(values, name)
    try:
        array = np.asarray(values)
    except ValueError as exc:
        raise DataError(f"{name} is not a rectangular array: {exc}") from None
    if array.ndim == 2 and array.shape[1] == 1 and name == "y":
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                      "change the shape of y to (n_samples, ), for example using ravel().",
                      DataConversionWarning, stacklevel=4)
        array = array[:, 0]
    if array.ndim == 0 or array.shape[0] != n:
        raise DataError(f"X has {n} samples but {name} has "
                        f"{array.shape[0] if array.ndim else 'a single value'}: Found input "
                        f"variables with inconsistent numbers of samples: "
                        f"[{n}, {array.shape[0] if array.ndim else 1}]")
    return array


def unique_labels(name, values) -> np.ndarray:
    """The sorted distinct labels of ``values`` (a 1-D array-like)."""
    kinds = {isinstance(v, str) for v in np.asarray(values, dtype=object).ravel()}
    if len(kinds) > 1:  # NumPy would silently turn the numbers into strings
        raise DataError(f"Mix of label input types (string and number) in {name}: "
                        f"{list(values)!r}")
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise DataError(f"{name} must be a non-empty 1-D array of labels, got shape "
                        f"{array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{name} holds NaN or infinite labels: {array!r}")
    try:
        return text_labels(np.unique(array))
    except TypeError as exc:
        raise DataError(f"{name} mixes label types that cannot be ordered: {exc}") from None


def not_fitted(who: str) -> NotFitted:
    """The error for a method called before ``fit``."""
    return NotFitted(f"This {who} instance is not fitted yet. Call 'fit' with appropriate "
                     "arguments before using this estimator.")


def positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)
