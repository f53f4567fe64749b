"""``symbp.compile``: the pipeline, one line per stage, and the :class:`Function` it returns."""

from __future__ import annotations

import ast
import hashlib
import numbers
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numba
import numpy as np

from . import __version__
from . import blocks as _blocks
from . import jit as _jit
from .errors import CallError, ParseError, SymbpError
from .names import KERNEL_NAME, generated_text, screen_text
from .names import names as checked_names
from .shapes import Ints, checked_shapes, show

if TYPE_CHECKING:
    import sympy as sp

# SymPy and the stages that use it (parse, derive, reverse, emit, the gate table) are imported
# in compile() only when it parses: a compile found in the source cache never loads them.


def compile(expr: str | sp.Expr, *, wrt: Sequence[str] | None = None,
            inputs: Sequence[str] | None = None, shapes: dict | None = None,
            jit: bool = True, order: int = 1) -> Function:
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
    shapes : dict, optional
        Shape of each array input: a tuple of ints and dimension names (``("B", 64)``; a name
        is bound at call time, so one function serves every batch size). Integer labels are
        declared with :func:`symbp.ints` (``symbp.ints(("B",))``) and never differentiated.
        Inputs not listed are scalars.
    jit : bool, default True
        Compile the generated source with Numba. ``jit=False`` runs the same source as plain
        Python (for debugging; the reference the Numba version is tested against).
    order : {1, 2}, default 1
        ``order=2`` also compiles the Hessian-vector product (the gradient of the directional
        derivative ``sum_i v_i * d expr/d wrt_i``, staged by :mod:`symbp.higher`): the
        function then has :meth:`Function.hvp` and :meth:`Function.hessian`, and its staged
        lines and kernel are shown, as comments, at the end of ``source``. Array inputs have
        ``hvp`` (a dict of arrays) but no ``hessian``. Non-smooth gates have second
        derivative 0 away from their kinks and the first-order conventions at them (see
        :func:`symbp.derivative`).

    Returns
    -------
    Function
        The generated module is written to the cache folder here. A scalar function is
        compiled by Numba here too, for float64 (loaded from Numba's on-disk cache when another
        process already compiled it); a function of arrays is compiled at its first call, once
        per dtype (float32 or float64), since the inputs decide it. ``Function.compile_time`` is
        the time taken here, ``Function.timings`` the time of each stage.

    Raises
    ------
    SymbpError
        ``ParseError`` (with a caret under the position) for a malformed or refused expression,
        an unknown name or a wrong number of arguments; ``IdentifierError`` for a name in
        ``inputs``, ``wrt`` or ``shapes`` that is not a string, not an identifier, reserved, a
        keyword, too long or changed by NFKC normalization (see :mod:`symbp.names`); a
        SymbpError for a ``shapes`` key that names no input; ``CompileError`` if Numba fails.

    Examples
    --------
    >>> f = compile("(x + y) * z")
    >>> f.value_and_grad(x=-2.0, y=5.0, z=-4.0)
    (-12.0, {'x': -4.0, 'y': -4.0, 'z': 3.0})
    """
    if order not in (1, 2) or isinstance(order, bool):
        raise SymbpError(f"order must be 1 or 2, got {order!r}")
    if order == 2:
        return _second_order(expr, wrt, inputs, shapes, jit)
    clock = _Clock()
    text = _screen(expr)  # cheap checks first: a 10 MB string is refused before it is hashed
    inputs = checked_names(inputs, "inputs") if inputs is not None else None
    wrt = checked_names(wrt, "wrt") if wrt is not None else None
    if not isinstance(jit, bool):
        raise SymbpError(f"jit must be True or False, got {type(jit).__name__}")
    shapes = checked_shapes(shapes)
    if inputs is not None:
        unknown = [n for n in shapes if n not in inputs]
        if unknown:
            raise SymbpError(f"shapes names {', '.join(map(repr, unknown))}, not an input "
                             f"(inputs: {', '.join(inputs) or '(none)'})")
    key = _request_key(text, wrt, inputs, shapes)
    known = _recalled(key)
    if known is not None:  # compiled before: skip parsing and SymPy
        source, wrt_names, signature = known
        clock.lap("cached source")
    else:
        from .emit import emit
        from .naming import dim_names, gradient_names, value_names
        from .parse import parse
        from .reverse import sweep

        graph = parse(expr, list(inputs) if inputs is not None else None, shapes)
        clock.lap("parse")
        wrt_nodes = _wrt_nodes(graph, wrt)
        names = value_names(graph)
        grads = gradient_names(names)
        program = sweep(graph, names, grads, wrt_nodes, dim_names(graph, names + grads))
        clock.lap("derive")
        signature = tuple((graph.nodes[i].name, graph.nodes[i].shape, graph.nodes[i].integer)
                          for i in graph.inputs)
        wrt_names = tuple(graph.nodes[i].name for i in wrt_nodes)
        title = (f"value and gradient of {names[graph.output]}"
                 f"({', '.join(n for n, _, _ in signature)}) "
                 f"with respect to {', '.join(wrt_names) or 'nothing'}")
        source = emit(program, title)
        clock.lap("emit")
    module = _jit.load(source)
    if key and known is None:
        _jit.remember(key, source, signature=signature, wrt=wrt_names)
    scalar = all(not shape for _, shape, _ in signature)
    if not jit:
        kernel = getattr(module, KERNEL_NAME)
    elif scalar:
        kernel = _jit.njit(source, (numba.float64,) * len(signature))
    else:
        kernel = _jit.njit(source, None)
    clock.lap("jit" if jit else "load")
    return Function(signature, wrt_names, source, kernel, clock.laps, jit,
                    str(_jit.module_path(source)),
                    request=(expr, list(inputs) if inputs is not None else None, shapes,
                             _custom_gates()), definitions=_custom_definitions())


def _second_order(expr, wrt, inputs, shapes, jit: bool) -> Function:
    """compile(order=2): the function, and the gradient of its directional derivative."""
    from .higher import directional

    f = compile(expr, wrt=wrt, inputs=inputs, shapes=shapes, jit=jit)
    taken = set(f.inputs)
    directions = []
    for w in f.wrt:
        name = f"v_{w}"
        while name in taken:
            name += "_"
        taken.add(name)
        directions.append(name)
    declared = {n: shape for n, shape in f.shapes.items() if shape}
    staged = directional(expr, f.wrt, directions, inputs=list(f.inputs), shapes=declared)
    declared.update({d: f.shapes[w] for w, d in zip(f.wrt, directions) if f.shapes[w]})
    with generated_text():  # lines longer than a user's text may be: they derive from it
        hvp = compile(staged, wrt=f.wrt, inputs=list(f.inputs) + directions, shapes=declared,
                      jit=jit)
    f._hvp, f._directions, f.order = hvp, tuple(zip(f.wrt, directions)), 2
    shown = staged + "\n" + hvp.kernel_source
    f.source += ("\n\n# --- order=2: the Hessian-vector product is the gradient of these staged "
                 "lines, compiled to ---\n" + "".join(f"# {line}\n" for line in
                                                     shown.splitlines()))
    f.compile_time += hvp.compile_time
    return f


def _screen(expr) -> str:
    """The text the cache key is made of, after the checks that need no parsing: a string's
    type, length and characters; a SymPy expression's size, depth, constants and names, walked
    iteratively (``srepr`` would recurse)."""
    if isinstance(expr, str):
        screen_text(expr)
        return expr
    sympy = sys.modules.get("sympy")  # a SymPy expression exists only once SymPy is loaded
    if sympy is not None and isinstance(expr, sympy.Basic):
        from .parse import screen_sympy

        return screen_sympy(expr)[0]
    raise ParseError(f"expected an expression string or a SymPy expression, got "
                     f"{type(expr).__name__}")


# The compiler's own code: a change to any module (a development install) invalidates the
# cached sources, not only a version bump.
_COMPILER_HASH = hashlib.sha256(b"".join(
    p.read_bytes() for p in sorted(Path(__file__).parent.glob("*.py")))).hexdigest()[:16]


def _custom_gates() -> list:
    """The custom gates defined now (``gates.custom_signature``). Without the gate table loaded
    there are none (a gate is defined through it), so the cached path need not load SymPy."""
    gates = sys.modules.get(f"{__package__}.gates")
    return gates.custom_signature() if gates is not None else []


def _custom_definitions() -> list:
    """How the custom gates defined now were defined (for pickling: see :mod:`symbp.travel`)."""
    gates = sys.modules.get(f"{__package__}.gates")
    return gates.custom_definitions() if gates is not None else []


def _request_key(text: str, wrt, inputs, shapes) -> str | None:
    """A hash of everything that decides the generated source (``text``: see _screen)."""
    custom = _custom_gates()
    request = repr((__version__, _jit.ENV_KEY, _COMPILER_HASH, text, _listed(wrt), _listed(inputs),
                    sorted((str(k), repr(v)) for k, v in shapes.items()), custom))
    return hashlib.sha256(request.encode()).hexdigest()[:32]


def _recalled(key: str | None) -> tuple | None:
    """(source, wrt names, signature) of the cached record ``key``, or None (also if damaged)."""
    known = _jit.recall(key) if key else None
    if known is None:
        return None
    try:
        wrt_names = tuple(known["wrt"])
        signature = tuple((n, tuple(shape), integer) for n, shape, integer in known["signature"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (all(isinstance(n, str) for n in wrt_names)
            and all(isinstance(n, str) and isinstance(i, bool) for n, _, i in signature)):
        return None
    return known["source"], wrt_names, signature


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
    if wrt is None:  # every input but integer labels
        return tuple(i for i in graph.inputs if not graph.nodes[i].integer)
    wrt = list(wrt)  # checked names (compile)
    for w in wrt:
        if w not in names:
            raise SymbpError(f"cannot differentiate with respect to {w!r}: not an input "
                             f"(inputs: {', '.join(names)})")
        if graph.nodes[graph.inputs[names.index(w)]].integer:
            raise SymbpError(f"cannot differentiate with respect to {w!r}: it holds integer "
                             "labels")
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
    shapes : dict
        Declared shape of every input (``()`` for a scalar; labels as :class:`symbp.Ints`).
    source : str
        The complete generated module (forward pass, then backward pass). Array code is the
        same for float32 and float64: the buffers take the dtype of the first array input.
    kernel : callable
        The compiled function itself: positional inputs in ``inputs`` order, returning the flat
        tuple ``(value, grad_1, ..., grad_k)`` in ``wrt`` order. A Numba dispatcher when
        ``jit=True`` (callable from your own ``@numba.njit`` code; ``kernel.py_func`` is its
        pure-Python twin), else the plain Python function. It does not check its inputs.
    compile_time : float
        Seconds spent in :func:`symbp.compile`; ``timings`` splits it by stage.
    path : str
        The generated module's file (in this process's cache folder).

    Notes
    -----
    A Function pickles as its request (expression text, inputs, shapes, ``wrt``, ``jit``, the
    formula strings of the custom gates it calls), never as code: unpickling compiles it again
    through :func:`symbp.compile`, once per process, and refuses if that process generates
    different code (another symbp version). See :mod:`symbp.travel` for what cannot be
    pickled (a custom gate defined by a Python callable, for one).
    """

    def __init__(self, signature: tuple, wrt: tuple[str, ...], source: str, kernel,
                 timings: dict[str, float], jit: bool, path: str,
                 request: tuple | None = None, definitions: list | tuple = ()) -> None:
        self.signature = signature
        self.inputs = tuple(n for n, _, _ in signature)
        self.shapes = {n: (Ints(shape) if integer else shape) for n, shape, integer in signature}
        self.wrt = wrt
        self.source = source
        self.kernel = kernel
        self.timings = dict(timings)
        self.compile_time = sum(timings.values())
        self.jit = jit
        self.path = path
        self.request = request  # (expr, inputs, shapes, custom gates) of compile(): for draw()
        self.definitions = tuple(definitions)  # the custom gates' definitions then: for pickle
        self._into = None
        self._travel_text = None
        self._hvp = None  # compile(order=2): the Function whose gradient is H v
        self._directions = ()  # (wrt name, its direction input in _hvp)
        self.order = 1  # compile(order=2) sets 2

    def __reduce__(self):
        """Pickle the request, not the compiled code (see the class notes)."""
        from .travel import payload

        return _rebuild, (payload(self, compile),)

    def __repr__(self) -> str:
        return (f"<symbp.Function inputs={self.inputs} wrt={self.wrt} "
                f"{'numba' if self.jit else 'python'}>")

    @property
    def kernel_source(self) -> str:
        """The function that does the work, alone: the forward and backward pass without the
        module's imports and variants (``value_and_grad`` for scalars, ``value_and_grad_into``
        for arrays). ``source`` is the whole module."""
        wanted = KERNEL_NAME if all(not s for _, s, _ in self.signature) else f"{KERNEL_NAME}_into"
        lines = self.source.splitlines()
        for node in ast.parse(self.source).body:
            if isinstance(node, ast.FunctionDef) and node.name == wanted:
                return "\n".join(lines[node.lineno - 1:node.end_lineno]) + "\n"
        raise AssertionError(f"no {wanted} in the generated module")  # emit always writes it

    @property
    def kernel_into(self):
        """The buffer-writing variant of an array function (no allocation): positional inputs,
        then a buffer for every array gradient and intermediate (see ``source``); returns
        ``(value, scalar gradients...)``. For compiled training loops."""
        if self._into is None:
            into = f"{KERNEL_NAME}_into"
            self._into = (_jit.njit(self.source, None, into) if self.jit
                          else getattr(_jit.load(self.source), into))
        return self._into

    def export(self, path) -> Path:
        """Write a standalone module computing this function: it needs NumPy and Numba only.

        The module holds the generated functions (``value_and_grad`` and its variants, as in
        ``source``), each under ``@numba.njit(cache=True)``, and the helpers of
        :mod:`symbp.runtime` they call, copied by name; its docstring names the expression,
        the inputs and their shapes, the gradients and the symbp version, and ``INPUTS``,
        ``WRT`` and ``SHAPES`` hold them. Its ``value_and_grad(*inputs)`` returns the tuple
        ``(value, *gradients)`` in ``wrt`` order (this Function's ``kernel``); it does not
        check its inputs as this Function does. Of a ``compile(..., order=2)`` Function only
        the value and gradient are exported (the docstring says so), not ``hvp``.

        Parameters
        ----------
        path : str or path-like
            The ``.py`` file to write (replaced atomically if it exists: a temporary file in
            its folder, then ``os.replace``).

        Returns
        -------
        pathlib.Path
            The absolute path written.

        Raises
        ------
        ExportError
            If ``path`` is a folder, does not end in ``.py``, its folder does not exist, it
            cannot be written, or its name would shadow a module the file imports
            (``numpy.py``, ``numba.py``, ``math.py``).

        Examples
        --------
        >>> f = compile("x * sigmoid(y)")
        >>> f.export("grad_f.py")  # doctest: +SKIP
        >>> import grad_f  # another program, without symbp  # doctest: +SKIP
        >>> grad_f.value_and_grad(1.0, 0.0)  # doctest: +SKIP
        (0.5, 0.5, 0.25)
        """
        from .export import export

        expr = self.request[0] if self.request is not None else None
        text = expr if isinstance(expr, str) else str(expr) if expr is not None else \
            self.source.splitlines()[1].lstrip("# ")
        return export(self, path, text)

    def draw(self, point: dict | None = None, /, *, values: bool = False, digits: int = 4,
             **inputs):  # self and point positional-only: an input may be named self
        """The circuit diagram: gates as nodes, each edge labelled with the forward value
        (green, above) and the gradient flowing back (red, below), as the CS231n notes draw it.

        Parameters
        ----------
        point : dict, optional
            The inputs by name, as a dict: for inputs named ``values`` or ``digits``.
        values : bool, default False
            For arrays: write the elements of small arrays (at most 16) on the edges instead
            of their shapes. Scalars always show their values.
        digits : int, default 4
            Significant digits of the numbers shown.
        **inputs
            The point to evaluate at, by name. Without inputs the diagram shows the structure
            (and the shapes of array values) only.

        Returns
        -------
        graphviz.Digraph
            Displays inline in Jupyter; ``.render(outfile="circuit.svg")`` or ``.pipe("png")``
            saves it (both need the Graphviz program ``dot``); ``.source`` is the DOT text,
            available without it.

        Raises
        ------
        SymbpError
            Without the ``graphviz`` package (``pip install "symbp[draw]"``); rendering
            without the Graphviz program raises one saying how to install it.
        CallError
            For missing, unknown or non-numeric inputs, and where the generated code cannot
            be evaluated as Python (``math.exp(1000)`` raises where the compiled kernel gives
            inf).

        Examples
        --------
        >>> f = compile("(x + y) * z")
        >>> f.draw(x=-2, y=5, z=-4).render(outfile="circuit.svg")  # doctest: +SKIP
        'circuit.svg'
        """
        from .draw import draw

        if self.request is None:
            raise SymbpError("this Function was not made by symbp.compile: nothing to draw")
        if point is not None:
            if not isinstance(point, dict):
                raise CallError(f"draw() takes the point as a dict or as keywords, got "
                                f"{type(point).__name__}")
            clash = sorted(set(point) & set(inputs))
            if clash:
                raise CallError(f"input(s) {', '.join(clash)} given twice")
            inputs = {**point, **inputs}
        elif {"values", "digits"} & set(self.inputs) and (inputs or values is not False
                                                           or digits != 4):
            named = " and ".join(sorted({"values", "digits"} & set(self.inputs)))
            raise CallError(f"this function has an input named {named}, like an option of "
                            f"draw(): pass the point as a dict, f.draw({{...}})")
        return draw(self, inputs, values, digits)

    def check(self, /, *args, **kwargs):
        """Each generated backward line's local derivative against a central difference.

        The point is given as for a call. Scalar functions: each line's local derivative is
        evaluated in float64, the central difference of its forward line in 50-digit
        arithmetic. Functions of arrays: every generated backward statement runs on its own,
        as the plain Python it prints as (float64; float32 inputs are checked in float64). An
        elementwise loop line's local derivative is checked at every element against a
        50-digit central difference of its gate's formula (a line summing over broadcast axes
        also as a whole), an array gate's adjoint (matmul, softmax, mean...) as the
        vector-Jacobian product it writes, for the actual upstream gradient and a random one,
        against float64 central differences of the gate's forward code extrapolated by Ridders
        (see :mod:`symbp.checkarrays` for why float64 there). The result lists the lines worst
        first, an array line at its worst element, so a precision loss or a kink shows where
        it happens. About 0.1-0.2 s for an MLP of 20x5 inputs, 8 hidden units and 3 classes.

        Returns
        -------
        symbp.checker.LocalReport
            ``.lines``: :class:`symbp.checker.Local` entries (``line``, ``local``, ``value``,
            ``numeric``, ``error``, the relative difference, and for arrays ``index``, the
            worst element); ``.ok`` when every line is within its reference's tolerance;
            ``print()`` shows a table.

        Raises
        ------
        CallError
            For missing, unknown, misshapen or non-finite inputs, labels out of range, and a
            line that cannot be evaluated as Python at the point (``math.exp(1000)``).
        SymbpError
            When the Function's code is not what symbp derives now (a gate redefined since).
        """
        given = self._given(args, kwargs)
        if any(shape for _, shape, _ in self.signature):
            from .checkarrays import check_arrays

            return check_arrays(self, given)
        from .checker import check_function

        return check_function(self, given)

    def hvp(self, v: dict, /, *args, **kwargs) -> dict:
        """The Hessian-vector product ``H v`` at a point, a dict ``name -> value`` in ``wrt``
        order (``compile(..., order=2)``); an array input's entry is an array of its shape.

        ``v`` is a dict ``name -> value`` with one entry per ``wrt`` name (an array of the
        input's shape for an array input); the point is given as for a call. For
        ``scipy.optimize.minimize(..., hessp=...)`` see the tutorial.
        """
        if self._hvp is None:
            raise CallError("hvp needs a second-order function: compile(..., order=2)")
        if not isinstance(v, dict):
            raise CallError(f"v must be a dict name -> value over {', '.join(self.wrt)}, got "
                            f"{type(v).__name__}")
        unknown = [n for n in v if n not in self.wrt]
        missing = [n for n in self.wrt if n not in v]
        if unknown or missing:
            raise CallError("v must give every wrt name once: "
                            + "; ".join(([f"unknown {', '.join(map(repr, unknown))}"] if unknown
                                         else []) + ([f"missing {', '.join(missing)}"]
                                                     if missing else []))
                            + f" (wrt: {', '.join(self.wrt)})")
        given = self._given(args, kwargs)
        given.update({d: v[w] for w, d in self._directions})
        try:  # positionally: an input may be named out, grad's own keyword
            return self._hvp.grad(*(given[n] for n in self._hvp.inputs))
        except CallError as exc:  # name v's entry, not the direction input it is given as
            message = str(exc)
            for w, d in self._directions:
                message = message.replace(f"input {d!r}", f"v[{w!r}]").replace(
                    repr(d), f"v[{w!r}]")
            raise CallError(message) from None

    def hessian(self, /, *args, **kwargs) -> np.ndarray:
        """The Hessian at a point: a 2-D float64 array, rows and columns in ``wrt`` order
        (``compile(..., order=2)``, scalar inputs). Column j is ``hvp`` of the j-th unit
        vector. Given arrays of points, as for a call, an array of shape
        ``(*points, n, n)``: the Hessian at every point."""
        if self._hvp is None:
            raise CallError("hessian needs a second-order function: compile(..., order=2)")
        arrays = [w for w in self.wrt if self.shapes[w]]
        if arrays:
            raise CallError(f"hessian is for scalar inputs; {', '.join(arrays)} "
                            f"{'is an array' if len(arrays) == 1 else 'are arrays'}: use "
                            "f.hvp(v, ...), the Hessian times a direction v (a dict of arrays), "
                            "as Newton-CG and trust-region methods do")
        if not self.wrt:  # wrt=[]: the point is still checked
            self._given(args, kwargs)
            return np.empty((0, 0))
        columns = [self.hvp({u: float(u == w) for u in self.wrt}, *args, **kwargs)
                   for w in self.wrt]
        h = np.array([[column[u] for column in columns] for u in self.wrt])
        return np.moveaxis(h, (0, 1), (-2, -1)) if h.ndim > 2 else h  # points first

    def _given(self, args: tuple, kwargs: dict) -> dict:
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
            hint = (" (an input named out is given positionally: out= receives the results)"
                    if "out" in missing else "")
            raise CallError(f"missing input(s): {', '.join(missing)}{hint}")
        return given

    def _values(self, given: dict) -> tuple:
        if all(not shape for _, shape, _ in self.signature):
            return tuple(_scalar(n, given[n]) for n in self.inputs)
        return _arrays(self.signature, given)

    @staticmethod
    def _dask(given: dict) -> bool:
        return any(_blocks.is_dask(v) for v in given.values())

    def _points_mode(self, given: dict) -> bool:
        """A scalar function given arrays: evaluate it at every point."""
        return all(not shape for _, shape, _ in self.signature) and any(
            isinstance(v, (np.ndarray, list, tuple)) and np.ndim(v) > 0 for v in given.values())

    def value_and_grad(self, /, *args, out=None, **kwargs) -> tuple:
        """The value and a dict ``name -> gradient`` (one entry per ``wrt`` name).

        An array input's gradient is an array of its shape and dtype. Given arrays of one
        shape (or scalars) for the inputs of a scalar function, it returns arrays: the value
        and gradients at every point, computed by a compiled loop (parallel over cores for
        large inputs); ``out=(values, {name: array})`` receives them without allocating.
        Given Dask arrays, it returns Dask arrays, computed block by block
        (:mod:`symbp.blocks`; Dask is imported only then).
        """
        given = self._given(args, kwargs)
        if self._dask(given):
            return _blocks.points(self, given, out)
        if self._points_mode(given):
            if out is not None and not (isinstance(out, tuple) and len(out) == 2):
                raise CallError("out= must be (values, {name: gradients}) here")
            values, grads = out if out is not None else (None, None)
            return self._points(given, values, grads)
        _no_out(out)
        result = self._run(self._values(given))
        return float(result[0]), {n: _out(g) for n, g in zip(self.wrt, result[1:])}

    def grad(self, /, *args, out=None, **kwargs) -> dict:
        """The gradients, a dict ``name -> value`` in ``wrt`` order (``out``: a dict of arrays
        receiving them, for arrays of points)."""
        given = self._given(args, kwargs)
        if self._dask(given):
            return _blocks.points(self, given, out)[1]
        if self._points_mode(given):
            return self._points(given, None, out)[1]
        _no_out(out)
        return self.value_and_grad(*args, **kwargs)[1]

    def __call__(self, /, *args, out=None, **kwargs):
        """The forward value. Positional arguments follow ``inputs``; keywords name them
        (also ``self`` or ``cls``; an input named ``out`` must be given positionally)."""
        given = self._given(args, kwargs)
        if self._dask(given):
            return _blocks.points(self, given, out)[0]
        if self._points_mode(given):
            return self._points(given, out, None)[0]
        _no_out(out)
        return float(self._run(self._values(given))[0])

    def _points(self, given: dict, values, grads) -> tuple:
        raw = {n: _as_array(n, given[n]) for n in self.inputs}
        try:
            arrays = np.broadcast_arrays(*raw.values())
        except ValueError:
            shapes = ", ".join(f"{n}: {np.shape(given[n])}" for n in self.inputs)
            raise CallError(f"inputs do not share one shape ({shapes})") from None
        for name, a in zip(self.inputs, arrays):
            if a.dtype.kind not in "fiu":
                raise CallError(f"input {name!r} must hold real numbers, got {a.dtype}")
        # NumPy arrays decide the dtype; Python numbers and lists follow them
        kinds = {a.dtype for n, a in raw.items() if isinstance(given[n], np.ndarray)
                 and a.ndim > 0 and a.dtype.kind == "f"}
        dtype = np.dtype(np.float32) if kinds == {np.dtype(np.float32)} else np.dtype(np.float64)
        shape = arrays[0].shape
        flat = [np.ascontiguousarray(a, dtype).reshape(-1) for a in arrays]
        out_value = _out_buffer("out", values, shape, dtype)
        grads = grads or {}
        if not isinstance(grads, dict):
            raise CallError("gradients in out= must be a dict {name: array}")
        unknown = set(grads) - set(self.wrt)
        if unknown:
            raise CallError(f"out names {', '.join(sorted(unknown))}, not in wrt {self.wrt}")
        out_grads = {n: _out_buffer(f"out[{n!r}]", grads.get(n), shape, dtype) for n in self.wrt}
        kernel = self._points_kernel(flat[0].size >= PARALLEL_MIN_POINTS
                                     and not _blocks.in_dask_worker())
        kernel(*flat, out_value.reshape(-1), *[out_grads[n].reshape(-1) for n in self.wrt])
        return out_value, out_grads

    def _points_kernel(self, parallel: bool):
        fn = f"{KERNEL_NAME}_points{'_parallel' if parallel else ''}"
        if not self.jit:
            return getattr(_jit.load(self.source), fn)
        return _jit.njit(self.source, None, fn, parallel=parallel)

    def _run(self, values: tuple):
        try:
            return self.kernel(*values)
        except ValueError as exc:
            if "label out of range" in str(exc):
                raise CallError("a label is outside 0 .. (number of classes - 1)") from None
            raise


