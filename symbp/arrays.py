"""Shape rules and code of the array gates of the table (matmul, transpose, sum, softmax...).

Each array gate gives four functions, used by its row in :mod:`symbp.gates`:
``shape(shapes, params)`` (raises ValueError with a message naming both shapes), ``forward(c)``
and ``adjoint(c, position)``, which return statements (:mod:`symbp.statements`), and
``staged(c, position)``, the same adjoint written as symbp input (for :mod:`symbp.higher`,
which differentiates it again). ``c`` is a :class:`Site`: the names, shapes and parameters of
one use of the gate. An adjoint writes the gradient of input ``position`` (``c.add``:
accumulate into it instead of overwriting it).

A staged adjoint is a list of ``(label, text)`` lines: the text of the gradient contribution of
input ``position``, in terms of the gate's inputs, its output ``c.out`` and the upstream
gradient ``c.dout`` (a name), written with gates only, so that it has adjoints of its own. The
last line's label is None; an earlier line is an intermediate the later texts refer to as
``{label}`` (hinge's violated margins). ``expand`` and ``onehot`` exist for these texts:
``expand(g, like, axis=k)`` spreads ``g`` back along the axis a sum removed (the adjoint of
sum; its own adjoint is sum), and ``onehot(labels, like)`` is softmax cross-entropy's target.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .shapes import Shape, show
from .statements import Code, Loop, LoopAssign, Ref


@dataclass(frozen=True)
class Site:
    """One use of an array gate: output, inputs, their gradients, shapes, parameters."""

    out: str
    args: tuple[str, ...]
    shapes: tuple[Shape, ...]
    out_shape: Shape
    params: dict
    dout: str | None = None
    dargs: tuple[str | None, ...] = ()
    add: bool = False
    saved: str | None = None  # the buffer of what the forward pass keeps for the backward


def same_dim(a, b) -> bool:
    return a == b


# -- loops built from refs ------------------------------------------------------------------


def _loop(shape: Shape, target: Ref, value, refs: dict, add: bool, comment: str = "") -> Loop:
    symbols = {ref: sp.Symbol(f"_r{k}", real=True) for k, ref in enumerate(refs)}
    expr = value(*[symbols[r] for r in refs]) if callable(value) else value
    return Loop(tuple(shape), (LoopAssign(target, expr, tuple((symbols[r], r) for r in refs), add,
                                          comment),))


def _ident(shape: Shape) -> tuple[int, ...]:
    return tuple(range(len(shape)))


# -- matmul ---------------------------------------------------------------------------------


def matmul_shape(shapes, params) -> Shape:
    a, b = shapes
    if not (1 <= len(a) <= 2 and 1 <= len(b) <= 2):
        raise ValueError(f"@ needs vectors or matrices, got shapes {show(a)} and {show(b)}")
    if not same_dim(a[-1], b[0]):
        raise ValueError(f"@: shapes {show(a)} and {show(b)} do not match "
                         f"({a[-1]} != {b[0]})")
    return a[:-1] + b[1:]


def matmul_forward(c: Site) -> list:
    a, b = c.args
    ranks = tuple(len(s) for s in c.shapes)
    # the helpers take transpose flags (out = op(a) @ op(b)): arrays go as stored, never as
    # transposed views, so each helper has one compiled version per dtype
    return [{(2, 2): Code(f"matmul({a}, {b}, {c.out}, False, False, False)"),
             (2, 1): Code(f"matvec({a}, {b}, {c.out}, False, False)"),
             (1, 2): Code(f"matvec({b}, {a}, {c.out}, False, True)"),
             (1, 1): Code(f"{c.out} = dot({a}, {b})")}[ranks]]


def matmul_staged(c: Site, position: int) -> list:
    a, b = c.args
    g = c.dout
    ranks = tuple(len(s) for s in c.shapes)
    text = {
        (0, (2, 2)): f"{g} @ {b}.T", (1, (2, 2)): f"{a}.T @ {g}",
        (0, (2, 1)): f"expand({g}, {a}, axis=1) * {b}",  # dW[i, j] = dq[i] x[j]
        (1, (2, 1)): f"{a}.T @ {g}",
        (0, (1, 2)): f"{b} @ {g}",
        (1, (1, 2)): f"expand({a}, {b}, axis=1) * {g}",  # dW[i, j] = x[i] dq[j]
        (0, (1, 1)): f"{g} * {b}", (1, (1, 1)): f"{g} * {a}",
    }[position, ranks]
    return [(None, text)]


def matmul_adjoint(c: Site, position: int) -> list:
    a, b = c.args
    d, g, add = c.dout, c.dargs[position], c.add
    ranks = tuple(len(s) for s in c.shapes)
    if ranks == (1, 1):  # a scalar product: d(a.b)/da = b
        other = Ref(c.args[1 - position], (0,))
        return [_loop(c.shapes[position], Ref(g, (0,)), lambda o, u: o * u,
                      [other, Ref(d)], add)]
    table = {
        (0, (2, 2)): f"matmul({d}, {b}, {g}, {add}, False, True)",  # dA = dC B^T
        (1, (2, 2)): f"matmul({a}, {d}, {g}, {add}, True, False)",  # dB = A^T dC
        (0, (2, 1)): f"outer({d}, {b}, {g}, {add})",  # dW = dq x^T
        (1, (2, 1)): f"matvec({a}, {d}, {g}, {add}, True)",  # dx = W^T dq
        (0, (1, 2)): f"matvec({b}, {d}, {g}, {add}, False)",  # dx = W dq
        (1, (1, 2)): f"outer({a}, {d}, {g}, {add})",  # dW = x dq^T
    }
    return [Code(table[position, ranks])]


# -- transpose ------------------------------------------------------------------------------


def transpose_shape(shapes, params) -> Shape:
    (a,) = shapes
    if len(a) == 0:
        raise ValueError(".T needs an array, got a scalar")
    return tuple(reversed(a))  # a vector is its own transpose, as in NumPy


def transpose_forward(c: Site) -> list:
    return [Code(f"{c.out} = {c.args[0]}.T", "a view, no copy")]


def transpose_adjoint(c: Site, position: int) -> list:
    shape = c.shapes[0]
    axes = tuple(range(len(shape)))
    return [_loop(shape, Ref(c.dargs[0], axes), lambda u: u, [Ref(c.dout, axes[::-1])], c.add)]


def transpose_staged(c: Site, position: int) -> list:
    return [(None, f"{c.dout}.T")]


# -- sum and mean ---------------------------------------------------------------------------


def _axis(shape: Shape, params) -> int | None:
    axis = params.get("axis")
    if axis is None or len(shape) <= 1 and axis in (0, -1):
        return None
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis {axis} is out of range for shape {show(shape)}")
    return axis % len(shape)


def reduce_shape(shapes, params) -> Shape:
    (a,) = shapes
    if len(a) == 0:
        raise ValueError("sum/mean need an array, got a scalar")
    axis = _axis(a, params)
    return () if axis is None else a[:axis] + a[axis + 1:]


def _count(c: Site, axis, array: int = 0) -> str:
    a = c.args[array]
    return f"{a}.size" if axis is None else f"{a}.shape[{axis}]"


def _axis_text(params) -> str:
    return "" if params.get("axis") is None else f", axis={params['axis']}"


def _reduce_forward(c: Site, mean: bool) -> list:
    a, (shape,) = c.args[0], c.shapes
    axis = _axis(shape, c.params)
    if axis is None:
        return [Code(f"{c.out} = np.sum({a})" + (f" / {_count(c, axis)}" if mean else ""))]
    kept = tuple(k for k in range(len(shape)) if k != axis)
    count = sp.Symbol(_count(c, axis), real=True)
    loop = _loop(shape, Ref(c.out, kept), (lambda u: u / count) if mean else (lambda u: u),
                 [Ref(a, _ident(shape))], True)
    return [Code(f"{c.out}[:] = 0.0"), loop]


def sum_forward(c: Site) -> list:
    return _reduce_forward(c, mean=False)


def mean_forward(c: Site) -> list:
    return _reduce_forward(c, mean=True)


def _reduce_adjoint(c: Site, mean: bool) -> list:
    (shape,) = c.shapes
    axis = _axis(shape, c.params)
    kept = () if axis is None else tuple(k for k in range(len(shape)) if k != axis)
    upstream = Ref(c.dout, kept)
    count = sp.Symbol(_count(c, axis), real=True)
    return [_loop(shape, Ref(c.dargs[0], _ident(shape)),
                  (lambda u: u / count) if mean else (lambda u: u), [upstream], c.add)]


def sum_adjoint(c: Site, position: int) -> list:
    return _reduce_adjoint(c, mean=False)


def mean_adjoint(c: Site, position: int) -> list:
    return _reduce_adjoint(c, mean=True)


def sum_staged(c: Site, position: int) -> list:
    return [(None, f"expand({c.dout}, {c.args[0]}{_axis_text(c.params)})")]


def mean_staged(c: Site, position: int) -> list:
    return [(None, f"expand({c.dout}, {c.args[0]}{_axis_text(c.params)}, mean=1)")]


# -- expand: the adjoint of sum and mean, as a gate -----------------------------------------


def expand_shape(shapes, params) -> Shape:
    g, like = shapes
    if len(like) == 0:
        raise ValueError("expand needs an array to take the shape of, got a scalar")
    if params.get("mean", 0) not in (0, 1):
        raise ValueError("mean must be 0 (spread g) or 1 (spread g divided by the count)")
    kept = reduce_shape([like], params)
    if tuple(g) != tuple(kept):
        where = "all axes" if params.get("axis") is None else f"axis {params['axis']}"
        raise ValueError(f"g has shape {show(g)}, but {show(like)} summed over {where} "
                         f"has shape {show(kept)}")
    return like


def _expand_axes(c: Site):
    like = c.shapes[1]
    axis = _axis(like, c.params)
    kept = () if axis is None else tuple(k for k in range(len(like)) if k != axis)
    count = sp.Symbol(_count(c, axis, 1), real=True)
    return like, axis, kept, (lambda u: u / count) if c.params.get("mean") else (lambda u: u)


def expand_forward(c: Site) -> list:
    like, _, kept, scale = _expand_axes(c)
    return [_loop(like, Ref(c.out, _ident(like)), scale, [Ref(c.args[0], kept)], False)]


def expand_adjoint(c: Site, position: int) -> list:
    like, axis, kept, scale = _expand_axes(c)
    g = c.dargs[0]
    if axis is None:
        total = f"np.sum({c.dout})" + (f" / {_count(c, axis, 1)}" if c.params.get("mean")
                                       else "")
        return [Code(f"{g} {'+=' if c.add else '='} {total}")]
    loop = _loop(like, Ref(g, kept), scale, [Ref(c.dout, _ident(like))], True)
    return ([] if c.add else [Code(f"{g}[:] = 0.0")]) + [loop]


def expand_staged(c: Site, position: int) -> list:
    reduce = "mean" if c.params.get("mean") else "sum"
    return [(None, f"{reduce}({c.dout}{_axis_text(c.params)})")]


# -- along the last axis: softmax, log_softmax, logsumexp --------------------------------------


def last_axis_shape(shapes, params) -> Shape:
    (a,) = shapes
    if len(a) not in (1, 2):
        raise ValueError(f"needs a vector or a matrix (rows), got shape {show(a)}")
    return a


def logsumexp_shape(shapes, params) -> Shape:
    return last_axis_shape(shapes, params)[:-1]


def _rows(name: str, shape: Shape) -> str:
    """A 2-D view of a vector (one row), so the row-wise helpers serve both."""
    return f"{name}[None, :]" if len(shape) == 1 else name


_LOG1P = ("max-shifted, the row's maximum plus log1p of the others' share: exact with a "
          "dominant entry")  # how the row gates stay accurate (docs/internals.md "Accuracy")


def _row_wise(helper: str, adjoint_note: str):
    """Forward and adjoint of a row-wise gate whose adjoint needs only its output."""

    def forward(c: Site) -> list:
        s = c.shapes[0]
        return [Code(f"{helper}({_rows(c.args[0], s)}, {_rows(c.out, s)})", _LOG1P)]

    def adjoint(c: Site, position: int) -> list:
        s = c.shapes[0]
        return [Code(f"{helper}_backward({_rows(c.out, s)}, {_rows(c.dout, s)}, "
                     f"{_rows(c.dargs[0], s)}, {c.add})", adjoint_note)]

    return forward, adjoint


softmax_forward, softmax_adjoint = _row_wise(
    "softmax", "s * (ds - sum(ds * s)), at an entry above 1/2 as s * (ds * rest - the others' "
    "ds * s), rest their share: exact near 1")
log_softmax_forward, log_softmax_adjoint = _row_wise(
    "log_softmax", "dls - exp(ls) * sum(dls), with 1 + expm1(ls) for exp(ls) near 1: exact there")


def _along_rows(g: str, like: str) -> str:
    """``g`` (one value per row) spread along the last axis of ``like``."""
    return f"expand({g}, {like}, axis=-1)"


def softmax_staged(c: Site, position: int) -> list:
    """``s * (g - sum(g * s))``, exact as the runtime's: at an entry with s > 1/2 (one per row
    at most) ``g - sum(g * s)`` is ``g * rest - part`` (``rest``, ``part``: the other entries'
    ``s`` and ``g * s`` summed without it), which keeps what the plain form rounds away."""
    s, z, g = c.out, c.args[0], c.dout
    return [("top", f"ifpos({s} - 0.5, 1, 0)"),  # 1 where s > 1/2
            ("rest", _along_rows(f"sum({s} * (1 - {{top}}), axis=-1)", z)),
            ("part", _along_rows(f"sum({g} * {s} * (1 - {{top}}), axis=-1)", z)),
            (None, f"(1 - {{top}}) * {s} * ({g} - {_along_rows(f'sum({g} * {s}, axis=-1)', z)})"
                   f" + {{top}} * {s} * ({g} * {{rest}} - {{part}})")]


def log_softmax_staged(c: Site, position: int) -> list:
    """``g - p * G`` (``p = softmax(z)``, ``G`` the row sums of ``g``), exact as the runtime's:
    at an entry with p > 1/2 (one per row at most), ``p = 1 - rest`` (the other entries' share,
    summed without it) makes it ``(g - G) + rest * G``, which keeps the tiny part that
    ``g - p * G`` rounds away ([0, -40, -40] with g on the first entry: 8.5e-18, not 0). The
    pick is ``(1 - top) * a + top * b`` with top 0 or 1, so both forms differentiate as the
    same function."""
    z, g, ls = c.args[0], c.dout, c.out
    return [("top", f"ifpos({ls} + 0.6931471805599453, 1, 0)"),  # 1 where p > 1/2
            ("rowsum", _along_rows(f"sum({g}, axis=-1)", z)),
            ("rest", _along_rows(f"sum(softmax({z}) * (1 - {{top}}), axis=-1)", z)),
            (None, f"(1 - {{top}}) * ({g} - softmax({z}) * {{rowsum}}) + "
                   f"{{top}} * ({g} - {{rowsum}} + {{rest}} * {{rowsum}})")]


def logsumexp_staged(c: Site, position: int) -> list:
    z = c.args[0]
    return [(None, f"softmax({z}) * {_along_rows(c.dout, z)}")]


def logsumexp_forward(c: Site) -> list:
    z, s = c.args[0], c.shapes[0]
    if len(s) == 1:
        return [Code(f"{c.out} = logsumexp_vector({z})", _LOG1P)]
    return [Code(f"logsumexp({z}, {c.out})", _LOG1P)]


def logsumexp_adjoint(c: Site, position: int) -> list:
    z, s = c.args[0], c.shapes[0]
    if len(s) == 1:
        return [_loop(s, Ref(c.dargs[0], (0,)), lambda zi, u: sp.exp(zi - sp.Symbol(c.out)) * u,
                      [Ref(z, (0,)), Ref(c.dout)], c.add, "softmax(z) * dlse")]
    return [Code(f"logsumexp_backward({z}, {c.out}, {c.dout}, {c.dargs[0]}, {c.add})",
                 "softmax(z) * dlse")]


# -- losses with integer labels ------------------------------------------------------------


def labelled_shape(shapes, params) -> Shape:
    z, y = shapes
    if len(z) != 2 or len(y) != 1 or not same_dim(z[0], y[0]):
        raise ValueError(f"needs scores of shape (B, C) and labels of shape (B,), got "
                         f"{show(z)} and {show(y)}")
    return (z[0],)


def softmax_cross_entropy_forward(c: Site) -> list:
    return [Code(f"softmax_cross_entropy({c.args[0]}, {c.args[1]}, {c.out}, {c.saved})",
                 f"logsumexp(z) - z[label] as (z[top] - z[label]) + log1p(the others' share): "
                 f"exact when one entry dominates; keeps {c.saved} = softmax(z)")]


def softmax_cross_entropy_adjoint(c: Site, position: int) -> list:
    y = c.args[1]
    return [Code(f"softmax_cross_entropy_backward({c.saved}, {y}, {c.dout}, {c.dargs[0]}, "
                 f"{c.add})", f"({c.saved} - onehot(y)) * dloss, at the label as minus the other "
                 "probabilities, not p - 1: exact near 1")]


def softmax_cross_entropy_staged(c: Site, position: int) -> list:
    """``(p - onehot(y)) * g``, at the label as minus the other probabilities (summed without
    the label's), not ``p - 1``: exact near 1, as the runtime's adjoint."""
    z, y = c.args
    hot = f"onehot({y}, {z})"
    return [("others", f"softmax({z}) * (1 - {hot})"),  # the probabilities off the label
            (None, f"({{others}} - {hot} * {_along_rows('sum({others}, axis=-1)', z)}) * "
                   f"{_along_rows(c.dout, z)}")]


def hinge_staged(c: Site, position: int) -> list:
    z, y = c.args
    hot = f"onehot({y}, {z})"
    margin = f"{z} - {_along_rows(f'sum({z} * {hot}, axis=-1)', z)} + 1"
    return [("viol", f"ifpos({margin}, 1, 0) * (1 - {hot})"),  # 1 where a margin is violated
            (None, f"({{viol}} - {hot} * {_along_rows('sum({viol}, axis=-1)', z)}) * "
                   f"{_along_rows(c.dout, z)}")]


def onehot_shape(shapes, params) -> Shape:
    y, like = shapes
    if len(like) != 2 or len(y) != 1 or not same_dim(like[0], y[0]):
        raise ValueError(f"needs labels of shape (B,) and an array of shape (B, C), got "
                         f"{show(y)} and {show(like)}")
    return like


def onehot_forward(c: Site) -> list:
    return [Code(f"onehot({c.args[0]}, {c.out})", "1 where the class is the label, else 0")]


def no_adjoint(c: Site, position: int) -> list:
    """A gate none of whose inputs receives a gradient (labels, shapes) is never asked."""
    raise AssertionError("no input of this gate is differentiated")


def hinge_forward(c: Site) -> list:
    return [Code(f"hinge({c.args[0]}, {c.args[1]}, {c.out})",
                 "sum over j != y of max(0, s_j - s_y + 1)")]


def hinge_adjoint(c: Site, position: int) -> list:
    z, y = c.args
    return [Code(f"hinge_backward({z}, {y}, {c.dout}, {c.dargs[0]}, {c.add})",
                 "+d to each violating class, -d to the label")]
