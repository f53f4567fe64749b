"""Save and load fitted estimators: one ``.npz`` file, written atomically, read without
unpickling anything and checked field by field before any array data is read."""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
from pathlib import Path

import numpy as np

from .. import files as _files
from ..errors import SymbpError
from . import _npz, checks
from .checks import count, finite, positive_int
from .network import activation_template, gates_used, loss_target

FORMAT = "symbp.nn/1"

MAX_LOAD_BYTES = 1 << 32
"""Largest total size of the arrays :func:`load` reads (4 GiB: a billion float32 weights)."""

LABEL_DTYPES = tuple(np.dtype(t).name for t in (
    bool, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64))
"""The dtypes a multilabel model's ``y`` may have had (predict returns the indicator matrix in
it); a file naming another is refused."""


def save(model, path) -> None:
    """Write the fitted model to an ``.npz`` file atomically (a temporary file in the same
    folder, then ``os.replace``): an interrupted save never leaves a half-written file."""
    model._check_fitted()
    path = Path(path)
    if path.is_symlink():  # replace the file it points to, as open() would, not the link
        path = Path(os.path.realpath(path))
    params = {k: _plain(v) for k, v in model.get_params().items()
              if k != "random_state" or v is None or isinstance(v, numbers.Integral)}
    params["hidden_layer_sizes"] = list(np.atleast_1d(model.hidden_layer_sizes).tolist())
    params["dtype"] = None if model.dtype is None else np.dtype(model.dtype).name
    meta = {"format": FORMAT, "estimator": type(model).__name__, "params": params,
            "n_features_in": model.n_features_in_, "n_iter": model.n_iter_, "t": model.t_,
            "weights_dtype": np.asarray(model.coefs_[0]).dtype.name,
            "loss": model._fitted_loss, "net": _plain([*model._net_key[:1], list(
                model._net_key[1]), *model._net_key[2:]]),
            "loss_curve": list(map(float, model.loss_curve_)),
            "final_loss": None if getattr(model, "loss_", None) is None else float(model.loss_),
            "best_loss": None if model.best_loss_ is None else float(model.best_loss_),
            "validation_scores": None if model.validation_scores_ is None
            else list(map(float, model.validation_scores_)),
            "validation_loss_curve": None if model.validation_loss_curve_ is None
            else list(map(float, model.validation_loss_curve_)),
            "standardized": model.feature_mean_ is not None}
    gates = getattr(model, "_fitted_gates", None)
    if gates:  # custom gates the network calls: load names one this process lacks
        meta["gates"] = [list(g) for g in gates]
    if model._is_classifier:
        meta["accuracy_curve"] = list(map(float, model.train_accuracy_curve_))
        if getattr(model, "_multilabel", False):  # predict's indicator matrix keeps y's dtype
            meta["multilabel"] = True
            meta["label_dtype"] = np.dtype(model._label_dtype).name
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        meta["feature_names"] = [str(v) for v in names]
    arrays = {"meta": np.array(json.dumps(meta))}
    for k, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        arrays[f"coef_{k}"], arrays[f"intercept_{k}"] = W, b
    if model._is_classifier:
        classes = np.asarray(model.classes_)
        if classes.dtype == object:
            if not all(isinstance(c, str) for c in classes):
                raise SymbpError("save keeps class labels that are numbers or strings; "
                                 f"these are {classes.dtype}")
            classes = classes.astype(str)
        arrays["classes"] = classes
    if getattr(model, "feature_mean_", None) is not None:
        arrays["feature_mean"] = np.asarray(model.feature_mean_, np.float64)
        arrays["feature_scale"] = np.asarray(model.feature_scale_, np.float64)
    if getattr(model, "target_mean_", None) is not None:
        arrays["target_mean"] = np.asarray(model.target_mean_, np.float64)
        arrays["target_scale"] = np.asarray(model.target_scale_, np.float64)
    _files.replace(path, lambda handle: np.savez(handle, **arrays), binary=True)


