"""Numerically stable helpers called by generated code.

Each is a plain Python function (the ``jit=False`` path runs it as is) that Numba compiles
inline when a kernel calls it (``register_jitable``). A gate whose naive formula overflows for
large inputs (``1/(1 + exp(-x))`` at x = -800) is emitted as a call to one of these instead.
Kinks follow the gate table's convention: at x = 0 the ``x <= 0`` branch is taken, and NaN
propagates.
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

__all__ = ["elu", "leaky_relu", "relu", "sigmoid", "softplus"]


@register_jitable
def sigmoid(x):
    """1 / (1 + exp(-x)), never overflowing."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@register_jitable
def softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), never overflowing."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@register_jitable
def relu(x):
    """max(0, x); relu(0) = 0."""
    return max(0.0, x)


@register_jitable
def leaky_relu(x, slope):
    """x for x > 0, slope * x otherwise."""
    return slope * x if x <= 0.0 else x


@register_jitable
def elu(x, alpha):
    """x for x > 0, alpha * (exp(x) - 1) otherwise (computed with expm1)."""
    return alpha * math.expm1(x) if x <= 0.0 else x
