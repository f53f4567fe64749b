"""The one identifier check, and the limits every stage shares.

Every name that reaches generated code goes through :func:`check`: expression names and staged
targets (parse), ``inputs=`` and ``wrt=`` (compile), ``shapes=`` keys and dimension names
(shapes), custom gate names and parameter names (gates), and the command line's ``--shape``,
``--labels`` and ``--at``. Python NFKC-normalizes identifiers when it compiles a module (a
fullwidth ``Ｂ`` is read as ``B``, ``ｍａｔｈ`` as ``math``), so a name that changes under NFKC
would be one name to symbp and another to the generated code: it is refused, with its code
points and the name Python would read. A name that passes is compared as it is.

This module is at the bottom of the package: it imports nothing of symbp but the errors (and
no SymPy at import: a compile found in the source cache runs the checks here without it).
"""

from __future__ import annotations

import contextlib
import contextvars
import keyword
import re
import unicodedata

from .errors import IdentifierError, ParseError

KERNEL_NAME = "value_and_grad"
"""Name of the generated function (here, not in :mod:`symbp.naming`, so that the cached path,
which never names anything, needs no SymPy)."""
VALUE_NAME = "value"
"""``value_into``: the forward pass alone, for array programs."""

MAX_LENGTH = 20_000
"""Longest expression text accepted, in characters (also a file or standard input)."""
MAX_NAME_LENGTH = 200
"""Longest name accepted (an input, a dimension, a gate or a parameter)."""
MAX_DEPTH = 1000
"""Deepest nesting of operations in a single expression (split into gates, walked iteratively)."""
MAX_LINE_DEPTH = 100
"""Deepest nesting in one staged line or gate formula (a SymPy expression: SymPy recurses)."""
MAX_LINE_OPS = 64
"""Most operations in one staged line or gate formula: its derivative grows with the square."""
MAX_GATES = 2000
"""Most gates in one program (Numba's compile time grows faster than the source)."""
MAX_INT = 2 ** 53
"""Largest integer constant (exact as a float64)."""

# The symbols the compiler itself puts into formulas (gate inputs, the gate's output, its
# parameters, loop references): a user's name must never be one of them.
_INTERNAL = re.compile(r"_a\d+(_ref)?|_out|_own|_param_\w*")

_ALLOWED_CONTROL = frozenset("\t\n\r\f")


def problem(name) -> str | None:
    """What is wrong with ``name`` as a symbp name, or None if it is fine.

    Checked in this order: a ``str``; not too long; no control character or lone surrogate;
    unchanged by NFKC normalization; an identifier; not reserved (``__`` or an internal
    symbol); not a Python keyword.
    """
    if not isinstance(name, str):
        return f"a name must be a string, got {type(name).__name__} {short(name)}"
    if len(name) > MAX_NAME_LENGTH:
        return f"name {short(name)} is too long ({len(name)} characters; the limit is " \
               f"{MAX_NAME_LENGTH})"
    bad = first_bad_character(name)
    if bad is not None:
        return f"name {short(name)} contains {bad}"
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        return (f"name {name!r} ({code_points(name)}) is not in Unicode normal form: Python "
                f"reads it as {normal!r}; write {normal!r} (or another name) instead")
    if not name.isidentifier():
        return (f"{name!r} is not a valid name (an identifier: letters, digits and _, not "
                "starting with a digit)")
    if name.startswith("__"):
        return f"name {name!r} is reserved (names may not start with '__')"
    if _INTERNAL.fullmatch(name):
        return f"name {name!r} is reserved for symbp's own symbols; choose another"
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword"
    return None


def check(name, what: str = "", error=IdentifierError) -> str:
    """``name`` if it is a valid symbp name, else raise ``error(message)``.

    Parameters
    ----------
    name : object
        The candidate name.
    what : str
        Where it came from, prefixed to the message (``"inputs"``, ``"shapes['X']"``).
    error : callable
        Builds the exception from the message (a :class:`SymbpError` subclass, or a function
        returning one, as the parser does to add a caret).
    """
    message = problem(name)
    if message is not None:
        raise error(f"{what}: {message}" if what else message)
    return name


