"""Write the generated files of the documentation from the code they describe.

Usage::

    python docs/generate.py           # rewrite every generated file that is out of date
    python docs/generate.py --check   # exit 1 listing the out-of-date files, write nothing

Every generated file is one entry of :data:`ARTIFACTS`: a path and a producer, a function
without arguments returning the file's whole content (``str`` for text, ``bytes`` otherwise).
To add one (a circuit diagram for the tutorial, say), write its producer and append the pair;
``--check`` and ``tests/test_docs.py`` then cover it too.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import sympy as sp

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
COMMAND = "python docs/generate.py"

Content = str | bytes


# -- docs/gates.md: the gate table --------------------------------------------------------------

# Spellings of the gates reached through Python syntax rather than by name.
_SYNTAX = {"Add": "a + b", "Sub": "a - b", "Mult": "a * b", "Div": "a / b", "Pow": "a ** b",
           "USub": "-a", "MatMult": "a @ b"}
_EXTRA_SPELLINGS = {"transpose": ["a.T"]}
_INPUT_NAMES = "abc"


def _inputs(gate) -> list[sp.Symbol]:
    return [sp.Symbol(_INPUT_NAMES[k], real=True) for k in range(gate.arity)]


def _renaming(gate) -> dict:
    """Placeholders, parameter symbols and the cached output -> readable names."""
    from symbp.derive import OUT, placeholder
    from symbp.gates import param_symbol

    names = {placeholder(k): s for k, s in enumerate(_inputs(gate))}
    names.update({param_symbol(p): sp.Symbol(p, real=True) for p, _ in gate.params})
    names[OUT] = sp.Symbol("out", real=True)
    return names


def _code(text: str) -> str:
    """An inline code span for a table cell (no cell may contain a pipe)."""
    if "|" in text or "`" in text or "\n" in text:
        raise ValueError(f"cannot put {text!r} into a table cell")
    return f"`{text}`"


def _spellings(gate) -> list[str]:
    """How an expression uses the gate: operator syntax and/or a call."""
    from symbp.gates import ALIASES, OPERATORS, callable_gates

    found = [_SYNTAX[op] for op, name in OPERATORS.items() if name == gate.name]
    found += _EXTRA_SPELLINGS.get(gate.name, [])
    args = ", ".join(_INPUT_NAMES[:gate.arity])
    params = "".join(f", {p}={default}" for p, default in gate.params)
    for name in [gate.name] + [a for a, target in ALIASES.items() if target == gate.name]:
        if name == gate.name and name not in callable_gates():
            continue
        found.append(f"{name}({args}{params})")
    return found


def _number(value: float) -> str:
    return f"{value:g}"


def _kinks(gate) -> str:
    """The exact local derivatives the tests check at the gate's kinks."""
    parts = []
    names = _INPUT_NAMES[:gate.arity]
    for point, expected in gate.kinks:
        at = ", ".join(f"{n} = {_number(v)}" for n, v in zip(names, point))
        got = ", ".join(f"d/d{n} = {_number(v)}" for n, v in zip(names, expected))
        parts.append(f"at {at}: {got}")
    return "<br>".join(parts)


def _scalar_row(gate) -> str:
    from symbp.derive import local_derivatives, placeholder
    from symbp.emit import SourcePrinter
    from symbp.gates import param_symbol

    # exactly what a graph node of this gate is differentiated as (symbp.graph, symbp.reverse):
    # the gate applied to placeholders (opaque gates stay calls), through local_derivatives
    args = [placeholder(k) for k in range(gate.arity)]
    params = [param_symbol(p) for p, _ in gate.params]
    rename = _renaming(gate)
    forward = gate.formula(*args, *params).xreplace(rename)
    derivatives = local_derivatives(gate.apply(*args, *params), gate.arity)
    derivatives = [d.xreplace(rename) for d in derivatives]
    local = "<br>".join(f"d/d{n}: {_code(sp.sstr(d))}" for n, d in zip(_INPUT_NAMES, derivatives))
    if gate.derivative is not None:
        local = "(the table's override)<br>" + local
    # the generated code prints these with symbp's printer: calls of stable helpers, floats
    printer = SourcePrinter()
    python = [f"out = {printer.value(gate.apply(*_inputs(gate), *params).xreplace(rename))}"]
    python += [f"d{n} = {printer.value(d)}" for n, d in zip(_INPUT_NAMES, derivatives)]
    cells = [_code(gate.name), "<br>".join(_code(s) for s in _spellings(gate)) or "(internal)",
             _code(sp.sstr(forward)), local, "<br>".join(_code(line) for line in python),
             _kinks(gate), gate.doc]
    return "| " + " | ".join(cells) + " |"


