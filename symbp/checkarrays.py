"""``Function.check`` for functions of arrays: every generated backward statement, run alone.

The reverse sweep is run again (it must give the Function's own source, else the check
refuses: a gate was redefined since compiling) and its statements are executed one at a time
as the plain Python they print as (the ``jit=False`` code, float64), on the buffers of the
Function's own ``value_and_grad_buffers``. Each backward statement belongs to one forward gate
``k`` and one of its inputs ``a`` (its comment ``(step) gate: dk/da``); it is checked at the
point by what it writes, against a central difference of gate ``k``'s forward computation:

* an elementwise loop line (``dsum[i, j] = (0.0 if sum[i, j] <= 0 else 1.0) * dh[i, j]``):
  its local derivative at every element, evaluated as the line prints it, against a central
  difference of the gate's scalar formula at that element in 50-digit arithmetic (mpmath), as
  the scalar check does; the worst element is reported with its index, so a kink (relu at
  exactly 0) or a precision loss shows at the element where it happens. A line that sums over
  broadcast axes (``db[j] += dsum[i, j]``) is also checked as a whole: the sum it writes against
  the sum of the 50-digit local derivatives times its upstream.
* an array gate's adjoint (matmul, transpose, sum, mean, softmax, log_softmax, logsumexp,
  softmax_cross_entropy, hinge, and any array gate of the table): the vector-Jacobian product
  it writes, given the actual upstream gradient and, run again, a random one, against
  ``J^T upstream``, with ``J`` the Jacobian of the gate's own generated forward code by central
  differences in float64 extrapolated to step 0 by Ridders' method (steps 1/4, 1/8, ...,
  times ``max(1, |x| / 2**20)``, a Neville tableau, stopped when the estimate settles or
  rounding takes over; per element the estimate that settled best, with its uncertainty, to
  which the forward's own rounding ``eps * |f| / step`` is added for the outputs a wide step
  moves at all): a linear gate (matmul, transpose, sum, mean) is exact at the second step but
  for rounding, about 1e-15; softmax and the losses come to about 1e-15 absolute. Float64 and
  not mpmath because the forward code of an array gate is the runtime's float64 helpers (no
  50-digit twin exists, and one per gate would be a second gate table); a precision loss inside
  an array gate's forward is therefore not seen, a wrong adjoint is, and so is a precision
  loss in an adjoint (the forward helpers are exact where one entry dominates: the 8.5e-18 of
  softmax cross-entropy at [0, -40, -40] is resolved to 1e-10). The error is relative per
  element, ``|symbp - numeric| / |numeric|``, reported at the worst element, except where the
  numeric value is within ``FLOOR`` times its own uncertainty of 0 (a sum that cancels): there
  the difference is measured against that.

Cost: one 50-digit formula evaluation pair per element of every elementwise line and 6 (linear
gates) to about 20 forward runs of a gate per element of each differentiated array input; about
0.1-0.2 s for an MLP of 20x5 inputs, 8 hidden units and 3 classes (docs/tutorial.md).
"""

from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import sympy as sp

from .checker import _PRINT, Local, LocalReport, _central, central_digits, step_scale
from .derive import OUT, local_derivatives, placeholder
from .emit import _Arrays, _comment, emit, statement
from .errors import CallError, SymbpError
from .gates import GATES
from .names import KERNEL_NAME
from .naming import dim_names, gradient_names, value_names
from .parse import parse
from .reverse import _arg_refs, sweep
from .statements import Accumulate, Code, Loop, LoopAssign, Ref

DIGITS = 50
"""Digits of the elementwise lines' central differences (as the scalar check)."""

LOCAL_TOLERANCE = 1e-12
"""A local derivative evaluated in float64 agrees with the 50-digit reference to this."""

VJP_TOLERANCE = 1e-8
"""An array gate's vector-Jacobian product agrees, norm-wise, with the float64 Ridders
reference to this (the reference itself is good to about 1e-12)."""

CONVERGED = 1e-14
"""Ridders' extrapolation stops when its estimate changes by less than this (relative)..."""

ROUGH = 1e-8
"""... or, once it changes by less than this, when the tableau's diagonal grows again (rounding
taking over); not before: a kink within the wide steps (a hinge's margin) makes it grow too,
and smaller steps pass it."""

EPS = 2.0 ** -52

ROUNDING = 16 * EPS
"""Relative rounding allowed a float64 sum of products (the adjoint's own, the contraction's)."""

