"""Compiling missing kernels in a forked process is opt-in and gives the same results."""
import numpy as np

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.backends.numba_cpu import precompile


def test_parallel_compile_is_opt_in(monkeypatch):
    monkeypatch.delenv("FUNCGRAD_PARALLEL_COMPILE", raising=False)
    assert not precompile.enabled()
    monkeypatch.setenv("FUNCGRAD_PARALLEL_COMPILE", "0")
    assert not precompile.enabled()


def test_no_fork_while_another_thread_may_be_compiling():
    import threading

    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="user-thread")
    t.start()
    try:
        assert not precompile._quiet()
        assert precompile.start([]) is None
    finally:
        stop.set()
        t.join()


def test_forked_compile_matches_serial(monkeypatch, private_cache):
    monkeypatch.setenv("FUNCGRAD_PARALLEL_COMPILE", "1")

    def f(x, w):
        h = fnp.tanh(x @ w)
        return fnp.sum(fnp.exp(-h * h)) + fnp.max(fnp.log1p(h * h), axis=0)

    x = np.random.default_rng(0).normal(size=(7, 5))
    w = np.random.default_rng(1).normal(size=(5, 3))
    got = fg.jit(f)(x, w)
    np.testing.assert_allclose(got, f(x, w), rtol=1e-12)
