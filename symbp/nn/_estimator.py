"""Stand-ins for scikit-learn's estimator base classes when scikit-learn is not installed:
the same ``get_params``/``set_params`` contract and ``score`` methods, nothing more."""

from __future__ import annotations

import inspect

import numpy as np


class ConvergenceWarning(UserWarning):
    """Training stopped at ``max_iter`` before the loss stopped improving."""


class BaseEstimator:
    """Parameters are the constructor's keywords, stored as attributes of the same name."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict:
        """The constructor parameters and their current values."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters; returns self."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self!r}. Valid "
                                 f"parameters are: {valid!r}.")  # scikit-learn's wording
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__)
                    .parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (isinstance(v, type(defaults.get(k))) and v == defaults.get(k))]
        return f"{type(self).__name__}({', '.join(changed)})"


class ClassifierMixin:
    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y``: for multilabel ``y`` the share of
        rows whose every label is right (subset accuracy, as scikit-learn's)."""
        right = self.predict(X) == np.asarray(y)
        if right.ndim == 2:
            right = right.all(axis=1)
        return float(np.average(right, weights=sample_weight))


class RegressorMixin:
    def score(self, X, y, sample_weight=None) -> float:
        """Coefficient of determination R^2 of ``predict(X)`` against ``y``."""
        y = np.asarray(y, dtype=np.float64)
        predicted = np.asarray(self.predict(X), dtype=np.float64).reshape(y.shape)
        weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        w = weights.reshape(-1, *([1] * (y.ndim - 1)))
        residual = (w * (y - predicted) ** 2).sum(axis=0)
        spread = (w * (y - np.average(y, axis=0, weights=weights)) ** 2).sum(axis=0)
        r2 = np.where(spread > 0, 1 - residual / np.where(spread > 0, spread, 1),
                      np.where(residual == 0, 1.0, 0.0))  # scikit-learn's for constant y
        return float(np.mean(r2))