FLOOR = 1e10
"""An array gate's element whose reference value is below FLOOR times the reference's own
uncertainty there is judged against that instead (1 / VJP_TOLERANCE, and a margin of 100 for
an uncertainty estimated low): a sum that cancels to near 0 is no false alarm, a tiny element
the reference resolves (a dominant softmax entry's 8.5e-18) is checked to its last digits."""

PROBE = 2.0 ** 1000
"""The step that tells the outputs depending on an input element from those that do not."""

_STEP = re.compile(r"^\((\d+)\)")


def check_arrays(f, given: dict) -> LocalReport:
    """``f.check(...)`` for a Function of arrays (see the module notes)."""
    expr, inputs, shapes, _ = f.request
    graph = parse(expr, inputs, shapes)
    names = value_names(graph)
    grads = gradient_names(names)
    wrt = tuple(graph.inputs[graph.input_names.index(w)] for w in f.wrt)
    program = sweep(graph, names, grads, wrt, dim_names(graph, names + grads))
    if not _body(f.source).startswith(_body(emit(program, ""))):  # order=2 appends comments
        raise SymbpError("this Function's code is not what symbp derives now (a gate was "
                         "redefined since it was compiled): compile it again to check it")
    run = _Run(graph, names, grads, program, f, _inputs(f, given))
    return LocalReport(tuple(sorted(run.check(), key=lambda x: -x.error)))


def _body(source: str) -> str:
    """The module without its title comments."""
    return source[source.find("\nimport math"):]


def _inputs(f, given: dict) -> tuple:
    """The inputs as a call converts and checks them, float arrays in float64, all finite."""
    values = []
    for (name, shape, integer), value in zip(f.signature, f._values(given)):
        if shape and not integer:
            value = np.array(value, dtype=np.float64)
        if not integer and not np.all(np.isfinite(value)):
            raise CallError(f"input {name!r} must hold finite numbers to be checked")
        values.append(value)
    return tuple(values)


