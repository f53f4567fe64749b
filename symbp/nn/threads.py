"""BLAS threads inside a fit: one thread where more cannot pay off (issue 11).

OpenBLAS starts one thread per core and, between calls, keeps them spinning. On a machine whose
cores are busy (other processes, or the other workers of ``cross_val_score(n_jobs=2)``) those
threads compete with the very process that waits for them, and a fit of small products, where
a second thread never helps, can take many times longer. :func:`limited` holds BLAS to one
thread for the duration of a fit when

1. the largest matrix product of one training step is small: ``batch * fan_in * fan_out`` below
   :data:`SMALL_PRODUCT` multiply-adds for every layer (OpenBLAS itself runs a ``gemm`` on one
   thread below about 262,144 of them; the whole-set products of scoring and validation are
   larger, and a fit of a small network gains nothing from threads either way); or
2. the fit runs inside a parallel worker: a thread other than the main thread (joblib's
   threading backend, a thread pool of the user's) or a child process of ``multiprocessing``
   (joblib's loky and multiprocessing backends, ``ProcessPoolExecutor``). Its siblings already
   take the other cores. (joblib's loky workers start with ``OPENBLAS_NUM_THREADS=1`` and the
   like already set; a forked or threaded worker does not.)

The limit is threadpoolctl's ``threadpool_limits(1, user_api="blas")``: it covers NumPy's
OpenBLAS and the one SciPy bundles, which Numba's ``np.dot`` calls (SciPy's BLAS is loaded
before the limit is set, or the first product of the fit would load it unlimited).
threadpoolctl comes with scikit-learn; without it :func:`limited` does nothing. Set
``SYMBP_BLAS_THREADS=keep`` to never limit. Numba's own threading layer plays no part: the
MLP's compiled loops are not ``parallel=True``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence

SMALL_PRODUCT = 1 << 20
"""Multiply-adds of a step's largest product below which a fit runs BLAS on one thread."""

_HAS_THREADPOOLCTL = importlib.util.find_spec("threadpoolctl") is not None


def largest_product(batch: int, layer_sizes: Sequence[int]) -> int:
    """Multiply-adds of the largest matrix product of one step: ``batch * fan_in * fan_out``
    over consecutive ``layer_sizes`` (input first, outputs last)."""
    return max((batch * a * b for a, b in itertools.pairwise(layer_sizes)), default=0)


def in_parallel_worker() -> bool:
    """True on a thread other than the main one or in a child process of ``multiprocessing``
    (joblib's workers of every backend, ``concurrent.futures`` pools)."""
    if threading.current_thread() is not threading.main_thread():
        return True
    mp = sys.modules.get("multiprocessing")  # a worker process has imported it; no import here
    return mp is not None and mp.parent_process() is not None


def should_limit(batch: int, layer_sizes: Sequence[int]) -> str | None:
    """Why a fit of this size, here, should run BLAS on one thread (``None``: it should not).

    Returns
    -------
    str or None
        ``"small products"``, ``"parallel worker"``, or ``None`` (also when
        ``SYMBP_BLAS_THREADS=keep``).
    """
    if os.environ.get("SYMBP_BLAS_THREADS", "").strip().lower() == "keep":
        return None
    if largest_product(batch, layer_sizes) < SMALL_PRODUCT:
        return "small products"
    if in_parallel_worker():
        return "parallel worker"
    return None


@contextlib.contextmanager
def limited(batch: int, layer_sizes: Sequence[int]) -> Iterator[str | None]:
    """Run the ``with`` body with BLAS on one thread when :func:`should_limit` says so.

    Parameters
    ----------
    batch : int
        The mini-batch size of the fit.
    layer_sizes : sequence of int
        Units per layer, input features first and outputs last.

    Yields
    ------
    str or None
        The reason BLAS was limited, or ``None`` when it was left alone (also when
        threadpoolctl is not installed).
    """
    reason = should_limit(batch, layer_sizes) if _HAS_THREADPOOLCTL else None
    if reason is None:
        yield None
        return
    from ..runtime import _SMALL_MATMUL, BLAS

    if BLAS and largest_product(batch, layer_sizes) >= _SMALL_MATMUL:
        # Numba's np.dot loads SciPy's BLAS at its first call: load it now, so the limit
        # reaches it (smaller products run as loops and never load it).
        import scipy.linalg.cython_blas  # noqa: F401
    _enter()
    try:
        yield reason
    finally:
        _exit()


_CONTROLLER: tuple = (None, None)


def _controller():
    """threadpoolctl's view of the loaded thread pools, made once (finding them takes ~20 ms)
    and again when SciPy's BLAS has been loaded since; threadpoolctl 2 has no controller."""
    global _CONTROLLER
    key = "scipy.linalg.cython_blas" in sys.modules
    if _CONTROLLER[0] != key or _CONTROLLER[1] is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # threadpoolctl < 3: find the pools at every limit
            from threadpoolctl import threadpool_limits

            class _Each:
                @staticmethod
                def limit(limits, user_api):
                    return threadpool_limits(limits=limits, user_api=user_api)

            _CONTROLLER = (key, _Each())
        else:
            with warnings.catch_warnings():  # e.g. its note on two OpenMP runtimes: not ours
                warnings.simplefilter("ignore", RuntimeWarning)
                _CONTROLLER = (key, ThreadpoolController())
    return _CONTROLLER[1]


# The BLAS thread count is one setting per process, so fits running at once on several threads
# share one limit: the first to enter sets it, the last to leave restores the original.
_lock = threading.Lock()
_active = 0
_limiter = None


def _enter() -> None:
    global _active, _limiter
    with _lock:
        if _active == 0:
            _limiter = _controller().limit(limits=1, user_api="blas")
        _active += 1


def _exit() -> None:
    global _active, _limiter
    with _lock:
        _active -= 1
        if _active == 0 and _limiter is not None:
            _limiter.restore_original_limits()
            _limiter = None
