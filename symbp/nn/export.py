"""``clf.export(path)``: a fitted estimator's forward pass as one module without symbp.

The network's layers, up to its output ``out``, are compiled by symbp as the staged lines
training uses (:func:`network_lines`, any activation) closed by ``f = sum(out * S)``: the
gradient with respect to ``S`` is ``out`` itself, so the exported ``value_and_grad`` (see
:mod:`symbp.export`) returns the network's output rows. The module adds the fitted weights
(base64 of their bytes: exact), the feature and target scaling, and ``predict`` (and
``predict_proba`` for a cross-entropy classifier) doing what the estimator's do.
"""

from __future__ import annotations

import ast
import base64
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..export import module_text, write
from .network import dim_names, network_lines


def export(model, path) -> Path:
    """Write the standalone forward pass of the fitted ``model`` to ``path``."""
    from ..function import compile

    model._check_fitted()
    model._check_gates()  # the module would define a redefined gate as it is now
    n_features, hidden, n_outputs, activation, loss, _ = model._net_key
    depth = len(hidden)
    lines, shapes, params = network_lines(depth, activation, "squared_error", False,
                                          model._is_classifier)
    forward = [line for line in lines.splitlines() if not line.startswith("loss = ")]
    dims = dim_names(depth)
    shapes = {name: shapes[name] for name in ["X", *params]}
    shapes["S"] = ("B", dims[-1])
    f = compile("\n".join([*forward, "f = sum(out * S)"]), inputs=["X", *params, "S"],
                shapes=shapes, wrt=["S"], jit=False)
    dtype = np.asarray(model.coefs_[0]).dtype
    if dtype not in (np.float32, np.float64):
        raise ExportError(f"coefs_ hold {dtype}; they must be float32 or float64 arrays")
    arrays = model._param_arrays(dtype, store=False)
    kind = type(model).__name__
    title = (f"{kind}: {depth} hidden layer{'s' * (depth != 1)} of "
             f"{', '.join(map(str, hidden)) or 'none'}, activation {activation!r},\n"
             f"loss {loss!r}, {np.dtype(dtype).name}; the output rows are the gradient with "
             "respect to S of\n" + "\n".join(forward) + "\nf = sum(out * S)")
    notes = ["predict(X): what the estimator's predict gives"
             + (" (predict_proba(X) too)" if model._is_classifier and model._fitted_loss in
                ("softmax_cross_entropy", "sigmoid_cross_entropy") else "")
             + "; outputs(X): the network's", "output rows. X is scaled here as the estimator"
             " scales it; the weights are at the end of this file."]
    text = module_text(f, title, f"The forward pass of a fitted symbp.nn.{kind}", tuple(notes),
                       ("import base64",))
    text += _predictor(model, arrays, params, dtype, n_features, n_outputs, kind)
    return write(path, text, f"{kind}.export")


def _blob(array: np.ndarray) -> str:
    """An expression rebuilding ``array`` exactly: its little-endian bytes in base64."""
    data = base64.b64encode(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"))
                            .tobytes()).decode("ascii")
    return (f'np.frombuffer(base64.b64decode("{data}"), "{array.dtype.newbyteorder("<").str}")'
            f".reshape({tuple(array.shape)!r}).astype(DTYPE)")


def _optional(array) -> str:
    """``array`` (a float64 scaling vector) rebuilt exactly, or ``None``."""
    if array is None:
        return "None"
    data = base64.b64encode(np.asarray(array, "<f8").tobytes()).decode("ascii")
    return f'np.frombuffer(base64.b64decode("{data}"), "<f8").reshape({np.shape(array)!r})'


def _labels(classes: np.ndarray) -> str:
    """``classes_`` as an expression: a literal list and its dtype (refused when its labels
    are not plain numbers or strings)."""
    values = classes.tolist()
    literal = repr(values)
    try:
        same = ast.literal_eval(literal) == values
    except (ValueError, SyntaxError):
        same = False
    if not same or not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise ExportError(f"classes_ hold labels that cannot be written as Python literals "
                          f"({classes.dtype}); export a model fitted on numbers or strings")
    dtype = "object" if classes.dtype == object else classes.dtype.str
    return f"np.array({literal}, dtype={dtype!r})"