class _Run:
    """The generated statements, executed one by one in one namespace (the kernel's locals)."""

    def __init__(self, graph, names, grads, program, f, values: tuple) -> None:
        self.graph, self.names, self.grads = graph, names, grads
        module = getattr(f.kernel, "py_func", f.kernel).__globals__  # the generated module's
        self.globals = dict(module)  # math, np and the runtime helpers the code calls
        buffers = [b.name for b in program.grad_buffers + program.work_buffers]
        self.ns = dict(self.globals)
        self.ns.update(zip(program.params, values))
        self.ns.update(zip(buffers, module[f"{KERNEL_NAME}_buffers"](*values)))
        for _, var, code in program.dims:
            self.ns[var] = eval(code, self.ns)  # noqa: S307  generated: X.shape[0]
        self.buffers = set(buffers)
        self.looper = _Arrays(program, _PRINT)
        self.steps = [k for k, node in enumerate(graph.nodes) if node.gate != "input"]
        self.forward: dict[int, list[str]] = {}
        k = None
        for s in program.forward:
            k = self._node(s) if self._node(s) is not None else k
            text = self._code(s)
            self.forward.setdefault(k, []).append(text)
            self._exec(text, self.ns)
            self._finite(s)
        self.forward_code = {k: compile("\n".join(t), "<symbp check>", "exec")
                             for k, t in self.forward.items()}
        self.pieces = self._pieces(program.backward)
        self.rng = np.random.default_rng(0)

    # --- statements -----------------------------------------------------------------------

    def _finite(self, s) -> None:
        """Refuse a forward statement that leaves a value not finite (an overflow): no line
        can be checked against a difference of infinities."""
        k = self._node(s)
        if k is None:
            return
        value = self.ns.get(self.names[k])
        if isinstance(value, (float, np.ndarray)) and not np.all(np.isfinite(value)):
            raise CallError(f"the forward value {self.names[k]} is not finite at this point "
                            f"({self._line(s)}): the check needs finite values")

    def _code(self, s) -> str:
        if isinstance(s, Loop):
            return "\n".join("    " * depth + code for depth, code, _ in self.looper.loop(s))
        if isinstance(s, Code):
            return s.text
        return statement(_PRINT, s)

    def _line(self, s) -> str:
        """A statement as the generated source shows it (a loop: its body line)."""
        if isinstance(s, Loop):
            code, comment = self.looper.body_line(s.body[0])
        elif isinstance(s, Code):
            code, comment = s.text, s.comment
        else:
            code, comment = statement(_PRINT, s), _comment(s, _PRINT)
        return f"{code}  # {comment}" if comment else code

    @staticmethod
    def _comment_of(s) -> str:
        return s.body[0].comment if isinstance(s, Loop) else s.comment

    def _node(self, s) -> int | None:
        match = _STEP.match(self._comment_of(s))
        return self.steps[int(match.group(1)) - 1] if match else None

    def _exec(self, code: str, ns: dict) -> None:
        try:
            exec(compile(code, "<symbp check>", "exec"), ns)  # noqa: S102  generated code
        except (ArithmeticError, ValueError) as exc:
            if "label out of range" in str(exc):
                raise CallError("a label is outside 0 .. (number of classes - 1)") from None
            raise CallError(f"the generated line {code.splitlines()[-1].strip()!r} cannot be "
                            f"evaluated as Python at this point ({exc})") from None

    def _pieces(self, backward) -> list:
        """``[(k, a, statements)]``: each gate's contribution to each input's gradient, in the
        backward order; ``k`` None for statements of no gate (the seed, zero fills)."""
        pieces: list = []
        by_key: dict = {}
        for s in backward:
            parts = [Loop(s.shape, (item,)) for item in s.body] if isinstance(s, Loop) \
                and any(item.upstream is not None for item in s.body) else [s]
            for part in parts:
                k = self._node(part)
                a = self._input(k, self._comment_of(part)) if k is not None else None
                if k is None and pieces and pieces[-1][0] is not None \
                        and not isinstance(part, Accumulate):
                    pieces[-1][2].append(part)  # an array gate's later statements
                elif k is not None and a is not None and (k, a) in by_key:
                    by_key[k, a][2].append(part)
                else:
                    piece = (k, a, [part])
                    pieces.append(piece)
                    if k is not None and a is not None:
                        by_key[k, a] = piece
        return pieces

    def _input(self, k: int, comment: str) -> int | None:
        """Which input of node ``k`` a statement's comment names (``dk/da``, ``da sums``)."""
        out = re.escape(self.names[k])
        for a in dict.fromkeys(self.graph.nodes[k].args):
            name = re.escape(self.names[a])
            if re.search(rf"\bd{out}/d{name}\b|\bd{name} sums over", comment):
                return a
        return None

    # --- the check ------------------------------------------------------------------------

    def check(self) -> list[Local]:
        found = []
        for k, a, statements in self.pieces:
            if k is not None and a is not None:
                node = self.graph.nodes[k]
                gate = GATES.get(node.gate)
                if gate is not None and gate.array is not None:
                    found.append(self._vjp(k, a, statements))
                elif node.shape:
                    found += self._elementwise(k, a, statements)
                else:
                    found += [self._scalar(k, a, s) for s in statements
                              if isinstance(s, Accumulate)]
            for s in statements:
                self._exec(self._code(s), self.ns)
        return found

    def _zero(self, a: int):
        value = self.ns[self.names[a]]
        return np.zeros(np.shape(value)) if np.ndim(value) else 0.0

    def _contribution(self, a: int, statements, **changes) -> np.ndarray:
        """What ``statements`` write to ``da`` when it starts at 0 (``changes``: other names
        rebound, the upstream gradient), the namespace itself unchanged."""
        ns = dict(self.ns)
        ns.update(changes)
        ns[self.grads[a]] = self._zero(a)
        for s in statements:
            self._exec(self._code(s), ns)
        return np.asarray(ns[self.grads[a]], dtype=np.float64)

    def _scalar(self, k: int, a: int, s: Accumulate) -> Local:
        node = self.graph.nodes[k]
        used = {str(x) for x in s.local.free_symbols} | {self.names[b] for b in node.args}
        values = {n: float(self.ns[n]) for n in used}
        value = float(eval(_PRINT.doprint(s.local), self.globals, values))  # noqa: S307
        numeric = _central(node, [self.names[b] for b in node.args], node.args.index(a), values)
        return Local(self._line(s), _PRINT.doprint(s.local), value, numeric,
                     _relative(value, numeric))

    def _elementwise(self, k: int, a: int, statements) -> list[Local]:
        node = self.graph.nodes[k]
        refs = _arg_refs(self.graph, self.names, k)
        own = sp.Symbol("_own", real=True)
        bind = {placeholder(p): sym for p, (sym, _) in enumerate(refs)}
        bind[OUT] = own
        locals_ = [d.xreplace(bind) for d in local_derivatives(node.formula, len(node.args))]
        numeric = _Mp(node.formula, len(node.args))
        shape = np.shape(self.ns[self.names[k]])
        upstream = np.asarray(self.ns[self.grads[k]], dtype=np.float64)
        items = []
        for s in statements:
            if isinstance(s, Loop):
                items.append((s, s.body[0]))
            elif isinstance(s, Code) and " = 1: the same array" in s.comment:  # dXW = dsum
                target = Ref(self.grads[a], refs[node.args.index(a)][1].axes)
                items.append((s, LoopAssign(target, sp.Integer(1), (), False, s.comment)))
        found = []
        for s, item in items:
            positions = [p for p, b in enumerate(node.args) if b == a]
            p = next((q for q in positions if locals_[q] == item.value), positions[0])
            code = compile(_PRINT.doprint(item.value), "<symbp check>", "eval")
            symbols = [(str(sym), ref) for sym, ref in item.refs]
            worst = (-1.0, None, 0.0, 0.0)
            target = np.zeros(np.shape(self.ns[self.names[a]]))
            for idx in np.ndindex(shape):
                env = {name: self._element(ref, idx) for name, ref in symbols}
                try:
                    value = float(eval(code, self.globals, env))  # noqa: S307
                except (ArithmeticError, ValueError) as exc:
                    raise CallError(f"the generated line {self._line(s)!r} cannot be evaluated "
                                    f"as Python at {list(idx)} ({exc})") from None
                exact = numeric(p, [self._element(ref, idx) for _, ref in refs])
                error = _relative(value, exact)
                if error > worst[0]:
                    worst = (error, idx, value, exact)
                target[self._at(item.target, idx)] += exact * upstream[idx]
            error, idx, value, exact = worst
            found.append(Local(self._line(s), _PRINT.doprint(item.value.xreplace(
                {sym: sp.Symbol(ref.name, real=True) for sym, ref in refs})
                .xreplace({own: sp.Symbol(self.names[k], real=True)})), value, exact, error,
                index=idx))
            if len(items) == 1 and sum(ax is not None for ax in item.target.axes) < len(shape):
                written = self._contribution(a, statements)
                error, idx = _normwise(written, target)
                if error > found[-1].error:
                    found[-1] = Local(self._line(s), "over the broadcast axes",
                                      float(written[idx]), float(target[idx]), error,
                                      index=idx, what="sum",
                                      reference="sum of 50-digit central differences")
        return found

    def _element(self, ref, idx) -> float:
        value = self.ns[ref.name]
        return float(value[self._at(ref, idx)]) if ref.axes else float(value)

    @staticmethod
    def _at(ref, idx) -> tuple:
        return tuple(0 if ax is None else idx[ax] for ax in ref.axes)

    def _vjp(self, k: int, a: int, statements) -> Local:
        upstream = self.ns[self.grads[k]]
        jacobian, uncertainty = self._jacobian(k, a)
        found = None
        for which, up in (("actual", upstream), ("random", self._random(upstream))):
            written = self._contribution(a, statements, **{self.grads[k]: up})
            up = np.asarray(up, dtype=np.float64)
            axes = up.ndim
            numeric = np.tensordot(up, jacobian, axes)
            # what the reference cannot resolve: its own error, and the rounding of a sum of
            # the products up * J in float64 (the adjoint's and the contraction's)
            noise = np.tensordot(np.abs(up), uncertainty, axes) + \
                ROUNDING * np.tensordot(np.abs(up), np.abs(jacobian), axes)
            error, idx = _elementwise_error(written, numeric, noise)
            if found is None or error > found.error:
                note = self._comment_of(statements[0]).split("; ", 1)
                found = Local(self._line(statements[0]) + (
                    f" (and {len(statements) - 1} more lines)" if len(statements) > 1 else ""),
                    note[1] if len(note) > 1 else f"of the {self.graph.nodes[k].gate} adjoint",
                    float(written[idx]), float(numeric[idx]), error, index=idx,
                    what="vector-Jacobian product", tolerance=VJP_TOLERANCE,
                    reference=f"float64 Ridders central difference ({which} upstream)")
        return found

    def _random(self, like):
        if np.ndim(like):
            return self.rng.standard_normal(np.shape(like))
        return float(self.rng.standard_normal())

    def _jacobian(self, k: int, a: int) -> tuple[np.ndarray, np.ndarray]:
        """d forward_k / d input a, shape ``out.shape + a.shape``, and its estimated error:
        central differences of the gate's generated forward code, extrapolated to step 0
        (:func:`_ridders`)."""
        code = self.forward_code[k]
        text = "\n".join(self.forward[k])
        written = [n for n in set(re.findall(r"\w+", text)) if n in self.buffers
                   and n not in {self.names[b] for b in self.graph.nodes[k].args}]
        name = self.names[a]
        base = np.array(self.ns[name], dtype=np.float64)

        def forward(x) -> np.ndarray:
            ns = dict(self.ns)
            ns[name] = x
            for n in written:
                ns[n] = np.empty_like(self.ns[n])
            self._exec_code(code, ns, text)
            return np.array(ns[self.names[k]], dtype=np.float64)

        def central(idx, step) -> np.ndarray:
            up, down = base.copy(), base.copy()
            up[idx] += step
            down[idx] -= step
            width = float(up[idx]) - float(down[idx])  # the step as float64 takes it
            if not base.ndim:
                up, down = float(up), float(down)
            return (forward(up) - forward(down)) / width

        value = forward(base.copy() if base.ndim else float(base))
        out_shape = np.shape(value)
        jacobian = np.empty(out_shape + base.shape)
        uncertainty = np.empty(out_shape + base.shape)
        for idx in np.ndindex(base.shape):
            h = 0.25 * max(1.0, abs(float(base[idx])) * 2.0 ** -20)
            column, error, step = _ridders(lambda step, idx=idx: central(idx, step), h)
            jacobian[(...,) + idx] = column
            # the forward's own rounding, eps * |f| over the smallest step, which the tableau
            # cannot see when it absorbs a change entirely (30 + 1e-13 is 30 in float64), for
            # the outputs that depend on this element at all: those a step of 2**1000 moves
            # (to inf or NaN too); the others are the same bits, whatever the step
            try:
                with np.errstate(all="ignore"):  # it overflows, as it may
                    moved = central(idx, PROBE) != 0
            except CallError:  # the gate cannot go that far (log1p(-inf)): all may depend
                moved = True
            rounding = np.where(moved, 4 * EPS * np.abs(value) / step, 0.0)
            uncertainty[(...,) + idx] = np.maximum(error, rounding)
        return jacobian, uncertainty

    def _exec_code(self, code, ns: dict, text: str) -> None:
        try:
            exec(code, ns)  # noqa: S102  generated code
        except (ArithmeticError, ValueError) as exc:
            raise CallError(f"the generated forward code {text.splitlines()[0]!r} cannot be "
                            f"evaluated near this point ({exc})") from None


