"""Helpers of the compiled training loop: batch gathering, checks, optimizer steps.

Like :mod:`symbp.runtime` they are plain Python functions that Numba compiles inline into the
generated epoch function (``register_jitable``). None of them allocates: the loop runs a whole
epoch over preallocated buffers.
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

SGD, ADAM, NONE = 0, 1, 2
"""Solver codes passed to the generated epoch function. ``NONE`` takes no step: with one
batch of every row, ``run`` leaves the full-batch gradient in ``grad`` and returns the loss
(the value and gradient that lbfgs asks for), from the one compiled entry point."""


@register_jitable
def gather_weights(source, order, start, out):
    """``out[r] = source[order[start + r]] / s`` for every element of ``out``, where ``s`` is
    the sum of the gathered weights (scikit-learn's ``sw_sum`` of the batch); returns ``s``
    (0.0, and ``out`` all zeros, when every gathered weight is 0)."""
    s = 0.0
    for r in range(out.shape[0]):
        out[r] = source[order[start + r]]
        s += out[r]
    scale = 1.0 / s if s > 0.0 else 0.0
    for r in range(out.shape[0]):
        out[r] *= scale
    return s


@register_jitable
def gather_rows(source, order, start, out):
    """``out[r] = source[order[start + r]]`` for every row of ``out`` (a matrix)."""
    for r in range(out.shape[0]):
        k = order[start + r]
        for c in range(out.shape[1]):
            out[r, c] = source[k, c]


@register_jitable
def gather(source, order, start, out):
    """``out[r] = source[order[start + r]]`` for a vector (labels)."""
    for r in range(out.shape[0]):
        out[r] = source[order[start + r]]


@register_jitable
def all_finite(a):
    """True when no element is NaN or infinite (``x - x`` is 0 exactly for finite x; an
    integer OR over the elements vectorizes where a float sum would not)."""
    flat = a.reshape(a.size)
    bad = 0
    for i in range(flat.shape[0]):
        bad |= (flat[i] - flat[i]) != 0.0
    return bad == 0


@register_jitable
def count_correct_labels(scores, labels):
    """How many rows have their highest score at the label."""
    correct = 0
    for r in range(scores.shape[0]):
        best = 0
        for c in range(1, scores.shape[1]):
            if scores[r, c] > scores[r, best]:
                best = c
        correct += best == labels[r]
    return correct


@register_jitable
def count_correct_targets(scores, targets):
    """Rows classified right against 0/1 target rows: one output column (positive when the
    score is above 0) or one-hot rows (highest score at the 1)."""
    correct = 0
    for r in range(scores.shape[0]):
        if scores.shape[1] == 1:
            correct += (scores[r, 0] > 0.0) == (targets[r, 0] > 0.5)
            continue
        best, hot = 0, 0
        for c in range(1, scores.shape[1]):
            if scores[r, c] > scores[r, best]:
                best = c
            if targets[r, c] > targets[r, hot]:
                hot = c
        correct += best == hot
    return correct


@register_jitable
def optimizer_step(param, grad, first, second, out, solver, rate, momentum, nesterov, beta_1,
                   beta_2, epsilon, limit):
    """One update of ``param`` written into ``out``, as scikit-learn's optimizers do it;
    returns True when every updated weight is finite.

    ``out`` is another buffer of the same shape (the epoch swaps the two after a step that
    succeeded, so a step that overflows leaves ``param`` as it was: the last finite weights) or
    ``param`` itself for an update in place. The finite check rides in the update's own loop
    (no extra pass), and it also catches a NaN or infinite gradient: any such element makes its
    updated weight non-finite. ``limit`` is the largest finite value of ``out``'s dtype: a new
    value above it in magnitude (or NaN) fails the check, as it would become infinite when
    stored in float32 (comparing before the store, not reading it back, keeps the loop
    vectorized; a value within half an ulp above ``limit``, which rounds down to it, is counted
    as an overflow too). ``first``/``second`` (the optimizer's state) are updated in place
    either way.

    SGD: ``first`` is the velocity, ``v = momentum*v - rate*g``, then ``param += v`` or, with
    Nesterov's momentum, ``param += momentum*v - rate*g``. Adam: ``first``/``second`` are the
    moment estimates and ``rate`` already carries the bias correction. ``NONE``: ``out`` gets
    ``param`` unchanged (pass ``param`` itself: nothing is written) and only the gradient is
    checked; ``first``/``second`` are not touched (they may be empty).
    """
    p = param.reshape(param.size)
    g = grad.reshape(grad.size)
    m = first.reshape(first.size)
    o = out.reshape(out.size)
    bad = 0
    if solver == NONE:
        for i in range(p.shape[0]):
            o[i] = p[i]
            bad |= not abs(g[i]) <= limit
    elif solver == SGD:
        if momentum == 0.0:
            for i in range(p.shape[0]):
                new = p[i] - rate * g[i]
                o[i] = new
                bad |= not abs(new) <= limit  # also NaN
        else:
            for i in range(p.shape[0]):
                m[i] = momentum * m[i] - rate * g[i]
                new = p[i] + (momentum * m[i] - rate * g[i] if nesterov else m[i])
                o[i] = new
                bad |= not abs(new) <= limit
    else:
        v = second.reshape(second.size)
        for i in range(p.shape[0]):
            m[i] = beta_1 * m[i] + (1.0 - beta_1) * g[i]
            v[i] = beta_2 * v[i] + (1.0 - beta_2) * g[i] * g[i]
            new = p[i] - rate * m[i] / (math.sqrt(v[i]) + epsilon)
            o[i] = new
            bad |= not abs(new) <= limit
    return bad == 0


@register_jitable
def adam_rate(rate, beta_1, beta_2, step):
    """Adam's step size with the bias correction of step ``step`` (1-based)."""
    return rate * math.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)


@register_jitable
def copy_into(source, target):
    """``target[...] = source`` for two arrays of one shape."""
    t = target.reshape(target.size)
    s = source.reshape(source.size)
    for i in range(t.shape[0]):
        t[i] = s[i]


@register_jitable
def copy_rows(source, target, start):
    """``target[start + r] = source[r]`` for every row of the matrix ``source`` (loops: a
    slice assignment would compile NumPy's broadcasting and its error messages)."""
    for r in range(source.shape[0]):
        for c in range(source.shape[1]):
            target[start + r, c] = source[r, c]
