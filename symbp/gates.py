"""The gate table: the one place a gate is defined.

A row gives the gate's name, number of inputs, forward formula as a SymPy builder, numeric
parameters with defaults, and the input domain the tests sample from. Local derivatives are
derived from the formula by SymPy (:mod:`symbp.derive`); a few rows override them: ``max`` and
``min`` to split a tie 0.5/0.5, ``pow``, ``xlogy`` and ``sign`` to stay finite where SymPy's are
not, ``sigmoid`` and ``tanh`` to use the gates ``sigmoid_grad`` and ``tanh_grad`` (their cached
output's ``s*(1 - s)`` and ``1 - t**2``, exact also in the tails, where those lose their digits).
Kinks of the piecewise gates follow one convention, written into their formulas: at x = 0 the
``x <= 0`` branch is taken (relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha), and
abs'(0) = sign(0) = 0.

Gates with a ``call`` are opaque to SymPy (a :class:`sympy.Function` whose derivative comes from
the formula) and are emitted as a call: either a Python builtin or a numerically stable helper of
:mod:`symbp.runtime`. The others are emitted as their formula.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from functools import cache

import sympy as sp
from mpmath.libmp import prec_to_dps

from . import arrays as A
from .errors import GateError

Formula = Callable[..., sp.Expr]
Domain = tuple[float, float]


@dataclass(frozen=True, eq=False)
class Gate:
    """One row of the gate table.

    Parameters
    ----------
    name : str
        Name used in expressions (``sigmoid(x)``).
    arity : int
        Number of value inputs (parameters not counted).
    formula : callable
        ``formula(*inputs, *params) -> sympy.Expr``, the forward computation.
    doc : str
        One line for the gate reference.
    params : tuple of (name, default)
        Numeric constants such as leaky_relu's ``slope``.
    call : str or None
        If set, the forward is emitted as ``call(inputs..., params...)``.
    derivative : callable or None
        Override ``derivative(*inputs, *params) -> tuple`` of local derivatives (ties only).
    domain : tuple of (low, high)
        Per input, where the generic tests sample points.
    kinks : tuple
        ``((point, expected local derivatives), ...)``: conventions the tests check exactly.
    label : str
        Prefix of readable temporaries (``sig`` + ``y`` -> ``sigy``).
    infix : str
        Letter joining two short names for binary operators (``x`` ``p`` ``y`` -> ``xpy``).
    custom : bool
        Registered by the user through :func:`symbp.gate`.
    text : str or None
        A custom gate's formula as the string it was defined with (``None`` for a callable):
        what a pickled :class:`symbp.Function` carries to define the gate in another process.
    note : str
        How the gate is computed for accuracy where the plain formula loses digits, shown in
        the comment of the generated lines that compute it: the gate's forward line
        (``sigmoid_cross_entropy``), or, for a gate with ``fast``, every line calling it, after
        its fast form in the line's names (``{x}`` stands for the first argument).
    dnote : str
        The same for the gate's local derivatives: shown on its backward lines.
    tail : str or None
        For a gate whose helper branches to an exact form in the tails: the runtime helper
        telling where (``sigmoid_tail(x)``). A loop row none of whose entries is in the tail
        runs ``fast`` instead, so the loop vectorizes (the generated source shows the split).
    fast : callable or None
        The gate's formula off the tails (``s*(1 - s)``), with ``tail``.
    """

    name: str
    arity: int
    formula: Formula
    doc: str
    params: tuple[tuple[str, float], ...] = ()
    call: str | None = None
    derivative: Callable[..., tuple[sp.Expr, ...]] | None = None
    domain: tuple[Domain, ...] = ()
    kinks: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = ()
    label: str = ""
    infix: str = ""
    custom: bool = False
    text: str | None = None
    note: str = ""
    dnote: str = ""
    tail: str | None = None
    fast: Formula | None = None
    array: ArrayOp | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def domains(self) -> tuple[Domain, ...]:
        """Sampling domain of each input (default (-3, 3))."""
        return self.domain or ((-3.0, 3.0),) * self.arity

    @property
    def function(self) -> type[sp.Function]:
        """The SymPy function class standing for an opaque gate (one with ``call``); one class
        per gate, also when threads ask at once."""
        made = self._cache.get("function")
        if made is None:
            with _LOCK:
                made = self._cache.get("function")
                if made is None:
                    made = self._cache["function"] = _opaque_function(self)
        return made

    def apply(self, *args: sp.Expr) -> sp.Expr:
        """The gate applied to SymPy inputs followed by its parameters."""
        if self.array is not None:
            raise GateError(f"{self.name} works on whole arrays and has no scalar formula; "
                            "use it in a single expression, not in a staged line or formula")
        return self.function(*args) if self.call else self.formula(*args)

    def bind_params(self, positional: list, keywords: dict) -> tuple[sp.Number, ...]:
        """Parameters from call arguments, defaults filled in; raises ValueError if wrong."""
        names = [p for p, _ in self.params]
        if len(positional) > len(names):
            raise ValueError(f"{self.name}() takes {self.arity} input(s)"
                             + (f" and parameters {', '.join(names)}" if names else "")
                             + f", got {self.arity + len(positional)} arguments")
        values = dict(self.params)
        values.update(zip(names, positional))
        for key, val in keywords.items():
            if key not in values:
                raise ValueError(f"{self.name}() has no parameter {key!r}"
                                 + (f" (parameters: {', '.join(names)})" if names else ""))
            if key in names[:len(positional)]:  # as Python: a parameter is given once
                raise ValueError(f"{self.name}() got multiple values for parameter {key!r} "
                                 "(positional and keyword)")
            values[key] = val
        if self.array is not None:  # array parameters are plain ints (axis) or None
            for n in names:
                v = values[n]
                if v is not None and not isinstance(v, (sp.Integer, int)):
                    raise ValueError(f"{self.name}(): {n} must be an integer")
            return tuple(None if values[n] is None else int(values[n]) for n in names)
        return tuple(sp.Float(values[n]) if isinstance(values[n], float) else sp.sympify(values[n])
                     for n in names)


@dataclass(frozen=True)
class ArrayOp:
    """How an array gate computes: its shape rule and code (see :mod:`symbp.arrays`)."""

    shape: Callable
    forward: Callable
    adjoint: Callable
    staged: Callable | None = None  # the adjoint as symbp input (symbp.higher differentiates it)
    labels: tuple[int, ...] = ()  # inputs that are integer labels (never differentiated)
    shape_only: tuple[int, ...] = ()  # inputs read for their shape only: no gradient to them
    view: bool = False  # the output is a view of the input: no buffer of its own
    saves: str = ""  # names a buffer shaped like input 0 the forward pass fills for the backward
    examples: tuple = ()  # (input shapes, params) the generic tests run, "B" a batch size


def _opaque_function(gate: Gate) -> type[sp.Function]:
    """A SymPy Function for ``gate`` whose derivative is derived from the gate's formula."""

    def fdiff(self, argindex=1):
        if argindex > gate.arity:
            raise sp.ArgumentIndexError(self, argindex)
        local = local_rule(gate)[argindex - 1]
        mapping = {placeholder(k): a for k, a in enumerate(self.args[:gate.arity])}
        params = self.args[gate.arity:]
        mapping.update({param_symbol(n): v for (n, _), v in zip(gate.params, params)})
        mapping[OUT] = self
        return local.xreplace(mapping)

    def eval(cls, *args):
        if all(a.is_Number for a in args):
            return gate.formula(*args)
        return None

    def _eval_evalf(self, prec):
        """A number from the formula, also when the arguments are numbers not yet evaluated
        (``softplus(1.5*log(5/2))``: SymPy has no numeric softplus of its own)."""
        if all(a.is_number for a in self.args):
            return gate.formula(*self.args).evalf(prec_to_dps(prec))
        return None

    return type(gate.name, (sp.Function,), {
        "nargs": gate.arity + len(gate.params), "fdiff": fdiff, "eval": classmethod(eval),
        "_eval_evalf": _eval_evalf,
        "_eval_is_real": lambda self: True, "symbp_gate": gate})


