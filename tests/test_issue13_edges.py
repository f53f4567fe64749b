"""Edge cases of issue 13's features found by an adversarial pass: hostile names, wrong
shapes, labels, points of a scalar second-order function, hand-written lines of the wrong
shape. Everything runs with ``jit=False`` (no Numba compile); values are checked against
central differences or exact arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest

import symbp


def test_a_direction_named_pi_is_refused_not_read_as_the_constant():
    # 'pi' as a bare name is the constant 3.14159...: lines 'dot = dx * pi' would compile to
    # 2*x*pi, silently ignoring the direction input given at the call
    for expr, wrt, shapes in (("x**2", "x", None), ("sum(W*W)", "W", {"W": (2,)})):
        with pytest.raises(symbp.SymbpError, match=r"direction 'pi'.*constant"):
            symbp.derivative(expr, wrt, shapes=shapes, direction="pi")
    # an ordinary name that is also a gate's or module's stays usable, and means the input
    lines = symbp.derivative("sum(W*W)", "W", shapes={"W": (2,)}, direction="exp")
    f = symbp.compile(lines, shapes={"W": (2,), "exp": (2,)}, jit=False)
    assert f(W=np.array([1.0, 2.0]), exp=np.array([3.0, 4.0])) == 2 * (1 * 3 + 2 * 4)
