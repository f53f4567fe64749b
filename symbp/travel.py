"""Pickling a :class:`symbp.Function`: the request travels, never code (issue 14).

A pickled Function holds only plain data: the expression text, the inputs, the array shapes,
``wrt``, ``jit``, ``order``, the custom gates it calls (their formula strings) and a digest of the
generated source. Unpickling calls :func:`rebuild`, which compiles that request again through
:func:`symbp.compile` and its safe parser (on a Dask worker that has never seen the
expression: its own cache folder, Numba's cache there) and checks that the source it generates
is the one that was pickled, so a worker with another symbp (or SymPy) version refuses instead
of computing something else. A process compiles a request once: later unpicklings of it return
the same Function.

What cannot travel raises :class:`~symbp.errors.SymbpError` when pickling: a custom gate
defined by a Python callable (code), a Function not made by ``symbp.compile``, and a SymPy
expression whose text does not compile to the same source (SymPy expressions travel as the
text ``sympy.sstr`` writes when that text gives exactly the same generated code).
"""

from __future__ import annotations

import hashlib
import re
import threading

from . import __version__
from .errors import SymbpError
from .shapes import Ints

PAYLOAD = "symbp.Function/1"
"""The payload's format tag (checked on unpickling)."""

_REBUILT: dict[str, object] = {}
"""Payload digest -> the Function rebuilt from it in this process."""
_LOCK = threading.Lock()


def digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:32]


def payload(f, compile) -> dict:
    """The plain-data request of Function ``f`` (see the module); raises SymbpError for a
    Function that cannot travel. ``compile`` is :func:`symbp.compile` (to check that the text
    of a SymPy expression compiles to the same source)."""
    if f.request is None:
        raise SymbpError("this Function was not made by symbp.compile: it cannot be pickled "
                         "(a pickled Function is compiled again from its expression)")
    expr = f.request[0]
    text = expr if isinstance(expr, str) else _sympy_text(f, expr, compile)
    gates = []
    for name, formula, params, domain in f.definitions:
        if not re.search(rf"\b{re.escape(name)}\s*\(", text):
            continue  # defined then, not called here
        if formula is None:
            raise SymbpError(f"cannot pickle this Function: it calls the custom gate {name!r}, "
                             "defined by a Python callable, and code does not travel; define "
                             f"it with a formula string (symbp.gate({name!r}, \"...\")) to send "
                             "it to other processes")
        gates.append((name, formula, tuple(params), tuple(domain)))
    return {"format": PAYLOAD, "version": __version__, "expr": text,
            "inputs": tuple(f.inputs), "wrt": tuple(f.wrt), "jit": f.jit, "order": f.order,
            "shapes": tuple((n, tuple(shape), integer) for n, shape, integer in f.signature
                            if shape),
            "gates": tuple(gates), "source": digest(f.source)}


def _sympy_text(f, expr, compile) -> str:
    """The text a SymPy expression travels as, checked once (kept on ``f``)."""
    if f._travel_text is None:
        import sympy

        text = sympy.sstr(expr, full_prec=True)
        try:
            same = compile(text, order=f.order, **_request(f.inputs, f.wrt, _shapes(
                (n, s, i) for n, s, i in f.signature if s)), jit=False).source == f.source
        except SymbpError:
            same = False
        if not same:
            raise SymbpError(f"cannot pickle this Function: it was compiled from a SymPy "
                             f"expression whose text ({text[:80]!r}) does not compile to the "
                             "same code; compile it from a string to send it to other "
                             "processes")
        f._travel_text = text
    return f._travel_text


def _shapes(items) -> dict:
    return {n: (Ints(tuple(shape)) if integer else tuple(shape)) for n, shape, integer in items}


def _request(inputs, wrt, shapes) -> dict:
    return {"inputs": list(inputs), "wrt": list(wrt), "shapes": shapes}


def rebuild(data, compile):
    """The Function of pickled ``data`` (:func:`payload`), compiled by ``compile`` once per
    process. Raises SymbpError for a payload that is not one, or when this process would
    generate different code (another symbp version)."""
    if not isinstance(data, dict) or data.get("format") != PAYLOAD:
        raise SymbpError("not a pickled symbp.Function")
    key = hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()
    with _LOCK:
        known = _REBUILT.get(key)
    if known is not None:
        return known
    try:
        expr, inputs, wrt, jit = data["expr"], data["inputs"], data["wrt"], data["jit"]
        order = data.get("order", 1)
        shapes = _shapes(data["shapes"])
        gates = [(str(n), str(t), dict(p), tuple(d)) for n, t, p, d in data["gates"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise SymbpError(f"a damaged pickled symbp.Function ({exc})") from None
    if gates:
        _define(gates)
    f = compile(expr, jit=jit, order=order, **_request(inputs, wrt, shapes))
    if digest(f.source) != data["source"]:
        raise SymbpError(f"the pickled symbp.Function was made by symbp {data['version']} and "
                         f"this process (symbp {__version__}) generates different code for "
                         "it: install the same symbp version (and SymPy) in every process")
    with _LOCK:
        return _REBUILT.setdefault(key, f)


def _define(gates: list) -> None:
    """Define the custom gates a pickled Function calls, as they were where it was pickled
    (a gate defined differently here is defined again, as ``symbp.gate`` does)."""
    from .gates import GATES
    from .parse import gate

    for name, text, params, domain in gates:
        row = GATES.get(name)
        if row is not None and row.custom and row.text == text \
                and dict(row.params) == params and tuple(row.domain) == domain:
            continue
        gate(name, text, params=params, domain=domain or None)
