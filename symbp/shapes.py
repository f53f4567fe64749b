"""Shapes: tuples of ints and dimension names (``("B", 64)``); broadcasting; index maps.

A loop over an output shape visits every element once; an operand of another shape is read
through an index map, one entry per operand axis: the loop axis it follows, or None for an
axis of length 1 (always index 0). Broadcasting follows NumPy: shapes align on the right.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .errors import ShapeError
from .names import check, short

Dim = int | str
Shape = tuple[Dim, ...]


@dataclass(frozen=True)
class Ints:
    """Marks an integer input (class labels) in ``shapes``: ``symbp.ints(("B",))``."""

    shape: Shape


def ints(shape) -> Ints:
    """Declare an integer-valued input of ``shape`` (labels; never differentiated)."""
    return Ints(normalize(shape))


MAX_DIM = 2 ** 62
"""Largest fixed dimension (an int64 index must reach it)."""


def checked_shapes(shapes: dict | None) -> dict:
    """Validated ``shapes=`` of compile, derivative and check: names (the identifier check)
    to normalized shapes (or Ints)."""
    from .errors import SymbpError

    if shapes is None:
        return {}
    if not isinstance(shapes, dict):
        raise SymbpError(f"shapes must be a dict of name -> shape, got {type(shapes).__name__}")
    out = {}
    for name, shape in shapes.items():
        check(name, "shapes")
        try:
            out[name] = ints(shape.shape) if isinstance(shape, Ints) else normalize(shape)
        except ValueError as exc:
            raise SymbpError(f"shapes[{name!r}]: {exc}") from None
    return out


def normalize(shape) -> Shape:
    """A user's shape as a tuple of positive ints and dimension names.

    A dimension name goes through the identifier check of :mod:`symbp.names` (so ``"\uff22"``,
    which Python would read as ``B``, is refused). Raises :class:`~symbp.errors.ShapeError`
    (a SymbpError and a ValueError).
    """
    if isinstance(shape, (int, str)):
        shape = (shape,)
    try:
        dims = tuple(itertools.islice(shape, 3))  # never more than 2: no hang on an iterator
    except TypeError:
        raise ShapeError(f"a shape is a tuple of ints and names, got {short(shape)}") from None
    if len(dims) > 2:
        raise ShapeError(f"arrays of up to 2 dimensions are supported, got {short(shape)}")
    for d in dims:
        if isinstance(d, str):
            check(d, f"dimension {short(d)} in {short(shape)}", ShapeError)
        elif isinstance(d, bool) or not isinstance(d, int) or not 0 < d <= MAX_DIM:
            raise ShapeError(f"a dimension is a positive int (at most 2**62) or a name like "
                             f"'B', got {short(d)} in {short(shape)}")
    return dims


def show(shape: Shape) -> str:
    """``(B, 64)``; ``()`` for a scalar."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast(shapes: list[Shape]) -> tuple[Shape, list[tuple[int | None, ...]]]:
    """The broadcast shape and, per operand, its index map; ValueError if they do not fit."""
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise ValueError(f"shapes {' and '.join(show(s) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    maps = []
    for s in shapes:
        offset = rank - len(s)
        maps.append(tuple(None if d == 1 and out[offset + k] != 1 else offset + k
                          for k, d in enumerate(s)))
    return tuple(out), maps


def identity_map(shape: Shape) -> tuple[int, ...]:
    return tuple(range(len(shape)))