def _render(statements) -> list[str]:
    """Statements of an array gate (symbp.statements) as one line each."""
    from symbp.emit import SourcePrinter
    from symbp.statements import Code, Loop

    printer = SourcePrinter()
    index = "ijk"

    def ref(r) -> str:
        if not r.axes:
            return r.name
        return f"{r.name}[{', '.join('0' if a is None else index[a] for a in r.axes)}]"

    lines = []
    for s in statements:
        if isinstance(s, Code):
            lines.append(s.text + (f"  # {s.comment}" if s.comment else ""))
        elif isinstance(s, Loop):
            head = ", ".join(f"{index[k]} < {d}" for k, d in enumerate(s.shape))
            for a in s.body:
                value = a.value.xreplace({sym: sp.Symbol(ref(r), real=True) for sym, r in a.refs})
                text = printer.value(value)
                if a.upstream is not None:
                    text = f"({text}) * {ref(a.upstream)}"
                op = "+=" if a.add else "="
                note = f"  # {a.comment}" if a.comment else ""
                lines.append(f"for {head}: {ref(a.target)} {op} {text}{note}")
        else:
            raise TypeError(f"unexpected statement {s!r} from an array gate")
    return lines


def _shape(shape) -> str:
    from symbp.shapes import show

    return show(tuple(shape))


def _array_row(gate) -> str:
    from symbp.arrays import Site

    op = gate.array
    shapes, params = op.examples[0]
    shapes = tuple(tuple(s) for s in shapes)
    params = {p: params.get(p, default) for p, default in gate.params}
    out_shape = op.shape(shapes, params)
    names = tuple(_INPUT_NAMES[:gate.arity])
    grads = tuple(f"d{n}" for n in names)
    site = Site(out="out", args=names, shapes=shapes, out_shape=out_shape, params=params,
                dout="dout", dargs=grads, add=False, saved=op.saves or None)
    forward = _render(op.forward(site))
    adjoint, staged = [], []
    for position in range(gate.arity):
        if position not in op.labels + op.shape_only:
            adjoint += _render(op.adjoint(site, position))
            named = {}
            for label, text in op.staged(site, position):
                target = grads[position] if label is None else label
                staged.append(f"{target} = {text.format(**named)}")
                named[label] = label
    example = ", ".join(f"{n}: {_shape(s)}" for n, s in zip(names, shapes))
    example += f" → out: {_shape(out_shape)}"
    if any(v is not None for v in params.values()):
        example += " (" + ", ".join(f"{p}={v}" for p, v in params.items()) + ")"
    notes = [f"{names[k]}: integer labels, not differentiated" for k in op.labels]
    notes += [f"{names[k]}: read for its shape only, no gradient" for k in op.shape_only]
    if op.view:
        notes.append("a view: no buffer of its own")
    if op.saves:
        notes.append(f"keeps `{op.saves}` from the forward pass for the backward pass")
    cells = [_code(gate.name), "<br>".join(_code(s) for s in _spellings(gate)), example,
             "<br>".join(_code(line) for line in forward),
             "<br>".join(_code(line) for line in adjoint) or "(none)",
             "<br>".join(_code(line) for line in staged) or "(none)",
             "; ".join([gate.doc] + notes)]
    return "| " + " | ".join(cells) + " |"


def gates_page() -> str:
    """docs/gates.md: one row per built-in gate of ``symbp.gates.GATES``."""
    from symbp.gates import GATES

    builtin = [g for g in GATES.values() if not g.custom]  # custom gates belong to a session
    scalar = [g for g in builtin if g.array is None]
    array = [g for g in builtin if g.array is not None]
    lines = [
        f"<!-- Generated from symbp/gates.py by `{COMMAND}`: do not edit by hand. -->",
        "",
        "# Gates",
        "",
        f"This page is generated from the gate table, `symbp.gates.GATES`, by `{COMMAND}`; "
        "`tests/test_docs.py` fails when it is out of date. A gate is defined by one row of "
        "`symbp/gates.py` and nowhere else.",
        "",
        "## Scalar gates",
        "",
        "Inputs are called `a`, `b`; `out` is the gate's own output, cached by the forward "
        "pass. Each local derivative is the one the pipeline uses: SymPy's derivative of the "
        "forward formula, rewritten in terms of `out` (or as another stable gate) where that is "
        "cheaper (`symbp.derive.local_derivatives`). Only `max` and `min` override SymPy, to "
        "split ties. At a kink the `a <= 0` branch is taken; the kink column lists the exact "
        "values the tests check. The *as emitted* column is how the generated code writes the "
        "output and each local derivative `da` (before multiplying by the upstream gradient): "
        "calls are numerically stable helpers of `symbp.runtime` or Python builtins. Every "
        "scalar gate also works elementwise on arrays, broadcasting like NumPy.",
        "",
        "| gate | use | forward (SymPy) | local derivatives (SymPy) | as emitted (Python) "
        "| at kinks | description |",
        "|---|---|---|---|---|---|---|",
        *[_scalar_row(g) for g in scalar],
        "",
        "## Array gates",
        "",
        "Array gates work on whole arrays; their shape rules and adjoints are code in "
        "`symbp/arrays.py`, referenced by their rows of the table. The columns show the "
        "statements each emits for its first test example (`B` is the batch dimension, `dout` "
        "the gradient arriving at the output, `da` the one passed to input `a`; helpers are "
        "those of `symbp.runtime`). The last flag of a helper call says whether it adds into "
        "the gradient (`True` when the input already received a contribution). The *staged "
        "adjoint* column is the same adjoint written as symbp input, with gates, the way "
        "`symbp.derivative` and `compile(..., order=2)` print it to differentiate it again; "
        "`expand` and `onehot` are the gates those texts need.",
        "",
        "| gate | use | example shapes | forward | adjoint | staged adjoint | description |",
        "|---|---|---|---|---|---|---|",
        *[_array_row(g) for g in array],
        "",
    ]
    return "\n".join(lines)


