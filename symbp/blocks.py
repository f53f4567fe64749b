"""A scalar Function over Dask arrays of points: computed blockwise (issue 14).

``f.value_and_grad(x=dask_array, y=...)`` for a scalar function returns Dask arrays: one
task per block runs the function's compiled points loop (the loop NumPy arrays of points use)
and writes the value and every gradient of that block at once; the results are slices of that
one task, so ``dask.compute(value, grads)`` runs the kernel once per block. Each block runs the
serial loop: Dask already spreads the blocks over its threads and workers, and a parallel loop
inside each would run threads x workers threads on the same cores.

Dask is imported here only, and this module only when an argument is a Dask array: symbp
itself never needs Dask. The Function travels to the workers pickled (see
:mod:`symbp.travel`) and is compiled there once per process.
"""

from __future__ import annotations

import sys

import numpy as np

from .errors import CallError


def is_dask(value) -> bool:
    """A Dask collection, told by its type's module (no import of Dask)."""
    return type(value).__module__.partition(".")[0] == "dask"


def in_dask_worker() -> bool:
    """True inside a task of a ``dask.distributed`` worker (no import of Dask: only when it is
    loaded). There a function of NumPy points runs its serial loop: the worker's ``nthreads``
    task threads are its parallelism, so workers x threads stay within the cores."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:  # not in a worker's task
        return False
    return True


def points(f, given: dict, out) -> tuple:
    """``(values, {name: gradients})`` of scalar Function ``f`` at the points ``given`` (Dask
    arrays, NumPy arrays or numbers, broadcast together), as Dask arrays."""
    import dask.array as da

    if out is not None:
        raise CallError("out= takes NumPy arrays; with Dask arrays the results are Dask arrays")
    if any(shape for _, shape, _ in f.signature):
        raise CallError("Dask arrays are taken by a function of scalars evaluated at many points; "
                        "a function of array inputs takes NumPy arrays")
    arrays = {}
    for name, value in given.items():
        a = value if is_dask(value) else np.asarray(value)
        if not hasattr(a, "dtype") or not hasattr(a, "ndim"):
            raise CallError(f"input {name!r} is a Dask {type(value).__name__}; give a Dask array")
        if a.dtype.kind not in "fiu":
            raise CallError(f"input {name!r} must hold real numbers, got {a.dtype}")
        arrays[name] = a
    # the rule of NumPy points: float32 only when every float array is float32
    kinds = {a.dtype for n, a in arrays.items() if (is_dask(given[n])
             or isinstance(given[n], np.ndarray)) and a.ndim > 0 and a.dtype.kind == "f"}
    dtype = np.dtype(np.float32) if kinds == {np.dtype(np.float32)} else np.dtype(np.float64)
    try:
        blocks = da.broadcast_arrays(*[da.asarray(a) for a in arrays.values()])
    except ValueError:
        shapes = ", ".join(f"{n}: {np.shape(a)}" for n, a in arrays.items())
        raise CallError(f"inputs do not share one shape ({shapes})") from None
    count = 1 + len(f.wrt)
    stacked = da.map_blocks(_block, *blocks, f=f, dtype=dtype, kind=dtype, count=count,
                            new_axis=0, chunks=((count,), *blocks[0].chunks),
                            meta=np.empty((0,) * (blocks[0].ndim + 1), dtype))
    return stacked[0], {n: stacked[1 + k] for k, n in enumerate(f.wrt)}


def _block(*blocks, f, kind, count: int) -> np.ndarray:
    """One block: the value and the gradients stacked on a new first axis."""
    shape = np.broadcast_shapes(*(b.shape for b in blocks))
    flat = [np.ascontiguousarray(np.broadcast_to(b, shape), kind).reshape(-1) for b in blocks]
    result = np.empty((count, *shape), kind)
    if result.size:
        f._points_kernel(False)(*flat, *(result[k].reshape(-1) for k in range(count)))
    return result
