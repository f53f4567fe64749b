"""Numerically stable helpers called by generated code.

Each is a plain Python function (the ``jit=False`` path runs it as is) that Numba compiles
inline when a kernel calls it (``register_jitable``), except ``matmul``, whose compiled form is
a separate function in Numba's on-disk cache (its BLAS call is slow to compile). A gate whose
naive formula overflows for large inputs (``1/(1 + exp(-x))`` at x = -800) is emitted as a call
to one of these instead.
Kinks follow the gate table's convention: at x = 0 the ``x <= 0`` branch is taken, and NaN
propagates.
"""

from __future__ import annotations

import importlib.util
import math

import numba
import numpy as np
from numba import types
from numba.extending import overload, register_jitable

__all__ = [
    "dot",
    "elu",
    "hinge",
    "hinge_backward",
    "leaky_relu",
    "log_softmax",
    "log_softmax_backward",
    "logsumexp",
    "logsumexp_backward",
    "logsumexp_vector",
    "matmul",
    "matvec",
    "maximum",
    "minimum",
    "outer",
    "relu",
    "sigmoid",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "softplus",
    "tanh",
]


@register_jitable
def sigmoid(x):
    """1 / (1 + exp(-x)), never overflowing."""
    e = math.exp(-abs(x))  # never overflows; a select, not a branch, so loops vectorize
    r = 1.0 / (1.0 + e)
    return r if x >= 0.0 else e * r


@register_jitable
def softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), never overflowing."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def tanh(x):
    """Hyperbolic tangent: ``math.tanh`` (exact in float64). Compiled for a float32 argument it
    is the rational approximation XLA and Eigen use (within 6 float32 ulp, 3.6e-7 absolute),
    which LLVM vectorizes: libm's tanhf is one call per element (11 ns here against 0.4 ns)."""
    return math.tanh(x)