@cache
def placeholder(k: int) -> sp.Symbol:
    """The symbol standing for input ``k`` of a formula (``_a0``, ``_a1``...; no user name can
    be one, see :mod:`symbp.names`)."""
    return sp.Symbol(f"_a{k}", real=True)


OUT = sp.Symbol("_out", real=True)
"""The symbol standing for a gate's own output in its local derivatives."""


def param_symbol(name: str) -> sp.Symbol:
    """The symbol a gate parameter stands as while its derivative is derived."""
    return sp.Symbol(f"_param_{name}", real=True)


def _raw_derivatives(gate: Gate) -> tuple[sp.Expr, ...]:
    """Local derivatives straight from the formula (used until :mod:`symbp.derive`, a stage
    above this table, installs its rewriting rule with :func:`use_local_rule`)."""
    args = tuple(placeholder(k) for k in range(gate.arity))
    params = tuple(param_symbol(n) for n, _ in gate.params)
    if gate.derivative is not None:
        return tuple(gate.derivative(*args, *params))
    formula = gate.formula(*args, *params)
    return tuple(sp.diff(formula, a) for a in args)


local_rule: Callable[[Gate], tuple[sp.Expr, ...]] = _raw_derivatives
"""Gate -> its local derivatives over placeholders, :data:`OUT` and parameter symbols. The
table imports no stage above it: the derive stage installs its rule here."""


