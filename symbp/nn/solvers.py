"""The solvers: the stochastic ones (sgd, adam) run whole epochs compiled."""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..errors import SymbpError
from . import loop as _loop
from .compiled import Network, flat, views

try:
    from sklearn.exceptions import ConvergenceWarning
except ImportError:  # pragma: no cover - exercised in environments without scikit-learn
    from ._estimator import ConvergenceWarning


def optimizer_state(model, theta: np.ndarray, incremental: bool) -> dict:
    """The optimizer's state, kept on the model as ``_optimizer`` (scikit-learn's
    ``_optimizer``): ``first``/``second`` (sgd's velocities, adam's moments, flat like the
    weights), ``step`` (updates so far: adam's bias correction) and ``rate`` (the current
    learning rate). ``fit`` starts a new one; ``partial_fit`` continues the one it finds
    (a new one after a fit by another solver or of other shapes, or after load)."""
    state = getattr(model, "_optimizer", None) if incremental else None
    if state is None or state["solver"] != model.solver or \
            state["first"].shape != theta.shape or state["first"].dtype != theta.dtype:
        state = {"solver": model.solver, "first": np.zeros_like(theta),
                 "second": np.zeros_like(theta), "step": 0,
                 "rate": float(model.learning_rate_init)}
    model._optimizer = state
    return state


