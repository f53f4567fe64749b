"""Multi-layer perceptrons whose backward pass symbp generates, trained by a compiled loop.

``MLPClassifier`` and ``MLPRegressor`` take scikit-learn's parameter names and meanings. The
network is written as staged symbp lines (:func:`network_lines`) and compiled by
:func:`symbp.compile` like any expression: no backward pass is written by hand. A whole epoch
(gather mini-batches, forward, backward, optimizer step) runs inside one Numba function
emitted into the same cached module as the network.

The parts, top to bottom:

- :mod:`~symbp.nn.network`: the network as staged lines (activations, losses, dimension names);
- :mod:`~symbp.nn.compiled`: its generated module, with the training loop appended;
- :mod:`~symbp.nn.loop`: the compiled helpers of that loop (optimizer step, gathers);
- :mod:`~symbp.nn.checks`: the checks of parameters and data, before anything compiles;
- :mod:`~symbp.nn.solvers`: the solvers that drive the compiled loop;
- :mod:`~symbp.nn.persist`: save and load;
- :mod:`~symbp.nn.base` and :mod:`~symbp.nn.estimators`: the estimators.

The names are loaded at first touch (PEP 562), so ``symbp.nn.network`` (the command line lists
the activations with it) does not import scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .estimators import MLPClassifier, MLPRegressor
    from .network import ACTIVATIONS, LOSSES, network_lines
    from .solvers import ConvergenceWarning

__all__ = ["ACTIVATIONS", "LOSSES", "ConvergenceWarning", "MLPClassifier", "MLPRegressor",
           "network_lines"]

_LAZY = {"MLPClassifier": "estimators", "MLPRegressor": "estimators", "ACTIVATIONS": "network",
         "LOSSES": "network", "network_lines": "network", "ConvergenceWarning": "solvers"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