def use_local_rule(rule: Callable[[Gate], tuple[sp.Expr, ...]]) -> None:
    """Install the rule SymPy's ``fdiff`` of an opaque gate uses (called by symbp.derive)."""
    global local_rule
    local_rule = rule


def _tie(first: bool):
    """Local derivatives of max (first=True) or min: all to the winner, 0.5/0.5 on a tie."""
    def derivative(a, b):
        win_a, win_b = (a > b, b > a) if first else (a < b, b < a)
        tie = sp.Rational(1, 2)
        return (sp.Piecewise((1, win_a), (tie, sp.Eq(a, b)), (0, True)),
                sp.Piecewise((1, win_b), (tie, sp.Eq(a, b)), (0, True)))
    return derivative


_POS = ((0.2, 4.0),)
_SIGMOID_TAIL = 7.0  # = symbp.runtime.SIGMOID_TAIL, where sigmoid_grad takes its exact form
_TANH_TAIL = 4.0  # = symbp.runtime.TANH_TAIL (the table imports no Numba; a test checks both)
_DIV = ((-3.0, 3.0), (0.5, 3.0))

_BUILTIN = (
    Gate("add", 2, lambda a, b: a + b, "a + b: distributes the gradient", label="sum", infix="p"),
    Gate("sub", 2, lambda a, b: a - b, "a - b", label="diff", infix="m"),
    Gate("mul", 2, lambda a, b: a * b, "a * b: switches the inputs", label="prod", infix="t"),
    Gate("div", 2, lambda a, b: a / b, "a / b", domain=_DIV, label="quot", infix="d"),
    Gate("pow", 2, lambda a, b: a ** b, "a ** b (constant or variable exponent); at a = 0 "
         "the derivatives are b*0**(b - 1) and 0, as PyTorch's", derivative=lambda a, b: (
             b * a ** (b - 1), sp.Piecewise((0, sp.Eq(a, 0)), (a ** b * sp.log(a), True))),
         domain=((0.2, 3.0), (-2.0, 2.0)), kinks=(((0.0, 2.0), (0.0, 0.0)),), label="power"),
    Gate("neg", 1, lambda a: -a, "-a", label="neg"),
    Gate("identity", 1, lambda a: a, "a, unchanged", label="id"),
    Gate("exp", 1, sp.exp, "exp(a); derivative is the output", domain=((-3.0, 3.0),), label="exp"),
    Gate("log", 1, sp.log, "natural logarithm", domain=_POS, label="log"),
    Gate("sqrt", 1, sp.sqrt, "square root", domain=_POS, label="sqrt"),
    Gate("sin", 1, sp.sin, "sine", label="sin"),
    Gate("cos", 1, sp.cos, "cosine", label="cos"),
    Gate("tanh", 1, lambda a: sp.tanh(a), "hyperbolic tangent; derivative tanh_grad(a, out) "
         "(1 - out**2, exact in the tails)", call="tanh",
         derivative=lambda a: (GATES["tanh_grad"].apply(a, OUT),), label="tanh"),
    Gate("tanh_grad", 2, lambda a, t: sp.Piecewise(
        (4 * sp.exp(-2 * sp.Abs(a)) / (1 + sp.exp(-2 * sp.Abs(a))) ** 2, sp.Abs(a) > _TANH_TAIL),
        (1 - t ** 2, True)),
         "tanh'(a) given t = tanh(a) (tanh's local derivative): 1 - t**2, and 4e/(1 + e)**2, "
         f"e = exp(-2|a|), where |a| > {_TANH_TAIL:g} (t rounds to +-1): exact in the tails "
         "in float64 (float32: 1 - t**2 alone)", call="tanh_grad", tail="tanh_tail",
         fast=lambda a, t: 1 - t ** 2, domain=((-8.0, 8.0), (-1.0, 1.0)), label="dtanh",
         note="written as 4e/(1 + e)**2, e = exp(-2|{x}|), where |{x}| > "
              f"{_TANH_TAIL:g}: exact in the tails"),
    Gate("abs", 1, sp.Abs, "absolute value; abs'(0) = 0", kinks=(((0.0,), (0.0,)),),
         label="abs"),
    Gate("sign", 1, lambda a: sp.Piecewise((1, a > 0), (-1, a < 0), (0, True)),
         "-1, 0 or 1 (abs', as symbp.derivative writes it); derivative 0, sign'(0) = 0 too",
         call="sign", derivative=lambda a: (sp.Integer(0),),
         kinks=(((0.0,), (0.0,)),), label="sgn"),
    Gate("ifpos", 3, lambda c, a, b: sp.Piecewise((a, c > 0), (b, True)),
         "a if c > 0 else b (only the branch taken is computed; a NaN c takes b): the "
         "piecewise derivatives symbp.derivative writes; derivative 0 in c",
         kinks=(((0.0, 2.0, 3.0), (0.0, 0.0, 1.0)),), label="sel"),
    Gate("max", 2, sp.Max, "larger input; routes the gradient, ties split 0.5/0.5",
         call="maximum", derivative=_tie(True), kinks=(((1.0, 1.0), (0.5, 0.5)),), label="max"),
    Gate("min", 2, sp.Min, "smaller input; ties split 0.5/0.5",
         call="minimum", derivative=_tie(False), kinks=(((1.0, 1.0), (0.5, 0.5)),), label="min"),
    Gate("sigmoid", 1, lambda a: 1 / (1 + sp.exp(-a)), "logistic 1/(1 + exp(-a)); derivative "
         "sigmoid_grad(a, out) (out*(1 - out), exact in the tails)", call="sigmoid",
         derivative=lambda a: (GATES["sigmoid_grad"].apply(a, OUT),), label="sig"),
    Gate("sigmoid_grad", 2, lambda a, s: sp.Piecewise(
        (sp.exp(-a) / (1 + sp.exp(-a)) ** 2, a > _SIGMOID_TAIL), (s * (1 - s), True)),
         "sigmoid'(a) given s = sigmoid(a) (sigmoid's local derivative): s*(1 - s), and "
         f"e/(1 + e)**2, e = exp(-a), where a > {_SIGMOID_TAIL:g} (s rounds to 1): exact in the "
         "tails in float64 (float32: s*(1 - s) alone)", call="sigmoid_grad",
         tail="sigmoid_tail", fast=lambda a, s: s * (1 - s), domain=((-12.0, 12.0), (0.0, 1.0)),
         label="dsig", note="written as e/(1 + e)**2, e = exp(-{x}), where {x} > "
                            f"{_SIGMOID_TAIL:g}: exact in the tails"),
    Gate("softplus", 1, lambda a: sp.log(1 + sp.exp(a)), "log(1 + exp(a))",
         call="softplus", label="sp",
         note="log(1 + exp(x)) written as max(x, 0) + log1p(exp(-|x|)): exact in the tails"),
    Gate("relu", 1, lambda a: sp.Piecewise((0, a <= 0), (a, True)), "max(0, a); relu'(0) = 0",
         call="relu", kinks=(((0.0,), (0.0,)),), label="relu"),
    Gate("leaky_relu", 1, lambda a, slope: sp.Piecewise((slope * a, a <= 0), (a, True)),
         "a if a > 0 else slope * a", params=(("slope", 0.01),), call="leaky_relu",
         kinks=(((0.0,), (0.01,)),), label="lrelu"),
    Gate("xlogy", 2, lambda a, b: sp.Piecewise((0, sp.Eq(a, 0)), (a * sp.log(b), True)),
         "a * log(b), and 0 where a = 0 whatever b (SciPy's xlogy): the Poisson deviance's "
         "t*log(t) at t = 0", derivative=lambda a, b: (
             sp.log(b), sp.Piecewise((0, sp.Eq(a, 0)), (a / b, True))),
         domain=((0.2, 3.0), (0.2, 3.0)), label="xlogy"),
    Gate("sigmoid_cross_entropy", 2,
         lambda z, t: GATES["relu"].apply(z) - z * t + GATES["softplus"].apply(-sp.Abs(z)),
         "binary cross-entropy from logits z and targets t: softplus(z) - z*t, written "
         "relu(z) - z*t + softplus(-|z|), exact for t = 0 or 1 at any z (so is its derivative "
         "sigmoid(z) - t, derived from that formula)", label="bce",
         note="softplus(z) - z*t written as relu(z) - z*t + softplus(-|z|): exact in the tails",
         dnote="sigmoid(z) - t written as step(z) - t - sigmoid(-|z|)*sign(z): exact in the "
               "tails"),
    Gate("elu", 1, lambda a, alpha: sp.Piecewise((alpha * (sp.exp(a) - 1), a <= 0), (a, True)),
         "a if a > 0 else alpha * (exp(a) - 1)", params=(("alpha", 1.0),), call="elu",
         kinks=(((0.0,), (1.0,)),), label="elu",
         note="alpha*(exp(x) - 1) written as alpha*expm1(x): exact near 0"),
)

