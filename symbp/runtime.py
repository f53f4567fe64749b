"""Numerically stable helpers called by generated code.

Each is a plain Python function (the ``jit=False`` path runs it as is) that Numba compiles
inline when a kernel calls it (``register_jitable``), except ``matmul``, whose compiled form is
a separate function in Numba's on-disk cache, compiled once per dtype per machine. A gate whose
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
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload, register_jitable

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
    "onehot",
    "outer",
    "relu",
    "sigmoid",
    "sigmoid_grad",
    "sigmoid_tail",
    "sign",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "softplus",
    "tanh",
    "tanh_grad",
    "tanh_tail",
]


@register_jitable
def sigmoid(x):
    """1 / (1 + exp(-x)), never overflowing."""
    e = math.exp(-abs(x))  # never overflows; a select, not a branch, so loops vectorize
    r = 1.0 / (1.0 + e)
    return r if x >= 0.0 else e * r


@register_jitable
def sign(x):
    """-1.0, 0.0 or 1.0 as x is negative, zero or positive (NaN stays NaN)."""
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else x * 0.0)


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


SIGMOID_TAIL = 7.0
"""sigmoid_grad(x, s) is s*(1 - s) for x <= this, e/(1 + e)**2 (e = exp(-x)) above, where s
rounds towards 1: s*(1 - s) is within 1e-12 of the truth up to x = 9 (docs/internals.md)."""
TANH_TAIL = 4.0
"""tanh_grad(x, t) is 1 - t*t for |x| <= this, 4e/(1 + e)**2 (e = exp(-2|x|)) above (1 - t*t
is within 1e-12 up to |x| = 5)."""


def _is_float32(t) -> bool:
    return isinstance(t, types.Float) and t.bitwidth == 32


@register_jitable
def _sigmoid_grad(x, s):
    if not x <= SIGMOID_TAIL:  # NaN too
        e = math.exp(-x)
        return e / ((1.0 + e) * (1.0 + e))
    return s * (1.0 - s)


@register_jitable
def _tanh_grad(x, t):
    if not abs(x) <= TANH_TAIL:  # NaN too
        h = 2.0 * math.exp(-abs(x))
        n = h * h  # 4 exp(-2|x|) rounded once: normal down to 2.2e-308, where tanh' is
        e = 0.25 * n
        return n / ((1.0 + e) * (1.0 + e))
    return 1.0 - t * t


def sigmoid_grad(x, s):
    """sigmoid'(x) given s = sigmoid(x): s*(1 - s), and in the upper tail (x > SIGMOID_TAIL,
    where s rounds towards 1 and 1 - s loses its digits) e/(1 + e)**2 with e = exp(-x): within
    a few ulp of the truth at every x in float64. A NaN x gives NaN. Compiled for a float32 s
    it is s*(1 - s) alone, as before (no exponential; float32 holds 7 digits anyway)."""
    return _sigmoid_grad(x, s)


def sigmoid_tail(x):
    """Whether :func:`sigmoid_grad` takes its tail branch at x (always False compiled for
    float32). A loop computes a row with ``s*(1 - s)``, vectorized, unless an entry of the row
    needs the tail (the generated source shows the split)."""
    return not x <= SIGMOID_TAIL


def tanh_grad(x, t):
    """tanh'(x) given t = tanh(x): 1 - t*t, and in the tails (|x| > TANH_TAIL, where |t| rounds
    towards 1) 4e/(1 + e)**2 with e = exp(-2|x|): within a few ulp at every x in float64. A NaN
    x gives NaN. Compiled for a float32 t it is 1 - t*t alone."""
    return _tanh_grad(x, t)


def tanh_tail(x):
    """Whether :func:`tanh_grad` takes its tail branch at x (always False for float32)."""
    return not abs(x) <= TANH_TAIL


@overload(sigmoid_grad, jit_options={"error_model": "numpy"})
def _ov_sigmoid_grad(x, s):
    if _is_float32(s):
        return lambda x, s: s * (1.0 - s)
    return lambda x, s: _sigmoid_grad(x, s)


@overload(sigmoid_tail, jit_options={"error_model": "numpy"})
def _ov_sigmoid_tail(x):
    if _is_float32(x):
        return lambda x: False
    return lambda x: not x <= SIGMOID_TAIL


@overload(tanh_grad, jit_options={"error_model": "numpy"})
def _ov_tanh_grad(x, t):
    if _is_float32(t):
        return lambda x, t: 1.0 - t * t
    return lambda x, t: _tanh_grad(x, t)


@overload(tanh_tail, jit_options={"error_model": "numpy"})
def _ov_tanh_tail(x):
    if _is_float32(x):
        return lambda x: False
    return lambda x: not abs(x) <= TANH_TAIL


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

# BLAS comes from SciPy (as for Numba's np.dot); without SciPy every product runs as loops (and
# no BLAS call may even appear in the code Numba compiles).
BLAS = importlib.util.find_spec("scipy") is not None
_SMALL_MATMUL = 2048  # m*k*n below which loops beat a BLAS call (docs/benchmarks.md)


@register_jitable
def _matmul_loops(a, b, out, add, ta, tb):
    """out (+)= op(a) @ op(b) by loops for C-contiguous a, b, out, op(x) = x.T when its flag is
    set, else x. Few loops for the four cases (each is LLVM work again in every kernel that
    calls this), reading op(a) and op(b) through strided views where it costs little."""
    m, n = out.shape
    k = a.shape[0] if ta else a.shape[1]
    av = a.T if ta else a  # one type (layout A) for both cases
    if n < 8:  # few columns: one dot product per output
        bv = b.T if tb else b
        for i in range(m):
            for j in range(n):
                total = 0.0
                for p in range(k):
                    total += av[i, p] * bv[p, j]
                out[i, j] = out[i, j] + total if add else total
        return
    if not add:
        out[:] = 0.0
    for i in range(m):  # i-p-j order: the inner loop runs along rows of out
        for p in range(k):
            a_ip = av[i, p]
            if tb:
                for j in range(n):
                    out[i, j] += a_ip * b[j, p]
            else:  # along rows of b too
                for j in range(n):
                    out[i, j] += a_ip * b[p, j]


@intrinsic
def _xxgemm(typingctx, transa, transb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """Column-major BLAS gemm, c = op(a) @ op(b) + beta * c (op: transposed when its flag is
    set), through Numba's helper library (``numba_xxgemm``: SciPy's sgemm/dgemm, looked up by
    name when the code is loaded, so cached code stays valid in another process). Returns the
    wrapper's status, nonzero when SciPy's BLAS cannot be found."""
    from numba.np.linalg import ensure_blas, get_blas_kind

    ensure_blas()  # SciPy importable, its BLAS integer width the one Numba was built for
    if not all(isinstance(x, types.Array) and x.layout == "C" and x.dtype == c.dtype
               for x in (a, b, c)):
        raise TypingError(f"_xxgemm needs C-contiguous arrays of one dtype, got {a}, {b}, {c}")
    kind = get_blas_kind(c.dtype, "matmul")
    sig = types.int32(*[types.unliteral(t) for t in (transa, transb, m, n, k, a, lda, b, ldb,
                                                      beta, c, ldc)])

    def codegen(context, builder, sig, args):
        char, intp = ir.IntType(8), context.get_value_type(types.intp)
        voidptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, voidptr,
                                                voidptr, intp, voidptr, intp, voidptr, voidptr,
                                                intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        ta, tb, m_, n_, k_, a_, lda_, b_, ldb_, beta_, c_, ldc_ = args
        tys = sig.args

        def flag(value, ty):
            bit = context.cast(builder, value, ty, types.boolean)
            return builder.select(bit, ir.Constant(char, ord("t")), ir.Constant(char, ord("n")))

        def size(value, ty):
            return context.cast(builder, value, ty, types.intp)

        def data(value, ty):
            return builder.bitcast(context.make_array(ty)(context, builder, value).data, voidptr)

        dtype = tys[10].dtype
        alpha = cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0))
        scale = cgutils.alloca_once_value(builder, context.cast(builder, beta_, tys[9], dtype))
        return builder.call(fn, (ir.Constant(char, ord(kind)), flag(ta, tys[0]), flag(tb, tys[1]),
                                 size(m_, tys[2]), size(n_, tys[3]), size(k_, tys[4]),
                                 builder.bitcast(alpha, voidptr), data(a_, tys[5]),
                                 size(lda_, tys[6]), data(b_, tys[7]), size(ldb_, tys[8]),
                                 builder.bitcast(scale, voidptr), data(c_, tys[10]),
                                 size(ldc_, tys[11])))

    return sig, codegen


def matmul(a, b, out, add, ta, tb):
    """out (+)= op(a) @ op(b) for 2-D a, b, op(x) = x.T when its flag (``ta``, ``tb``) is set:
    generated code passes arrays as stored, never transposed views. Python runs NumPy; compiled
    code calls :func:`_matmul_blas` (with SciPy) or the loops, with C-contiguous arrays."""
    a = a.T if ta else a
    b = b.T if tb else b
    if add:
        out += a @ b
    else:
        np.matmul(a, b, out=out)


@numba.njit(nogil=True)  # symbp.jit gives it an on-disk cache in symbp's checked folder
def _matmul_blas(a, b, out, add, ta, tb):
    """:func:`matmul` of C-contiguous arrays: loops when small, else BLAS gemm. One compiled
    version per dtype, kept in Numba's on-disk cache and shared by every kernel."""
    m, n = out.shape
    k = a.shape[0] if ta else a.shape[1]
    if m * k * n < _SMALL_MATMUL:
        _matmul_loops(a, b, out, add, ta, tb)
        return
    # BLAS is column-major: a C array there is its own transpose, and row-major
    # out = op(a) @ op(b) is column-major out.T = op(b).T @ op(a).T.
    status = _xxgemm(tb, ta, n, m, k, b, b.shape[1], a, a.shape[1], 1.0 if add else 0.0, out, n)
    if status != 0:
        raise RuntimeError("symbp: the BLAS call of matmul failed (SciPy's BLAS not found)")


