"""``symbp.compile``: the pipeline, one line per stage, and the :class:`Function` it returns."""

from __future__ import annotations

import hashlib
import numbers
import time
from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np
import sympy as sp

from . import __version__
from . import jit as _jit
from .emit import emit
from .errors import CallError, SymbpError
from .gates import GATES
from .naming import KERNEL_NAME, gradient_names, value_names
from .parse import parse
from .reverse import sweep


def compile(expr: str | sp.Expr, *, wrt: Sequence[str] | None = None,
            inputs: Sequence[str] | None = None, jit: bool = True) -> Function:
    """Compile an expression to a function returning its value and gradients.

    Parameters
    ----------
    expr : str or sympy.Expr
        One expression (``"(x + y) * z"``), several staged lines (``"q = x + y\\nf = q * z"``;
        each line is one gate, the last line is the output), or a SymPy expression.
    wrt : sequence of str, optional
        Inputs to differentiate with respect to; default all inputs.
    inputs : sequence of str, optional
        Order of the inputs (positional arguments). Default: order of first appearance in a
        string, sorted names for a SymPy expression.
    jit : bool, default True
        Compile the generated source with Numba. ``jit=False`` runs the same source as plain
        Python (for debugging; the reference the Numba version is tested against).

    Returns
    -------
    Function
        Compilation happens here, not at the first call: the generated module is written to the
        cache folder and Numba compiles it for float64 scalars (loading it from Numba's on-disk
        cache when another process already did). ``Function.compile_time`` is the time taken,
        ``Function.timings`` the time of each stage.

    Raises
    ------
    SymbpError
        ``ParseError`` (with a caret under the position) for a malformed or refused expression,
        an unknown name or a wrong number of arguments; ``CompileError`` if Numba fails.

    Examples
    --------
    >>> f = compile("(x + y) * z")
    >>> f.value_and_grad(x=-2.0, y=5.0, z=-4.0)
    (-12.0, {'x': -4.0, 'y': -4.0, 'z': 3.0})
    """
    clock = _Clock()
    inputs = [inputs] if isinstance(inputs, str) else inputs
    wrt = [wrt] if isinstance(wrt, str) else wrt
    key = _request_key(expr, wrt, inputs)
    known = _jit.recall(key) if key else None
    if known is not None:  # compiled before: skip parsing and SymPy
        source, user_inputs, user_wrt = known["source"], tuple(known["inputs"]), tuple(known["wrt"])
        clock.lap("cached source")
    else:
        graph = parse(expr, list(inputs) if inputs is not None else None)
        clock.lap("parse")
        wrt_nodes = _wrt_nodes(graph, wrt)
        names = value_names(graph)
        program = sweep(graph, names, gradient_names(names), wrt_nodes)
        clock.lap("derive")
        user_inputs = graph.input_names
        user_wrt = tuple(graph.nodes[i].name for i in wrt_nodes)
        title = (f"value and gradient of {names[graph.output]}({', '.join(user_inputs)}) "
                 f"with respect to {', '.join(user_wrt) or 'nothing'}")
        source = emit(program, title)
        clock.lap("emit")
    module = _jit.load(source)
    if key and known is None:
        _jit.remember(key, source, inputs=user_inputs, wrt=user_wrt)
    kernel = (_jit.njit(source, (numba.float64,) * len(user_inputs)) if jit
              else getattr(module, KERNEL_NAME))
    clock.lap("jit" if jit else "load")
    return Function(user_inputs, user_wrt, source, kernel, clock.laps, jit,
                    str(_jit.module_path(source)))


# The compiler's own code: a change to any module (a development install) invalidates the
# cached sources, not only a version bump.
_COMPILER_HASH = hashlib.sha256(b"".join(
    p.read_bytes() for p in sorted(Path(__file__).parent.glob("*.py")))).hexdigest()[:16]


