"""The solvers: the stochastic ones (sgd, adam) run whole epochs compiled."""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..errors import SymbpError, TrainingError
from . import loop as _loop
from .compiled import Network, flat, views

try:
    from sklearn.exceptions import ConvergenceWarning
except ImportError:  # pragma: no cover - exercised in environments without scikit-learn
    from ._estimator import ConvergenceWarning



_FIRST_BATCH = ("The starting weights already give it, before any step: a formula activation "
                "or loss may be undefined for some of these inputs (a log or sqrt of a "
                "negative number, as 'log(x)' is), or the inputs are too large: scale them.")
"""The hint when the very first loss of a fit is not finite (no learning rate is to blame)."""

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


def batch_size(model, n: int) -> int:
    """The mini-batch size of a stochastic fit on ``n`` samples (scikit-learn's "auto":
    200, and never more than ``n``)."""
    return min(200 if model.batch_size == "auto" else model.batch_size, n)


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
    batch = batch_size(model, n)
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
        if getattr(model, "validation_loss_curve_", None) is None:
            model.validation_loss_curve_ = []
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
                hint = (_FIRST_BATCH if model.t_ == 0 and done == 0 and status == 1 else
                        f"Try a smaller learning_rate_init (now {model.learning_rate_init}) "
                        "or scaled inputs.")
                raise TrainingError(
                    f"training stopped: the {what} became NaN or infinite at epoch "
                    f"{model.n_iter_ + 1}, batch {done + 1} of {-(-n // batch)}; the model "
                    f"keeps the last finite weights (from before that batch). {hint}")
            model.n_iter_ += 1
            model.t_ += n  # samples seen, as scikit-learn counts t_
            loss = model.loss_ = total / n  # scikit-learn's loss_: the last epoch's
            model.loss_curve_.append(loss)
            report = {"loss": f"{loss:.4g}"}
            if model._is_classifier:
                model.train_accuracy_curve_.append(correct / n)
                report["accuracy"] = f"{correct / n:.4f}"
            if validation is not None:
                model._store(params)
                out, validation_loss = model._forward(net, validation[0], dtype,
                                                      *validation[1:])
                score = model._score_outputs(out, *validation[1:])
                model.validation_scores_.append(score)
                model.validation_loss_curve_.append(validation_loss)
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


class FullBatch:
    """The loss over every sample and its gradient as functions of the flat weights, for
    lbfgs: each call is one call of the network's compiled ``run`` with the solver code
    ``NONE`` and one batch of every row (no step), so lbfgs compiles nothing that sgd and
    adam do not. ``theta`` (the model's weights, of its dtype) holds the point of the last
    call, ``last`` the last point whose loss and gradient were finite; a call whose loss or
    gradient is not finite raises :class:`Diverged`. ``S``: the sample weights, which weight
    the loss as in sgd and adam (``run`` normalizes them; the penalty is divided by their
    sum), as scikit-learn's lbfgs does."""

    def __init__(self, model, net: Network, X, T, S, dtype):
        self.n, self.X, self.T, self.S = X.shape[0], X, T, S
        self.dims = model._dims()
        self.theta = flat(model._param_arrays(dtype))
        self.params = views(self.theta, net.sizes(self.dims))
        self.grad = np.empty_like(self.theta)
        self.last = self.theta.copy()
        self.unused, self.nothing = np.empty(0, dtype), np.empty((0, self.dims[-1]), dtype)
        self.order = np.arange(self.n, dtype=np.int64)
        self.run, model.compile_seconds_ = model._compiled(net, X, T, self.dims)
        self.limit = float(np.finfo(dtype).max)
        self.alpha = float(model.alpha)
        self.loss, self.calls = np.inf, 0

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(loss, gradient)`` at the flat weights ``x`` (float64, as SciPy works)."""
        self.theta[:] = x
        total, _, _, status, _ = self.run(
            self.X, self.T, self.S, self.theta, self.theta, self.unused, self.unused, self.grad,
            self.dims, self.order, self.nothing, False, self.n, _loop.NONE, 0.0, 0.0, False,
            0.0, 0.0, 0.0, self.alpha, 0, self.limit)
        self.calls += 1
        if status:
            raise Diverged(status)
        self.last[:] = self.theta
        self.loss = total / self.n
        return self.loss, self.grad.astype(np.float64)


def lbfgs(model, net: Network, X, T, S, dtype) -> None:
    """scikit-learn's lbfgs: SciPy's L-BFGS-B over the flat weights (:class:`FullBatch`),
    with ``max_iter``, ``max_fun`` and ``tol`` as ``gtol``. ``n_iter_``, ``loss_`` and the
    ConvergenceWarning follow scikit-learn's ``_check_optimize_result``; ``loss_curve_``
    holds the loss after each iteration (scikit-learn sets none for lbfgs)."""
    try:
        import scipy
        import scipy.optimize
    except ImportError:
        raise SymbpError("solver='lbfgs' needs SciPy (pip install scipy)") from None
    f = FullBatch(model, net, X, T, S, dtype)
    model.loss_curve_ = []

    def iteration(xk) -> None:
        model.loss_curve_.append(float(f.loss))
        if model.verbose:
            print(f"Iteration {len(model.loss_curve_)}, loss = {f.loss:.8f}")

    options = {"maxfun": int(model.max_fun), "maxiter": int(model.max_iter),
               "gtol": float(model.tol)}
    if tuple(int(v) for v in scipy.__version__.split(".")[:2]) < (1, 15):
        options["iprint"] = 1 if model.verbose else -1  # removed from SciPy 1.15 on
    started = time.perf_counter()
    try:
        result = scipy.optimize.minimize(f, f.theta.astype(np.float64), method="L-BFGS-B",
                                         jac=True, options=options, callback=iteration)
    except Diverged as exc:
        f.theta[:] = f.last
        model._store(f.params)
        what = {1: "loss", 2: "gradient"}.get(exc.status, "updated weights")
        hint = _FIRST_BATCH if f.calls == 1 and exc.status == 1 else \
            "Try scaled inputs or a larger alpha."
        raise TrainingError(
            f"training stopped: the {what} became NaN or infinite at lbfgs evaluation "
            f"{f.calls} (iteration {len(model.loss_curve_) + 1}); the model keeps the last "
            f"finite weights. {hint}") from None
    finally:
        model._epoch_seconds = time.perf_counter() - started
    f.theta[:] = result.x
    model._store(f.params)
    model.n_iter_ = min(int(result.nit), int(model.max_iter))
    model.t_ = getattr(model, "t_", 0)
    model.loss_ = float(result.fun)
    model.best_loss_ = model.loss_
    if result.status != 0:
        message = (f"lbfgs failed to converge after {model.n_iter_} iteration(s) "
                   f"(status={result.status}):\n{result.message}\n")
        if model.n_iter_ == model.max_iter:
            message += (f"\nIncrease the number of iterations to improve the convergence "
                        f"(max_iter={model.max_iter}).")
        message += ("\nYou might also want to scale the data as shown in:\n    "
                    "https://scikit-learn.org/stable/modules/preprocessing.html")
        warnings.warn(message, ConvergenceWarning, stacklevel=4)


class Diverged(Exception):
    """Raised inside SciPy's loop when a value or gradient is not finite (``status`` as
    ``run`` returns it)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


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
