"""An MLP as staged symbp lines: the activations, the losses and :func:`network_lines`.

Kept apart from the estimators (``symbp.nn``) so that the command line can list the choices
without importing scikit-learn or compiling anything.
"""

from __future__ import annotations

from ..shapes import ints

ACTIVATIONS = {
    "identity": None,
    "logistic": "sigmoid({})",
    "tanh": "tanh({})",
    "relu": "relu({})",
    "leaky_relu": "leaky_relu({})",
    "elu": "elu({})",
    "abs": "abs({})",
    "maxout": "max",  # two affine pieces per layer, elementwise max
}
"""Hidden-layer activations: scikit-learn's four, then ours."""

LOSSES = {
    "softmax_cross_entropy": "sum(w * softmax_cross_entropy(out, y))",
    "hinge": "sum(w * hinge(out, y))",
    "sigmoid_cross_entropy": "sum(w * sum(sigmoid_cross_entropy(out, t), axis=1))",
    "squared_error": "sum(w * mean((out - t)**2, axis=1)) / 2",
}
"""Loss lines over the output ``out``: ``y`` holds integer labels, ``t`` float targets, ``w``
the batch's sample weights normalized to sum 1 (``1 / batch size`` each when a fit is given
none). Each is the weighted average over the batch of the per-sample loss, as scikit-learn
defines it (``np.average(..., weights=sample_weight)``)."""


def dim_names(depth: int) -> list[str]:
    """The dimension names of a network with ``depth`` hidden layers, in layer order: ``F``
    (features), ``H1`` ... ``H<depth>`` (hidden widths), ``C`` (outputs)."""
    return ["F", *(f"H{k}" for k in range(1, depth + 1)), "C"]


def network_lines(depth: int, activation: str, loss: str, l2: bool
                  ) -> tuple[str, dict, list[str]]:
    """The staged lines of a network with ``depth`` hidden layers, the shapes of its inputs
    and its parameter names.

    Every size is a dimension name (:func:`dim_names`; ``B`` is the batch), bound when the
    function is called: one compiled module serves every width of the network, and only its
    structure (depth, activation, loss, penalty) selects the module. The sample weights ``w``
    (shape ``(B,)``, summing to 1 over the batch) are always an input, so weighted and
    unweighted fits share one module. ``l2`` adds scikit-learn's penalty ``l2 * sum of squared
    weights`` (``l2`` an input, set to ``alpha / (2 * sum of the batch's sample weights)`` per
    batch).
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise ValueError(f"depth is the number of hidden layers, got {depth!r}")
    dims = dim_names(depth)
    lines, shapes, params = [], {"X": ("B", dims[0])}, []
    previous = "X"
    for k in range(1, depth + 2):
        last = k == depth + 1
        fan_in, fan_out = dims[k - 1], dims[k]
        shapes[f"W{k}"], shapes[f"b{k}"] = (fan_in, fan_out), (fan_out,)
        params += [f"W{k}", f"b{k}"]
        affine = f"{previous} @ W{k} + b{k}"
        if last:
            lines.append(f"out = {affine}")
        elif activation == "maxout":
            shapes[f"V{k}"], shapes[f"c{k}"] = (fan_in, fan_out), (fan_out,)
            params += [f"V{k}", f"c{k}"]
            lines.append(f"h{k} = max({affine}, {previous} @ V{k} + c{k})")
        elif ACTIVATIONS[activation] is None:
            lines.append(f"h{k} = {affine}")
        else:
            lines += [f"z{k} = {affine}", f"h{k} = {ACTIVATIONS[activation].format(f'z{k}')}"]
        previous = f"h{k}"
    labels = loss in ("softmax_cross_entropy", "hinge")
    shapes["y" if labels else "t"] = ints("B") if labels else ("B", "C")
    shapes["w"] = ("B",)
    data_loss = LOSSES[loss]
    if l2:  # first, so its gradient comes last: added to the matmul's, not the other way round
        weights = [p for p in params if p[0] in "WV"]  # (which would allocate a BLAS result)
        lines.insert(0, f"penalty = {' + '.join(f'sum({w}**2)' for w in weights)}")
        lines.append(f"loss = {data_loss} + l2 * penalty")
        shapes["l2"] = ()
    else:
        lines.append(f"loss = {data_loss}")
    return "\n".join(lines), shapes, params