@overload(tanh, jit_options={"error_model": "numpy"})
def _tanh(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return _tanh_float32
    return lambda x: math.tanh(x)


_TANH_CLAMP = np.float32(7.90531110763549805)  # tanh rounds to +-1 in float32 beyond this
_TANH_P = tuple(np.float32(c) for c in (  # odd numerator, highest power first
    -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
    1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03))
_TANH_Q = tuple(np.float32(c) for c in (  # even denominator
    1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))


def _tanh_float32(x):
    x = _TANH_CLAMP if x > _TANH_CLAMP else (-_TANH_CLAMP if x < -_TANH_CLAMP else x)  # NaN stays
    x2 = x * x
    p = _TANH_P[0]
    for c in _TANH_P[1:]:
        p = p * x2 + c
    q = _TANH_Q[0]
    for c in _TANH_Q[1:]:
        q = q * x2 + c
    return x * p / q


@register_jitable
def relu(x):
    """max(0, x); relu(0) = 0; NaN stays NaN (``max(0.0, x)`` would return 0.0)."""
    return 0.0 if x <= 0.0 else x


@register_jitable
def maximum(a, b):
    """The larger of a and b (a on a tie); NaN if either is NaN, unlike Python's max."""
    return a if a >= b or a != a else b


@register_jitable
def minimum(a, b):
    """The smaller of a and b (a on a tie); NaN if either is NaN."""
    return a if a <= b or a != a else b


@register_jitable
def leaky_relu(x, slope):
    """x for x > 0, slope * x otherwise."""
    return slope * x if x <= 0.0 else x


@register_jitable
def elu(x, alpha):
    """x for x > 0, alpha * (exp(x) - 1) otherwise (computed with expm1)."""
    return alpha * math.expm1(x) if x <= 0.0 else x


# ---- array helpers: each writes into ``out`` (no allocation); ``add`` accumulates instead ----

# Numba's np.dot calls BLAS through SciPy; without SciPy every product runs as loops (and
# np.dot must not even appear in the code Numba types).
BLAS = importlib.util.find_spec("scipy") is not None
_SMALL_MATMUL = 2048  # m*k*n below which loops beat a BLAS call (docs/benchmarks.md)


@register_jitable
def _matmul_loops(a, b, out, add):
    m, k = a.shape
    n = b.shape[1]
    if n < 8:  # few columns: one dot product per output
        for i in range(m):
            for j in range(n):
                total = 0.0
                for p in range(k):
                    total += a[i, p] * b[p, j]
                out[i, j] = out[i, j] + total if add else total
        return
    if not add:
        out[:] = 0.0
    for i in range(m):  # i-p-j order: the inner loop runs along rows of b and out
        for p in range(k):
            a_ip = a[i, p]
            for j in range(n):
                out[i, j] += a_ip * b[p, j]


def matmul(a, b, out, add):
    """out (+)= a @ b for 2-D a, b (transposed views welcome). Python runs NumPy; compiled code
    calls :func:`_matmul_blas` (with SciPy) or the loops."""
    if add:
        out += a @ b
    else:
        np.matmul(a, b, out=out)


@numba.njit(nogil=True)  # symbp.jit gives it an on-disk cache in symbp's checked folder
def _matmul_blas(a, b, out, add):
    """Loops when small, else BLAS. Compiled once per dtype and layouts and kept in Numba's
    on-disk cache, so kernels share it: np.dot takes 1.5-2 s to compile per layout."""
    if a.shape[0] * a.shape[1] * b.shape[1] < _SMALL_MATMUL:
        _matmul_loops(a, b, out, add)
    elif add:
        out += np.dot(a, b)
    else:
        np.dot(a, b, out)


@overload(matmul, jit_options={"error_model": "numpy"})
def _matmul(a, b, out, add):
    if BLAS:  # decided when a kernel is compiled; the module's RUNTIME_HASH records it
        return lambda a, b, out, add: _matmul_blas(a, b, out, add)
    return lambda a, b, out, add: _matmul_loops(a, b, out, add)


@register_jitable
def matvec(a, x, out, add):
    """out (+)= a @ x for 2-D a and 1-D x."""
    m, k = a.shape
    for i in range(m):
        s = out[i] if add else 0.0
        for p in range(k):
            s += a[i, p] * x[p]
        out[i] = s


@register_jitable
def outer(x, y, out, add):
    """out (+)= outer(x, y) for 1-D x, y."""
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            out[i, j] = out[i, j] + x[i] * y[j] if add else x[i] * y[j]


@register_jitable
def _row_logsumexp(z, i):
    """log(sum(exp(z[i, :]))), shifted by the row's maximum: finite for logits of 1e3."""
    top = z[i, 0]
    for j in range(1, z.shape[1]):
        top = max(top, z[i, j])
    total = 0.0
    for j in range(z.shape[1]):
        total += math.exp(z[i, j] - top)
    return top + math.log(total)


@register_jitable
def softmax(z, out):
    """Row-wise softmax of 2-D z along the last axis."""
    for i in range(z.shape[0]):
        lse = _row_logsumexp(z, i)
        for j in range(z.shape[1]):
            out[i, j] = math.exp(z[i, j] - lse)


@register_jitable
def softmax_backward(s, ds, out, add):
    """out (+)= s * (ds - sum(ds * s, axis=-1, keepdims=True)): the softmax adjoint."""
    for i in range(s.shape[0]):
        inner = 0.0
        for j in range(s.shape[1]):
            inner += ds[i, j] * s[i, j]
        for j in range(s.shape[1]):
            g = s[i, j] * (ds[i, j] - inner)
            out[i, j] = out[i, j] + g if add else g


@register_jitable
def logsumexp(z, out):
    """out[i] = log(sum(exp(z[i, :])))."""
    for i in range(z.shape[0]):
        out[i] = _row_logsumexp(z, i)


@register_jitable
def logsumexp_vector(z):
    """log(sum(exp(z))) of a vector."""
    return _row_logsumexp(z[None, :], 0)


@register_jitable
def logsumexp_backward(z, lse, dlse, out, add):
    """out (+)= exp(z - lse[:, None]) * dlse[:, None]: the logsumexp adjoint."""
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            g = math.exp(z[i, j] - lse[i]) * dlse[i]
            out[i, j] = out[i, j] + g if add else g


@register_jitable
def log_softmax(z, out):
    """out = z - logsumexp(z) row-wise."""
    for i in range(z.shape[0]):
        lse = _row_logsumexp(z, i)
        for j in range(z.shape[1]):
            out[i, j] = z[i, j] - lse


@register_jitable
def log_softmax_backward(ls, dls, out, add):
    """out (+)= dls - exp(ls) * sum(dls, axis=-1, keepdims=True)."""
    for i in range(ls.shape[0]):
        total = 0.0
        for j in range(ls.shape[1]):
            total += dls[i, j]
        for j in range(ls.shape[1]):
            g = dls[i, j] - math.exp(ls[i, j]) * total
            out[i, j] = out[i, j] + g if add else g


@register_jitable
def _check_label(label, classes):
    if label < 0 or label >= classes:
        raise ValueError("label out of range")


@register_jitable
def softmax_cross_entropy(z, labels, out, probs):
    """out[i] = logsumexp(z[i]) - z[i, labels[i]] (labels are class indices); keeps
    probs = softmax(z), so the backward pass needs no exponentials of its own."""
    for i in range(z.shape[0]):
        _check_label(labels[i], z.shape[1])
        top = z[i, 0]
        for j in range(1, z.shape[1]):
            top = max(top, z[i, j])
        total = 0.0
        for j in range(z.shape[1]):
            e = math.exp(z[i, j] - top)
            probs[i, j] = e
            total += e
        scale = 1.0 / total
        for j in range(z.shape[1]):
            probs[i, j] *= scale
        out[i] = top + math.log(total) - z[i, labels[i]]


@register_jitable
def softmax_cross_entropy_backward(probs, labels, dloss, out, add):
    """out (+)= (probs - onehot(labels)) * dloss[:, None], probs = softmax(z) from the forward
    pass."""
    for i in range(probs.shape[0]):
        for j in range(probs.shape[1]):
            g = probs[i, j]
            if j == labels[i]:
                g -= 1.0
            g *= dloss[i]
            out[i, j] = out[i, j] + g if add else g


@register_jitable
def hinge(scores, labels, out):
    """Multiclass hinge per row: sum over j != y of max(0, s_j - s_y + 1)."""
    for i in range(scores.shape[0]):
        _check_label(labels[i], scores.shape[1])
        correct = scores[i, labels[i]]
        total = 0.0
        for j in range(scores.shape[1]):
            margin = scores[i, j] - correct + 1.0
            if j != labels[i] and not margin <= 0.0:  # NaN counts, as it must
                total += margin
        out[i] = total


@register_jitable
def hinge_backward(scores, labels, dloss, out, add):
    """Each violated margin sends +dloss to its class and -dloss to the labelled one."""
    for i in range(scores.shape[0]):
        if not add:
            for j in range(scores.shape[1]):
                out[i, j] = 0.0
        y = labels[i]
        for j in range(scores.shape[1]):
            if j != y and scores[i, j] - scores[i, y] + 1.0 > 0.0:
                out[i, j] += dloss[i]
                out[i, y] -= dloss[i]


@register_jitable
def dot(x, y):
    """Inner product of two vectors (a loop: no BLAS needed)."""
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * y[i]
    return total