def _predictor(model, arrays, params, dtype, n_features, n_outputs, kind) -> str:
    loss = model._fitted_loss
    feature = model._scaling("feature")
    target = model._scaling("target") if not model._is_classifier else None
    out = [
        "", "", "# -- the fitted network: its weights, scaling and predictions --",
        "",
        f"DTYPE = np.{np.dtype(dtype).name}",
        f"N_FEATURES = {int(n_features)}", f"N_OUTPUTS = {int(n_outputs)}",
        f"LOSS = {loss!r}",
        "PARAMS = (",
        *(f"    {_blob(a)},  # {name}" for name, a in zip(params, arrays)),
        ")",
        f"FEATURE_MEAN = {_optional(feature[0] if feature else None)}",
        f"FEATURE_SCALE = {_optional(feature[1] if feature else None)}",
    ]
    if model._is_classifier:
        multilabel = bool(getattr(model, "_multilabel", False))
        out += [f"CLASSES = {_labels(np.asarray(model.classes_))}",
                f"MULTILABEL = {multilabel!r}",
                f"LABEL_DTYPE = np.dtype({np.dtype(getattr(model, '_label_dtype', 'int64')).str!r})"
                if multilabel else "LABEL_DTYPE = None"]
    else:
        out += [f"TARGET_MEAN = {_optional(target[0] if target else None)}",
                f"TARGET_SCALE = {_optional(target[1] if target else None)}",
                f"VECTOR_TARGET = {getattr(model, '_y_ndim', 1) == 1 and n_outputs == 1!r}"]
    out.append(_OUTPUTS)
    if model._is_classifier:
        out.append(_CLASSIFIER)
        if loss in ("softmax_cross_entropy", "sigmoid_cross_entropy"):
            out.append(_PROBA)
    else:
        out.append(_REGRESSOR)
    return "\n".join(out) + "\n"


_OUTPUTS = '''

def outputs(X):
    """The network's output rows (before the output function) for the rows of ``X``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise ValueError(f"X must be a 2-D array of {N_FEATURES} features per row, got shape "
                         f"{X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X has no rows")
    if not np.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values")
    if FEATURE_MEAN is not None:
        X = (X - FEATURE_MEAN) / FEATURE_SCALE
    X = np.ascontiguousarray(X, DTYPE)
    S = np.zeros((X.shape[0], N_OUTPUTS), DTYPE)
    out = value_and_grad(X, *PARAMS, S)[1]  # the gradient with respect to S
    if not np.isfinite(out).all():
        raise ValueError("the network's output is NaN or infinite for some rows of X")
    return out
'''

_CLASSIFIER = '''

def predict(X):
    """The predicted class of each row of ``X`` (values from ``CLASSES``; for a multilabel
    model, the indicator matrix)."""
    scores = outputs(X)
    if MULTILABEL:
        return (scores > 0).astype(LABEL_DTYPE)
    index = (scores[:, 0] > 0).astype(np.int64) if scores.shape[1] == 1 else scores.argmax(axis=1)
    return CLASSES[index]
'''

_PROBA = '''

def predict_proba(X):
    """Class probabilities, one column per class in ``CLASSES`` order."""
    scores = outputs(X).astype(np.float64)
    if LOSS == "softmax_cross_entropy":
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        return p / p.sum(axis=1, keepdims=True)
    p = 0.5 * (1.0 + np.tanh(0.5 * scores))  # the logistic function, overflow-free
    if MULTILABEL:
        return p
    if p.shape[1] == 1:
        return np.hstack([1.0 - p, p])
    return p / p.sum(axis=1, keepdims=True)
'''

_REGRESSOR = '''

def predict(X):
    """The predicted targets (a vector when fitted on a vector); the predicted mean
    ``exp(out)`` for a Poisson loss."""
    out = outputs(X)
    if LOSS == "poisson":
        with np.errstate(over="ignore"):
            out = np.exp(out)
    if TARGET_MEAN is not None:
        out = (out * TARGET_SCALE + TARGET_MEAN).astype(out.dtype)
    return out[:, 0] if VECTOR_TARGET else out
'''