def _plain(value):
    """``value`` with NumPy scalars as the Python numbers JSON writes (a parameter grid of
    ``np.logspace`` gives ``np.float64`` alphas, ``alpha > 0`` an ``np.bool_``), in lists and
    tuples too."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load(cls, path):
    """The ``cls`` model written by :func:`save` at ``path``: the checks are those that
    :meth:`symbp.nn.base.MLP.load` lists, each made before anything is read that depends on
    it."""
    path = Path(path)
    with _npz.open_archive(path) as archive:
        entries = _npz.members(archive, path)
        if "meta" not in entries:
            raise SymbpError(f"{path} is not a symbp model file (no 'meta' entry; it "
                             f"holds {', '.join(entries) or 'nothing'})")
        meta = _read_meta(archive, entries, path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise SymbpError(f"{path} is not a symbp model file (format "
                             f"{meta.get('format') if isinstance(meta, dict) else meta!r})")
        kind = meta.get("estimator")
        if kind != cls.__name__:
            kind = kind if isinstance(kind, str) and kind.isidentifier() else repr(kind)
            raise SymbpError(f"{path} holds a {kind}, not a {cls.__name__}")
        model, layout, weights_dtype = _from_meta(cls, meta, path)
        unexpected = sorted(set(entries) - set(layout) - {"meta"})
        if unexpected:
            raise SymbpError(f"{path}: entries the model does not have: "
                             f"{', '.join(unexpected)}")
        total = 0
        for name, (shape, kind) in layout.items():
            if name not in entries:
                raise SymbpError(f"{path}: damaged symbp model file (no {name!r} entry)")
            got, _, dtype, _ = _npz.header(archive, entries[name], path)
            if dtype.kind not in kind or dtype.fields is not None:
                want = "real floats" if kind == "f" else "numbers or text"
                raise SymbpError(f"{path}: {name} holds {dtype}; it must hold {want}")
            if got != shape:
                raise SymbpError(f"{path}: {name} has shape {got}; the model needs {shape}")
            total += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if total > MAX_LOAD_BYTES:
                raise SymbpError(f"{path}: the arrays would take more than "
                                 f"{MAX_LOAD_BYTES:,} bytes; refused")
        arrays = {name: _npz.read(archive, entries[name], path) for name in layout}
    _set_arrays(model, arrays, weights_dtype, path)
    return model

def _from_meta(cls, meta: dict, path: Path) -> tuple:
    """The unfitted model the metadata describes, with its fitted scalars set, the arrays it
    needs (``{name: (shape, allowed dtype kinds)}``) and its dtype. Every field is checked."""
    def field(name, check, what):
        if name not in meta or not check(meta[name]):
            raise SymbpError(f"{path}: damaged symbp model file ({name!r} must be {what}, "
                             f"got {meta.get(name, 'nothing')!r})")
        return meta[name]

    params = field("params", lambda v: isinstance(v, dict), "an object")
    valid = set(cls().get_params(deep=False))
    unknown = sorted(str(k) for k in params if k not in valid)
    if unknown:
        raise SymbpError(f"{path}: damaged symbp model file (unknown parameter(s) "
                         f"{', '.join(unknown)})")
    params = dict(params)
    if not isinstance(params.get("hidden_layer_sizes"), list):
        raise SymbpError(f"{path}: damaged symbp model file (hidden_layer_sizes must be a "
                         f"list, got {params.get('hidden_layer_sizes')!r})")
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    state = params.get("random_state")
    if state is not None and (not isinstance(state, int) or isinstance(state, bool)):
        raise SymbpError(f"{path}: damaged symbp model file (random_state {state!r})")
    model = cls(**params)
    gates = _gates(meta, path)
    try:
        checked = checks.params(model)
    except SymbpError as exc:
        raise SymbpError(f"{path}: damaged symbp model file ({exc})") from None
    n_features = field("n_features_in", positive_int, "a positive integer")
    n_iter = field("n_iter", count, "a whole number >= 0")
    t = field("t", count, "a whole number >= 0")
    loss = field("loss", lambda v: isinstance(v, str) and (v in cls._losses or
                                                           _formula(v, cls._is_classifier)),
                 f"one of {', '.join(cls._losses)} or a loss formula")
    # the fitted network, which the parameters need not describe (set_params after fit)
    net = field("net", lambda v: isinstance(v, list) and len(v) == 6, "a list of 6")
    _, hidden, n_outputs, activation, _, l2 = net
    if not (net[0] == n_features and isinstance(hidden, list) and all(map(positive_int, hidden))
            and positive_int(n_outputs) and isinstance(activation, str)
            and _activation(activation) and net[4] == loss and isinstance(l2, bool)):
        raise SymbpError(f"{path}: damaged symbp model file (net {net!r} is not a fitted "
                         f"network of {n_features} features with loss {loss!r})")
    hidden = tuple(hidden)
    curve = field("loss_curve", lambda v: isinstance(v, list) and all(map(finite, v)),
                  "a list of finite numbers")
    best = field("best_loss", lambda v: v is None or finite(v) or v == math.inf,
                 "a finite number, Infinity or null")
    sizes = (n_features, *hidden, n_outputs)
    if sum(a * b for a, b in itertools.pairwise(sizes)) > MAX_LOAD_BYTES:
        raise SymbpError(f"{path}: layers {sizes} are too large to load")
    layout = {}
    for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        pieces = 2 if activation == "maxout" and k < len(hidden) else 1
        layout[f"coef_{k}"] = ((fan_in, pieces * fan_out), "f")
        layout[f"intercept_{k}"] = ((pieces * fan_out,), "f")
    multilabel = meta.get("multilabel", False)  # absent from single-label files
    if multilabel is not False and (multilabel is not True or not model._is_classifier
                                    or loss != "sigmoid_cross_entropy" or n_outputs < 2):
        raise SymbpError(f"{path}: damaged symbp model file ('multilabel' {multilabel!r} with "
                         f"loss {loss} and {n_outputs} output(s))")
    if multilabel:
        label_dtype = meta.get("label_dtype")
        if label_dtype not in LABEL_DTYPES:
            raise SymbpError(f"{path}: damaged symbp model file ('label_dtype' must be one of "
                             f"{', '.join(LABEL_DTYPES)}, got {label_dtype!r})")
        model._label_dtype = np.dtype(label_dtype)
    if model._is_classifier:
        model._multilabel = multilabel
    names = meta.get("feature_names")
    if names is not None and not (isinstance(names, list) and len(names) == n_features
                                  and all(isinstance(v, str) for v in names)):
        raise SymbpError(f"{path}: damaged symbp model file ('feature_names' must be a list of "
                         f"{n_features} strings, got {names!r})")
    if names is not None:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    if model._is_classifier:
        if n_outputs == 1 and loss != "sigmoid_cross_entropy":
            raise SymbpError(f"{path}: damaged symbp model file (one output with loss "
                             f"{loss})")
        layout["classes"] = ((2 if n_outputs == 1 else n_outputs,), "iufbU")
    standardized = meta.get("standardized", model.standardize)  # older files: the parameter
    if not isinstance(standardized, bool):
        raise SymbpError(f"{path}: damaged symbp model file ('standardized' must be true or "
                         f"false, got {standardized!r})")
    if standardized:  # files written before standardize existed have no such entries
        layout["feature_mean"] = layout["feature_scale"] = ((n_features,), "f")
        if not model._is_classifier:
            layout["target_mean"] = layout["target_scale"] = ((n_outputs,), "f")
    model.n_features_in_ = n_features
    model.n_iter_, model.t_ = n_iter, t
    model.loss_curve_ = [float(v) for v in curve]
    model.best_loss_ = None if best is None else float(best)
    final = meta.get("final_loss", curve[-1] if curve else None)  # older files: from the curve
    if final is not None and not finite(final):
        raise SymbpError(f"{path}: damaged symbp model file ('final_loss' must be a finite "
                         f"number or null, got {final!r})")
    model.loss_ = None if final is None else float(final)
    # files written before these fields existed: the curves start empty
    scores = meta.get("validation_scores", [] if model.early_stopping else None)
    if scores is not None and not (isinstance(scores, list) and all(map(finite, scores))):
        raise SymbpError(f"{path}: damaged symbp model file ('validation_scores' must be a "
                         f"list of finite numbers or null, got {scores!r})")
    model.validation_scores_ = None if scores is None else [float(v) for v in scores]
    losses = meta.get("validation_loss_curve", None if scores is None else [])
    if losses is not None and not (isinstance(losses, list) and all(map(finite, losses))):
        raise SymbpError(f"{path}: damaged symbp model file ('validation_loss_curve' must be "
                         f"a list of finite numbers or null, got {losses!r})")
    model.validation_loss_curve_ = None if losses is None else [float(v) for v in losses]
    model.best_validation_score_ = None if scores is None else max(scores, default=-math.inf)
    if model._is_classifier:
        accuracy = meta.get("accuracy_curve", [])
        if not (isinstance(accuracy, list) and all(map(finite, accuracy))):
            raise SymbpError(f"{path}: damaged symbp model file ('accuracy_curve' must be a "
                             f"list of finite numbers, got {accuracy!r})")
        model.train_accuracy_curve_ = [float(v) for v in accuracy]
    model._fitted_loss = loss
    model._net_key = (n_features, hidden, n_outputs, activation, loss, l2)
    model._fitted_gates = gates if gates is not None else gates_used(activation, loss)
    # the weights' dtype: the file's (dtype=None follows the data), else the forced one
    weights = meta.get("weights_dtype", None if checked["dtype"] is None
                       else checked["dtype"].name)
    if weights not in ("float32", "float64"):
        raise SymbpError(f"{path}: damaged symbp model file ('weights_dtype' must be "
                         f"'float32' or 'float64', got {weights!r})")
    return model, layout, np.dtype(weights)

def _gates(meta: dict, path: Path):
    """The custom gates the saved network calls (``(name, definition)`` pairs; None in files
    written before they were recorded), each checked to be defined as it was when fitted."""
    gates = meta.get("gates")
    if gates is None:
        return None
    if not (isinstance(gates, list) and all(isinstance(g, list) and len(g) == 2 and
                                            all(isinstance(v, str) for v in g) for g in gates)):
        raise SymbpError(f"{path}: damaged symbp model file ('gates' must be a list of [name, "
                         f"definition] pairs, got {gates!r})")
    from ..gates import GATES

    for name, text in gates:
        gate = GATES.get(name)
        now = None if gate is None or not gate.custom else gate.text or gate.doc
        if now != text:
            raise SymbpError(
                f"{path}: the model was fitted with the gate {name!r} defined as {text!r}, "
                "which is " + ("not defined in this process" if now is None else
                               f"now {now!r}") +
                f": define it as it was (symbp.gate({name!r}, {text!r})) before loading")
    return tuple(tuple(g) for g in sorted(gates))


def _formula(loss: str, classifier: bool) -> bool:
    """Whether ``loss`` is a loss formula (read by symbp's safe parser, never evaluated)."""
    try:
        loss_target(loss, classifier)
    except SymbpError:
        return False
    return True


def _activation(activation: str) -> bool:
    """Whether ``activation`` is a built-in activation, a gate's name or a formula (read by
    symbp's safe parser, never evaluated)."""
    try:
        activation_template(activation)
    except SymbpError:
        return False
    return True


def _set_arrays(model, arrays: dict, dtype, path: Path) -> None:
    """The checked arrays of a model file as the model's fitted attributes (``dtype``)."""
    model.coefs_, model.intercepts_ = [], []
    for k in range(len(model._net_key[1]) + 1):
        W, b = arrays[f"coef_{k}"], arrays[f"intercept_{k}"]
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise SymbpError(f"{path}: layer {k} holds NaN or infinite weights")
        with np.errstate(over="ignore"):
            W, b = np.ascontiguousarray(W, dtype), np.ascontiguousarray(b, dtype)
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise SymbpError(f"{path}: layer {k} holds weights beyond {dtype.name}'s range")
        model.coefs_.append(W)
        model.intercepts_.append(b)
    for what in ("feature", "target"):
        if f"{what}_mean" in arrays:
            mean, scale = (np.array(arrays[f"{what}_{k}"], np.float64)
                           for k in ("mean", "scale"))
            if not (np.isfinite(mean).all() and np.isfinite(scale).all()
                    and (scale > 0).all()):
                raise SymbpError(f"{path}: {what}_mean must be finite and {what}_scale "
                                 "finite and positive")
        elif what == "target" and model._is_classifier:
            continue
        else:
            mean = scale = None
        setattr(model, f"{what}_mean_", mean)
        setattr(model, f"{what}_scale_", scale)
    if model._is_classifier:
        classes = np.array(arrays["classes"])
        if classes.dtype.kind == "f" and not np.isfinite(classes).all():
            raise SymbpError(f"{path}: classes holds NaN or infinite labels")
        if not np.array_equal(np.unique(classes), classes):
            raise SymbpError(f"{path}: classes must be distinct and sorted, got {classes!r}")
        model.classes_ = classes
        if model._multilabel:  # the label indices, as fit sets them
            if not np.array_equal(classes, np.arange(model._net_key[2])):
                raise SymbpError(f"{path}: a multilabel model's classes must be the label "
                                 f"indices 0..{model._net_key[2] - 1}, got {classes!r}")
        else:
            model._check_outputs(len(classes), model._net_key[2], path)


MAX_META_BYTES = 1 << 26
"""Largest metadata entry :func:`load` reads (64 MiB: a loss curve of a million epochs)."""


def _read_meta(archive, entries, path):
    """The metadata entry: a text scalar at most :data:`MAX_META_BYTES`, parsed as JSON."""
    info = entries["meta"]
    shape, _, dtype, _ = _npz.header(archive, info, path)
    if dtype.kind != "U" or shape != ():
        raise SymbpError(f"{path} is not a symbp model file (meta holds {dtype} of shape "
                         f"{shape}, not text)")
    if info.file_size > MAX_META_BYTES:
        raise SymbpError(f"{path}: the metadata takes {info.file_size:,} bytes; refused "
                         f"(at most {MAX_META_BYTES:,})")
    text = _npz.read(archive, info, path).item()
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SymbpError(f"cannot read {path}: its metadata is not JSON "
                         f"({type(exc).__name__}: {exc})") from None


