"""symbp: see the backward pass of an expression as plain code, compiled by Numba.

>>> import symbp
>>> f = symbp.compile("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)")
>>> print(f.source)              # the generated forward and backward pass  # doctest: +SKIP
>>> round(f(3.0, -4.0), 10)
1.5456448841

``import symbp`` loads only the errors and shapes: the compiler (NumPy, Numba) loads at the
first touch of ``symbp.compile`` or ``symbp.Function``, SymPy only when an expression is really
parsed (a compile found in the source cache never needs it), or at ``symbp.GATES`` and
``symbp.gate`` (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING

from .errors import (
    CacheError,
    CallError,
    CompileError,
    ExportError,
    GateError,
    IdentifierError,
    ParseError,
    SymbpError,
)
from .shapes import Ints, ints

if TYPE_CHECKING:  # the names below, for type checkers and documentation tools
    from .function import Function, compile
    from .gates import GATES
    from .handwritten import check
    from .higher import derivative
    from .parse import gate

__all__ = [
           "GATES",
           "CacheError",
           "CallError",
           "CompileError",
           "ExportError",
           "Function",
           "GateError",
           "IdentifierError",
           "Ints",
           "ParseError",
           "SymbpError",
           "__version__",
           "check",
           "compile",
           "derivative",
           "gate",
           "ints",
]

_LAZY = {"Function": "function", "compile": "function", "GATES": "gates", "gate": "parse",
         "check": "handwritten", "derivative": "higher"}
"""Public name -> the module that defines it, imported at the first touch."""

_SUBMODULES = frozenset({"arrays", "derive", "emit", "function", "gates", "graph", "higher",
                         "jit", "names", "naming", "parse", "reverse", "runtime", "shapes",
                         "statements"})
"""Modules reachable as ``symbp.<name>`` after a bare ``import symbp`` (they were loaded by it
before it became lazy); the others (``symbp.nn``, ``symbp.cli``...) are imported by name."""


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
