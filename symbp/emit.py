"""Statements -> CS231n-style Python source, printed by a SymPy code printer subclass."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from . import __version__, runtime
from .errors import CompileError
from .names import in_float_range
from .naming import KERNEL_NAME, VALUE_NAME
from .statements import Accumulate, Assign, Buffer, Code, Loop, LoopAssign, Program, Ref

RUNTIME_HASH = hashlib.sha256(Path(runtime.__file__).read_bytes()).hexdigest()[:12] + \
    ("" if runtime.BLAS else ", no BLAS")
"""Fingerprint of the runtime helpers (and whether SciPy's BLAS is there), written into every
module so that a change recompiles instead of loading a stale Numba cache."""

_COMMENT_COLUMN = 48


class SourcePrinter(PythonCodePrinter):
    """Prints SymPy expressions as Python that runs both as is and under Numba.

    Opaque gates print as calls (``sigmoid(y)``), piecewise derivatives as conditional
    expressions, floats with ``repr`` (round-trip exact), and ``math.`` before math functions.
    """

    def __init__(self) -> None:
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})

    def _print_Float(self, expr: sp.Float) -> str:
        return _literal(expr)

    def _print_Rational(self, expr: sp.Rational) -> str:
        if not _in_range(expr):
            return _literal(expr)
        return repr(float(expr)) if _exact_float(expr) else f"{expr.p}/{expr.q}"

    def _print_Infinity(self, expr) -> str:
        return "math.inf"  # the same in Python and under Numba

    def _print_NegativeInfinity(self, expr) -> str:
        return "(-math.inf)"

    def _print_NaN(self, expr) -> str:
        return "math.nan"

    def _print_Half(self, expr) -> str:
        return "0.5"

    def _print_Mul(self, expr: sp.Mul) -> str:
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_Number and not _in_range(coeff) and _in_range(1 / coeff) and rest != 1:
            # x/1e-320: SymPy holds x*1e320, beyond float64; the division is exact
            return f"{self.parenthesize(rest, PRECEDENCE['Mul'])}/{_literal(1 / coeff)}"
        if coeff.is_Rational and not _exact_float(coeff):  # x/3, not (1/3)*x: exact as written
            return f"{self.parenthesize(coeff.p * rest, PRECEDENCE['Mul'])}/{coeff.q}"
        return super()._print_Mul(expr)

    def _print(self, expr, **kwargs) -> str:
        if isinstance(expr, sp.Function) and getattr(expr, "symbp_gate", None) is not None:
            return self._print_Function(expr)  # before SymPy's own _print_tanh and the like
        return super()._print(expr, **kwargs)

    def _print_Function(self, expr: sp.Function) -> str:
        gate = getattr(expr.func, "symbp_gate", None)
        if gate is not None:
            return f"{gate.call}({', '.join(self._print(a) for a in expr.args)})"
        return super()._print_Function(expr)

    def parenthesize(self, item, level, strict=False) -> str:
        if isinstance(item, sp.Basic) and _exact_float(item) and not item.is_negative:
            return self._print(item)  # a float literal needs no parentheses
        return super().parenthesize(item, level, strict)

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        parts = []  # branches print bare numbers as floats, so both branches have one type
        for value, cond in expr.args:
            if cond == sp.true:
                parts.append(self.value(value))
                break
            parts.append(f"{self.value(value)} if {self._print(cond)} else")
        return f"({' '.join(parts)})"

    def _print_Relational(self, expr) -> str:
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def value(self, expr: sp.Expr) -> str:
        """A whole right-hand side: a bare number prints as a float (``0.0``, not ``0``)."""
        if expr.is_Number:
            return _literal(expr)
        return self.doprint(expr)


def _exact_float(number) -> bool:
    """A number whose float literal is exact (1, 0.5, 2.5; not 1/3)."""
    if number.is_Float or number.is_Integer:
        return True
    return bool(number.is_Rational) and _in_range(number) and \
        sp.Rational(float(number)) == number


_in_range = in_float_range


def _literal(number) -> str:
    """A number as a float literal; beyond float64, what float64 rounds it to, written so that
    Python and Numba both read it (``math.inf``, not ``inf``)."""
    try:
        value = float(number)
    except OverflowError:
        value = math.inf if number > 0 else -math.inf
    if math.isinf(value):
        return "math.inf" if value > 0 else "(-math.inf)"
    if math.isnan(value):
        return "math.nan"
    return repr(value)


def statement(printer: SourcePrinter, s: Assign | Accumulate) -> str:
    """One line of code, without its comment."""
    if isinstance(s, Assign):
        return f"{s.target} = {printer.value(s.value)}"
    return f"{s.target} {'=' if s.first else '+='} {_product(printer, s.local, s.upstream)}"


def _product(printer: SourcePrinter, local: sp.Expr, upstream: str | None) -> str:
    """``local * upstream`` as the notes write it: ``(2*xpy) * dxpysqr``."""
    if upstream is None:
        return printer.value(local)
    if local == 1:
        return upstream
    if local == -1:
        return f"-{upstream}"
    if local.is_Number and not _in_range(local) and _in_range(1 / local):
        return f"{upstream}/{_literal(1 / local)}"  # d(x/1e-320)/dx: exact as a division
    return f"{printer.parenthesize(local, PRECEDENCE['Mul'])} * {upstream}"


def _comment(s, printer: SourcePrinter) -> str:
    if isinstance(s, Accumulate):
        shown = s.upstream is not None and s.local not in (1, -1)
        return _noted(s.comment, s.note, s.local, printer, shown=shown)
    return _noted(s.comment, s.note, s.value, printer)


def _noted(text: str, note: str, expr: sp.Expr, printer: SourcePrinter,
           shown: bool = False) -> str:
    """A line's comment, then how it is computed for accuracy: the note of its node's gate,
    and for each call of a gate exact in its tails, its fast form and how the tails are
    computed. ``shown``: the comment goes on with `` = `` and ``expr`` (a local derivative),
    written in its fast form, the tail gate's note right after it."""
    calls = _tail_calls(expr)
    parts = [text] if text else []
    if shown:
        parts = [f"{text} = {printer.doprint(_off_the_tails(expr))}"]
    if note:
        parts.append(note)
    for call in calls:
        gate = call.func.symbp_gate
        arg = call.args[0]
        how = gate.note.format(x=printer.doprint(arg) if arg.is_Symbol else "x")
        if shown and len(calls) == 1:
            parts[0] += f", {how}"
        else:
            parts.append(f"{printer.doprint(call)} = "
                         f"{printer.doprint(gate.fast(*call.args))}, {how}")
    return "; ".join(parts)


def _is_tail_call(e) -> bool:
    """A call of a gate that branches to an exact form in its tails (``sigmoid_grad``)."""
    return isinstance(e, sp.Function) and \
        getattr(getattr(e.func, "symbp_gate", None), "tail", None) is not None


def _tail_calls(expr: sp.Expr) -> list:
    """The calls in ``expr`` of gates exact in their tails, in print order."""
    return sorted((f for f in expr.atoms(sp.Function) if _is_tail_call(f)),
                  key=sp.default_sort_key)


def _off_the_tails(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every such call replaced by its gate's formula off the tails (``fast``)."""
    return expr.replace(_is_tail_call, lambda e: e.func.symbp_gate.fast(*e.args))


def _expressions(program: Program):
    for s in program.forward + program.backward:
        if isinstance(s, Assign):
            yield s.value
        elif isinstance(s, Accumulate):
            yield s.local
        elif isinstance(s, Loop):
            yield from (a.value for a in s.body)


def _helpers(program: Program) -> list[str]:
    """Runtime helpers the statements call, in a fixed order."""
    used = set()
    for expr in _expressions(program):
        for f in expr.atoms(sp.Function):
            gate = getattr(f.func, "symbp_gate", None)
            if gate is not None and gate.call in runtime.__all__:
                used.add(gate.call)
            if gate is not None and gate.tail and any(isinstance(s, Loop) for s in
                                                      program.forward + program.backward):
                used.add(gate.tail)
    code = " ".join(s.text for s in program.forward + program.backward if isinstance(s, Code))
    called = set(re.findall(r"\b(\w+)\(", code))  # whole names: softmax( is not log_softmax(
    used.update(h for h in runtime.__all__ if h in called)
    return [h for h in runtime.__all__ if h in used]


class _Arrays:
    """Prints loops: index names, extents, indexed references."""

    def __init__(self, program: Program, printer: SourcePrinter) -> None:
        self.printer = printer
        self.extent = {d: var for d, var, _ in program.dims}
        taken = set(program.params) | {b.name for b in program.grad_buffers + program.work_buffers}
        taken |= set(self.extent.values()) | set(program.returns)
        self.index = []
        for base in ("i", "j", "tails"):
            while base in taken:
                base += "_"
            self.index.append(base)
        self.flag = self.index.pop()

    def ref(self, r: Ref) -> str:
        if not r.axes:
            return r.name
        return f"{r.name}[{', '.join('0' if a is None else self.index[a] for a in r.axes)}]"

    def texts(self, a: LoopAssign) -> dict:
        return {sym: sp.Symbol(self.ref(r), real=True) for sym, r in a.refs}

    def body_line(self, a: LoopAssign, fast: bool = False) -> tuple[str, str]:
        value = a.value.xreplace(self.texts(a))
        comment = _noted(a.comment, a.note, value, self.printer,
                         shown=a.upstream is not None and bool(_tail_calls(value)))
        if fast:
            fast_value = _off_the_tails(value)
            comment = f"{a.comment} off the tails" if fast_value != value else ""
            value = fast_value
        upstream = None if a.upstream is None else self.ref(a.upstream)
        code = f"{self.ref(a.target)} {'+=' if a.add else '='} " \
            f"{_product(self.printer, value, upstream)}"
        return code, comment

    def loop(self, s: Loop) -> list[tuple[int, str, str]]:
        """The loop nest; a body calling a gate that is exact in its tails (``tanh_grad``)
        runs each innermost row in one of two forms: the exact one if an entry of the row is
        in a tail, else the gate's fast form (``1 - t**2``), which vectorizes."""
        out = []
        inner = len(s.shape) - 1
        for depth, extent in enumerate(s.shape):
            extent = self.extent.get(extent, extent)
            out.append((depth, f"for {self.index[depth]} in range({extent}):", ""))
        calls = list(dict.fromkeys(c for a in s.body
                                   for c in _tail_calls(a.value.xreplace(self.texts(a)))))
        if not calls:
            return out + [(len(s.shape), *self.body_line(a)) for a in s.body]
        head = out.pop()
        names = sorted({c.func.symbp_gate.name for c in calls})
        out += [(inner, f"{self.flag} = False", f"is an entry of the row in the tails of "
                 f"{' or '.join(names)}? (never in float32)"), head]
        out += [(inner + 1, f"{self.flag} |= {c.func.symbp_gate.tail}("
                 f"{self.printer.doprint(c.args[0])})", "") for c in calls]
        out += [(inner, f"if {self.flag}:", ""), (inner + 1, head[1], "")]
        out += [(inner + 2, *self.body_line(a)) for a in s.body]
        out += [(inner, "else:", "the row computed in the fast form, which vectorizes"),
                (inner + 1, head[1], "")]
        out += [(inner + 2, *self.body_line(a, fast=True)) for a in s.body]
        return out


def _fuse(statements: tuple) -> list:
    """Merge neighbouring loops over one shape when every shared array is read and written at
    the same element (elementwise chains: one pass over memory instead of several)."""
    merged: list = []
    for s in statements:
        prev = merged[-1] if merged else None
        if isinstance(s, Loop) and isinstance(prev, Loop) and prev.shape == s.shape \
                and _independent(prev, s):
            merged[-1] = Loop(s.shape, prev.body + s.body)
        else:
            merged.append(s)
    return merged


def _independent(first: Loop, second: Loop) -> bool:
    full = tuple(range(len(first.shape)))
    written = {a.target.name for a in first.body + second.body}
    for a in first.body + second.body:
        refs = [r for _, r in a.refs] + [a.target] + ([a.upstream] if a.upstream else [])
        if any(r.name in written and r.axes != full for r in refs):
            return False  # a reduction or a transposed read: keep the loops apart
    return True


def _alloc(buffer: Buffer, extent: dict) -> str:
    dims = [str(extent.get(d, d)) for d in buffer.shape]
    shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
    return f"{buffer.name} = np.empty({shape}, dtype)"


def _tuple(names) -> str:
    """``a, b`` or ``a,``: always a tuple, also of one name."""
    return ", ".join(names) + ("," if len(names) == 1 else "")


def _points(program: Program) -> list[str]:
    """Loops over many points of a scalar program: serial, and parallel over cores."""
    taken = set(program.params) | set(program.returns)
    n = "n"
    while n in taken:
        n += "_"
    args = ", ".join(f"{p}[{n}]" for p in program.params)
    targets = ", ".join(f"{r}[{n}]" for r in program.returns)
    params = ", ".join(program.params + program.returns)
    out = []
    for suffix, loop in (("", "range"), ("_parallel", "prange")):
        out += ["", "", f"def {KERNEL_NAME}_points{suffix}({params}):",
                f'    """{KERNEL_NAME} at every point: all arguments are arrays of one length."""',
                f"    for {n} in {loop}({program.params[0]}.shape[0]):",
                (f"        {targets}{',' if len(program.returns) == 1 else ''} = "
                 f"{KERNEL_NAME}({args})")]
    return out


def emit(program: Program, title: str) -> str:
    """The complete module source (see :func:`_emit`); CompileError if SymPy cannot print a
    formula as code (the derive stage refuses the known cases first)."""
    try:
        return _emit(program, title)
    except PrintMethodNotImplementedError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CompileError(f"the generated code needs a function symbp cannot print ({first}); "
                           "rewrite the expression") from None


def _emit(program: Program, title: str) -> str:
    """The complete module source: imports, then the function(s) computing value and gradients.

    A scalar program is one function. A program with arrays is ``value_and_grad_into``, which
    writes every array into buffers it is given (no allocation: for training loops), and
    ``value_and_grad``, which allocates the buffers and calls it.
    """
    printer = SourcePrinter()
    arrays = bool(program.grad_buffers or program.work_buffers)
    lines = [f"# Generated by symbp {__version__} (runtime {RUNTIME_HASH}); do not edit.",
             *[f"# {t}" for t in title.splitlines()], "import math"]
    if arrays:
        lines += ["", "import numpy as np", "from numba.extending import register_jitable"]
    helpers = _helpers(program)
    if helpers:
        lines.append(f"from symbp.runtime import {', '.join(helpers)}")
    looper = _Arrays(program, printer)
    body: list[tuple[int, str, str]] = [(0, f"{var} = {code}", f"dimension {d}")
                                        for d, var, code in program.dims]
    for title_line, statements in (("# forward pass", program.forward),
                                   ("# backward pass", program.backward)):
        body.append((0, title_line, ""))
        for s in _fuse(statements):
            if isinstance(s, Loop):
                body += looper.loop(s)
            elif isinstance(s, Code):
                body.append((0, s.text, s.comment))
            else:
                body.append((0, statement(printer, s), _comment(s, printer)))
    width = min(max(len(code) + 4 * depth for depth, code, _ in body) + 2, _COMMENT_COLUMN)

    def render(items) -> list[str]:
        out = []
        for depth, code, comment in items:
            text = "    " * (depth + 1) + code
            out.append(f"{text.ljust(max(width + 4, len(text) + 2))}# {comment}" if comment
                       else text)
        return out

    if not arrays:
        lines[lines.index("import math") + 1:1] = [
            "", "from numba import prange", "from numba.extending import register_jitable"]
        lines += ["", "", "@register_jitable", f"def {KERNEL_NAME}({', '.join(program.params)}):",
                  f'    """Return ({", ".join(program.returns)})."""', *render(body),
                  f"    return {_tuple(program.returns)}"]
        return "\n".join(lines + _points(program)) + "\n"

    array_grads = {b.name for b in program.grad_buffers}
    scalar_returns = [r for r in program.returns if r not in array_grads]
    buffers = program.grad_buffers + program.work_buffers
    into = f"{KERNEL_NAME}_into"
    params = list(program.params) + [b.name for b in buffers]
    split = body.index((0, "# backward pass", ""))
    forward = body[:split]
    value = f"{VALUE_NAME}_into"
    if array_grads and scalar_returns == [program.returns[0]]:  # every gradient an array:
        # one function serves both (Numba compiles the forward pass once for a loop that
        # trains and predicts)
        lines += ["", "", "@register_jitable",
                  f"def {into}({', '.join(params)}, backward=True):",
                  (f'    """Write the gradients into {", ".join(sorted(array_grads))} and every '
                   f'intermediate into its buffer; return ({_tuple(scalar_returns)}).'),
                  '    With backward False, the forward pass alone (the gradients are not '
                  'written)."""',
                  *render([*forward, (0, "if not backward:", ""),
                           (1, f"return {_tuple(scalar_returns)}", "the forward pass alone"),
                           *body[split:]]),
                  f"    return {_tuple(scalar_returns)}"]
        lines += ["", "", "@register_jitable", f"def {value}({', '.join(params)}):",
                  ('    """The forward pass of value_and_grad_into alone (same buffers); return '
                   f'{program.returns[0]}."""'),
                  f"    return {into}({', '.join(params)}, False)[0]"]
    else:
        lines += ["", "", "@register_jitable", f"def {into}({', '.join(params)}):",
                  (f'    """Write the gradients into {", ".join(sorted(array_grads)) or "nothing"}'
                   f' and every intermediate into its buffer; return '
                   f'({_tuple(scalar_returns)})."""'),
                  *render(body), f"    return {_tuple(scalar_returns)}"]
        lines += ["", "", "@register_jitable", f"def {value}({', '.join(params)}):",
                  ('    """The forward pass of value_and_grad_into alone (same buffers); return '
                   f'{program.returns[0]}."""'),
                  *render(forward), f"    return {program.returns[0]}"]
    dtype = f"{program.dtype_source}.dtype" if program.dtype_source else "np.float64"
    lines += ["", "", "@register_jitable",
              f"def {KERNEL_NAME}_buffers({', '.join(program.params)}):",
              '    """Allocate the buffers of value_and_grad_into for these inputs."""',
              f"    dtype = {dtype}"]
    lines += [f"    {var} = {code}" for _, var, code in program.dims]
    lines += [f"    {_alloc(b, looper.extent)}" for b in buffers]
    lines += [f"    return {_tuple([b.name for b in buffers])}"]
    lines += ["", "", f"def {KERNEL_NAME}({', '.join(program.params)}):",
              f'    """Return ({", ".join(program.returns)}), allocating every buffer."""',
              f"    {_tuple([b.name for b in buffers])} = "
              f"{KERNEL_NAME}_buffers({', '.join(program.params)})",
              f"    {_tuple(scalar_returns)} = {into}({', '.join(params)})",
              f"    return {_tuple(program.returns)}"]
    return "\n".join(lines) + "\n"
