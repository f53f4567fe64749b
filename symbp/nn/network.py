"""An MLP as staged symbp lines: the activations, the losses and :func:`network_lines`.

Kept apart from the estimators (``symbp.nn``) so that the command line can list the choices
without importing scikit-learn or compiling anything.
"""

from __future__ import annotations

import ast

from ..errors import ParameterError, SymbpError
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
"""Hidden-layer activations: scikit-learn's four, then ours. ``activation`` also takes the name
of a one-input gate (:func:`symbp.gate`, or a built-in one such as ``softplus``) or a formula
in one variable (:func:`activation_template`)."""

LOSSES = {
    "softmax_cross_entropy": "sum(w * softmax_cross_entropy(out, y))",
    "hinge": "sum(w * hinge(out, y))",
    "sigmoid_cross_entropy": "sum(w * sum(sigmoid_cross_entropy(out, t), axis=1))",
    "squared_error": "sum(w * mean((out - t)**2, axis=1)) / 2",
    "poisson": "sum(w * sum(xlogy(t, t) - t * out - t + exp(out), axis=1))",
}
"""Loss lines over the output ``out``: ``y`` holds integer labels, ``t`` float targets, ``w``
the batch's sample weights normalized to sum 1 (``1 / batch size`` each when a fit is given
none). Each is the weighted average over the batch of the per-sample loss, as scikit-learn
defines it (``np.average(..., weights=sample_weight)``): ``poisson`` is its half Poisson
deviance with the log link (``out`` is the log of the predicted mean). ``loss`` also takes a
formula over ``out``, ``w`` and ``t`` or ``y`` (:func:`loss_target`)."""

LABEL_LOSSES = ("softmax_cross_entropy", "hinge")
"""The losses over integer labels ``y``; the others read float targets ``t``."""

_NAME_HINT = ("one of {choices}, the name of a one-input gate (built-in or registered with "
              "symbp.gate), or a formula in one variable such as 'x * sigmoid(1.702 * x)'")


_LOSS_SHAPES = {"out": ("B", "C"), "t": ("B", "C"), "y": ints("B"), "w": ("B",)}


def _formula(text: str, what: str, allowed=None):
    """The formula's syntax tree and its input names in order of first use, or a
    ParameterError saying what is wrong: an activation is read as a gate formula (numbers), a
    loss as the line ``loss = <formula>`` over the arrays of :data:`_LOSS_SHAPES`, after its
    names are checked against ``allowed`` (so that an unknown name is named, not read as a
    number)."""
    from ..names import MAX_LENGTH
    from ..parse import parse, parse_formula  # SymPy: only for a formula

    if len(text) > MAX_LENGTH:
        raise ParameterError(f"{what} formula is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None  # the parser below says where (or that it is nested too deeply)
    try:
        if what == "activation" or tree is None:  # a loss of several lines: one expression
            names = parse_formula(text)[1]
        else:
            used = _variables(tree)
            unknown = [n for n in used if allowed is not None and n not in allowed
                       and not isinstance(tree, ast.Name)]  # a mistyped loss name
            if unknown:
                raise ParameterError(f"loss {text!r} names {', '.join(map(repr, unknown))}: a "
                                     f"loss formula reads only {', '.join(allowed)}" +
                                     ("; the labels y are a classifier's" if "y" in unknown
                                      else ""))
            graph = parse(f"loss = {text.strip()}",
                          shapes={k: v for k, v in _LOSS_SHAPES.items() if k in used})
            names = list(graph.input_names)
    except ParameterError:
        raise
    except SymbpError as exc:
        shown = repr(text) if len(text) <= 200 else f"{text[:80]!r}...({len(text)} characters)"
        raise ParameterError(f"{what} {shown} is not a formula symbp can read: {exc}") from None
    if tree is None:  # a statement, not an expression (the gate-formula parser takes it)
        raise ParameterError(f"{what} {text!r} is not one expression")
    return tree, names


def _variables(tree) -> list[str]:
    """The names a formula reads as values, in order of first use: not the gates called
    (``sum(...)``) nor the modules (``np.exp``)."""
    skip = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    skip |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)
             and isinstance(n.value, ast.Name) and n.attr != "T"}
    found = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in skip]
    return list(dict.fromkeys(found))


