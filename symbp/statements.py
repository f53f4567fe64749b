"""The statements the reverse sweep produces and the emitter prints (data, not strings).

Scalars are plain locals (:class:`Assign`, :class:`Accumulate`). Arrays live in buffers: an
elementwise computation is a :class:`Loop` whose body reads and writes array elements through
index maps (:class:`Ref`), and a matrix operation is a :class:`Code` line calling a helper of
:mod:`symbp.runtime` that writes into its ``out`` buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp


@dataclass(frozen=True)
class Assign:
    """``target = value`` for a scalar."""

    target: str
    value: sp.Expr
    comment: str = ""
    note: str = field(default="", repr=False)  # how it stays accurate (the gate table's note)


@dataclass(frozen=True)
class Accumulate:
    """``target = local * upstream`` (``first``) or ``target += local * upstream``, scalars."""

    target: str
    local: sp.Expr
    upstream: str | None  # None: the output's gradient, 1
    first: bool
    comment: str = ""
    note: str = field(default="", repr=False)  # how the local derivative stays accurate (dnote)


@dataclass(frozen=True)
class Ref:
    """An array read or written in a loop: per array axis the loop axis it follows, or None
    for a broadcast axis of length 1. A scalar has no axes."""

    name: str
    axes: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class LoopAssign:
    """``target[idx] = value`` or ``target[idx] += value`` inside a loop."""

    target: Ref
    value: sp.Expr  # over the symbols of ``refs``; times ``upstream`` when that is given
    refs: tuple[tuple[sp.Symbol, Ref], ...]
    add: bool
    comment: str = ""
    upstream: Ref | None = None
    note: str = field(default="", repr=False)


@dataclass(frozen=True)
class Loop:
    """A loop nest over ``shape`` (dimension names or ints) running ``body`` per element."""

    shape: tuple
    body: tuple[LoopAssign, ...]


@dataclass(frozen=True)
class Code:
    """One line of code (a helper call, an ``np.sum``, a zero fill)."""

    text: str
    comment: str = ""


Statement = Assign | Accumulate | Loop | Code


@dataclass(frozen=True)
class Buffer:
    """An array the kernel writes: its name and shape."""

    name: str
    shape: tuple


@dataclass(frozen=True)
class Program:
    """Everything the emitter prints: parameters, both passes, returned names, buffers."""

    params: tuple[str, ...]
    forward: tuple[Statement, ...]
    backward: tuple[Statement, ...]
    returns: tuple[str, ...]
    dims: tuple[tuple[str, str], ...] = ()  # (dimension variable, code reading it from an input)
    grad_buffers: tuple[Buffer, ...] = ()  # array gradients returned (wrt order)
    work_buffers: tuple[Buffer, ...] = ()  # array intermediates and their gradients
    dtype_source: str | None = None  # an input whose dtype the buffers take