_LABELS = {"matmul": "mm", "transpose": "T", "softmax": "probs", "log_softmax": "logp",
           "logsumexp": "lse", "softmax_cross_entropy": "loss", "hinge": "loss",
           "expand": "spread", "onehot": "hot"}


def _array(name, arity, doc, shape, forward, adjoint, params=(), **options):
    op = ArrayOp(shape, forward, adjoint, **options)
    return Gate(name, arity, lambda *a: None, doc, params=params, array=op,
                label=_LABELS.get(name, name[:4]))


_MATRIX = ((("B", 3),), {})
_AXES = tuple(((("B", 3),), {"axis": a}) for a in (None, 0, 1, -1)) + (((("B",),), {}),)
_ROWS = ((("B", 4),), {}), (((4,),), {})
_LABELLED = ((("B", 4), ("B",)), {}),
_LABELLED_FIRST = (((("B",), ("B", 4)), {}),)

_ARRAY = (
    _array("matmul", 2, "a @ b: matrix-matrix, matrix-vector, vector-matrix, dot; dA = dC B^T, "
           "dB = A^T dC", A.matmul_shape, A.matmul_forward, A.matmul_adjoint,
           staged=A.matmul_staged,
           examples=(((("B", 3), (3, 2)), {}), ((("B", 3), (3,)), {}),
                     (((3,), (3, 2)), {}), (((3,), (3,)), {}),
                     (((3, 40), (40, 50)), {}))),  # the last one large enough for BLAS
    _array("transpose", 1, "a.T of a matrix (a view); da = dout^T", A.transpose_shape,
           A.transpose_forward, A.transpose_adjoint, staged=A.transpose_staged, view=True,
           examples=(_MATRIX,)),
    _array("sum", 1, "sum of all elements, or along axis=", A.reduce_shape, A.sum_forward,
           A.sum_adjoint, params=(("axis", None),), staged=A.sum_staged, examples=_AXES),
    _array("mean", 1, "mean of all elements, or along axis=", A.reduce_shape, A.mean_forward,
           A.mean_adjoint, params=(("axis", None),), staged=A.mean_staged, examples=_AXES),
    _array("softmax", 1, "softmax along the last axis (max-shifted)", A.last_axis_shape,
           A.softmax_forward, A.softmax_adjoint, staged=A.softmax_staged, examples=_ROWS),
    _array("log_softmax", 1, "log of softmax along the last axis", A.last_axis_shape,
           A.log_softmax_forward, A.log_softmax_adjoint, staged=A.log_softmax_staged,
           examples=_ROWS),
    _array("logsumexp", 1, "log(sum(exp(z))) along the last axis (max-shifted)",
           A.logsumexp_shape, A.logsumexp_forward, A.logsumexp_adjoint,
           staged=A.logsumexp_staged, examples=_ROWS),
    _array("softmax_cross_entropy", 2, "per row: logsumexp(z) - z[label] (integer labels)",
           A.labelled_shape, A.softmax_cross_entropy_forward, A.softmax_cross_entropy_adjoint,
           staged=A.softmax_cross_entropy_staged, saves="probs",
           labels=(1,), examples=_LABELLED),
    _array("hinge", 2, "per row: sum over j != label of max(0, s_j - s_label + 1)",
           A.labelled_shape, A.hinge_forward, A.hinge_adjoint, staged=A.hinge_staged,
           labels=(1,), examples=_LABELLED),
    # the gates the staged adjoints above are written with (symbp.derivative prints them)
    _array("expand", 2, "expand(g, like, axis=None, mean=0): g spread back over the axis (all "
           "axes for None) a sum of like removes, to like's shape, divided by the count for "
           "mean=1 (the adjoint of sum and mean; its own is sum or mean); no gradient to like",
           A.expand_shape, A.expand_forward, A.expand_adjoint,
           params=(("axis", None), ("mean", 0)), staged=A.expand_staged, shape_only=(1,),
           examples=(((("B",), ("B", 3)), {"axis": 1}), (((3,), ("B", 3)), {"axis": 0}),
                     (((), ("B", 3)), {"mean": 1}), (((), (4,)), {"axis": 0, "mean": 1}),
                     ((("B",), ("B", 3)), {"axis": -1, "mean": 1}))),
    _array("onehot", 2, "onehot(labels, like): 1.0 where the column is the row's label, else "
           "0.0, shaped like like (B, C); no gradient", A.onehot_shape, A.onehot_forward,
           A.no_adjoint, labels=(0,), shape_only=(1,), examples=_LABELLED_FIRST),
)