def stochastic(model, net: Network, X, T, S, rng, dtype, validation,
               incremental: bool = False) -> None:
    """Mini-batch training by sgd or adam as scikit-learn defines them, one compiled call per
    epoch; Python keeps score between epochs (scikit-learn's stopping rules, early stopping on
    ``validation`` (``(X, T, S)``), the learning-rate schedules) and reports progress.
    ``incremental`` (partial_fit): one epoch, continuing the optimizer's state, no
    ConvergenceWarning.

    ``S`` holds the sample weights (ones for an unweighted fit). Each epoch's batch order is
    drawn here as scikit-learn draws it (``sklearn.utils.shuffle`` of the previous order with
    the fit's RandomState: ``rng.shuffle`` of ``arange(n)``, then indexing), so the same seed
    gives the same batches as scikit-learn's fit."""
    n = X.shape[0]
    batch = min(200, n) if model.batch_size == "auto" else min(model.batch_size, n)
    dims = model._dims()
    theta = flat(model._param_arrays(dtype))
    params = views(theta, net.sizes(dims))
    state = optimizer_state(model, theta, incremental)
    first, second = state["first"], state["second"]
    theta_next, grad = np.empty_like(theta), np.empty_like(theta)
    order = np.arange(n, dtype=np.int64)
    run, model.compile_seconds_ = model._compiled(net, X, T, dims)
    solver = _loop.ADAM if model.solver == "adam" else _loop.SGD
    rate = state["rate"]
    limit = float(np.finfo(dtype).max)  # a step beyond it stops training (loop.optimizer_step)
    no_improvement = getattr(model, "_no_improvement_count", 0)
    best_params, best_epoch = None, 0
    epochs = 1 if incremental else model.max_iter
    model.n_iter_ = 0  # scikit-learn (1.9) counts the epochs of this call, warm start too
    if validation is not None:  # a warm start that turned early stopping on
        if model.validation_scores_ is None:
            model.validation_scores_ = []
        if model.best_validation_score_ is None:
            model.best_validation_score_ = -np.inf
        model.best_loss_ = None  # scikit-learn's: no best training loss under early stopping
    elif model.best_loss_ is None:
        model.best_loss_ = np.inf
    hyper = (float(model.momentum), bool(model.nesterovs_momentum), float(model.beta_1),
             float(model.beta_2), float(model.epsilon), float(model.alpha))
    nothing = np.empty((0, dims[-1]), dtype)
    model._epoch_seconds = 0.0  # the time of this fit's epochs alone (symbp train reports it)
    bar = _progress(model.verbose, epochs)
    try:
        for _ in range(epochs):
            if model.shuffle:
                permutation = np.arange(n)
                rng.shuffle(permutation)
                order = order[permutation]
            started = time.perf_counter()
            total, correct, done, status, state["step"] = run(
                X, T, S, theta, theta_next, first, second, grad, dims, order, nothing, False,
                batch, solver, rate, *hyper, int(state["step"]), limit)
            seconds_taken = time.perf_counter() - started
            model._epoch_seconds += seconds_taken
            if status:
                what = {1: "loss", 2: "gradient", 3: "updated weights"}[status]
                if best_params is not None:  # early stopping: divergence ends training
                    warnings.warn(
                        f"training stopped: the {what} became NaN or infinite at epoch "
                        f"{model.n_iter_ + 1}, batch {done + 1} of {-(-n // batch)}; early "
                        f"stopping restored the weights of the best validation score "
                        f"(epoch {best_epoch}). A smaller learning_rate_init (now "
                        f"{model.learning_rate_init}) or scaled inputs may train further.",
                        ConvergenceWarning, stacklevel=4)
                    break
                model._store(params)
                raise SymbpError(
                    f"training stopped: the {what} became NaN or infinite at epoch "
                    f"{model.n_iter_ + 1}, batch {done + 1} of {-(-n // batch)}; the model "
                    f"keeps the last finite weights (from before that batch). Try a smaller "
                    f"learning_rate_init (now {model.learning_rate_init}) or scaled inputs.")
            model.n_iter_ += 1
            model.t_ += n  # samples seen, as scikit-learn counts t_
            loss = total / n
            model.loss_curve_.append(loss)
            report = {"loss": f"{loss:.4g}"}
            if model._is_classifier:
                model.train_accuracy_curve_.append(correct / n)
                report["accuracy"] = f"{correct / n:.4f}"
            if validation is not None:
                model._store(params)
                score = model._score_encoded(net, *validation)
                model.validation_scores_.append(score)
                report["validation"] = f"{score:.4f}"
            report["samples/s"] = f"{n / seconds_taken:,.0f}"
            _report(bar, model.n_iter_, report)
            # scikit-learn's stopping rule: no improvement by tol for n_iter_no_change epochs
            if validation is not None:
                improved = score >= model.best_validation_score_ + model.tol
                if score > model.best_validation_score_:
                    model.best_validation_score_ = score
                    best_params = [p.copy() for p in params]
                    best_epoch = model.n_iter_
            else:
                improved = loss <= model.best_loss_ - model.tol
                model.best_loss_ = min(model.best_loss_, loss)
            no_improvement = 0 if improved else no_improvement + 1
            if model.learning_rate == "invscaling" and model.solver == "sgd":
                rate = model.learning_rate_init / (model.t_ + 1) ** model.power_t
            state["rate"] = rate
            model._no_improvement_count = no_improvement
            if no_improvement > model.n_iter_no_change:
                if model.learning_rate == "adaptive" and model.solver == "sgd" and rate > 1e-6:
                    rate = state["rate"] = rate / 5.0
                    no_improvement = model._no_improvement_count = 0
                else:
                    break
        else:
            if not incremental:  # partial_fit's one epoch is no lack of convergence
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({model.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning, stacklevel=4)
    finally:
        if bar:
            bar.close()
    model._store(best_params if best_params is not None else params)

# -- prediction -----------------------------------------------------------------------


def _progress(verbose, epochs):
    """A tqdm progress bar when verbose and tqdm is installed (else None: lines printed)."""
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return False
    return tqdm(total=epochs, unit="epoch", leave=True)


def _report(bar, epoch: int, report: dict) -> None:
    if bar is None:
        return
    if bar is False:
        print(f"Iteration {epoch}, " + ", ".join(f"{k} = {v}" for k, v in report.items()))
    else:
        bar.set_postfix(report, refresh=False)
        bar.update(1)
