"""Fused elementwise kernels on CUDA against the NumPy interpreter."""
import numpy as np
import pytest
from _cuda_util import check
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad.numpy as fnp

RNG = np.random.default_rng(0)


def _floats(shape, dtype, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transcendental_cluster(dtype):
    x = _floats((3, 5), dtype)
    y = _floats((3, 5), dtype, 0.5, 3.0)

    def f(x, y):
        a = fnp.tanh(x) * fnp.exp(-x * x) + 0.5 * fnp.sin(3.0 * x)
        b = fnp.log(y) + fnp.sqrt(y) - fnp.log1p(y) / fnp.expm1(y) + fnp.arctan2(x, y)
        c = fnp.cos(x) + fnp.arcsinh(x) + fnp.cbrt(x) + fnp.exp2(x) + fnp.log2(y) + fnp.log10(y)
        d = fnp.sinh(x) - fnp.cosh(x) + fnp.arctan(x) + fnp.tan(x * 0.5) + fnp.arcsin(x / 3.0)
        return a, b, c, d, fnp.maximum(x, y), fnp.minimum(x, 0.0), x ** 3, y ** y, fnp.abs(x) ** 0.5

    check(f, x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rounding_sign_and_remainders(dtype):
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -3.7, 0.0, 4.2, -0.2], dtype)
    y = np.array([1.5, -2.0, 0.7, 3.0, -1.1, 2.0, 2.0, 1.0, -0.4, 0.3], dtype)

    def f(x, y):
        return (fnp.round(x), fnp.floor(x), fnp.ceil(x), fnp.trunc(x), fnp.sign(x), fnp.fmod(x, y),
                fnp.mod(x, y), fnp.floor_divide(x, y), fnp.isnan(x / (x - x)), fnp.isfinite(x / 0.0))

    check(f, x, y)


def test_nan_propagating_max_min():
    x = np.array([1.0, np.nan, 3.0, -np.inf], np.float32)
    y = np.array([np.nan, 2.0, 1.0, 0.0], np.float32)
    check(lambda x, y: (fnp.maximum(x, y), fnp.minimum(x, y)), x, y)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
def test_integer_ops(dtype):
    info = np.iinfo(dtype)
    x = RNG.integers(max(info.min, -100), min(info.max, 100), size=(4, 3)).astype(dtype)
    y = RNG.integers(1, 7, size=(4, 3)).astype(dtype)

    def f(x, y):
        return (x + y, x - y, x * y, x // y, x % y, fnp.fmod(x, y), x & y, x | y, x ^ y, ~x, -x,
                fnp.maximum(x, y), x < y, x == y, fnp.where(x > y, x, y), x ** 2, fnp.abs(x),
                fnp.sign(x))

    check(f, x, y)


def test_integer_division_by_zero_matches_numpy():
    x = np.array([5, -7, 0, 3], np.int32)
    y = np.array([0, 2, 0, -2], np.int32)
    check(lambda x, y: (x // y, x % y, fnp.fmod(x, y)), x, y)


def test_uint32_wraparound_shifts_and_xor():
    x = np.array([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x9E3779B9, 12345], np.uint32)
    y = np.array([0xFFFFFFFF, 0xFFFFFFFF, 2, 1, 0x7F4A7C15, 0], np.uint32)

    def f(x, y):
        s = x + y
        rot = (x << np.uint32(13)) | (x >> np.uint32(19))
        return s, x - y, x * y, rot ^ s, ~x, x >> np.uint32(31), (x << np.uint32(31)) + np.uint32(7)

    check(f, x, y, exact=True)


def test_bool_logic():
    a = np.array([[True, False, True], [False, False, True]])
    b = np.array([True, True, False])

    def f(a, b):
        return (a & b, a | b, a ^ b, ~a, fnp.logical_not(a), fnp.logical_and(a, b), fnp.logical_or(a, b),
                fnp.logical_xor(a, b), a == b, fnp.where(a, 1.0, -1.0))

    check(f, a, b)


def test_dtype_conversions():
    x = np.array([-2.7, -0.5, 0.0, 0.5, 2.7, 300.25], np.float64)

    def f(x):
        return (x.astype(np.float32), x.astype(np.int32), x.astype(np.int64), x.astype(bool),
                (x > 0).astype(np.float32), x.astype(np.int32).astype(np.uint8), x.astype(np.float32) * 2.0)

    check(f, x)


def test_broadcasting_shapes():
    a = _floats((2, 1, 4), np.float32)
    b = _floats((3, 1), np.float32)
    c = _floats((4,), np.float32)
    s = np.float32(1.5)

    def f(a, b, c, s):
        return a * b + c, fnp.broadcast_to(c, (3, 4)) - b, a + s, s * c, fnp.exp(b) + 1.0

    check(f, a, b, c, s)


def test_views_fused_into_kernels():
    x = _floats((3, 4), np.float64)
    y = _floats((4, 3), np.float64)

    def f(x, y):
        return (x + y.T, fnp.flip(x, 1) * 2.0, x[1:, ::2] + x[:2, 1::2], x[:, None, :] * y[:, :, None].T,
                fnp.reshape(x, (4, 3)) + y, fnp.reshape(x, (12,)), x.T[::-1] - y)

    check(f, x, y)


def test_scalars_literals_and_passthrough():
    x = np.float32(2.0)
    y = np.arange(3.0)

    def f(x, y):
        return x * 3.0, y, fnp.zeros(2), fnp.ones((2, 2), np.float32) * x, 7, y + 1.0

    check(f, x, y)


def test_empty_arrays():
    x = np.zeros((0, 3), np.float32)
    check(lambda x: (fnp.exp(x) + 1.0, fnp.sum(x, axis=0), fnp.sum(x, axis=1), x @ np.ones((3, 2), np.float32)), x)


_UNARY = [fnp.sin, fnp.cos, fnp.tanh, fnp.exp, lambda x: fnp.log1p(x * x), lambda x: x * x, fnp.negative,
          lambda x: fnp.sqrt(fnp.abs(x) + 1.0), lambda x: fnp.maximum(x, 0.0)]
_BINARY = [fnp.add, fnp.subtract, fnp.multiply, lambda a, b: a / (b * b + 1.0), fnp.maximum, fnp.minimum,
           lambda a, b: fnp.where(a > b, a, b * 2.0)]


@settings(max_examples=6)
@given(st.data())
def test_random_elementwise_graphs(data):
    """Random compositions of unary and binary ops over broadcastable float32 operands."""
    shapes = data.draw(st.sampled_from([((2, 3), (3,)), ((4, 1), (1, 2)), ((), (2, 2)), ((3,), (3,))]))
    ops = data.draw(st.lists(st.tuples(st.integers(0, len(_UNARY) - 1), st.integers(0, len(_BINARY) - 1),
                                       st.booleans()), min_size=1, max_size=6))
    a, b = (_floats(s, np.float32) for s in shapes)

    def f(a, b):
        vals = [a, b]
        for u, bi, flip in ops:
            x = _UNARY[u](vals[-1])
            vals.append(_BINARY[bi](x, vals[-2]) if flip else _BINARY[bi](vals[-2], x))
        return vals[2:]

    check(f, a, b, tol={"rtol": 1e-4, "atol": 1e-5})


def test_no_arguments_and_python_scalars():
    check(lambda: fnp.arange(3.0) * 2.0)
    check(lambda n, b, f: (n * 2, fnp.where(b, n, -n), f / 4), 3, True, 1.5)
