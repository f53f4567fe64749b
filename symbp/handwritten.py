"""``symbp.check``: a hand-written backward pass, checked line by line (see :mod:`symbp.checker`).

It sits above :mod:`symbp.function`, since array lines are compiled by :func:`symbp.compile`;
the checking itself is in :mod:`symbp.checker`, below it, which ``Function.check`` uses too.
"""

from __future__ import annotations

from .checker import Report, check_source
from .function import compile
from .shapes import checked_shapes


def check(source: str, *, at: dict | None = None, inputs=None, shapes=None) -> Report:
    """Check a hand-written backward pass against symbp's, line by line.

    Parameters
    ----------
    source : str
        Staged forward lines (``name = expr``, the last one the output), then the backward
        lines, ``dname = expr`` or ``dname += expr``. The backward pass starts at the first
        ``+=`` or the first line assigning ``d<name>`` for a name already used. Each backward
        line gives one forward line's contribution to one gradient: it reads that line's
        gradient (``dx = (1) * dxpy``), or none for the output line (``dnum = invden``).
    at : dict, optional
        The point: a number for every input of the forward pass. The lines at the top of
        ``source`` that assign a number to a name (the notes' ``x = 3  # example values``,
        ``y = -4``) give the point when ``at`` is left out (the forward pass starts after
        them); a name ``at`` gives is an input at ``at``'s value even if such a line assigns
        it, and the other value lines stay forward lines (constants).
    inputs : sequence of str, optional
        The forward pass's inputs (as in :func:`symbp.compile`).
    shapes : dict, optional
        Shapes of array inputs (tuples of ints; ``at`` then gives arrays). Array code is
        checked through symbp's own pipeline: each forward and backward line is compiled
        (as plain Python, no Numba) and its vector-Jacobian products compared, so the
        notes' ``dW = dq @ x.T`` (x a column) is checked like a scalar line. A backward
        line whose right side has another shape than its value (``dq = 1`` for an array
        ``q``) is wrong, even where it would broadcast. Integer labels are declared with
        ``symbp.ints(shape)`` (``at`` gives an integer array; they have no gradient).

    Returns
    -------
    Report
        ``.ok``, ``.first_wrong_line``, ``.lines`` (every backward line, in order) and
        ``.missing`` (contributions never written); ``print(report)`` shows the problems.
        ``found`` and ``expected`` are floats, or arrays for array code.

    Raises
    ------
    SymbpError
        ``ParseError`` (with a caret) for a line the safe parser refuses, an unknown name or a
        backward target that is no forward value's gradient; SymbpError for a bad point or a
        value that is not finite.
    """
    return check_source(source, at, inputs, checked_shapes(shapes) or None, compile)