# -- docs/img: the tutorial's circuit diagrams -------------------------------------------------

TUTORIAL = DOCS / "tutorial.md"
IMAGES = DOCS / "img"
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def save_dot_only(self, filename=None, directory=None, *args, outfile=None, **kwargs) -> str:
    """A stand-in for ``graphviz.Digraph.render`` that writes the DOT file alone
    (``img/NAME.gv`` for ``outfile="img/NAME.svg"``) and needs no Graphviz program."""
    target = Path(outfile if outfile is not None else f"{filename}.gv").with_suffix(".gv")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(self.source, encoding="utf-8")
    return str(target)


@functools.cache
def tutorial_diagrams() -> dict[str, str]:
    """The DOT text of every diagram the tutorial renders, by file stem.

    Runs the tutorial's python blocks in a scratch folder with ``render`` writing only the DOT
    file (``img/NAME.gv``), so no Graphviz program is needed to check that the diagrams are
    current; :func:`write` renders the SVGs from them.
    """
    import graphviz

    namespace = {"__name__": "__docs__"}
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch, \
            mock.patch.object(graphviz.Digraph, "render", save_dot_only), \
            contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.chdir(scratch)
        try:
            for code in _PYTHON_BLOCK.findall(TUTORIAL.read_text(encoding="utf-8")):
                exec(compile(code, str(TUTORIAL), "exec"), namespace)
            return {p.stem: p.read_text(encoding="utf-8")
                    for p in sorted(Path(scratch, "img").glob("*.gv"))}
        finally:
            os.chdir(here)


def _render_svg(dot_file: Path) -> None:
    """``img/NAME.svg`` from ``img/NAME.gv`` with the Graphviz program."""
    svg = dot_file.with_suffix(".svg")
    try:
        subprocess.run(["dot", "-Tsvg", str(dot_file), "-o", str(svg)], check=True)
    except FileNotFoundError:
        raise SystemExit(f"rendering {_shown(svg)} needs the Graphviz program `dot` "
                         "(apt-get install graphviz)") from None


# -- the list of generated files --------------------------------------------------------------

ARTIFACTS: list[tuple[Path, Callable[[], Content]]] = [
    (DOCS / "gates.md", gates_page),
]
"""Every generated file and the function producing its content (the diagrams: artifacts())."""


def artifacts() -> list[tuple[Path, Callable[[], Content]]]:
    """:data:`ARTIFACTS` and the DOT file of every tutorial diagram (its SVG follows it)."""
    diagrams = [(IMAGES / f"{name}.gv", functools.partial(lambda n: tutorial_diagrams()[n], name))
                for name in tutorial_diagrams()]
    return ARTIFACTS + diagrams


def _encoded(content: Content) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def stale(entries=None) -> list[Path]:
    """The generated files whose content differs from what their producer gives now (and
    diagrams whose SVG is missing)."""
    out = []
    for path, produce in artifacts() if entries is None else entries:
        if not path.exists() or path.read_bytes() != _encoded(produce()):
            out.append(path)
        elif path.suffix == ".gv" and not path.with_suffix(".svg").exists():
            out.append(path.with_suffix(".svg"))
    return out


def write(entries=None) -> list[Path]:
    """Rewrite the out-of-date generated files (rendering the SVG of a changed diagram);
    return them."""
    written = []
    for path, produce in artifacts() if entries is None else entries:
        data = _encoded(produce())
        svg_missing = path.suffix == ".gv" and not path.with_suffix(".svg").exists()
        if path.exists() and path.read_bytes() == data and not svg_missing:
            continue  # untouched files keep their mtime
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
        if path.suffix == ".gv":
            _render_svg(path)
            written.append(path.with_suffix(".svg"))
    return written


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: write the generated files, or with ``--check`` only report stale ones."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing the files that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        old = stale()
        for path in old:
            print(f"out of date: {_shown(path)} (run {COMMAND})")
        return 1 if old else 0
    for path in write():
        print(f"wrote {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
