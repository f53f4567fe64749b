"""symbp.nn.threads: BLAS on one thread inside a fit of small products or in a parallel worker."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from symbp import nn
from symbp.nn import base, threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpoolctl.threadpool_info()
            if p["user_api"] == "blas"]


def test_largest_product():
    assert threads.largest_product(32, (64, 64, 10)) == 32 * 64 * 64
    assert threads.largest_product(128, (784, 256, 128, 10)) == 128 * 784 * 256
    assert threads.largest_product(32, (5,)) == 0


def test_should_limit(monkeypatch):
    monkeypatch.delenv("SYMBP_BLAS_THREADS", raising=False)
    assert threads.should_limit(32, (64, 64, 10)) == "small products"
    assert threads.should_limit(128, (784, 256, 128, 10)) is None  # main thread, main process
    monkeypatch.setenv("SYMBP_BLAS_THREADS", "keep")
    assert threads.should_limit(32, (64, 64, 10)) is None


def test_a_thread_other_than_the_main_one_is_a_parallel_worker(monkeypatch):
    monkeypatch.delenv("SYMBP_BLAS_THREADS", raising=False)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(
        (threads.in_parallel_worker(), threads.should_limit(128, (784, 256, 128, 10)))))
    worker.start()
    worker.join()
    assert seen == [(True, "parallel worker")]
    assert not threads.in_parallel_worker()


def test_limited_holds_blas_to_one_thread_and_restores_it(monkeypatch):
    monkeypatch.delenv("SYMBP_BLAS_THREADS", raising=False)
    before = _blas_threads()
    with threads.limited(32, (64, 64, 10)) as reason:
        assert reason == "small products"
        assert _blas_threads() and all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before
    with threads.limited(128, (784, 256, 128, 10)) as reason:
        assert reason is None and _blas_threads() == before


def test_overlapping_limits_restore_when_the_last_one_leaves(monkeypatch):
    """Fits on two threads at once share the one per-process setting."""
    monkeypatch.delenv("SYMBP_BLAS_THREADS", raising=False)
    before = _blas_threads()
    first, second = threads.limited(32, (64, 10)), threads.limited(32, (64, 10))
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert all(n == 1 for n in _blas_threads())
    second.__exit__(None, None, None)
    assert _blas_threads() == before and threads._active == 0


def test_without_threadpoolctl_limited_does_nothing(monkeypatch):
    monkeypatch.setattr(threads, "_HAS_THREADPOOLCTL", False)
    before = _blas_threads()
    with threads.limited(32, (64, 64, 10)) as reason:
        assert reason is None and _blas_threads() == before


def test_fit_trains_inside_the_limit(monkeypatch):
    """The wiring in MLPClassifier.fit, with the network and the training loop mocked (no
    compiling): the batch and layer sizes reach threads.limited, the loop runs inside it."""
    monkeypatch.delenv("SYMBP_BLAS_THREADS", raising=False)
    calls, inside = [], []
    real = threads.limited

    def spy(batch, sizes):
        calls.append((batch, tuple(sizes)))
        return real(batch, sizes)

    monkeypatch.setattr(base._threads, "limited", spy)
    monkeypatch.setattr(base, "network", lambda *key: None)
    monkeypatch.setattr(base.solvers, "stochastic", lambda *a: inside.append(_blas_threads()))
    X = np.random.default_rng(0).random((50, 8))
    y = np.arange(50) % 3
    nn.MLPClassifier(hidden_layer_sizes=(16, 4), batch_size=20).fit(X, y)
    nn.MLPClassifier(hidden_layer_sizes=(16,)).fit(X, y)  # batch "auto": min(200, n)
    assert calls == [(20, (8, 16, 4, 3)), (50, (8, 16, 3))]
    assert len(inside) == 2 and all(n == 1 for pools in inside for n in pools)
