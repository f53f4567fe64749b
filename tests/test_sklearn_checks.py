"""scikit-learn's estimator checks (``sklearn.utils.estimator_checks``) on symbp's MLPs.

Every check scikit-learn's own ``MLPClassifier``/``MLPRegressor`` pass must pass for symbp's,
and no check may be left out by tags scikit-learn's MLPs do not set. The checks fit clones of
one estimator per kind: every network of a kind shares its compiled structures (the sizes are
run-time dimensions), so the whole file compiles a few modules only.
"""

from __future__ import annotations

import warnings

import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    estimator_checks_generator,
    parametrize_with_checks,
)

from symbp.nn import MLPClassifier, MLPRegressor  # noqa: E402

ESTIMATORS = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]

def _names(estimator) -> set[str]:
    return {getattr(check, "func", check).__name__
            for _, check in estimator_checks_generator(estimator, legacy=True)}


@parametrize_with_checks(ESTIMATORS, legacy=True)
def test_sklearn_check(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter=100, as scikit-learn's
        check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_no_check_left_out(estimator):
    """symbp's estimators get every check scikit-learn's get (their tags leave none out)."""
    kind = type(estimator).__name__
    theirs = _names(getattr(neural_network, kind)(max_iter=100))
    ours = _names(estimator)
    assert ours == theirs


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_signature_is_scikit_learns(name):
    """scikit-learn's parameters in its order, kinds and defaults (MLPRegressor's ``loss`` is
    first and positional, ``'squared_error'``); symbp's extras come after, keyword-only."""
    import inspect

    ours = dict(inspect.signature(getattr(__import__("symbp.nn", fromlist=[name]), name))
                .parameters)
    theirs = list(inspect.signature(getattr(neural_network, name)).parameters.values())
    assert [(p.name, p.kind, p.default) for p in list(ours.values())[:len(theirs)]] == \
        [(p.name, p.kind, p.default) for p in theirs]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(ours.values())[len(theirs):])


def test_regressor_sizes_given_as_its_first_parameter_are_named():
    """``MLPRegressor((3,))`` sets ``loss`` (scikit-learn's order): the error says so."""
    import numpy as np

    from symbp.errors import ParameterError

    with pytest.raises(ParameterError, match=r"first positional parameter is loss.*"
                                             r"hidden_layer_sizes=\(3,\)"):
        MLPRegressor((3,)).fit(np.ones((4, 2)), np.ones(4))