class _Mp:
    """A formula over placeholders as an mpmath function (opaque gates expanded into their
    formulas), and its central difference in ``DIGITS`` digits."""

    def __init__(self, formula: sp.Expr, arity: int) -> None:
        self.formula, self.arity = formula, arity
        expanded = formula
        for _ in range(20):  # a custom gate's formula may call other opaque gates
            opaque = [e for e in expanded.atoms(sp.Function)
                      if getattr(e.func, "symbp_gate", None) is not None]
            if not opaque:
                break
            expanded = expanded.xreplace({e: e.func.symbp_gate.formula(*e.args)
                                          for e in opaque})
        try:
            self.function = sp.lambdify([placeholder(q) for q in range(arity)], expanded,
                                        modules="mpmath")
        except Exception:  # noqa: BLE001  anything lambdify cannot print: SymPy evaluates it
            self.function = None

    def __call__(self, p: int, args: list[float]) -> float:
        if self.function is None:
            return _central(_Formula(self.formula), list(range(self.arity)), p,
                            dict(enumerate(args)))
        # 3 digits more: the difference at h/10, extrapolated with the one at h (as
        # symbp.checker._central), keeps those of one at h
        with mpmath.workdps(central_digits(args, p, DIGITS) + 3):
            x = [mpmath.mpf(v) for v in args]
            h = mpmath.mpf(10) ** -20 * mpmath.mpf(step_scale(args[p]))
            try:
                coarse, order, size = self._difference(x, p, h)
                fine, _, fine_size = self._difference(x, p, h / 10)
                if isinstance(coarse, mpmath.mpc) or isinstance(fine, mpmath.mpc):
                    return math.nan
                value = (10 ** order * fine - coarse) / (10 ** order - 1)
                noise = max(size, fine_size) * mpmath.mpf(10) ** (3 - mpmath.mp.dps)
                return 0.0 if abs(value) <= noise else float(value)  # 0 within rounding
            except (ArithmeticError, ValueError, TypeError):
                return math.nan

    def _difference(self, x: list, p: int, h) -> tuple:
        """The difference at step h, its order in h and its rounding scale (the larger value
        over the step): central, or one-sided at the edge of the domain (x**2.5 at 0)."""
        up, down = list(x), list(x)
        up[p] += h
        down[p] -= h
        high, low, order = self.function(*up), self.function(*down), 2
        if isinstance(low, mpmath.mpc) and not isinstance(high, mpmath.mpc):
            low, h, order = self.function(*x), h / 2, 1
        elif isinstance(high, mpmath.mpc) and not isinstance(low, mpmath.mpc):
            high, h, order = self.function(*x), h / 2, 1
        return (high - low) / (2 * h), order, max(abs(high), abs(low)) / h


