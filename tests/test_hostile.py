"""Hostile input: every string here must be refused with a SymbpError, and none may run.

symbp parses with Python's ``ast`` and a whitelist, never ``eval``/``exec``/``sympify``. Many
strings below carry a payload that would leave a trace if anything executed them (an environment
variable, a ``sys.modules`` entry, an attribute on ``builtins``, a file); an autouse fixture checks
after every test that no trace exists. All compiles use ``jit=False``: no Numba compilation.
"""

from __future__ import annotations

import builtins
import faulthandler
import gc
import io
import itertools
import os
import sys
import tempfile
import time

import numpy as np
import pytest
import sympy as sp

import symbp
from symbp.cli import main

# --- sentinels: what a payload would leave behind if it were ever executed -------------------
ENV = "SYMBP_HOSTILE_PWNED"
MOD = "symbp_hostile_pwned"
ATTR = "symbp_hostile_pwned"
FILE = os.path.join(tempfile.gettempdir(), f"symbp-hostile-pwned-{os.getpid()}")

P_ENV = f"__import__('os').environ.__setitem__('{ENV}', '1')"
P_MOD = f"__import__('sys').modules.__setitem__('{MOD}', 1)"
P_ATTR = f"setattr(__import__('builtins'), '{ATTR}', 1)"
P_FILE = f"open({FILE!r}, 'w').write('pwned')"
P_SYS = f"__import__('os').system('touch {FILE}')"


def _traces() -> list[str]:
    found = []
    if ENV in os.environ:
        found.append(f"environment variable {ENV}")
    if MOD in sys.modules:
        found.append(f"sys.modules[{MOD!r}]")
    if hasattr(builtins, ATTR):
        found.append(f"builtins.{ATTR}")
    if os.path.exists(FILE):
        found.append(f"file {FILE}")
    return found


