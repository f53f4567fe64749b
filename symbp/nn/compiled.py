"""The network's generated module: its lines compiled by symbp, then the training loop.

:func:`network` compiles the staged lines of a structure (depth, activation, loss, penalty) with
:func:`symbp.compile` and appends ``parameters`` (per-layer views of one flat vector) and
``run`` (an epoch, or the forward pass over a data set) to the same module, so one cached
module and one compiled entry point serve every width, feature count and output count.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import jit as _jit
from ..function import compile as _compile
from . import loop as _loop
from .network import ACTIVATIONS, LOSSES, dim_names, loss_target, network_lines

_LOOP_HASH = hashlib.sha256(Path(_loop.__file__).read_bytes()).hexdigest()[:12]

def _views_source(params: list[str], shapes: dict, dims: list[str]) -> str:
    """``parameters(flat, dims)``: the parameters as views of one flat vector, in order."""
    body = [f"    {', '.join(dims)} = {', '.join(f'dims[{k}]' for k in range(len(dims)))}",
            "    o = 0"]
    for p in params:
        size = " * ".join(shapes[p])
        view = f"flat[o:o + {size}]"
        if len(shapes[p]) > 1:
            view += f".reshape(({', '.join(shapes[p])}))"
        body += [f"    {p} = {view}", f"    o += {size}"]
    shown = ", ".join(f"{p} ({', '.join(shapes[p])})" for p in params)
    doc = (f'    """Views of the flat vector ``flat``: {shown}; ``dims`` holds the sizes '
           f'{", ".join(dims)}."""')
    return "\n".join(["@register_jitable", "def parameters(flat, dims):", doc, *body,
                      f"    return {', '.join(params)},"])


_RUN = '''

# ---- the training loop (symbp.nn, loop helpers {hash}) ----
from symbp.nn.loop import ADAM, adam_rate, all_finite, copy_into, copy_rows, {count}
from symbp.nn.loop import {imports}
from symbp.nn.loop import gather_weights, optimizer_step


{views}


def run(X, T, S, theta, theta_next, first, second, grad, dims, order, result, predict, batch,
        solver, rate, momentum, nesterov, beta_1, beta_2, epsilon, alpha, step, limit):
    """One epoch of mini-batch training (``predict`` False), or the network's output rows for
    every row of ``X`` written into ``result`` (``predict`` True; ``T`` holds dummy targets).
    ``S`` holds a sample weight per row of ``X`` (ones for an unweighted fit); ``order`` the
    rows in the order the batches take them (the caller shuffles it). Returns (sum of batch
    loss times batch size (predicting: the data loss, without the penalty, times the batch's
    sum of sample weights), correct predictions, batches done, status, optimizer step); status
    1: the loss of the next batch is not finite, 2: its gradient is not, 3: its update would
    make a weight NaN or beyond ``limit`` (the dtype's largest value). ``theta`` holds the
    weights from before that batch (all finite) on return. A batch whose sample weights are
    all zero has nothing to learn from: it is skipped (loss 0, no step)."""
    n = X.shape[0]
    total = 0.0
    correct = 0
    done = 0
    status = 0
    swapped = False
    rows = -1
    l2 = 0.0
    {names} = parameters(theta, dims)
    for start in range(0, n, batch):
        m = batch if n - start > batch else n - start  # (a buffer may be named min)
        if m != rows:  # buffers for this many rows: the first batch and a shorter last one
            xb = np.empty((m, X.shape[1]), X.dtype)
            tb = np.empty({rows}, T.dtype)
            w = np.empty(m, X.dtype)
            {buffers} = value_and_grad_buffers({call})
            {grads} = parameters(grad, dims)
            rows = m
        gather_rows(X, order, start, xb)
        {gather}(T, order, start, tb)
        weight = gather_weights(S, order, start, w)  # w sums to 1; weight: the batch's sum
        if predict:
            loss, = value_and_grad_into({call}, {buffers}, False)  # the forward pass alone
            copy_rows(out, result, start)
            total += loss * weight
            done += 1
            continue
        if weight == 0.0:
            done += 1
            continue
        l2 = 0.5 * alpha / weight
        loss, = value_and_grad_into({call}, {buffers}, True)
        if not math.isfinite(loss):
            status = 1
            break
        now = adam_rate(rate, beta_1, beta_2, step + 1) if solver == ADAM else rate
        if not optimizer_step(theta, grad, first, second, theta_next, solver, now, momentum,
                              nesterov, beta_1, beta_2, epsilon, limit):
            status = 3 if all_finite(grad) else 2  # the weights before this step are intact
            break
        total += loss * m
        correct += {count}(out, tb)
        step += 1
        theta, theta_next = theta_next, theta
        {names} = parameters(theta, dims)
        swapped = not swapped
        done += 1
    if swapped:  # the newest weights are in the vector passed as theta_next: copy them home
        copy_into(theta, theta_next)
    return total, correct, done, status, step
'''