class _Formula:
    """A node-like holder of a formula for :func:`symbp.checker._central`."""

    def __init__(self, formula: sp.Expr) -> None:
        self.formula = formula


def _ridders(central, h: float, levels: int = 10) -> tuple[np.ndarray, np.ndarray, float]:
    """Ridders' extrapolation of ``central(step)`` (an array) to step 0, its estimated error
    and the smallest step taken: steps ``h, h/2, h/4...``, each new difference extrapolated
    through the earlier ones (a Neville tableau); per element the estimate that changed least
    is kept, that change its error. It stops once the largest error is below ``CONVERGED``
    times the largest estimate (a linear gate: at the second step, exact but for rounding) or,
    below ``ROUGH``, once the tableau's diagonal grows again (rounding has taken over).
    Numerical Recipes' ``dfridr``."""
    table = [[central(h)]]
    best, error = table[0][0], np.full(np.shape(table[0][0]), np.inf)
    for i in range(1, levels):
        h /= 2
        row = [central(h)]
        factor = 4.0
        for j in range(1, i + 1):
            row.append((row[j - 1] * factor - table[i - 1][j - 1]) / (factor - 1))
            factor *= 4
            change = np.maximum(np.abs(row[j] - row[j - 1]),
                                np.abs(row[j] - table[i - 1][j - 1]))
            better = change <= error
            best, error = np.where(better, row[j], best), np.where(better, change, error)
        table.append(row)
        worst, scale = _norm(error), _norm(best)
        if worst <= CONVERGED * scale or worst <= ROUGH * scale and \
                _norm(row[i] - table[i - 1][i - 1]) >= 2 * worst:
            break
    return best, error, h