def _rebuild(data):
    """Unpickle a Function: compile its request here (see :mod:`symbp.travel`)."""
    from .travel import rebuild

    return rebuild(data, compile)


PARALLEL_MIN_POINTS = 20_000
"""Below this many points the serial loop wins (threads cost more than they save)."""


def _out_buffer(what: str, given, shape: tuple, dtype) -> np.ndarray:
    """A given ``out`` array checked (shape, dtype, contiguous), or a new one."""
    if given is None:
        return np.empty(shape, dtype)
    if not isinstance(given, np.ndarray) or given.shape != shape or given.dtype != dtype \
            or not given.flags.c_contiguous or not given.flags.writeable:
        raise CallError(f"{what} must be a writable C-contiguous {dtype} array of shape {shape}")
    return given

def _no_out(out) -> None:
    if out is not None:
        raise CallError("out= receives the results for arrays of points of a scalar function; "
                        "an array function writes its buffers through kernel_into")


def _as_array(name: str, value) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError as exc:  # ragged lists
        raise CallError(f"input {name!r} is not a rectangular array: {exc}") from None


def _out(g):
    return g if isinstance(g, np.ndarray) else float(g)


def _arrays(signature: tuple, given: dict) -> tuple:
    """Inputs converted and checked against the declared shapes: one float dtype for all
    float arrays (float32 or float64), int64 labels, named dimensions consistent."""
    dims: dict[str, tuple[int, str]] = {}
    floats = {n: _as_array(n, given[n]) for n, shape, integer in signature
              if shape and not integer}
    kinds = {a.dtype for n, a in floats.items()
             if isinstance(given[n], np.ndarray) and a.dtype.kind == "f"}
    if len(kinds) > 1:
        raise CallError(f"array inputs mix dtypes {', '.join(sorted(map(str, kinds)))}; "
                        "give them one float dtype")
    dtype = kinds.pop() if kinds else np.dtype(np.float64)
    if dtype not in (np.float32, np.float64):
        raise CallError(f"array inputs must be float32 or float64, got {dtype}")
    out = []
    for name, shape, integer in signature:
        value = given[name]
        if not shape:
            out.append(_scalar(name, value))
            continue
        array = _as_array(name, value)
        given_shape = array.shape  # ascontiguousarray makes a 0-d array 1-d
        if 0 in array.shape:
            raise CallError(f"input {name!r} is empty (shape {array.shape})")
        if integer:
            if array.dtype.kind not in "iu":
                raise CallError(f"input {name!r} holds labels and must be an integer array, got "
                                f"{array.dtype}")
            array = np.ascontiguousarray(array, dtype=np.int64)
        else:
            if array.dtype.kind not in "fiu" or array.dtype.kind == "b":
                raise CallError(f"input {name!r} must be a float array, got {array.dtype}")
            array = np.ascontiguousarray(array, dtype=dtype)
        if len(given_shape) != len(shape):
            raise CallError(f"input {name!r} must have shape {show(shape)}, got {given_shape}")
        for axis, (want, got) in enumerate(zip(shape, array.shape)):
            if isinstance(want, int) and want != got:
                raise CallError(f"input {name!r} must have shape {show(shape)}, got "
                                f"{array.shape} (axis {axis})")
            if isinstance(want, str):
                seen = dims.setdefault(want, (got, name))
                if seen[0] != got:
                    raise CallError(f"dimension {want} is {seen[0]} in {seen[1]!r} but {got} in "
                                    f"{name!r}")
        out.append(array)
    return tuple(out)


def _scalar(name: str, value) -> float:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise CallError(f"input {name!r} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise CallError(f"input {name!r} is too large for a float") from None
