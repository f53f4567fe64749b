"""Hostile input: every string here must be refused with a SymbpError, and none may run.

symbp parses with Python's ``ast`` and a whitelist, never ``eval``/``exec``/``sympify``. Many
strings below carry a payload that would leave a trace if anything executed them (an environment
variable, a ``sys.modules`` entry, an attribute on ``builtins``, a file); an autouse fixture checks
after every test that no trace exists. All compiles use ``jit=False``: no Numba compilation.
"""

from __future__ import annotations

import builtins
import faulthandler
import os
import sys
import tempfile
import time

import pytest

import symbp

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


def test_nothing_executed_at_all():
    """Belt and braces: after everything above, no trace of any payload anywhere."""
    assert not _traces()