class GateTable(MutableMapping):
    """The gate table: a mapping name -> :class:`Gate`, safe to read while another thread
    registers a gate.

    Copy-on-write: the rows live in a dict that is never changed in place; a write builds a
    new dict under a lock and swaps it in, so an iteration (a compile listing the table) walks
    one consistent snapshot and never sees "dictionary changed size during iteration".
    """

    def __init__(self, rows) -> None:
        self._rows: dict[str, Gate] = dict(rows)
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Gate]:
        """The rows as they are now (a dict nobody changes)."""
        return self._rows

    def __getitem__(self, name: str) -> Gate:
        return self._rows[name]

    def get(self, name, default=None):
        return self._rows.get(name, default)

    def __contains__(self, name) -> bool:
        return name in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def keys(self):
        return self._rows.keys()

    def values(self):
        return self._rows.values()

    def items(self):
        return self._rows.items()

    def __setitem__(self, name: str, row: Gate) -> None:
        with self._lock:
            rows = dict(self._rows)
            rows[name] = row
            self._rows = rows

    def __delitem__(self, name: str) -> None:
        with self._lock:
            rows = dict(self._rows)
            del rows[name]
            self._rows = rows

    def clear(self) -> None:
        with self._lock:
            self._rows = {}

    def update(self, other=(), /, **kwargs) -> None:
        with self._lock:
            rows = dict(self._rows)
            rows.update(other, **kwargs)
            self._rows = rows

    def __repr__(self) -> str:
        return f"GateTable({list(self._rows)})"