def loss_formula(loss: str) -> str:
    """The loss line's right-hand side: a built-in loss, or the formula as symbp read it, on
    one line and without comments (so that a penalty can follow it)."""
    if loss in LOSSES:
        return LOSSES[loss]
    tree = _formula(loss, "loss")[0]
    text = ast.unparse(tree)
    tight = (ast.Call, ast.Name, ast.Constant, ast.Attribute, ast.UnaryOp, ast.Subscript)
    arithmetic = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
                  ast.MatMult)
    if isinstance(tree, tight) or isinstance(tree, ast.BinOp) and isinstance(tree.op,
                                                                              arithmetic):
        return text  # binds at least as tightly as the "+ l2 * penalty" that may follow
    return f"({text})"


def activation_template(activation) -> str | None:
    """The hidden layer's activation as a line template (``{}`` the layer's affine part, as in
    ``"tanh({})"``), None for the identity; for ``maxout``, ``"max"``.

    ``activation`` is a name of :data:`ACTIVATIONS`, the name of a gate with one input (``h =
    gate(z)``, its parameters at their defaults) or a formula in one variable (any name: ``x *
    sigmoid(1.702 * x)``, ``x / (1 + abs(x))``), applied elementwise: the variable is renamed to
    the layer's affine part. Raises ParameterError for anything else, before any compiling."""
    if not isinstance(activation, str):
        raise ParameterError(f"activation must be a string: "
                             f"{_NAME_HINT.format(choices=', '.join(ACTIVATIONS))}; got "
                             f"{activation!r}")
    if activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    from ..gates import lookup  # the gate table: SymPy

    gate = lookup(activation) if activation.isidentifier() else None
    if gate is not None:
        if gate.arity != 1 or gate.array is not None:
            raise ParameterError(f"activation {activation!r} is a gate with {gate.arity} "
                                 "input(s)" + (" over whole arrays" if gate.array else "") +
                                 "; an activation takes one number")
        return activation + "({})"
    tree, names = _formula(activation, "activation")
    if isinstance(tree, ast.Name):
        raise ParameterError(f"unknown activation {activation!r}: "
                             f"{_NAME_HINT.format(choices=', '.join(ACTIVATIONS))}")
    if len(names) != 1:
        raise ParameterError(f"an activation formula has one variable, {activation!r} has "
                             f"{len(names)}{': ' + ', '.join(names) if names else ''}")
    from ..parse import uses_array_gates

    if uses_array_gates(tree):
        raise ParameterError(f"activation {activation!r} uses array gates (sum, mean, softmax, "
                             "@, .T); an activation formula is applied to each number alone")
    return ast.unparse(_Rename(names[0]).visit(tree))


class _Rename(ast.NodeTransformer):
    """Replaces the activation formula's variable by ``{}`` (a template slot); names in call
    position (gates) and module attributes (``np.exp``) are left alone."""

    def __init__(self, name: str):
        self.name = name

    def visit_Name(self, node):
        return ast.Name("{}", node.ctx) if node.id == self.name else node

    def visit_Call(self, node):
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        return node

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.attr != "T":  # np.exp, math.pi
            return node
        return self.generic_visit(node)


def loss_target(loss: str, classifier: bool) -> str:
    """The target a loss reads: ``"y"`` (integer labels, shape (B,)) or ``"t"`` (float rows,
    shape (B, C); one-hot rows for a classifier).

    ``loss`` is a name of :data:`LOSSES` or a formula for the batch's loss over the output
    ``out`` (B, C), the target (``t``; a classifier may read the labels ``y`` instead) and,
    optionally, the batch's sample weights ``w`` (B,) summing to 1: ``"mean(abs(out - t))"``,
    ``"sum(w * sum(exp(out) - t * out, axis=1))"``. A formula without ``w`` cannot weight its
    samples (fit refuses sample_weight for it). Raises ParameterError for anything else."""
    if loss in LOSSES:
        return "y" if loss in LABEL_LOSSES else "t"
    if not isinstance(loss, str):
        raise ParameterError(f"loss must be a string, got {loss!r}")
    allowed = ("out", "t", "y", "w") if classifier else ("out", "t", "w")
    tree, names = _formula(loss, "loss", allowed)
    if isinstance(tree, ast.Name) or "out" not in names:
        raise ParameterError(f"unknown loss {loss!r}: one of {', '.join(LOSSES)}, or a formula "
                             f"over the output 'out' and {', '.join(allowed[1:])} such as "
                             "'mean(abs(out - t))'")
    if "t" in names and "y" in names:
        raise ParameterError(f"loss {loss!r} reads both t (one-hot rows) and y (labels); use one")
    return "y" if "y" in names else "t"