def _stored(x, t):
    """(x C-contiguous, whether op transposes it); compiled code only (see the overload)."""
    return x, t


@overload(_stored)
def _stored_impl(x, t):
    if x.layout == "C":
        return lambda x, t: (x, t)
    if x.layout == "F":  # a transposed view of a C array: that array, the other way round
        return lambda x, t: (x.T, not t)
    return lambda x, t: (np.ascontiguousarray(x), t)  # strided: a copy


@overload(matmul, jit_options={"error_model": "numpy"})
def _matmul(a, b, out, add, ta, tb):
    if out.layout != "C":  # not generated code's: into a C array, then copied
        def into_copy(a, b, out, add, ta, tb):
            result = np.empty(out.shape, out.dtype)
            if add:
                result[:] = out
            matmul(a, b, result, add, ta, tb)
            out[:] = result
        return into_copy
    # decided when a kernel is compiled; the module's RUNTIME_HASH records it
    run = _matmul_blas if BLAS else _matmul_loops

    def impl(a, b, out, add, ta, tb):
        a, ta = _stored(a, ta)
        b, tb = _stored(b, tb)
        run(a, b, out, add, ta, tb)
    return impl


@register_jitable
def matvec(a, x, out, add, ta):
    """out (+)= op(a) @ x for 2-D a and 1-D x, op(a) = a.T when ``ta`` is set."""
    if ta:
        if not add:
            out[:] = 0.0
        for p in range(a.shape[0]):  # along rows of a
            x_p = x[p]
            for i in range(a.shape[1]):
                out[i] += a[p, i] * x_p
        return
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
def _row_top(z, i):
    """The index of the first largest entry of row i (NaN entries never win)."""
    k = 0
    for j in range(1, z.shape[1]):
        if z[i, j] > z[i, k]:
            k = j
    return k


