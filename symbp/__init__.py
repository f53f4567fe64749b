"""symbp: see the backward pass of an expression as plain code, compiled by Numba.

>>> import symbp
>>> f = symbp.compile("(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)")
>>> print(f.source)              # the generated forward and backward pass  # doctest: +SKIP
>>> round(f(3.0, -4.0), 10)
1.5456448841
"""

__version__ = "0.1.0"

from .errors import (CacheError, CallError, CompileError, GateError, IdentifierError, ParseError,
                     SymbpError)
from .function import Function, compile
from .gates import GATES
from .parse import gate
from .shapes import Ints, ints

__all__ = [
           "GATES",
           "CacheError",
           "CallError",
           "CompileError",
           "Function",
           "GateError",
           "IdentifierError",
           "Ints",
           "ParseError",
           "SymbpError",
           "__version__",
           "compile",
           "gate",
           "ints",
]
