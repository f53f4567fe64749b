"""The reverse sweep: the graph becomes a list of statements, forward then backward.

The backward pass visits nodes from the output back to the inputs. Each node hands every input
that depends on a ``wrt`` variable one contribution, ``d<input> (+)= local * d<node>``: the first
contribution assigns, later ones accumulate (gradients add where a value fans out). The output's
own gradient is 1 and is left out (``dnum = invden``, as in the CS231n notes).

Arrays: an elementwise gate becomes a loop whose body is the scalar statement with indices; a
broadcast input receives its gradient summed over the broadcast axes (``db[j] += ...``), after
a zero fill, so every gradient has its variable's shape. Array gates (matmul, sum, softmax...)
give their own statements from the gate table. Every array value and gradient has a buffer of
its own, so a first contribution never aliases another buffer, with one exception that cannot
go wrong: an intermediate's gradient that is exactly its consumer's (``dXW1 = dz1`` through an
add) and gets nothing else is that same array, not a copy.
"""

from __future__ import annotations

import sympy as sp

from .arrays import Site
from .derive import OUT, local_derivatives, placeholder
from .emit import SourcePrinter
from .gates import GATES
from .graph import Graph
from .naming import Namer
from .shapes import broadcast
from .statements import Accumulate, Assign, Buffer, Code, Loop, LoopAssign, Program, Ref, Statement

_PRINTER = SourcePrinter()  # for the comments that show an elementwise gate's formula


def sweep(graph: Graph, names: tuple[str, ...], grads: tuple[str, ...],
          wrt: tuple[int, ...], dims: dict[str, str] | None = None) -> Program:
    """Forward statements in node order, backward statements in reverse node order."""
    sym = tuple(sp.Symbol(n, real=True) for n in names)
    saved = _saved_names(graph, names + grads + tuple((dims or {}).values()))
    step: dict[int, int] = {}
    forward: list[Statement] = []
    for k, node in enumerate(graph.nodes):
        if node.gate == "input":
            continue
        step[k] = len(step) + 1
        label = "" if node.gate == "line" else f" {node.gate}"
        comment = f"({step[k]}){label}"
        gate = GATES.get(node.gate)
        if gate is not None and gate.array is not None:
            forward += _commented(gate.array.forward(_site(graph, names, k, saved=saved)),
                                  f"{comment}: {_describe(graph, names, k)}")
        elif node.shape == ():
            forward.append(Assign(names[k], node.formula.xreplace(_bind(node.args, sym)), comment,
                                  _note(gate, node.formula)))
        else:
            refs = _arg_refs(graph, names, k)
            value = node.formula.xreplace({placeholder(p): s for p, (s, _) in enumerate(refs)})
            target = Ref(names[k], tuple(range(len(node.shape))))
            described = f"{comment}: {_describe(graph, names, k)}"
            forward.append(Loop(node.shape, (LoopAssign(target, value, refs, False, described,
                                                        note=_note(gate, node.formula)),)))

    needed = graph.depends_on(wrt)
    uses = [0] * len(graph.nodes)  # consumers of each node that pass gradients back
    for k, node in enumerate(graph.nodes):
        if needed[k]:
            for a in node.args:
                uses[a] += 1
    shared = {a for a in range(len(graph.nodes)) if uses[a] == 1 and a not in wrt}
    aliases: set[str] = set()  # gradients that are their consumer's array: no buffer of their own
    assigned: set[int] = set()
    backward: list[Statement] = []
    output = graph.output
    out_gate = GATES.get(graph.nodes[output].gate)
    if out_gate is not None and out_gate.array is not None:  # its adjoint needs a named seed
        backward.append(Assign(grads[output], sp.Integer(1), "(seed) the output's own gradient"))
        assigned.add(output)
    for k in range(len(graph.nodes) - 1, -1, -1):
        node = graph.nodes[k]
        if node.gate == "input" or not needed[k] or (k != output and k not in assigned):
            continue  # an input, or a node that receives no gradient (x * 0)
        gate = GATES.get(node.gate)
        upstream = None if k == output and k not in assigned else grads[k]
        if gate is not None and gate.array is not None:
            for position, a in enumerate(node.args):
                if not needed[a] or position in gate.array.labels \
                        or position in gate.array.shape_only:
                    continue
                site = _site(graph, names, k, upstream, grads, a in assigned, saved)
                backward += _commented(gate.array.adjoint(site, position),
                                       f"({step[k]}) {node.gate}: d{names[k]}/d{names[a]}")
                assigned.add(a)
        elif node.shape == ():
            backward += _scalar_backward(graph, names, grads, k, needed, assigned, upstream,
                                         step[k], sym)
        else:
            backward += _loop_backward(graph, names, grads, k, needed, assigned, step[k],
                                       shared, aliases)

    zeros = tuple(_zero(graph, grads, i) for i in wrt if i not in assigned)
    return Program(
        params=tuple(names[i] for i in graph.inputs), forward=tuple(forward),
        backward=zeros + tuple(backward),
        returns=(names[output],) + tuple(grads[i] for i in wrt),
        dims=_dims(graph, names, dims or {}),
        grad_buffers=tuple(Buffer(grads[i], graph.nodes[i].shape) for i in wrt
                           if graph.nodes[i].shape),
        work_buffers=_work_buffers(graph, names, grads, wrt, assigned, aliases)
        + tuple(Buffer(name, graph.nodes[graph.nodes[k].args[0]].shape)
                for k, name in saved.items()),
        dtype_source=next((names[i] for i in graph.inputs if graph.nodes[i].shape
                           and not graph.nodes[i].integer), None))


