"""An MLP as staged symbp lines: the activations, the losses and :func:`network_lines`.

Kept apart from the estimators (``symbp.nn``) so that the command line can list the choices
without importing scikit-learn or compiling anything.
"""

from __future__ import annotations

from .shapes import ints

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
    "softmax_cross_entropy": "mean(softmax_cross_entropy(out, y))",
    "hinge": "mean(hinge(out, y))",
    "sigmoid_cross_entropy": "mean(sum(sigmoid_cross_entropy(out, t), axis=1))",
    "squared_error": "mean((out - t)**2) / 2",
}
"""Loss lines over the output ``out``: ``y`` holds integer labels, ``t`` float targets. Each is
the mean over the batch, as scikit-learn defines it."""


def network_lines(n_features: int, hidden: tuple[int, ...], n_outputs: int, activation: str,
                  loss: str, l2: bool) -> tuple[str, dict, list[str]]:
    """The staged lines of a network, the shapes of its inputs and its parameter names.

    ``l2`` adds scikit-learn's penalty ``l2 * sum of squared weights`` (``l2`` an input, set
    to ``alpha / (2 * batch size)`` per batch).
    """
    lines, shapes, params = [], {"X": ("B", n_features)}, []
    width, previous = n_features, "X"
    for k, size in enumerate((*hidden, n_outputs), start=1):
        last = k == len(hidden) + 1
        shapes[f"W{k}"], shapes[f"b{k}"] = (width, size), (size,)
        params += [f"W{k}", f"b{k}"]
        affine = f"{previous} @ W{k} + b{k}"
        if last:
            lines.append(f"out = {affine}")
        elif activation == "maxout":
            shapes[f"V{k}"], shapes[f"c{k}"] = (width, size), (size,)
            params += [f"V{k}", f"c{k}"]
            lines.append(f"h{k} = max({affine}, {previous} @ V{k} + c{k})")
        elif ACTIVATIONS[activation] is None:
            lines.append(f"h{k} = {affine}")
        else:
            lines += [f"z{k} = {affine}", f"h{k} = {ACTIVATIONS[activation].format(f'z{k}')}"]
        width, previous = size, f"h{k}"
    labels = loss in ("softmax_cross_entropy", "hinge")
    shapes["y" if labels else "t"] = ints("B") if labels else ("B", n_outputs)
    data_loss = LOSSES[loss]
    if loss == "sigmoid_cross_entropy" and n_outputs == 1:
        data_loss = "mean(sigmoid_cross_entropy(out, t))"
    if l2:  # first, so its gradient comes last: added to the matmul's, not the other way round
        weights = [p for p in params if p[0] in "WV"]  # (which would allocate a BLAS result)
        lines.insert(0, f"penalty = {' + '.join(f'sum({w}**2)' for w in weights)}")
        lines.append(f"loss = {data_loss} + l2 * penalty")
        shapes["l2"] = ()
    else:
        lines.append(f"loss = {data_loss}")
    return "\n".join(lines), shapes, params