def _request_key(expr, wrt, inputs) -> str | None:
    """A hash of everything that decides the generated source, or None if not cacheable."""
    if isinstance(expr, str):
        text = expr
    elif isinstance(expr, sp.Basic):
        text = sp.srepr(expr)
    else:
        return None
    custom = sorted((g.name, g.doc, g.params, g.arity) for g in GATES.values() if g.custom)
    request = repr((__version__, _COMPILER_HASH, text, _listed(wrt), _listed(inputs), custom))
    return hashlib.sha256(request.encode()).hexdigest()[:32]


def _listed(names):
    return None if names is None else [str(n) for n in names]


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = now - self._last
        self._last = now


def _wrt_nodes(graph, wrt: Sequence[str] | None) -> tuple[int, ...]:
    names = graph.input_names
    if wrt is None:
        return graph.inputs
    if isinstance(wrt, str):
        wrt = [wrt]
    wrt = list(wrt)
    for w in wrt:
        if w not in names:
            raise SymbpError(f"cannot differentiate with respect to {w!r}: not an input "
                             f"(inputs: {', '.join(names)})")
    if len(set(wrt)) != len(wrt):
        raise SymbpError(f"wrt lists a name twice: {wrt}")
    return tuple(graph.inputs[names.index(w)] for w in wrt)


class Function:
    """A compiled expression: its value, its gradients and the source that computes them.

    Attributes
    ----------
    inputs : tuple of str
        Input names; positional arguments follow this order.
    wrt : tuple of str
        Names differentiated with respect to, in the order of the kernel's gradients.
    source : str
        The complete generated module (forward pass, then backward pass).
    kernel : callable
        The compiled function itself: positional float inputs in ``inputs`` order, returning
        the flat tuple ``(value, grad_1, ..., grad_k)`` in ``wrt`` order. A Numba dispatcher
        when ``jit=True`` (callable from your own ``@numba.njit`` code; ``kernel.py_func`` is
        its pure-Python twin), else the plain Python function.
    compile_time : float
        Seconds spent in :func:`symbp.compile`; ``timings`` splits it by stage.
    path : str
        The generated module's file.
    """

    def __init__(self, inputs: tuple[str, ...], wrt: tuple[str, ...], source: str, kernel,
                 timings: dict[str, float], jit: bool, path: str) -> None:
        self.inputs = inputs
        self.wrt = wrt
        self.source = source
        self.kernel = kernel
        self.timings = dict(timings)
        self.compile_time = sum(timings.values())
        self.jit = jit
        self.path = path

    def __repr__(self) -> str:
        return (f"<symbp.Function inputs={self.inputs} wrt={self.wrt} "
                f"{'numba' if self.jit else 'python'}>")

    def _values(self, args: tuple, kwargs: dict) -> tuple[float, ...]:
        if len(args) > len(self.inputs):
            raise CallError(f"expected at most {len(self.inputs)} positional inputs "
                            f"({', '.join(self.inputs)}), got {len(args)}")
        given = dict(zip(self.inputs, args))
        for name, value in kwargs.items():
            if name not in self.inputs:
                raise CallError(f"unknown input {name!r}; inputs: {', '.join(self.inputs)}")
            if name in given:
                raise CallError(f"input {name!r} given twice")
            given[name] = value
        missing = [n for n in self.inputs if n not in given]
        if missing:
            raise CallError(f"missing input(s): {', '.join(missing)}")
        return tuple(_scalar(n, given[n]) for n in self.inputs)

    def value_and_grad(self, *args, **kwargs) -> tuple[float, dict[str, float]]:
        """The value and a dict ``name -> gradient`` (one entry per ``wrt`` name)."""
        result = self.kernel(*self._values(args, kwargs))
        return float(result[0]), {n: float(g) for n, g in zip(self.wrt, result[1:])}

    def grad(self, *args, **kwargs) -> dict[str, float]:
        """The gradients, a dict ``name -> value`` in ``wrt`` order."""
        return self.value_and_grad(*args, **kwargs)[1]

    def __call__(self, *args, **kwargs) -> float:
        """The forward value. Positional arguments follow ``inputs``; keywords name them."""
        return float(self.kernel(*self._values(args, kwargs))[0])


def _scalar(name: str, value) -> float:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise CallError(f"input {name!r} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise CallError(f"input {name!r} is too large for a float") from None