@pytest.fixture(autouse=True)
def _nothing_executed():
    """Fail if a payload ran; turn a hang into a crash with a traceback rather than a stuck CI."""
    assert not _traces(), "trace present before the test"
    faulthandler.dump_traceback_later(60, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
    traces = _traces()
    # Clean up so one failure does not cascade into every later test.
    os.environ.pop(ENV, None)
    sys.modules.pop(MOD, None)
    if hasattr(builtins, ATTR):
        delattr(builtins, ATTR)
    if os.path.exists(FILE):
        os.remove(FILE)
    assert not traces, f"hostile input was executed: {traces}"


# --- the hostile strings ---------------------------------------------------------------------
HOSTILE: list[tuple[str, str]] = [
    # dunder access and __import__
    ("import-env", P_ENV),
    ("import-sysmodules", P_MOD),
    ("import-system", P_SYS),
    ("import-plus-x", f"x + {P_ENV}"),
    ("import-in-gate", f"sigmoid({P_MOD})"),
    ("import-bare", "__import__('os')"),
    ("subclasses", "().__class__.__bases__[0].__subclasses__()"),
    ("class-bases", "().__class__.__bases__"),
    ("int-mro", "(1).__class__.__mro__"),
    ("name-class", "x.__class__"),
    ("name-dict", "x.__dict__"),
    ("builtins-name", "__builtins__"),
    ("builtins-open", f"__builtins__.open({FILE!r}, 'w')"),
    ("dunder-name", "__name__ + x"),
    ("dunder-file", "__file__"),
    ("dunder-debug", "__debug__ * x"),
    ("dunder-loader", "__loader__"),
    # attribute access other than math./np. before a known gate
    ("attr-real", "x.real"),
    ("attr-os-system", "os.system('id')"),
    ("attr-sys-modules", "sys.modules"),
    ("attr-math-dict", "math.__dict__"),
    ("attr-math-unknown", "math.system(x)"),
    ("attr-math-nested", "math.math.exp(x)"),
    ("attr-np-nested", "np.linalg.norm(x)"),
    ("attr-np-random", "np.random.rand()"),
    ("attr-gate-globals", "sigmoid.__globals__"),
    ("attr-exp-code", "exp.__code__"),
    ("attr-math-exp-globals", "math.exp.__globals__"),
    ("attr-np-call", "np.exp.__call__(x)"),
    ("attr-on-call", "math.exp(x).real"),
    ("attr-on-paren", "(x + y).conjugate()"),
    ("attr-lower-call", "x.__add__(y)"),
    # calls of builtins
    ("open", P_FILE),
    ("eval", f"eval({P_ENV!r})"),
    ("exec", f"exec({P_ATTR!r})"),
    ("compile", "compile('1', 'f', 'eval')"),
    ("getattr", "getattr(x, '__class__')"),
    ("setattr", P_ATTR),
    ("delattr", "delattr(x, 'y')"),
    ("globals", "globals()"),
    ("locals", "locals()"),
    ("vars", "vars()"),
    ("dir", "dir()"),
    ("type", "type(x)"),
    ("print", "print(x)"),
    ("input", "input()"),
    ("breakpoint", "breakpoint()"),
    ("exit", "exit()"),
    ("help", "help()"),
    ("object", "object()"),
    ("chr", "chr(65)"),
    ("sum-range", "sum(range(10**9))"),
    # lambdas and comprehensions
    ("lambda", "lambda: 0"),
    ("lambda-called", f"(lambda: {P_ENV})()"),
    ("lambda-arg", "(lambda x: x)(x)"),
    ("listcomp", f"[{P_MOD} for _ in 'a']"),
    ("setcomp", "{x for x in y}"),
    ("dictcomp", "{x: y for x in z}"),
    ("genexp", "(x for x in y)"),
    ("genexp-sum", f"sum({P_ATTR} for _ in 'a')"),
    # f-strings, strings, bytes and other literals
    ("fstring", f'f"{{{P_FILE}}}"'),
    ("fstring-plain", 'f"{x}"'),
    ("str", "'abc'"),
    ("str-times", "'x' * 3"),
    ("str-plus", "x + 'a'"),
    ("bytes", "b'abc'"),
    ("complex", "x * 1j"),
    ("none", "None"),
    ("true", "True + x"),
    ("ellipsis", "..."),
    ("list", "[x, y]"),
    ("tuple", "(x, y)"),
    ("dict", "{x: y}"),
    ("set", "{x}"),
    # starred, walrus, subscripts, await, yield
    ("starred", "*x"),
    ("starred-tuple", "(*x,)"),
    ("starred-call", "exp(*x)"),
    ("doublestar-call", "exp(**x)"),
    ("walrus", "(y := x)"),
    ("walrus-import", f"(y := {P_ENV})"),
    ("subscript", "x[0]"),
    ("slice", "x[1:2]"),
    ("subscript-assign", "x[0] = 1\nx"),
    ("await", "await x"),
    ("yield", "yield x"),
    ("yield-paren", "(yield)"),
    # conditionals, comparisons, boolean and bitwise operators
    ("ifexp", "x if y else z"),
    ("compare", "x < y"),
    ("compare-eq", "x == y"),
    ("compare-chain", "x < y < z"),
    ("bool-and", "x and y"),
    ("bool-or", "x or y"),
    ("bool-not", "not x"),
    ("bit-or", "x | y"),
    ("bit-and", "x & y"),
    ("bit-shift", "x << 2"),
    ("bit-invert", "~x"),
    # statements
    ("import", "import os"),
    ("import-from", "from os import system"),
    ("import-after", "x\nimport os"),
    ("def", "def f(): pass"),
    ("async-def", "async def f(): pass"),
    ("class", "class A: pass"),
    ("for", "for i in x: pass"),
    ("while", "while 1: pass"),
    ("with", f"with open({FILE!r}, 'w') as g: pass"),
    ("if", "if x: y"),
    ("try", "try:\n    x\nexcept Exception:\n    y"),
    ("del", "del x"),
    ("global", "global x"),
    ("nonlocal", "nonlocal x"),
    ("assert", "assert x"),
    ("raise", "raise SystemExit"),
    ("return", "return x"),
    ("pass", "pass"),
    ("match", "match x:\n    case 1:\n        pass"),
    ("semicolon", "x; y"),
    ("semicolon-import", "y = x; import os\ny"),
    ("semicolon-assign", "a = x; b = a\nb"),
    ("multi-target", "a = b = x"),
    ("tuple-target", "a, b = x, y"),
    ("attr-target", "x.y = 1\nx"),
    ("augassign", "a += x"),
    ("augassign-staged", "a = x\na += y\na"),
    ("annassign", "a: float = x"),
    # staged lines that misuse names
    ("assign-gate-name", "sigmoid = x\nsigmoid"),
    ("assign-import", f"__import__ = x\n{P_ENV}"),
    ("assign-dunder", "__class__ = x\n__class__"),
    ("use-before-assign", "a = b * x\nb = x\na"),
    # gate calls with bad arguments
    ("gate-arity", "exp(x, y)"),
    ("gate-no-args", "sigmoid()"),
    ("gate-kw-payload", f"leaky_relu(x, slope={P_ENV})"),
    ("gate-kw-variable", "leaky_relu(x, slope=y)"),
    ("gate-kw-unknown", "exp(x, base=2)"),
    ("gate-kw-huge", "elu(x, alpha=1e999)"),
    ("unknown-function", "frobnicate(x)"),
    # empty and malformed
    ("empty", ""),
    ("blank", "   "),
    ("newline", "\n"),
    ("comment", "# just a comment"),
    ("syntax", "x +"),
    ("unbalanced", "(x + y"),
    ("null-byte", "x\x00"),
    ("null-in-payload", f"x\x00{P_ENV}"),
    # huge powers and constants
    ("pow-tower", "9**9**9**9"),
    ("pow-ten", "10**10**10"),
    ("pow-tower-x", "x * 9**9**9**9"),
    ("inf-literal", "1e999"),
    ("inf-times-x", "x * 1e999"),
    ("huge-int", "1" + "0" * 500),
    ("huge-int-x", "x + 1" + "0" * 500),
    # huge nesting and length
    ("parens-500", "(" * 500 + "x" + ")" * 500),
    ("sum-100000", "x" + "+x" * 100000),
    ("neg-10000", "-" * 10000 + "x"),
    ("calls-1000", "sigmoid(" * 1000 + "x" + ")" * 1000),
    ("pow-chain-5000", "x" + "**x" * 5000),
    ("long-name", "x" * 1_000_000),
    ("long-spaces", "x" + " " * 1_000_000),
    ("long-lines", "a = x\n" * 100_000 + "a"),
]

DEEP = {"parens-500", "sum-100000", "neg-10000", "calls-1000", "pow-chain-5000", "long-name",
        "long-spaces", "long-lines"}


def test_enough_hostile_strings():
    assert len(HOSTILE) >= 60
    assert len({name for name, _ in HOSTILE}) == len(HOSTILE), "duplicate test ids"


@pytest.mark.parametrize("text", [s for _, s in HOSTILE], ids=[n for n, _ in HOSTILE])
def test_refused(text):
    with pytest.raises(symbp.SymbpError) as info:
        symbp.compile(text, jit=False)
    assert str(info.value), "an error must say what is wrong"


@pytest.mark.parametrize("text", [s for n, s in HOSTILE if n in DEEP],
                         ids=[n for n, _ in HOSTILE if n in DEEP])
def test_deep_refused_quickly_without_recursion_or_memory_error(text):
    start = time.perf_counter()
    try:
        symbp.compile(text, jit=False)
    except (RecursionError, MemoryError) as exc:  # pragma: no cover - the failure we guard against
        pytest.fail(f"{type(exc).__name__} escaped instead of a SymbpError")
    except symbp.SymbpError:
        pass
    else:  # pragma: no cover
        pytest.fail("accepted")
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("depth", [20, 60])
@pytest.mark.parametrize("shape", ["parens", "neg", "sigmoid"])
def test_deep_but_plausible_compiles_or_refuses(shape, depth):
    """Moderately deep valid input either compiles or is refused: never a crash."""
    text = {"parens": "(" * depth + "x" + ")" * depth,
            "neg": "-" * depth + "x",
            "sigmoid": "sigmoid(" * depth + "x" + ")" * depth}[shape]
    try:
        f = symbp.compile(text, jit=False)
    except symbp.SymbpError:
        return
    assert f.inputs == ("x",)


def test_parse_error_shows_caret():
    with pytest.raises(symbp.SymbpError) as info:
        symbp.compile("x + __import__('os')", jit=False)
    assert "^" in str(info.value)


@pytest.mark.parametrize("kwargs", [
    {"wrt": [P_ENV]},
    {"wrt": ["x; import os"]},
    {"wrt": ["__class__"]},
    {"inputs": ["x", f"y);{P_ENV}#"]},
    {"inputs": ["x", "y", "__import__"]},
])
def test_hostile_names_in_wrt_and_inputs(kwargs):
    with pytest.raises(symbp.SymbpError):
        symbp.compile("x * y", jit=False, **kwargs)


@pytest.mark.parametrize("name, formula", [
    ("evil_env", P_ENV),
    ("evil_file", P_FILE),
    ("evil_lambda", "(lambda: 0)()"),
    ("evil_attr", "a.__class__"),
    ("__class__", "a"),
    ("import", "a"),
    ("os.system", "a"),
    ("evil name", "a"),
    ("evil_empty", ""),
    ("evil_pow", "a * 9**9**9**9"),
])
def test_hostile_custom_gates(name, formula):
    with pytest.raises(symbp.SymbpError):
        symbp.gate(name, formula)


# --- every door, one identifier check: each case is refused with a SymbpError in < 100 ms -----

BUDGET = 0.1
"""Seconds a refusal may take (the issue's requirement), measured inside the test."""

TEN_MB = 10_000_000


def _compile(expr, **kwargs):
    return lambda: symbp.compile(expr, jit=False, **kwargs)


def _gate(name, formula="a", **kwargs):
    return lambda: symbp.gate(name, formula, **kwargs)


def _deep_exp(depth: int):
    e = sp.Symbol("x")
    for _ in range(depth):
        e = sp.exp(e, evaluate=False)
    return e


X, Y = sp.symbols("x y")

# Each case is (id, builder): the builder runs before the clock starts (a 10 MB string or a
# 10,000-term SymPy sum is the input, not the work) and returns the call that must be refused.
DOORS: list[tuple[str, object]] = [
    # NFKC look-alikes: Python would read these as other names
    ("nfkc-issue-shapes-dim", lambda: _compile("sum(X*2) + sum(Y*3)",
                                               shapes={"X": ("\uff22",), "Y": ("B",)})),
    ("nfkc-shapes-dim-matrix", lambda: _compile("sum(W)", shapes={"W": (3, "\uff4a")})),
    ("nfkc-shapes-dim-ligature", lambda: _compile("sum(W)", shapes={"W": ("\ufb01",)})),
    ("nfkc-shapes-key", lambda: _compile("sum(X)", shapes={"\uff38": (3,)})),
    ("nfkc-inputs-math", lambda: _compile("x * y", inputs=["x", "\uff4d\uff41\uff54\uff48"])),
    ("nfkc-inputs-kelvin", lambda: _compile("K * x", inputs=["\u212a", "x"])),
    ("nfkc-inputs-superscript", lambda: _compile("x * y", inputs=["x", "y\u00b2"])),
    ("nfkc-wrt", lambda: _compile("x * y", wrt=["\uff58"])),
    ("nfkc-gate-name", lambda: _gate("\uff4d\uff41\uff54\uff48")),
    ("nfkc-gate-param", lambda: _gate("nfkc_param", "a * k", params={"\uff4b": 1.0})),
    ("nfkc-expr-dunder", lambda: _compile("\uff3f\uff3fimport\uff3f\uff3f('os')")),
    ("nfkc-sympy-symbol", lambda: _compile(sp.Symbol("\uff58") * 2)),
    # surrogates and control characters
    ("control-escape", lambda: _compile("x\x1b[2J + y")),
    ("control-delete", lambda: _compile("x +\x7f y")),
    ("control-vertical-tab", lambda: _compile("x\x0b+ y")),
    ("control-c1", lambda: _compile("x\x85+ y")),
    ("surrogate-expr", lambda: _compile("x\ud800")),
    ("surrogate-comment", lambda: _compile("x + y  # \udfff")),
    ("control-inputs", lambda: _compile("x", inputs=["x\x00"])),
    ("surrogate-wrt", lambda: _compile("x", wrt=["\ud800"])),
    ("control-shapes-dim", lambda: _compile("sum(x)", shapes={"x": ("B\x01",)})),
    ("control-gate-name", lambda: _gate("g\x1b")),
    ("surrogate-gate-formula", lambda: _gate("g_surrogate", "a\ud800")),
    ("surrogate-sympy-symbol", lambda: _compile(sp.Symbol("x\ud800") + 1)),
    # 10 MB strings
    ("10mb-name", lambda: _compile("x" * TEN_MB)),
    ("10mb-sum", lambda: _compile("x+" * (TEN_MB // 2) + "x")),
    ("10mb-comment", lambda: _compile("x  # " + "a" * TEN_MB)),
    ("10mb-payload", lambda: _compile(P_ENV + " " * TEN_MB)),
    ("10mb-inputs", lambda: _compile("x", inputs=["x" * TEN_MB])),
    ("10mb-many-inputs", lambda: _compile("x", inputs=["x"] * TEN_MB)),
    ("10mb-wrt", lambda: _compile("x", wrt=["x" * TEN_MB])),
    ("10mb-shapes-key", lambda: _compile("sum(x)", shapes={"x" * TEN_MB: (3,)})),
    ("10mb-shapes-dim", lambda: _compile("sum(x)", shapes={"x": ("B" * TEN_MB,)})),
    ("10mb-gate-name", lambda: _gate("g" * TEN_MB)),
    ("10mb-gate-formula", lambda: _gate("g_long", "a" * TEN_MB)),
    ("10mb-gate-param", lambda: _gate("g_long", "a", params={"k" * TEN_MB: 1.0})),
    ("10mb-sympy-symbol", lambda: _compile(sp.Symbol("x" * TEN_MB) + 1)),
    # duplicate parameters (Python refuses a parameter given twice)
    ("dup-leaky-positional-keyword", lambda: _compile("leaky_relu(x, 0.1, slope=0.2)")),
    ("dup-leaky-keyword-twice", lambda: _compile("leaky_relu(x, slope=1, slope=2)")),
    ("dup-elu", lambda: _compile("elu(x, 1.0, alpha=2.0)")),
    ("dup-staged", lambda: _compile("f = leaky_relu(x, 0.1, slope=0.2)")),
    ("dup-array-axis", lambda: _compile("sum(X, 0, axis=1)", shapes={"X": (2, 3)})),
    ("dup-gate-formula", lambda: _gate("g_dup", "leaky_relu(a, 0.1, slope=0.2)")),
    ("dup-inputs", lambda: _compile("x * y", inputs=["x", "x", "y"])),
    ("dup-wrt", lambda: _compile("x * y", wrt=["x", "x"])),
    # names the compiler itself uses in its formulas: refused (user names like math are escaped)
    ("clash-placeholder", lambda: _compile("x * _a0")),
    ("clash-placeholder-input", lambda: _compile("x * y", inputs=["x", "y", "_a1"])),
    ("clash-output-symbol", lambda: _compile("_out * x")),
    ("clash-loop-ref", lambda: _compile("_a0_ref + x")),
    ("clash-own", lambda: _compile("_own + x")),
    ("clash-param-symbol", lambda: _compile("_param_slope * x")),
    ("clash-staged-target", lambda: _compile("_out = x * 2\n_out")),
    ("clash-assign-pi", lambda: _compile("pi = x * 2\npi")),
    ("clash-gate-formula", lambda: _gate("g_clash", "a * _out")),
    ("clash-gate-param", lambda: _gate("g_clash", "a", params={"_out": 1.0})),
    ("clash-sympy-symbol", lambda: _compile(sp.Symbol("_a0") * X)),
    # wrong types
    ("type-inputs-int", lambda: _compile("x", inputs=5)),
    ("type-inputs-dict", lambda: _compile("x", inputs={"x": 1})),
    ("type-inputs-items", lambda: _compile("x", inputs=[1])),
    ("type-wrt-int", lambda: _compile("x", wrt=5)),
    ("type-wrt-none-item", lambda: _compile("x", wrt=[None])),
    ("type-jit", lambda: (lambda: symbp.compile("x", jit="no"))),
    ("type-expr", lambda: _compile(42)),
    ("type-expr-bytes", lambda: _compile(b"x + y")),
    # the SymPy path: the limits of strings, checked while walking, iteratively
    ("sympy-huge-integer", lambda: _compile(X * sp.Integer(10) ** 5000)),
    ("sympy-huge-rational", lambda: _compile(X * sp.Rational(10 ** 400, 3))),
    ("sympy-float-beyond-float64", lambda: _compile(X * sp.Float("1e400"))),
    ("sympy-deep-1100", lambda: _compile(_deep_exp(1100))),
    ("sympy-add-10000-products", lambda: _compile(sp.Add(*[sp.Symbol(f"a{k}") * sp.Symbol(f"b{k}")
                                                           for k in range(10_000)]))),
    ("sympy-dunder-symbol", lambda: _compile(sp.Symbol("__import__") * X)),
    ("sympy-space-symbol", lambda: _compile(sp.Symbol("x y") * X)),
    ("sympy-keyword-symbol", lambda: _compile(sp.Symbol("lambda") * X)),
    ("sympy-infinity", lambda: _compile(sp.oo * X)),
    ("sympy-complex", lambda: _compile(sp.I * X)),
    ("sympy-nan", lambda: _compile(X + sp.nan)),
    ("sympy-relational", lambda: _compile(sp.Eq(X, 1))),
    ("sympy-undefined-function", lambda: _compile(sp.Function("f")(X))),
    ("sympy-shapes", lambda: _compile(X * Y, shapes={"x": (3,)})),
    # shapes= keys and dimension names
    ("shapes-key-no-input", lambda: _compile("x * 2", shapes={"Q": (3,)})),
    ("shapes-key-no-input-declared", lambda: _compile("sum(x)", inputs=["x"],
                                                      shapes={"x": (3,), "Q": (3,)})),
    ("shapes-key-staged-target", lambda: _compile("q = x * 2\nq", shapes={"q": (3,)})),
    ("shapes-key-int", lambda: _compile("x", shapes={1: (3,)})),
    ("shapes-key-dunder", lambda: _compile("x", shapes={"__x": (3,)})),
    ("shapes-key-keyword", lambda: _compile("x", shapes={"for": (3,)})),
    ("shapes-not-dict", lambda: _compile("sum(x)", shapes=[("x", (3,))])),
    ("shapes-dim-zero", lambda: _compile("sum(x)", shapes={"x": (0,)})),
    ("shapes-dim-negative", lambda: _compile("sum(x)", shapes={"x": (-1,)})),
    ("shapes-dim-bool", lambda: _compile("sum(x)", shapes={"x": (True,)})),
    ("shapes-dim-huge", lambda: _compile("sum(x)", shapes={"x": (10 ** 400,)})),
    ("shapes-dim-float", lambda: _compile("sum(x)", shapes={"x": (2.5,)})),
    ("shapes-dim-space", lambda: _compile("sum(x)", shapes={"x": ("B C",)})),
    ("shapes-dim-dunder", lambda: _compile("sum(x)", shapes={"x": ("__B",)})),
    ("shapes-dim-keyword", lambda: _compile("sum(x)", shapes={"x": ("if",)})),
    ("shapes-dim-internal", lambda: _compile("sum(x)", shapes={"x": ("_out",)})),
    ("shapes-three-dims", lambda: _compile("sum(x)", shapes={"x": (1, 2, 3)})),
    ("shapes-endless", lambda: _compile("sum(x)", shapes={"x": itertools.count(1)})),
    ("shapes-ints-nfkc", lambda: (lambda: symbp.ints(("\uff22",)))),
    # gate names and parameters
    ("gate-name-int", lambda: _gate(5)),
    ("gate-name-empty", lambda: _gate("")),
    ("gate-name-space", lambda: _gate("a b")),
    ("gate-name-keyword", lambda: _gate("if")),
    ("gate-name-dunder", lambda: _gate("__init__")),
    ("gate-name-module", lambda: _gate("math")),
    ("gate-name-numpy", lambda: _gate("np")),
    ("gate-name-constant", lambda: _gate("pi")),
    ("gate-name-alias", lambda: _gate("maximum")),
    ("gate-name-builtin", lambda: _gate("sigmoid")),
    ("gate-name-internal", lambda: _gate("_out")),
    ("gate-param-int-name", lambda: _gate("g_param", "a * k", params={1: 1.0})),
    ("gate-param-huge", lambda: _gate("g_param", "a * k", params={"k": 10 ** 400})),
    ("gate-param-nan", lambda: _gate("g_param", "a * k", params={"k": float("nan")})),
    ("gate-param-inf", lambda: _gate("g_param", "a * k", params={"k": float("inf")})),
    ("gate-param-string", lambda: _gate("g_param", "a * k", params={"k": "1"})),
    ("gate-param-bool", lambda: _gate("g_param", "a * k", params={"k": True})),
    ("gate-param-dunder", lambda: _gate("g_param", "a", params={"__k": 1.0})),
    ("gate-param-keyword", lambda: _gate("g_param", "a", params={"lambda": 1.0})),
    ("gate-params-list", lambda: _gate("g_param", "a * k", params=[("k", 1.0)])),
    ("gate-domain-int", lambda: _gate("g_domain", "a", domain=5)),
    ("gate-domain-count", lambda: _gate("g_domain", "a", domain=((0, 1), (0, 1)))),
    ("gate-formula-int", lambda: _gate("g_formula", 5)),
    ("gate-formula-payload", lambda: _gate("g_formula", P_MOD)),
    ("gate-formula-sympy-huge", lambda: _gate("g_formula", lambda a: a * sp.Integer(10) ** 5000)),
]


def test_door_ids_are_unique():
    assert len({n for n, _ in DOORS}) == len(DOORS)


def _refused_quickly(call) -> symbp.SymbpError:
    gc.collect()  # the garbage of earlier cases (10 MB strings, big SymPy trees) is not this one's
    start = time.perf_counter()
    try:
        call()
    except symbp.SymbpError as exc:
        error = exc
    except Exception as exc:  # pragma: no cover - the failure this guards against
        pytest.fail(f"{type(exc).__name__} instead of a SymbpError: {exc}"[:500])
    else:  # pragma: no cover
        pytest.fail("accepted")
    elapsed = time.perf_counter() - start
    assert elapsed < BUDGET, f"refused after {elapsed * 1000:.0f} ms (budget 100 ms)"
    assert str(error), "an error must say what is wrong"
    return error


@pytest.mark.parametrize("build", [b for _, b in DOORS], ids=[n for n, _ in DOORS])
def test_every_door_refuses_quickly(build):
    before = dict(symbp.GATES)
    call = build()
    _refused_quickly(call)
    assert dict(symbp.GATES) == before, "a refused gate must not be registered"


def test_a_look_alike_names_its_code_points_and_what_python_reads():
    message = str(_refused_quickly(_compile("x * y", inputs=["x", "\uff4d\uff41\uff54\uff48"])))
    assert "U+FF4D U+FF41 U+FF54 U+FF48" in message and "'math'" in message


def test_the_issue_demo_no_longer_returns_a_wrong_value():
    """sum(X*2) + sum(Y*3) with X of dimension 'Ｂ' (5 elements) and Y of 'B' (3) gave 15."""
    with pytest.raises(symbp.SymbpError, match="U\\+FF22"):
        f = symbp.compile("sum(X*2) + sum(Y*3)", shapes={"X": ("\uff22",), "Y": ("B",)})
        f.value_and_grad(X=np.ones(5), Y=np.ones(3))


def test_expression_names_are_read_as_python_reads_them():
    """ast NFKC-normalizes identifiers: a fullwidth name in the text is that name, everywhere."""
    f = symbp.compile("\uff58 * y", jit=False)
    assert f.inputs == ("x", "y") and f.value_and_grad(x=2.0, y=3.0) == (6.0, {"x": 3.0, "y": 2.0})


CLI_DOORS = [
    (["grad", "x", "--at", "\uff58=1"], "U+FF58"),
    (["grad", "sum(X)", "--shape", "X=\uff22", "--at", "X=1,2"], "U+FF22"),
    (["grad", "sum(X*2) + sum(Y*3)", "--shape", "X=\uff22", "Y=B", "--at", "X=1,1,1,1,1",
      "Y=1,1,1"], "U+FF22"),
    (["grad", "softmax_cross_entropy(Z, y)", "--shape", "Z=2,2", "--labels", "\uff59=2"],
     "U+FF59"),
    (["grad", "x * y", "--wrt", "\uff58"], "U+FF58"),
    (["grad", "x", "--at", "x\x1b=1"], "control character"),
    (["grad", "x", "--at", "_out=1"], "reserved"),
    (["grad", "x", "--at", "x" * TEN_MB + "=1"], "too long"),
    (["grad", "sum(x)", "--shape", "x=B\x01"], "not a positive integer or a dimension name"),
    (["grad", "sum(x)", "--shape", "x=\uff13"], "positive integer"),
    (["grad", "-f", "/dev/zero"], "too long"),
]


@pytest.mark.parametrize("argv, message", CLI_DOORS, ids=[str(k) for k in range(len(CLI_DOORS))])
def test_the_command_line_doors(argv, message, capsys):
    main(["grad", "x", "--at", "x=1", "--no-jit"])  # warm: the first call imports the CLI's parts
    capsys.readouterr()
    if "/dev/zero" in argv and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    gc.collect()
    start = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - start < BUDGET
    err = capsys.readouterr().err
    assert err.startswith("symbp: error:") and message in err and "Traceback" not in err


def test_standard_input_is_read_no_further_than_the_limit(monkeypatch, capsys):
    class Endless(io.TextIOBase):
        """A stream that never ends, as /dev/zero: reading it all would never return."""

        def read(self, size=-1):
            if size is None or size < 0:
                raise AssertionError("read without a limit")
            return "x" * size

    monkeypatch.setattr(sys, "stdin", Endless())
    assert main(["grad", "-f", "-"]) == 2
    assert "standard input is too long" in capsys.readouterr().err


# --- names the generated code uses: escaped, and the answers are right ------------------------

CLASHING = ("math", "np", "sigmoid", "value_and_grad", "value_and_grad_points", "dtype", "range",
            "float", "prange", "register_jitable", "abs", "n", "relu", "dot", "matvec", "self",
            "cls", "out_", "e")


@pytest.mark.parametrize("jit", [False, True], ids=["python", "numba"])
def test_clashing_scalar_names_are_escaped_and_right(jit):
    expr = " + ".join(f"{k + 1}*{name}" for k, name in enumerate(CLASHING)) + " + sigmoid(math)"
    f = symbp.compile(expr, jit=jit)
    point = {name: 0.1 * (k + 1) for k, name in enumerate(CLASHING)}
    value, grads = f.value_and_grad(**point)
    sig = 1 / (1 + np.exp(-point["math"]))
    assert value == pytest.approx(sum((k + 1) * point[n] for k, n in enumerate(CLASHING)) + sig)
    for k, name in enumerate(CLASHING):
        extra = sig * (1 - sig) if name == "math" else 0.0
        assert grads[name] == pytest.approx(k + 1 + extra)
    assert f(**point) == pytest.approx(value)
    points = f.grad(**{n: np.full(3, v) for n, v in point.items()})  # the loop uses `n` too
    assert np.allclose(points["n"], CLASHING.index("n") + 1)


def test_clashing_array_names_are_escaped_and_right():
    f = symbp.compile("sum(np * dtype) + sum(i * j)", jit=False,
                      shapes={"np": ("math", 3), "dtype": (3,), "i": ("range",), "j": ("range",)})
    a, b = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0, 0.5])
    c, d = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 0.25, -1.0, 2.0])
    value, grads = f.value_and_grad(np=a, dtype=b, i=c, j=d)
    assert value == pytest.approx(float((a * b).sum() + (c * d).sum()))
    np.testing.assert_allclose(grads["np"], np.broadcast_to(b, a.shape))
    np.testing.assert_allclose(grads["dtype"], a.sum(axis=0))
    np.testing.assert_allclose(grads["i"], d)
    np.testing.assert_allclose(grads["j"], c)


def test_nothing_executed_at_all():
    """Belt and braces: after everything above, no trace of any payload anywhere."""
    assert not _traces()


@pytest.mark.parametrize("formula", [
    lambda a: a * sp.Symbol("y"),   # a name the expression also uses: read silently
    lambda a: a * sp.Symbol("b"),   # a name nothing defines
    lambda a: a * sp.Symbol("a0"),  # the placeholder's name, but not the placeholder
])
def test_gate_formula_with_a_stray_symbol_is_refused(formula):
    """A callable formula's free symbols must be its arguments or parameters: gy(x) + y*0 gave
    10 at x=2, y=5 with dy = 0 (the truth is 2), the generated code reading the user's y."""
    name = "stray_gate"
    with pytest.raises(symbp.errors.GateError, match="neither one of its inputs"):
        symbp.gate(name, formula)
    with pytest.raises(symbp.SymbpError):
        symbp.compile(f"{name}(x) + y*0", jit=False)