def _loop_source(inputs: list[str], params: list[str], shapes: dict, dims: list[str],
                 buffers: list[str], labels: bool, l2: bool) -> str:
    """The training loop and batched prediction, appended to the network's module (so one
    cached module holds both: a cached Numba function given another dispatcher as an argument
    recompiles per process).

    ``run`` is the module's one compiled entry point: an epoch (``predict`` False) or the
    forward pass over ``X`` into ``result`` (``predict`` True), so a first fit and its first
    prediction share one compilation. Parameters, their gradient, the optimizer's state and
    the next weights are each one flat vector (``parameters`` gives the per-layer views): one
    optimizer step updates them all, and the argument list is the same for every network. A
    step writes the updated weights into ``theta_next`` and checks them in the same loop, and
    only a step whose every weight is finite swaps the two, so a step that overflows leaves
    the last finite weights in place at no extra pass. Buffers are allocated per call, for
    the first batch and a shorter last one (a few microseconds)."""
    return _RUN.format(
        hash=_LOOP_HASH, views=_views_source(params, shapes, dims), names=", ".join(params),
        grads=", ".join(f"d{p}" for p in params), buffers=", ".join(buffers),
        call=", ".join(["xb", *params, "tb", "w", *(["l2"] if l2 else [])]),
        gather="gather" if labels else "gather_rows",
        imports="gather, gather_rows" if labels else "gather_rows",
        count="count_correct_labels" if labels else "count_correct_targets",
        rows="(m,)" if labels else "(m, T.shape[1])")


@dataclass
class Network:
    """A compiled network structure: its lines, module source, parameter names and shapes (in
    dimension names) and dimension names; ``run()`` is its compiled entry point."""

    lines: str
    source: str
    params: list[str]
    shapes: dict
    dims: list[str]
    labels: bool

    def run(self):
        return _jit.njit(self.source, None, "run")

    def sizes(self, dims) -> list[tuple[int, ...]]:
        """The shape of each parameter for these dimension sizes."""
        value = dict(zip(self.dims, map(int, dims)))
        return [tuple(value[d] for d in self.shapes[p]) for p in self.params]


_NETWORKS: dict[tuple, Network] = {}


def network(depth: int, activation: str, loss: str, l2: bool, classifier: bool = True
            ) -> Network:
    """The network of this structure: one module for every width, feature and output count.
    An activation or loss given as a gate name or formula may use custom gates, whose
    definitions are then part of the structure."""
    key = (depth, activation, loss, l2, loss not in LOSSES and classifier)
    if activation not in ACTIVATIONS or loss not in LOSSES:
        from ..gates import custom_signature

        key += (repr(custom_signature()),)
    if key not in _NETWORKS:
        lines, shapes, params = network_lines(depth, activation, loss, l2, classifier)
        target = loss_target(loss, classifier)
        inputs = ["X", *params, target, "w", *(["l2"] if l2 else [])]
        f = _compile(lines, inputs=inputs, shapes=shapes, wrt=params)
        module = _jit.load(f.source)
        names = list(inspect.signature(module.value_and_grad_into).parameters)
        buffers = [n for n in names[len(inputs):] if n != "backward"]  # the flag
        assert buffers[:len(params)] == [f"d{p}" for p in params] and "out" in buffers
        dims = dim_names(depth)
        source = f.source + _loop_source(inputs, params, shapes, dims, buffers, target == "y",
                                         l2)
        _NETWORKS[key] = Network(lines, source, params, shapes, dims, target == "y")
    return _NETWORKS[key]


def flat(arrays: list[np.ndarray]) -> np.ndarray:
    """One contiguous vector holding ``arrays`` one after the other."""
    return np.concatenate([a.reshape(-1) for a in arrays])


def views(vector: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Views of ``vector`` with these shapes, in order (the inverse of :func:`flat`)."""
    out, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(vector[offset:offset + size].reshape(shape))
        offset += size
    return out