@register_jitable
def _row_rest(z, i, k):
    """sum(exp(z[i, j] - z[i, k])) over j != k: logsumexp(z[i]) = z[i, k] + log1p(rest), exact
    also when one entry dominates ([0, -40, -40]: 8.5e-18, where log(1 + rest) is 0)."""
    rest = 0.0
    for j in range(z.shape[1]):
        if j != k:
            rest += math.exp(z[i, j] - z[i, k])
    return rest


@register_jitable
def _row_logsumexp(z, i):
    """log(sum(exp(z[i, :]))), shifted by the row's maximum: finite for logits of 1e3, and
    log1p of the other entries' share: exact when one entry dominates."""
    k = _row_top(z, i)
    return z[i, k] + math.log1p(_row_rest(z, i, k))


@register_jitable
def softmax(z, out):
    """Row-wise softmax of 2-D z along the last axis."""
    for i in range(z.shape[0]):
        lse = _row_logsumexp(z, i)
        for j in range(z.shape[1]):
            out[i, j] = math.exp(z[i, j] - lse)


@register_jitable
def softmax_backward(s, ds, out, add):
    """out (+)= s * (ds - sum(ds * s, axis=-1, keepdims=True)): the softmax adjoint. At an
    entry t with s > 1/2 (one per row at most), ``ds_t - sum(ds * s)`` is
    ``ds_t * rest - sum over k != t of ds_k * s_k`` (rest: the other entries' share, summed
    without s_t), which keeps the tiny part the plain form rounds away (s_t (1 - s_t) at
    [0, -40, -40] is 8.5e-18, not 0)."""
    for i in range(s.shape[0]):
        inner = 0.0
        top = -1
        for j in range(s.shape[1]):
            inner += ds[i, j] * s[i, j]
            if s[i, j] > 0.5:
                top = j
        rest = 0.0
        part = 0.0
        for j in range(s.shape[1]):
            if j != top:
                g = s[i, j] * (ds[i, j] - inner)
                out[i, j] = out[i, j] + g if add else g
                rest += s[i, j]
                part += ds[i, j] * s[i, j]
        if top >= 0:
            g = s[i, top] * (ds[i, top] * rest - part)
            out[i, top] = out[i, top] + g if add else g


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
        k = _row_top(z, i)
        share = math.log1p(_row_rest(z, i, k))
        for j in range(z.shape[1]):
            out[i, j] = (z[i, j] - z[i, k]) - share  # exact for the dominant entry too