_LOCK = threading.RLock()

GATES: GateTable = GateTable((g.name, g) for g in _BUILTIN + _ARRAY)
"""Every gate by name: the built-in rows above and the custom gates registered since."""

OPERATORS = {"Add": "add", "Sub": "sub", "Mult": "mul", "Div": "div", "Pow": "pow", "USub": "neg",
             "MatMult": "matmul"}
"""Python operators (ast class names) and the gates they stand for."""

# Gates reachable only through operators or internally: not callable by name in expressions.
_NOT_CALLABLE = frozenset({"add", "sub", "mul", "div", "pow", "neg", "identity", "matmul"})

ALIASES = {"maximum": "max", "minimum": "min"}
"""Other names of gates (NumPy's elementwise names)."""


def callable_gates() -> list[str]:
    """Names usable as functions in expressions, sorted."""
    return sorted(n for n in GATES if n not in _NOT_CALLABLE)


def lookup(name: str) -> Gate | None:
    """The gate callable as ``name(...)`` in an expression, or None."""
    name = ALIASES.get(name, name)
    return None if name in _NOT_CALLABLE else GATES.get(name)


MODULE_ALIASES = ("math", "np", "numpy")
"""Module names an expression may write before a gate or a constant (``math.exp``, ``np.pi``)."""

CONSTANTS = {"pi": 3.141592653589793, "e": 2.718281828459045}
"""Constants ``math.pi``, ``np.pi``, ``math.e`` and ``np.e``; a bare ``pi`` too (a bare ``e``
is an ordinary name)."""


def register(row: Gate) -> Gate:
    """Add a custom row to the table (``symbp.gate`` builds it); built-in rows stay."""
    if not row.custom:
        raise GateError("only custom gates are registered")
    with _LOCK:
        current = GATES.get(row.name)
        if current is not None and not current.custom:
            raise GateError(f"{row.name!r} is a built-in gate and cannot be redefined")
        GATES[row.name] = row
    return row


def custom_signature() -> list:
    """The custom gates as they are defined now (they decide the generated source too)."""
    return sorted((g.name, g.doc, g.params, g.arity) for g in GATES.values() if g.custom)


def custom_definitions() -> list:
    """How the custom gates were defined: ``(name, formula string or None, params, domain)``
    each, for a pickled Function to define them again (see :mod:`symbp.travel`)."""
    return sorted((g.name, g.text, g.params, g.domain) for g in GATES.values() if g.custom)
