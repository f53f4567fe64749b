"""Shared helpers: compiled functions are cached per session (Numba compiles are the slow part)."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

import symbp

try:  # the property tests: the same examples on every run unless asked to explore
    from hypothesis import settings

    settings.register_profile("repeatable", derandomize=True, database=None)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
except ImportError:  # hypothesis is in the test extra; without it test_property skips
    pass

# A custom gate registered for the whole suite, so the table-driven tests cover custom gates too.
symbp.gate("swish", "a * sigmoid(a)")


@functools.cache
def compiled(expr: str, jit: bool = True, wrt: tuple | None = None,
             inputs: tuple | None = None) -> symbp.Function:
    """``symbp.compile`` memoized across the test session."""
    return symbp.compile(expr, jit=jit, wrt=wrt, inputs=inputs)


def numeric_gradient(value, point: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``value(*point)`` in float64."""
    point = np.asarray(point, dtype=np.float64)
    grad = np.empty_like(point)
    for k in range(point.size):
        up, down = point.copy(), point.copy()
        up[k] += eps
        down[k] -= eps
        grad[k] = (value(*up) - value(*down)) / (2 * eps)
    return grad


def gradient_matches(analytic, numeric, rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    """The comparison every gradient check uses (a 0.1% error must fail it)."""
    return bool(np.allclose(analytic, numeric, rtol=rtol, atol=atol))


def check_gradient(f: symbp.Function, point, rtol: float = 1e-5, atol: float = 1e-7):
    """Assert ``f``'s gradient at ``point`` equals central differences of its value."""
    result = f.kernel(*[float(p) for p in point])

    def value(*p):
        return f.kernel(*p)[0]

    numeric = numeric_gradient(value, point)
    index = [f.inputs.index(w) for w in f.wrt]
    analytic = np.array(result[1:], dtype=np.float64)
    assert gradient_matches(analytic, numeric[index], rtol, atol), (
        f"gradient mismatch at {dict(zip(f.inputs, point))}:\n analytic {analytic}\n"
        f" numeric  {numeric[index]}\n{f.source}")


@pytest.fixture(params=[False, True], ids=["python", "numba"])
def jit(request) -> bool:
    return request.param


def vjp_check(f: symbp.Function, values: dict, eps=1e-6, rtol=1e-5, atol=1e-7) -> None:
    """Assert every array gradient of ``f`` at ``values`` equals central differences."""
    _, grads = f.value_and_grad(**values)
    for name in f.wrt:
        x = np.asarray(values[name], dtype=np.float64)
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[idx] += eps
            down[idx] -= eps
            numeric[idx] = (f(**{**values, name: up}) - f(**{**values, name: down})) / (2 * eps)
        got = grads[name]
        assert np.shape(got) == x.shape, f"gradient of {name} has shape {np.shape(got)}"
        np.testing.assert_allclose(got, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"d/d{name}\n{f.source}")