def names(values, what: str, error=IdentifierError) -> list[str]:
    """A list of valid names from ``values`` (one name or a sequence of names), no repeats."""
    if isinstance(values, str):
        values = [values]
    if isinstance(values, (dict, set, frozenset)) or not hasattr(values, "__iter__"):
        raise error(f"{what} must be a name or a list of names, got {type(values).__name__} "
                    f"{short(values)}")
    out: list[str] = []
    seen: set[str] = set()
    for v in values:
        if len(out) >= MAX_GATES:
            raise error(f"{what} lists more than {MAX_GATES} names")
        check(v, what, error)
        if v in seen:
            raise error(f"{what} lists {v!r} twice")
        seen.add(v)
        out.append(v)
    return out


_LENGTH = contextvars.ContextVar("symbp_max_length", default=MAX_LENGTH)


@contextlib.contextmanager
def generated_text():
    """Within it, texts symbp wrote itself (``compile(order=2)``'s staged lines, several times
    the accepted expression they derive from) may exceed MAX_LENGTH, up to 50 times it; the
    gate limit still bounds them. Per thread and task (a context variable)."""
    token = _LENGTH.set(50 * MAX_LENGTH)
    try:
        yield
    finally:
        _LENGTH.reset(token)


def screen_text(text) -> None:
    """The checks every expression text passes before it is parsed (cheap: type, length,
    characters), raising ParseError."""
    if not isinstance(text, str):
        raise ParseError(f"expected an expression string, got {type(text).__name__}")
    limit = _LENGTH.get()
    if len(text) > limit:
        raise ParseError(f"expression is too long ({len(text)} characters; the limit is "
                         f"{limit})")
    if not text.strip():
        raise ParseError("empty expression")
    if "\x00" in text:
        raise ParseError("expression contains a NUL character")
    bad = first_bad_character(text)
    if bad is not None:
        raise ParseError(f"expression contains {bad}")


def first_bad_character(text: str) -> str | None:
    """A description of the first control character or lone surrogate in ``text``, or None."""
    for k, c in enumerate(text):
        if (c < " " and c not in _ALLOWED_CONTROL) or "\x7f" <= c <= "\x9f" \
                or "\ud800" <= c <= "\udfff":
            kind = "a lone surrogate" if "\ud800" <= c <= "\udfff" else "a control character"
            return f"{kind} (U+{ord(c):04X}) at position {k + 1}"
    return None


def code_points(text: str) -> str:
    """``U+FF4D U+FF41``: the code points of ``text`` (the first 20)."""
    shown = " ".join(f"U+{ord(c):04X}" for c in text[:20])
    return shown + (" ..." if len(text) > 20 else "")


def short(value) -> str:
    """A repr that stays readable for a 10 MB string."""
    try:
        text = repr(value) if not isinstance(value, str) or len(value) <= 60 \
            else repr(value[:40]) + "..."
    except Exception:  # a user's object with a failing __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def number(value: float):
    """A float constant as SymPy holds it, exactly: ``1.0 -> 1``, ``0.5 -> 1/2``.

    Beyond 2**53 it stays a float (Numba has no big integers); a non-finite value stays a
    SymPy infinity or NaN, which the printer writes as ``math.inf`` / ``math.nan``.
    """
    import sympy as sp

    value = float(value)
    if value != value:
        return sp.nan
    if value in (float("inf"), float("-inf")):
        return sp.oo if value > 0 else -sp.oo
    if abs(value) <= MAX_INT:
        if value.is_integer():
            return sp.Integer(int(value))
        if (2 * value).is_integer():  # 0.5 -> 1/2, so that x**0.5 prints as math.sqrt(x)
            return sp.Rational(int(2 * value), 2)
    return sp.Float(value)


def in_float_range(value) -> bool:
    """Whether a (SymPy) number is a float64 other than inf or nan, and 0 only if it is 0:
    SymPy holds 1e320 or 1e-400 exactly, float64 does not."""
    try:
        as_float = float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return as_float - as_float == 0 and (as_float != 0 or value == 0)
