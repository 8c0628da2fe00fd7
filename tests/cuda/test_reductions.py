"""Reduction kernels (one thread per output, or a shared-memory tree per output)."""
import numpy as np
import pytest
from _cuda_util import check

import funcgrad.numpy as fnp
from funcgrad import make_graph
from funcgrad.backends.numba_cuda import codegen, lower

RNG = np.random.default_rng(1)


@pytest.mark.parametrize("axis", [0, 1, 2, (0, 2), (1, 2), None])
def test_sum_max_min_prod_over_each_axis(axis):
    x = RNG.uniform(0.5, 1.5, size=(3, 4, 5)).astype(np.float64)
    check(lambda x: (fnp.sum(x, axis=axis), fnp.max(x, axis=axis), fnp.min(x, axis=axis),
                     fnp.prod(x, axis=axis), fnp.mean(x * 2.0 + 1.0, axis=axis)), x)


@pytest.mark.parametrize("shape,axis,mode", [((2, 300), 1, "block"), ((300, 3), 0, "split"),
                                            ((2, 70, 3), 1, "split"), ((150, 2, 2), (0, 1), "split")])
def test_long_reductions(shape, axis, mode):
    """Shared-memory trees over trailing axes; chunked partial results over leading axes."""
    assert codegen.reduction_mode(shape, axis if isinstance(axis, tuple) else (axis,))[0] == mode
    x = RNG.normal(size=shape).astype(np.float32)
    check(lambda x: (fnp.sum(x, axis=axis), fnp.max(fnp.exp(x), axis=axis), fnp.min(x, axis=axis)), x,
          tol={"rtol": 1e-5, "atol": 1e-5})


def test_reduction_modes_agree(monkeypatch):
    x = RNG.normal(size=(5, 40)).astype(np.float32)

    def f(x):
        return fnp.sum(x * x, axis=1), fnp.max(x, axis=1)

    serial = check(f, x)
    assert "cuda.shared.array" not in lower(make_graph(f)(x)).source
    monkeypatch.setattr(codegen, "SERIAL_MAX", 0)  # now every reduction is a block tree
    assert "cuda.shared.array" in lower(make_graph(f)(x)).source
    block = check(f, x)
    for a, b in zip(serial, block):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int64, np.bool_])
def test_integer_and_bool_reductions(dtype):
    x = RNG.integers(0, 5, size=(4, 6)).astype(dtype)
    check(lambda x: (fnp.sum(x, axis=0), fnp.max(x, axis=1), fnp.min(x), fnp.any(x > 2, axis=1),
                     fnp.all(x < 4, axis=0)), x)


def test_nan_in_max_reduction():
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], np.float32)
    check(lambda x: (fnp.max(x, axis=1), fnp.min(x, axis=1), fnp.max(x)), x)


def test_softmax_chain():
    """Elementwise ops, a reduction, then more elementwise ops reading its result."""
    x = RNG.normal(size=(6, 5)).astype(np.float32)

    def f(x):
        z = x - fnp.max(x, axis=1, keepdims=True)
        e = fnp.exp(z)
        return e / fnp.sum(e, axis=1, keepdims=True), fnp.var(x, axis=0), fnp.std(x)

    check(f, x)