@register_jitable
def log_softmax_backward(ls, dls, out, add):
    """out (+)= dls - exp(ls) * sum(dls, axis=-1, keepdims=True)."""
    for i in range(ls.shape[0]):
        total = 0.0
        for j in range(ls.shape[1]):
            total += dls[i, j]
        for j in range(ls.shape[1]):  # near 1, exp(ls) = 1 + expm1(ls) keeps the tiny part
            if ls[i, j] < -0.6931471805599453:
                g = dls[i, j] - math.exp(ls[i, j]) * total
            else:
                g = (dls[i, j] - total) - math.expm1(ls[i, j]) * total
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
        k = _row_top(z, i)
        rest = 0.0
        for j in range(z.shape[1]):
            e = math.exp(z[i, j] - z[i, k])
            probs[i, j] = e
            if j != k:
                rest += e
        scale = 1.0 / (1.0 + rest)
        for j in range(z.shape[1]):
            probs[i, j] *= scale
        # logsumexp - z[label] = (z[k] - z[label]) + log1p(rest): exact when label k dominates
        out[i] = (z[i, k] - z[i, labels[i]]) + math.log1p(rest)


@register_jitable
def softmax_cross_entropy_backward(probs, labels, dloss, out, add):
    """out (+)= (probs - onehot(labels)) * dloss[:, None], probs = softmax(z) from the forward
    pass."""
    for i in range(probs.shape[0]):
        others = 0.0  # probs[label] - 1 = -(the other classes' probabilities): exact near 1
        for j in range(probs.shape[1]):
            if j != labels[i]:
                others += probs[i, j]
        for j in range(probs.shape[1]):
            g = (-others if j == labels[i] else probs[i, j]) * dloss[i]
            out[i, j] = out[i, j] + g if add else g


@register_jitable
def onehot(labels, out):
    """out[i, j] = 1 where j is labels[i], else 0 (softmax cross-entropy's target)."""
    for i in range(out.shape[0]):
        _check_label(labels[i], out.shape[1])
        for j in range(out.shape[1]):
            out[i, j] = 0.0
        out[i, labels[i]] = 1.0


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