def _scalar_backward(graph, names, grads, k, needed, assigned, upstream, step, sym) -> list:
    node = graph.nodes[k]
    locals_ = local_derivatives(node.formula, len(node.args))
    assert len(locals_) == len(node.args), "one local gradient per input"
    bind = _bind(node.args, sym)
    bind[OUT] = sym[k]
    out = []
    for position, a in enumerate(node.args):
        if not needed[a]:
            continue
        local = locals_[position].xreplace(bind)
        if local == 0:
            continue  # contributes nothing; a gradient that gets nothing is set to 0
        label = "" if node.gate == "line" else f" {node.gate}:"
        out.append(Accumulate(grads[a], local, upstream, a not in assigned,
                              f"({step}){label} d{names[k]}/d{names[a]}", _dnote(node)))
        assigned.add(a)
    return out


def _loop_backward(graph, names, grads, k, needed, assigned, step, shared, aliases) -> list:
    """One loop over the node's shape giving every input its contribution. An input in
    ``shared`` (one consumer, not differentiated for the caller) whose contribution is the
    upstream gradient itself takes that array: no loop, no copy."""
    node = graph.nodes[k]
    refs = _arg_refs(graph, names, k)
    own = sp.Symbol("_own", real=True)
    refs_out = refs + ((own, Ref(names[k], tuple(range(len(node.shape))))),)
    bind = {placeholder(p): s for p, (s, _) in enumerate(refs)}
    bind[OUT] = own
    upstream = Ref(grads[k], tuple(range(len(node.shape))))
    locals_ = local_derivatives(node.formula, len(node.args))
    zero_first, body = [], []
    for position, a in enumerate(node.args):
        if not needed[a]:
            continue
        local = locals_[position].xreplace(bind)
        if local == 0:
            continue
        target = Ref(grads[a], refs[position][1].axes)
        reduced = sum(ax is not None for ax in target.axes) < len(node.shape)
        first = a not in assigned
        if local == 1 and a in shared and first and target.axes == upstream.axes:
            zero_first.append(Code(f"{grads[a]} = {grads[k]}", f"({step}) {node.gate}: "
                                   f"d{names[k]}/d{names[a]} = 1: the same array, not a copy"))
            assigned.add(a)
            aliases.add(grads[a])
            continue
        if first and reduced:
            zero_first.append(_zero(graph, grads, a, f"({step}) {node.gate}: d{names[a]} sums "
                                    "over the broadcast axes"))
        label = "" if node.gate == "line" else f" {node.gate}:"
        body.append(LoopAssign(target, local, refs_out, add=not first or reduced,
                               comment=f"({step}){label} d{names[k]}/d{names[a]}",
                               upstream=upstream, note=_dnote(node)))
        assigned.add(a)
    return zero_first + ([Loop(node.shape, tuple(body))] if body else [])


def _note(gate, formula) -> str:
    """The gate table's note on how a node's gate is computed, for its forward line; a
    staged line's are those of the gates it calls (``h1 = elu(z1)``). A gate with a fast
    form has its note written where it is called, by the emitter."""
    if gate is not None and gate.note:
        return gate.note if gate.fast is None else ""
    called = {f.func.symbp_gate.name: f.func.symbp_gate.note
              for f in (formula.atoms(sp.Function) if formula is not None else ())
              if getattr(f.func, "symbp_gate", None) is not None and f.func.symbp_gate.note
              and f.func.symbp_gate.fast is None}
    return "; ".join(called[n] for n in sorted(called))