def _norm(x) -> float:
    return float(np.max(np.abs(x), initial=0.0))


def _relative(value: float, numeric: float) -> float:
    """|value - numeric| / |numeric| (0 when equal; inf when either is not a number)."""
    if value == numeric:
        return 0.0
    if not (math.isfinite(value) and math.isfinite(numeric)):
        return math.inf
    return abs(value - numeric) / max(abs(numeric), 1e-300)


def _normwise(found: np.ndarray, numeric: np.ndarray) -> tuple[float, tuple]:
    """``max |found - numeric| / max |numeric|`` and the index of the largest difference."""
    found, numeric = np.asarray(found, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if found.shape != numeric.shape:
        return math.inf, ()
    difference = np.abs(found - numeric)
    if not np.all(np.isfinite(difference)):
        difference = np.where(np.isfinite(difference), difference, np.inf)
    idx = np.unravel_index(int(np.argmax(difference)), difference.shape) if difference.ndim \
        else ()
    worst = float(difference[idx])
    if worst == 0:
        return 0.0, tuple(int(i) for i in idx)
    scale = float(np.max(np.abs(numeric)))
    return (worst / scale if scale > 0 else math.inf), tuple(int(i) for i in idx)


def _elementwise_error(found: np.ndarray, numeric: np.ndarray,
                       noise: np.ndarray) -> tuple[float, tuple]:
    """The largest ``|found - numeric| / max(|numeric|, FLOOR * noise)`` and its index: a
    relative error per element, except where the reference's value is within ``FLOOR`` times
    its own uncertainty ``noise`` of 0 (a sum that cancels), measured against that instead."""
    found, numeric = np.asarray(found, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if found.shape != numeric.shape:
        return math.inf, ()
    difference = np.abs(found - numeric)
    difference = np.where(np.isnan(difference), np.inf, difference)
    scale = np.maximum(np.abs(numeric), FLOOR * noise)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(difference == 0, 0.0, difference / np.where(scale > 0, scale, 1e-300))
    idx = np.unravel_index(int(np.argmax(error)), error.shape) if error.ndim else ()
    return float(error[idx]), tuple(int(i) for i in idx)
