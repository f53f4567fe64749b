"""The reverse sweep: the graph becomes a list of statements, forward then backward.

The backward pass visits nodes from the output back to the inputs. Each node hands every input
that depends on a ``wrt`` variable one contribution, ``d<input> (+)= local * d<node>``: the first
contribution assigns, later ones accumulate (gradients add where a value fans out). The output's
own gradient is 1 and is left out (``dnum = invden``, as in the CS231n notes).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .derive import OUT, local_derivatives, placeholder
from .graph import Graph


@dataclass(frozen=True)
class Assign:
    """``target = value`` (forward values, and gradients that receive nothing: 0)."""

    target: str
    value: sp.Expr
    comment: str = ""


@dataclass(frozen=True)
class Accumulate:
    """``target = local * upstream`` (``first``) or ``target += local * upstream``."""

    target: str
    local: sp.Expr
    upstream: str | None  # None: the output's gradient, 1
    first: bool
    comment: str = ""


@dataclass(frozen=True)
class Program:
    """Everything the emitter prints: parameters, both passes, returned names."""

    params: tuple[str, ...]
    forward: tuple[Assign, ...]
    backward: tuple[Assign | Accumulate, ...]
    returns: tuple[str, ...]


def sweep(graph: Graph, names: tuple[str, ...], grads: tuple[str, ...],
          wrt: tuple[int, ...]) -> Program:
    """Forward statements in node order, backward statements in reverse node order."""
    sym = tuple(sp.Symbol(n, real=True) for n in names)
    step = {}
    forward = []
    for k, node in enumerate(graph.nodes):
        if node.gate == "input":
            continue
        step[k] = len(step) + 1
        value = node.formula.xreplace(_bind(node.args, sym))
        label = "" if node.gate == "line" else f" {node.gate}"
        forward.append(Assign(names[k], value, f"({step[k]}){label}"))

    needed = graph.depends_on(wrt)
    assigned: set[int] = set()
    backward: list[Assign | Accumulate] = []
    for k in range(len(graph.nodes) - 1, -1, -1):
        node = graph.nodes[k]
        if node.gate == "input" or not needed[k] or (k != graph.output and k not in assigned):
            continue  # an input, or a node that receives no gradient (x * 0)
        locals_ = local_derivatives(node.formula, len(node.args))
        assert len(locals_) == len(node.args), "one local gradient per input"
        bind = _bind(node.args, sym)
        bind[OUT] = sym[k]
        for position, a in enumerate(node.args):
            if not needed[a]:
                continue
            local = locals_[position].xreplace(bind)
            if local == 0:
                continue  # contributes nothing; a gradient that gets nothing is set to 0
            upstream = None if k == graph.output else grads[k]
            label = "" if node.gate == "line" else f" {node.gate}:"
            backward.append(Accumulate(grads[a], local, upstream, a not in assigned,
                                       f"({step[k]}){label} d{names[k]}/d{names[a]}"))
            assigned.add(a)
    zeros = tuple(Assign(grads[i], sp.Integer(0), "(no gradient reaches it)")
                  for i in wrt if i not in assigned)
    return Program(tuple(names[i] for i in graph.inputs), tuple(forward),
                   zeros + tuple(backward), (names[graph.output],) + tuple(grads[i] for i in wrt))


def _bind(args: tuple[int, ...], sym: tuple[sp.Symbol, ...]) -> dict:
    return {placeholder(p): sym[a] for p, a in enumerate(args)}