def _dnote(node) -> str:
    """The gate table's note on how the node's local derivatives are computed, if any."""
    gate = GATES.get(node.gate)
    return gate.dnote if gate is not None else ""


def _zero(graph: Graph, grads, i: int, why: str = "no gradient reaches it") -> Statement:
    if graph.nodes[i].shape:
        return Code(f"{grads[i]}[:] = 0.0", why)
    return Assign(grads[i], sp.Integer(0), why)


def _arg_refs(graph: Graph, names, k: int) -> tuple:
    """Symbols and index maps of an elementwise node's inputs (broadcast to its shape)."""
    node = graph.nodes[k]
    maps = broadcast([graph.nodes[a].shape for a in node.args])[1] if node.args else []
    refs = []
    for p, (a, axes) in enumerate(zip(node.args, maps)):
        refs.append((sp.Symbol(f"_a{p}_ref", real=True), Ref(names[a], axes)))
    return tuple(refs)


def _site(graph: Graph, names, k: int, upstream=None, grads=None, add=False,
          saved=None) -> Site:
    node = graph.nodes[k]
    gate = GATES[node.gate]
    return Site(out=names[k], args=tuple(names[a] for a in node.args),
                shapes=tuple(graph.nodes[a].shape for a in node.args), out_shape=node.shape,
                params=dict(zip([n for n, _ in gate.params], node.params)),
                dout=upstream, dargs=tuple(grads[a] for a in node.args) if grads else (),
                add=add, saved=(saved or {}).get(k))


def _saved_names(graph: Graph, taken) -> dict[int, str]:
    """A buffer name for what each array gate with ``saves`` keeps from its forward pass."""
    namer = Namer()
    namer.taken.update(taken)
    return {k: namer.claim(GATES[node.gate].array.saves) for k, node in enumerate(graph.nodes)
            if node.gate in GATES and GATES[node.gate].array is not None
            and GATES[node.gate].array.saves}


def _describe(graph: Graph, names, k: int) -> str:
    node = graph.nodes[k]
    args = [names[a] for a in node.args]
    if node.gate == "matmul":
        return f"{names[k]} = {args[0]} @ {args[1]}"
    if node.gate == "transpose":
        return f"{names[k]} = {args[0]}.T"
    params = [f"{n}={v}" for (n, default), v in zip(GATES[node.gate].params, node.params)
              if v is not None and v != default] if node.gate in GATES else []
    if node.formula is not None:  # elementwise: the scalar formula, by name
        formula = node.formula.xreplace({placeholder(p): sp.Symbol(a, real=True)
                                         for p, a in enumerate(args)})
        return f"{names[k]} = {_PRINTER.value(formula)}"
    return f"{names[k]} = {node.gate}({', '.join(args + params)})"


def _commented(statements: list, comment: str) -> list:
    """Put the gate's comment on the first of its statements."""
    if not statements:
        return statements
    first = statements[0]
    note = f"{comment}; {first.comment}" if getattr(first, "comment", "") else comment
    if isinstance(first, Code):
        first = Code(first.text, note)
    elif isinstance(first, Loop):
        head = first.body[0]
        first = Loop(first.shape, (LoopAssign(head.target, head.value, head.refs, head.add,
                                              note, head.upstream, head.note),) + first.body[1:])
    return [first] + list(statements[1:])


def _dims(graph: Graph, names, variables: dict[str, str]) -> tuple:
    """(dimension, variable, code reading it from the first input that has it)."""
    found = {}
    for i in graph.inputs:
        for axis, d in enumerate(graph.nodes[i].shape):
            if isinstance(d, str) and d not in found:
                found[d] = (d, variables.get(d, d), f"{names[i]}.shape[{axis}]")
    return tuple(found.values())


def _work_buffers(graph: Graph, names, grads, wrt, assigned, aliases) -> tuple[Buffer, ...]:
    out = []
    for k, node in enumerate(graph.nodes):
        if not node.shape or node.gate == "input":
            continue
        gate = GATES.get(node.gate)
        if not (gate is not None and gate.array is not None and gate.array.view):
            out.append(Buffer(names[k], node.shape))
    for k, node in enumerate(graph.nodes):
        if node.shape and k in assigned and k not in wrt and grads[k] not in aliases:
            out.append(Buffer(grads[k], node.shape))
    return tuple(out)


def _bind(args: tuple[int, ...], sym: tuple[sp.Symbol, ...]) -> dict:
    return {placeholder(p): sym[a] for p, a in enumerate(args)}