def loss_weights_samples(loss: str) -> bool:
    """Whether the loss reads the sample weights ``w`` (every built-in loss does)."""
    return loss in LOSSES or "w" in _formula(loss, "loss")[1]


def gates_used(activation: str, loss: str) -> tuple[tuple[str, str], ...]:
    """The custom gates (:func:`symbp.gate`) that the activation and the loss call, as they
    are defined now: ``(name, definition)`` pairs, sorted. A model records them when it is
    fitted, so that a gate redefined or missing later is noticed (the weights were trained
    for the old definition)."""
    from ..gates import GATES  # the gate table: SymPy

    called = set()
    for text in (activation, loss):
        if not isinstance(text, str) or text in ACTIVATIONS or text in LOSSES:
            continue
        if text.isidentifier():
            called.add(text)
            continue
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        called |= {n.func.id for n in ast.walk(tree)
                   if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return tuple(sorted((name, GATES[name].text or GATES[name].doc) for name in called
                        if name in GATES and GATES[name].custom))


def dim_names(depth: int) -> list[str]:
    """The dimension names of a network with ``depth`` hidden layers, in layer order: ``F``
    (features), ``H1`` ... ``H<depth>`` (hidden widths), ``C`` (outputs)."""
    return ["F", *(f"H{k}" for k in range(1, depth + 1)), "C"]


def network_lines(depth: int, activation: str, loss: str, l2: bool, classifier: bool = True
                  ) -> tuple[str, dict, list[str]]:
    """The staged lines of a network with ``depth`` hidden layers, the shapes of its inputs
    and its parameter names.

    Every size is a dimension name (:func:`dim_names`; ``B`` is the batch), bound when the
    function is called: one compiled module serves every width of the network, and only its
    structure (depth, activation, loss, penalty) selects the module. The sample weights ``w``
    (shape ``(B,)``, summing to 1 over the batch) are always an input, so weighted and
    unweighted fits share one module. ``l2`` adds scikit-learn's penalty ``l2 * sum of squared
    weights`` (``l2`` an input, set to ``alpha / (2 * sum of the batch's sample weights)`` per
    batch). ``classifier``: whether a formula loss may read labels ``y``
    (:func:`loss_target`).
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise ValueError(f"depth is the number of hidden layers, got {depth!r}")
    dims = dim_names(depth)
    template = activation_template(activation)
    target = loss_target(loss, classifier)
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
        elif template == "max":
            shapes[f"V{k}"], shapes[f"c{k}"] = (fan_in, fan_out), (fan_out,)
            params += [f"V{k}", f"c{k}"]
            lines.append(f"h{k} = max({affine}, {previous} @ V{k} + c{k})")
        elif template is None:
            lines.append(f"h{k} = {affine}")
        else:
            lines += [f"z{k} = {affine}", f"h{k} = {template.replace('{}', f'z{k}')}"]
        previous = f"h{k}"
    shapes[target] = ints("B") if target == "y" else ("B", "C")
    shapes["w"] = ("B",)
    data_loss = loss_formula(loss)
    if l2:  # first, so its gradient comes last: added to the matmul's, not the other way round
        weights = [p for p in params if p[0] in "WV"]  # (which would allocate a BLAS result)
        lines.insert(0, f"penalty = {' + '.join(f'sum({w}**2)' for w in weights)}")
        lines.append(f"loss = {data_loss} + l2 * penalty")
        shapes["l2"] = ()
    else:
        lines.append(f"loss = {data_loss}")
    return "\n".join(lines), shapes, params
