"""All naming rules of the generated source in one place.

- User names (inputs, staged lines) are kept; one that would shadow a name the generated code
  uses (``math``, ``sigmoid``, a Python keyword) gets a trailing underscore.
- The output of a single expression is ``f``.
- Temporaries get short descriptive names where possible: ``sigy`` (sigmoid of y), ``xpy``
  (x plus y), ``xpysqr`` (its square); the two operands of a division are ``num`` and ``den``;
  otherwise the gate's label (``sum``, ``prod``, ``exp``) numbered on a clash (``sum2``).
- The gradient of ``v`` is ``dv`` (``d_v`` if ``dv`` is taken).
"""

from __future__ import annotations

import keyword

from .gates import GATES
from .graph import Graph
from .names import KERNEL_NAME, VALUE_NAME  # there: the cached path needs them without SymPy


def reserved() -> frozenset[str]:
    """Names the generated code refers to, plus Python keywords: never used for a value."""
    from . import runtime

    return (frozenset(keyword.kwlist) | frozenset(getattr(keyword, "softkwlist", ()))
            | {"math", "np", "abs", "float", "range", "prange", "dtype", "register_jitable",
               "backward",
               KERNEL_NAME, f"{KERNEL_NAME}_into", f"{KERNEL_NAME}_points",
               f"{KERNEL_NAME}_points_parallel", f"{KERNEL_NAME}_buffers", f"{VALUE_NAME}_into"}
            | frozenset(runtime.__all__) | frozenset(g.call for g in GATES.values() if g.call))


class Namer:
    """Hands out unique identifiers."""

    def __init__(self) -> None:
        self.taken: set[str] = set(reserved())

    def claim(self, preferred: str, escape: str = "") -> str:
        """``preferred`` if free; else with ``escape`` or an increasing number appended."""
        name = preferred
        if escape:
            while name in self.taken:
                name += escape
        n = 2
        while name in self.taken:
            name = f"{preferred}{n}"
            n += 1
        self.taken.add(name)
        return name


def value_names(graph: Graph) -> tuple[str, ...]:
    """A readable, unique identifier for every node of ``graph``."""
    namer = Namer()
    names: list[str | None] = [None] * len(graph.nodes)
    for k, node in enumerate(graph.nodes):  # user names first: they are fixed
        if node.name is not None:
            names[k] = namer.claim(node.name, escape="_")
    out = graph.output
    if names[out] is None:
        names[out] = namer.claim("f")
    uses = graph.consumers()
    for k in range(len(graph.nodes)):
        if names[k] is None:
            names[k] = namer.claim(_temporary(graph, k, names, uses[k]))
    return tuple(names)  # type: ignore[arg-type]


def gradient_names(value: tuple[str, ...]) -> tuple[str, ...]:
    """``d<name>`` for every node, unique among values and each other."""
    namer = Namer()
    namer.taken.update(value)
    return tuple(namer.claim(f"d{v}" if f"d{v}" not in namer.taken else f"d_{v}") for v in value)


def _temporary(graph: Graph, k: int, names: list, uses) -> str:
    node = graph.nodes[k]
    consumers = {c for c, _ in uses}
    if len(consumers) == 1 and graph.nodes[uses[0][0]].gate == "div":
        operands = graph.nodes[uses[0][0]].operands
        positions = {p for p, o in enumerate(operands) if isinstance(o, int) and o == k}
        if len(positions) == 1:
            return ("num", "den")[positions.pop()]
    gate = GATES.get(node.gate)
    label = gate.label if gate else "t"
    words = []
    for o in node.operands:
        if isinstance(o, int):
            named = graph.nodes[o].name is not None
            words.append((names[o], named))
        elif o.is_Integer and 0 <= o < 100:
            words.append((str(o), True))
        else:
            words.append((None, False))
    exponent = node.operands[1] if node.gate == "pow" else None
    if node.gate == "pow" and words[0][0] and not isinstance(exponent, int):
        suffix = {2: "sqr", 3: "cube"}.get(exponent)
        if suffix and len(words[0][0]) <= 5:
            return f"{words[0][0]}{suffix}"
    elif len(words) == 1 and words[0][0] and len(words[0][0]) <= 5 and node.gate != "identity":
        return f"{label}{words[0][0]}"
    elif len(words) == 2 and gate and (gate.infix or node.gate == "matmul") and all(
            w and named and len(w) <= 3 for w, named in words) and words[0][0][0].isalpha():
        return f"{words[0][0]}{gate.infix}{words[1][0]}"
    return label


def dim_names(graph: Graph, taken: tuple[str, ...]) -> dict[str, str]:
    """A variable for every named dimension (``B``), clear of every value and gradient name."""
    namer = Namer()
    namer.taken.update(taken)
    dims: dict[str, str] = {}
    for node in graph.nodes:
        for d in node.shape:
            if isinstance(d, str) and d not in dims:
                dims[d] = namer.claim(d, escape="_")
    return dims
