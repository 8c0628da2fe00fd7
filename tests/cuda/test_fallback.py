"""Primitives without a device kernel run on the host, inside an otherwise compiled graph."""
import numpy as np
from _cuda_util import check

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.backends.numba_cuda import lower
from funcgrad.backends.numba_cuda.program import HostStep

RNG = np.random.default_rng(3)


def _host_prims(f, *args):
    return {s.eqn.prim.name for s in lower(fg.make_graph(f)(*args)).steps if isinstance(s, HostStep)}


def test_host_fallback_between_kernels():
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    idx = np.array([3, 0, 2], np.int64)

    def f(x, idx):
        y = fnp.exp(x) * 2.0
        z = fnp.concatenate([y, fnp.sort(x, axis=1)], axis=0)  # argsort: host
        picked = y[idx] + fnp.cumsum(x, axis=1)[idx]  # integer-array indexing, cumsum: host
        return fnp.tanh(z) + 1.0, picked * 3.0, fnp.argmax(x, axis=1)

    hosted = _host_prims(f, x, idx)
    assert {"argsort", "getitem", "cumsum", "argmax"} <= hosted
    check(f, x, idx)


def test_special_functions_without_device_lowering():
    x = RNG.uniform(0.5, 3.0, size=(6,))
    from funcgrad.scipy.special import gammaln

    def f(x):
        return fnp.exp(gammaln(x)) + x, fg.grad(lambda x: fnp.sum(gammaln(x)))(x)  # digamma: host

    assert "digamma" in _host_prims(f, x)
    check(f, x)


def test_scatter_and_gather_gradients():
    x = RNG.normal(size=(5, 3))
    idx = np.array([0, 2, 2, 4])

    def loss(x):
        return fnp.sum(fnp.sin(x[idx]) ** 2)

    check(lambda x: fg.value_and_grad(loss)(x), x)


def test_linear_algebra_on_host():
    a = RNG.normal(size=(3, 3)) + 3.0 * np.eye(3)
    b = RNG.normal(size=(3,))
    check(lambda a, b: (fnp.linalg.solve(a, b) * 2.0, fnp.linalg.det(a), fnp.linalg.inv(a) @ a), a, b)


def test_control_flow_runs_on_host():
    x = np.float64(0.3)

    def f(x):
        return fg.lax.fori_loop(0, 4, lambda i, c: c * 2.0 + fnp.sin(c), x), fg.lax.cond(x > 0, fnp.cos, fnp.sin, x)

    check(f, x)


def test_concatenate_and_pad_kernels():
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    y = RNG.normal(size=(2, 1)).astype(np.float32)
    e = np.zeros((2, 0), np.float32)

    def f(x, y, e):
        return (fnp.concatenate([x, y, e, x * 2.0], axis=1), fnp.concatenate([x, x], axis=0), fnp.stack([x, x]),
                fnp.pad(x, ((1, 2), (0, 1))), fnp.pad(x, 1) * 3.0, fnp.concatenate([e, e], axis=1))

    assert not _host_prims(f, x, y, e)
    check(f, x, y, e)
